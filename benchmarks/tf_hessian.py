"""The TensorFlow adapter: HVP cost against a gradient, and batched products.

On scikit-learn's bundled digits data (1797 images, no download), for a Keras
MLP 64-200-10 tanh trained briefly with Adam, in float32:

1. HVP time / gradient time over the full data, both in ``tf.function``: the
   gradient as a Keras training step takes it (a tape over ``model(x)``), the
   product through the operator's ``matvec`` as users call it, for
   forward-over-reverse and double backward, with and without XLA. The
   operation-count limit is about 3 gradients (forward, reverse, and the tangent
   pass of each), so 3.9 is 1.3x that.
2. One ``matmat`` of k = 8 vectors (unrolled in one ``tf.function``, where the
   columns share the forward pass and the gradient) against 8 matvecs.
3. The chunk size: k = 16 vectors through ``matmat`` with at most 1, 4, 8 or 16
   of them per traced product (forward-over-reverse): time per vector over a
   gradient, and seconds for the first call (tracing included). The default is 8.

Run:  python benchmarks/tf_hessian.py
"""

from __future__ import annotations

import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _common import best, digits

from slq import adapters

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def trained(widths: tuple[int, ...], x: np.ndarray, y: np.ndarray, steps: int = 60) -> Any:
    """Adam (lr 1e-2) for `steps` full-batch steps, as the other benchmarks train."""
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(w, activation="tanh") for w in widths[1:-1]]
    model = keras.Sequential([keras.Input((widths[0],)), *layers, keras.layers.Dense(widths[-1])])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=LOSS)
    model.fit(x, y, batch_size=len(x), epochs=steps, verbose=0)
    return model


def gradient_fn(model: Any, x: tf.Tensor, y: tf.Tensor) -> Any:
    @tf.function
    def gradient() -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = LOSS(y, model(x, training=False))
        return tape.gradient(loss, model.trainable_variables)

    return lambda: [g.numpy() for g in gradient()]


def hvp_costs(name: str, model: Any, x: tf.Tensor, y: tf.Tensor) -> None:
    n = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    rng = np.random.default_rng(0)
    vector = tf.constant(rng.standard_normal(n), tf.float32)
    block = tf.constant(rng.standard_normal((n, 8)), tf.float32)
    gradient = gradient_fn(model, x, y)
    print(f"\n{name}: n = {n} parameters, {x.shape[0]} examples, float32")
    print(
        "| product | HVP / gradient | matvec (ms) | matmat k=8 (ms) | per vector / matvec "
        "| first matmat k=8 (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    modes = {
        "forward-over-reverse": {"hvp": "forward-over-reverse"},
        "double backward": {"hvp": "double-backward"},
        "forward-over-reverse, XLA": {"hvp": "forward-over-reverse", "jit_compile": True},
        "double backward, XLA": {"hvp": "double-backward", "jit_compile": True},
    }
    for mode, options in modes.items():
        op = adapters.tf_hessian(model, (x, y), LOSS, **options)
        start = time.perf_counter()
        op.matmat(block).numpy()
        first = time.perf_counter() - start
        # Gradient and product timed alternately, each the best of 10 calls: the ratio
        # is what counts on a shared machine.
        grads, ones, batched = [], [], []
        for _ in range(7):
            grads.append(best(gradient, repeat=10))
            ones.append(best(lambda op=op: op.matvec(vector).numpy(), repeat=10))
            batched.append(best(lambda op=op: op.matmat(block).numpy(), repeat=3))
        one, eight = min(ones), min(batched)
        print(
            f"| {mode} | {one / min(grads):.2f} | {one * 1e3:.2f} | {eight * 1e3:.2f} | "
            f"{eight / 8 / one:.2f} | {first:.2f} |"
        )
    print(f"(one gradient: {min(grads) * 1e3:.2f} ms)")


def chunk_sizes(model: Any, x: tf.Tensor, y: tf.Tensor, k: int = 16) -> None:
    n = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    block = tf.constant(np.random.default_rng(1).standard_normal((n, k)), tf.float32)
    gradient = gradient_fn(model, x, y)
    print(f"\nmatmat of k = {k} vectors, forward-over-reverse, by chunk_size")
    print("| chunk_size | per vector / gradient | first call (s) |")
    print("| ---: | ---: | ---: |")
    for chunk in (1, 4, 8, 16):
        op = adapters.tf_hessian(model, (x, y), LOSS, chunk_size=chunk)
        start = time.perf_counter()
        op.matmat(block).numpy()
        first = time.perf_counter() - start
        ratios = []
        for _ in range(5):
            g = best(gradient, repeat=10)
            ratios.append(best(lambda op=op: op.matmat(block).numpy(), repeat=3) / k / g)
        print(f"| {chunk} | {min(ratios):.2f} | {first:.2f} |")


def main() -> None:
    x, y = digits()
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s), "
        f"GPUs: {len(tf.config.list_logical_devices('GPU'))}, {os.cpu_count()} cores"
    )
    model = trained((64, 200, 10), x, y)
    hvp_costs("MLP 64-200-10 tanh", model, tf.constant(x), tf.constant(y))
    chunk_sizes(model, tf.constant(x), tf.constant(y))


if __name__ == "__main__":
    main()

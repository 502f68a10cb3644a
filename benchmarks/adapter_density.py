"""`slq.density` through each adapter on one network: the adapters' end-to-end time.

Digits (1797 images, bundled with scikit-learn), an MLP 64-200-10 tanh
(n = 15010 parameters, random initialisation), the whole data as one batch,
10 probes x 90 steps, one thread per library; prints the best of three runs
after a warm-up. Used to compare two versions of slq on one machine
(put each on PYTHONPATH in turn, alternating); the peer comparisons are in
torch_hessian.py, jax_hessian.py and tf_hessian.py.

Run:  OMP_NUM_THREADS=1 python benchmarks/adapter_density.py {torch,jax,tf}
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np
from sklearn.datasets import load_digits

import slq
from slq import adapters


def best(run: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time of `repeat` runs after one warm-up."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def operator(framework: str, x: np.ndarray, y: np.ndarray) -> Any:
    """The Hessian of the MLP's cross-entropy on (x, y), through `framework`'s adapter."""
    if framework == "torch":
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 200), torch.nn.Tanh(), torch.nn.Linear(200, 10)
        )
        return adapters.torch_hessian(model, [(torch.as_tensor(x), torch.as_tensor(y))])
    if framework == "jax":
        import jax
        import jax.numpy as jnp

        k1, k2 = jax.random.split(jax.random.PRNGKey(0))
        params = {
            "w1": jax.random.normal(k1, (64, 200)) * 0.1,
            "b1": jnp.zeros(200),
            "w2": jax.random.normal(k2, (200, 10)) * 0.1,
            "b2": jnp.zeros(10),
        }

        def loss(p: Any, batch: Any) -> Any:
            xb, yb = batch
            logits = jnp.tanh(xb @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(yb.shape[0]), yb])

        return adapters.jax_hessian(loss, params, [(jnp.asarray(x), jnp.asarray(y))])
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((64,)),
            tf.keras.layers.Dense(200, activation="tanh"),
            tf.keras.layers.Dense(10),
        ]
    )
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return adapters.tf_hessian(model, [(tf.constant(x), tf.constant(y))], loss)


def main() -> None:
    framework = sys.argv[1] if len(sys.argv) > 1 else "torch"
    x, y = load_digits(return_X_y=True)
    op = operator(framework, (x / 16.0).astype(np.float32), y.astype(np.int64))
    seconds = best(lambda: slq.density(op, num_steps=90, num_probes=10, seed=0))
    print(f"{framework}: {seconds:.2f} s  (slq from {slq.__file__})")


if __name__ == "__main__":
    main()

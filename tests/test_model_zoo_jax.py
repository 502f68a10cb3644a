"""`jax_hessian` on Flax NNX and Linen models with BatchNorm, against dense `jax.hessian`.

An NNX module is passed as it is; its BatchNorm statistics, parameters and RNG
state are the same afterwards, in train mode too, where the loss itself writes
the statistics.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from helpers import Backend, need

need(Backend.JAX)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from slq import adapters  # noqa: E402

jax.config.update("jax_enable_x64", True)
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("flax") is None, reason="flax is not installed"
)
F64 = jnp.float64


def cross_entropy(logits, y):
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])


def batch():
    k1, k2 = jax.random.split(jax.random.key(3))
    return jax.random.normal(k1, (16, 4), F64), jax.random.randint(k2, (16,), 0, 3)


def relative_error(op, dense) -> float:
    v = jax.random.normal(jax.random.key(9), (op.shape[0], 3), F64)
    first, second = np.asarray(op.matmat(v)), np.asarray(op.matmat(v))
    assert np.array_equal(first, second)
    exact = np.asarray(dense) @ np.asarray(v)
    return float((np.linalg.norm(first - exact, axis=0) / np.linalg.norm(exact, axis=0)).max())


def dense_of(loss, params, data):
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda f: loss(unravel(f), data))(flat)


def snapshot(model):
    """Every leaf of the module's state as numpy (RNG keys by their data)."""
    from flax import nnx

    def leaf(a):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a)

    return jax.tree.map(leaf, nnx.state(model))


def make_nnx():
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.l1 = nnx.Linear(4, 6, rngs=rngs, param_dtype=F64, dtype=F64)
            self.bn = nnx.BatchNorm(6, rngs=rngs, param_dtype=F64, dtype=F64)
            self.drop = nnx.Dropout(0.5, rngs=rngs)
            self.l2 = nnx.Linear(6, 3, rngs=rngs, param_dtype=F64, dtype=F64)

        def __call__(self, x):
            return self.l2(self.drop(jnp.tanh(self.bn(self.l1(x)))))

    model = Net(nnx.Rngs(0))
    # Flax keeps BatchNorm statistics in float32; a float64 model needs them in float64.
    stats = nnx.state(model, nnx.BatchStat)
    nnx.update(model, jax.tree.map(lambda a: a.astype(F64), stats))
    model.train()  # BatchNorm statistics: not trivial
    model(batch()[0] + 0.5)
    return model


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_nnx_module_with_batchnorm_is_exact_and_untouched(mode: str) -> None:
    from flax import nnx

    model = make_nnx()
    model.train() if mode == "train" else model.eval()
    model.drop.deterministic = True  # dropout off: the loss is one fixed function
    before = snapshot(model)
    x, y = batch()

    def loss(module, data):
        return cross_entropy(module(data[0]), data[1])

    op = adapters.jax_hessian(loss, model, (x, y))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def reference(p, data):
        return loss(nnx.merge(graphdef, p, rest, copy=True), data)

    assert relative_error(op, dense_of(reference, params, (x, y))) <= 1e-10
    after = snapshot(model)
    assert jax.tree.all(jax.tree.map(np.array_equal, before, after))
    assert isinstance(op.unflatten(jnp.zeros(op.shape[0], F64)), nnx.State)


@pytest.mark.parametrize("train", [True, False])
def test_linen_with_batchnorm(train: bool) -> None:
    from flax import linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dense(6, param_dtype=F64, dtype=F64)(x)
            x = nn.BatchNorm(use_running_average=not train, param_dtype=F64, dtype=F64)(x)
            return nn.Dense(3, param_dtype=F64, dtype=F64)(jnp.tanh(x))

    net, (x, y) = Net(), batch()
    variables = net.init(jax.random.key(0), x, train=False)
    # Flax keeps BatchNorm statistics in float32; a float64 model needs them in float64.
    stats = jax.tree.map(lambda a: a.astype(F64), variables["batch_stats"])

    def loss(params, data):
        inputs = {"params": params, "batch_stats": stats}
        if train:  # the updated statistics are computed and dropped
            logits = net.apply(inputs, data[0], train=True, mutable=["batch_stats"])[0]
        else:
            logits = net.apply(inputs, data[0], train=False)
        return cross_entropy(logits, data[1])

    op = adapters.jax_hessian(loss, variables["params"], (x, y))
    assert relative_error(op, dense_of(loss, variables["params"], (x, y))) <= 1e-10

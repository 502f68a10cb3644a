"""`adapters.jax_hessian` against dense `jax.hessian`."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import Backend, check_extreme_eigenvalues, need
from hypothesis import given, settings
from hypothesis import strategies as st
from threads import ONE_THREAD

need(Backend.JAX)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

jax.config.update("jax_enable_x64", True)


def init_mlp(widths, seed=0, dtype=jnp.float64):
    keys = jax.random.split(jax.random.key(seed), len(widths))
    return [
        {"w": jax.random.normal(k, (a, b), dtype) / float(np.sqrt(a)), "b": jnp.zeros(b, dtype)}
        for k, a, b in zip(keys, widths[:-1], widths[1:], strict=False)
    ]


def mlp_apply(params, x, activation=jnp.tanh):
    for layer in params[:-1]:
        x = activation(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def cross_entropy(logits, y):
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])


def mlp_loss(params, batch):
    x, y = batch
    return cross_entropy(mlp_apply(params, x), y)


def data(n, features=4, classes=3, seed=0, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((n, features)), dtype), jnp.asarray(
        rng.integers(0, classes, n)
    )


def split(batch, sizes):
    cuts = np.cumsum([0, *sizes])
    return [tuple(a[s:e] for a in batch) for s, e in itertools.pairwise(cuts)]


def dense_hessian(loss_fn, params, batches):
    flat, unravel = ravel_pytree(params)
    sizes = [b[0].shape[0] if isinstance(b, tuple) else b["x"].shape[0] for b in batches]

    def total(f):
        p = unravel(f)
        return sum(n * loss_fn(p, b) for n, b in zip(sizes, batches, strict=True)) / sum(sizes)

    return np.asarray(jax.jit(jax.hessian(total))(flat))


def check_products(op, dense, rtol=1e-10):
    v = jnp.asarray(np.random.default_rng(1).standard_normal((op.shape[0], 3)), op.dtype)
    scale = np.abs(dense).max()
    np.testing.assert_allclose(
        np.asarray(op.matmat(v)), dense @ np.asarray(v), rtol=rtol, atol=rtol * scale
    )
    np.testing.assert_allclose(
        np.asarray(op.matvec(v[:, 0])), dense @ np.asarray(v[:, 0]), rtol=rtol, atol=rtol * scale
    )


@pytest.mark.parametrize("reuse_primal", [False, True])
def test_mlp_matches_the_dense_hessian(reuse_primal: bool) -> None:
    params = init_mlp((4, 6, 3))
    batch = data(40)
    op = adapters.jax_hessian(mlp_loss, params, batch, reuse_primal=reuse_primal)
    assert op.hvp.startswith("linearized") == reuse_primal
    dense = dense_hessian(mlp_loss, params, [batch])
    check_products(op, dense)
    check_extreme_eigenvalues(op, dense)


def conv_loss(params, batch):
    x, y = batch  # x: (N, 1, 6, 6)
    h = jax.lax.conv_general_dilated(x, params["kernel"], (1, 1), "VALID")
    h = jnp.tanh(h + params["bias"][None, :, None, None]).reshape(x.shape[0], -1)
    return cross_entropy(h @ params["head"], y)


def test_conv_net_matches_the_dense_hessian() -> None:
    keys = jax.random.split(jax.random.key(1), 3)
    params = {
        "kernel": jax.random.normal(keys[0], (2, 1, 3, 3), jnp.float64) / 3,
        "bias": jnp.zeros(2, jnp.float64),
        "head": jax.random.normal(keys[1], (2 * 4 * 4, 3), jnp.float64) / 6,
    }
    x = jax.random.normal(keys[2], (24, 1, 6, 6), jnp.float64)
    y = jnp.arange(24) % 3
    batches = split((x, y), [12, 12])
    op = adapters.jax_hessian(conv_loss, params, batches)
    dense = dense_hessian(conv_loss, params, batches)
    check_products(op, dense)
    check_extreme_eigenvalues(op, dense)


def bn_loss(params, state, batch, train):
    """A BatchNorm-style layer: batch statistics in train mode, stored ones in eval mode."""
    x, y = batch
    h = x @ params["w1"]
    mean, var = (h.mean(0), h.var(0)) if train else (state["mean"], state["var"])
    h = jnp.tanh((h - mean) / jnp.sqrt(var + 1e-5) * params["scale"])
    new_state = {"mean": 0.9 * state["mean"] + 0.1 * h.mean(0), "var": state["var"]}
    return cross_entropy(h @ params["w2"], y), new_state


@pytest.mark.parametrize("train", [True, False])
def test_model_with_batchnorm_state_in_both_modes(train: bool) -> None:
    keys = jax.random.split(jax.random.key(2), 2)
    params = {
        "w1": jax.random.normal(keys[0], (4, 5), jnp.float64),
        "scale": jnp.ones(5, jnp.float64),
        "w2": jax.random.normal(keys[1], (5, 3), jnp.float64),
    }
    state = {"mean": jnp.full(5, 0.1), "var": jnp.full(5, 2.0)}
    before = jax.tree_util.tree_map(lambda a: a.copy(), state)

    def loss_fn(p, batch):  # closes over the state; the updated state is discarded
        return bn_loss(p, state, batch, train)[0]

    batches = split(data(30), [15, 15])
    op = adapters.jax_hessian(loss_fn, params, batches)
    check_products(op, dense_hessian(loss_fn, params, batches))
    jax.tree_util.tree_map(np.testing.assert_array_equal, state, before)


@pytest.mark.parametrize("train", [True, False])
def test_equinox_batchnorm_in_both_modes(train: bool) -> None:
    import equinox as eqx

    key = jax.random.key(3)
    model, state = eqx.nn.make_with_state(eqx.nn.Sequential)(
        [
            eqx.nn.Linear(4, 5, key=key, dtype=jnp.float64),
            eqx.nn.BatchNorm(5, axis_name="batch", mode="batch", dtype=jnp.float64),
            eqx.nn.Lambda(jnp.tanh),
            eqx.nn.Linear(5, 3, key=jax.random.fold_in(key, 1), dtype=jnp.float64),
        ]
    )
    model = model if train else eqx.nn.inference_mode(model)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    before = jax.tree_util.tree_map(np.asarray, state)

    def loss_fn(p, batch):
        net = eqx.combine(p, static)
        apply = jax.vmap(net, axis_name="batch", in_axes=(0, None), out_axes=(0, None))
        return cross_entropy(apply(batch[0], state)[0], batch[1])

    batches = split(data(24), [12, 12])
    op = adapters.jax_hessian(loss_fn, params, batches)
    check_products(op, dense_hessian(loss_fn, params, batches))
    jax.tree_util.tree_map(np.testing.assert_array_equal, state, before)


# Every drawn model compiles its own products (3 s each): fewer examples than the core's tests.
@settings(max_examples=max(1, settings.default.max_examples // 4))
@given(
    widths=st.lists(st.integers(2, 5), min_size=1, max_size=2),
    n=st.integers(6, 30),
    pieces=st.integers(1, 3),
    reuse=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_drawn_models_match_their_dense_hessian(widths, n, pieces, reuse, seed) -> None:
    params = init_mlp((3, *widths, 2), seed)
    batch = data(n, features=3, classes=2, seed=seed)
    cuts = np.linspace(0, n, pieces + 1).astype(int)
    batches = split(batch, [int(b - a) for a, b in itertools.pairwise(cuts)])
    batches = [b for b in batches if b[0].shape[0] > 0]
    op = adapters.jax_hessian(mlp_loss, params, batches, reuse_primal=reuse)
    check_products(op, dense_hessian(mlp_loss, params, batches), rtol=1e-9)


@pytest.mark.parametrize("sizes", [[40], [10, 30], [7, 13, 20]])
def test_operator_does_not_depend_on_the_batch_split(sizes) -> None:
    params = init_mlp((4, 6, 3))
    batch = data(40)
    whole = adapters.jax_hessian(mlp_loss, params, batch)
    parts = adapters.jax_hessian(mlp_loss, params, split(batch, sizes))
    v = jnp.asarray(np.random.default_rng(0).standard_normal((whole.shape[0], 2)))
    np.testing.assert_allclose(
        np.asarray(parts.matmat(v)), np.asarray(whole.matmat(v)), rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("reuse_primal", [False, True])
def test_compiles_once_per_batch_shape_not_per_product(reuse_primal: bool) -> None:
    def loss(params, batch):  # a loss of its own: nothing compiled for it yet
        return mlp_loss(params, batch)

    params, batches = init_mlp((4, 6, 3)), split(data(37), [10, 10, 10, 7])
    op = adapters.jax_hessian(loss, params, batches, reuse_primal=reuse_primal)
    v = jnp.ones((op.shape[0], 2))
    op.matmat(v)
    op.matvec(v[:, 0])
    assert op.traces == 4  # (2 batch shapes) x (2 numbers of columns)
    for _ in range(5):
        op.matmat(v)
        op.matvec(v[:, 0])
    assert op.traces == 4
    # An operator made again, at other parameters, shares the compiled products.
    again = adapters.jax_hessian(
        loss, init_mlp((4, 6, 3), seed=1), batches, reuse_primal=reuse_primal
    )
    again.matmat(v)
    again.matvec(v[:, 0])
    assert again.traces == 0


def test_chunked_and_streamed_equal_the_default() -> None:
    params = init_mlp((4, 6, 3))
    batches = split(data(30), [10, 20])
    v = jnp.asarray(np.random.default_rng(0).standard_normal((51, 5)))
    reference = adapters.jax_hessian(mlp_loss, params, batches).matmat(v)
    for options in (
        {"chunk_size": 2},
        {"chunk_size": 8},  # more than the 5 columns: all vmapped at once
        {"cache_data": False},
        {"reuse_primal": False, "chunk_size": 3},
    ):
        out = adapters.jax_hessian(mlp_loss, params, batches, **options).matmat(v)
        np.testing.assert_allclose(np.asarray(out), np.asarray(reference), rtol=1e-12, atol=1e-13)


def test_float32_parameters() -> None:
    params = init_mlp((4, 6, 3), dtype=jnp.float32)
    batch = data(40, dtype=jnp.float32)
    op = adapters.jax_hessian(mlp_loss, params, batch)
    assert op.dtype == jnp.float32
    wide = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
    dense = dense_hessian(mlp_loss, wide, [(batch[0].astype(jnp.float64), batch[1])])
    check_products(op, dense.astype(np.float32), rtol=1e-4)


def test_flatten_unflatten_and_dict_batches() -> None:
    params = init_mlp((4, 6, 3))
    x, y = data(20)

    def dict_loss(p, batch):
        return cross_entropy(mlp_apply(p, batch["x"]), batch["y"])

    op = adapters.jax_hessian(
        dict_loss, params, [{"x": x[:8], "y": y[:8]}, {"x": x[8:], "y": y[8:]}]
    )
    assert op.num_examples == 20 and op.num_batches == 2
    v = jnp.arange(op.shape[0], dtype=jnp.float64)
    tree = op.unflatten(v)
    assert tree[0]["w"].shape == (4, 6)
    np.testing.assert_array_equal(np.asarray(op.flatten(tree)), np.asarray(v))


def test_nan_on_a_later_batch_names_it() -> None:
    x, y = data(30)
    x = x.at[25, 0].set(jnp.nan)
    op = adapters.jax_hessian(mlp_loss, init_mlp((4, 6, 3)), split((x, y), [10, 10, 10]))
    with pytest.raises(FloatingPointError, match=r"not finite on batch 2 \(the loss is nan\)"):
        op.matvec(jnp.ones(op.shape[0]))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": []}, ValueError, "data is empty"),
        (
            {"params": {"w": jnp.ones((4, 3), dtype=jnp.int32)}},
            TypeError,
            r"params leaf \['w'\] has dtype int32: parameters must be floating point",
        ),
        ({"params": {"w": "weights"}}, TypeError, r"params leaf \['w'\] is a str, not an array"),
        ({"params": {}}, ValueError, "params has no array leaves"),
        (
            {"loss_fn": lambda p, b: jnp.ones(3)},
            ValueError,
            r"loss_fn must return a scalar \(the batch mean\), got shape \(3,\)",
        ),
        ({"loss_fn": "cross_entropy"}, TypeError, "loss_fn must be callable"),
        (
            {"data": (jnp.ones((5, 4)), jnp.zeros(4, dtype=jnp.int32))},
            ValueError,
            r"batch 0: its arrays have leading axes of sizes \[4, 5\]",
        ),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1, got 0"),
    ],
)
def test_bad_input(kwargs, error, message) -> None:
    params = {"w": jnp.ones((4, 3))}

    def loss(p, batch):
        return cross_entropy(batch[0] @ p["w"], batch[1])

    arguments = {"loss_fn": loss, "params": params, "data": data(10)} | kwargs
    with pytest.raises(error, match=message):
        adapters.jax_hessian(
            arguments.pop("loss_fn"), arguments.pop("params"), arguments.pop("data"), **arguments
        )


class Reshuffled:
    """Batches of one dataset in a new random order on every pass (a re-shuffling loader)."""

    def __init__(self, n: int = 32, size: int = 8) -> None:
        self.x, self.y = (np.asarray(a) for a in data(n))
        self.size, self.rng = size, np.random.default_rng(0)

    def __iter__(self):
        order = self.rng.permutation(len(self.y))
        for start in range(0, len(order), self.size):
            pick = order[start : start + self.size]
            yield jnp.asarray(self.x[pick]), jnp.asarray(self.y[pick])


class Augmented:
    """Re-iterable batches, batch 1 with new random noise on every pass."""

    def __init__(self) -> None:
        self.batches, self.rng = split(data(30), [10, 10, 10]), np.random.default_rng(0)

    def __iter__(self):
        for i, (x, y) in enumerate(self.batches):
            yield (x + self.rng.normal(0, 0.1, x.shape) if i == 1 else x), y


def test_a_wrong_linearized_gradient_is_discarded_when_built(monkeypatch, caplog, request) -> None:
    """Never silently wrong: the linearized gradient is checked against a fresh jvp of grad."""
    from slq.adapters import _jax_products

    right = _jax_products._hvp_linear

    def doubled(linear, unravel, tangents, chunk):
        return 2 * right(linear, unravel, tangents, chunk)

    monkeypatch.setattr(_jax_products, "_hvp_linear", doubled)
    # The programs are compiled once per loss: forget them before and after.
    for cached in (_jax_products.checked_products, _jax_products.programs):
        cached.cache_clear()
        request.addfinalizer(cached.cache_clear)
    params, batch = init_mlp((4, 6, 3)), data(40)
    with caplog.at_level(logging.WARNING, logger="slq"):
        op = adapters.jax_hessian(mlp_loss, params, batch, reuse_primal=True)
    assert "linearized gradient discarded" in caplog.text
    assert "differs from a fresh jvp of grad product by 1.0e+00" in caplog.text
    assert op.hvp == "jvp of grad"
    check_products(op, dense_hessian(mlp_loss, params, [batch]))
    # The compiled run linearizes inside its program only where the check passed.
    plain = adapters.jax_hessian(mlp_loss, params, batch, reuse_primal=False)
    got, want = (slq.density(o, num_steps=12, num_probes=2, seed=0) for o in (op, plain))
    np.testing.assert_allclose(got.nodes, want.nodes, rtol=1e-10, atol=1e-12)


def test_a_linearized_gradient_that_passes_logs_nothing(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="slq"):
        op = adapters.jax_hessian(mlp_loss, init_mlp((4, 6, 3)), data(40), reuse_primal=True)
    assert op.hvp.startswith("linearized") and caplog.text == ""


def test_the_linearized_check_refuses_unrepeatable_and_failing_products() -> None:
    from slq.adapters._jax_verify import linearized_disagreement

    fresh = jnp.ones((3, 2))
    calls = iter(range(10))
    drifting = lambda: (jnp.full((3, 2), float(next(calls))), fresh)  # noqa: E731
    assert linearized_disagreement(drifting, jnp.float64) == "two products of one vector differ"

    def failing():
        raise ValueError("no linearization rule")

    assert linearized_disagreement(failing, jnp.float64) == "it failed: no linearization rule"
    nan = lambda: (jnp.full((3, 2), jnp.nan), fresh)  # noqa: E731
    assert "differs from a fresh" in linearized_disagreement(nan, jnp.float64)


def test_operators_of_one_loss_share_the_compiled_check() -> None:
    from slq.adapters import _jax_products

    params, batch = init_mlp((4, 6, 3)), data(40)
    adapters.jax_hessian(mlp_loss, params, batch, reuse_primal=True)
    compiled = _jax_products.checked_products(None)._cache_size()
    moved = jax.tree_util.tree_map(lambda a: a + 0.5, params)
    op = adapters.jax_hessian(mlp_loss, moved, batch, reuse_primal=True)
    assert _jax_products.checked_products(None)._cache_size() == compiled
    assert op.hvp.startswith("linearized")


def test_data_that_changes_between_passes_is_refused_naming_the_batch() -> None:
    params = init_mlp((4, 6, 3))
    with pytest.raises(ValueError, match=r"batch 0 of the data changed between passes \(its"):
        adapters.jax_hessian(mlp_loss, params, Reshuffled(), cache_data=False)
    op = adapters.jax_hessian(mlp_loss, params, Augmented(), cache_data=False, reuse_primal=False)
    with pytest.raises(ValueError, match=r"batch 1 of the data changed between passes"):
        op.matvec(jnp.ones(op.shape[0]))
    with pytest.raises(ValueError, match=r"batch 1 of the data changed between passes"):
        adapters.jax_hessian(mlp_loss, params, Augmented(), cache_data=False)  # linearizing: a pass
    with pytest.raises(ValueError, match=r"data must be re-iterable .* a generator is used up"):
        adapters.jax_hessian(
            mlp_loss, params, (b for b in split(data(20), [10, 10])), cache_data=False
        )


class Unread:
    """Data that fails the test if it is read: every argument is checked before."""

    def __iter__(self):
        raise AssertionError("data was read before the arguments were checked")


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("loss_fn", None, TypeError, r"loss_fn must be callable as loss_fn\(params, batch\)"),
        ("params", {"w": np.ones(3, np.int64)}, TypeError, r"params leaf \['w'\] has dtype int64"),
        ("data", None, TypeError, "data must be one batch or an iterable of batches"),
        ("batch_size", 8, TypeError, r"batch_size must be callable as batch_size\(batch\)"),
        ("reuse_primal", "yes", TypeError, "reuse_primal must be True, False or None, got 'yes'"),
        ("chunk_size", 1.5, TypeError, "chunk_size must be an integer >= 1, got 1.5"),
        ("cache_data", "yes", TypeError, "cache_data must be True, False or None, got 'yes'"),
        ("shard", "yes", TypeError, "shard must be True or False, got 'yes'"),
    ],
)
def test_every_argument_is_checked_before_the_data_is_read(name, value, error, message) -> None:
    arguments = {"loss_fn": mlp_loss, "params": init_mlp((4, 6, 3)), "data": Unread(), name: value}
    with pytest.raises(error, match=message):
        adapters.jax_hessian(
            arguments.pop("loss_fn"), arguments.pop("params"), arguments.pop("data"), **arguments
        )


def test_traced_values_are_refused_inside_jit_and_vmap() -> None:
    params, batch = init_mlp((4, 6, 3)), data(10)
    with pytest.raises(TypeError, match=r"params leaf \[0\]\['b'\] is a traced value: jax_hes"):
        jax.jit(lambda p: adapters.jax_hessian(mlp_loss, p, batch).shape[0])(params)
    with pytest.raises(TypeError, match=r"batch 0's leaf \[0\] is a traced value"):
        jax.jit(lambda x: adapters.jax_hessian(mlp_loss, params, (x, batch[1])).shape[0])(batch[0])
    op = adapters.jax_hessian(mlp_loss, params, batch)
    v = jnp.ones(op.shape[0])
    for transformed in (lambda: jax.jit(op.matvec)(v), lambda: jax.vmap(op.matvec)(v[None])):
        with pytest.raises(TypeError, match="the vector is a traced value: jax_hessian was called"):
            transformed()


def test_parameters_as_numpy_arrays_of_one_exact_dtype() -> None:
    params = init_mlp((4, 6, 3))
    as_numpy = jax.tree.map(np.asarray, params)
    v = jnp.asarray(np.random.default_rng(0).standard_normal(51))
    expected = adapters.jax_hessian(mlp_loss, params, data(10)).matvec(v)
    got = adapters.jax_hessian(mlp_loss, as_numpy, data(10)).matvec(v)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-12, atol=1e-14)
    with jax.enable_x64(False), pytest.raises(TypeError, match=r"is float64, which JAX would make"):
        adapters.jax_hessian(mlp_loss, as_numpy, data(10, dtype=jnp.float32))
    mixed = [params[0], jax.tree.map(lambda p: p.astype(jnp.float32), params[1])]
    with pytest.raises(TypeError, match=r"params leaves must share one dtype, got float64 \(\[0\]"):
        adapters.jax_hessian(mlp_loss, mixed, data(10))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_a_loss_computing_in_less_precision_than_its_parameters_warns(caplog, dtype) -> None:
    def cast_loss(params, batch):
        x, y = batch
        hidden = jnp.tanh(x.astype(dtype) @ params[0]["w"].astype(dtype))  # depends on θ
        noise = jnp.sum(x.astype(dtype)).astype(jnp.float64)  # does not
        return cross_entropy(hidden.astype(jnp.float64) @ params[1]["w"], y) + 0 * noise

    with caplog.at_level(logging.WARNING, logger="slq"):
        adapters.jax_hessian(cast_loss, init_mlp((4, 6, 3)), data(10))
    name = jnp.dtype(dtype).name
    assert f"the loss computes in {name} where it depends on the parameters" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="slq"):
        adapters.jax_hessian(
            lambda p, b: mlp_loss(p, b) + 0 * jnp.sum(b[0].astype(dtype)),
            init_mlp((4, 6, 3)),
            data(10),
        )
    assert caplog.text == ""


def test_an_array_is_one_batch() -> None:
    def loss(params, x):
        return jnp.mean((x @ params["w"]) ** 2)

    op = adapters.jax_hessian(loss, {"w": jnp.ones(3)}, jnp.ones((4, 3)))
    assert (op.num_examples, op.num_batches) == (4, 1)


def test_nan_loss_on_the_first_batch() -> None:
    x, y = data(10)
    with pytest.raises(FloatingPointError, match="the loss is nan on batch 0"):
        adapters.jax_hessian(mlp_loss, init_mlp((4, 6, 3)), (x.at[0, 0].set(jnp.nan), y))


@pytest.mark.parametrize(
    ("vector", "error", "message"),
    [
        (np.ones(51), TypeError, "expected a jax array, got ndarray"),
        (jnp.ones(50), ValueError, r"expected a vector of shape \(51,\), got \(50,\)"),
        (
            jnp.ones(51, dtype=jnp.float32),
            TypeError,
            "expected dtype float64 .the parameters'., got float32",
        ),
    ],
)
def test_bad_vectors(vector, error, message) -> None:
    op = adapters.jax_hessian(mlp_loss, init_mlp((4, 6, 3)), data(10))
    with pytest.raises(error, match=message):
        op.matvec(vector)


SHARDED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from slq import adapters
    import slq
    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.standard_normal((4, 6))),
              "w2": jnp.asarray(rng.standard_normal((6, 3)))}
    x, y = jnp.asarray(rng.standard_normal((48, 4))), jnp.asarray(rng.integers(0, 3, 48))
    def loss(p, b):
        logits = jnp.tanh(b[0] @ p["w1"]) @ p["w2"]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(b[1].shape[0]), b[1]])
    batches = [(x[:24], y[:24]), (x[24:], y[24:])]
    v = jnp.asarray(rng.standard_normal((42, 3)))
    for reuse in (False, True):
        plain = adapters.jax_hessian(loss, params, batches, reuse_primal=reuse)
        sharded = adapters.jax_hessian(loss, params, batches, shard=True, reuse_primal=reuse)
        np.testing.assert_allclose(
            np.asarray(sharded.matmat(v)), np.asarray(plain.matmat(v)), rtol=1e-12, atol=1e-12
        )
    a = slq.density(sharded, num_steps=20, num_probes=2, seed=0)
    b = slq.density(plain, num_steps=20, num_probes=2, seed=0)
    np.testing.assert_allclose(a.alpha, b.alpha, rtol=1e-10)
    try:
        adapters.jax_hessian(loss, params, (x[:10], y[:10]), shard=True)
    except ValueError as err:
        assert "not a multiple of the 4 devices" in str(err), err
    else:
        raise AssertionError("a batch of 10 over 4 devices was accepted")
    print("ok")
    """
)


def test_sharded_over_four_devices_equals_unsharded() -> None:
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count=4 {ONE_THREAD['XLA_FLAGS']}",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-I", "-c", SHARDED], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_shard_on_one_device_is_the_plain_operator() -> None:
    params, batch = init_mlp((4, 6, 3)), data(10)
    v = jnp.ones((51, 2))
    sharded = adapters.jax_hessian(mlp_loss, params, batch, shard=True).matmat(v)
    plain = adapters.jax_hessian(mlp_loss, params, batch).matmat(v)
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(plain), rtol=1e-12)


def _gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU backend in this jaxlib
        return []


@pytest.mark.cuda
@pytest.mark.skipif(not _gpus(), reason="needs a CUDA GPU")
def test_gpu_run_stays_on_the_gpu() -> None:
    gpu = _gpus()[0]
    params = jax.device_put(init_mlp((4, 6, 3)), gpu)
    batch = jax.device_put(data(40), gpu)
    op = adapters.jax_hessian(mlp_loss, params, batch)
    assert op.device.platform == "gpu"
    v0 = jax.device_put(jnp.ones((op.shape[0], 2)), op.device)
    result = slq.lanczos(op, v0, 10, return_basis=True)
    assert {d.platform for d in result.basis.devices()} == {"gpu"}
    dense = dense_hessian(mlp_loss, jax.device_get(params), [jax.device_get(batch)])
    check_products(op, dense)

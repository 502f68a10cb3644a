"""A convolutional loss on the CPU: each column its own program, the run stepped from the host.

XLA's CPU convolutions run several times slower inside a loop's body
(jax-ml/jax#12868), so `jax_hessian` keeps them out of loops there: the
products of every column are separate programs and the Lanczos run steps from
the host instead of compiling as one program. The same numbers either way.
"""

from __future__ import annotations

import numpy as np
from helpers import Backend, need

need(Backend.JAX)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from slq.adapters._jax_checks import slow_in_cpu_loops  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402
from slq._reorthogonalization import policy  # noqa: E402

jax.config.update("jax_enable_x64", True)


def conv_loss(params, batch):
    """A 2-channel 3x3 convolution, tanh, a linear readout: mean squared error."""
    x, y = batch
    h = jax.lax.conv_general_dilated(x, params["kernel"], (1, 1), "VALID")
    h = jnp.tanh(h + params["bias"][None, :, None, None])
    return jnp.mean((h.reshape(h.shape[0], -1) @ params["w"] - y) ** 2)


def problem():
    keys = jax.random.split(jax.random.key(0), 4)
    params = {
        "kernel": 0.5 * jax.random.normal(keys[0], (2, 1, 3, 3)),
        "bias": jnp.zeros(2),
        "w": 0.2 * jax.random.normal(keys[1], (2 * 4 * 4, 1)),
    }
    x = jax.random.normal(keys[2], (12, 1, 6, 6))
    return params, (x, jax.random.normal(keys[3], (12, 1)))


PARAMS, BATCH = problem()
N = ravel_pytree(PARAMS)[0].size


def dense_hessian() -> np.ndarray:
    flat, unravel = ravel_pytree(PARAMS)
    return np.asarray(jax.hessian(lambda f: conv_loss(unravel(f), BATCH))(flat))


def test_convolutions_are_found_in_nested_programs() -> None:
    nested = jax.jit(lambda p, b: jax.checkpoint(conv_loss)(p, b))
    assert slow_in_cpu_loops(jax.make_jaxpr(nested)(PARAMS, BATCH))
    dense = lambda p, b: jnp.mean((b[0].reshape(12, -1)[:, :2] @ p["bias"]) ** 2)  # noqa: E731
    assert not slow_in_cpu_loops(jax.make_jaxpr(dense)(PARAMS, BATCH))


def test_each_column_is_its_own_program_and_exact() -> None:
    op = adapters.jax_hessian(conv_loss, PARAMS, BATCH)
    assert op.hvp.endswith("a program per column, runs stepped (convolutions on the CPU)")
    v = jnp.asarray(np.random.default_rng(0).standard_normal((N, 3)))
    dense = dense_hessian()
    scale = np.abs(dense).max()
    np.testing.assert_allclose(np.asarray(op.matmat(v)), dense @ np.asarray(v), atol=1e-12 * scale)
    np.testing.assert_allclose(
        np.asarray(op.matvec(v[:, 1])), dense @ np.asarray(v[:, 1]), atol=1e-12 * scale
    )
    assert op.traces == 1  # one program for one column, however many columns
    op.matmat(v[:, :2])
    assert op.traces == 1


def test_the_run_steps_from_the_host_and_agrees_with_one_program() -> None:
    stepped = adapters.jax_hessian(conv_loss, PARAMS, BATCH)
    looped = adapters.jax_hessian(conv_loss, PARAMS, BATCH, chunk_size=1)  # chosen: in loops
    full = policy("full")
    assert stepped.traceable_product().fast_in_loop is False
    assert (
        slq.aslinearoperator(stepped).backend.lanczos_program(
            slq.aslinearoperator(stepped), full, False
        )
        is None
    )
    assert looped.traceable_product().fast_in_loop is True
    got, want = (slq.density(o, num_steps=10, num_probes=3, seed=0) for o in (stepped, looped))
    np.testing.assert_allclose(got.nodes, want.nodes, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.weights, want.weights, rtol=1e-9, atol=1e-12)


def test_inside_a_users_jit_the_run_is_one_program() -> None:
    op = adapters.jax_hessian(conv_loss, PARAMS, BATCH)
    v0 = jnp.asarray(np.random.default_rng(2).standard_normal((N, 2)))
    traced = jax.jit(lambda v: slq.lanczos(op, v, 6).alpha)(v0)
    eager = slq.lanczos(op, v0, 6).alpha
    np.testing.assert_allclose(np.asarray(traced), np.asarray(eager), rtol=1e-10, atol=1e-12)

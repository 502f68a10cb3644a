"""A batch's whole Lanczos run compiled as one XLA program, against the eager engine.

JAX test time is compile time: every test shares the few shapes below (n = 24,
m = 8, k = 3), so that most programs are compiled once for the whole file.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Backend, assert_close, need, symmetric_with_spectrum

need(Backend.JAX)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

jax.config.update("jax_enable_x64", True)

N, M, K = 24, 8, 3
SPECTRUM = np.linspace(-1.0, 3.0, N)
MATRIX = jnp.asarray(symmetric_with_spectrum(SPECTRUM, seed=0))
V0 = jnp.asarray(np.random.default_rng(1).standard_normal((N, K)))


def eager(a: jax.Array) -> slq.LinearOperator:
    """The same matrix through an opaque callable: products one step at a time."""
    return slq.aslinearoperator(lambda v: a @ v, shape=a.shape, like=a)


def traced_counter() -> tuple[slq.LinearOperator, list[int]]:
    """A traceable callable that counts how often it is traced (compiled)."""
    traces = [0]

    def product(v: jax.Array) -> jax.Array:
        traces[0] += 1
        return MATRIX @ v

    return slq.aslinearoperator(product, shape=(N, N), like=MATRIX, traceable=True), traces


def assert_same_run(compiled: slq.LanczosResult, reference: slq.LanczosResult) -> None:
    np.testing.assert_array_equal(compiled.lengths, reference.lengths)
    assert compiled.num_matvecs == reference.num_matvecs
    assert compiled.num_reorthogonalizations == reference.num_reorthogonalizations
    assert_close(compiled.alpha, reference.alpha, scale=3.0)
    assert_close(compiled.beta, reference.beta, scale=3.0)
    assert_close(compiled.residual_norm, reference.residual_norm, scale=3.0)


@pytest.mark.parametrize("reorthogonalize", ["full", "none", "partial"])
def test_compiled_run_equals_the_eager_engine(reorthogonalize: str) -> None:
    compiled = slq.lanczos(MATRIX, V0, M, reorthogonalize=reorthogonalize, return_basis=True)
    reference = slq.lanczos(eager(MATRIX), V0, M, reorthogonalize=reorthogonalize)
    assert isinstance(compiled.alpha, np.ndarray) and compiled.alpha.dtype == np.float64
    assert_same_run(compiled, reference)
    assert isinstance(compiled.basis, jax.Array) and compiled.basis.shape == (K, N, M)
    for q in np.asarray(compiled.basis):  # a basis of M << N vectors: orthonormal anyway
        assert_close(q.T @ q, np.eye(M), scale=1.0, factor=10.0)


def test_breakdown_per_probe_as_the_eager_engine() -> None:
    # Three distinct eigenvalues: a generic probe breaks down after 3 steps; e_0 is an
    # eigenvector, so its probe stops after one.
    a = jnp.diag(jnp.asarray(np.repeat([1.0, 2.0, 5.0], N // 3)))
    v0 = V0.at[:, 0].set(jnp.eye(N)[0])
    compiled = slq.lanczos(a, v0, M)
    reference = slq.lanczos(eager(a), v0, M)
    np.testing.assert_array_equal(compiled.lengths, [1, 3, 3])
    assert compiled.alpha.shape == (K, 3) and compiled.num_matvecs == 3 * K
    assert_same_run(compiled, reference)
    assert (compiled.beta[0] == 0).all() and (compiled.residual_norm == 0).all()


def test_an_operator_of_extreme_scale_gives_the_same_relative_answer() -> None:
    huge = slq.lanczos(MATRIX * 2.0**300, V0, M)
    plain = slq.lanczos(MATRIX, V0, M)
    assert_close(huge.alpha / 2.0**300, plain.alpha, scale=3.0)
    assert_close(huge.beta / 2.0**300, plain.beta, scale=3.0)


def test_a_second_run_and_a_second_operator_compile_nothing() -> None:
    op, traces = traced_counter()
    slq.lanczos(op, V0, M)
    compiled = traces[0]
    slq.lanczos(op, V0, M)
    slq.density(op, num_steps=M, num_probes=K, seed=0)  # the same shapes: (K, N)
    assert traces[0] == compiled


def test_density_callbacks_see_every_step_after_the_batch() -> None:
    steps, eager_steps = [], []
    options = {"num_steps": M, "num_probes": 2 * K, "probe_batch_size": K, "seed": 0}
    dos = slq.density(MATRIX, **options, callback=steps.append)
    reference = slq.density(eager(MATRIX), **options, callback=eager_steps.append)
    assert [(s.probes, s.step) for s in steps] == [(s.probes, s.step) for s in eager_steps]
    assert len(steps) == 2 * M
    for step, other in zip(steps, eager_steps, strict=True):
        assert_close(step.alpha, other.alpha, scale=3.0)
    assert_close(dos.alpha, reference.alpha, scale=3.0)
    assert dos.num_matvecs == reference.num_matvecs == 2 * K * M


def test_non_finite_products_name_probe_and_step() -> None:
    def product(v: jax.Array) -> jax.Array:  # NaN for a vector along e_0 only
        return MATRIX @ v + jnp.where(jnp.abs(v[0]) > 0.5, jnp.nan, 0.0)

    v0 = V0.at[:, 1].set(jnp.eye(N)[0])
    op = slq.aslinearoperator(product, shape=(N, N), like=MATRIX, traceable=True)
    with pytest.raises(FloatingPointError) as eager_error:
        slq.lanczos(slq.aslinearoperator(product, shape=(N, N), like=MATRIX), v0, M)
    with pytest.raises(FloatingPointError, match="at Lanczos step 1 for probe 1") as error:
        slq.lanczos(op, v0, M)
    assert str(error.value) == str(eager_error.value)


def test_lanczos_runs_inside_jit() -> None:
    reference = slq.lanczos(MATRIX, V0, M)

    @jax.jit
    def run(v0: jax.Array, scale: jax.Array) -> slq.LanczosResult:
        op = slq.aslinearoperator(
            lambda v: scale * (MATRIX @ v), shape=(N, N), like=v0, traceable=True
        )
        return slq.lanczos(op, v0, M)

    traced = run(V0, jnp.asarray(2.0))
    assert isinstance(traced.alpha, jax.Array) and traced.alpha.shape == (K, M)
    assert_close(traced.alpha, 2.0 * reference.alpha, scale=6.0)
    assert_close(traced.beta, 2.0 * reference.beta, scale=6.0)
    np.testing.assert_array_equal(np.asarray(traced.lengths), reference.lengths)
    assert int(traced.num_matvecs) == reference.num_matvecs


def test_what_cannot_run_inside_jit_says_so() -> None:
    with pytest.raises(TypeError, match="v0 is a traced value"):
        jax.jit(lambda v: slq.lanczos(eager(MATRIX), v, M).alpha)(V0)
    with pytest.raises(TypeError, match="v0 is a traced value"):
        jax.jit(lambda v: slq.lanczos(MATRIX, v, M, reorthogonalize="partial").alpha)(V0)

    def density(scale: jax.Array, **options: object) -> object:
        op = slq.aslinearoperator(lambda v: scale * v, shape=(N, N), like=scale, traceable=True)
        return slq.density(op, num_steps=M, num_probes=K, seed=0, **options)

    with pytest.raises(TypeError, match="this estimate is computed on the host"):
        jax.jit(lambda s: density(s, callback=print))(jnp.ones(()))
    with pytest.raises(TypeError, match="only without checkpoint, tol and max_matvecs"):
        jax.jit(lambda s: density(s, max_matvecs=10 * K * M))(jnp.ones(()))


def test_density_runs_inside_jit_as_it_runs_eagerly() -> None:
    a = jnp.diag(jnp.asarray(np.repeat([1.0, 2.0, 5.0], N // 3)))  # every probe breaks down
    options = {"num_steps": M, "num_probes": 2 * K, "probe_batch_size": K, "seed": 0}
    grid = jnp.linspace(0.0, 6.0, 7)
    reference = slq.density(MATRIX + a, **options)

    @jax.jit
    def run(scale: jax.Array) -> tuple[slq.TracedDensity, jax.Array]:
        traced = slq.density(scale * (MATRIX + a), **options)
        return traced, traced.evaluate(grid)

    traced, curve = run(jnp.asarray(1.0))
    assert isinstance(traced, slq.TracedDensity) and traced.nodes.shape == (2 * K, M)
    assert int(traced.num_matvecs) == reference.num_matvecs == 2 * K * M
    assert_close(traced.alpha, reference.alpha, scale=6.0)
    assert_close(traced.nodes, reference.nodes, scale=6.0, factor=10.0)
    assert_close(traced.weights, reference.weights, scale=1.0, factor=100.0)
    assert_close(curve, reference.evaluate(np.asarray(grid)), scale=1.0, factor=100.0)
    assert_close(traced.to_density().evaluate(grid), reference.evaluate(grid), factor=100.0)
    broke = slq.density(a, num_steps=M, num_probes=K, seed=0)
    traced = jax.jit(lambda s: slq.density(s * a, num_steps=M, num_probes=K, seed=0))(1.0)
    assert_close(traced.nodes[:, :3], broke.nodes, scale=5.0, factor=10.0)
    assert_close(traced.nodes[:, 3:], broke.nodes[:, -1:].repeat(M - 3, axis=1), scale=5.0)
    assert_close(traced.weights[:, :3], broke.weights, factor=100.0)
    assert (np.asarray(traced.weights[:, 3:]) == 0).all()


def test_traceable_needs_a_jax_callable() -> None:
    with pytest.raises(ValueError, match="traceable=True needs vectors of a library"):
        slq.aslinearoperator(lambda v: v, shape=(3, 3), dtype=np.float64, traceable=True)
    with pytest.raises(TypeError, match="traceable=True describes a callable"):
        slq.aslinearoperator(MATRIX, traceable=True)


_LOSS_TRACES = [0]


def _loss(params: dict[str, jax.Array], batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    _LOSS_TRACES[0] += 1  # Python runs only while JAX traces
    x, y = batch
    logits = jnp.tanh(x @ params["w1"]) @ params["w2"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])


def _hessian(x: jax.Array, **options: object) -> adapters.JaxCurvatureOperator:
    keys = jax.random.split(jax.random.key(0), 2)
    params = {"w1": jax.random.normal(keys[0], (3, 4)), "w2": jax.random.normal(keys[1], (4, 3))}
    y = jnp.arange(x.shape[0]) % 3
    return adapters.jax_hessian(_loss, params, [(x[:6], y[:6]), (x[6:], y[6:])], **options)


class Opaque:
    """An operator without `traceable_product`: the eager engine runs it."""

    def __init__(self, op: adapters.JaxCurvatureOperator) -> None:
        self.shape, self.dtype, self.device, self.matmat = op.shape, op.dtype, op.device, op.matmat

    def matvec(self, v: jax.Array) -> jax.Array:
        return self.matmat(v[:, None])[:, 0]


def test_jax_hessian_runs_compiled_as_it_runs_eagerly() -> None:
    x = jnp.asarray(np.random.default_rng(2).standard_normal((10, 3)))
    op = _hessian(x)  # the gradient linearized (`reuse_primal`), in the program too
    assert op.shape == (N, N) and op.traceable_product() is not None
    compiled = slq.lanczos(op, V0, M)
    reference = slq.lanczos(Opaque(op), V0, M)
    assert_close(compiled.alpha, reference.alpha, factor=10.0)
    assert_close(compiled.beta, reference.beta, factor=10.0)
    assert _hessian(x, cache_data=False).traceable_product() is None


def test_a_new_jax_hessian_and_a_second_density_compile_nothing() -> None:
    x = jnp.asarray(np.random.default_rng(2).standard_normal((10, 3)))
    slq.density(_hessian(x), num_steps=M, num_probes=K, seed=0)
    op = _hessian(x * 0.5)  # a new operator, as at new parameters during training
    built = _LOSS_TRACES[0]
    slq.density(op, num_steps=M, num_probes=K, seed=0)
    slq.density(op, num_steps=M, num_probes=K, seed=1)
    assert _LOSS_TRACES[0] == built


def test_jax_hessian_non_finite_batch_is_named_in_a_compiled_run() -> None:
    x = jnp.asarray(np.random.default_rng(2).standard_normal((10, 3))).at[8, 0].set(jnp.nan)
    with pytest.raises(FloatingPointError, match=r"not finite on batch 1 \(the loss is nan\)"):
        slq.density(_hessian(x, reuse_primal=False), num_steps=M, num_probes=K, seed=0)


def test_dgks_repeats_the_pass_only_for_probes_that_lost_orthogonality() -> None:
    from slq._backends.jax import project_dgks

    kernel = jax.jit(project_dgks, static_argnums=(2, 3))
    rows = np.linalg.qr(np.random.default_rng(2).standard_normal((N, 4)))[0].T
    basis = jnp.asarray(np.stack([rows, rows]))  # (2, 4, N): both probes, the same rows
    inside = rows.T @ np.arange(1.0, 5.0) + 1e-9 * np.eye(N)[0]  # cancels: repeated
    outside = np.random.default_rng(3).standard_normal(N)
    w = jnp.asarray(np.stack([inside, outside]))
    projected, norms, again = kernel(w, basis, 4, jnp.float64, jnp.linalg.norm(w, axis=1))
    once = kernel(w, basis, 4, jnp.float64, jnp.zeros(2))[0]  # nothing to repeat: one pass
    np.testing.assert_array_equal(again, [True, False])
    np.testing.assert_array_equal(projected[1], once[1])  # the other probe kept its one pass
    projected, norms = np.asarray(projected), np.asarray(norms)
    for probe in range(2):
        assert_close(rows @ projected[probe], np.zeros(4), scale=float(norms[probe]))
    assert_close(norms, np.linalg.norm(projected, axis=1), scale=1.0)

"""A batch's whole Lanczos run as one TensorFlow graph, against the eager engine and numpy.

TensorFlow test time is tracing time: the tests share the few shapes below
(n = 24, m = 8, k = 3), so that most graphs are traced once for the file.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Backend, assert_close, need, symmetric_with_spectrum

tf = need(Backend.TENSORFLOW)

import slq  # noqa: E402
from slq._backends.tensorflow_lanczos import power_of_two  # noqa: E402
from slq._reorthogonalization import policy  # noqa: E402

N, M, K = 24, 8, 3
MATRIX_NP = symmetric_with_spectrum(np.linspace(-1.0, 3.0, N), seed=0)
V0_NP = np.random.default_rng(1).standard_normal((N, K))
MATRIX, V0 = tf.constant(MATRIX_NP), tf.constant(V0_NP)
ZERO = tf.constant(0.0, tf.float64)


def eager(a: tf.Tensor) -> slq.LinearOperator:
    """The same matrix through an opaque callable: products one step at a time."""
    return slq.aslinearoperator(lambda v: tf.linalg.matvec(a, v), shape=a.shape, like=a)


def assert_same_run(compiled: slq.LanczosResult, reference: slq.LanczosResult) -> None:
    np.testing.assert_array_equal(compiled.lengths, reference.lengths)
    assert compiled.num_matvecs == reference.num_matvecs
    assert compiled.num_reorthogonalizations == reference.num_reorthogonalizations
    assert_close(compiled.alpha, reference.alpha, scale=3.0)
    assert_close(compiled.beta, reference.beta, scale=3.0)
    assert_close(compiled.residual_norm, reference.residual_norm, scale=3.0)


@pytest.mark.parametrize("reorthogonalize", ["full", "none"])
@pytest.mark.parametrize("k", [1, K])
def test_one_graph_equals_the_eager_engine_and_numpy(reorthogonalize: str, k: int) -> None:
    v0 = V0[:, :k]
    options = {"reorthogonalize": reorthogonalize}
    op = slq.aslinearoperator(MATRIX)
    assert op.backend.lanczos_program(op, policy(reorthogonalize), False) is not None
    compiled = slq.lanczos(op, v0, M, **options, return_basis=True)
    assert_same_run(compiled, slq.lanczos(eager(MATRIX), v0, M, **options))
    assert_same_run(compiled, slq.lanczos(MATRIX_NP, V0_NP[:, :k], M, **options))
    assert isinstance(compiled.alpha, np.ndarray) and compiled.alpha.dtype == np.float64
    assert isinstance(compiled.basis, tf.Tensor) and compiled.basis.shape == (k, N, M)
    for q in compiled.basis.numpy():  # M << N vectors: orthonormal to rounding either way
        assert_close(q.T @ q, np.eye(M), scale=1.0, factor=10.0)


def test_partial_offload_and_opaque_operators_run_step_by_step() -> None:
    op = slq.aslinearoperator(MATRIX)
    assert op.backend.lanczos_program(op, policy("partial"), False) is None
    assert op.backend.lanczos_program(op, policy("full"), True) is None
    opaque = eager(MATRIX)
    assert opaque.backend.lanczos_program(opaque, policy("full"), False) is None
    partial = slq.lanczos(MATRIX, V0, M, reorthogonalize="partial")
    assert_close(partial.alpha, slq.lanczos(MATRIX_NP, V0_NP, M).alpha, scale=3.0)


def test_breakdown_per_probe_as_the_eager_engine() -> None:
    # Three distinct eigenvalues: a generic probe breaks down after 3 steps; e_0 is an
    # eigenvector, so its probe stops after one.
    a = tf.constant(np.diag(np.repeat([1.0, 2.0, 5.0], N // 3)))
    v0 = tf.constant(np.column_stack([np.eye(N)[0], V0_NP[:, 1:]]))
    compiled = slq.lanczos(a, v0, M)
    np.testing.assert_array_equal(compiled.lengths, [1, 3, 3])
    assert compiled.alpha.shape == (K, 3) and compiled.num_matvecs == 3 * K
    assert_same_run(compiled, slq.lanczos(eager(a), v0, M))
    assert (compiled.beta[0] == 0).all() and (compiled.residual_norm == 0).all()


def test_float32_and_extreme_scales_give_the_same_relative_answer() -> None:
    plain = slq.lanczos(MATRIX, V0, M)
    for scale in (2.0**300, 2.0**-300):
        scaled = slq.lanczos(MATRIX * scale, V0, M)
        assert_close(scaled.alpha / scale, plain.alpha, scale=3.0)
        assert_close(scaled.beta / scale, plain.beta, scale=3.0)
    single = slq.lanczos(tf.cast(MATRIX, tf.float32), tf.cast(V0, tf.float32), M)
    reference = slq.lanczos(eager(tf.cast(MATRIX, tf.float32)), tf.cast(V0, tf.float32), M)
    assert single.alpha.dtype == np.float64
    assert_close(single.alpha, reference.alpha, dtype=np.float32, scale=3.0, factor=10.0)


def test_power_of_two_reads_the_exponent_exactly() -> None:
    for exponent in (-1022, -1001, -300, -62, 60, 300, 1022):  # TF flushes subnormals
        value = np.ldexp(1.5, exponent)  # frexp: 0.75 * 2^(exponent + 1)
        expected = np.ldexp(1.0, exponent + 1)
        assert float(power_of_two(tf.constant([[value, -value / 2]]), 60)) == expected
    for ordinary in (0.0, 1.0, np.ldexp(1.0, 59), np.inf, np.nan):
        assert float(power_of_two(tf.constant([[ordinary]], tf.float64), 60)) == 1.0


BAD = {"nan": tf.constant(np.nan, tf.float64), "inf": tf.constant(np.inf, tf.float64)}


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_products_raise_the_eager_engines_error(bad: str) -> None:
    def product(v: tf.Tensor) -> tf.Tensor:  # bad along e_0 only: probe 1, step 1
        return tf.linalg.matvec(MATRIX, v) + tf.where(tf.abs(v[0]) > 0.5, BAD[bad], ZERO)

    v0 = tf.constant(np.column_stack([V0_NP[:, 0], np.eye(N)[0], V0_NP[:, 2]]))
    op = slq.aslinearoperator(product, shape=(N, N), like=MATRIX, traceable=True)
    with pytest.raises(FloatingPointError) as eager_error:
        slq.lanczos(slq.aslinearoperator(product, shape=(N, N), like=MATRIX), v0, M)
    with pytest.raises(FloatingPointError, match="at Lanczos step 1 for probe 1") as error:
        slq.lanczos(op, v0, M)
    assert str(error.value) == str(eager_error.value)


def test_a_second_run_and_a_second_operator_trace_nothing() -> None:
    traces = [0]

    def product(v: tf.Tensor) -> tf.Tensor:  # Python runs only while tracing
        traces[0] += 1
        return tf.linalg.matvec(MATRIX, v)

    op = slq.aslinearoperator(product, shape=(N, N), like=MATRIX, traceable=True)
    first = slq.lanczos(op, V0, M)
    traced = traces[0]
    assert traced > 0
    again = slq.lanczos(op, V0, M)
    slq.density(op, num_steps=M, num_probes=K, seed=0)  # the same shapes: (K, N)
    remade = slq.aslinearoperator(product, shape=(N, N), dtype=tf.float64, traceable=True)
    slq.lanczos(remade, V0, M)
    assert traces[0] == traced
    np.testing.assert_array_equal(first.alpha, again.alpha)  # bit-identical call to call
    assert_same_run(first, slq.lanczos(eager(MATRIX), V0, M))


def test_a_run_over_several_blocks_is_traced_as_one_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # m = 20: rows 0-15 in the first block, 16-19 in the second (`store`'s switch_case);
    # the pass gathers the rows above rounding, as for large vectors.
    monkeypatch.setattr("slq._backends.tensorflow.GATHER_ELEMENTS", 0)
    traces = []

    def product(v: tf.Tensor) -> tf.Tensor:
        traces.append(v.shape)
        return tf.linalg.matvec(MATRIX, v)

    for m in (M, 20):
        traces.clear()
        op = slq.aslinearoperator(product, shape=(N, N), like=MATRIX, traceable=True)
        compiled = slq.lanczos(op, V0, m, return_basis=True)
        assert len(traces) == 2 * K  # step 0 and the loop's step, a column each: not per block
    assert_same_run(compiled, slq.lanczos(MATRIX_NP, V0_NP, 20))
    assert compiled.basis.shape == (K, N, 20)
    for q in compiled.basis.numpy():
        assert_close(q.T @ q, np.eye(20), scale=1.0, factor=10.0)


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


def test_traceable_needs_a_library_that_compiles_runs() -> None:
    with pytest.raises(ValueError, match="JAX or TensorFlow: pass like= a JAX array or a tensor"):
        slq.aslinearoperator(lambda v: v, shape=(3, 3), dtype=np.float64, traceable=True)
    with pytest.raises(TypeError, match="traceable=True describes a callable"):
        slq.aslinearoperator(MATRIX, traceable=True)

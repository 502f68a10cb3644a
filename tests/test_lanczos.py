"""Lanczos against dense eigendecompositions, on every backend."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from helpers import (
    Backend,
    CheckedOperator,
    assert_close,
    namespace,
    need,
    spectral_measure,
    symmetric_with_spectrum,
    to_numpy,
    tolerance,
)
from hypothesis import given
from hypothesis import strategies as st
from strategies import Case, cases

import slq

DTYPES = ("float64", "float32")


def rademacher(n: int, k: int, seed: int) -> np.ndarray:
    return np.where(np.random.default_rng(seed).random((n, k)) < 0.5, -1.0, 1.0)


def test_basis_is_orthonormal_and_tridiagonalizes(backend: Backend) -> None:
    a = symmetric_with_spectrum(np.linspace(-1.0, 3.0, 60), seed=0)
    op = CheckedOperator(backend.asarray(a))
    result = slq.lanczos(op, backend.asarray(rademacher(60, 3, 1)), 25, return_basis=True)
    assert namespace(result.basis) is backend.xp
    basis = to_numpy(result.basis)
    assert basis.shape == (3, 60, 25)
    t = slq.tridiagonal(result.alpha, result.beta)
    for p in range(3):
        np.testing.assert_allclose(basis[p].T @ basis[p], np.eye(25), atol=1e-13)
        np.testing.assert_allclose(basis[p].T @ a @ basis[p], t[p], atol=1e-12)
    assert result.num_matvecs == 75 and op.inputs == 25


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=cases(), m=st.integers(1, 8), k=st.integers(1, 3), seed=st.integers(0, 1000))
def test_gauss_rule_is_exact_for_polynomials_of_degree_2m_minus_1(
    backend: Backend, dtype: str, case: Case, m: int, k: int, seed: int
) -> None:
    v = rademacher(case.n, k, seed)
    result = slq.lanczos(backend.asarray(case.matrix, dtype), backend.asarray(v, dtype), m)
    assert result.alpha.dtype == np.float64
    nodes, weights = slq.gauss_quadrature(result.alpha, result.beta)
    rho = np.abs(case.eigenvalues).max() or 1.0
    for p in range(k):
        lam, w = spectral_measure(case.matrix, v[:, p])
        for degree in range(2 * min(m, case.n)):
            exact = np.sum(w * (lam / rho) ** degree)
            estimate = np.sum(weights[p] * (nodes[p] / rho) ** degree)
            assert estimate == pytest.approx(exact, abs=tolerance(dtype, scale=1 + degree))


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=cases(kinds=("repeated", "rank_deficient")), seed=st.integers(0, 1000))
def test_breakdown_recovers_the_probe_measure_exactly(
    backend: Backend, dtype: str, case: Case, seed: int
) -> None:
    v = rademacher(case.n, 1, seed)[:, 0]
    a = backend.asarray(case.matrix, dtype)
    result = slq.lanczos(a, backend.asarray(v, dtype), case.n)
    nodes, weights = slq.gauss_quadrature(result.alpha, result.beta)
    assert np.isfinite(nodes).all() and np.isfinite(weights).all()
    lam, w = spectral_measure(case.matrix, v)
    scale = max(np.abs(lam).max(), 1.0)
    atol = tolerance(dtype, scale=10)
    near = np.abs(nodes[0][:, None] - lam[None, :]) <= tolerance(dtype, scale=100) * scale
    # Every node that carries weight sits on an eigenvalue...
    assert weights[0, ~near.any(axis=1)].sum() <= atol
    # ...and carries that eigenvalue's mass in the probe's spectral measure.
    for j in range(lam.size):
        same = np.abs(lam - lam[j]) <= tolerance(dtype, scale=100) * scale
        assert weights[0, near[:, j]].sum() == pytest.approx(w[same].sum(), abs=atol)


@pytest.mark.parametrize("reorthogonalize", ["full", "partial", "none"])
@given(case=cases(), m=st.integers(1, 40), seed=st.integers(0, 1000))
def test_ritz_values_lie_inside_the_spectrum(
    backend: Backend, reorthogonalize: str, case: Case, m: int, seed: int
) -> None:
    a, v = backend.asarray(case.matrix), backend.asarray(rademacher(case.n, 2, seed))
    result = slq.lanczos(a, v, m, reorthogonalize=reorthogonalize)
    nodes, _ = slq.gauss_quadrature(result.alpha, result.beta)
    scale = max(np.abs(case.eigenvalues).max(), 1.0)
    assert nodes.min() >= case.eigenvalues.min() - 1e-10 * scale
    assert nodes.max() <= case.eigenvalues.max() + 1e-10 * scale


@given(case=cases(min_n=3), seed=st.integers(0, 1000))
def test_extreme_ritz_values_move_outward_and_reach_the_extreme_eigenvalues(
    backend: Backend, case: Case, seed: int
) -> None:
    a, v = backend.asarray(case.matrix), backend.asarray(rademacher(case.n, 1, seed))
    result = slq.lanczos(a, v, case.n)
    length = result.lengths[0]
    scale = max(np.abs(case.eigenvalues).max(), 1.0)
    lows, highs = [], []
    for m in range(1, length + 1):  # T_m is the leading block of T: Cauchy interlacing
        nodes, _ = slq.gauss_quadrature(result.alpha[:, :m], result.beta[:, : m - 1])
        lows.append(nodes[0, 0])
        highs.append(nodes[0, m - 1])
    assert np.all(np.diff(highs) >= -1e-12 * scale) and np.all(np.diff(lows) <= 1e-12 * scale)
    assert highs[-1] == pytest.approx(case.eigenvalues.max(), abs=1e-9 * scale)
    assert lows[-1] == pytest.approx(case.eigenvalues.min(), abs=1e-9 * scale)


def test_top_ritz_value_converges_fast_on_an_outlier() -> None:
    # Kaniel-Paige: an isolated eigenvalue converges geometrically in the gap ratio.
    lam = np.concatenate([np.linspace(-1.0, 1.0, 397), [10.0, 20.0, 40.0]])
    a = symmetric_with_spectrum(lam, seed=5)
    result = slq.lanczos(a, rademacher(400, 1, 0), 20)
    nodes, _ = slq.gauss_quadrature(result.alpha, result.beta)
    np.testing.assert_allclose(nodes[0, -3:], [10.0, 20.0, 40.0], rtol=1e-10)


def test_batched_run_equals_separate_runs(backend: Backend) -> None:
    a = backend.asarray(symmetric_with_spectrum(np.linspace(0.0, 1.0, 50), seed=2))
    v = rademacher(50, 4, 3)
    batched = slq.lanczos(a, backend.asarray(v), 15)
    for p in range(4):
        single = slq.lanczos(a, backend.asarray(v[:, p]), 15)
        np.testing.assert_allclose(single.alpha[0], batched.alpha[p], rtol=1e-12)
        np.testing.assert_allclose(single.beta[0], batched.beta[p], rtol=1e-12)


def test_probes_break_down_independently() -> None:
    # Probe 0 lies in a 2-D invariant subspace; probe 1 sees all 6 eigenvalues.
    a = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    v = np.stack([[1.0, 1.0, 0, 0, 0, 0], np.ones(6)], axis=1)
    result = slq.lanczos(a, v, 6)
    assert result.lengths.tolist() == [2, 6]
    assert result.beta[0, 1:].tolist() == [0.0] * 4 and result.residual_norm[0] == 0.0
    nodes, weights = slq.gauss_quadrature(result.alpha, result.beta)
    np.testing.assert_allclose(nodes[0, :2], [1.0, 2.0])
    np.testing.assert_allclose(weights[0], [0.5, 0.5, 0, 0, 0, 0], atol=1e-15)
    np.testing.assert_allclose(nodes[1], np.arange(1.0, 7.0))


@pytest.mark.parametrize("with_matmat", [True, False])
def test_operator_only_sees_its_own_library(backend: Backend, with_matmat: bool) -> None:
    a = symmetric_with_spectrum(np.linspace(-2.0, 2.0, 30), seed=4)
    op = CheckedOperator(backend.asarray(a), with_matmat=with_matmat)
    result = slq.lanczos(op, backend.asarray(rademacher(30, 2, 0)), 10)
    reference = slq.lanczos(a, rademacher(30, 2, 0), 10)
    np.testing.assert_allclose(result.alpha, reference.alpha, rtol=1e-12)
    assert op.inputs == (10 if with_matmat else 20)


def test_float32_vectors_match_float64_to_float32_accuracy(backend: Backend) -> None:
    a = symmetric_with_spectrum(np.linspace(-1.0, 1.0, 200), seed=6)
    v = rademacher(200, 2, 1)
    r32 = slq.lanczos(backend.asarray(a, "float32"), backend.asarray(v, "float32"), 30)
    r64 = slq.lanczos(a, v, 30)
    assert r32.alpha.dtype == r32.beta.dtype == np.float64
    atol = tolerance("float32", scale=10)
    np.testing.assert_allclose(r32.alpha, r64.alpha, atol=atol)
    np.testing.assert_allclose(r32.beta, r64.beta, atol=atol)


def test_no_reorthogonalization_makes_ghosts_that_full_avoids() -> None:
    # Paige (1976): without reorthogonalisation converged Ritz values come back as copies.
    lam = np.concatenate([np.linspace(0.0, 1.0, 300), [100.0]])
    a = symmetric_with_spectrum(lam, seed=7)
    v = rademacher(301, 1, 0)
    counts = {}
    for option in ("full", "none"):
        result = slq.lanczos(a, v, 120, reorthogonalize=option)
        nodes, _ = slq.gauss_quadrature(result.alpha, result.beta)
        counts[option] = int(np.sum(np.abs(nodes[0] - 100.0) < 1e-6))
    assert counts["full"] == 1
    assert counts["none"] >= 2


def test_num_steps_is_capped_at_n() -> None:
    result = slq.lanczos(np.diag([1.0, 2.0, 3.0]), np.ones(3), 50)
    assert result.alpha.shape == (1, 3)


def test_result_arrays_are_read_only() -> None:
    result = slq.lanczos(np.diag([1.0, 2.0]), np.ones(2), 2)
    with pytest.raises(ValueError, match="read-only"):
        result.alpha[0, 0] = 1.0


@pytest.mark.parametrize(
    ("num_steps", "error", "message"),
    [
        (0, ValueError, "num_steps must be >= 1, got 0"),
        (-3, ValueError, "num_steps must be >= 1, got -3"),
        (2.5, TypeError, "num_steps must be an integer >= 1, got 2.5"),
        (True, TypeError, "num_steps must be an integer >= 1, got True"),
    ],
)
def test_bad_num_steps(num_steps: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        slq.lanczos(np.eye(3), np.ones(3), num_steps)


def test_bad_reorthogonalize() -> None:
    with pytest.raises(
        ValueError,
        match="reorthogonalize must be one of 'full', 'partial', 'none', got 'selective'",
    ):
        slq.lanczos(np.eye(3), np.ones(3), 2, reorthogonalize="selective")


@pytest.mark.parametrize(
    ("v0", "error", "message"),
    [
        (np.ones(4), ValueError, r"v0 must have shape \(3,\) or \(3, k\), got \(4,\)"),
        (np.ones((3, 2, 1)), ValueError, r"v0 must have shape \(3,\) or \(3, k\)"),
        (np.zeros(3), ValueError, "v0 column 0 has norm 0.0"),
        (np.array([[1.0, 1.0], [0.0, np.nan], [1.0, 0.0]]), ValueError, "v0 column 1 has norm nan"),
        (np.ones(3, dtype=int), TypeError, "v0 dtype must be real floating, got int64"),
    ],
)
def test_bad_start_vectors(v0: np.ndarray, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        slq.lanczos(np.eye(3), v0, 2)


def test_start_vector_from_another_library() -> None:
    torch = need(Backend.TORCH)
    with pytest.raises(
        TypeError, match="v0 is a torch array but the operator's vectors are numpy arrays"
    ):
        slq.lanczos(np.eye(3), torch.ones(3, dtype=torch.float64), 2)


class NaNAt:
    """A diagonal operator whose output gets a NaN in column `column` at call `call`."""

    def __init__(self, n: int, call: int, column: int) -> None:
        self.shape, self.dtype, self.d = (n, n), np.dtype("float64"), np.arange(1.0, n + 1)
        self.call, self.column, self.calls = call, column, 0

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return self.matmat(v[:, None])[:, 0]

    def matmat(self, v: np.ndarray) -> np.ndarray:
        self.calls += 1
        out = self.d[:, None] * v
        if self.calls == self.call:
            out[0, self.column] = np.nan
        return out


def test_nan_from_the_operator_names_probe_and_step() -> None:
    with pytest.raises(FloatingPointError, match="nan at Lanczos step 3 for probe 1"):
        slq.lanczos(NaNAt(10, call=3, column=1), np.ones((10, 2)), 5)


def test_operator_returning_the_wrong_shape() -> None:
    op = slq.aslinearoperator(lambda v: v[:-1], shape=(4, 4), dtype=np.float64)
    with pytest.raises(
        ValueError, match=r"the operator returned shape \(3, 1\), expected \(4, 1\)"
    ):
        slq.lanczos(op, np.ones(4), 2)


def test_operator_returning_another_library() -> None:
    torch = need(Backend.TORCH)

    op = slq.aslinearoperator(lambda v: np.asarray(v), shape=(3, 3), dtype=torch.float64)
    with pytest.raises(
        TypeError,
        match="returned a numpy array for a torch input",
    ):
        slq.lanczos(op, torch.ones(3, dtype=torch.float64), 2)


@pytest.mark.parametrize(
    ("scale", "dtype"),
    [
        *[(scale, "float64") for scale in (1e-300, 1e-170, 1e160, 1e300)],
        *[(scale, "float32") for scale in (1e-30, 1e30)],
    ],
)
def test_every_representable_scale_gives_the_same_relative_answer(
    backend: Backend, scale: float, dtype: str
) -> None:
    # Norms are sums of squares: unscaled, they underflow to 0 (a false breakdown) or
    # overflow to inf (a false "the operator produced inf").
    lam = np.linspace(-1.0, 1.0, 100)
    v = np.random.default_rng(0).standard_normal((100, 2))
    reference = slq.lanczos(np.diag(lam), v, 20)
    a = backend.asarray(np.diag(lam) * scale, dtype)
    result = slq.lanczos(a, backend.asarray(v * scale, dtype), 20)
    assert result.lengths.tolist() == [20, 20]
    assert_close(result.alpha / scale, reference.alpha, dtype=np.dtype(dtype), scale=1.0)
    assert_close(result.beta / scale, reference.beta, dtype=np.dtype(dtype), scale=1.0)
    dos = slq.density(a, num_steps=30, num_probes=2, seed=0)
    exact = slq.density(np.diag(lam), num_steps=30, num_probes=2, seed=0)
    assert dos.stop_reason == "num_probes" and dos.alpha.shape == exact.alpha.shape
    extremes = np.array([dos.lambda_min, dos.lambda_max]) / scale
    assert_close(extremes, [exact.lambda_min, exact.lambda_max], dtype=np.dtype(dtype), scale=1.0)


def test_a_power_of_two_factor_changes_no_bit() -> None:
    # A power-of-two factor is exact: a run of 2 A is the run of A, doubled, to the bit.
    a = symmetric_with_spectrum(np.linspace(-1.0, 1.0, 60), seed=0)
    v = np.random.default_rng(1).standard_normal(60)
    one, two = slq.lanczos(a, v, 15), slq.lanczos(2.0**70 * a, v, 15)
    assert np.array_equal(one.alpha * 2.0**70, two.alpha)
    assert np.array_equal(one.beta * 2.0**70, two.beta)


def test_second_passes_keep_a_full_length_basis_orthonormal(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # At m = n the last residuals are rounding noise along the basis: there the first
    # Gram–Schmidt pass loses orthogonality and DGKS repeats it (host or in-kernel).
    n = 16  # one block of rows: one JAX compilation
    a = symmetric_with_spectrum(np.linspace(1.0, 2.0, n), seed=13)
    v0 = rademacher(n, 3, seed=14)
    with caplog.at_level(logging.DEBUG, logger="slq"):
        result = slq.lanczos(backend.asarray(a), backend.asarray(v0), n, return_basis=True)
    passes = int(re.search(r"second Gram-Schmidt passes=(\d+)", caplog.text).group(1))
    assert passes >= 1
    basis = to_numpy(result.basis)
    for p in range(3):
        m = int(result.lengths[p])
        gram = basis[p][:, :m].T @ basis[p][:, :m]
        np.testing.assert_allclose(gram, np.eye(m), atol=1e-13)
    assert result.lengths[0] == n
    alpha, beta = result.alpha[0], result.beta[0]
    ritz = np.linalg.eigvalsh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
    assert_close(ritz, np.linspace(1.0, 2.0, n), dtype=np.float64, scale=2.0)

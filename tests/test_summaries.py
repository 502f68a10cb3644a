"""Estimates read off stored Gauss rules: CDF, counts, moments, bounds, outliers, summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import Backend, assert_close, spectral_measure, symmetric_with_spectrum
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance
from strategies import Case, cases

import slq
import slq.bounds
from slq.estimate import Estimate, student_t_quantile

SPIKED = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])


def run(a: np.ndarray, m: int, v: np.ndarray) -> slq.SpectralDensity:
    return slq.SpectralDensity.from_lanczos(slq.lanczos(a, v, m), dim=a.shape[0])


def probes(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, k))


def exact_mass_below(a: np.ndarray, v: np.ndarray, x: float) -> float:
    lam, w = spectral_measure(a, v)
    return float(w[lam < x].sum())


@settings(max_examples=15)
@given(case=cases(), m=st.integers(1, 12), seed=st.integers(0, 100), where=st.floats(0.0, 1.0))
def test_mass_below_bracket_holds_for_every_spectrum(
    case: Case, m: int, seed: int, where: float
) -> None:
    v = probes(case.n, 3, seed)
    dos = run(case.matrix, m, v)
    x = float(np.quantile(case.eigenvalues, where)) + 1e-7
    result = dos.mass_below(x)
    exact = np.mean([exact_mass_below(case.matrix, v[:, p], x) for p in range(3)])
    assert result.lower - 1e-9 <= exact <= result.upper + 1e-9
    assert result.lower <= result.value <= result.upper


def test_mass_below_is_exact_after_breakdown() -> None:
    a = np.diag(np.repeat([-2.0, -1.0, 3.0], 10))
    dos = slq.density(a, num_steps=10, num_probes=3, seed=0)
    assert dos.exact.all()
    negative = dos.negative_mass()
    assert negative.lower == negative.upper == pytest.approx(negative.value)
    assert 0.3 < negative.value < 1.0


def test_negative_mass_threshold_and_resolution() -> None:
    dos = slq.density(np.diag(np.linspace(-1.0, 3.0, 400)), num_steps=40, num_probes=4, seed=0)
    assert dos.negative_mass().value == pytest.approx(0.25, abs=0.02)
    assert dos.negative_mass(0.5).value == pytest.approx(0.125, abs=0.02)
    assert 0.0 < dos.negative_mass().resolution < 0.2
    with pytest.raises(ValueError, match="threshold"):
        dos.negative_mass(-1.0)


def test_cdf_and_count_are_exact_with_n_steps() -> None:
    dos = slq.density(np.diag(np.arange(50.0)), num_steps=50, num_probes=2, seed=1)
    np.testing.assert_allclose(dos.cdf([-0.5, 9.5, 48.9, 49.5]), [0.0, 0.2, 0.98, 1.0])
    assert dos.count(9.5, 19.5).value == pytest.approx(10.0)
    with pytest.raises(ValueError, match="low < high"):
        dos.count(2.0, 1.0)


@settings(max_examples=10)
@given(case=cases(), m=st.integers(2, 8), seed=st.integers(0, 100))
def test_moments_are_exact_per_probe_up_to_degree_2m_minus_1(case: Case, m: int, seed: int) -> None:
    v = probes(case.n, 2, seed)
    dos = run(case.matrix, m, v)
    m_run = dos.num_steps
    measures = [spectral_measure(case.matrix, v[:, q]) for q in range(2)]
    for p in range(2 * m_run):
        exact = np.mean([np.sum(w * lam**p) for lam, w in measures])
        scale = max(1.0, float(np.abs(case.eigenvalues).max())) ** p
        assert dos.moment(p).value == pytest.approx(exact, abs=1e-9 * scale)
    with pytest.raises(ValueError, match="more Lanczos steps"):
        dos.moment(2 * m_run)
    with pytest.raises(TypeError):
        dos.moment(1.5)  # type: ignore[arg-type]


def test_trace_function_domain_errors_and_shift() -> None:
    a = symmetric_with_spectrum(np.linspace(-1.0, 2.0, 60), seed=0)
    dos = slq.density(a, num_steps=20, num_probes=4, seed=0)
    with pytest.raises(ValueError, match=r"shift=s for some s > 0\.9"):
        dos.trace_function("log")
    with pytest.raises(ValueError, match="definite"):
        dos.trace_function("inverse")
    shifted = dos.trace_function("log", shift=2.0)
    exact = np.log(np.linspace(-1.0, 2.0, 60) + 2.0).sum()
    low, high = shifted.interval(0.999)
    assert low <= exact <= high
    with pytest.raises(ValueError, match="one of"):
        dos.trace_function("cosh")
    with pytest.raises(ValueError, match="same shape"):
        dos.trace_function(lambda x: x.sum())
    with pytest.raises(TypeError, match="callable"):
        dos.trace_function(3)


@settings(max_examples=15)
@given(case=cases(), m=st.integers(1, 10), seed=st.integers(0, 100))
def test_quadrature_wasserstein_bound_holds_per_probe(case: Case, m: int, seed: int) -> None:
    v = probes(case.n, 3, seed)
    dos = run(case.matrix, m, v)
    spectrum = (float(case.eigenvalues.min()), float(case.eigenvalues.max()))
    bounds = slq.bounds.quadrature_wasserstein(dos.nodes, dos.weights, dos.exact, spectrum)
    for p in range(3):
        lam, w = spectral_measure(case.matrix, v[:, p])
        exact = wasserstein_distance(lam, dos.nodes[p], w, dos.weights[p] + 1e-300)
        assert exact <= bounds[p] + 1e-9 * max(1.0, spectrum[1] - spectrum[0])


@pytest.mark.parametrize("kind", ["uniform", "outliers"])
def test_wasserstein_bound_holds_over_seeds(kind: str) -> None:
    rng = np.random.default_rng(0)
    lam = rng.uniform(-1, 1, 300)
    if kind == "outliers":
        lam[:3] = [8.0, 15.0, 40.0]
    a = symmetric_with_spectrum(lam, seed=1)
    exceed = 0
    for seed in range(20):
        dos = slq.density(a, num_steps=12, num_probes=3, seed=seed, probe="gaussian")
        bound = dos.wasserstein_bound(confidence=0.9, spectrum=(lam.min(), lam.max()))
        estimate = wasserstein_distance(lam, dos.nodes.ravel(), None, dos.weights.ravel() + 1e-300)
        exceed += estimate > bound.total
        assert bound.total == pytest.approx(bound.quadrature + bound.sampling)
    assert exceed <= 2  # at most 10% may exceed; the bound is far from tight
    default = slq.density(a, num_steps=40, num_probes=3, seed=0).wasserstein_bound()
    assert default.spectrum[0] <= lam.min() + 1e-6 and default.spectrum[1] >= lam.max() - 1e-6


def test_wasserstein_bound_errors() -> None:
    dos = slq.density(np.diag(np.arange(10.0)), num_steps=4, num_probes=2, seed=0)
    with pytest.raises(ValueError, match="contain every Ritz value"):
        dos.wasserstein_bound(spectrum=(1.0, 5.0))
    with pytest.raises(ValueError, match="confidence"):
        dos.wasserstein_bound(confidence=1.0)
    bare = slq.SpectralDensity(dos.alpha, dos.beta, dim=10)
    with pytest.raises(ValueError, match="spectrum=\\(a, b\\)"):
        bare.wasserstein_bound()
    assert bare.wasserstein_bound(spectrum=(0.0, 9.0)).total > 0


def test_outliers_are_found_with_their_counts_and_bulk() -> None:
    lam = np.concatenate([SPIKED, [30.0]])  # 30 is now a double eigenvalue
    dos = slq.density(np.diag(lam), num_steps=40, num_probes=6, seed=0, probe="gaussian")
    out = dos.outliers()
    np.testing.assert_allclose(out.positions, [10.0, 30.0, 100.0], rtol=1e-8)
    np.testing.assert_allclose(out.counts, [1.0, 2.0, 1.0], rtol=0.8)
    assert out.found_in.tolist() == [6, 6, 6]
    assert out.bulk[0] < -0.9 and 0.9 < out.bulk[1] < 1.0
    assert out.mass == pytest.approx(4 / 1001, rel=0.8)
    assert np.all(out.residuals <= 1e-3 * 100.0)
    t = np.linspace(-3.0, 3.0, 6001)
    assert np.trapezoid(dos.bulk(t, outliers=out), t) == pytest.approx(1.0 - out.mass, abs=1e-3)


def test_most_negative_outlier_and_no_outliers_in_a_plain_bulk() -> None:
    lam = np.concatenate([np.linspace(0.0, 1.0, 498), [-20.0, 50.0]])
    dos = slq.density(symmetric_with_spectrum(lam, 2), num_steps=40, num_probes=4, seed=0)
    np.testing.assert_allclose(dos.outliers().positions, [-20.0, 50.0], rtol=1e-8)
    ratio = dos.extreme_ratio()
    assert ratio.value == pytest.approx(0.4, rel=1e-8)
    assert ratio.lower <= 0.4 + 1e-12 and ratio.upper >= 0.4 - 1e-12
    plain = slq.density(np.diag(np.linspace(-1.0, 1.0, 500)), num_steps=30, num_probes=3, seed=0)
    assert len(plain.outliers()) == 0
    with pytest.raises(ValueError, match="tail"):
        plain.outliers(tail=0.7)


def test_extreme_ratio_is_zero_without_negative_curvature() -> None:
    dos = slq.density(np.diag(np.linspace(0.5, 4.0, 100)), num_probes=2, seed=0)
    assert dos.extreme_ratio().value == 0.0
    with pytest.raises(ValueError, match="positive largest"):
        slq.density(-np.eye(3) - np.diag([0, 1.0, 2]), num_probes=2, seed=0).extreme_ratio()


def test_symlog_grid_resolves_the_bulk_and_the_outliers() -> None:
    dos = slq.density(np.diag(SPIKED * 1e-2), num_steps=40, num_probes=2, seed=0)
    t = dos.grid(200, scale="symlog")
    assert np.all(np.diff(t) > 0) and t[0] < dos.lambda_min and t[-1] > dos.lambda_max
    linear = dos.grid(200)
    assert np.sum(np.abs(t) < 0.01) > 5 * np.sum(np.abs(linear) < 0.01)
    custom = dos.grid(50, scale="symlog", linthresh=1e-3)
    assert custom[0] == pytest.approx(t[0])
    with pytest.raises(ValueError, match="scale"):
        dos.grid(10, scale="log")
    with pytest.raises(ValueError, match="linthresh"):
        dos.grid(10, scale="symlog", linthresh=0.0)


def test_band_contains_the_curve_with_t_quantiles() -> None:
    a = symmetric_with_spectrum(np.linspace(-1.0, 1.0, 80), seed=3)
    dos = slq.density(a, num_steps=10, num_probes=5, seed=0)
    t = dos.grid(50)
    low, high = dos.band(t, confidence=0.9)
    curve, se = dos.evaluate(t), dos.stderr(t)
    np.testing.assert_allclose(high - curve, student_t_quantile(0.9, 4) * se)
    np.testing.assert_allclose(curve - low, high - curve)


def test_adaptive_run_stops_at_tolerance_and_matches_a_fixed_run() -> None:
    a = symmetric_with_spectrum(np.random.default_rng(0).uniform(-1, 1, 200), seed=0)
    loose = slq.density(a, num_steps=20, tol=0.08, seed=3)
    tight = slq.density(a, num_steps=20, tol=0.04, seed=3)
    assert loose.stop_reason == tight.stop_reason == "tol"
    assert 4 <= loose.num_probes < tight.num_probes
    # Batches of 4 probes against one batch of all: the same probes, equal to rounding.
    fixed = slq.density(a, num_steps=20, num_probes=tight.num_probes, seed=3)
    assert_close(fixed.alpha, tight.alpha, scale=1.0)  # ‖A‖ = 1
    assert_close(fixed.beta, tight.beta, scale=1.0)
    t = tight.grid()
    assert np.trapezoid(tight.stderr(t), t) <= 0.04


def test_adaptive_run_stops_at_the_budget_or_the_probe_cap() -> None:
    a = symmetric_with_spectrum(np.random.default_rng(0).uniform(-1, 1, 200), seed=0)
    budget = slq.density(a, num_steps=20, tol=1e-6, max_matvecs=250, seed=0)
    assert budget.stop_reason == "max_matvecs" and budget.num_matvecs <= 250
    capped = slq.density(a, num_steps=20, tol=1e-6, num_probes=6, probe_batch_size=3, seed=0)
    assert capped.stop_reason == "num_probes" and capped.num_probes == 6
    with pytest.raises(ValueError, match="cannot pay for one batch"):
        slq.density(a, num_steps=20, max_matvecs=50)
    with pytest.raises(ValueError, match="tol"):
        slq.density(a, tol=-1.0)


def test_summary_is_json_ready() -> None:
    dos = slq.density(np.diag(SPIKED), num_steps=40, num_probes=3, seed=0)
    summary = json.loads(json.dumps(dos.summary()))
    assert [o["position"] for o in summary["outliers"]] == pytest.approx([10.0, 30.0, 100.0])
    assert summary["moments"]["1"]["value"] == pytest.approx(SPIKED.mean())
    assert summary["wasserstein_bound"]["total"] > 0


def test_residuals_agree_across_backends(backend: Backend) -> None:
    a = symmetric_with_spectrum(SPIKED[::10], seed=0)
    ours = slq.density(backend.asarray(a), num_steps=15, num_probes=2, seed=0)
    reference = slq.density(a, num_steps=15, num_probes=2, seed=0)
    np.testing.assert_allclose(ours.residual_norm, reference.residual_norm, rtol=1e-8)
    np.testing.assert_allclose(ours.ritz_residuals, reference.ritz_residuals, atol=1e-8)


def test_estimate_interval_and_errors() -> None:
    e = Estimate.from_samples(np.array([1.0, 2.0, 3.0]), num_matvecs=3, method="x")
    assert e.value == 2.0 and e.stderr == pytest.approx(1 / np.sqrt(3))
    low, high = e.interval(0.95)
    assert 2.0 - low == pytest.approx(high - 2.0)
    assert high - 2.0 == pytest.approx(4.302652729 / np.sqrt(3), rel=1e-8)
    assert float(e) == 2.0
    single = Estimate.from_samples(np.array([1.0]), num_matvecs=1, method="x")
    with pytest.raises(ValueError, match="at least 2"):
        single.interval()
    with pytest.raises(ValueError, match="confidence"):
        e.interval(1.5)


def test_residual_norm_is_checked() -> None:
    with pytest.raises(ValueError, match="residual_norm"):
        slq.SpectralDensity(np.ones((2, 3)), np.ones((2, 2)), dim=5, residual_norm=[1.0])

"""`slq.summaries`: the mass below a point with its bracket, outliers, the extreme ratio."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import spectral_measure, symmetric_with_spectrum
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Case, cases

import slq
import slq.bounds
from slq.summaries import negative_point, zero_resolution

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


def test_rounding_of_zero_eigenvalues_is_not_negative_mass() -> None:
    # A positive semi-definite matrix of rank 100 < 300: Ritz values of its zero
    # eigenvalues come out at about -1e-14, rounding, not negative curvature.
    b = np.random.default_rng(0).standard_normal((300, 100))
    dos = slq.density(b @ b.T, num_steps=60, num_probes=3, seed=0)
    assert dos.nodes[:, 0].min() < 0.0
    negative = dos.negative_mass()
    assert negative.value == negative.lower == 0.0
    assert negative.upper >= 0.0
    assert negative.x == -zero_resolution(dos.nodes, dos.weights)
    assert -1e-4 * dos.lambda_max < negative.x < dos.nodes[:, 0].min()
    assert dos.negative_mass(1.0).x == -1.0


def test_zero_resolution_and_negative_point_refuse_bad_input() -> None:
    nodes, weights = np.array([[-1e-15, 1.0]]), np.full((1, 2), 0.5)
    with pytest.raises(TypeError, match="eps must be a real number"):
        zero_resolution(nodes, weights, eps="tiny")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps must be"):
        zero_resolution(nodes, weights, eps=-1.0)
    with pytest.raises(ValueError, match="threshold must be"):
        negative_point(nodes, weights, -0.1)

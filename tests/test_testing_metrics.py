"""Reference densities and metrics of `slq.testing`, against hand-computed cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import assert_close, symmetric_with_spectrum
from hypothesis import given
from hypothesis import strategies as st

import slq
from slq.testing import (
    Curve,
    Discrete,
    Problem,
    extreme_error,
    ks_distance,
    l1_distance,
    semicircle,
    smoothed_density,
    wasserstein1,
)

SPECTRUM = np.concatenate([np.linspace(-1.0, 1.0, 37), [2.5, 4.0, 4.0]])


@pytest.fixture(scope="module")
def dos() -> slq.SpectralDensity:
    return slq.density(symmetric_with_spectrum(SPECTRUM, 0), num_steps=12, num_probes=3, seed=0)


@pytest.mark.parametrize("kernel", ["gaussian", "lorentzian"])
def test_the_smoothed_density_is_what_an_exact_gauss_rule_evaluates_to(kernel: str) -> None:
    # n steps on a diagonal with Rademacher probes: every node an eigenvalue, every weight 1/n.
    distinct = np.unique(SPECTRUM)
    exact = slq.density(np.diag(distinct), num_steps=distinct.size, num_probes=1, seed=0)
    t = np.linspace(-3.0, 6.0, 301)
    assert_close(
        smoothed_density(distinct, t, sigma=0.3, kernel=kernel), exact.evaluate(t, 0.3, kernel)
    )


def test_multiplicities_and_weights_are_the_same_measure() -> None:
    t = np.linspace(-1.0, 3.0, 50)
    merged = smoothed_density([1.0, 2.0], t, sigma=0.2, weights=[2 / 3, 1 / 3])
    assert_close(smoothed_density(np.array([1.0, 2.0, 1.0]), t, sigma=0.2), merged)
    by_hand = (2 / 3) * np.exp(-0.5 * ((t - 1.0) / 0.2) ** 2) + (1 / 3) * np.exp(
        -0.5 * ((t - 2.0) / 0.2) ** 2
    )
    assert_close(merged, by_hand / (0.2 * np.sqrt(2.0 * np.pi)))


def test_a_problem_is_its_exact_eigenvalues(dos: slq.SpectralDensity) -> None:
    problem = Problem("sample", symmetric_with_spectrum(SPECTRUM, 0), SPECTRUM)
    assert l1_distance(dos, problem) == l1_distance(dos, SPECTRUM)
    assert wasserstein1(dos, problem) == wasserstein1(dos, SPECTRUM)
    unknown = Problem("no spectrum", np.eye(3), None)
    with pytest.raises(ValueError, match="'no spectrum' has no exact eigenvalues"):
        wasserstein1(dos, unknown)


def test_a_spectral_density_is_its_probe_averaged_gauss_rules(dos: slq.SpectralDensity) -> None:
    rules = Discrete(dos.nodes, dos.weights)
    t = np.linspace(-2.0, 5.0, 200)
    assert_close(rules.smoothed(t, 0.1, "gaussian"), dos.evaluate(t, 0.1))
    assert wasserstein1(dos, (dos.nodes, dos.weights)) == 0.0
    assert_close(rules.cdf(np.array(0.3)), dos.cdf(0.3))


def test_l1_of_equal_and_of_disjoint_measures() -> None:
    assert l1_distance([0.0, 1.0], ([1.0, 0.0], [0.5, 0.5])) == 0.0
    assert_close(l1_distance([0.0], [100.0], sigma=1.0), 2.0)
    assert_close(l1_distance([0.0], [100.0], sigma=1.0, kernel="lorentzian"), 2.0, factor=1e13)


def test_l1_of_two_point_masses_is_twice_the_gaussian_overlap_complement() -> None:
    # ∫|N(0,σ²) − N(d,σ²)| = 2(2Φ(d/2σ) − 1) = 2 erf(d / (2√2 σ)).
    from math import erf, sqrt

    exact = 2.0 * erf(1.0 / (2.0 * sqrt(2.0) * 0.5))
    # The kink of |f − g| where they cross costs ~h²/12 × its slope jump: 1e-4 relative.
    assert abs(l1_distance([0.0], [1.0], sigma=0.5) - exact) < 1e-4 * exact


@given(st.floats(-5.0, 5.0), st.floats(0.0, 3.0))
def test_wasserstein1_of_a_shifted_measure_is_the_shift(low: float, shift: float) -> None:
    nodes = low + np.array([0.0, 0.3, 1.0, 1.7])
    weights = np.array([0.1, 0.4, 0.2, 0.3])
    assert_close(wasserstein1((nodes + shift, weights), (nodes, weights)), shift, scale=10.0)


def test_wasserstein1_and_ks_by_hand() -> None:
    assert wasserstein1([0.0], [1.0]) == 1.0
    assert wasserstein1(([0.0, 1.0], [0.5, 0.5]), [0.0]) == 0.5
    assert ks_distance([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert ks_distance([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 4.0]) == 0.25
    assert ks_distance(([0.0, 1.0], [0.25, 0.75]), ([0.0, 1.0], [0.5, 0.5])) == 0.25
    # Uniform on [0, 1] against a point mass at its middle: ∫|F − G| = 1/4, sup = 1/2.
    uniform = Curve([0.0, 1.0], [1.0, 1.0])
    assert_close(wasserstein1(uniform, [0.5]), 0.25)
    assert_close(ks_distance(uniform, [0.5]), 0.5)


def test_a_kpm_curve_has_the_cdf_of_its_damped_series() -> None:
    kpm = slq.kpm_density(np.diag(SPECTRUM), degree=30, num_probes=2, seed=0)
    low, high = kpm.bounds
    t = low + (high - low) * 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, 20001)))
    # The curve's CDF is the trapezoidal rule: second order, ~1e-5 on these 20001 points.
    assert ks_distance(kpm, Curve(t, kpm.evaluate(t))) < 3e-5
    assert extreme_error(kpm, SPECTRUM) == (
        (SPECTRUM.min() - low) / np.ptp(SPECTRUM),
        (high - SPECTRUM.max()) / np.ptp(SPECTRUM),
    )


def test_a_law_is_compared_through_its_cdf() -> None:
    law = semicircle()
    assert wasserstein1(law.quantiles(2000), law) < 1e-3
    assert ks_distance(law.quantiles(2000), law) < 1e-3
    assert extreme_error(law, [-2.0, 2.0]) == (0.0, 0.0)
    with pytest.raises(TypeError, match="no exact smoothed density"):
        l1_distance(law.quantiles(100), law)


def test_extreme_error_is_relative_to_the_true_width(dos: slq.SpectralDensity) -> None:
    assert extreme_error([0.5, 9.0], [0.0, 5.0, 10.0]) == (0.05, 0.1)
    assert extreme_error(([0.0, 1.0], [1.0, 0.0]), [0.0, 4.0]) == (0.0, 1.0)  # weight 0: not there
    low, high = extreme_error(dos, SPECTRUM)
    assert low < 1e-3
    assert high < 1e-6


def test_discrete_rows_are_probes_averaged() -> None:
    mu = Discrete([[0.0, 1.0], [2.0, 3.0]], [[0.5, 0.5], [0.25, 0.75]])
    assert mu.weights.tolist() == [0.25, 0.25, 0.125, 0.375]
    assert not mu.weights.flags.writeable


BAD = [
    (lambda: Discrete([0.0, 1.0], [0.5, 0.6]), ValueError, "weights must sum to 1"),
    (lambda: Discrete([[0.0, 1.0]], [[0.5, 0.4]]), ValueError, "each row of weights must sum"),
    (lambda: Discrete([0.0, 1.0], [1.5, -0.5]), ValueError, "weights must be >= 0"),
    (lambda: Discrete([0.0, np.nan]), ValueError, "nodes must be finite"),
    (lambda: Discrete([0.0, np.inf]), ValueError, "nodes must be finite"),
    (lambda: Discrete([0.0, 1.0], [1.0]), ValueError, "weights must have the shape of nodes"),
    (lambda: Discrete([]), ValueError, "nodes must be a non-empty"),
    (lambda: Discrete("abc"), TypeError, "nodes must be real numbers"),
    (lambda: Curve([0.0, 1.0], [1.0, -1.0]), ValueError, "values must be >= 0"),
    (lambda: Curve([0.0, 1.0], [3.0, 3.0]), ValueError, "the integral of values must sum to 1"),
    (lambda: Curve([1.0, 0.0], [1.0, 1.0]), ValueError, "grid must be strictly increasing"),
    (lambda: Curve([0.0, 1.0], [1.0]), ValueError, "grid and values must be 1-D"),
    (lambda: l1_distance(Curve([0.0, 1.0], [1.0, 1.0]), [0.5], sigma=0.1), ValueError, "spacing"),
    (lambda: l1_distance([0.0], [1.0], sigma=0.0), ValueError, "sigma must be a finite number > 0"),
    (lambda: l1_distance([0.0], [1.0], kernel="box"), ValueError, "kernel must be one of"),
    (lambda: l1_distance([0.0], [1.0], grid=[[0.0, 1.0]]), ValueError, "grid must be 1-D"),
    (lambda: wasserstein1({"a": 1}, [1.0]), TypeError, "estimate must be a SpectralDensity"),
    (lambda: ks_distance([1.0], 3.0), TypeError, "truth must be a SpectralDensity"),
    (lambda: extreme_error(Curve([0.0, 1.0], [1.0, 1.0]), [1.0]), TypeError, "no extreme"),
    (lambda: smoothed_density([0.0], [0.0], sigma=-1.0), ValueError, "sigma must be"),
    (lambda: smoothed_density([np.nan], [0.0], sigma=1.0), ValueError, "nodes must be finite"),
    (lambda: smoothed_density([0.0], [[0.0]], sigma=1.0), ValueError, "grid must be 1-D"),
    (lambda: smoothed_density(Curve([0, 1], [1, 1]), [0.0], sigma=1.0), TypeError, "an array"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD, ids=[b[2] for b in BAD])
def test_bad_input_is_refused_clearly(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()

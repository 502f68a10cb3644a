"""`slq.bounds`: the Wasserstein bounds of a result hold against exact distances."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    spectral_measure,
    symmetric_with_spectrum,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance
from strategies import Case, cases

import slq
import slq.bounds


def run(a: np.ndarray, m: int, v: np.ndarray) -> slq.SpectralDensity:
    return slq.SpectralDensity.from_lanczos(slq.lanczos(a, v, m), dim=a.shape[0])


def probes(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, k))


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

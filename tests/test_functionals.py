"""`slq.functionals`: integrals against a result's Gauss rules, exact where Gauss rules are."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, spectral_measure, symmetric_with_spectrum
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Case, cases

import slq
from slq import functionals

SPECTRUM = np.arange(1.0, 21.0)


def test_functionals_are_exact_with_n_steps_and_the_methods_delegate() -> None:
    dos = slq.density(np.diag(SPECTRUM), num_probes=3, seed=0)  # 20 steps: the rules are exact
    np.testing.assert_allclose(functionals.cdf(dos, [0.5, 10.5, 20.5]), [0.0, 0.5, 1.0])
    # Exact up to the rounding of a 20-step Lanczos run on numbers up to 20.
    assert_close(functionals.count(dos, 4.5, 9.5).value, 5.0, scale=20.0)
    assert_close(functionals.moment(dos, 2).value, np.mean(SPECTRUM**2), factor=10.0)
    logdet = functionals.trace_function(dos, "log", shift=1.0)
    assert_close(logdet.value, np.log(SPECTRUM + 1.0).sum(), scale=20.0 * 3.1)
    assert dos.count(4.5, 9.5) == functionals.count(dos, 4.5, 9.5)
    assert dos.trace_function("log", shift=1.0) == logdet


def run(a: np.ndarray, m: int, v: np.ndarray) -> slq.SpectralDensity:
    return slq.SpectralDensity.from_lanczos(slq.lanczos(a, v, m), dim=a.shape[0])


def probes(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, k))


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

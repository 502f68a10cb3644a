"""The kernel polynomial method against dense eigendecompositions, on every backend."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from helpers import Backend, CheckedOperator, symmetric_with_spectrum
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Case, cases

import slq
from slq._kernels import KERNELS
from slq._probes import draw_probes
from slq.kpm import (
    KPMDensity,
    _chebyshev_transform,
    damping_coefficients,
    from_quadrature,
    kpm_density,
)


def spiked(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian bulk and three outliers, as in a network Hessian."""
    rng = np.random.default_rng(seed)
    lam = np.concatenate([rng.normal(0.0, 0.3, n - 3), [4.0, 6.0, 9.0]])
    return lam, symmetric_with_spectrum(lam, seed)


def padded(lam: np.ndarray, pad: float = 0.1) -> tuple[float, float]:
    return float(lam.min() - pad), float(lam.max() + pad)


def probe_measures(a: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (n,) and each probe's weights (k, n), for the probes slq draws."""
    lam, u = np.linalg.eigh(a)
    v = draw_probes("rademacher", a.shape[0], range(k), seed)
    return lam, ((u.T @ v) ** 2).T


def exact_moments(a: np.ndarray, bounds: tuple[float, float], degree: int, k: int, seed: int):
    lam, weights = probe_measures(a, k, seed)
    c, h = (bounds[0] + bounds[1]) / 2, (bounds[1] - bounds[0]) / 2
    chebyshev = np.cos(np.arccos((lam - c) / h)[:, None] * np.arange(degree + 1))
    return weights @ chebyshev


def smoothed(lam: np.ndarray, weights: np.ndarray, t: np.ndarray, sigma: float, kernel: str):
    """Σ_i w_i f_σ(t − λ_i) for each row of weights: the exact smoothed probe densities."""
    return weights @ KERNELS[kernel](t[None, :] - lam[:, None], sigma)


def l1(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> float:
    """The L1 distance on `t`, summed over the rows of (k, g) curves."""
    return float(np.sum(np.trapezoid(np.abs(a - b), t, axis=-1)))


@pytest.mark.parametrize("degree", [1, 2, 31])
def test_moments_are_the_exact_chebyshev_moments(backend: Backend, degree: int) -> None:
    lam, a = spiked()
    bounds = padded(lam)
    op = CheckedOperator(backend.asarray(a))
    dos = kpm_density(op, degree=degree, num_probes=3, seed=5, bounds=bounds)
    exact = exact_moments(a, bounds, degree, 3, 5)
    assert dos.moments.shape == (3, degree + 1) and dos.moments.dtype == np.float64
    np.testing.assert_allclose(dos.moments, exact, rtol=0, atol=1e-12)
    assert dos.num_matvecs == op.inputs * 3 == 3 * -(-degree // 2)


def test_float32_with_estimated_bounds_stays_in_the_operators_library(backend: Backend) -> None:
    lam, a = spiked()
    op = CheckedOperator(backend.asarray(a, "float32"))
    dos = kpm_density(op, degree=40, num_probes=3, seed=1)
    assert op.inputs == 20 + 20  # the bounds run (one probe), then 20 products of 3 probes
    assert dos.lambda_min < lam.min() and dos.lambda_max > lam.max()
    np.testing.assert_allclose(dos.moments, exact_moments(a, dos.bounds, 40, 3, 1), atol=1e-4)


def test_doubling_agrees_with_the_plain_recurrence() -> None:
    lam, a = spiked()
    bounds = padded(lam)
    c, h = (bounds[0] + bounds[1]) / 2, (bounds[1] - bounds[0]) / 2
    v = draw_probes("rademacher", a.shape[0], range(4), 2)
    t_prev, t = v, (a @ v - c * v) / h
    plain = [np.sum(v * v, axis=0), np.sum(v * t, axis=0)]
    for _ in range(2, 50):
        t_prev, t = t, 2 * (a @ t - c * t) / h - t_prev
        plain.append(np.sum(v * t, axis=0))
    dos = kpm_density(a, degree=49, num_probes=4, seed=2, bounds=bounds)
    np.testing.assert_allclose(dos.moments, np.array(plain).T, rtol=0, atol=1e-12)
    assert dos.num_matvecs == 4 * 25


def test_probes_do_not_depend_on_the_batch_size() -> None:
    lam, a = spiked(60)
    whole = kpm_density(a, degree=20, num_probes=5, seed=3, bounds=padded(lam))
    for batch in (1, 2, 7):
        part = kpm_density(
            a, degree=20, num_probes=5, seed=3, bounds=padded(lam), probe_batch_size=batch
        )
        np.testing.assert_allclose(part.moments, whole.moments, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kernel", ["gaussian", "lorentzian"])
def test_smoothed_density_converges_to_the_exact_one_as_degree_grows(kernel: str) -> None:
    lam, a = spiked()
    bounds = padded(lam)
    sigma = 0.2
    t = np.linspace(bounds[0] - 1.0, bounds[1] + 1.0, 600)
    eigenvalues, weights = probe_measures(a, 4, 7)
    exact = smoothed(eigenvalues, weights, t, sigma, kernel)
    errors = []
    for degree in (10, 20, 40, 80, 160, 320):
        dos = kpm_density(a, degree=degree, num_probes=4, seed=7, bounds=bounds)
        errors.append(l1(dos.per_probe(t, sigma, kernel), exact, t))
    assert all(later < earlier for earlier, later in itertools.pairwise(errors)), errors
    assert errors[-1] < (1e-10 if kernel == "gaussian" else 1e-5), errors


def test_smoothed_density_estimates_the_spectrum_within_its_error_bars() -> None:
    lam, a = spiked(200, seed=1)
    dos = kpm_density(a, degree=120, num_probes=20, seed=1, bounds=padded(lam))
    t, sigma = dos.grid(500, pad=1.0), 0.15
    exact = KERNELS["gaussian"](t[None, :] - lam[:, None], sigma).mean(axis=0)
    error = l1(dos.evaluate(t, sigma), exact, t)
    assert error <= 3.0 * np.trapezoid(dos.stderr(t, sigma), t), error
    assert np.trapezoid(dos.evaluate(t, sigma), t) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("damping", ["jackson", "lorentz"])
def test_damped_series_integrates_to_one_and_is_nonnegative(damping: str) -> None:
    lam, a = spiked()
    dos = kpm_density(a, degree=64, num_probes=3, seed=0, bounds=padded(lam), damping=damping)
    # In λ = c + h cos θ the integrand is a trigonometric polynomial of degree 64,
    # which the midpoint rule on 200 points integrates exactly.
    theta = np.pi * (np.arange(200) + 0.5) / 200
    c, h = (dos.lambda_min + dos.lambda_max) / 2, (dos.lambda_max - dos.lambda_min) / 2
    curves = dos.per_probe(c + h * np.cos(theta))
    mass = np.sum(curves * h * np.sin(theta), axis=1) * np.pi / 200
    np.testing.assert_allclose(mass, 1.0, rtol=0, atol=1e-12)
    assert curves.min() >= -1e-12 * curves.max()


def test_undamped_series_oscillates_and_the_edges_are_zero() -> None:
    lam, a = spiked()
    dos = kpm_density(a, degree=64, num_probes=2, seed=0, bounds=padded(lam), damping="none")
    t = dos.grid(801)
    curve = dos.evaluate(t)
    assert curve.min() < 0.0  # Gibbs oscillations: why the default damps
    assert curve[0] == curve[-1] == 0.0
    assert np.all(dos.evaluate([dos.lambda_min - 1.0, dos.lambda_max + 1.0]) == 0.0)
    jackson = dataclasses.replace(dos, damping="jackson")
    assert jackson.evaluate(t).min() >= 0.0


def test_jackson_coefficients_match_weisse_eq_71() -> None:
    n = 11
    j = np.arange(n)
    expected = (
        (n - j + 1) * np.cos(np.pi * j / (n + 1))
        + np.sin(np.pi * j / (n + 1)) / np.tan(np.pi / (n + 1))
    ) / (n + 1)
    np.testing.assert_allclose(damping_coefficients("jackson", n - 1), expected, atol=1e-15)
    assert damping_coefficients("lorentz", 10)[0] == 1.0
    np.testing.assert_array_equal(damping_coefficients("none", 4), np.ones(5))


def test_chebyshev_transform_is_the_dct() -> None:
    m, num = 16, 6
    x = np.cos(np.pi * (np.arange(m) + 0.5) / m)
    values = np.stack([np.exp(x), x**3, 1.0 / (2.0 + x)])
    direct = 2.0 / m * values @ np.cos(np.arange(num)[None, :] * np.arccos(x)[:, None])
    direct[:, 0] /= 2.0
    np.testing.assert_allclose(_chebyshev_transform(values, num), direct, atol=1e-14)
    np.testing.assert_allclose(
        _chebyshev_transform(values, num)[1], [0, 0.75, 0, 0.25, 0, 0], atol=1e-14
    )


def test_from_quadrature_equals_kpm_with_the_same_probes() -> None:
    lam, a = spiked()
    bounds = padded(lam)
    dos = slq.density(a, num_steps=12, num_probes=3, seed=9)
    lanczos_kpm = from_quadrature(
        dos.nodes,
        dos.weights,
        dim=dos.dim,
        degree=23,
        bounds=bounds,
        num_matvecs=dos.num_matvecs,
        seed=dos.seed,
    )
    direct = kpm_density(a, degree=23, num_probes=3, seed=9, bounds=bounds)
    np.testing.assert_allclose(lanczos_kpm.moments, direct.moments, rtol=0, atol=1e-10)
    assert (lanczos_kpm.num_matvecs, lanczos_kpm.seed, lanczos_kpm.dim) == (36, 9, 120)


def test_from_quadrature_after_a_breakdown() -> None:
    a = np.diag(np.repeat([-1.0, 0.5, 2.0], 20))
    dos = slq.density(a, num_steps=6, num_probes=2, seed=0)
    assert dos.num_steps == 3  # broke down: three distinct eigenvalues
    quad = from_quadrature(dos.nodes, dos.weights, dim=60, degree=5, bounds=(-1.5, 2.5))
    np.testing.assert_allclose(quad.moments, exact_moments(a, (-1.5, 2.5), 5, 2, 0), atol=1e-12)


@settings(max_examples=10)
@given(case=cases(min_n=20, max_n=80), seed=st.integers(0, 2**16))
def test_estimated_bounds_contain_the_spectrum(case: Case, seed: int) -> None:
    dos = kpm_density(case.matrix, degree=8, num_probes=2, seed=seed)
    low, high = dos.bounds
    assert low < case.eigenvalues.min() and high > case.eigenvalues.max()
    # The bounds run stops early once its Krylov space is invariant.
    assert 2 * 4 < dos.num_matvecs <= 20 + 2 * 4


def test_estimated_bounds_are_tight_around_outliers() -> None:
    lam, a = spiked(200)
    dos = kpm_density(a, degree=10, num_probes=2, seed=0)
    width = np.ptp(lam)
    assert lam.min() - 0.05 * width < dos.lambda_min < lam.min()
    assert lam.max() < dos.lambda_max < lam.max() + 0.05 * width
    assert dos.num_matvecs == 20 + 2 * 5


def test_a_multiple_of_the_identity_has_an_interval() -> None:
    dos = kpm_density(3.0 * np.eye(10), degree=30, num_probes=2, seed=0)
    assert dos.lambda_min < 3.0 < dos.lambda_max
    t = dos.grid(401, pad=0.5)
    np.testing.assert_allclose(
        dos.evaluate(t, sigma=0.01), KERNELS["gaussian"](t - 3.0, 0.01), atol=1e-6
    )


def test_bounds_that_miss_the_spectrum_raise_a_clear_error() -> None:
    _, a = spiked()
    with pytest.raises(ValueError, match=r"eigenvalues outside the bounds; pass wider `bounds`"):
        kpm_density(a, degree=60, num_probes=2, seed=0, bounds=(-1.0, 5.0))


# numpy warns about the NaN before slq sees it in a moment and raises.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_from_the_operator_raises() -> None:
    a = np.eye(5)
    a[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        kpm_density(a, degree=4, num_probes=1, seed=0, bounds=(0.0, 2.0))


def test_result_properties_and_immutability() -> None:
    _, a = spiked(50)
    dos = kpm_density(a, degree=21, num_probes=4, seed=0, bounds=(-2.0, 10.0))
    assert (dos.num_probes, dos.degree, dos.dim, dos.seed, dos.damping) == (4, 21, 50, 0, "jackson")
    assert (dos.lambda_min, dos.lambda_max) == (-2.0, 10.0)
    np.testing.assert_array_equal(dos.grid(4), [-2.0, 2.0, 6.0, 10.0])
    assert dos.grid(3, pad=1.0)[0] == -3.0
    t = dos.grid(30)
    curves = dos.per_probe(t, 0.5)
    assert curves.shape == (4, 30)
    np.testing.assert_allclose(dos.evaluate(t, 0.5), curves.mean(axis=0))
    np.testing.assert_allclose(dos.stderr(t, 0.5), curves.std(axis=0, ddof=1) / 2.0)
    assert (
        repr(dos)
        == "KPMDensity(dim=50, num_probes=4, degree=21, bounds=(-2, 10), damping='jackson')"
    )
    with pytest.raises(AttributeError):
        dos.dim = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        dos.moments[0, 0] = 2.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"degree": 0}, ValueError, "degree must be >= 1, got 0"),
        ({"degree": 2.5}, TypeError, "degree must be an integer"),
        ({"num_probes": 0}, ValueError, "num_probes must be >= 1"),
        ({"bounds": (1.0, 1.0)}, ValueError, r"bounds must be finite with a < b, got \(1.0, 1.0\)"),
        ({"bounds": (2.0, 1.0)}, ValueError, "bounds must be finite with a < b"),
        ({"bounds": (0.0, np.inf)}, ValueError, "bounds must be finite"),
        ({"bounds": (0.0, 1.0, 2.0)}, ValueError, r"bounds must be a pair \(a, b\)"),
        ({"bounds": 3.0}, TypeError, r"bounds must be a pair \(a, b\)"),
        ({"probe": "sobol"}, ValueError, "probe must be one of"),
        ({"damping": "fejer"}, ValueError, "damping must be one of"),
        ({"probe_batch_size": 0}, ValueError, "probe_batch_size must be >= 1"),
    ],
)
def test_kpm_density_rejects_bad_input(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        kpm_density(np.eye(4), **{"num_probes": 2, "seed": 0, **kwargs})


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0,), r"sigma must be a finite number > 0 \(or None for the damped series\), got 0.0"),
        ((-1.0,), "sigma must be a finite number > 0"),
        ((np.nan,), "sigma must be a finite number > 0"),
        ((0.1, "box"), "kernel must be one of 'gaussian', 'lorentzian', got 'box'"),
    ],
)
def test_evaluate_rejects_bad_sigma_and_kernel(args: tuple, match: str) -> None:
    dos = kpm_density(np.eye(4), degree=4, num_probes=2, seed=0, bounds=(0.0, 2.0))
    with pytest.raises(ValueError, match=match):
        dos.evaluate(dos.grid(5), *args)


@pytest.mark.parametrize("sigma", [None, 0.1])
def test_evaluate_rejects_a_grid_that_is_not_1d(sigma: float | None) -> None:
    dos = kpm_density(np.eye(4), degree=4, num_probes=2, seed=0, bounds=(0.0, 2.0))
    with pytest.raises(ValueError, match=r"grid must be 1-D, got shape \(2, 2\)"):
        dos.evaluate(np.zeros((2, 2)), sigma)


def test_stderr_needs_two_probes_and_grid_needs_a_valid_pad() -> None:
    dos = kpm_density(np.eye(4), degree=4, num_probes=1, seed=0, bounds=(0.0, 2.0))
    with pytest.raises(ValueError, match="stderr needs at least 2 probes"):
        dos.stderr(dos.grid(5))
    with pytest.raises(ValueError, match=r"pad must be a finite number >= 0, got -1\.0"):
        dos.grid(5, pad=-1.0)


def test_from_quadrature_rejects_bad_input() -> None:
    nodes, weights = np.array([[0.0, 1.0]]), np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"degree must be <= 2m - 1 = 3 for Gauss rules of m = 2"):
        from_quadrature(nodes, weights, dim=4, degree=4, bounds=(-1.0, 2.0))
    with pytest.raises(ValueError, match=r"node 1 lies outside bounds=\(-1, 0.5\)"):
        from_quadrature(nodes, weights, dim=4, degree=3, bounds=(-1.0, 0.5))
    with pytest.raises(ValueError, match="nodes and weights must have the same shape"):
        from_quadrature(nodes, weights[:, :1], dim=4, degree=1, bounds=(-1.0, 2.0))
    with pytest.raises(ValueError, match="nodes and weights must be finite"):
        from_quadrature(nodes * np.nan, weights, dim=4, degree=1, bounds=(-1.0, 2.0))
    with pytest.raises(ValueError, match="bounds must be finite with a < b"):
        from_quadrature(nodes, weights, dim=4, degree=1, bounds=(2.0, -1.0))
    # An unused entry (weight 0) may sit anywhere.
    quad = from_quadrature([[0.0, 9.0]], [[1.0, 0.0]], dim=4, degree=3, bounds=(-1.0, 1.0))
    np.testing.assert_allclose(quad.moments, [[1.0, 0.0, -1.0, 0.0]], atol=1e-15)


def test_kpm_density_rejects_malformed_moments() -> None:
    with pytest.raises(ValueError, match=r"moments must have shape \(k, degree\+1\)"):
        KPMDensity(np.ones((2, 1)), bounds=(0.0, 1.0), dim=3)
    with pytest.raises(ValueError, match="moments must be finite"):
        KPMDensity(np.array([[1.0, np.inf]]), bounds=(0.0, 1.0), dim=3)
    with pytest.raises(ValueError, match="damping must be one of"):
        KPMDensity(np.ones((1, 2)), bounds=(0.0, 1.0), dim=3, damping="box")


def test_lanczos_kpm_is_the_methods_conversion() -> None:
    from slq.lanczos_kpm import lanczos_kpm

    dos = slq.density(np.diag(np.linspace(-1.0, 1.0, 200)), num_steps=12, num_probes=3, seed=0)
    kpm = lanczos_kpm(dos, bounds=(-2.0, 2.0))
    assert kpm.degree == 23 and kpm.bounds == (-2.0, 2.0)
    np.testing.assert_array_equal(kpm.moments, dos.kpm(bounds=(-2.0, 2.0)).moments)

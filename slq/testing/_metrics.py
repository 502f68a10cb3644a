"""Distances between an estimated spectral measure and the truth: L1, W1, KS, extremes.

Each function takes `estimate` and `truth` in any form `as_measure` accepts:
a `SpectralDensity`, a `KPMDensity`, `Discrete` / a tuple (nodes, weights),
`Curve`, a `Problem` (its exact eigenvalues), a `SpectralLaw` (W1, KS and
extremes only) or a 1-D array of eigenvalues.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slq._kernels import KERNELS
from slq._validate import check_choice, check_points, check_positive_float
from slq.testing._measures import Measure, as_measure
from slq.testing._reference import comparison_grid, default_sigma

__all__ = ["extreme_error", "ks_distance", "l1_distance", "wasserstein1"]


def l1_distance(
    estimate: Any,
    truth: Any,
    *,
    sigma: float | None = None,
    kernel: str = "gaussian",
    grid: Any = None,
) -> float:
    r"""Return ∫ |f_σ * μ̂ − f_σ * μ| dt, the L1 distance of the two smoothed densities.

    Both measures are smoothed by the same kernel f_σ (the conventions of
    `SpectralDensity.evaluate`) and the integral is that of the linear
    interpolant of their difference on `grid` (the trapezoidal rule, with its
    sign changes integrated exactly). It lies in [0, 2]: 0 for equal
    measures, 2 for measures far apart at scale σ. A `Curve` is convolved
    with f_σ by quadrature on its own grid.

    Parameters
    ----------
    estimate, truth
        The two measures (see the module's accepted forms).
    sigma : float, optional
        Kernel width. Default: the truth's spectral width / 100
        (`DEFAULT_RESOLUTION`), the same for every estimate of one truth.
    kernel : {"gaussian", "lorentzian"}
        f_σ.
    grid : array_like, shape (g,), optional
        Default: points σ/40 apart covering both supports, 10σ past them for a
        Gaussian and 100σ for a Lorentzian (whose tails beyond are ~0.3%).

    Returns
    -------
    float

    Examples
    --------
    >>> from slq.testing import l1_distance
    >>> round(l1_distance([0.0], [100.0], sigma=1.0), 6)  # disjoint: 2
    2.0
    >>> l1_distance([0.0, 1.0], ([1.0, 0.0], [0.5, 0.5]))  # the same measure
    0.0
    """
    kernel = check_choice("kernel", kernel, tuple(KERNELS))
    a, b = as_measure(estimate, "estimate"), as_measure(truth, "truth")
    sigma = default_sigma(*b.support()) if sigma is None else check_positive_float("sigma", sigma)
    if grid is None:
        (low_a, high_a), (low_b, high_b) = a.support(), b.support()
        t = comparison_grid(min(low_a, low_b), max(high_a, high_b), sigma, kernel)
    else:
        t = check_points("grid", grid)
        if t.ndim != 1 or t.size < 2 or not (np.diff(t) > 0).all():
            msg = f"grid must be 1-D, increasing, with >= 2 points, got shape {t.shape}"
            raise ValueError(msg)
    difference = a.smoothed(t, sigma, kernel) - b.smoothed(t, sigma, kernel)
    return _area(np.diff(t), difference[:-1], difference[1:])


def _area(width: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Return ∫ |d| for d linear from `start` to `end` on intervals of `width`.

    Where d changes sign the two triangles are integrated exactly, so that the
    kinks of |d| cost nothing beyond the linear interpolation itself.
    """
    same_sign = start * end >= 0.0
    magnitude = np.abs(start) + np.abs(end)
    crossing = (start**2 + end**2) / np.where(same_sign, 1.0, magnitude)
    return float((np.where(same_sign, magnitude, crossing) * width).sum() / 2.0)


def _cdf_pieces(a: Measure, b: Measure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F − G at the start and end of each interval between the breakpoints of both.

    On each interval a discrete measure's CDF is constant and a continuous one's
    is taken as linear, so F − G is linear there: exact for two discrete measures.
    """
    x = np.union1d(a.breakpoints(), b.breakpoints())
    fa, fb = a.cdf(x), b.cdf(x)
    start = fa[:-1] - fb[:-1]
    end = (fa[:-1] if a.kind == "discrete" else fa[1:]) - (
        fb[:-1] if b.kind == "discrete" else fb[1:]
    )
    return np.diff(x), start, end


def wasserstein1(estimate: Any, truth: Any) -> float:
    r"""Return W₁ = ∫ |F̂(x) − F(x)| dx, the 1-Wasserstein (earth mover's) distance.

    For two discrete measures (eigenvalues, Gauss rules) it is exact: the CDFs
    are step functions and the integral a finite sum (Villani 2009, Optimal
    Transport, Remark 2.19, the one-dimensional formula). A `Curve`'s CDF is its
    cumulative trapezoidal integral, a `KPMDensity`'s the closed-form integral
    of its damped Chebyshev series, a `SpectralLaw`'s its own: between their
    sample points they are taken as linear (second-order accurate).

    Examples
    --------
    >>> from slq.testing import wasserstein1
    >>> wasserstein1([0.0, 1.0], [0.5, 1.5])  # shifted by 0.5
    0.5
    >>> wasserstein1(([0.0, 1.0], [0.5, 0.5]), [0.0])  # half the mass moves 1
    0.5
    """
    return _area(*_cdf_pieces(as_measure(estimate, "estimate"), as_measure(truth, "truth")))


def ks_distance(estimate: Any, truth: Any) -> float:
    r"""Return the Kolmogorov–Smirnov distance sup_x |F̂(x) − F(x)|, in [0, 1].

    Exact for two discrete measures (both CDFs' jumps are sampled from both
    sides); for continuous ones, to the resolution of their sample points.

    Examples
    --------
    >>> from slq.testing import ks_distance
    >>> ks_distance([0.0, 1.0], [2.0, 3.0])  # disjoint supports
    1.0
    >>> ks_distance([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 4.0])
    0.25
    """
    _, start, end = _cdf_pieces(as_measure(estimate, "estimate"), as_measure(truth, "truth"))
    return float(max(np.abs(start).max(initial=0.0), np.abs(end).max(initial=0.0)))


def extreme_error(estimate: Any, truth: Any) -> tuple[float, float]:
    r"""Return (|λ̂_min − λ_min|, |λ̂_max − λ_max|) / (λ_max − λ_min), the truth's width.

    The estimate's extremes are the outermost nodes of positive weight (for SLQ
    the extreme Ritz values), a `KPMDensity`'s its bounds (which enclose the
    spectrum by construction) and a law's its support. A spectrum of one point
    is normalised by max(|λ|, 1) instead. A `Curve` has no extremes and is
    refused.

    Examples
    --------
    >>> from slq.testing import extreme_error
    >>> extreme_error([0.5, 9.0], [0.0, 5.0, 10.0])
    (0.05, 0.1)
    """
    low, high = as_measure(truth, "truth").extremes()
    low_hat, high_hat = as_measure(estimate, "estimate").extremes()
    width = high - low
    width = width if width > 0.0 else max(abs(low), 1.0)
    return abs(low_hat - low) / width, abs(high_hat - high) / width

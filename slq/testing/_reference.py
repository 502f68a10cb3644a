"""The exactly smoothed density of a spectrum, and the σ and grid the metrics default to."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from slq._kernels import KERNELS
from slq._validate import check_choice, check_points, check_positive_float
from slq.testing._measures import Discrete, as_measure

__all__ = ["DEFAULT_RESOLUTION", "comparison_grid", "default_sigma", "smoothed_density"]

logger = logging.getLogger("slq")

DEFAULT_RESOLUTION = 100
"""σ = (λ_max − λ_min) / 100 of the truth by default: about what the default 90 Lanczos
steps resolve (`slq.smoothing.default_sigma` is width / m), and one σ for every estimator."""

# Grid spacing σ / 40. Where f − g changes sign, |f − g| has a kink that the linear
# interpolant misses by ~h²/12 times the jump of its slope: ~1e-4 of the L1 distance of
# two Gaussians 2σ apart at this spacing (6e-4 at σ / 10), measured below the errors compared.
_POINTS_PER_SIGMA = 40

# How far past the spectrum the grid reaches, in σ: a Gaussian's tail beyond 10σ is 1e-23;
# a Lorentzian's mass beyond dσ is 1/(πd) on each side, 0.3% at d = 100.
_PAD = {"gaussian": 10.0, "lorentzian": 100.0}

# Above this many points the spacing grows instead (logged): estimates far off the spectrum.
_MAX_POINTS = 200_000


def default_sigma(low: float, high: float) -> float:
    """σ = (high − low) / `DEFAULT_RESOLUTION`; a single point's scale max(|λ|, 1) stands in."""
    width = high - low
    width = width if width > 0.0 else max(abs(low), abs(high), 1.0)
    return width / DEFAULT_RESOLUTION


def comparison_grid(low: float, high: float, sigma: float, kernel: str) -> np.ndarray:
    """Return points σ/40 apart from `low` − pad to `high` + pad (10σ Gaussian, 100σ Lorentzian)."""
    pad = _PAD[check_choice("kernel", kernel, tuple(KERNELS))] * sigma
    num = int(np.ceil((high - low + 2.0 * pad) * _POINTS_PER_SIGMA / sigma)) + 1
    if num > _MAX_POINTS:
        logger.warning("comparison grid capped at %d points (spacing > sigma/40)", _MAX_POINTS)
    return np.linspace(low - pad, high + pad, min(num, _MAX_POINTS))


def smoothed_density(
    eigenvalues: Any,
    grid: Any,
    *,
    sigma: float,
    kernel: str = "gaussian",
    weights: Any = None,
) -> np.ndarray:
    r"""Return the exactly smoothed density Σ_j w_j f_σ(t − λ_j) of a spectrum on `grid`.

    The kernels and σ conventions are those of `SpectralDensity.evaluate`: for
    ``"gaussian"``, f_σ is the normal density of standard deviation σ; for
    ``"lorentzian"``, the Cauchy density of half-width σ (Lin, Saad & Yang 2016,
    SIAM Rev. 58, §3). With the default weights 1/n this is the quantity an SLQ
    curve estimates, (1/n) Σ_j f_σ(t − λ_j). Equal eigenvalues are merged
    first, so a spectrum with multiplicities costs one kernel per distinct value;
    otherwise the cost is O(n · g), exact to rounding, no binning.

    Parameters
    ----------
    eigenvalues : array_like, shape (n,), or Problem
        The spectrum; a `Problem` stands for its exact eigenvalues.
    grid : array_like, shape (g,)
        Points t at which to evaluate.
    sigma : float
        Kernel width, > 0.
    kernel : {"gaussian", "lorentzian"}
        f_σ.
    weights : array_like, shape (n,), optional
        Masses w_j >= 0 summing to 1; default 1/n.

    Returns
    -------
    numpy.ndarray, shape (g,)

    Raises
    ------
    ValueError
        For non-finite or empty input, a bad σ, or weights that are negative
        or do not sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.testing import smoothed_density
    >>> t = np.linspace(-10.0, 11.0, 4201)
    >>> curve = smoothed_density([0.0, 1.0], t, sigma=0.5)
    >>> round(float(np.trapezoid(curve, t)), 8), round(float(curve[t.searchsorted(0.5)]), 6)
    (1.0, 0.483941)
    """
    sigma = check_positive_float("sigma", sigma)
    check_choice("kernel", kernel, tuple(KERNELS))
    t = check_points("grid", grid)
    if t.ndim != 1:
        msg = f"grid must be 1-D, got shape {t.shape}"
        raise ValueError(msg)
    if weights is None:
        measure = as_measure(eigenvalues, "eigenvalues")
        if not isinstance(measure, Discrete):
            msg = f"eigenvalues must be an array or a Problem, got {type(eigenvalues).__name__}"
            raise TypeError(msg)
    else:
        measure = Discrete(check_points("eigenvalues", eigenvalues), weights)
    return measure.smoothed(t, sigma, kernel)

"""Spectral measures to compare: what an estimator returns and what the truth is.

Every input of the metrics (`slq.testing.l1_distance`, `wasserstein1`, ...)
becomes one of three measures with the same small interface: a discrete
measure (nodes and weights), a curve (a density sampled on a grid), or a
Chebyshev series (a `KPMDensity`); a `SpectralLaw` is a fourth, known by its
cumulative distribution function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from slq._kernels import smooth
from slq._validate import check_points
from slq.kpm import KPMDensity, damping_coefficients
from slq.spectral_density import SpectralDensity
from slq.testing._laws import SpectralLaw
from slq.testing._problem import Problem

__all__ = ["CURVE_MASS_TOLERANCE", "MASS_TOLERANCE", "Curve", "Discrete", "Measure", "as_measure"]

MASS_TOLERANCE = 1e-6
"""How far from 1 the weights of a discrete measure (each probe's) may sum: rounding
and a user's float32 weights pass, a forgotten normalisation does not."""

CURVE_MASS_TOLERANCE = 0.05
"""How far from 1 the trapezoidal integral of a curve may be: a grid that cuts a few
percent of tail passes, a curve that is not a probability density does not."""

# Points per Chebyshev coefficient at which a KPM series' CDF is sampled for W1 and KS.
_KPM_POINTS_PER_DEGREE = 8

# Chebyshev points at which a law's CDF is sampled for W1 and KS.
_LAW_POINTS = 4096


class Measure(Protocol):
    """A probability measure on the real line, as the metrics see it."""

    kind: str  # "discrete" (step CDF) or "continuous" (CDF linear between breakpoints)

    def support(self) -> tuple[float, float]:
        """Return the smallest interval holding all the mass (the curve's grid, the KPM bounds)."""
        ...

    def breakpoints(self) -> np.ndarray:
        """Sorted points between which the CDF is constant (discrete) or close to linear."""
        ...

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """F(x) = mass of (−∞, x], right-continuous."""
        ...

    def smoothed(self, grid: np.ndarray, sigma: float, kernel: str) -> np.ndarray:
        """Return the measure convolved with the kernel f_σ, on `grid`."""
        ...

    def extremes(self) -> tuple[float, float]:
        """Return the estimated smallest and largest eigenvalue."""
        ...


def _check_mass(name: str, total: float, tolerance: float) -> None:
    if not abs(total - 1.0) <= tolerance:
        msg = f"{name} must sum to 1 (a probability measure, within {tolerance:g}), got {total:.6g}"
        raise ValueError(msg)


def _discrete_arrays(nodes: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate (nodes, weights), 1-D or (k, m) with each row a probe's rule; flatten."""
    x = check_points("nodes", nodes)
    if x.ndim not in (1, 2) or x.size == 0:
        msg = f"nodes must be a non-empty 1-D or (k, m) array, got shape {x.shape}"
        raise ValueError(msg)
    w = np.full(x.shape, 1.0 / x.shape[-1]) if weights is None else check_points("weights", weights)
    if w.shape != x.shape:
        msg = f"weights must have the shape of nodes {x.shape}, got {w.shape}"
        raise ValueError(msg)
    if (w < 0.0).any():
        msg = f"weights must be >= 0, got {w.min():.6g}"
        raise ValueError(msg)
    rows = w.reshape(-1, x.shape[-1]).sum(axis=1)
    name = "weights" if x.ndim == 1 else "each row of weights"
    for total in (rows.min(), rows.max()):
        _check_mass(name, float(total), MASS_TOLERANCE)
    # Probes are averaged: each row's rule gets mass 1/k.
    w = w.reshape(rows.size, -1) / rows[:, None] / rows.size
    return x.reshape(-1), w.reshape(-1)


def _merged(nodes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct nodes and their total weights: multiplicities cost one kernel each."""
    unique, inverse = np.unique(nodes, return_inverse=True)
    return unique, np.bincount(inverse.reshape(-1), weights=weights, minlength=unique.size)


@dataclass(frozen=True, eq=False, init=False)
class Discrete:
    r"""A discrete spectral measure Σ_i w_i δ(λ − θ_i): eigenvalues, or Gauss rules.

    Parameters
    ----------
    nodes : array_like, shape (m,) or (k, m)
        The points θ_i: eigenvalues, or k probes' quadrature nodes.
    weights : array_like, optional
        Their weights, the shape of `nodes`, >= 0: summing to 1 (each row for
        (k, m), whose rows are then averaged). Default: 1/m each, eigenvalues
        counted with multiplicity.

    Raises
    ------
    ValueError
        For non-finite values, negative weights, a shape mismatch or weights
        that do not sum to 1 within `MASS_TOLERANCE` (then renormalised).

    Examples
    --------
    >>> from slq.testing import Discrete
    >>> mu = Discrete([[0.0, 1.0], [2.0, 3.0]], [[0.5, 0.5], [0.25, 0.75]])
    >>> mu.nodes.tolist(), mu.weights.tolist()
    ([0.0, 1.0, 2.0, 3.0], [0.25, 0.25, 0.125, 0.375])
    """

    nodes: np.ndarray
    weights: np.ndarray
    kind = "discrete"

    def __init__(self, nodes: Any, weights: Any = None) -> None:
        x, w = _discrete_arrays(nodes, weights)
        order = np.argsort(x, kind="stable")
        for name, value in (("nodes", x[order]), ("weights", w[order])):
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def support(self) -> tuple[float, float]:
        return float(self.nodes[0]), float(self.nodes[-1])

    def breakpoints(self) -> np.ndarray:
        return np.unique(self.nodes)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        total = np.concatenate([[0.0], np.cumsum(self.weights)])
        return total[np.searchsorted(self.nodes, x, side="right")]

    def smoothed(self, grid: np.ndarray, sigma: float, kernel: str) -> np.ndarray:
        nodes, weights = _merged(self.nodes, self.weights)
        return smooth(nodes[None, :], weights[None, :], grid, sigma, kernel)[0]

    def extremes(self) -> tuple[float, float]:
        positive = self.nodes[self.weights > 0.0]
        return float(positive[0]), float(positive[-1])


@dataclass(frozen=True, eq=False, init=False)
class Curve:
    """A spectral density sampled on a grid: what a histogram or a KPM-like estimator returns.

    Between grid points the density is taken as linear, and zero outside the
    grid. Its CDF is the cumulative trapezoidal integral (used by W1 and KS);
    its smoothing by f_σ is the convolution evaluated by the same trapezoidal
    rule, accurate when the grid spacing is well below σ (a spacing above σ is
    refused). A curve has no extreme eigenvalues: `extreme_error` refuses it.

    Parameters
    ----------
    grid : array_like, shape (g,)
        Strictly increasing points, g >= 2.
    values : array_like, shape (g,)
        The density there, >= 0, integrating to 1 within `CURVE_MASS_TOLERANCE`
        (then renormalised).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.testing import Curve
    >>> uniform = Curve([0.0, 1.0, 2.0], [0.5, 0.5, 0.5])
    >>> uniform.cdf(np.array([-1.0, 1.0, 5.0])).tolist()
    [0.0, 0.5, 1.0]
    """

    grid: np.ndarray
    values: np.ndarray
    kind = "continuous"

    def __init__(self, grid: Any, values: Any) -> None:
        t, v = check_points("grid", grid), check_points("values", values)
        if t.ndim != 1 or t.size < 2 or v.shape != t.shape:
            msg = f"grid and values must be 1-D of one length >= 2, got {t.shape} and {v.shape}"
            raise ValueError(msg)
        if not (np.diff(t) > 0.0).all():
            msg = "grid must be strictly increasing"
            raise ValueError(msg)
        if (v < 0.0).any():
            msg = f"values must be >= 0 (a density), got {v.min():.6g}; clip negative lobes first"
            raise ValueError(msg)
        mass = float(np.trapezoid(v, t))
        _check_mass("the integral of values", mass, CURVE_MASS_TOLERANCE)
        for name, value in (("grid", t.copy()), ("values", v / mass)):
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def support(self) -> tuple[float, float]:
        return float(self.grid[0]), float(self.grid[-1])

    def breakpoints(self) -> np.ndarray:
        return self.grid

    def cdf(self, x: np.ndarray) -> np.ndarray:
        pieces = 0.5 * (self.values[1:] + self.values[:-1]) * np.diff(self.grid)
        total = np.concatenate([[0.0], np.cumsum(pieces)])
        return np.interp(x, self.grid, total / total[-1], left=0.0, right=1.0)

    def smoothed(self, grid: np.ndarray, sigma: float, kernel: str) -> np.ndarray:
        spacing = float(np.diff(self.grid).max())
        if spacing > sigma:
            msg = f"a Curve's grid spacing {spacing:.3g} must be <= sigma {sigma:.3g} to smooth it"
            raise ValueError(msg)
        trapezoid = np.gradient(self.grid)
        trapezoid[[0, -1]] *= 0.5
        weights = trapezoid * self.values
        return smooth(self.grid[None, :], weights[None, :] / weights.sum(), grid, sigma, kernel)[0]

    def extremes(self) -> tuple[float, float]:
        msg = "a Curve has no extreme eigenvalues: pass the estimator's nodes as Discrete instead"
        raise TypeError(msg)


class _ChebyshevSeries:
    """A `KPMDensity`: smoothed from its moments, its CDF integrated in closed form."""

    kind = "continuous"

    def __init__(self, density: KPMDensity) -> None:
        self.density = density

    def support(self) -> tuple[float, float]:
        return self.density.bounds

    def breakpoints(self) -> np.ndarray:
        m = _KPM_POINTS_PER_DEGREE * (self.density.degree + 1)
        low, high = self.density.bounds
        x = np.cos(np.pi * (np.arange(m) + 0.5) / m)[::-1]
        return np.concatenate([[low], 0.5 * (low + high) + 0.5 * (high - low) * x, [high]])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        r"""∫ of the damped series: with x = cos θ, ∫ T_j/(π√(1−x²)) = −sin(jθ)/(jπ) (j ≥ 1).

        F(λ) = g_0 μ_0 (1 − θ/π) − (2/π) Σ_{j≥1} g_j μ_j sin(jθ)/j, probe-averaged
        (Weiße et al. 2006, eq. (65) integrated term by term).
        """
        density = self.density
        low, high = density.bounds
        theta = np.arccos(np.clip((2.0 * np.asarray(x) - low - high) / (high - low), -1.0, 1.0))
        g = damping_coefficients(density.damping, density.degree)
        mu = density.moments.mean(axis=0) * g
        j = np.arange(1, density.degree + 1)
        series = np.sin(np.multiply.outer(theta, j)) @ (mu[1:] / j)
        return mu[0] * (1.0 - theta / np.pi) - (2.0 / np.pi) * series

    def smoothed(self, grid: np.ndarray, sigma: float, kernel: str) -> np.ndarray:
        return self.density.evaluate(grid, sigma=sigma, kernel=kernel)

    def extremes(self) -> tuple[float, float]:
        return self.density.bounds


class _Law:
    """A `SpectralLaw`: its exact CDF, sampled at Chebyshev points of its support."""

    kind = "continuous"

    def __init__(self, law: SpectralLaw) -> None:
        self.law = law

    def support(self) -> tuple[float, float]:
        low, high = self.law.support
        return float(low), float(high)

    def breakpoints(self) -> np.ndarray:
        low, high = self.support()
        x = np.cos(np.pi * (np.arange(_LAW_POINTS) + 0.5) / _LAW_POINTS)[::-1]
        return np.concatenate([[low], 0.5 * (low + high) + 0.5 * (high - low) * x, [high]])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.law.cdf(np.asarray(x)), dtype=np.float64)

    def smoothed(self, grid: np.ndarray, sigma: float, kernel: str) -> np.ndarray:
        msg = (
            f"the law {self.law.name!r} has no exact smoothed density here: compare against a "
            "Problem's exact eigenvalues, or Discrete(law.quantiles(n)) for a chosen n"
        )
        raise TypeError(msg)

    def extremes(self) -> tuple[float, float]:
        return self.support()


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(np.ndim(v) >= 1 for v in value)


def as_measure(value: Any, name: str) -> Measure:
    """Return `value` as a `Measure`, or raise TypeError naming `name` and what is accepted.

    Accepted: `SpectralDensity` (its probe-averaged Gauss rules), `KPMDensity`,
    `Discrete`, `Curve`, a tuple (nodes, weights), a `Problem` with exact
    eigenvalues, a `SpectralLaw`, or a 1-D array of eigenvalues.
    """
    if isinstance(value, (Discrete, Curve, _ChebyshevSeries, _Law)):
        return value
    if isinstance(value, SpectralDensity):
        return Discrete(value.nodes, value.weights)
    if isinstance(value, KPMDensity):
        return _ChebyshevSeries(value)
    if _is_pair(value):
        return Discrete(*value)
    if isinstance(value, Problem):
        if value.eigenvalues is None:
            msg = f"{name}: problem {value.name!r} has no exact eigenvalues to compare against"
            raise ValueError(msg)
        return Discrete(value.eigenvalues)
    if isinstance(value, SpectralLaw):
        return _Law(value)
    if isinstance(value, (np.ndarray, list)) and np.ndim(value) == 1:
        return Discrete(value)
    msg = (
        f"{name} must be a SpectralDensity, a KPMDensity, a Discrete, a Curve, a tuple "
        f"(nodes, weights), a Problem, a SpectralLaw or a 1-D array of eigenvalues, got "
        f"{type(value).__name__}"
    )
    raise TypeError(msg)

"""Curvature summaries read off Gauss rules: spectral mass below a point, outliers, ratios.

Everything here is a function of the nodes θ (k, m), weights τ (k, m) and Ritz
residual bounds of k probes' Gauss rules: no operator products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from slq._validate import check_non_negative_float, check_open_interval
from slq.quadrature import used_nodes

__all__ = [
    "ExtremeRatio",
    "MassBelow",
    "Outliers",
    "check_outliers",
    "extreme_ratio",
    "extreme_ritz",
    "find_outliers",
    "mass_below",
    "negative_point",
    "weighted_quantile",
    "zero_resolution",
]

# Unit roundoff of float32, the precision network Hessians are run in: a
# SpectralDensity keeps float64 coefficients and does not record the dtype of
# the products, so the resolution of zero assumes the coarser of the two.
_EPS = float(2.0**-23)


@dataclass(frozen=True)
class MassBelow:
    """The fraction of eigenvalues below a point x, with both of its uncertainties.

    Attributes
    ----------
    value : float
        The SLQ estimate: the probe mean of Σ_{θ_i < x} τ_i.
    stderr : float
        Probe-to-probe standard error of `value` (sampling error).
    lower, upper : float
        Probe means of the Chebyshev–Markov–Stieltjes bracket: whatever the
        spectrum, each probe's true mass below x lies in [lower_v, upper_v]
        (quadrature error; see `mass_below`). ``upper - lower`` is the mass
        that m Lanczos steps cannot place on either side of x.
    resolution : float
        Probe mean of the gap between the Gauss nodes on either side of x:
        mass closer to x than this is not resolved.
    x : float
        The point.
    """

    value: float
    stderr: float
    lower: float
    upper: float
    resolution: float
    x: float


def mass_below(
    nodes: np.ndarray, weights: np.ndarray, x: float, *, exact: np.ndarray | None = None
) -> MassBelow:
    r"""Estimate the fraction of eigenvalues < x, bracketing the quadrature error.

    For a Gauss rule (θ_i, τ_i) of a measure μ with distribution F, and
    C_j = τ_1 + … + τ_j, the Chebyshev–Markov–Stieltjes inequalities give
    C_{j−1} ≤ F(θ_j) ≤ C_j (Szegő 1975, Thm 3.41.1; Chen, Trogdon & Ubaru 2021,
    §3). So if θ_j < x ≤ θ_{j+1}, the true mass below x,
    F(x−) ∈ [F(θ_j), F(θ_{j+1})] ⊂ [C_{j−1}, C_{j+1}]. A probe whose run broke
    down (`exact`) has μ supported on its nodes: no quadrature error.
    """
    k = nodes.shape[0]
    used = used_nodes(weights)
    exact = np.zeros(k, dtype=bool) if exact is None else np.asarray(exact, dtype=bool)
    value, lower, upper, gap = (np.empty(k) for _ in range(4))
    for p in range(k):
        theta, tau = nodes[p, used[p]], weights[p, used[p]]
        cumulative = np.concatenate([[0.0], np.cumsum(tau)])  # C_0 .. C_L
        j = int(np.searchsorted(theta, x, side="left"))  # nodes strictly below x
        value[p] = cumulative[j]
        lower[p] = cumulative[j] if exact[p] else cumulative[max(j - 1, 0)]
        upper[p] = cumulative[j] if exact[p] else cumulative[min(j + 1, theta.size)]
        below = theta[j - 1] if j > 0 else x
        above = theta[j] if j < theta.size else x
        gap[p] = above - below
    stderr = float(value.std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan")
    return MassBelow(
        float(value.mean()),
        stderr,
        float(lower.mean()),
        float(upper.mean()),
        float(gap.mean()),
        float(x),
    )


def zero_resolution(nodes: np.ndarray, weights: np.ndarray, *, eps: float = _EPS) -> float:
    """Return how close to 0 a Ritz value can lie and still be rounding of a zero eigenvalue.

    m steps of Lanczos in precision eps place Ritz values within about
    m · eps · ‖A‖ of the spectrum they approximate (Paige 1980, Thm 3.1; Meurant
    & Strakoš 2006, §4), with ‖A‖ estimated by max|θ|. A Ritz value of −1e-15
    for an exactly singular positive semi-definite matrix is such rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.summaries import zero_resolution
    >>> nodes = np.array([[-1e-15, 1.0, 4.0]])
    >>> bool(1e-15 < zero_resolution(nodes, np.full((1, 3), 1 / 3)) < 1e-4)
    True
    """
    eps = check_non_negative_float("eps", eps)
    used = used_nodes(weights)
    scale = float(np.abs(nodes[used]).max()) if used.any() else 0.0
    return nodes.shape[1] * eps * scale


def negative_point(nodes: np.ndarray, weights: np.ndarray, threshold: float) -> float:
    """Return −max(threshold, `zero_resolution`): where negative mass is counted below.

    Ritz values closer to 0 are rounding, not negative curvature: a positive
    semi-definite matrix reports a negative mass of 0, its bracket's lower end 0.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.summaries import negative_point
    >>> negative_point(np.array([[-1e-15, 1.0]]), np.full((1, 2), 0.5), 0.5)
    -0.5
    """
    threshold = check_non_negative_float("threshold", threshold)
    return -max(threshold, zero_resolution(nodes, weights)) or 0.0


def weighted_quantile(nodes: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Return the q-quantile of the probe-averaged Gauss measure (1/k) Σ_v Σ_i τ_i δ_{θ_i}."""
    order = np.argsort(nodes, axis=None)
    theta = nodes.ravel()[order]
    cumulative = np.cumsum(weights.ravel()[order]) / nodes.shape[0]
    index = min(int(np.searchsorted(cumulative, q, side="left")), theta.size - 1)
    return float(theta[index])


@dataclass(frozen=True)
class Outliers:
    """Converged Ritz values standing apart from the bulk, as point masses.

    Attributes
    ----------
    positions : numpy.ndarray, shape (c,)
        Each outlier's eigenvalue: the weight-averaged Ritz values of its cluster.
    masses, mass_stderr : numpy.ndarray, shape (c,)
        Fraction of the eigenvalues it holds (probe mean of its Gauss weight;
        1/n for a simple eigenvalue), and the probe-to-probe standard error.
    counts : numpy.ndarray, shape (c,)
        n · mass: the estimated multiplicity.
    residuals : numpy.ndarray, shape (c,)
        The largest Ritz residual bound in the cluster: some eigenvalue lies
        within it of the position (Parlett 1998, Thm 4.5.1).
    found_in : numpy.ndarray, shape (c,)
        How many probes found it.
    trace_share : numpy.ndarray, shape (c,)
        Its share of Σ|λ| = tr|A|: mass · |position| / (probe mean of Σ τ_i |θ_i|).
    bulk : tuple of float
        The bulk interval (its `tail` and 1 − `tail` quantiles).
    members : numpy.ndarray of bool, shape (k, m)
        Which Gauss nodes of which probe make up the outliers.
    """

    positions: np.ndarray
    masses: np.ndarray
    mass_stderr: np.ndarray
    counts: np.ndarray
    residuals: np.ndarray
    found_in: np.ndarray
    trace_share: np.ndarray
    bulk: tuple[float, float]
    members: np.ndarray

    def __len__(self) -> int:
        return int(self.positions.size)

    @property
    def mass(self) -> float:
        """Total fraction of the eigenvalues held by the outliers."""
        return float(self.masses.sum())


def check_outliers(outliers: Any, density: Any) -> Outliers:
    """Return `outliers`, or raise unless it is an `Outliers` found in the rules of `density`."""
    if not isinstance(outliers, Outliers):
        kind = type(outliers).__name__
        msg = f"outliers must be an Outliers (from SpectralDensity.outliers), got {kind}"
        raise TypeError(msg)
    if outliers.members.shape != density.nodes.shape:
        msg = "outliers must come from this density: its members do not match its nodes"
        raise ValueError(msg)
    return outliers


def _clusters(values: np.ndarray, radii: np.ndarray, floor: float) -> np.ndarray:
    """Label sorted `values`: a new cluster where a gap exceeds the two radii summed."""
    gaps = np.diff(values)
    joined = gaps <= np.maximum(radii[1:] + radii[:-1], floor)
    return np.concatenate([[0], np.cumsum(~joined)])


def find_outliers(
    nodes: np.ndarray,
    weights: np.ndarray,
    residuals: np.ndarray,
    dim: int,
    *,
    tail: float = 0.01,
    separation: float = 1.0,
    rtol: float = 1e-3,
) -> Outliers:
    """Return the converged Ritz values more than `separation` bulk widths outside the bulk.

    The bulk is the interval between the `tail` and 1 − `tail` quantiles of
    the estimated spectral distribution; converged means a Ritz residual bound
    ≤ `rtol` · max|θ|. Ritz values of different probes are one outlier when
    they lie within their residual bounds, or `rtol` · max|θ|, of each other:
    the residual bound of a float32 run can fall below the rounding that
    separates its probes' Ritz values of one eigenvalue.
    Outliers are detected as in Ghorbani, Krishnan & Xiao (2019, §4): isolated
    eigenvalues far above (or below) a bulk near zero.

    Raises
    ------
    ValueError
        For a `tail` outside (0, 0.5), an `rtol` not > 0 or a negative `separation`.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.summaries import find_outliers
    >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
    >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
    >>> out = find_outliers(dos.nodes, dos.weights, dos.ritz_residuals, dos.dim, tail=0.01)
    >>> out.positions.round(6)
    array([ 10.,  30., 100.])
    """
    tail = check_open_interval("tail", tail, 0.0, 0.5)
    rtol = check_open_interval("rtol", rtol, 0.0, np.inf)
    separation = check_non_negative_float("separation", separation)
    k = nodes.shape[0]
    used = used_nodes(weights) & (weights > 0.0)
    low = weighted_quantile(nodes, weights, tail)
    high = weighted_quantile(nodes, weights, 1.0 - tail)
    scale = float(np.abs(nodes[used]).max()) or 1.0
    width = max(high - low, 1e-12 * scale)
    outside = (nodes > high + separation * width) | (nodes < low - separation * width)
    candidate = used & outside & (residuals <= rtol * scale)
    probe, _ = np.nonzero(candidate)
    theta, tau, radius = nodes[candidate], weights[candidate], residuals[candidate]
    order = np.argsort(theta)
    theta, tau, radius, probe = theta[order], tau[order], radius[order], probe[order]
    labels = _clusters(theta, radius, rtol * scale) if theta.size else np.zeros(0, dtype=int)
    count = int(labels.max()) + 1 if theta.size else 0
    per_probe = np.zeros((count, k))
    np.add.at(per_probe, (labels, probe), tau)
    positions = np.array(
        [np.average(theta[labels == c], weights=tau[labels == c]) for c in range(count)]
    )
    masses = per_probe.mean(axis=1)
    stderr = per_probe.std(axis=1, ddof=1) / np.sqrt(k) if k > 1 else np.full(count, np.nan)
    absolute = float(np.mean(np.sum(weights * np.abs(nodes), axis=1))) or 1.0
    return Outliers(
        positions=positions.reshape(count),
        masses=masses,
        mass_stderr=stderr,
        counts=dim * masses,
        residuals=np.array([radius[labels == c].max() for c in range(count)]).reshape(count),
        found_in=(per_probe > 0).sum(axis=1),
        trace_share=masses * np.abs(positions.reshape(count)) / absolute,
        bulk=(low, high),
        members=candidate,
    )


@dataclass(frozen=True)
class ExtremeRatio:
    """|λ_min| / λ_max, the negative-to-positive curvature ratio of Ghorbani et al. (2019).

    Attributes
    ----------
    value : float
        max(−θ_min, 0) / θ_max from the extreme Ritz values over all probes (0
        when no Ritz value is negative).
    lambda_min, lambda_max : float
        The extreme Ritz values.
    residual_min, residual_max : float
        Their residual bounds: an eigenvalue lies within each of its Ritz value
        (Parlett 1998, Thm 4.5.1).
    lower, upper : float
        The ratio with the extreme eigenvalues moved anywhere within their
        residual bounds: the range the ratio lies in once the extreme Ritz
        values have converged to the extreme eigenvalues.
    """

    value: float
    lambda_min: float
    lambda_max: float
    residual_min: float
    residual_max: float
    lower: float
    upper: float


def _ratio(low: float, high: float) -> float:
    return max(-low, 0.0) / high if high > 0.0 else float("inf")


def extreme_ritz(
    nodes: np.ndarray, weights: np.ndarray, residuals: np.ndarray
) -> tuple[float, float, float, float]:
    """Return the smallest and largest Ritz values over all probes, each with its residual bound.

    An eigenvalue lies within the bound of each (Parlett 1998, Thm 4.5.1):
    ``(lambda_min, residual_min, lambda_max, residual_max)``.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.summaries import extreme_ritz
    >>> dos = slq.density(np.diag(np.linspace(-1.0, 4.0, 50)), num_steps=50, seed=0)
    >>> low, r_low, high, r_high = extreme_ritz(dos.nodes, dos.weights, dos.ritz_residuals)
    >>> round(low, 6), round(high, 6), bool(r_high < 1e-8)
    (-1.0, 4.0, True)
    """
    used = used_nodes(weights)
    top = np.where(used, nodes, -np.inf)
    p_min = int(np.argmin(nodes[:, 0]))
    p_max, i_max = np.unravel_index(int(np.argmax(top)), top.shape)
    low, high = float(nodes[p_min, 0]), float(nodes[p_max, i_max])
    return low, float(residuals[p_min, 0]), high, float(residuals[p_max, i_max])


def extreme_ratio(nodes: np.ndarray, weights: np.ndarray, residuals: np.ndarray) -> ExtremeRatio:
    """Return |λ_min| / λ_max from the extreme Ritz values and their residual bounds."""
    low, r_low, high, r_high = extreme_ritz(nodes, weights, residuals)
    if not high > 0.0:
        msg = f"the ratio |λ_min|/λ_max needs a positive largest eigenvalue, got {high:.6g}"
        raise ValueError(msg)
    lower = _ratio(low + r_low, high + r_high)
    upper = _ratio(low - r_low, high - r_high) if high - r_high > 0.0 else float("inf")
    return ExtremeRatio(_ratio(low, high), low, high, r_low, r_high, lower, upper)

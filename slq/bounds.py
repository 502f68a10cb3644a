"""A posteriori bounds on the Wasserstein-1 error of an SLQ spectral distribution."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from slq._validate import check_interval, check_open_interval
from slq.quadrature import used_nodes

if TYPE_CHECKING:
    from slq.spectral_density import SpectralDensity

__all__ = [
    "WassersteinBound",
    "quadrature_wasserstein",
    "sampling_wasserstein",
    "wasserstein_bound",
]


@dataclass(frozen=True)
class WassersteinBound:
    r"""A bound on W₁ between the SLQ estimate and the true spectral distribution.

    With probability at least `confidence` over the probes,
    W₁(Φ, Φ̂) ≤ `total` = `quadrature` + `sampling`, where Φ = (1/n) Σ_j δ_{λ_j}
    and Φ̂ the probe average of the Gauss rules, provided the spectrum lies in
    `spectrum`. W₁ is in the units of the eigenvalues: the area between the
    two cumulative distribution functions.

    Attributes
    ----------
    total, quadrature, sampling : float
        The bound and its two parts: the probe mean of each Gauss rule's
        distance to its probe's spectral measure (deterministic), and the
        distance of the probes' average measure to Φ (random).
    confidence : float
        The probability with which `sampling` holds.
    spectrum : tuple of float
        The interval [a, b] assumed to contain every eigenvalue.
    """

    total: float
    quadrature: float
    sampling: float
    confidence: float
    spectrum: tuple[float, float]


def quadrature_wasserstein(
    nodes: np.ndarray, weights: np.ndarray, exact: np.ndarray, spectrum: tuple[float, float]
) -> np.ndarray:
    r"""Return, per probe, a bound on W₁(μ_v, Gauss rule of μ_v) for μ_v on [a, b].

    By the Chebyshev–Markov–Stieltjes inequalities C_{j−1} ≤ F_v(θ_j) ≤ C_j
    (C_j the cumulative weights; Szegő 1975, Thm 3.41.1), the true distribution
    F_v crosses every step of the rule's; between θ_j and θ_{j+1} they differ by
    at most max(τ_j, τ_{j+1}), before θ_1 by τ_1, after θ_L by τ_L. Integrating:
    W₁ ≤ τ_1(θ_1 − a) + Σ_j max(τ_j, τ_{j+1})(θ_{j+1} − θ_j) + τ_L(b − θ_L)
    (the a posteriori approach of Chen, Trogdon & Ubaru 2021, §3). Zero for a
    probe whose run broke down: its rule is its measure.
    """
    a, b = spectrum
    used = used_nodes(weights)
    out = np.zeros(nodes.shape[0])
    for p in np.flatnonzero(~np.asarray(exact, dtype=bool)):
        theta, tau = nodes[p, used[p]], weights[p, used[p]]
        inner = np.sum(np.maximum(tau[:-1], tau[1:]) * np.diff(theta))
        out[p] = tau[0] * (theta[0] - a) + inner + tau[-1] * (b - theta[-1])
    return out


def sampling_wasserstein(
    spectrum: tuple[float, float], dim: int, num_probes: int, confidence: float
) -> float:
    r"""Return t with P(W₁(Φ, (1/k) Σ_v μ_v) > t) ≤ 1 − `confidence` for unit probes.

    For uniform (normalised Gaussian) or normalised Rademacher probes,
    F_v(x) = vᵀ P_x v with P_x the spectral projector of the eigenvalues ≤ x, and
    Var F_v(x) ≤ 2Φ(x)(1 − Φ(x))/n ≤ 1/(2n) (Rademacher: Var zᵀPz =
    2(‖P‖_F² − Σ P_ii²) ≤ 2(c − c²/n) for rank c; uniform: a Beta(c/2, (n−c)/2)
    variable). By Cauchy–Schwarz, E W₁² ≤ (b − a) ∫ Var F̄(x) dx ≤ (b − a)²/(2nk),
    and Chebyshev's inequality gives t = (b − a)/sqrt(2nk(1 − confidence)).
    The same decomposition as Chen, Trogdon & Ubaru (2021, Thm 4.1), with
    constants derived here.
    """
    a, b = spectrum
    return (b - a) / math.sqrt(2.0 * dim * num_probes * (1.0 - confidence))


def wasserstein_bound(
    density: SpectralDensity,
    *,
    confidence: float = 0.95,
    spectrum: tuple[float, float] | None = None,
) -> WassersteinBound:
    r"""Return an a posteriori bound on W₁ between an SLQ estimate and the true spectrum.

    The quadrature part follows from the Gauss rules alone
    (`quadrature_wasserstein`), the sampling part from n and the number of
    probes (`sampling_wasserstein`); the sum holds with probability
    `confidence` (Chen, Trogdon & Ubaru 2021, "Analysis of stochastic Lanczos
    quadrature for spectrum approximation").

    Parameters
    ----------
    density : SpectralDensity
        The estimate.
    confidence : float, default 0.95
        Probability with which the sampling part holds.
    spectrum : (float, float), optional
        An interval known to hold every eigenvalue (e.g. from Gershgorin
        discs or `slq.eigsh`). Default: the extreme Ritz values widened by
        their residual bounds, which holds when the extreme Ritz values
        have converged to the extreme eigenvalues (they do first:
        Kaniel–Paige theory) — check `ritz_residuals` for large outliers.

    Raises
    ------
    ValueError
        For a `confidence` outside (0, 1), a `spectrum` that misses a Ritz
        value, or no `spectrum` for a density without the run's `residual_norm`.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.bounds import wasserstein_bound
    >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 2000)), num_probes=10, seed=0)
    >>> bound = wasserstein_bound(dos)
    >>> a, b = bound.spectrum  # contains [0, 1]
    >>> bool(bound.total < 0.05), bool(a <= 0.0 and b >= 1.0)
    (True, True)
    """
    confidence = check_open_interval("confidence", confidence, 0.0, 1.0)
    given = None if spectrum is None else check_interval("spectrum", spectrum, closed=True)
    low, high = density.lambda_min, density.lambda_max
    interval = _ritz_interval(density) if given is None else given
    # Ritz values lie inside the spectrum up to rounding, so a tight interval is
    # widened by that much; a wider miss is an error in the interval.
    slack = 1e-8 * max(abs(low), abs(high))
    if interval[0] > low + slack or interval[1] < high - slack:
        msg = f"spectrum {interval} must contain every Ritz value, which span "
        msg += f"[{low:.6g}, {high:.6g}]"
        raise ValueError(msg)
    interval = (min(interval[0], low), max(interval[1], high))
    quadrature = quadrature_wasserstein(density.nodes, density.weights, density.exact, interval)
    sampling = sampling_wasserstein(interval, density.dim, density.num_probes, confidence)
    mean = float(quadrature.mean())
    return WassersteinBound(mean + sampling, mean, sampling, confidence, interval)


def _ritz_interval(density: SpectralDensity) -> tuple[float, float]:
    """Return the extreme Ritz values widened by their residual bounds."""
    if density.residual_norm is None:
        msg = "without the run's residual_norm, pass spectrum=(a, b) holding every eigenvalue"
        raise ValueError(msg)
    nodes, residuals = density.nodes, density.ritz_residuals
    low = nodes[:, 0] - residuals[:, 0]
    used_last = np.argmax(np.cumsum(density.weights, axis=1) >= 1.0 - 1e-12, axis=1)
    rows = np.arange(density.num_probes)
    high = nodes[rows, used_last] + residuals[rows, used_last]
    return float(low.min()), float(high.max())

"""A posteriori bounds on the Wasserstein-1 error of an SLQ spectral distribution."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from slq.summaries import _used

__all__ = ["WassersteinBound", "quadrature_wasserstein", "sampling_wasserstein"]


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
    used = _used(weights)
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

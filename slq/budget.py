r"""Lanczos steps and probes sufficient for an (ε, η) estimate of tr f(A) by SLQ.

Following the argument of Ubaru, Chen & Saad (2017), "Fast estimation of tr(f(A))
via stochastic Lanczos quadrature", SIAM J. Matrix Anal. Appl. 38(4), Theorem 4.1,
with the quadrature error bounded from two textbook facts (see `slq_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.polynomial.chebyshev import chebinterpolate

from slq._functions import resolve_function
from slq._validate import check_interval, check_open_interval, check_positive_int, check_real

__all__ = ["Budget", "slq_budget"]

# Named functions analytic everywhere but on (−∞, 0]; "exp" and "square" are entire.
_SINGULAR_AT_ZERO = ("log", "inverse", "sqrt")
_NEED_POSITIVE = ("log", "sqrt")

# Points on the upper half of an ellipse at which |f| is evaluated: f is real on the
# real axis, so |f(z̄)| = |f(z)| and the lower half adds nothing.
_ELLIPSE_POINTS = 1025
# Points of the interval at which |f| is checked for a zero or a change of sign.
_INTERVAL_POINTS = 4097
# Chebyshev coefficients computed to check a callable's ρ, and the relative slack
# allowed for the sampled M_ρ and rounding.
_CHEBYSHEV_DEGREE = 128
_CHEBYSHEV_SLACK = 1.05
# The ρ grid searched when none is given: ρ = ρ_max^s for s up to 1 − 1e-3 when f
# has a singularity, and ρ − 1 from 1e-3 to 1e4 when f is entire.
_GRID_SIZE = 400


class Budget(NamedTuple):
    """Steps and probes for an (ε, η) estimate of tr f(A), and the bound behind them.

    Made by `slq_budget`.

    Examples
    --------
    >>> import slq
    >>> budget = slq.slq_budget("log", (2.0, 100.0), epsilon=0.01, eta=0.05)
    >>> budget.num_steps, budget.num_probes
    (18, 885332)
    """

    num_steps: int
    """m: Lanczos steps per probe, so that the Gauss error is ≤ (ε/2) min |f| per unit probe."""
    num_probes: int
    """n_v = ⌈(24/ε²) ln(2/η)⌉ Rademacher probes (Roosta-Khorasani & Ascher 2015)."""
    rho: float
    """ρ > 1 of the Bernstein ellipse E_ρ (foci λ_min, λ_max) used in the bound."""
    max_abs_f: float
    """M_ρ: the maximum of |f| on the boundary of E_ρ."""
    min_abs_f: float
    """m_f: the minimum of |f| on [λ_min, λ_max]; |tr f(A)| ≥ n m_f."""
    spectrum: tuple[float, float]
    """(λ_min, λ_max): an interval containing the eigenvalues."""
    epsilon: float
    """ε, the relative accuracy."""
    eta: float
    """η, the allowed failure probability."""

    @property
    def num_matvecs(self) -> int:
        """Operator products of the run: num_steps · num_probes."""
        return self.num_steps * self.num_probes

    def quadrature_error_bound(self, num_steps: int) -> float:
        """Return the bound 4 M_ρ ρ^(1−2m) / (ρ − 1) on one unit probe's Gauss error at m steps.

        For every unit v: |vᵀ f(A) v − Σ_i τ_i f(θ_i)| is at most this (see
        `slq_budget`); zero for a one-point spectrum, where one node is exact.

        Examples
        --------
        >>> import slq
        >>> budget = slq.slq_budget("exp", (0.0, 1.0), epsilon=0.1, eta=0.1)
        >>> bool(budget.quadrature_error_bound(5) < budget.quadrature_error_bound(4))
        True
        """
        num_steps = check_positive_int("num_steps", num_steps)
        if math.isinf(self.rho):
            return 0.0
        log_bound = _log_quadrature_bound(np.log(self.max_abs_f), self.rho, num_steps)
        return float(np.exp(log_bound))


def _log_quadrature_bound(log_max: Any, rho: Any, num_steps: Any) -> Any:
    """Return the logarithm of 4 M ρ^(1−2m) / (ρ − 1)."""
    return np.log(4.0) + log_max + (1.0 - 2.0 * num_steps) * np.log(rho) - np.log(rho - 1.0)


def _check_spectrum(spectrum: Any) -> tuple[float, float]:
    return check_interval("spectrum", spectrum, closed=True, ends=("lambda_min", "lambda_max"))


def _rho_limit(f: Any, low: float, high: float) -> float | None:
    """Return ρ_max: f is analytic inside E_ρ for every ρ < ρ_max (inf: entire; None: unknown).

    An ellipse with foci a < b keeps off the point 0 outside [a, b] exactly when
    ρ < (|c| + sqrt(c² − h²)) / h, c and h the centre and half-width; for a > 0
    that is (√b + √a) / (√b − √a), the familiar (√κ + 1)/(√κ − 1).
    """
    if not isinstance(f, str):
        return None
    if f not in _SINGULAR_AT_ZERO:
        return math.inf
    if (f in _NEED_POSITIVE and low <= 0.0) or low <= 0.0 <= high:
        needs = "positive" if f in _NEED_POSITIVE else "definite (0 outside it)"
        msg = (
            f"{f!r} is analytic only off (-inf, 0], so the spectrum must be {needs}, got "
            f"({low}, {high}); shift the operator"
        )
        raise ValueError(msg)
    centre, half = abs(low + high) / 2.0, (high - low) / 2.0
    if half == 0.0:
        return math.inf
    return float((centre + math.sqrt(centre**2 - half**2)) / half)


def _max_abs_on_ellipses(fn: Callable[..., Any], low: float, high: float, rho: Any) -> Any:
    """M_ρ for each ρ: max |f| over the boundary of E_ρ, inf where f is not finite there.

    By the maximum modulus principle the maximum over the closed ellipse is on its
    boundary; it is taken over _ELLIPSE_POINTS points of the upper half.
    """
    theta = np.linspace(0.0, np.pi, _ELLIPSE_POINTS)
    rho = np.asarray(rho, dtype=np.float64)[:, None]
    w = rho * np.exp(1j * theta)
    z = (low + high) / 2.0 + (high - low) / 4.0 * (w + 1.0 / w)
    with np.errstate(all="ignore"):
        values = np.abs(np.asarray(fn(z), dtype=np.complex128))
    values = np.where(np.isfinite(values), values, np.inf)
    return values.max(axis=1)


def _min_abs_on_interval(f: Any, fn: Callable[..., Any], low: float, high: float) -> float:
    """m_f = min |f| on [low, high], 0 if f changes sign; a grid minimum for a callable."""
    x = np.linspace(low, high, _INTERVAL_POINTS)
    zero = {"log": 1.0, "square": 0.0}.get(f) if isinstance(f, str) else None
    if zero is not None and low <= zero <= high:
        x = np.append(x, zero)
    with np.errstate(all="ignore"):
        values = np.asarray(fn(x))
    if np.iscomplexobj(values):
        if np.abs(values.imag).max() > 0.0:
            msg = "f must be real-valued on the spectrum: tr f(A) of a symmetric A is real"
            raise ValueError(msg)
        values = values.real
    values = np.asarray(values, dtype=np.float64)
    if values.shape != x.shape or not np.isfinite(values).all():
        msg = f"f must map the spectrum ({low}, {high}) to finite values of the same shape"
        raise ValueError(msg)
    if values.min() <= 0.0 <= values.max():
        return 0.0
    return float(np.abs(values).min())


def _check_chebyshev_decay(
    fn: Callable[..., Any], low: float, high: float, rho: float, max_abs: float
) -> None:
    """Raise unless f's Chebyshev coefficients on [low, high] obey |a_k| ≤ 2 M_ρ ρ^(−k).

    Trefethen (2013), Thm 8.1: the bound holds when f is analytic inside E_ρ with
    |f| ≤ M_ρ there. A singularity inside the ellipse makes the coefficients decay
    more slowly, and shows here: a necessary check of a callable's ρ, not a proof.
    """
    centre, half = (low + high) / 2.0, (high - low) / 2.0
    with np.errstate(all="ignore"):
        coefficients = np.abs(chebinterpolate(lambda x: fn(centre + half * x), _CHEBYSHEV_DEGREE))
    k = np.arange(coefficients.size)
    allowed = _CHEBYSHEV_SLACK * 2.0 * max_abs * rho ** (-k.astype(float))
    rounding = 1e-12 * coefficients[0] + 1e-300
    if not np.all(coefficients <= allowed + rounding):
        first = int(np.argmax(coefficients > allowed + rounding))
        msg = (
            f"f is not analytic inside the ellipse of rho={rho:.6g}: its Chebyshev coefficient "
            f"{first} on the spectrum, {coefficients[first]:.3g}, exceeds the bound "
            f"2 M rho^-k = {allowed[first] / _CHEBYSHEV_SLACK:.3g}; choose a smaller rho"
        )
        raise ValueError(msg)


def _candidate_rhos(f: Any, limit: float | None, rho: float | None) -> np.ndarray:
    """Return the ρ to try: the given one, checked against `limit`, or an admissible grid."""
    if rho is not None:
        rho = float(rho)
        bound = math.inf if limit is None else limit
        if not (1.0 < rho < bound):
            msg = f"rho must lie in (1, {bound:.6g}) for f={f!r} on this spectrum, got {rho}"
            raise ValueError(msg)
        return np.array([rho])
    if limit is None:
        msg = (
            "rho is needed for a callable f: give the ρ > 1 of a Bernstein ellipse around the "
            "spectrum inside which f is analytic (slq cannot see its singularities)"
        )
        raise ValueError(msg)
    if math.isinf(limit):
        return 1.0 + np.geomspace(1e-3, 1e4, _GRID_SIZE)
    return limit ** (1.0 - np.geomspace(1e-3, 0.99, _GRID_SIZE))


def _steps_needed(log_max: Any, min_abs: float, rho: Any, epsilon: float) -> Any:
    """Return, for each ρ, the least m ≥ 1 with 4 M ρ^(1−2m)/(ρ − 1) ≤ (ε/2) m_f."""
    log_ratio = np.log(8.0) + log_max - np.log(rho - 1.0) - np.log(epsilon * min_abs)
    return np.maximum(1, np.ceil((1.0 + log_ratio / np.log(rho)) / 2.0))


def ubaru2017_num_probes(epsilon: float, eta: float) -> int:
    """Return ⌈(24/ε²) ln(2/η)⌉: Rademacher probes for tr B within ε/2 · tr B, B definite.

    Roosta-Khorasani & Ascher (2015), Found. Comput. Math. 15, the Hutchinson
    (Rademacher) bound: for a symmetric positive semidefinite B,
    N ≥ 6 δ^(−2) ln(2/η) Hutchinson samples give |estimate − tr B| ≤ δ tr B
    with probability ≥ 1 − η; here δ = ε/2.

    Examples
    --------
    >>> from slq.budget import ubaru2017_num_probes
    >>> ubaru2017_num_probes(0.5, 0.1)
    288
    """
    return math.ceil(24.0 / epsilon**2 * math.log(2.0 / eta))


def slq_budget(
    f: Any,
    spectrum: tuple[float, float],
    *,
    epsilon: float,
    eta: float,
    rho: float | None = None,
) -> Budget:
    r"""Recommend Lanczos steps and probes for an (ε, η) SLQ estimate Γ of tr f(A).

    The returned budget guarantees P(|Γ − tr f(A)| ≤ ε |tr f(A)|) ≥ 1 − η for
    `trace_function` with Rademacher probes, any symmetric A with eigenvalues in
    `spectrum` = [a, b], and f real on [a, b], without zeros there, and analytic
    inside a Bernstein ellipse E_ρ around it. The argument follows Ubaru, Chen &
    Saad (2017), Theorem 4.1: half of the error budget to the probes, half to the
    quadrature. The quadrature constants are our own derivation, from:

    1. The Gauss rule (θ_i, τ_i) of m Lanczos steps from a unit v integrates
       polynomials of degree ≤ 2m − 1 exactly against the spectral measure μ_v of
       A, and both μ_v and the rule are probability measures on [a, b] (the Ritz
       values lie between the extreme eigenvalues). So, for p the best approximation of
       degree 2m − 1, |vᵀf(A)v − Σ τ_i f(θ_i)| ≤ 2 ‖f − p‖_∞ = 2 E_{2m−1}(f).
    2. If f is analytic inside E_ρ (foci a and b, sum of semi-axes ρ (b − a)/2)
       and |f| ≤ M_ρ there, E_n(f) ≤ 2 M_ρ ρ^(−n)/(ρ − 1) (Trefethen,
       *Approximation Theory and Approximation Practice*, 2013, Thm 8.2, mapped
       from [−1, 1] to [a, b]).

    Together: per unit probe, error ≤ 4 M_ρ ρ^(1−2m)/(ρ − 1) (`Budget.quadrature_error_bound`).
    The SLQ estimate is n times a mean over unit probes, and |tr f(A)| ≥ n m_f
    with m_f = min_{[a,b]} |f| (f has one sign there), so a per-probe error of
    (ε/2) m_f keeps the quadrature's share ≤ (ε/2)|tr f(A)|: m is the least
    integer with 4 M_ρ ρ^(1−2m)/(ρ − 1) ≤ (ε/2) m_f. For f singular at 0 and
    a > 0, ρ approaches (√κ + 1)/(√κ − 1) with ln ρ ≈ 2/√κ, so m ≈ (√κ/4)
    ln(8 M_ρ/((ρ − 1) ε m_f)): the form of UCS17's bound.
    The probes take the other half: f(A) or −f(A) is positive definite, and
    n_v ≥ (24/ε²) ln(2/η) Rademacher probes estimate its trace within
    (ε/2)|tr f(A)| with probability ≥ 1 − η (Roosta-Khorasani & Ascher 2015,
    Found. Comput. Math. 15: N ≥ 6 δ^(−2) ln(2/η) for relative accuracy δ of
    a positive semidefinite trace, here with δ = ε/2; UCS17 use the same count).

    Parameters
    ----------
    f : callable or {"log", "exp", "inverse", "sqrt", "square"}
        The function. A callable must accept complex numpy arrays (it is evaluated
        on the ellipse) and be real on the real axis.
    spectrum : (float, float)
        (λ_min, λ_max), an interval containing every eigenvalue, e.g. from the
        extreme Ritz values of a `density` run widened by their residuals. For
        tr f(A + sI), give the interval of A + sI.
    epsilon : float
        ε in (0, 1), the relative accuracy.
    eta : float
        η in (0, 1), the probability of missing it.
    rho : float, optional
        ρ of the ellipse. Default: the ρ giving the fewest steps over a grid of
        ellipses on which f is analytic: all ρ > 1 for "exp" and "square", ρ below
        (√b + √a)/(√b − √a) for "log", "sqrt" and "inverse" (singular at 0, so
        the ellipse must keep off it). Required for a callable, whose
        singularities slq cannot see.

    Returns
    -------
    Budget
        ``num_steps``, ``num_probes``, the ρ, M_ρ and m_f of the bound, and
        ``quadrature_error_bound(m)``.

    Raises
    ------
    ValueError
        If ε or η is outside (0, 1), the spectrum is not a finite interval, f
        vanishes or changes sign on it (a relative accuracy is then undefined),
        is not real or finite there, the spectrum leaves a named function's
        domain of analyticity, or `rho` is outside (1, ρ_max), missing for a
        callable, or contradicted by the callable's Chebyshev coefficients.

    Notes
    -----
    M_ρ is the largest |f| at 1025 equispaced points of the ellipse's upper half,
    and a callable's m_f is its smallest |f| at 4097 points of [a, b]: sample
    extremes. For the named functions the maximum fell on the real axis, which
    is sampled, in every case we checked; for a smooth callable a sample misses
    by a relative ~1e-5, which m, set by a logarithm, does not feel. For a
    callable, the given ρ is checked against the decay of f's Chebyshev
    coefficients, which catches most singularities inside the ellipse but proves
    nothing: analyticity is the caller's promise. The bound is
    for exact arithmetic; `lanczos` reorthogonalises fully, which keeps the
    computed rule to it. These counts are sufficient, not necessary: the
    probe count in particular is pessimistic by an order of magnitude in
    practice, and `Estimate.interval` tells how accurate a run actually was.

    Examples
    --------
    >>> from slq.budget import slq_budget
    >>> budget = slq_budget("log", (2.0, 200.0), epsilon=0.1, eta=0.05)
    >>> budget.num_steps, budget.num_probes
    (21, 8854)
    >>> bool(budget.quadrature_error_bound(budget.num_steps) <= 0.05 * budget.min_abs_f)
    True

    A callable needs the ellipse; here f(x) = 1/(x + 1) is singular at −1:

    >>> budget = slq_budget(lambda x: 1.0 / (x + 1.0), (1.0, 9.0), epsilon=0.1, eta=0.1, rho=2.0)
    >>> budget.num_steps
    6
    """
    low, high = _check_spectrum(spectrum)
    epsilon = check_open_interval("epsilon", epsilon, 0.0, 1.0)
    eta = check_open_interval("eta", eta, 0.0, 1.0)
    rho = None if rho is None else check_real("rho", rho)
    fn, _ = resolve_function(f)
    limit = _rho_limit(f, low, high)
    min_abs = _min_abs_on_interval(f, fn, low, high)
    if min_abs == 0.0:
        msg = (
            f"f vanishes or changes sign on the spectrum ({low}, {high}): the relative "
            "accuracy ε|tr f(A)| is undefined; shift the operator or f away from its zeros"
        )
        raise ValueError(msg)
    num_probes = ubaru2017_num_probes(epsilon, eta)
    if low == high:  # one eigenvalue: a single Gauss node is exact
        return Budget(1, num_probes, math.inf, min_abs, min_abs, (low, high), epsilon, eta)
    rhos = _candidate_rhos(f, limit, rho)
    budget = _best_budget(fn, rhos, min_abs, num_probes, (low, high), epsilon, eta)
    if not isinstance(f, str):
        _check_chebyshev_decay(fn, low, high, budget.rho, budget.max_abs_f)
    return budget


def _best_budget(
    fn: Callable[..., Any],
    rhos: np.ndarray,
    min_abs: float,
    num_probes: int,
    spectrum: tuple[float, float],
    epsilon: float,
    eta: float,
) -> Budget:
    """Return the budget of the ρ needing fewest steps (ties: the smallest bound then)."""
    max_abs = _max_abs_on_ellipses(fn, *spectrum, rhos)
    finite = np.isfinite(max_abs) & (max_abs > 0.0)
    if not finite.any():
        msg = f"f is not finite on the ellipse of rho={rhos[0]:.6g}: choose a smaller rho"
        raise ValueError(msg)
    rhos, log_max = rhos[finite], np.log(max_abs[finite])
    steps = _steps_needed(log_max, min_abs, rhos, epsilon)
    fewest = steps == steps.min()
    bounds = np.where(fewest, _log_quadrature_bound(log_max, rhos, steps), np.inf)
    best = int(np.argmin(bounds))
    return Budget(
        int(steps[best]),
        num_probes,
        float(rhos[best]),
        float(max_abs[finite][best]),
        min_abs,
        spectrum,
        epsilon,
        eta,
    )

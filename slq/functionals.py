r"""Spectral functionals of an SLQ result: integrals of f against its Gauss rules, no products.

A result of k probes estimates the spectral measure Φ = (1/n) Σ_j δ_{λ_j} by the
probe average of its Gauss rules, Φ̂ = (1/k) Σ_v Σ_i τ_{v,i} δ_{θ_{v,i}}; every
function here is ∫ f dΦ̂ for some f, with the probes' spread as its standard error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from slq._functions import apply_function, resolve_function
from slq._validate import check_finite_float, check_non_negative_int, check_points, check_real
from slq.estimate import Estimate

if TYPE_CHECKING:
    from slq.spectral_density import SpectralDensity

__all__ = ["cdf", "count", "moment", "trace_function"]


def cdf(density: SpectralDensity, x: Any) -> np.ndarray:
    r"""Return the estimated fraction of eigenvalues ≤ x: the probe mean of Σ_{θ_i ≤ x} τ_i.

    The Gauss rules' distribution function, a step function; see
    `SpectralDensity.mass_below` for how far the true one can be from it. A
    Ritz value converged to an eigenvalue x lies on either side of x by
    rounding, so evaluate between eigenvalues, not at one.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.functionals import cdf
    >>> dos = slq.density(np.diag(np.arange(10.0)), num_steps=10, num_probes=2, seed=0)
    >>> cdf(dos, [-0.5, 4.5, 9.5]).round(6)  # between eigenvalues: a step function
    array([0. , 0.5, 1. ])
    """
    x = check_points("x", x, finite=False)
    below = density.nodes[:, :, None] <= x.reshape(-1)[None, None, :]
    return np.einsum("km,kmx->x", density.weights, below).reshape(x.shape) / density.num_probes


def count(density: SpectralDensity, low: float, high: float) -> Estimate:
    """Estimate the number of eigenvalues in (low, high]: n times the estimated mass.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.functionals import count
    >>> dos = slq.density(np.diag(np.arange(100.0)), num_steps=100, num_probes=3, seed=0)
    >>> round(count(dos, 9.5, 19.5).value, 6)
    10.0
    """
    low, high = check_real("low", low), check_real("high", high)
    if not low < high:
        msg = f"count needs low < high, got low={low}, high={high}"
        raise ValueError(msg)
    inside = (density.nodes > low) & (density.nodes <= high)
    samples = density.dim * np.sum(density.weights * inside, axis=1)
    return Estimate.from_samples(samples, num_matvecs=density.num_matvecs, method="slq")


def moment(density: SpectralDensity, p: int) -> Estimate:
    r"""Estimate the p-th spectral moment (1/n) tr(A^p) = (1/n) Σ_j λ_j^p.

    Exact for each probe's measure when p ≤ 2m − 1 (Gauss exactness), so
    the only error is the probes' sampling error.

    Raises
    ------
    ValueError
        If p > 2m − 1: the Gauss rule no longer integrates λ^p exactly.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.functionals import moment
    >>> dos = slq.density(np.diag(np.arange(1.0, 5.0)), num_steps=2, num_probes=2, seed=0)
    >>> round(moment(dos, 2).value, 6)  # (1 + 4 + 9 + 16) / 4
    7.5
    """
    p = check_non_negative_int("p", p)
    m = density.num_steps
    if p > 2 * m - 1:
        msg = (
            f"moment {p} needs more Lanczos steps: {m} steps integrate "
            f"degrees up to {2 * m - 1} exactly"
        )
        raise ValueError(msg)
    samples = np.sum(density.weights * density.nodes**p, axis=1)
    return Estimate.from_samples(samples, num_matvecs=density.num_matvecs, method="slq")


def trace_function(density: SpectralDensity, f: Any, *, shift: float = 0.0) -> Estimate:
    r"""Estimate tr f(A + shift·I) from the stored Gauss rules: no new products.

    Each probe gives n Σ_i τ_i f(θ_i + shift), an estimate of n vᵀ f(A) v whose
    mean over unit probes is tr f(A) (Ubaru, Chen & Saad 2017, eq. (3)-(5)).
    The Gauss rule of A + sI has nodes θ_i + s, so a shift costs nothing.

    Parameters
    ----------
    density : SpectralDensity
        The result whose Gauss rules are integrated.
    f : callable or {"log", "exp", "inverse", "sqrt", "square"}
        Applied to a float64 numpy array of Ritz values. ``"log"`` gives
        log det; it and ``"sqrt"`` need a positive (semi)definite operator,
        ``"inverse"`` a definite one: the Ritz values are checked.
    shift : float, default 0
        s in f(A + sI).

    Returns
    -------
    Estimate
        Value, probe-to-probe standard error and `Estimate.interval`.

    Raises
    ------
    ValueError
        For a named function whose domain the Ritz values leave (the message
        suggests a shift), or an f that does not keep the shape.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.functionals import trace_function
    >>> a = np.diag(np.linspace(1.0, 2.0, 500))
    >>> logdet = trace_function(slq.density(a, num_steps=20, num_probes=8, seed=0), "log")
    >>> exact = np.log(np.linspace(1.0, 2.0, 500)).sum()
    >>> round(logdet.value, 6), round(float(exact), 6)
    (193.107376, 193.107376)
    """
    resolve_function(f)  # a bad `f` fails before any work
    shift = check_finite_float("shift", shift)
    used = density.weights > 0.0
    nodes = np.where(used, density.nodes + shift, density.nodes[:, -1:] + shift)
    per_node = np.zeros_like(nodes)
    per_node[used] = apply_function(f, nodes[used])
    samples = density.dim * np.sum(density.weights * per_node, axis=1)
    return Estimate.from_samples(samples, num_matvecs=density.num_matvecs, method="slq")

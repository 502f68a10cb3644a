"""Spectral sums: tr A by Hutchinson and Hutch++, tr f(A) by stochastic Lanczos quadrature."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from slq._backends import accumulation_dtype, eps, to_host
from slq._density import density
from slq._functions import resolve_function
from slq._lanczos import apply_rows
from slq._probes import PROBES, root_seed, seed_sequence
from slq._validate import check_choice, check_finite_float, check_positive_int
from slq.estimate import Estimate
from slq.operator import as_operator

__all__ = [
    "METHODS",
    "TRACE_FUNCTION_NUM_PROBES",
    "TRACE_FUNCTION_NUM_STEPS",
    "trace",
    "trace_function",
]

logger = logging.getLogger("slq")

METHODS = ("hutch++", "hutchinson")

TRACE_FUNCTION_NUM_STEPS = 30
"""Lanczos steps for tr f(A): the Gauss error of a smooth f falls like ρ^(−2m) (see
`trace_function`), far faster than the density's resolution improves."""

TRACE_FUNCTION_NUM_PROBES = 30
"""Probes for tr f(A): a standard error with 29 degrees of freedom, its Student-t
interval within 4% of the normal one."""

# Spawn keys (stream, part, i) of the trace probes: three words long, where density's
# probe keys are one word (i,) and its symmetry check's two, so no stream is shared.
_TRACE_STREAM = 0x74726163  # "trac"
_SKETCH, _HUTCHINSON = 1, 2

# SVQB keeps the directions of the sketch whose singular value is at least this many
# sqrt(eps) of the largest: the Gram-matrix orthonormalisation then loses at most
# eps·κ² ≤ 1/100 of orthogonality, which the second pass restores.
_KEEP_SQRT_EPS = 10.0


def _probe_rows(op: Any, kind: str, part: int, indices: range, entropy: int) -> Any:
    """Return unnormalised probes number `indices` as rows (k, n) in the operator's namespace.

    Rademacher entries are ±1 and Gaussian ones standard normal, so that E[z zᵀ] = I and
    E[zᵀAz] = tr A. Probe i depends only on (`entropy`, `part`, i).
    """
    n = op.shape[0]
    rows = np.empty((len(indices), n))
    for row, index in enumerate(indices):
        rng = np.random.default_rng(seed_sequence(entropy, _TRACE_STREAM, part, index))
        if kind == "rademacher":
            rows[row] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        else:
            rows[row] = rng.standard_normal(n)
    return op.xp.asarray(rows, dtype=op.dtype, device=op.device)


def _check_finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(values).all():
        msg = f"the operator produced NaN or Inf in {what}: check its output"
        raise FloatingPointError(msg)
    return values


def _quadratic_forms(op: Any, rows: Any, what: str) -> np.ndarray:
    """Return zᵀAz for each row z of `rows` (k, n), accumulated in float64 where possible."""
    xp = op.xp
    images = apply_rows(op, rows, 0)
    acc = accumulation_dtype(xp, op.device, op.dtype)
    forms = xp.vecdot(xp.astype(rows, acc), xp.astype(images, acc), axis=-1)
    return _check_finite(np.asarray(to_host(forms), dtype=np.float64), what)


def _svqb(rows: Any, op: Any) -> Any:
    """One pass of SVQB: orthonormal rows spanning the numerically significant part of `rows`.

    With the Gram matrix G = Y Yᵀ = V D Vᵀ (small, on the host), the rows of
    D^(−1/2) Vᵀ Y are orthonormal (SVQB: Stathopoulos & Wu 2002, SIAM J. Sci.
    Comput. 23(6)). Directions with a singular value below 10·sqrt(eps) of the
    largest are dropped: a rank-deficient sketch gives fewer rows, never a failure.
    """
    xp = op.xp
    acc = accumulation_dtype(xp, op.device, op.dtype)
    y = xp.astype(rows, acc)
    gram = _check_finite(to_host(xp.matmul(y, xp.matrix_transpose(y))), "the Hutch++ sketch")
    d, v = np.linalg.eigh((gram + gram.T) / 2.0)
    keep = d > _KEEP_SQRT_EPS**2 * eps(op.dtype, xp) * max(float(d[-1]), 0.0)
    if not keep.any():
        return None
    weights = (v[:, keep] / np.sqrt(d[keep])).T
    return xp.matmul(xp.asarray(weights, dtype=op.dtype, device=op.device), rows)


def _orthonormal_rows(rows: Any, op: Any) -> Any:
    """Return an orthonormal basis (r, n), r ≤ k, of the row space of `rows` (k, n), or None.

    SVQB twice: like Gram–Schmidt, once leaves an error of eps·κ², twice is enough.
    Block products only, so it runs on every backend (TensorFlow's namespace has no QR).
    """
    basis = _svqb(rows, op)
    return None if basis is None else _svqb(basis, op)


def _deflate(rows: Any, basis: Any, xp: Any) -> Any:
    """Return the rows z of `rows` with their components along `basis` removed: (I − QQᵀ) z."""
    coefficients = xp.matmul(rows, xp.matrix_transpose(basis))
    return rows - xp.matmul(coefficients, basis)


def _hutchinson_samples(
    op: Any, count: int, entropy: int, kind: str, batch: int, basis: Any = None
) -> np.ndarray:
    """Return zᵀ(I−QQᵀ)A(I−QQᵀ)z (or zᵀAz without `basis`) for probes 0..count-1."""
    samples = []
    for start in range(0, count, batch):
        rows = _probe_rows(op, kind, _HUTCHINSON, range(start, min(start + batch, count)), entropy)
        if basis is not None:
            rows = _deflate(rows, basis, op.xp)
        samples.append(_quadratic_forms(op, rows, "the Hutchinson products"))
    return np.concatenate(samples)


def _hutchinson(op: Any, budget: int, entropy: int, kind: str, batch: int) -> Estimate:
    """Hutchinson (1990): the mean of zᵀAz over `budget` probes with E[z zᵀ] = I."""
    samples = _hutchinson_samples(op, budget, entropy, kind, batch)
    return Estimate.from_samples(samples, num_matvecs=budget, method="hutchinson")


def _hutchpp(op: Any, budget: int, entropy: int, kind: str, batch: int) -> Estimate:
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021, Algorithm 1) with `budget` products.

    A third of the products sketch the range, Q = orth(A S); tr(QᵀAQ) is computed
    exactly with as many products as Q has columns, and the rest go to Hutchinson
    on the deflated (I − QQᵀ) A (I − QQᵀ), whose trace is the remainder.
    """
    if budget < 3:
        msg = (
            f"num_matvecs must be >= 3 for method='hutch++' (at least one product each for "
            f"the sketch, its range and the Hutchinson part), got {budget}"
        )
        raise ValueError(msg)
    sketch_size = min(budget // 3, op.shape[0])  # beyond n columns, the sketch spans all
    sketch = apply_rows(op, _probe_rows(op, kind, _SKETCH, range(sketch_size), entropy), 0)
    basis = _orthonormal_rows(sketch, op)
    rank = 0 if basis is None else int(basis.shape[0])
    exact = 0.0 if basis is None else float(np.sum(_quadratic_forms(op, basis, "A Q")))
    # A rank-deficient sketch leaves products over: they go to the Hutchinson part.
    count = budget - sketch_size - rank
    samples = _hutchinson_samples(op, count, entropy, kind, batch, basis)
    estimate = Estimate.from_samples(samples, num_matvecs=budget, method="hutch++")
    return dataclasses.replace(estimate, value=exact + estimate.value)


def trace(
    op: Any,
    /,
    *,
    num_matvecs: int = 100,
    method: str = "hutch++",
    seed: int | np.random.Generator | None = None,
    probe: str = "rademacher",
    probe_batch_size: int | None = None,
) -> Estimate:
    r"""Estimate the trace of a symmetric operator from `num_matvecs` products.

    ``"hutchinson"`` averages zᵀAz over random probes z with E[z zᵀ] = I
    (Hutchinson 1990): unbiased, with variance 2(‖A‖_F² − Σ a_ii²)/k for
    Rademacher probes and 2‖A‖_F²/k for Gaussian ones.

    ``"hutch++"`` (Meyer, Musco, Musco & Woodruff 2021, SOSA, Algorithm 1) spends
    s = ⌊M/3⌋ products on a sketch A S, takes an orthonormal basis Q of its range,
    computes tr(QᵀAQ) exactly (as many products as Q has columns, ≤ s) and spends
    the rest, ≥ M/3, on Hutchinson for tr((I − QQᵀ) A (I − QQᵀ)). It removes the
    largest eigenvalues from the random part: for a matrix whose spectrum decays,
    its error falls like 1/M instead of Hutchinson's 1/sqrt(M).

    Parameters
    ----------
    op
        A symmetric operator: anything `aslinearoperator` accepts.
    num_matvecs : int, default 100
        M, the products with the operator to spend. Hutch++ needs M ≥ 3.
    method : {"hutch++", "hutchinson"}
        The estimator.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Where the probes come from; the same seed gives the same probes on every
        backend and for every `probe_batch_size`. The streams are distinct from
        those of `density` with the same seed.
    probe : {"rademacher", "gaussian"}
        Entries of the probes: ±1, or standard normal. They are not normalised:
        E[zᵀAz] = tr A directly.
    probe_batch_size : int, optional
        Apply the Hutchinson probes b at a time (one ``matmat`` each batch),
        bounding the probe block to b·n numbers. Default: all at once. The Hutch++
        sketch and its basis are always one block of ⌊M/3⌋ rows.

    Returns
    -------
    Estimate
        ``value``; ``stderr``, the standard error of the Hutchinson samples (for
        Hutch++ the deflated part's only: tr(QᵀAQ) is exact given Q);
        ``num_samples``, the number of Hutchinson samples; ``num_matvecs`` = M.
        With a single Hutchinson sample (M = 1 for Hutchinson, M = 3 for a
        full-rank Hutch++ sketch) the standard error is NaN and
        `Estimate.interval` raises.

    Raises
    ------
    ValueError
        For an unknown `method` or `probe`, M < 1, or M < 3 with Hutch++.
    FloatingPointError
        If the operator produces NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.spectral_sums import trace
    >>> g = np.random.default_rng(0).standard_normal((100, 100))
    >>> a = g + g.T
    >>> estimate = trace(a, num_matvecs=30, method="hutchinson", seed=0)
    >>> low, high = estimate.interval(0.95)
    >>> bool(low < np.trace(a) < high), estimate.num_samples
    (True, 30)

    Hutch++ is exact on a matrix whose rank is below a third of the budget:

    >>> u = np.random.default_rng(0).standard_normal((100, 5))
    >>> estimate = trace(u @ u.T, num_matvecs=30, seed=0)
    >>> bool(np.isclose(estimate.value, np.trace(u @ u.T), rtol=1e-10))
    True
    """
    op = as_operator(op)
    budget = check_positive_int("num_matvecs", num_matvecs)
    check_choice("method", method, METHODS)
    check_choice("probe", probe, PROBES)
    batch = budget if probe_batch_size is None else probe_batch_size
    batch = check_positive_int("probe_batch_size", batch)
    entropy = root_seed(seed)
    run = _hutchinson if method == "hutchinson" else _hutchpp
    estimate = run(op, budget, entropy, probe, batch)
    logger.info("trace: n=%d, %s, %d products, seed=%d", op.shape[0], method, budget, entropy)
    return estimate


def trace_function(
    op: Any,
    f: Any,
    /,
    *,
    num_steps: int = TRACE_FUNCTION_NUM_STEPS,
    num_probes: int = TRACE_FUNCTION_NUM_PROBES,
    seed: int | np.random.Generator | None = None,
    probe: str = "rademacher",
    shift: float = 0.0,
    **density_kwargs: Any,
) -> Estimate:
    r"""Estimate tr f(A + shift·I) by stochastic Lanczos quadrature.

    Each unit probe v gives a Gauss rule (θ_i, τ_i) from m Lanczos steps, and
    n Σ_i τ_i f(θ_i) estimates n vᵀ f(A) v, whose mean over probes is tr f(A)
    (Ubaru, Chen & Saad 2017, SIAM J. Matrix Anal. Appl. 38(4), eq. (5)). This is
    `density` followed by `SpectralDensity.trace_function`; keep the density to
    evaluate other functions without new products.

    Parameters
    ----------
    op
        A symmetric operator: anything `aslinearoperator` accepts.
    f : callable or {"log", "exp", "inverse", "sqrt", "square"}
        Applied to a float64 numpy array of Ritz values, keeping its shape.
        ``"log"`` gives log det (A + shift·I); it and ``"sqrt"`` need a positive
        (semi)definite operator, ``"inverse"`` a definite one.
    num_steps : int, default 30
        m, Lanczos steps per probe. The m-point Gauss rule is exact for
        polynomials of degree 2m − 1, so for f analytic inside the Bernstein
        ellipse E_ρ around the spectrum its error falls like ρ^(−2m) (see
        `slq.budget.slq_budget`). For log with condition number κ, ρ is just below
        (√κ + 1)/(√κ − 1), and 30 steps gave per-probe relative errors of 1e-7 at
        κ = 100 and 7e-4 at κ = 1000 (geometrically spread eigenvalues): below
        the probe-to-probe noise, where a density needs ~90 steps to resolve its
        features. Raise it for ill-conditioned operators.
    num_probes : int, default 30
        k, the number of probes; the standard error falls like 1/sqrt(k).
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        As in `density`.
    probe : {'rademacher', 'gaussian'}, default 'rademacher'
        As in `density`.
    shift : float, default 0
        s in f(A + sI): the Gauss rule of A + sI has nodes θ_i + s, so it is free.
    **density_kwargs
        Passed to `density`: ``reorthogonalize``, ``probe_batch_size``,
        ``check_symmetric``.

    Returns
    -------
    Estimate
        The estimate, its probe-to-probe standard error and `Estimate.interval`;
        ``method`` is ``"slq"``. The interval covers only the probe noise, not
        the quadrature error of too few steps.

    Raises
    ------
    ValueError
        For an unknown function name, a non-finite shift, or Ritz values outside
        a named function's domain (the message suggests a shift).
    TypeError
        If `f` is neither callable nor a name.

    See Also
    --------
    slq.budget.slq_budget : steps and probes sufficient for a relative accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.spectral_sums import trace_function
    >>> q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((200, 200)))
    >>> eigenvalues = np.linspace(1.0, 10.0, 200)
    >>> a = (q * eigenvalues) @ q.T
    >>> logdet = trace_function(a, "log", seed=0)
    >>> exact = np.log(eigenvalues).sum()
    >>> low, high = logdet.interval(0.99)
    >>> bool(low < exact < high)
    True

    log det (A + I), and a callable: tr A² = ‖A‖_F²

    >>> shifted = trace_function(a, "log", shift=1.0, seed=0)
    >>> bool(abs(shifted.value - np.log(eigenvalues + 1.0).sum()) < 4 * shifted.stderr)
    True
    >>> frobenius = trace_function(a, lambda x: x**2, num_steps=2, seed=0)
    >>> bool(abs(frobenius.value - (eigenvalues**2).sum()) < 4 * frobenius.stderr)
    True
    """
    resolve_function(f)  # a bad `f` fails before any product is spent
    shift = check_finite_float("shift", shift)
    dos = density(
        op, num_steps=num_steps, num_probes=num_probes, seed=seed, probe=probe, **density_kwargs
    )
    return dos.trace_function(f, shift=shift)

"""Extreme eigenpairs of a symmetric operator by thick-restart Lanczos (Krylov–Schur)."""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from slq._backends import (
    accumulation_dtype,
    array_namespace,
    check_real_floating,
    contiguous_rows,
    eps,
    library_name,
    to_host,
)
from slq._basis import DeviceBasis
from slq._lanczos import apply_rows, norms_in, power_of_two_scale
from slq._probes import draw_probes, root_seed
from slq._validate import check_bool, check_choice, check_positive_int
from slq.operator import CoreOperator, as_operator

__all__ = ["WHICH", "EigshResult", "eigsh"]

logger = logging.getLogger("slq")

WHICH = ("LA", "SA", "LM", "BE")

# Daniel, Gragg, Kaufman & Stewart (1976, Math. Comp. 30): when the second Gram–Schmidt
# pass removes more than 1 - 1/√2 of what the first one left, that was rounding error of
# the first pass in the span of the basis, and the new direction is numerically zero
# (ARPACK's dsaitr uses 0.717).
_DGKS = 1.0 / math.sqrt(2.0)

# A residual this many unit roundoffs of ‖A‖ (estimated by the largest ‖A q‖ seen) is
# rounding noise: A Q = Q H to working precision, and the basis spans an invariant
# subspace. Noise that is mostly outside the basis passes the DGKS test, so it needs a
# test of its own. Zeroing such a β perturbs H by at most 100 eps ‖A‖, below the default
# tolerance eps^(2/3) in float32 and float64.
_INVARIANT_ROUNDOFFS = 100.0

_FRESH_ATTEMPTS = 5


class EigshResult(NamedTuple):
    """Ritz pairs of `eigsh`, sorted by eigenvalue, with a posteriori error bounds.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> result = slq.eigsh(np.diag(np.arange(10.0)), k=2, seed=0)
    >>> result.eigenvalues.round(12), result.converged
    (array([8., 9.]), array([ True,  True]))
    """

    eigenvalues: np.ndarray
    """Shape (k,), float64, ascending: the Ritz values θ."""
    eigenvectors: Any
    """Shape (n, k) in the operator's namespace and device (None if not asked for)."""
    residual_norms: np.ndarray
    """Shape (k,), float64: ‖A x − θ x‖, computed with one final product.

    For symmetric A and unit x some eigenvalue lies within this distance of θ
    (Parlett 1998, Thm 4.5.1).
    """
    converged: np.ndarray
    """Shape (k,), bool: whether the pair met the tolerance."""
    num_matvecs: int
    """Operator-vector products spent, the k of the final residual check included."""
    num_restarts: int
    """Thick restarts performed."""


class _Ritz(NamedTuple):
    values: np.ndarray  # (r,) ascending Ritz values of H
    vectors: np.ndarray  # (r, r) eigenvectors y of H, as columns
    estimates: np.ndarray  # (r,) residual norms β |y_last| of the Ritz pairs
    order: np.ndarray  # indices of `values`, most wanted first


@dataclass
class _Run:
    """The state of a thick-restart Lanczos run: A Q = Q H + β q eᵀ (Stewart 2001).

    H, β and the norms are those of A / `scale`; `_finish` scales the Ritz values back.
    """

    op: CoreOperator
    acc: Any  # dtype of the inner products
    basis: DeviceBasis  # Q, as rows of one probe: (1, p, n)
    h: np.ndarray  # (p, p) float64: upper triangle of H = QᵀAQ, filled column by column
    q: Any  # (1, n) the next unit vector, orthogonal to the basis (None after a breakdown)
    beta: float  # β, the norm of the residual of the last column
    entropy: int  # seed of the random vectors drawn after breakdowns
    count: int = 0  # vectors in the basis
    num_matvecs: int = 0
    num_restarts: int = 0
    num_fresh: int = 0  # random vectors drawn so far (v0, if drawn, is number 0)
    norm_estimate: float = 0.0  # max ‖A q‖ so far: a lower bound on ‖A‖
    scale: float = 1.0  # the run is on A / scale, a power of two: see `power_of_two_scale`
    found_invariant: bool = False  # whether some basis has spanned an invariant subspace


def _check_sizes(k: Any, num_vectors: Any, n: int) -> tuple[int, int]:
    k = check_positive_int("k", k)
    if k >= n:
        msg = (
            f"k must be < n = {n} (the operator's size), got {k}: for all eigenvalues use a "
            "dense eigensolver such as numpy.linalg.eigh"
        )
        raise ValueError(msg)
    if num_vectors is None:
        return k, min(n, max(2 * k + 1, 20))
    p = check_positive_int("num_vectors", num_vectors)
    if not k < p <= n:
        msg = f"num_vectors must satisfy k < num_vectors <= n, i.e. lie in ({k}, {n}], got {p}"
        raise ValueError(msg)
    return k, p


def _check_tol(tol: Any, dtype: Any, xp: Any) -> float:
    unit = eps(dtype, xp)
    if tol is None:
        return float(unit ** (2.0 / 3.0))
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        msg = f"tol must be a real number >= 0 or None, got {tol!r}"
        raise TypeError(msg)
    value = float(tol)
    if not (value >= 0.0 and math.isfinite(value)):
        msg = f"tol must be finite and >= 0, got {tol}"
        raise ValueError(msg)
    return max(value, unit)


def _check_max_restarts(max_restarts: Any) -> int:
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, numbers.Integral):
        msg = f"max_restarts must be an integer >= 0, got {max_restarts!r}"
        raise TypeError(msg)
    if max_restarts < 0:
        msg = f"max_restarts must be >= 0, got {max_restarts}"
        raise ValueError(msg)
    return int(max_restarts)


def _start_vector(v0: Any, op: CoreOperator, entropy: int) -> Any:
    """Return the first basis vector, as a (1, n) row: `v0` checked and normalised, or drawn."""
    xp, n = op.xp, op.shape[0]
    if v0 is None:
        drawn = draw_probes("gaussian", n, range(1), entropy)[:, 0]
        v0 = xp.asarray(drawn, dtype=op.dtype, device=op.device)
    try:
        v0_xp = array_namespace(v0)
    except TypeError:
        msg = f"v0 must be a {library_name(xp)} array (the operator's), got {type(v0).__name__}"
        raise TypeError(msg) from None
    if v0_xp is not xp:
        msg = (
            f"v0 is a {library_name(v0_xp)} array but the operator's vectors are "
            f"{library_name(xp)} arrays; create v0 with the operator's library"
        )
        raise TypeError(msg)
    if tuple(v0.shape) != (n,):
        msg = f"v0 must have shape ({n},), got {tuple(v0.shape)}"
        raise ValueError(msg)
    check_real_floating(v0.dtype, xp, what="v0")
    v0 = xp.astype(v0, op.dtype)
    scale = power_of_two_scale(v0, xp)  # a start vector of any representable size
    if scale != 1.0:
        v0 = v0 * (1.0 / scale)
    norm = float(to_host(norms_in(v0, xp, _accumulation(op))))
    if not (math.isfinite(norm) and norm > 0.0):
        msg = f"v0 must be finite and nonzero, got a vector of norm {norm}"
        raise ValueError(msg)
    return xp.reshape(v0 / norm, (1, n))


def _accumulation(op: CoreOperator) -> Any:
    """Return the dtype in which `op`'s inner products are accumulated (float64 if it can)."""
    return accumulation_dtype(op.xp, op.device, op.dtype)


def _new_basis(op: CoreOperator, size: int) -> DeviceBasis:
    """Return an empty basis of `size` rows: the engine's, as one probe."""
    return DeviceBasis(op.backend, (1, size, op.shape[0]), op.dtype, op.device)


def _append(run: _Run, q: Any) -> None:
    run.basis.store(run.count, q)
    run.count += 1


def _rows(run: _Run) -> Any:
    """Return the basis as one (count, n) array."""
    return run.basis.stored(run.count)[0, :, :]


def _project(
    w: Any, basis: Any, rows: int, acc: Any, project_pass: Callable[..., tuple[Any, Any]]
) -> tuple[Any, Any, Any]:
    """Orthogonalise the row w (1, n) against the basis by classical Gram–Schmidt, twice.

    "Twice is enough" (Giraud, Langou & Rozložník 2005), with the backend's pass.
    Returns w, the summed coefficients Q w (1, rows) in `acc` (the new column of
    H), and ‖w‖ before and after each pass, for the DGKS test.
    """
    xp = array_namespace(w)
    total, norms = None, [norms_in(w, xp, acc)]
    for _ in range(2):
        w, c = project_pass(w, basis, rows, acc)
        total = c if total is None else total + c
        norms.append(norms_in(w, xp, acc))
    return w, total, xp.stack(norms)


def _projected(run: _Run, w: Any) -> tuple[Any, Any, Any]:
    """`_project` against the whole basis, as the backend runs kernels (compiled for JAX)."""
    backend = run.op.backend
    kernel = backend.compiled(_project, static_argnums=(2, 3, 4))
    rows = backend.rows_to_project(run.basis.data, run.count)
    return kernel(w, run.basis.data, rows, run.acc, backend.project_pass)  # type: ignore[no-any-return]


def _check_finite(column: np.ndarray, norm: float, product: int) -> None:
    if not (np.isfinite(column).all() and math.isfinite(norm)):
        msg = (
            f"the operator produced NaN or Inf at eigsh product {product}: check the "
            "operator for NaN or Inf in its output"
        )
        raise FloatingPointError(msg)


def _step(run: _Run) -> bool:
    """Append q to the basis and fill the column of H it adds; return whether it broke down."""
    j = run.count
    _append(run, run.q)
    w = apply_rows(run.op, run.q, run.num_matvecs)
    if run.num_matvecs == 0:
        run.scale = power_of_two_scale(w, run.op.xp)
    if run.scale != 1.0:
        w = w * (1.0 / run.scale)
    run.num_matvecs += 1
    w, coefficients, norms = _projected(run, w)
    column = to_host(coefficients)[0, : j + 1].astype(np.float64)
    image, first, second = to_host(norms).reshape(-1)
    _check_finite(column, second, run.num_matvecs)
    run.h[: j + 1, j] = column
    run.norm_estimate = max(run.norm_estimate, float(image))
    floor = _INVARIANT_ROUNDOFFS * eps(run.op.dtype, run.op.xp) * run.norm_estimate
    broke = not (second > _DGKS * first and second > floor)
    run.found_invariant |= broke
    run.beta = 0.0 if broke else float(second)
    run.q = None if broke else w / run.beta
    return broke


def _fresh(run: _Run) -> Any:
    """Return a seeded random unit vector orthogonal to the basis: a breakdown's new direction."""
    op = run.op
    for _ in range(_FRESH_ATTEMPTS):
        run.num_fresh += 1
        drawn = draw_probes(
            "gaussian", op.shape[0], range(run.num_fresh, run.num_fresh + 1), run.entropy
        )
        v = op.xp.asarray(np.ascontiguousarray(drawn.T), dtype=op.dtype, device=op.device)
        v, _, norms = _projected(run, v)
        _, first, second = to_host(norms).reshape(-1)
        if second > _DGKS * first:
            return v / float(second)
    msg = f"no direction orthogonal to {run.count} basis vectors in R^{op.shape[0]} (a bug in slq)"
    raise AssertionError(msg)


def _priority(values: np.ndarray, which: str) -> np.ndarray:
    """Return the indices of the ascending `values`, most wanted first."""
    r = values.size
    if which == "LA":
        return np.arange(r)[::-1]
    if which == "SA":
        return np.arange(r)
    if which == "LM":
        return np.argsort(-np.abs(values), kind="stable")
    # "BE": alternately from the top and the bottom, the top first (as ARPACK's).
    interleaved = np.stack([np.arange(r)[::-1], np.arange(r)], axis=1).reshape(-1)
    _, first = np.unique(interleaved, return_index=True)
    return interleaved[np.sort(first)]


def _ritz(run: _Run, which: str) -> _Ritz:
    """Return the Ritz pairs of H, the Rayleigh quotient of A on the basis."""
    r = run.count
    upper = np.triu(run.h[:r, :r])
    values, vectors = np.linalg.eigh(upper + np.triu(upper, 1).T)
    return _Ritz(values, vectors, run.beta * np.abs(vectors[-1]), _priority(values, which))


def _converged(ritz: _Ritz, indices: np.ndarray, tol: float) -> np.ndarray:
    """Return, for the Ritz pairs `indices`, whether β |y_last| <= tol · max |θ|."""
    scale = float(np.abs(ritz.values).max())
    return ritz.estimates[indices] <= tol * scale


def _extend(run: _Run, k: int, which: str, tol: float) -> _Ritz:
    """Add basis vectors until the wanted Ritz pairs converge or the basis is full."""
    size = run.h.shape[0]
    while True:
        broke = _step(run)
        full = run.count == size
        if broke and not full:
            run.q = _fresh(run)  # an invariant subspace: carry on in a new direction
            continue
        if run.count >= k:
            ritz = _ritz(run, which)
            # Past an invariant subspace, other copies of its eigenvalues may still be
            # missing (a Krylov space holds one of each): only a full basis is judged.
            early = not run.found_invariant and _converged(ritz, ritz.order[:k], tol).all()
            if full or early:
                return ritz


def _restart(run: _Run, ritz: _Ritz, keep: int) -> None:
    """Keep the `keep` most wanted Ritz vectors as the new basis (Wu & Simon 2000)."""
    op, xp = run.op, run.op.xp
    kept = ritz.order[:keep]
    y = xp.asarray(ritz.vectors[:, kept].T, dtype=op.dtype, device=op.device)
    vectors = xp.matmul(y, _rows(run))
    run.basis, run.count = _new_basis(op, run.h.shape[0]), 0
    for i in range(keep):
        _append(run, vectors[i : i + 1, :])
    # H restarts as diag(θ); the next column adds the arrow β y_last (filled by projection).
    run.h = np.zeros_like(run.h)
    run.h[np.arange(keep), np.arange(keep)] = ritz.values[kept]
    run.num_restarts += 1


def _iterate(run: _Run, k: int, which: str, tol: float, max_restarts: int) -> _Ritz:
    size = run.h.shape[0]
    keep = k + (size - k) // 2
    while True:
        ritz = _extend(run, k, which, tol)
        if _converged(ritz, ritz.order[:k], tol).all() or run.num_restarts == max_restarts:
            return ritz
        _restart(run, ritz, keep)


def _finish(run: _Run, ritz: _Ritz, k: int, tol: float, vectors: bool) -> EigshResult:
    """Form the wanted Ritz vectors, and their residuals with one product."""
    op, xp = run.op, run.op.xp
    wanted = ritz.order[:k]
    wanted = wanted[np.argsort(ritz.values[wanted], kind="stable")]
    theta = ritz.values[wanted]
    y = xp.asarray(ritz.vectors[:, wanted].T, dtype=op.dtype, device=op.device)
    x = xp.matmul(y, _rows(run))  # (k, n): the Ritz vectors as rows
    image = apply_rows(op, x, run.num_matvecs) * (1.0 / run.scale)
    run.num_matvecs += k
    residual = image - x * xp.asarray(theta[:, None], dtype=op.dtype, device=op.device)
    norms = to_host(norms_in(residual, xp, run.acc)) * run.scale
    return EigshResult(
        eigenvalues=theta * run.scale,
        eigenvectors=contiguous_rows(xp.permute_dims(x, (1, 0)), xp) if vectors else None,
        residual_norms=norms.astype(np.float64),
        converged=_converged(ritz, wanted, tol),
        num_matvecs=run.num_matvecs,
        num_restarts=run.num_restarts,
    )


def eigsh(
    op: Any,
    /,
    k: int = 6,
    *,
    which: str = "LA",
    num_vectors: int | None = None,
    tol: float | None = None,
    max_restarts: int = 1000,
    v0: Any = None,
    seed: Any = None,
    return_eigenvectors: bool = True,
) -> EigshResult:
    r"""Return k extreme eigenpairs of a symmetric operator, by thick-restart Lanczos.

    Lanczos with full reorthogonalisation builds an orthonormal basis Q of up
    to p = `num_vectors` vectors and H = QᵀAQ; when the basis is full, it keeps
    the most wanted Ritz vectors (k + (p − k) // 2 of them) and carries on
    from the residual: thick restarting (Wu & Simon 2000, SIAM J. Matrix Anal.
    Appl. 22(2)), which for symmetric A is the Krylov–Schur method (Stewart
    2001). Memory: p vectors of length n. A pair (θ, Qy) is accepted when its
    residual β |y_p| ≤ `tol` · max |θ|. This is `scipy.sparse.linalg.eigsh`
    for any array library, with vectors that stay on their device.

    Parameters
    ----------
    op
        A symmetric operator: anything `aslinearoperator` accepts.
    k : int
        The number of eigenpairs, 1 <= k < n.
    which : {"LA", "SA", "LM", "BE"}
        Largest algebraic, smallest algebraic, largest magnitude, or both ends
        (k // 2 from the bottom, k − k // 2 from the top, as in SciPy).
    num_vectors : int, optional
        p, the largest basis, k < p <= n. Default min(n, max(2k + 1, 20)).
    tol : float, optional
        Relative residual tolerance (relative to the largest |Ritz value|).
        The default eps^(2/3) of the operator's dtype (3.7e-11 in float64,
        2.4e-5 in float32) gives eigenvalues to about eps: their errors are at
        most the residual, and typically residual² / gap (the Kato–Temple
        bound), eps^(4/3) relative. eps^(1/2) would leave errors up to
        1.5e-8 in float64. 0 means eps.
    max_restarts : int
        Restarts before giving up; each costs at most p − k products.
    v0 : array, shape (n,), optional
        Start vector, in the operator's library and device.
    seed : int, numpy Generator or None
        Seed of the start vector (when `v0` is None) and of the random
        directions that continue the run past an invariant subspace. The
        same seed gives the same start on every backend.
    return_eigenvectors : bool
        Return the Ritz vectors (their residuals are computed either way).

    Returns
    -------
    EigshResult
        ``eigenvalues`` (k,) ascending, ``eigenvectors`` (n, k) or None,
        ``residual_norms``: ‖A x − θ x‖ from one final product with the k
        vectors, so that each θ lies within that distance of an eigenvalue
        (Parlett 1998, Thm 4.5.1); ``converged``, ``num_matvecs``,
        ``num_restarts``. When `max_restarts` runs out, the current Ritz pairs
        come back with ``converged`` False and a warning is logged on the
        ``"slq"`` logger (where SciPy raises ArpackNoConvergence).

    Raises
    ------
    ValueError
        If k, `num_vectors`, `which`, `tol`, `max_restarts` or `v0` is out of range.
    TypeError
        If one of them has the wrong type, or `v0` is not an array of the
        operator's library.
    FloatingPointError
        If the operator produces NaN or Inf.

    Notes
    -----
    ``converged`` is the test the iteration applies, to the residual
    estimates β |y_p| of the recurrence; ``residual_norms`` are computed
    afresh and agree with them to rounding (about eps ‖A‖).

    One Krylov space holds one copy of each eigenvalue. When it becomes
    invariant (β ≈ 0), the run carries on from a seeded random vector
    orthogonal to it, and from then on judges convergence only on a full
    basis, which lets further copies of a multiple eigenvalue in. A multiple
    eigenvalue that no breakdown reveals is found only as rounding errors
    bring its other copies in, as in ARPACK: for clustered wanted
    eigenvalues, use a larger `num_vectors`.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> a = np.diag(np.linspace(-1.0, 1.0, 200)) + np.diag([0.0] * 199 + [5.0])
    >>> result = slq.eigsh(a, k=2, seed=0)
    >>> result.eigenvalues.round(8), bool(result.converged.all())
    (array([0.98994975, 6.        ]), True)
    >>> bool((result.residual_norms < 1e-9).all())
    True

    The most negative eigenvalue, the other end:

    >>> slq.eigsh(a, k=1, which="SA", seed=0).eigenvalues.round(10)
    array([-1.])
    """
    op = as_operator(op)
    k, size = _check_sizes(k, num_vectors, op.shape[0])
    check_choice("which", which, WHICH)
    tol = _check_tol(tol, op.dtype, op.xp)
    max_restarts = _check_max_restarts(max_restarts)
    check_bool("return_eigenvectors", return_eigenvectors)
    entropy = root_seed(seed)
    q = _start_vector(v0, op, entropy)
    h = np.zeros((size, size))
    run = _Run(op, _accumulation(op), _new_basis(op, size), h, q, 0.0, entropy)
    ritz = _iterate(run, k, which, tol, max_restarts)
    result = _finish(run, ritz, k, tol, return_eigenvectors)
    _log(result, op.shape[0], which, tol, max_restarts)
    return result


def _log(result: EigshResult, n: int, which: str, tol: float, max_restarts: int) -> None:
    k = result.eigenvalues.size
    logger.info(
        "eigsh: n=%d, k=%d, which=%s, %d matvecs, %d restarts, %d of %d converged",
        n,
        k,
        which,
        result.num_matvecs,
        result.num_restarts,
        int(result.converged.sum()),
        k,
    )
    if not result.converged.all():
        logger.warning(
            "eigsh: %d of %d Ritz pairs did not converge to tol=%.3g in max_restarts=%d; "
            "largest residual norm %.3g: returned with converged=False",
            int((~result.converged).sum()),
            k,
            tol,
            max_restarts,
            float(result.residual_norms.max()),
        )

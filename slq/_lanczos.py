"""Batched Lanczos tridiagonalisation: k independent recurrences, one `matmat` per step."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from slq import _batch_split
from slq._backends import (
    accumulation_dtype,
    array_namespace,
    check_real_floating,
    contiguous_rows,
    eps,
    library_name,
    row_dots,
    row_lengths,
    subtract_scaled,
    to_host,
)
from slq._basis import DeviceBasis, HostBasis, storage
from slq._batch_run import BatchRun
from slq._batch_split import BatchSplit, drive
from slq._lanczos_result import LanczosResult, check_finite, compiled_result, lanczos_result
from slq._reorthogonalization import Policy, policy
from slq._validate import check_bool, check_positive_int
from slq.operator import as_operator, check_array_of, check_same_library

__all__ = [
    "LanczosResult",
    "apply_rows",
    "lanczos",
    "norms_in",
    "prepare_start",
    "row_norms",
    "run_batch",
]

logger = logging.getLogger("slq")


class _State(NamedTuple):
    q: Any  # (k, n) current Lanczos vectors, probe-major
    q_prev: Any  # (k, n) previous ones
    beta_prev: Any  # (k, 1) β_{j-1} in the working dtype


# A probe breaks down when its residual is this many unit roundoffs of ‖A q_j‖:
# r_j = A q_j − α_j q_j − β_{j−1} q_{j−1} then carries nothing but the rounding of
# its own computation. Measured against ‖A q_j‖, not ‖A‖, so that a small but
# genuine β_j (a narrow bulk next to large outliers) is never taken for zero.
_BREAKDOWN_ROUNDOFFS = 10.0


# The engine's API inside the package: density, kpm, spectral_sums and eigsh call
# prepare_start, apply_rows, run_batch, row_norms and norms_in by these names;
# `slq` re-exports only `lanczos` and `LanczosResult`.


def prepare_start(v0: Any, op: Any) -> Any:
    """Return the start vectors as (k, n) unit rows in the operator's dtype."""
    xp, n = op.xp, op.shape[0]
    v0_xp = array_namespace(v0)
    if v0_xp is not xp:
        msg = (
            f"v0 is a {library_name(v0_xp)} array but the operator's vectors are "
            f"{library_name(xp)} arrays; create v0 with the operator's library"
        )
        raise TypeError(msg)
    ndim = len(v0.shape)  # a tf.Variable has no `ndim`
    if ndim not in (1, 2) or v0.shape[0] != n:
        msg = f"v0 must have shape ({n},) or ({n}, k), got {tuple(v0.shape)}"
        raise ValueError(msg)
    check_real_floating(v0.dtype, xp, what="v0")
    acc = accumulation_dtype(xp, op.device, op.dtype)
    # A library that compiles (JAX) scales and normalises in one call: eagerly, its
    # eight operations compiled one by one at a first call (0.3 s of CPU).
    started = op.backend.start_rows(v0, op.dtype, acc, _SAFE_EXPONENT)
    if started is not None:
        rows, norms = started
        if not op.backend.is_traced(rows):  # inside a user's jax.jit: unchecked
            _check_start_norms(to_host(norms))
        return rows
    rows = xp.astype(v0[None, :] if ndim == 1 else xp.permute_dims(v0, (1, 0)), op.dtype)
    rows = contiguous_rows(rows, xp)
    scale = power_of_two_scale(rows, xp)  # a start vector of any representable size
    if scale != 1.0:
        rows = rows * (1.0 / scale)
    norms = norms_in(rows, xp, acc)
    _check_start_norms(to_host(norms))
    return rows / xp.astype(norms, op.dtype)[:, None]


def _check_start_norms(norms: np.ndarray) -> None:
    bad = np.flatnonzero(~(np.isfinite(norms) & (norms > 0)))
    if bad.size:
        msg = (
            f"v0 column {int(bad[0])} has norm {norms[bad[0]]}: start vectors must be "
            "finite and nonzero"
        )
        raise ValueError(msg)


def row_norms(rows: Any, xp: Any, op: Any) -> Any:
    """Return the norm of each row of `rows` (k, n), accumulated as `op`'s products are."""
    return norms_in(rows, xp, accumulation_dtype(xp, op.device, op.dtype))


def norms_in(rows: Any, xp: Any, acc: Any) -> Any:
    """Return the norms along the last axis of `rows`, accumulated in the dtype `acc`."""
    return row_lengths(xp.astype(rows, acc, copy=False), xp)


# Products whose largest entry lies within 2^±_SAFE_EXPONENT run unscaled: their squares
# and sums of squares stay far from overflow and underflow in float32 and float64.
_SAFE_EXPONENT = 60


def power_of_two_scale(w: Any, xp: Any) -> float:
    """Return 2^e near max |w| when that lies outside 2^±60, else 1.0.

    Lanczos is scale-invariant: run on A / 2^e it gives α / 2^e and β / 2^e,
    and dividing by a power of two is exact. Norms are sums of squares, which
    overflow from ‖A‖ ≈ 1e154 in float64 and underflow below 1e-154 (LAPACK's
    ``nrm2`` scales for the same reason; Blue 1978): an operator of any scale the
    dtype represents then gives the same relative answer, and one of ordinary
    scale the very same bits.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._lanczos import power_of_two_scale
    >>> power_of_two_scale(np.array([[3.0, -4.0]]), np)
    1.0
    >>> power_of_two_scale(np.array([[2.0**-200]]), np) == 2.0**-199
    True
    """
    largest = float(to_host(xp.max(xp.abs(w))))
    if not (math.isfinite(largest) and largest > 0.0):
        return 1.0  # a zero product needs no scale; a NaN or Inf is reported by the step
    exponent = math.frexp(largest)[1]
    return 1.0 if abs(exponent) <= _SAFE_EXPONENT else math.ldexp(1.0, exponent)


def apply_rows(op: Any, rows: Any, step: int) -> Any:
    """Return A q for each row q of `rows` (shape (k, n)), as rows."""
    xp = op.xp
    out = op.matmat(xp.permute_dims(rows, (1, 0)))
    if step == 0:
        check_same_library(out, xp)
    expected = tuple(reversed(rows.shape))
    if tuple(out.shape) != expected:
        msg = f"the operator returned shape {tuple(out.shape)}, expected {expected}"
        raise ValueError(msg)
    return contiguous_rows(xp.astype(xp.permute_dims(out, (1, 0)), op.dtype, copy=False), xp)


def _fused_step(op: Any, state: _State, w: Any, basis: DeviceBasis, j: int) -> tuple[Any, Any]:
    """Finish step j from w = A q_j with full reorthogonalisation on the device.

    Returns the residuals r_j (k, n) and (α_j, β_j, ‖A q_j‖, again) as one (4, k)
    array in the accumulation dtype; `again` is 1 for the probes that need a
    second Gram–Schmidt pass (see `_residual`).
    """
    xp = op.xp
    q, q_prev, beta_prev = state
    acc = accumulation_dtype(xp, op.device, op.dtype)
    backend = op.backend
    residual = backend.compiled_step(_residual, static_argnums=(5, 6, 7))
    stored, rows = backend.projection_operand(basis.data, j + 1)
    return residual(q, q_prev, beta_prev, w, stored, rows, acc, backend.project_dgks)


def _recurrence_step(op: Any, state: _State, w: Any, local: bool) -> tuple[Any, Any]:
    """Finish a step by the three-term recurrence; `local` also projects against q_j, q_{j-1}.

    Returns what `_fused_step` does (no probe is left for a second pass).
    """
    xp = op.xp
    q, q_prev, beta_prev = state
    acc = accumulation_dtype(xp, op.device, op.dtype)
    residual = op.backend.compiled_step(_residual, static_argnums=(5, 6, 7, 8))
    return residual(q, q_prev, beta_prev, w, None, None, acc, None, local)


def _residual(
    q: Any,
    q_prev: Any,
    beta_prev: Any,
    w: Any,
    basis: Any,
    rows: int | None,
    acc: Any,
    project_dgks: Callable[..., tuple[Any, Any, Any]] | None,
    local: bool = False,
) -> tuple[Any, Any]:
    """Return r_j = A q_j minus its projections, and (α_j, β_j, ‖A q_j‖, again) as (4, k).

    First the three-term recurrence r = A q_j − α_j q_j − β_{j−1} q_{j−1} (Paige
    1976). With `project_dgks` (full reorthogonalisation) r is then projected
    by one classical Gram–Schmidt pass against the first `rows` stored vectors,
    and a second pass follows only where the DGKS test (Daniel, Gragg, Kaufman
    & Stewart 1976; Reichel & Gragg 1990; ARPACK's dsaitr) finds that the first
    lost orthogonality: ‖r after‖ < ‖r before‖ / √2.

    "Before" is the norm after the recurrence, the pass's own input. A pass's
    rounding error is about ε times its input's norm; when the norm shrinks by
    no more than 1/√2, the result is orthogonal to the basis to within ~ε√2 of
    its own length (Parlett 1998, p. 107). When the pass removed more (the
    recurrence left a large component along the basis, as near a breakdown),
    that error is large beside what is left, and a second pass restores
    orthogonality: twice is enough (Giraud, Langou & Rozložník 2005). With a
    basis orthonormal to working precision, the recurrence leaves only ~ε‖A‖
    along it, so second passes are rare. Measured against ‖A q_j‖ instead
    (ARPACK's, whose first pass includes the recurrence), every step with β_j
    small beside |α_j| would be repeated for nothing.

    α_j also gains r's component along q_j, the pass's coefficient on q_j, as
    in dsaitr: the exact coefficient for the α_j the recurrence subtracted
    (rounded to the vectors' dtype). It measured 15–40% closer outlying Ritz
    values, in float32 and float64.

    `again` is 1 for the probes that need the second pass: an eager library
    runs it after the step, on a branch taken on the host from the norms it
    copies there anyway; a compiled kernel has run it already
    (``backend.repeats_in_kernel``). Without `project_dgks`, `local` adds one
    Gram–Schmidt pass against q_j and q_{j-1} (two inner products), which keeps
    neighbouring vectors orthogonal to working precision.
    """
    xp = array_namespace(q, w)
    image_norm = norms_in(w, xp, acc)
    q_acc = xp.astype(q, acc, copy=False)
    alpha = row_dots(q_acc, xp.astype(w, acc, copy=False), xp)
    subtracted = xp.astype(alpha, w.dtype)
    w = subtract_scaled(w, xp.expand_dims(subtracted, axis=1), q, xp)
    # In place from here: w is now this step's own array.
    w = subtract_scaled(w, beta_prev, q_prev, xp, in_place=True)
    if project_dgks is not None:
        correction = row_dots(q_acc, xp.astype(w, acc, copy=False), xp)
        alpha = xp.astype(subtracted, acc) + correction
        w, norm, again = project_dgks(w, basis, rows, acc, norms_in(w, xp, acc))
        again = xp.astype(again, acc)
    else:
        if local:
            w = _local_pass(w, q, q_prev, xp)
        norm = norms_in(w, xp, acc)
        again = xp.zeros_like(norm)
    return w, xp.stack([alpha, norm, image_norm, again])


def _local_pass(w: Any, q: Any, q_prev: Any, xp: Any) -> Any:
    """One Gram–Schmidt pass of the rows of `w` against q_j and q_{j-1}: two inner products.

    `w` is the step's own residual, updated in place where the library allows.
    """
    w = subtract_scaled(w, row_dots(q, w, xp)[:, None], q, xp, in_place=True)
    return subtract_scaled(w, row_dots(q_prev, w, xp)[:, None], q_prev, xp, in_place=True)


def lanczos(
    op: Any,
    v0: Any,
    num_steps: int,
    /,
    *,
    reorthogonalize: str = "full",
    offload_basis: bool = False,
    return_basis: bool = False,
) -> LanczosResult:
    r"""Run m Lanczos steps from each column of `v0`, all probes advancing together.

    Produces for every start vector v the tridiagonal T = Qᵀ A Q of the Krylov
    space K_m(A, v) (Lanczos 1950; Golub & Van Loan 2013, Alg. 10.1.1). With
    ``v0`` of shape (n, k) this is *batched* Lanczos: k independent recurrences
    that share one ``matmat`` per step (not block Lanczos).

    Parameters
    ----------
    op
        A symmetric operator: anything `aslinearoperator` accepts.
    v0 : array, shape (n,) or (n, k)
        Start vectors, in the operator's array library and device. Need not be
        normalised.
    num_steps : int
        m, the number of steps (and products per probe); capped at n.
    reorthogonalize : {"full", "partial", "none"}
        ``"full"`` keeps the basis and reorthogonalises every new vector against
        it: one classical Gram–Schmidt pass after the three-term recurrence,
        and a second for the probes where the first lost orthogonality (the
        DGKS test; rare): memory k (m+1) n numbers, no ghost eigenvalues.
        ``"partial"`` keeps the basis too but
        reorthogonalises only when Simon's (1984) estimate of the loss of
        orthogonality, computed from the α's and β's, reaches sqrt(ε), and then
        for two steps; every vector is also reorthogonalised against its two
        predecessors. The basis stays semi-orthogonal, which makes the Ritz
        values and quadrature weights as accurate as with ``"full"`` (Simon
        1984), at a fraction of its O(j n) work per step. ``"none"`` is the bare
        three-term recurrence: memory O(kn), but in floating point converged
        Ritz values reappear as spurious copies (Paige 1976).
    offload_basis : bool, default False
        Keep the stored basis in host memory (numpy) instead of on the
        operator's device; the current vectors and all products stay on the
        device. Each step copies one vector per probe to the host, and each
        reorthogonalisation one there and back, computed on the CPU. Device
        memory is then O(kn) whatever m is. With ``"none"`` nothing is stored
        and this changes nothing.
    return_basis : bool
        Also return the Lanczos vectors (shape (k, n, m)), in the operator's
        library, or as numpy with `offload_basis`.

    Returns
    -------
    LanczosResult
        ``alpha`` (k, m), ``beta`` (k, m-1) as float64 numpy arrays (also when
        the vectors are float32: inner products are accumulated in float64),
        per-probe ``lengths``, ``residual_norm``, ``basis``, ``num_matvecs``
        and ``num_reorthogonalizations``. A 1-D `v0` is a batch of one: k = 1.
        If every probe breaks down (an invariant subspace is found) before m
        steps, m is the longest run. A JAX operator with a traceable product
        runs each batch as one compiled program; inside a user's `jax.jit`
        the array fields and `num_matvecs` are then JAX arrays, with all m
        columns (zeros past a breakdown) and nothing checked on the host (see
        the JAX page of the docs).

    Raises
    ------
    FloatingPointError
        If the operator produces NaN or Inf (the message names probe and step).

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> a = np.diag([1.0, 2.0, 3.0, 4.0])
    >>> result = slq.lanczos(a, np.ones(4), 2)
    >>> result.alpha.round(6)
    array([[2.5, 2.5]])
    >>> result.beta.round(6)
    array([[1.118034]])

    Breakdown is success: after as many steps as there are distinct eigenvalues
    the Krylov space is invariant and the probe stops.

    >>> slq.lanczos(np.diag([1.0, 1.0, 5.0]), np.ones(3), 3).lengths
    array([2])

    Partial reorthogonalisation spends the Gram–Schmidt work only where needed:

    >>> spectrum = np.concatenate([np.linspace(0.0, 1.0, 400), [100.0, 300.0]])
    >>> v0 = np.random.default_rng(0).standard_normal(402)
    >>> partial = slq.lanczos(np.diag(spectrum), v0, 60, reorthogonalize="partial")
    >>> full = slq.lanczos(np.diag(spectrum), v0, 60)
    >>> partial.num_reorthogonalizations < full.num_reorthogonalizations
    True
    """
    op = as_operator(op)
    num_steps = min(check_positive_int("num_steps", num_steps), op.shape[0])
    chosen = policy(reorthogonalize)
    check_bool("offload_basis", offload_basis)
    check_bool("return_basis", return_basis)
    check_array_of("v0", v0, op.xp)
    rows = prepare_start(v0, op)
    return run_batch(
        op,
        rows,
        num_steps,
        chosen,
        return_basis,
        probe_offset=0,
        offload_basis=offload_basis,
    )


def run_batch(
    op: Any,
    rows: Any,
    m: int,
    reorthogonalize: Policy,
    return_basis: bool,
    *,
    probe_offset: int,
    on_step: Callable[[int, np.ndarray, np.ndarray, int], None] | None = None,
    offload_basis: bool = False,
    split: BatchSplit | None = None,
) -> LanczosResult:
    """Run the recurrence from unit start vectors `rows` (k, n): the engine of every estimator.

    `reorthogonalize` is a policy of `slq._reorthogonalization`; the basis is kept
    on the host with `offload_basis`. `on_step(j, alpha_j, beta_j, products)` is
    called after every step; where the backend compiles the whole batch into one
    program (JAX), for every step once the batch has run, and where the batch
    was split into parts, for the steps the parts ran once they all have. With
    `split`, the batch may be split into parts where they measure faster (see
    `slq._batch_split`); without, it runs as one.
    """
    xp, dtype, device = op.xp, op.dtype, op.device
    k, n = rows.shape
    tolerance = _BREAKDOWN_ROUNDOFFS * eps(dtype, xp)
    traced = op.backend.is_traced(rows)
    program = op.backend.lanczos_program(op, reorthogonalize, offload_basis, traced)
    if program is not None:  # the whole batch as one compiled program (JAX)
        settings = {"tolerance": tolerance, "safe_exponent": _SAFE_EXPONENT}
        run = program(rows, num_steps=m, return_basis=return_basis, **settings)
        return compiled_result(run, op, reorthogonalize, return_basis, probe_offset, on_step)
    if traced:
        raise TypeError(_NOT_TRACEABLE)
    keeper = _BasisKeeper(op, (k, m, n), reorthogonalize, offload_basis, return_basis)
    state = _State(rows, xp.zeros_like(rows), xp.zeros((k, 1), dtype=dtype, device=device))
    run = BatchRun(
        op,
        keeper,
        state,
        m,
        tolerance=tolerance,
        probe_offset=probe_offset,
        on_step=on_step,
        keeps_basis=return_basis,
    )
    drive(run, split)
    steps_run = run.steps_run
    logger.debug(
        "lanczos: %d probes, %d steps, n=%d, reorthogonalize=%s (%d steps, %.3f of full's work), "
        "second Gram-Schmidt passes=%d, breakdowns=%d",
        k,
        steps_run,
        n,
        reorthogonalize.name,
        keeper.reorthogonalizations,
        keeper.work_share(steps_run),
        keeper.second_passes,
        int((~run.active).sum()),
    )
    stored = keeper.basis if return_basis else None
    # Exact: the scale is a power of two.
    alpha, beta = run.alpha * keeper.scale, run.beta * keeper.scale
    products, reorthogonalizations = int(run.columns.sum()), keeper.reorthogonalizations
    return lanczos_result(
        alpha, beta, run.lengths, steps_run, stored, products, reorthogonalizations
    )


class _BasisKeeper:
    """The stored basis of one batch, and the residuals kept orthogonal to it by a policy."""

    def __init__(
        self,
        op: Any,
        shape: tuple[int, int, int],
        reorthogonalize: Policy,
        offload_basis: bool,
        return_basis: bool,
    ) -> None:
        self.op, self.policy = op, reorthogonalize
        stores = reorthogonalize.stores_basis or return_basis
        basis = storage(offload_basis)(op.backend, shape, op.dtype, op.device) if stores else None
        self.basis: DeviceBasis | HostBasis | None = basis
        # Projecting against the whole basis on the device subsumes the recurrence.
        self.fused = reorthogonalize.projects_every_step and basis is not None and basis.on_device
        self.schedule = reorthogonalize.schedule(shape[0], shape[1], eps(op.dtype, op.xp))
        self.reorthogonalizations = 0  # steps that projected against the basis
        self.projected = 0  # vectors projected against, over all steps
        self.second_passes = 0  # DGKS second passes, over probes and steps
        self.product_seconds = 0.0  # in the operator (host clock: exact where it is eager)
        # The batch runs on A / scale, a power of two: see `power_of_two_scale`.
        self.scale = 1.0

    def part(self, start: int, stop: int) -> _BasisKeeper | None:
        """Return the keeper of probes `start`:`stop`, sharing this basis; None where it cannot.

        Only a basis projected against at every step on the device is shared:
        its schedule holds no state per probe.
        """
        if not (self.fused and isinstance(self.basis, DeviceBasis)):
            return None
        basis = self.basis.probes(start, stop)
        if basis is None:
            return None
        part = copy.copy(self)
        part.basis = basis
        part.reorthogonalizations = part.projected = part.second_passes = 0
        return part

    def absorb(self, parts: list[_BasisKeeper]) -> None:
        """Add the counts of `parts` that ran the same steps side by side."""
        self.reorthogonalizations += max(p.reorthogonalizations for p in parts)
        self.projected += max(p.projected for p in parts)
        self.second_passes += sum(p.second_passes for p in parts)

    def step(
        self, state: _State, j: int, active: np.ndarray, tolerance: float, probe_offset: int
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        """Store q_j, apply the operator, and return r_j with α_j, β_j = ‖r_j‖ and ‖A q_j‖.

        All three, and r_j, are those of A / `scale`.
        """
        op = self.op
        if self.basis is not None:
            self.basis.store(j, state.q)
        began = _batch_split.clock()  # the clock the batch split times steps by
        w = apply_rows(op, state.q, j)
        self.product_seconds += _batch_split.clock() - began
        if j == 0:
            self.scale = power_of_two_scale(w, op.xp)
        if self.scale != 1.0:
            w = w * (1.0 / self.scale)
        if self.fused:
            assert isinstance(self.basis, DeviceBasis)
            w, coefficients = _fused_step(op, state, w, self.basis, j)
        else:
            w, coefficients = _recurrence_step(op, state, w, self.policy.local)
        a, b, image_norm, again = to_host(coefficients)
        if again.any():
            self.second_passes += int(again.sum())
            if not op.backend.repeats_in_kernel:
                w, b = self._project_again(w, np.flatnonzero(again), j, b)
        # ‖A q_j‖ first: it is what the operator produced (inf stays inf), where α's
        # correction turns an inf product into nan.
        check_finite(np.stack([image_norm, a, b]), j, probe_offset)
        # Probes that stopped or are stopping need no next vector: β = 0 for the schedule.
        live = np.where(active & (b > tolerance * image_norm), b, 0.0)
        rows = self.schedule.rows_to_project(j, a, live, image_norm)
        if rows and not self.fused:
            assert self.basis is not None
            w = self.basis.project(w, rows)
            if rows <= j and self.policy.local:
                # The projection against q_0 … q_{rows-1} brings back their (small)
                # overlaps with q_j and q_{j-1}; a residual much shorter after it than
                # before (near a breakdown) would carry them into q_{j+1}, amplified.
                w = _local_pass(w, state.q, state.q_prev, op.xp)
            b = to_host(row_norms(w, op.xp, op))
            self.schedule.projected(j, b)
        if rows:
            self.reorthogonalizations += 1
            self.projected += rows
        return w, a, b, image_norm

    def _project_again(
        self, w: Any, probes: np.ndarray, j: int, b: np.ndarray
    ) -> tuple[Any, np.ndarray]:
        """Run the DGKS second pass of `probes`; return r_j and the new β's (see `_residual`)."""
        op = self.op
        assert isinstance(self.basis, DeviceBasis)
        data = self.basis.data
        rows = op.backend.rows_to_project(data, j + 1)
        w = op.backend.project_probes(w, data, rows, probes.tolist())
        b = b.copy()
        b[probes] = to_host(row_norms(w, op.xp, op))[probes]
        return w, b

    def work_share(self, steps: int) -> float:
        """Gram–Schmidt work against full reorthogonalisation's (j+1 vectors at step j)."""
        return self.projected / max(steps * (steps + 1) // 2, 1)


_NOT_TRACEABLE = (
    "v0 is a traced value (slq.lanczos inside jax.jit or another transformation), but this "
    "run cannot be traced: it needs an operator with a traceable product (a JAX array, "
    "adapters.jax_hessian, or aslinearoperator(f, ..., traceable=True)), "
    "reorthogonalize='full' or 'none', and offload_basis=False"
)

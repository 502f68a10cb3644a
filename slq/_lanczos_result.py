"""What a Lanczos run returns, and the checks of a run made as one program.

`slq._lanczos` runs the recurrence; a batch run as one compiled program
(`lanczos_program`) is checked and reported here after it ends, with the
same errors and `on_step` calls as the step-by-step loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from slq._reorthogonalization import Policy

__all__ = ["LanczosResult", "check_finite", "compiled_result", "lanczos_result"]

logger = logging.getLogger("slq")


class LanczosResult(NamedTuple):
    """Coefficients of the Lanczos tridiagonal matrices T of k probes.

    Every later estimate (quadrature, density, traces) is a function of these
    fields: no further products with the operator are needed.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> result = slq.lanczos(np.diag([1.0, 2.0, 3.0]), np.ones((3, 2)), 2)
    >>> result.alpha.shape, result.lengths, result.num_matvecs
    ((2, 2), array([2, 2]), 4)
    """

    alpha: np.ndarray
    """Shape (k, m), float64: the diagonals of the T's."""
    beta: np.ndarray
    """Shape (k, m-1), float64: the off-diagonals; 0 from a probe's breakdown on."""
    lengths: np.ndarray
    """Shape (k,), int: steps each probe ran; fewer than m when it broke down."""
    residual_norm: np.ndarray
    """Shape (k,), float64: β_m = ‖r_m‖ after the last step (0 after a breakdown).

    The Ritz pair (θ_i, Q s_i) has residual norm β_m |s_{m,i}| (Parlett 1998, §13.2).
    """
    basis: Any
    """Shape (k, n, m) in the operator's namespace and device, or None unless asked."""
    num_matvecs: int
    """Operator-vector products spent (columns of all `matmat` calls)."""
    num_reorthogonalizations: int = 0
    """Steps at which the batch was reorthogonalised against the whole basis.

    Every step with ``"full"``, none with ``"none"``; with ``"partial"``, the
    steps at which semi-orthogonality would otherwise have been lost.
    """


def check_finite(coefficients: np.ndarray, step: int, probe_offset: int) -> None:
    bad = np.argwhere(~np.isfinite(coefficients))
    if bad.size:
        probe = int(bad[0, 1])
        value = coefficients[tuple(bad[0])]
        msg = (
            f"the operator produced {value} at Lanczos step {step + 1} for probe "
            f"{probe + probe_offset}: check the operator for NaN or Inf in its output"
        )
        raise FloatingPointError(msg)


def lanczos_result(
    alpha: np.ndarray,
    beta: np.ndarray,
    lengths: np.ndarray,
    steps_run: int,
    basis: Any,
    products: int,
    reorthogonalizations: int,
) -> LanczosResult:
    m = int(lengths.max())
    residual = np.where(lengths == steps_run, beta[:, steps_run - 1], 0.0)
    vectors = None if basis is None else basis.vectors(m)
    arrays = alpha[:, :m].copy(), beta[:, : m - 1].copy(), lengths, residual
    for array in arrays:
        array.flags.writeable = False
    return LanczosResult(
        *arrays,
        basis=vectors,
        num_matvecs=products,
        num_reorthogonalizations=reorthogonalizations,
    )


_TRACED_ESTIMATE = (
    "the operator's products are traced (inside jax.jit or another transformation): "
    "slq.lanczos runs there and returns JAX arrays, but this estimate is computed on the "
    "host; call it outside the transformation"
)


def compiled_result(
    run: Any,
    op: Any,
    reorthogonalize: Policy,
    return_basis: bool,
    probe_offset: int,
    on_step: Callable[[int, np.ndarray, np.ndarray, int], None] | None,
) -> LanczosResult:
    """Check and report a batch run as one program (`lanczos_program`), step by step.

    The same checks, `on_step` calls and result as the eager loop, made after the
    run from its coefficients and the operator's finite flags.
    """
    k = int(run.alpha.shape[0])
    if run.is_traced():  # nothing reaches the host: a callback cannot be called
        if on_step is not None and not getattr(on_step, "skippable", False):
            raise TypeError(_TRACED_ESTIMATE)
        return _traced_result(run, reorthogonalize, return_basis)
    host = run.host()
    steps = int(host.steps)
    # Exact: the scale is a power of two.
    alpha = host.alpha.astype(np.float64) * float(host.scale)
    beta = host.beta.astype(np.float64) * float(host.scale)
    for j in range(steps):
        if host.flags is not None:
            _check_flags(op, host.flags[j], j, probe_offset)
        check_finite(host.raw[j], j, probe_offset)
        if on_step is not None:
            on_step(j, alpha[:, j], beta[:, j], k)
    reorthogonalizations = steps if reorthogonalize.projects_every_step else 0
    logger.debug(
        "lanczos: %d probes, %d steps, n=%d, reorthogonalize=%s, compiled, "
        "second Gram-Schmidt passes=%d, breakdowns=%d",
        k,
        steps,
        op.shape[0],
        reorthogonalize.name,
        host.repeats,
        int(np.sum(beta[:, steps - 1] == 0)),
    )
    lengths = host.lengths.astype(int)
    basis = run if return_basis else None
    return lanczos_result(alpha, beta, lengths, steps, basis, steps * k, reorthogonalizations)


def _check_flags(op: Any, flags: np.ndarray, step: int, probe_offset: int) -> None:
    """Raise the operator's own error for its first false finite flag (a batch of its data)."""
    if flags.all():
        return
    first = int(np.flatnonzero(~flags)[0])
    if op.traceable.raise_non_finite is not None:
        op.traceable.raise_non_finite(first)
    msg = (
        f"the operator's product was not finite (its check {first}) at Lanczos step "
        f"{step + 1} for probes {probe_offset} on: check the operator for NaN or Inf"
    )
    raise FloatingPointError(msg)


def _traced_result(run: Any, reorthogonalize: Policy, return_basis: bool) -> LanczosResult:
    """Return a run traced into a user's program: arrays of m columns, zeros past a breakdown."""
    alpha, beta, lengths, residual = run.traced_coefficients()
    m = int(alpha.shape[1])
    return LanczosResult(
        alpha,
        beta,
        lengths,
        residual,
        basis=run.vectors(m) if return_basis else None,
        num_matvecs=run.steps * alpha.shape[0],
        num_reorthogonalizations=run.steps if reorthogonalize.projects_every_step else 0,
    )

"""What a backend that runs a batch's whole Lanczos recurrence as one program shares.

No framework is imported here: `Settings` is what the engine fixes for such a
run (JAX's `slq._backends.jax_lanczos`, TensorFlow's
`slq._backends.tensorflow_lanczos`), `HostRun` what the host reads back from
it, and what `slq._lanczos.run_batch` checks and reports step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["HostRun", "Settings", "compiled_product"]


class Settings(NamedTuple):
    """What the engine fixes for a run: static in the program, part of its cache key.

    Examples
    --------
    >>> from slq._backends.compiled import Settings
    >>> Settings(90, True, False, 2e-15, 60, print, 16).num_steps
    90
    """

    num_steps: int
    """m: the basis has m rows, the loop at most m steps."""
    full: bool
    """The recurrence, then Gram–Schmidt against the basis every step (DGKS); else the
    three-term recurrence alone."""
    return_basis: bool
    """Whether the basis is returned (and so stored, also without reorthogonalisation)."""
    tolerance: float
    """A probe breaks down when β_j <= tolerance · ‖A q_j‖."""
    safe_exponent: int
    """Products with max |w| within 2^±safe_exponent run unscaled (`power_of_two`)."""
    project_dgks: Callable[..., tuple[Any, Any, Any]]
    """The backend's pass with its DGKS second pass, ``(w, basis, rows, acc, norms) ->
    (w, norms, repeated)`` (`slq._backends.jax.project_dgks`,
    `slq._backends.tensorflow.dgks_in_graph`)."""
    block: int
    """Rows are projected in blocks of a multiple of this many (`JaxBackend.rows_to_project`)."""


class HostRun(NamedTuple):
    """A compiled run's coefficients and flags as numpy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.compiled import HostRun
    >>> run = HostRun(np.ones((1, 2)), np.zeros((1, 2)), np.array([2]), np.array(2),
    ...               np.ones((2, 2, 1)), np.array(1.0), None, 0)
    >>> int(run.steps), run.repeats
    (2, 0)
    """

    alpha: np.ndarray
    """(k, m): α_j in the accumulation dtype, 0 once a probe has stopped, not yet scaled."""
    beta: np.ndarray
    """(k, m): β_j, 0 from a probe's breakdown on, not yet scaled."""
    lengths: np.ndarray
    """(k,): steps each probe ran."""
    steps: np.ndarray
    """(): steps the batch ran (all probes stopped, or m)."""
    raw: np.ndarray
    """(m, r, k): per step, the numbers whose finiteness the eager engine checks, in its order."""
    scale: np.ndarray
    """(): the power of two the run divided A by."""
    flags: np.ndarray | None
    """(m, B) bool: the operator's finite flags per step, or None."""
    repeats: int
    """DGKS second passes, over probes and steps."""


def compiled_product(
    op: Any, reorthogonalize: Any, offload_basis: bool, traced: bool = False
) -> Any:
    """Return the operator's traceable product if its batch can run as one program, else None.

    One program needs a traceable product (``op.traceable``), the basis on the
    device, and a policy that decides nothing on the host between steps: "full"
    and "none". "partial" runs eagerly: Simon's ω recurrence, which picks the
    steps to project, runs in numpy. A product that is slow inside a loop
    (not ``fast_in_loop``) runs stepped unless the run is `traced`.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq._backends.compiled import compiled_product
    >>> from slq._reorthogonalization import policy
    >>> compiled_product(slq.aslinearoperator(np.eye(3)), policy("full"), False) is None
    True
    """
    traceable = getattr(op, "traceable", None)
    fixed = reorthogonalize.projects_every_step or not reorthogonalize.stores_basis
    if traceable is None or offload_basis or not fixed or reorthogonalize.local:
        return None
    if not (traceable.fast_in_loop or traced):
        return None
    return traceable

"""An operator's fingerprint: one product with a fixed vector, to recognise the operator later.

A checkpoint stores it so that a call with another operator of the same size
and dtype (another matrix, the same one scaled, a model after more training)
is refused instead of silently resumed.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

from slq._backends import accumulation_dtype, eps, to_host
from slq._lanczos import apply_rows, norms_in, prepare_start
from slq._probes import draw_probes

__all__ = [
    "FINGERPRINT_ENTROPY",
    "FINGERPRINT_LENGTH",
    "Fingerprint",
    "fingerprint",
    "fingerprint_difference",
    "fingerprint_tolerance",
]

FINGERPRINT_ENTROPY = 0x5EED_F1A9
"""The seed of the fixed vectors: the same for every run, whatever the run's own seed."""

_NUM_PROJECTIONS = 3  # v itself and two more fixed vectors: ample to tell two operators apart
FINGERPRINT_LENGTH = 1 + _NUM_PROJECTIONS
"""How many numbers a fingerprint holds: ‖A v‖ and the projections."""
_SAFETY = 100.0  # room for reductions in another order: other BLAS kernels, GPUs, batch shapes
_LOOSEST = 1e-2  # half precision: still tells 100·B from A


class Fingerprint(NamedTuple):
    """‖A v‖ and the projections of A v on fixed unit vectors, for v a fixed unit vector."""

    norm: float
    """‖A v‖."""
    projections: tuple[float, ...]
    """vᵀ A v, then u_iᵀ A v for the further fixed unit vectors u_i."""

    def numbers(self) -> list[float]:
        """Return ‖A v‖ and the projections as one list, as a checkpoint stores them."""
        return [self.norm, *self.projections]

    @classmethod
    def from_numbers(cls, numbers: Any) -> Fingerprint:
        """Return the fingerprint that the method `numbers` wrote as a list."""
        return cls(float(numbers[0]), tuple(float(x) for x in numbers[1:]))

    def named(self) -> list[tuple[str, float]]:
        """Return the numbers with the names an error message gives them."""
        names = ["‖A v‖", "vᵀA v", *(f"u{i}ᵀA v" for i in range(1, len(self.projections)))]
        return list(zip(names, self.numbers(), strict=True))


def fingerprint(op: Any) -> Fingerprint:
    """Return the fingerprint of `op`: one product, with a Gaussian unit vector of a fixed seed.

    The fixed vectors are drawn on the host one at a time, so that the work
    needs no more memory than one probe of a `density` batch. Only scalars
    leave the operator's device.

    Raises
    ------
    FloatingPointError
        If the product holds NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> op = slq.aslinearoperator(np.diag(np.arange(1.0, 101.0)))
    >>> print(fingerprint_difference(fingerprint(op), fingerprint(op), op))
    None
    """
    xp, n = op.xp, op.shape[0]
    acc = accumulation_dtype(xp, op.device, op.dtype)
    v = _fixed_vector(op, 0)
    image = apply_rows(op, v, 0)
    norm = float(to_host(norms_in(image, xp, acc))[0])
    image = xp.astype(image, acc)
    # A generator: each further vector is drawn, used and dropped before the next.
    vectors = itertools.chain([v], (_fixed_vector(op, i) for i in range(1, _NUM_PROJECTIONS)))
    values = tuple(float(to_host(xp.vecdot(xp.astype(u, acc), image))[0]) for u in vectors)
    if not all(math.isfinite(x) for x in (norm, *values)):
        msg = (
            f"the operator produced NaN or Inf in its product with the checkpoint's fixed "
            f"vector (n={n}): check the operator for NaN or Inf in its output"
        )
        raise FloatingPointError(msg)
    return Fingerprint(norm, values)


def fingerprint_difference(stored: Fingerprint, now: Fingerprint, op: Any) -> str | None:
    """Say which number of two fingerprints differs beyond rounding, or return None.

    Rounding errors of a product accumulate like a random walk over its n
    terms, about sqrt(n)·u relative to ‖A v‖ (Higham 2002, §3.5, the
    probabilistic bound); a factor 100 leaves room for reductions in another
    order (another BLAS, a GPU, a batch of other shape), capped at 1% for half
    precision.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> a = np.diag(np.arange(1.0, 101.0))
    >>> op, scaled = slq.aslinearoperator(a), slq.aslinearoperator(100 * a)
    >>> print(fingerprint_difference(fingerprint(op), fingerprint(scaled), op))
    ‖A v‖ was 54.93, now 5493 (v a fixed unit vector; rounding allows a relative 2e-13)
    """
    tolerance = fingerprint_tolerance(op)
    scale = max(stored.norm, now.norm)
    for (name, was), (_, is_now) in zip(stored.named(), now.named(), strict=True):
        if not abs(was - is_now) <= tolerance * scale:
            return (
                f"{name} was {was:.4g}, now {is_now:.4g} (v a fixed unit vector; rounding "
                f"allows a relative {tolerance:.1g})"
            )
    return None


def fingerprint_tolerance(op: Any) -> float:
    """Return the relative difference two fingerprints of one operator may show by rounding."""
    return min(_SAFETY * math.sqrt(op.shape[0]) * eps(op.dtype, op.xp), _LOOSEST)


def _fixed_vector(op: Any, index: int) -> Any:
    """Return the fixed unit vector number `index` as a (1, n) row of the operator's kind."""
    column = draw_probes("gaussian", op.shape[0], range(index, index + 1), FINGERPRINT_ENTROPY)
    return prepare_start(op.xp.asarray(column, dtype=op.dtype, device=op.device), op)

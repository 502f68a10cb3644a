"""`MatrixInfo`: what a matrix file holds, from its checked header, before any of it is loaded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

__all__ = ["MatrixInfo", "csr_bytes"]

# scipy's CSR indices are int32 while every index fits, int64 otherwise.
_INT32_LIMIT = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class MatrixInfo:
    """A matrix file's header, checked; the sizes loading it will need.

    Examples
    --------
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from slq.apps.cli.matrix_info import MatrixInfo
    >>> info = MatrixInfo(Path("a.npy"), "npy", 1000, np.dtype("float64"), 10**6, False, 8 * 10**6)
    >>> info.nbytes
    8000000
    """

    path: Path
    """The file."""
    kind: str
    """``"npy"``, ``"npz"``, ``"sparse npz"`` or ``"mtx"``."""
    n: int
    """The matrix is n x n."""
    dtype: np.dtype
    """The dtype slq holds it in: float32 or float64."""
    stored: int
    """Numbers it holds: n² when dense, at most this many nonzeros when sparse."""
    sparse: bool
    """Whether it is held as a scipy CSR matrix rather than a numpy array."""
    load_bytes: int
    """Bytes at the peak of reading and checking it (a conservative count)."""

    @property
    def nbytes(self) -> int:
        """Bytes of the matrix as the run holds it: the array, or CSR values and indices."""
        if self.sparse:
            return csr_bytes(self.n, self.stored, self.dtype.itemsize)
        return self.stored * self.dtype.itemsize


def csr_bytes(n: int, stored: int, itemsize: int) -> int:
    """Bytes of an n x n CSR matrix with `stored` entries of `itemsize` bytes.

    Values, column indices and n + 1 row pointers.

    Examples
    --------
    >>> from slq.apps.cli.matrix_info import csr_bytes
    >>> csr_bytes(3, 3, 8)
    52
    """
    index = 4 if max(n, stored) <= _INT32_LIMIT else 8
    return stored * (itemsize + index) + (n + 1) * index

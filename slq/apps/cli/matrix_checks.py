"""What a matrix from a file must be: 2-D, square, non-empty, real, finite and symmetric."""

from __future__ import annotations

from typing import Any

import numpy as np

from slq.apps.cli.file_reading import MatrixFileError

__all__ = ["SYMMETRY_RTOL", "check_shape", "check_values", "real_dtype"]

SYMMETRY_RTOL = 1e-12
"""Exact symmetry up to rounding: a matrix symmetrised as (A + Aᵀ)/2 passes in any precision."""

# Dense checks run on blocks of rows of about this many numbers (32 MiB of float64), so
# that they need no n x n temporary besides the matrix itself.
_BLOCK_NUMBERS = 1 << 22


def real_dtype(dtype: np.dtype, what: str) -> np.dtype:
    """Return the dtype slq holds the matrix in: float32 and float64 stay, other reals are float64.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.apps.cli.matrix_checks import real_dtype
    >>> real_dtype(np.dtype("int16"), "a.npy"), real_dtype(np.dtype(">f4"), "a.npy")
    (dtype('float64'), dtype('float32'))
    """
    if dtype.hasobject:
        msg = f"{what} holds a pickled object array, which slq never loads: save numbers"
        raise MatrixFileError(msg)
    if dtype.kind == "c":
        msg = f"{what}: the matrix is complex ({dtype}); slq needs a real symmetric matrix"
        raise MatrixFileError(msg)
    if dtype.kind not in "biuf" or dtype.names is not None or dtype.shape != ():
        msg = f"{what}: the matrix must hold real numbers, got dtype {dtype}"
        raise MatrixFileError(msg)
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return np.dtype(np.float32 if dtype.itemsize == 4 else np.float64)
    return np.dtype(np.float64)


def check_shape(shape: tuple[int, ...], what: str) -> tuple[int, int]:
    """Return `shape` if it is that of a square, non-empty matrix; raise ValueError otherwise.

    Examples
    --------
    >>> from slq.apps.cli.matrix_checks import check_shape
    >>> check_shape((3, 3), "a.npy")
    (3, 3)
    """
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] <= 0:
        msg = f"{what}: the matrix must be square and non-empty, got shape {tuple(shape)}"
        raise MatrixFileError(msg)
    return shape[0], shape[1]


def check_values(a: Any, what: str) -> None:
    """Raise ValueError unless `a` (an array or a scipy sparse matrix) is finite and symmetric.

    Symmetric means max |A - Aᵀ| ≤ 1e-12 max(max |A|, tiny).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.apps.cli.matrix_checks import check_values
    >>> check_values(np.array([[1.0, 2.0], [2.0, 1.0]]), "a.npy")
    """
    dense = isinstance(a, np.ndarray)
    if not (_finite_dense(a) if dense else bool(np.isfinite(a.data).all())):
        msg = f"{what}: the matrix holds NaN or infinite entries"
        raise MatrixFileError(msg)
    largest, asymmetry = _asymmetry_dense(a) if dense else _asymmetry_sparse(a)
    tolerance = SYMMETRY_RTOL * max(largest, float(np.finfo(a.dtype).tiny))
    if not asymmetry <= tolerance:
        msg = (
            f"{what}: the matrix is not symmetric: max |A - A^T| = {asymmetry:.3g} with "
            f"max |A| = {largest:.3g} (allowed {tolerance:.3g}); symmetrise it as (A + A^T)/2"
        )
        raise MatrixFileError(msg)


def _row_slices(n: int) -> list[slice]:
    step = max(1, _BLOCK_NUMBERS // n)
    return [slice(i, i + step) for i in range(0, n, step)]


def _finite_dense(a: np.ndarray) -> bool:
    return all(np.isfinite(a[rows]).all() for rows in _row_slices(a.shape[0]))


def _asymmetry_dense(a: np.ndarray) -> tuple[float, float]:
    """Return max |A| and max |A - Aᵀ|, one block of rows at a time."""
    largest = asymmetry = 0.0
    for rows in _row_slices(a.shape[0]):
        largest = max(largest, float(np.abs(a[rows]).max()))
        asymmetry = max(asymmetry, float(np.abs(a[rows] - a[:, rows].T).max()))
    return largest, asymmetry


def _asymmetry_sparse(a: Any) -> tuple[float, float]:
    largest = float(abs(a).max()) if a.nnz else 0.0
    return largest, float(abs(a - a.T).max()) if a.nnz else 0.0

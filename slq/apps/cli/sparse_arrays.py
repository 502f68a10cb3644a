"""A scipy CSR matrix from untrusted CSR, CSC or COO arrays: every index checked first.

scipy's constructors check lengths and dtypes but not where the indices point,
and its compiled kernels then read and write out of bounds: an index past the
last column or a decreasing row pointer crashes the process (``double free or
corruption``, a segmentation fault) instead of raising.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slq.apps.cli.file_reading import MatrixFileError

__all__ = ["compressed_to_csr", "coordinates_to_csr", "require_scipy"]


def require_scipy(what: str) -> None:
    """Raise ImportError saying how to install scipy, which reading `what` needs.

    Examples
    --------
    >>> from slq.apps.cli.sparse_arrays import require_scipy
    >>> require_scipy("a.mtx")
    """
    try:
        import scipy.io
        import scipy.sparse  # noqa: F401
    except ImportError as error:
        msg = f"reading {what} needs scipy: pip install scipy"
        raise ImportError(msg) from error


def compressed_to_csr(
    fmt: str, shape: tuple[int, int], data: Any, indices: Any, indptr: Any, what: str
) -> Any:
    """Return the CSR matrix of CSR or CSC arrays (`fmt` ``"csr"`` or ``"csc"``), once checked.

    `indptr` must have one entry per row (column for CSC) and one more, start at
    0, never decrease and end at len(indices) == len(data); every index must
    lie in [0, number of columns (rows for CSC)).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.apps.cli.sparse_arrays import compressed_to_csr
    >>> a = compressed_to_csr("csr", (2, 2), np.ones(2), np.array([1, 0]), np.array([0, 1, 2]), "a")
    >>> a.toarray()
    array([[0., 1.],
           [1., 0.]])
    """
    major, minor = shape if fmt == "csr" else shape[::-1]
    _check_integers({"indices": indices, "indptr": indptr}, what)
    _check_lengths({"data": data, "indices": indices}, what)
    if indptr.shape != (major + 1,):
        msg = f"{what}: indptr must have {major + 1} entries for shape {shape}, got {indptr.shape}"
        raise MatrixFileError(msg)
    if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(indptr[1:] < indptr[:-1]):
        msg = (
            f"{what}: indptr must rise from 0 to the number of entries {len(indices)} "
            "without decreasing"
        )
        raise MatrixFileError(msg)
    _check_bounds("indices", indices, minor, what)
    import scipy.sparse

    build = scipy.sparse.csr_array if fmt == "csr" else scipy.sparse.csc_array
    return build((data, indices, indptr), shape=shape).tocsr()


def coordinates_to_csr(shape: tuple[int, int], data: Any, row: Any, col: Any, what: str) -> Any:
    """Return the CSR matrix of COO arrays, once every row and column index is in range.

    Repeated coordinates are summed, as scipy does.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.apps.cli.sparse_arrays import coordinates_to_csr
    >>> coordinates_to_csr((2, 2), np.ones(2), np.array([0, 0]), np.array([1, 1]), "a").toarray()
    array([[0., 2.],
           [0., 0.]])
    """
    _check_integers({"row": row, "col": col}, what)
    _check_lengths({"data": data, "row": row, "col": col}, what)
    _check_bounds("row", row, shape[0], what)
    _check_bounds("col", col, shape[1], what)
    import scipy.sparse

    return scipy.sparse.coo_array((data, (row, col)), shape=shape).tocsr()


def _check_integers(arrays: dict[str, Any], what: str) -> None:
    for name, a in arrays.items():
        if a.ndim != 1 or a.dtype.kind not in "iu":
            msg = f"{what}: {name} must be a 1-D integer array, got {a.dtype} of shape {a.shape}"
            raise MatrixFileError(msg)


def _check_lengths(arrays: dict[str, Any], what: str) -> None:
    lengths = {name: a.shape for name, a in arrays.items()}
    if len(set(lengths.values())) != 1 or any(len(s) != 1 for s in lengths.values()):
        shown = ", ".join(f"{name} {shape}" for name, shape in lengths.items())
        msg = f"{what}: {' and '.join(arrays)} must be 1-D arrays of one length, got {shown}"
        raise MatrixFileError(msg)


def _check_bounds(name: str, index: Any, size: int, what: str) -> None:
    if index.size and (index.min() < 0 or index.max() >= size):
        msg = (
            f"{what}: {name} must lie in [0, {size}), got values in [{index.min()}, {index.max()}]"
        )
        raise MatrixFileError(msg)

"""Reading a real symmetric matrix from a ``.npy``, ``.npz`` or Matrix Market ``.mtx`` file.

A file is untrusted: its header is read and checked first (`matrix_info`), its
size compared with the memory available, and only then is its data read and
checked (`load_matrix`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from slq.apps.cli.file_reading import MatrixFileError, reading
from slq.apps.cli.matrix_checks import check_shape, check_values, real_dtype
from slq.apps.cli.matrix_info import MatrixInfo
from slq.apps.cli.mtx_files import load_mtx, mtx_info
from slq.apps.cli.npy_format import read_npy_header
from slq.apps.cli.npz_files import load_npz, npz_info
from slq.apps.cli.resources import check_load_fits

__all__ = ["load_matrix", "matrix_info"]


def matrix_info(path: str | Path) -> MatrixInfo:
    """Read and check a matrix file's header; read none of its data.

    The checks of `load_matrix` that need no data: the format, a square
    non-empty shape, a real dtype, the lengths and index types of a sparse
    archive, and that the file holds as much data as its header declares.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    MatrixInfo
        The dimension, the dtype slq will hold the matrix in, the numbers it
        stores, and the bytes reading it will need.

    Raises
    ------
    OSError
        If `path` does not exist or is not a file.
    ValueError
        For an unknown extension, an unreadable or malformed file, or a
        matrix that is not 2-D, square and real.
    ImportError
        Without scipy, for a sparse ``.npz`` or a ``.mtx`` file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from slq.apps.cli import matrix_info
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.save(Path(folder) / "a.npy", np.eye(1000, dtype=np.float32))
    ...     info = matrix_info(Path(folder) / "a.npy")
    >>> info.n, info.dtype, info.nbytes
    (1000, dtype('float32'), 4000000)
    """
    path = Path(path)
    if not path.is_file():
        msg = f"no such file: {path}" if not path.exists() else f"not a file: {path}"
        raise OSError(msg)
    return _format_of(path)[0](path)


def load_matrix(source: str | Path | MatrixInfo) -> Any:
    """Load a real symmetric matrix from a ``.npy``, ``.npz`` or Matrix Market ``.mtx`` file.

    Nothing is unpickled, and nothing is read before the file's header has
    been checked (`matrix_info`) and the memory that reading it needs compared
    with what the machine has available. A ``.npz`` archive holds one dense
    array (or one named "a", "arr_0" or "matrix") or is a
    `scipy.sparse.save_npz` file in CSR, CSC or COO format, whose indices are
    all checked; sparse archives and ``.mtx`` files need scipy. Integer,
    boolean and half-precision entries become float64.

    Parameters
    ----------
    source : str, pathlib.Path or MatrixInfo
        The file, or its `matrix_info` (then the header is not read again).

    Returns
    -------
    numpy.ndarray or scipy.sparse.csr_array
        Square, finite, real and symmetric: max |A - Aᵀ| ≤ 1e-12 max |A|.

    Raises
    ------
    OSError
        If the file does not exist or is not a file.
    ValueError
        For an unknown extension, an unreadable or malformed file, a matrix
        that is not 2-D, square, real, finite and symmetric, or one too large
        for the memory available.
    ImportError
        Without scipy, for a sparse ``.npz`` or a ``.mtx`` file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from slq.apps.cli import load_matrix
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "a.npy"
    ...     np.save(path, np.diag([1, 2, 3]))
    ...     load_matrix(path).dtype
    dtype('float64')
    """
    info = source if isinstance(source, MatrixInfo) else matrix_info(source)
    check_load_fits(info)
    # Overflow while converting or summing repeated sparse entries is caught below as
    # a non-finite entry; numpy's RuntimeWarning would only repeat it over several lines.
    with np.errstate(all="ignore"):
        a = _format_of(info.path)[1](info)
        shape = check_shape(a.shape, str(info.path))
        if shape != (info.n, info.n):
            msg = f"{info.path} changed while it was read: shape {shape}, not {(info.n,) * 2}"
            raise MatrixFileError(msg)
        a = a.astype(real_dtype(a.dtype, str(info.path)), copy=False)
        check_values(a, str(info.path))
    return a


def _format_of(path: Path) -> tuple[Callable[[Path], MatrixInfo], Callable[[MatrixInfo], Any]]:
    """Return the header reader and the loader of `path`'s format, from its extension."""
    name = path.name.lower()
    if name.endswith(".npy"):
        return _npy_info, _load_npy
    if name.endswith(".npz"):
        return npz_info, load_npz
    if name.endswith((".mtx", ".mtx.gz")):
        return mtx_info, load_mtx
    msg = f"{path}: unknown file type {path.suffix!r}; use .npy, .npz or .mtx"
    raise MatrixFileError(msg)


def _npy_info(path: Path) -> MatrixInfo:
    with reading(str(path)), path.open("rb") as file:
        header = read_npy_header(file, path.stat().st_size, str(path))
    n, _ = check_shape(header.shape, str(path))
    dtype = real_dtype(header.dtype, str(path))
    converted = n * n * dtype.itemsize if dtype != header.dtype else 0
    return MatrixInfo(path, "npy", n, dtype, n * n, False, header.nbytes + converted)


def _load_npy(info: MatrixInfo) -> np.ndarray:
    with reading(str(info.path)), info.path.open("rb") as file:
        return np.lib.format.read_array(file, allow_pickle=False)

"""Reading a real symmetric matrix from a ``.npy``, ``.npz`` or Matrix Market ``.mtx`` file."""

from __future__ import annotations

import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_matrix"]

_NPY_MAGIC = b"\x93NUMPY"
_DENSE_NAMES = ("a", "arr_0", "matrix")
_SPARSE_KEYS = (
    {"format", "shape", "data", "indices", "indptr"},
    {"format", "shape", "data", "row", "col"},
)
# Exact symmetry up to rounding: a matrix symmetrised as (A + Aᵀ)/2 passes in any precision.
_SYMMETRY_RTOL = 1e-12
_SCIPY_HINT = "pip install scipy"


def load_matrix(path: str | Path) -> Any:
    """Load a real symmetric matrix from a ``.npy``, ``.npz`` or Matrix Market ``.mtx`` file.

    Nothing is unpickled. A ``.npz`` archive holds one dense array (or one named
    "a", "arr_0" or "matrix") or is a `scipy.sparse.save_npz` file; sparse
    archives and ``.mtx`` files need scipy. Integer, boolean and half-precision
    entries become float64.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    numpy.ndarray or scipy.sparse.csr_matrix
        Square, finite, real and symmetric: max |A - Aᵀ| ≤ 1e-12 max |A|.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        For an unknown extension, a malformed file or a matrix that is not
        2-D, square, real, finite and symmetric.
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
    path = Path(path)
    if not path.is_file():
        msg = f"no such file: {path}" if not path.exists() else f"not a file: {path}"
        raise OSError(msg)
    name = path.name.lower()
    if name.endswith(".npy"):
        return _checked(_load_npy(path), path)
    if name.endswith(".npz"):
        return _checked(_load_npz(path), path)
    if name.endswith((".mtx", ".mtx.gz")):
        return _checked(_load_mtx(path), path)
    msg = f"{path}: unknown file type {path.suffix!r}; use .npy, .npz or .mtx"
    raise ValueError(msg)


def _load_npy(path: Path) -> np.ndarray:
    with path.open("rb") as file:
        if file.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            msg = f"{path} is not a .npy file (no NumPy header)"
            raise ValueError(msg)
    return _unpickled(lambda: np.load(path, allow_pickle=False), path)


def _load_npz(path: Path) -> Any:
    if not zipfile.is_zipfile(path):
        msg = f"{path} is not a .npz file (not a zip archive)"
        raise ValueError(msg)
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if any(required <= keys for required in _SPARSE_KEYS):
            return _scipy_sparse(path).load_npz(path)
        name = _dense_name(keys, path)
        return _unpickled(lambda: archive[name], path)


def _dense_name(keys: set[str], path: Path) -> str:
    """Return the archive's matrix: its only array, or the one with a conventional name."""
    if len(keys) == 1:
        return next(iter(keys))
    for name in _DENSE_NAMES:
        if name in keys:
            return name
    msg = (
        f"{path} holds {len(keys)} arrays ({', '.join(sorted(keys))}): save one array, "
        f"or name the matrix one of {', '.join(_DENSE_NAMES)}"
    )
    raise ValueError(msg)


def _unpickled(load: Any, path: Path) -> Any:
    try:
        return load()
    except ValueError as error:
        if "allow_pickle" in str(error):
            msg = f"{path} holds a pickled object array, which slq never loads: save numbers"
            raise ValueError(msg) from error
        msg = f"{path}: {error}"
        raise ValueError(msg) from error
    except (EOFError, zipfile.BadZipFile, zlib.error) as error:
        msg = f"{path} is malformed: {error}"
        raise ValueError(msg) from error


def _load_mtx(path: Path) -> Any:
    _scipy_sparse(path)
    import scipy.io

    try:
        return scipy.io.mmread(path)
    except (ValueError, EOFError, IndexError) as error:
        msg = f"{path} is not a valid Matrix Market file: {error}"
        raise ValueError(msg) from error


def _scipy_sparse(path: Path) -> Any:
    try:
        import scipy.sparse
    except ImportError as error:
        msg = f"reading {path} needs scipy: {_SCIPY_HINT}"
        raise ImportError(msg) from error
    return scipy.sparse


def _checked(a: Any, path: Path) -> Any:
    """Return `a` as a float array or CSR matrix once it is square, real, finite, symmetric."""
    sparse = sys.modules.get("scipy.sparse")
    is_sparse = sparse is not None and sparse.issparse(a)
    if not is_sparse:
        a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        msg = f"{path}: the matrix must be square and non-empty, got shape {a.shape}"
        raise ValueError(msg)
    a = a.astype(_real_dtype(a.dtype, path), copy=False)
    if is_sparse:
        a = a.tocsr()
    _check_finite(a.data if is_sparse else a, path)
    _check_symmetric(a, path, is_sparse=is_sparse)
    return a


def _real_dtype(dtype: np.dtype, path: Path) -> np.dtype:
    """float32 and float64 stay; other real numbers become float64 (the library needs floats)."""
    if dtype.kind == "c":
        msg = f"{path}: the matrix is complex ({dtype}); slq needs a real symmetric matrix"
        raise ValueError(msg)
    if dtype.kind not in "biuf":
        msg = f"{path}: the matrix must hold real numbers, got dtype {dtype}"
        raise ValueError(msg)
    keep = dtype in (np.dtype(np.float32), np.dtype(np.float64))
    return dtype if keep else np.dtype(np.float64)


def _check_finite(values: np.ndarray, path: Path) -> None:
    if not np.isfinite(values).all():
        msg = f"{path}: the matrix holds NaN or infinite entries"
        raise ValueError(msg)


def _check_symmetric(a: Any, path: Path, *, is_sparse: bool) -> None:
    """Raise unless max |A - Aᵀ| ≤ 1e-12 max(max |A|, tiny)."""
    asymmetry = float(abs(a - a.T).max()) if is_sparse else float(np.abs(a - a.T).max())
    largest = float(abs(a).max()) if is_sparse else float(np.abs(a).max())
    tolerance = _SYMMETRY_RTOL * max(largest, float(np.finfo(a.dtype).tiny))
    if not asymmetry <= tolerance:
        msg = (
            f"{path}: the matrix is not symmetric: max |A - A^T| = {asymmetry:.3g} with "
            f"max |A| = {largest:.3g} (allowed {tolerance:.3g}); symmetrise it as (A + A^T)/2"
        )
        raise ValueError(msg)

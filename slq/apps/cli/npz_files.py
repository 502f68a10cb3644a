"""``.npz`` archives: one dense array (`numpy.savez`) or a `scipy.sparse.save_npz` matrix.

Every member's header is read and checked before any data: the shapes and
dtypes, the lengths the sparse format requires, and that the member holds the
bytes its header declares. Nothing is unpickled.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from slq.apps.cli.file_reading import MatrixFileError, reading
from slq.apps.cli.matrix_checks import check_shape, real_dtype
from slq.apps.cli.matrix_info import MatrixInfo, csr_bytes
from slq.apps.cli.npy_format import NpyHeader, read_npy_header
from slq.apps.cli.sparse_arrays import compressed_to_csr, coordinates_to_csr, require_scipy

__all__ = ["load_npz", "npz_info"]

DENSE_NAMES = ("a", "arr_0", "matrix")
# The members of each `save_npz` format slq reads, besides "format", "shape" and "data".
_SPARSE_MEMBERS = {
    "csr": ("indices", "indptr"),
    "csc": ("indices", "indptr"),
    "coo": ("row", "col"),
}
# `save_npz` stores the format as a short string: a longer one is not a format.
_MAX_FORMAT_CHARS = 16
# Peak of reading a sparse archive and checking its symmetry, in copies of the CSR
# matrix: the CSR itself, its transpose as CSR, A - Aᵀ and |A - Aᵀ|.
_SPARSE_CHECK_COPIES = 4


def npz_info(path: Path) -> MatrixInfo:
    """Read and check the headers of the archive's arrays; read no matrix data.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from slq.apps.cli.npz_files import npz_info
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.savez(Path(folder) / "a.npz", matrix=np.eye(3, dtype=np.int8))
    ...     info = npz_info(Path(folder) / "a.npz")
    >>> info.n, info.dtype, info.sparse
    (3, dtype('float64'), False)
    """
    with _archive(path) as archive:
        names = _array_names(archive)
        if _is_sparse(names):
            return _sparse_info(path, archive, names)
        header = _header(archive, _dense_name(names, path), path)
    n, _ = check_shape(header.shape, str(path))
    dtype = real_dtype(header.dtype, str(path))
    converted = n * n * dtype.itemsize if dtype != header.dtype else 0
    return MatrixInfo(path, "npz", n, dtype, n * n, False, header.nbytes + converted)


def load_npz(info: MatrixInfo) -> Any:
    """Return the archive's matrix as `npz_info` described it: a numpy array or a CSR matrix.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from slq.apps.cli.npz_files import load_npz, npz_info
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.savez(Path(folder) / "a.npz", np.eye(2))
    ...     load_npz(npz_info(Path(folder) / "a.npz"))
    array([[1., 0.],
           [0., 1.]])
    """
    with _archive(info.path) as archive:
        names = _array_names(archive)
        if info.sparse:
            return _load_sparse(info.path, archive)
        return _array(archive, _dense_name(names, info.path), info.path)


@contextmanager
def _archive(path: Path) -> Iterator[zipfile.ZipFile]:
    if not zipfile.is_zipfile(path):
        msg = f"{path} is not a .npz file (not a zip archive)"
        raise MatrixFileError(msg)
    with reading(str(path)), zipfile.ZipFile(path) as archive:
        yield archive


def _array_names(archive: zipfile.ZipFile) -> set[str]:
    return {name.removesuffix(".npy") for name in archive.namelist() if name.endswith(".npy")}


def _is_sparse(names: set[str]) -> bool:
    return {"format", "shape", "data"} <= names


def _dense_name(names: set[str], path: Path) -> str:
    """Return the archive's matrix: its only array, or the one with a conventional name."""
    if len(names) == 1:
        return next(iter(names))
    for name in DENSE_NAMES:
        if name in names:
            return name
    msg = (
        f"{path} holds {len(names)} arrays ({', '.join(sorted(names)) or 'none'}): save one "
        f"array, or name the matrix one of {', '.join(DENSE_NAMES)}"
    )
    raise MatrixFileError(msg)


def _what(path: Path, name: str) -> str:
    return f"{path} (array {name!r})"


def _header(archive: zipfile.ZipFile, name: str, path: Path) -> NpyHeader:
    what = _what(path, name)
    with reading(what):
        member = archive.getinfo(name + ".npy")
        with archive.open(member) as stream:
            return read_npy_header(stream, member.file_size, what)


def _array(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    """Read a member whose header was checked (it is read again: the file may have changed)."""
    what = _what(path, name)
    with reading(what):
        member = archive.getinfo(name + ".npy")
        with archive.open(member) as stream:
            read_npy_header(stream, member.file_size, what)
        with archive.open(member) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)


def _sparse_format(archive: zipfile.ZipFile, path: Path) -> tuple[str, tuple[int, int]]:
    """Return the archive's sparse format and its matrix's shape, both checked."""
    header = _header(archive, "format", path)
    if header.dtype.kind not in "SU" or header.shape not in ((), (1,)):
        msg = f"{_what(path, 'format')} must be a string, got {header.dtype} {header.shape}"
        raise MatrixFileError(msg)
    if header.dtype.itemsize > 4 * _MAX_FORMAT_CHARS:
        msg = f"{_what(path, 'format')} is not a sparse format name"
        raise MatrixFileError(msg)
    value = _array(archive, "format", path).reshape(())[()]
    fmt = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    if fmt not in _SPARSE_MEMBERS:
        msg = (
            f"{path}: sparse format {fmt!r} is not read; save the matrix as CSR, CSC or COO "
            "(scipy.sparse.save_npz(path, matrix.tocsr()))"
        )
        raise MatrixFileError(msg)
    return fmt, _sparse_shape(archive, path)


def _sparse_shape(archive: zipfile.ZipFile, path: Path) -> tuple[int, int]:
    header = _header(archive, "shape", path)
    if header.shape != (2,) or header.dtype.kind not in "iu":
        msg = f"{_what(path, 'shape')} must hold two integers, got {header.dtype} {header.shape}"
        raise MatrixFileError(msg)
    rows, cols = (int(d) for d in _array(archive, "shape", path))
    return check_shape((rows, cols), str(path))


def _sparse_info(path: Path, archive: zipfile.ZipFile, names: set[str]) -> MatrixInfo:
    require_scipy(str(path))
    fmt, (n, _) = _sparse_format(archive, path)
    members = _members(fmt, names, path)
    headers = {name: _header(archive, name, path) for name in ("data", *members)}
    _check_sparse_headers(fmt, n, headers, path)
    dtype = real_dtype(headers["data"].dtype, str(path))
    stored = headers["data"].shape[0]
    read = sum(h.nbytes for h in headers.values())
    peak = read + _SPARSE_CHECK_COPIES * csr_bytes(n, stored, dtype.itemsize)
    return MatrixInfo(path, "sparse npz", n, dtype, stored, True, peak)


def _members(fmt: str, names: set[str], path: Path) -> tuple[str, ...]:
    members: tuple[str, ...] = _SPARSE_MEMBERS[fmt]
    if fmt == "coo" and "coords" in names and not set(members) <= names:
        members = ("coords",)
    absent = [name for name in members if name not in names]
    if absent:
        msg = f"{path}: a sparse {fmt} archive needs the arrays {', '.join(absent)}"
        raise MatrixFileError(msg)
    return members


def _check_sparse_headers(fmt: str, n: int, headers: dict[str, NpyHeader], path: Path) -> None:
    """Check the arrays' declared shapes and index dtypes against the format's rules."""
    if len(headers["data"].shape) != 1:
        msg = f"{_what(path, 'data')} must be 1-D, got shape {headers['data'].shape}"
        raise MatrixFileError(msg)
    nnz = headers["data"].shape[0]
    expected: dict[str, tuple[int, ...]] = {"indptr": (n + 1,), "coords": (2, nnz)}
    expected |= {"indices": (nnz,), "row": (nnz,), "col": (nnz,)}
    for name, header in headers.items():
        if name == "data":
            continue
        if header.shape != expected[name] or header.dtype.kind not in "iu":
            msg = (
                f"{_what(path, name)} must be integers of shape {expected[name]} for a "
                f"{fmt} matrix of shape ({n}, {n}) with {nnz} entries, got {header.dtype} "
                f"of shape {header.shape}"
            )
            raise MatrixFileError(msg)


def _load_sparse(path: Path, archive: zipfile.ZipFile) -> Any:
    fmt, shape = _sparse_format(archive, path)
    members = _members(fmt, _array_names(archive), path)
    arrays = {name: _array(archive, name, path) for name in ("data", *members)}
    _check_sparse_headers(fmt, shape[0], _headers_of(arrays), path)
    if fmt == "coo":
        row, col = arrays["coords"] if "coords" in arrays else (arrays["row"], arrays["col"])
        return coordinates_to_csr(shape, arrays["data"], row, col, str(path))
    return compressed_to_csr(
        fmt, shape, arrays["data"], arrays["indices"], arrays["indptr"], str(path)
    )


def _headers_of(arrays: dict[str, np.ndarray]) -> dict[str, NpyHeader]:
    return {name: NpyHeader(a.shape, a.dtype, a.nbytes) for name, a in arrays.items()}

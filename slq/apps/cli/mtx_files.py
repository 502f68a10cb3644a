"""Matrix Market ``.mtx`` (or ``.mtx.gz``) files, read by numpy's text parser, every entry checked.

Not by `scipy.io.mmread`: its compiled reader (scipy ≥ 1.12) allocates what
the header declares before reading, and crashes the process on some bytes (a
NUL in an entry, values of 22 or more digits: scipy issue 19949). Here the
header is parsed and the declared entries counted against the lines of the
file first; `numpy.loadtxt` then reads at most the declared entries (and one
more, to refuse a file that holds more), and every index is checked before the
matrix is built.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from slq.apps.cli.file_reading import MatrixFileError, reading
from slq.apps.cli.matrix_info import MatrixInfo, csr_bytes
from slq.apps.cli.mtx_header import MtxHeader, count_lines, read_mtx_header
from slq.apps.cli.sparse_arrays import coordinates_to_csr, require_scipy

__all__ = ["load_mtx", "mtx_info"]

_FLOAT64 = np.dtype(np.float64)
# A coordinate entry as read: int64 row, int64 column, float64 value.
_ENTRY = np.dtype([("row", np.int64), ("col", np.int64), ("value", np.float64)])
_PATTERN_ENTRY = np.dtype([("row", np.int64), ("col", np.int64)])
# Peak of reading and checking, in copies: of the entries (read, then mirrored for a
# symmetric file) and of the CSR matrix (it, its transpose, A - Aᵀ and |A - Aᵀ|).
_ENTRY_COPIES = 2
_CSR_COPIES = 4
# A dense (array) file: the values as read, and the matrix they fill.
_DENSE_COPIES = 2


def mtx_info(path: Path) -> MatrixInfo:
    r"""Read and check the banner and size line, and count the lines that follow them.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from slq.apps.cli.mtx_files import mtx_info
    >>> text = "%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 1 5.0\n"
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (Path(folder) / "a.mtx").write_text(text)
    ...     info = mtx_info(Path(folder) / "a.mtx")
    >>> info.n, info.stored, info.sparse
    (2, 2, True)
    """
    with reading(str(path)), _open(path) as stream:
        header = read_mtx_header(stream, path)
        lines = count_lines(stream)
    if header.entries > lines:
        msg = (
            f"{path} is truncated: its header declares {header.entries} entries but only "
            f"{lines} {'line follows' if lines == 1 else 'lines follow'} it"
        )
        raise MatrixFileError(msg)
    n = header.n
    if not header.coordinate:
        return MatrixInfo(path, "mtx", n, _FLOAT64, n * n, False, _DENSE_COPIES * n * n * 8)
    require_scipy(str(path))
    stored = header.entries * (2 if header.symmetric else 1)
    load = _ENTRY_COPIES * stored * _ENTRY.itemsize + _CSR_COPIES * csr_bytes(n, stored, 8)
    return MatrixInfo(path, "mtx", n, _FLOAT64, stored, True, load)


def load_mtx(info: MatrixInfo) -> Any:
    r"""Read the file `mtx_info` checked: a numpy array, or a CSR matrix for a coordinate file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from slq.apps.cli.mtx_files import load_mtx, mtx_info
    >>> text = "%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n2 1 5.0\n"
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (Path(folder) / "a.mtx").write_text(text)
    ...     load_mtx(mtx_info(Path(folder) / "a.mtx")).toarray()
    array([[0., 5.],
           [5., 0.]])
    """
    path = info.path
    with reading(str(path)), _open(path) as stream:
        header = read_mtx_header(stream, path)
        dtype = _ENTRY if header.field != "pattern" else _PATTERN_ENTRY
        entries = _entries(stream, dtype if header.coordinate else _FLOAT64, header, path)
    if header.coordinate:
        return _sparse(entries, header, path)
    return _dense(entries, header)


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _entries(stream: IO[bytes], dtype: np.dtype, header: MtxHeader, path: Path) -> np.ndarray:
    """Read exactly the declared entries, one a line, or refuse the file."""
    try:  # within `reading`, which silences loadtxt's warnings of blank lines
        read = np.loadtxt(stream, dtype=dtype, comments="%", ndmin=1, max_rows=header.entries + 1)
    except ValueError as error:  # numpy's message, less its hint about `usecols`
        layout = " ".join(dtype.names) if dtype.names else "value"
        msg = f"{path}: each entry must be a line '{layout}': {str(error).split(';')[0]}"
        raise MatrixFileError(msg) from error
    if read.ndim != 1 or read.shape[0] != header.entries:
        found = read.size if dtype.names is None else read.shape[0]
        msg = (
            f"{path}: its header declares {header.entries} entries, one a line, but "
            f"{'more' if found > header.entries else found} follow"
        )
        raise MatrixFileError(msg)
    return read


def _sparse(entries: np.ndarray, header: MtxHeader, path: Path) -> Any:
    """Return the CSR matrix of 1-based coordinate entries; mirror those of a symmetric file."""
    rows, cols = entries["row"] - 1, entries["col"] - 1
    for name, index in (("row", rows), ("column", cols)):
        if index.size and (index.min() < 0 or index.max() >= header.n):
            msg = (
                f"{path}: {name} indices must lie in [1, {header.n}], got values in "
                f"[{index.min() + 1}, {index.max() + 1}]"
            )
            raise MatrixFileError(msg)
    values = entries["value"] if "value" in (entries.dtype.names or ()) else np.ones(len(entries))
    if header.symmetric:
        off = rows != cols
        rows, cols = np.concatenate([rows, cols[off]]), np.concatenate([cols, rows[off]])
        values = np.concatenate([values, values[off]])
    return coordinates_to_csr((header.n, header.n), values, rows, cols, str(path))


def _dense(values: np.ndarray, header: MtxHeader) -> np.ndarray:
    """Return the n x n array of values stored column by column (the lower triangle's)."""
    n = header.n
    if not header.symmetric:
        return values.reshape((n, n), order="F")
    a = np.empty((n, n))
    start = 0
    for j in range(n):
        column = values[start : start + n - j]
        a[j:, j], a[j, j:] = column, column
        start += n - j
    return a

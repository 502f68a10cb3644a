"""The header of a Matrix Market file: banner, comments and size line, parsed and checked.

The format: https://math.nist.gov/MatrixMarket/formats.html. Only what slq
can use is accepted: a real, integer or pattern matrix, general or symmetric.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, NamedTuple

from slq.apps.cli.file_reading import MatrixFileError
from slq.apps.cli.matrix_checks import check_shape

__all__ = ["MtxHeader", "count_lines", "read_mtx_header"]

_BANNER = "%%matrixmarket"
_FIELDS = ("real", "integer", "pattern")
_SYMMETRIES = ("general", "symmetric")
# No header line of a Matrix Market file is longer; a longer one is not a header.
_MAX_LINE = 1024
_CHUNK = 1 << 20


class MtxHeader(NamedTuple):
    """What a Matrix Market header declares."""

    coordinate: bool
    """Sparse (``coordinate``: one entry "i j value" a line) or dense (``array``)."""
    field: str
    """``"real"``, ``"integer"`` or ``"pattern"`` (no values: every entry is 1)."""
    symmetric: bool
    """Only the lower triangle is stored."""
    n: int
    """The matrix is n x n."""
    entries: int
    """Entries stored: nonzeros, or the values of the (lower triangle of the) array."""


def read_mtx_header(stream: IO[bytes], path: Path) -> MtxHeader:
    r"""Read the banner, the comments and the size line from `stream`, and check them.

    Examples
    --------
    >>> import io
    >>> from pathlib import Path
    >>> from slq.apps.cli.mtx_header import read_mtx_header
    >>> text = b"%%MatrixMarket matrix coordinate real symmetric\n% comment\n3 3 2\n"
    >>> read_mtx_header(io.BytesIO(text), Path("a.mtx"))
    MtxHeader(coordinate=True, field='real', symmetric=True, n=3, entries=2)
    """
    coordinate, field, symmetric = _banner(_line(stream, path), path)
    line = _line(stream, path)
    while line.startswith("%") or not line.strip():
        line = _line(stream, path)
    sizes = _sizes(line, 3 if coordinate else 2, path)
    n, _ = check_shape((sizes[0], sizes[1]), str(path))
    most = n * (n + 1) // 2 if symmetric else n * n
    entries = sizes[2] if coordinate else most
    if entries > most:
        msg = f"{path}: the header declares {entries} entries, more than a {n} x {n} matrix holds"
        raise MatrixFileError(msg)
    return MtxHeader(coordinate, field, symmetric, n, entries)


def count_lines(stream: IO[bytes]) -> int:
    r"""Count the lines left in `stream`, a chunk at a time (a last line may lack its newline).

    Examples
    --------
    >>> import io
    >>> from slq.apps.cli.mtx_header import count_lines
    >>> count_lines(io.BytesIO(b"1 1 2.0\n2 2 3.0"))
    2
    """
    lines, last = 0, b"\n"
    while chunk := stream.read(_CHUNK):
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    return lines + (last != b"\n")


def _banner(line: str, path: Path) -> tuple[bool, str, bool]:
    """Return (coordinate, field, symmetric) from the first line, or refuse it."""
    words = line.lower().split()
    if len(words) != 5 or words[0] != _BANNER or words[1] != "matrix":
        msg = (
            f"{path} is not a Matrix Market file: its first line must be "
            "'%%MatrixMarket matrix coordinate|array FIELD SYMMETRY'"
        )
        raise MatrixFileError(msg)
    layout, field, symmetry = words[2:]
    if layout not in ("coordinate", "array"):
        msg = f"{path}: unknown Matrix Market format {layout!r}; use coordinate or array"
        raise MatrixFileError(msg)
    if field not in _FIELDS or (field == "pattern" and layout == "array"):
        msg = f"{path}: entries of type {field!r} are not read; slq needs real numbers"
        raise MatrixFileError(msg)
    if symmetry not in _SYMMETRIES:
        msg = f"{path}: a {symmetry} matrix is not read; slq needs a real symmetric matrix"
        raise MatrixFileError(msg)
    return layout == "coordinate", field, symmetry == "symmetric"


def _line(stream: IO[bytes], path: Path) -> str:
    line = stream.readline(_MAX_LINE + 1)
    if not line:
        msg = f"{path} ends before its size line"
        raise MatrixFileError(msg)
    if len(line) > _MAX_LINE:
        msg = f"{path}: a header line is longer than {_MAX_LINE} bytes"
        raise MatrixFileError(msg)
    return line.decode("latin-1")


def _sizes(line: str, count: int, path: Path) -> list[int]:
    words = line.split()
    if len(words) != count or not all(w.isascii() and w.isdigit() for w in words):
        shape = "rows columns entries" if count == 3 else "rows columns"
        msg = f"{path}: the size line must be {count} integers ({shape}), got {line.strip()!r}"
        raise MatrixFileError(msg)
    return [int(w) for w in words]

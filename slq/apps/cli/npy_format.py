"""The header of a ``.npy`` array (a file, or a member of a ``.npz`` archive), checked unread."""

from __future__ import annotations

import math
from typing import IO, NamedTuple

import numpy as np

from slq.apps.cli.file_reading import MatrixFileError, reading
from slq.memory import format_bytes

__all__ = ["NpyHeader", "read_npy_header"]


class NpyHeader(NamedTuple):
    """The array a ``.npy`` header declares: its shape and dtype, and the bytes it needs."""

    shape: tuple[int, ...]
    """The declared shape."""
    dtype: np.dtype
    """The declared dtype, as stored (any byte order)."""
    nbytes: int
    """Bytes of the data: the product of the shape times the itemsize."""


def read_npy_header(stream: IO[bytes], size: int, what: str) -> NpyHeader:
    """Read the header at the start of `stream`, of `size` bytes in all, and check it.

    Reads no data: refuses a stream too short for what the header declares, a
    dtype of Python objects, structured or sub-array dtypes and format versions
    other than 1.0 and 2.0 (3.0 exists only for structured field names).

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from slq.apps.cli.npy_format import read_npy_header
    >>> buffer = io.BytesIO()
    >>> np.save(buffer, np.eye(3))
    >>> read_npy_header(io.BytesIO(buffer.getvalue()), len(buffer.getvalue()), "a.npy")
    NpyHeader(shape=(3, 3), dtype=dtype('float64'), nbytes=72)
    """
    with reading(what):
        version = _version(stream, what)
        read = np.lib.format.read_array_header_1_0
        if version == (2, 0):
            read = np.lib.format.read_array_header_2_0
        shape, _, dtype = read(stream)
        offset = stream.tell()
    if any(type(d) is not int or d < 0 for d in shape):  # bool is an int too
        msg = f"{what}: the header declares an invalid shape {shape}"
        raise MatrixFileError(msg)
    if dtype.hasobject:
        msg = f"{what} holds a pickled object array, which slq never loads: save numbers"
        raise MatrixFileError(msg)
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes > size:
        msg = (
            f"{what} is truncated: its header declares shape {shape} of {dtype} "
            f"({format_bytes(nbytes)}) but it holds {format_bytes(max(size - offset, 0))} "
            "after the header"
        )
        raise MatrixFileError(msg)
    return NpyHeader(tuple(shape), dtype, nbytes)


def _version(stream: IO[bytes], what: str) -> tuple[int, int]:
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError as error:
        msg = f"{what} is not a .npy array (no NumPy header)"
        raise MatrixFileError(msg) from error
    if version not in ((1, 0), (2, 0)):
        msg = f"{what}: .npy format version {version[0]}.{version[1]} is not supported"
        raise MatrixFileError(msg)
    return version

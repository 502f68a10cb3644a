"""Reading an untrusted file: whatever its bytes make a reader raise becomes one clear error."""

from __future__ import annotations

import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MatrixFileError", "reading"]

# What numpy's, zipfile's and gzip's readers raise on bytes they cannot parse: an
# encrypted zip member is a RuntimeError, an unknown compression method a
# NotImplementedError, a number too large for its type an OverflowError, and a .npy
# header that is not a Python literal a SyntaxError or tokenize.TokenError.
_MALFORMED = (
    ValueError,
    SyntaxError,
    tokenize.TokenError,
    TypeError,
    EOFError,
    KeyError,
    IndexError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
)


class MatrixFileError(ValueError):
    """A file slq refuses, and why: the message names the file and is complete.

    Examples
    --------
    >>> from slq.apps.cli.file_reading import MatrixFileError
    >>> issubclass(MatrixFileError, ValueError)
    True
    """


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Turn a reader's error on an unreadable or malformed file into `MatrixFileError`.

    A `MatrixFileError` raised by slq's own checks passes unchanged. The
    readers' UserWarnings about files they could read (a .npy header written
    by Python 2, an empty Matrix Market body) are silenced: the content is
    checked anyway, and a warning would add lines to the command's one.

    Examples
    --------
    >>> import zipfile
    >>> from slq.apps.cli.file_reading import reading
    >>> try:
    ...     with reading("a.npz"):
    ...         raise zipfile.BadZipFile("File is not a zip file")
    ... except ValueError as error:
    ...     print(error)
    a.npz is malformed: File is not a zip file
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    except MatrixFileError:
        raise
    except OSError as error:
        msg = f"cannot read {what}: {error.strerror or error}"
        raise MatrixFileError(msg) from error
    except _MALFORMED as error:
        msg = f"{what} is malformed: {error or type(error).__name__}"
        raise MatrixFileError(msg) from error

"""`.npz` archives of plain arrays and JSON metadata: written atomically, read field by field.

Writing goes through a temporary file and a rename, so that a reader sees the
old file or the new one, never a torn one; the file gets the mode a plain
`open` would give it (0666 less the umask). Reading never unpickles, checks
each array's header against the shape the caller expects before it reads the
data, and turns every fault into one ValueError naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slq._version import __version__

__all__ = [
    "INT64_MAX",
    "Archive",
    "check_writable",
    "is_temporary",
    "write_archive",
    "write_json",
]

INT64_MAX = 2**63 - 1
"""The largest count an archive may hold: numpy computes with it as an int64."""

_META = "meta"  # the member that holds the JSON metadata
_MAX_META_CHARS = 1 << 20  # the metadata is a few hundred characters; refuse a bloated one
# What a hostile or damaged archive raises while it is read: zipfile raises
# NotImplementedError for an unknown compression, RuntimeError for encryption.
_READ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)


def check_writable(path: str | os.PathLike[str], what: str = "the file") -> None:
    """Raise ValueError, naming `path`, unless its directory exists and takes a new file.

    A file is created there and removed again: the only test that sees
    permissions, read-only mounts and full quotas alike.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> check_writable(pathlib.Path(tempfile.mkdtemp()) / "dos.npz")
    >>> check_writable("/no/such/directory/dos.npz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: cannot write the file '/no/such/directory/dos.npz': its directory ... does not exist
    """
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        msg = f"cannot write {what} {str(path)!r}: its directory {str(directory)!r} does not exist"
        raise ValueError(msg)
    try:
        fd, probe = _create_temporary(path)
    except OSError as err:
        msg = f"cannot write {what} {str(path)!r}: {err.strerror or err}"
        raise ValueError(msg) from err
    os.close(fd)
    Path(probe).unlink()


def write_archive(
    path: str | os.PathLike[str], arrays: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write `arrays` and the JSON `meta` to `path` atomically: a temporary file, then a rename.

    `os.replace` is atomic on POSIX and Windows. An error names `path`, not the
    temporary file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> path = write_archive(pathlib.Path(tempfile.mkdtemp()) / "a.npz", {"x": np.ones(2)}, {})
    >>> with Archive(path) as archive:
    ...     archive.array("x", (2,))
    array([1., 1.])
    """
    path = Path(path)
    if path.suffix != ".npz":
        msg = f"results are saved as .npz archives: the path must end in .npz, got {str(path)!r}"
        raise ValueError(msg)
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload["meta"] = np.asarray(json.dumps({**meta, "version": __version__}, allow_nan=False))
    try:
        fd, tmp = _create_temporary(path)
    except OSError as err:
        raise type(err)(err.errno, err.strerror, str(path)) from err
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)  # type: ignore[arg-type]  # numpy's stub: names as kwargs
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write `value` as strict JSON to `path` atomically, as `write_archive` writes archives.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> path = write_json(pathlib.Path(tempfile.mkdtemp()) / "a.json", {"seed": 0})
    >>> json.loads(path.read_text())
    {'seed': 0}
    """
    path = Path(path)
    text = json.dumps(value, indent=2, allow_nan=False) + "\n"
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Return whether `path` is a temporary file left by an interrupted atomic write.

    Examples
    --------
    >>> is_temporary(".dos.npz.0a1b2c3d4e5f.tmp"), is_temporary("dos.npz")
    (True, False)
    """
    name = Path(path).name
    return name.startswith(".") and name.endswith(".tmp")


def _create_temporary(path: Path) -> tuple[int, str]:
    """Open a new hidden file beside `path`, with the mode 0666 less the umask.

    Not `tempfile.mkstemp`: its files are 0600 whatever the umask, and a rename
    keeps the mode, so every result would be private to its writer.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp"))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


class Archive:
    """An archive opened for reading: the JSON metadata at once, each array when asked for.

    Every accessor names the field it checks; any violation raises ValueError
    naming the file and the field. Nested metadata is named with dots
    (``"settings.seed"``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> _ = write_archive(path, {"x": np.zeros((2, 3))}, {"n": 3, "kind": "test"})
    >>> with Archive(path) as archive:
    ...     n = archive.integer("n", low=1)
    ...     archive.array("x", (range(1, 10), n)).shape, archive.choice("kind", ("test",))
    ((2, 3), 'test')
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _READ_ERRORS as err:
            msg = f"cannot read {str(self.path)!r} as an slq result archive: {err}"
            raise ValueError(msg) from err
        try:
            self.meta = self._read_meta()
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._zip.close()

    def error(self, field: str, problem: str) -> ValueError:
        """Return the ValueError for a violation: the file, the field and what is wrong."""
        return ValueError(f"{str(self.path)!r} is not a valid slq archive: {field} {problem}")

    def present(self, field: str) -> bool:
        """Return whether the metadata holds `field` with a value other than null."""
        return self._lookup(field, optional=True) is not None

    def check_format(self, expected: str) -> None:
        """Raise unless the metadata's ``format`` tag is `expected`."""
        field = "format"
        found = self._lookup(field, optional=True)
        if found != expected:
            raise self.error(field, f"must be {expected!r}, got {found!r}")

    def integer(self, field: str, *, low: int = 0, high: int | None = INT64_MAX) -> int:
        """Return the metadata integer `field`, in [low, high]: not a bool, a float or a string."""
        value = self._lookup(field)
        if type(value) is not int or value < low or (high is not None and value > high):
            top = "2**63 - 1" if high == INT64_MAX else high
            bounds = f">= {low}" if high is None else f"in [{low}, {top}]"
            raise self.error(field, f"must be an integer {bounds}, got {value!r}")
        return value

    def number(self, field: str) -> float:
        """Return the metadata number `field`: finite, not a bool or a string."""
        value = self._lookup(field)
        if type(value) not in (int, float) or not _finite(value):
            raise self.error(field, f"must be a finite number, got {value!r}")
        return float(value)

    def string(self, field: str) -> str:
        """Return the metadata string `field`."""
        value = self._lookup(field)
        if not isinstance(value, str):
            raise self.error(field, f"must be a string, got {value!r}")
        return value

    def choice(self, field: str, choices: Sequence[str]) -> str:
        """Return the metadata string `field`, one of `choices`."""
        value = self._lookup(field)
        if not isinstance(value, str) or value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise self.error(field, f"must be one of {allowed}, got {value!r}")
        return value

    def has_array(self, name: str) -> bool:
        """Return whether the archive holds an array `name`."""
        return f"{name}.npy" in self._zip.namelist()

    def array(
        self,
        name: str,
        shape: tuple[int | range, ...],
        *,
        kind: str = "f",
        non_negative: bool = False,
    ) -> np.ndarray:
        """Return the array `name`: its header checked against `shape` before its data is read.

        Each entry of `shape` is a length or a range of allowed lengths; `kind`
        the allowed numpy dtype kinds (``"f"`` real floating, ``"iu"`` integers).
        Floating arrays are returned as finite float64, integers as int64.
        """
        member = f"{name}.npy"
        if not self.has_array(name):
            raise self.error(name, "is missing")
        header_shape, dtype = self._header(name, member)
        if dtype.kind not in kind or not _fits(header_shape, shape):
            expected = _describe(shape)
            problem = f"must have shape {expected} and dtype kind {kind!r}"
            raise self.error(name, f"{problem}, got shape {header_shape} and dtype {dtype}")
        array = self._read(name, member).astype(np.float64 if kind == "f" else np.int64)
        if not np.all(np.isfinite(array)):
            raise self.error(name, "must be finite")
        if non_negative and not np.all(array >= 0):
            raise self.error(name, "must be non-negative")
        return array

    def _header(self, name: str, member: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
        """Return the shape and dtype in the header of `member`, without reading its data."""
        try:
            with self._zip.open(member) as f:
                version = np.lib.format.read_magic(f)  # type: ignore[no-untyped-call]
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)  # type: ignore[no-untyped-call]
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)  # type: ignore[no-untyped-call]
        except _READ_ERRORS as err:
            raise self.error(name, f"is not a readable array ({err})") from err
        if np.dtype(dtype).hasobject:
            raise self.error(name, "holds Python objects: slq never unpickles a file")
        return tuple(shape), np.dtype(dtype)

    def _read(self, name: str, member: str) -> np.ndarray:
        try:
            with self._zip.open(member) as f:
                return np.lib.format.read_array(f, allow_pickle=False)  # type: ignore[no-untyped-call]
        except _READ_ERRORS as err:
            raise self.error(name, f"is not a readable array ({err})") from err

    def _read_meta(self) -> dict[str, Any]:
        member = f"{_META}.npy"
        if member not in self._zip.namelist():
            msg = f"{str(self.path)!r} is not an slq result archive: it has no metadata"
            raise ValueError(msg)
        shape, dtype = self._header(_META, member)
        if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * _MAX_META_CHARS:
            raise self.error(_META, f"must be one string of JSON, got shape {shape} {dtype}")
        try:
            meta = json.loads(str(self._read(_META, member)[()]), parse_constant=_refuse)
        except ValueError as err:
            raise self.error(_META, f"is not JSON ({err})") from err
        if not isinstance(meta, dict):
            raise self.error(_META, f"must be a JSON object, got a {type(meta).__name__}")
        return meta

    def _lookup(self, field: str, optional: bool = False) -> Any:
        value: Any = self.meta
        for i, key in enumerate(field.split(".")):
            if not isinstance(value, dict):
                parent = ".".join(field.split(".")[:i])
                raise self.error(parent, f"must be a JSON object, got {value!r}")
            if key not in value:
                if optional:
                    return None
                raise self.error(field, "is missing")
            value = value[key]
        return value


def _fits(actual: tuple[int, ...], expected: tuple[int | range, ...]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(
        a in e if isinstance(e, range) else a == e for a, e in zip(actual, expected, strict=True)
    )


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def _describe(shape: tuple[int | range, ...]) -> str:
    """Write a shape whose lengths may be ranges, as "(1..4, 15)"."""
    lengths = [f"{n.start}..{n.stop - 1}" if isinstance(n, range) else str(n) for n in shape]
    return f"({', '.join(lengths)}{',' if len(lengths) == 1 else ''})"


def _refuse(name: str) -> Any:
    msg = f"{name} is not strict JSON"
    raise ValueError(msg)

"""The files of a track: one directory, its settings in JSON, one `.npz` archive per record.

Layout::

    track/
      track.json                 the settings, written once, atomically
      step-000000000000.npz      a saved SpectralDensity (`slq.load` reads it)
      step-000000000100.npz      ... plus the step and the scalars in its metadata

Every file is written atomically (a temporary file, then a rename): a crash
leaves the files written before it and at most a hidden temporary file, which
readers ignore and `clean_temporaries` removes. Nothing is ever unpickled;
every fault of a file read back raises one ValueError naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from slq._archive import Archive, is_temporary, write_archive, write_json
from slq._version import __version__
from slq.persistence import json_ready, payload, read_fields

__all__ = [
    "FORMAT",
    "SETTINGS_FILE",
    "check_scalars",
    "clean_temporaries",
    "read_record",
    "read_settings",
    "record_path",
    "record_paths",
    "write_record",
    "write_settings",
]

FORMAT = "slq.Track/1"
"""The format tag of a track's settings and of each record's metadata."""

SETTINGS_FILE = "track.json"
_RECORD_NAME = re.compile(r"step-(\d+)\.npz")
_SETTING_KEYS = ("num_steps", "num_probes", "seed", "density_options")
_MAX_SETTINGS_BYTES = 1 << 16  # a few hundred bytes in practice


def record_path(directory: Path, step: int) -> Path:
    """Return the file of the record at `step`: zero-padded, so names sort as steps do."""
    return directory / f"step-{step:012d}.npz"


def record_paths(directory: Path) -> dict[int, Path]:
    """Return step -> file for the records in `directory`; other files are not records.

    A file named like a record but not as `record_path` names it (``step-5.npz``)
    is refused: two files could otherwise claim one step.
    """
    found = {}
    for path in sorted(directory.glob("step-*.npz")):
        match = _RECORD_NAME.fullmatch(path.name)
        if match is None or record_path(directory, int(match[1])) != path:
            msg = f"{str(path)!r} is not a record of an slq track: expected step-<12 digits>.npz"
            raise ValueError(msg)
        found[int(match[1])] = path
    return found


def clean_temporaries(directory: Path) -> list[Path]:
    """Remove the temporary files left by writes a crash interrupted; return them."""
    left = [p for p in directory.iterdir() if is_temporary(p) and p.is_file()]
    for path in left:
        path.unlink(missing_ok=True)
    return left


def check_scalars(scalars: dict[str, Any]) -> dict[str, float | int]:
    """Return `scalars` as Python numbers, or raise unless each is a finite int or float.

    Examples
    --------
    >>> import numpy as np
    >>> check_scalars({"loss": np.float32(0.5), "epoch": 3})
    {'loss': 0.5, 'epoch': 3}
    >>> check_scalars({"loss": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: scalar loss must be a finite number, got nan
    """
    checked: dict[str, float | int] = {}
    for name, value in scalars.items():
        number = _number(value)
        if number is None:
            kind = type(value).__name__
            msg = (
                f"scalar {name} must be an int or a float, got {kind} {value!r} "
                "(pass a framework's scalar as a Python number, e.g. loss.item())"
            )
            raise TypeError(msg)
        if not math.isfinite(number):
            msg = f"scalar {name} must be a finite number, got {number!r}"
            raise ValueError(msg)
        checked[name] = number
    return checked


def _number(value: Any) -> float | int | None:
    """Return a real number as a Python int or float; None for anything else (bools too)."""
    if isinstance(value, bool) or (getattr(value, "dtype", None) is not None and value.ndim != 0):
        return None
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if isinstance(value, int) or kind in ("i", "u"):
        return int(value)
    if isinstance(value, float) or kind == "f":
        return float(value)
    return None


def write_settings(directory: Path, settings: dict[str, Any]) -> Path:
    """Write the track's settings to its ``track.json``, atomically."""
    return write_json(
        directory / SETTINGS_FILE, {"format": FORMAT, **settings, "version": __version__}
    )


def read_settings(directory: Path) -> dict[str, Any]:
    """Return the settings stored in ``track.json``: the keys `write_settings` was given."""
    path = directory / SETTINGS_FILE
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_SETTINGS_BYTES + 1)
        if len(raw) > _MAX_SETTINGS_BYTES:
            problem = "it is larger than any track's settings"
            raise ValueError(problem)
        stored = json.loads(raw.decode("utf-8"), parse_constant=_refuse)
    except (OSError, ValueError) as err:
        msg = f"cannot read {str(path)!r} as an slq track's settings: {err}"
        raise ValueError(msg) from err
    return _check_settings(path, stored)


def _check_settings(path: Path, stored: Any) -> dict[str, Any]:
    problem = _settings_problem(stored)
    if problem:
        msg = f"{str(path)!r} is not a valid slq track's settings: {problem}"
        raise ValueError(msg)
    return {name: stored[name] for name in _SETTING_KEYS}


def _settings_problem(stored: Any) -> str | None:
    """Return what is wrong with settings read back, or None."""
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        return f"its format must be {FORMAT!r}"
    if any(k not in stored for k in _SETTING_KEYS):
        return f"it must hold {', '.join(_SETTING_KEYS)}"
    for name in ("num_steps", "num_probes", "seed"):
        value = stored[name]
        if type(value) is not int or value < (0 if name == "seed" else 1):
            return f"{name} must be an integer, got {value!r}"
    if not isinstance(stored["density_options"], dict):
        return f"density_options must be a JSON object, got {stored['density_options']!r}"
    return None


def _refuse(name: str) -> Any:
    msg = f"{name} is not strict JSON"
    raise ValueError(msg)


def write_record(directory: Path, step: int, density: Any, scalars: dict[str, float | int]) -> Path:
    """Write `density` with its step and scalars to the record file of `step`, atomically."""
    arrays, meta = payload(density)
    track = {"format": FORMAT, "step": step, "scalars": json_ready(scalars)}
    return write_archive(record_path(directory, step), arrays, {**meta, "track": track})


def read_record(path: str | os.PathLike[str]) -> tuple[int, dict[str, Any], dict[str, float]]:
    """Return the step, the `SpectralDensity` fields and the scalars of one record file."""
    with Archive(path) as archive:
        fields = read_fields(archive)
        step = _track_step(archive)
        scalars = _track_scalars(archive)
    return step, fields, scalars


def _track_step(archive: Archive) -> int:
    track = archive.meta.get("track")
    if not isinstance(track, dict) or track.get("format") != FORMAT:
        found = track.get("format") if isinstance(track, dict) else track
        problem = f"must be {FORMAT!r}, got {found!r}"
        field = "track.format"
        raise archive.error(field, problem)
    step = archive.integer("track.step")
    match = _RECORD_NAME.fullmatch(archive.path.name)
    if match is not None and int(match[1]) != step:
        problem = f"must be the step its name says, {int(match[1])}, got {step}"
        field = "track.step"
        raise archive.error(field, problem)
    return step


def _track_scalars(archive: Archive) -> dict[str, float]:
    scalars = archive.meta["track"].get("scalars")
    if not isinstance(scalars, dict):
        problem = f"must be a JSON object, got {scalars!r}"
        field = "track.scalars"
        raise archive.error(field, problem)
    for name, value in scalars.items():
        if type(value) not in (int, float) or not math.isfinite(value):
            field, problem = f"track.scalars.{name}", f"must be a finite number, got {value!r}"
            raise archive.error(field, problem)
    return {name: float(value) for name, value in scalars.items()}

"""Saving and loading results as `.npz` archives: plain arrays and JSON, never pickle.

`save` writes a result; `read_result` returns the fields it was saved with.
`slq.load` (in `slq.spectral_density`, above this module) builds the
`SpectralDensity` from them, so that this module never needs the class.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slq._version import __version__

if TYPE_CHECKING:
    from slq.spectral_density import SpectralDensity

__all__ = ["FORMAT", "json_ready", "read_archive", "read_result", "save", "write_archive"]

FORMAT = "slq.SpectralDensity/1"
"""The format tag written into every saved result; `load` refuses any other."""


def json_ready(value: Any) -> Any:
    """Return `value` for strict JSON: numpy numbers as Python ones, NaN and infinities as None.

    Dicts (keys as str), lists, tuples and arrays are converted all the way down.

    Examples
    --------
    >>> import numpy as np
    >>> json_ready({"a": np.float64(0.5), "b": [float("nan"), np.int64(3)], 1: np.ones(2)})
    {'a': 0.5, 'b': [None, 3], '1': [1.0, 1.0]}
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_archive(
    path: str | os.PathLike[str], arrays: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write `arrays` and the JSON `meta` to `path` atomically: a temporary file, then a rename.

    A reader (or a run killed mid-write) sees either the old file or the new
    one, never a torn one: `os.replace` is atomic on POSIX and Windows.
    """
    path = Path(path)
    if path.suffix != ".npz":
        msg = f"results are saved as .npz archives: the path must end in .npz, got {str(path)!r}"
        raise ValueError(msg)
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload["meta"] = np.asarray(json.dumps({**meta, "version": __version__}))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def read_archive(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return the arrays and the JSON metadata of an archive written by `write_archive`."""
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        msg = f"cannot read {str(path)!r} as an slq result archive: {err}"
        raise ValueError(msg) from err
    if "meta" not in arrays:
        msg = f"{str(path)!r} is not an slq result archive: it has no metadata"
        raise ValueError(msg)
    return arrays, json.loads(str(arrays.pop("meta")))


def save(density: SpectralDensity, path: str | os.PathLike[str]) -> Path:
    """Save a result to a ``.npz`` archive (no pickle), atomically; `slq.load` reads it.

    The archive keeps the coefficients and the run's metadata (n, steps,
    probes, seed, probe kind, reorthogonalisation, stop reason, method and
    library version): everything a `SpectralDensity` reports is a function of
    them, so the loaded result evaluates, plots and summarises exactly like
    the saved one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import slq
    >>> from slq.persistence import save
    >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 100)), num_probes=3, seed=0)
    >>> path = save(dos, pathlib.Path(tempfile.mkdtemp()) / "dos.npz")
    >>> bool(np.array_equal(slq.load(path).alpha, dos.alpha))
    True
    """
    arrays: dict[str, Any] = {"alpha": density.alpha, "beta": density.beta}
    if density.residual_norm is not None:
        arrays["residual_norm"] = density.residual_norm
    meta = {
        "format": FORMAT,
        "method": "slq",
        "dim": density.dim,
        "num_steps": density.num_steps,
        "num_probes": density.num_probes,
        "num_matvecs": density.num_matvecs,
        "seed": density.seed,
        "probe": density.probe,
        "reorthogonalize": density.reorthogonalize,
        "stop_reason": density.stop_reason,
    }
    return write_archive(path, arrays, meta)


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the `SpectralDensity` fields saved by `save`, as keyword arguments.

    Raises
    ------
    ValueError
        For a file that is not a saved slq result.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import slq
    >>> from slq.persistence import read_result
    >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 100)), num_probes=3, seed=0)
    >>> fields = read_result(dos.save(pathlib.Path(tempfile.mkdtemp()) / "dos.npz"))
    >>> fields["dim"], fields["seed"], fields["alpha"].shape
    (100, 0, (3, 90))
    """
    arrays, meta = read_archive(path)
    if meta.get("format") != FORMAT:
        msg = f"{str(path)!r} holds {meta.get('format')!r}, not a saved {FORMAT!r}"
        raise ValueError(msg)
    return {
        "alpha": arrays["alpha"],
        "beta": arrays["beta"],
        "dim": int(meta["dim"]),
        "num_matvecs": int(meta["num_matvecs"]),
        "seed": meta.get("seed"),
        "probe": meta.get("probe"),
        "reorthogonalize": meta.get("reorthogonalize"),
        "residual_norm": arrays.get("residual_norm"),
        "stop_reason": meta.get("stop_reason"),
    }

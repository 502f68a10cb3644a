"""Saving and loading results as `.npz` archives: plain arrays and JSON, never pickle.

`save` writes a result; `read_result` checks every field of a saved one against
the schema and returns them.
`slq.load` (in `slq.spectral_density`, above this module) builds the
`SpectralDensity` from them, so that this module never needs the class.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slq._archive import Archive, write_archive

if TYPE_CHECKING:
    from slq.spectral_density import SpectralDensity

__all__ = ["FORMAT", "json_ready", "payload", "read_fields", "read_result", "save"]

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
    return write_archive(path, *payload(density))


def payload(density: SpectralDensity) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the arrays and the JSON metadata that `save` writes for `density`.

    A caller may add its own metadata keys beside these (`slq.Tracker` adds
    the training step): `read_result` reads only its own.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.persistence import payload
    >>> arrays, meta = payload(slq.density(np.eye(4), num_probes=2, seed=0))
    >>> sorted(arrays), meta["format"]
    (['alpha', 'beta', 'residual_norm'], 'slq.SpectralDensity/1')
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
    return arrays, meta


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the `SpectralDensity` fields saved by `save`, as keyword arguments.

    Every field is checked against the schema before the arrays are read:
    counts are integers in range, the arrays have the shapes the counts give
    and are finite, the record fields are strings.

    Raises
    ------
    ValueError
        For a file that is not a saved slq result, naming the file and the
        first field that violates the schema.

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
    with Archive(path) as archive:
        return read_fields(archive)


def read_fields(archive: Archive) -> dict[str, Any]:
    """Return the `SpectralDensity` fields of an open archive, as `read_result` does.

    For readers of archives that hold more metadata than `save` writes
    (`slq.load_track`); every fault raises ValueError naming the file and field.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import slq
    >>> from slq._archive import Archive
    >>> from slq.persistence import read_fields
    >>> dos = slq.density(np.eye(4), num_probes=2, seed=0)
    >>> path = dos.save(pathlib.Path(tempfile.mkdtemp()) / "d.npz")
    >>> with Archive(path) as archive:
    ...     read_fields(archive)["dim"]
    4
    """
    archive.check_format(FORMAT)
    k = archive.integer("num_probes", low=1)
    m = archive.integer("num_steps", low=1)
    fields = {
        "alpha": archive.array("alpha", (k, m)),
        "beta": archive.array("beta", (k, m - 1)),
    }
    residual = None
    if archive.has_array("residual_norm"):
        residual = archive.array("residual_norm", (k,), non_negative=True)
    return {
        **fields,
        "dim": archive.integer("dim", low=1),
        "num_matvecs": archive.integer("num_matvecs"),
        "seed": archive.integer("seed", high=None) if archive.present("seed") else None,
        **{name: _optional_string(archive, name) for name in _RECORD},
        "residual_norm": residual,
    }


_RECORD = ("probe", "reorthogonalize", "stop_reason")  # kept for the record: any string


def _optional_string(archive: Archive, field: str) -> str | None:
    return archive.string(field) if archive.present(field) else None

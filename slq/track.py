"""`load_track`: the records a `slq.Tracker` wrote, as a read-only `Track` sorted by step."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from slq import _track_files as files
from slq._validate import check_path
from slq.spectral_density import SpectralDensity

if TYPE_CHECKING:
    from slq.track_summary import TrackSummary

__all__ = ["Track", "TrackRecord", "load_track"]


@dataclass(frozen=True)
class TrackRecord:
    """One record of a track: the step, the density measured there and the scalars kept with it.

    Attributes
    ----------
    step : int
        The training step (or epoch) the caller passed to `Tracker.record`.
    density : SpectralDensity
        The density recorded at that step.
    scalars : mapping of str to float
        The scalars recorded with it (``loss``, ``lr``, ...), read-only.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import slq
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=5, num_probes=2)
    >>> _ = tracker.record(7, np.eye(10), loss=0.25)
    >>> record = slq.load_track(tracker.path)[0]
    >>> record.step, record.density.dim, dict(record.scalars)
    (7, 10, {'loss': 0.25})
    """

    step: int
    density: SpectralDensity
    scalars: Mapping[str, float]


class Track(Sequence[TrackRecord]):
    """The records of a track, sorted by step: a read-only sequence of `TrackRecord`.

    Made by `load_track`. Indexing gives a record (a slice, a `Track` of
    those records); the summaries over steps are `summary`, and the figures
    `plot_heatmap` and `plot_traces`.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import slq
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=20, num_probes=2, every=2)
    >>> for step in range(5):
    ...     _ = tracker.record(step, np.diag(np.arange(20.0) * (step + 1)), lr=0.1)
    >>> track = slq.load_track(tracker.path)
    >>> len(track), track.steps, track[-1].density.lambda_max
    (3, array([0, 2, 4]), 95.0)
    """

    def __init__(self, records: Sequence[TrackRecord], settings: Mapping[str, Any]) -> None:
        self._records = tuple(sorted(records, key=lambda r: r.step))
        steps = [r.step for r in self._records]
        if len(set(steps)) != len(steps):
            msg = f"a track holds one record per step, got steps {steps}"
            raise ValueError(msg)
        self._settings = MappingProxyType(dict(settings))

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> TrackRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Track: ...
    def __getitem__(self, index: int | slice) -> TrackRecord | Track:
        if isinstance(index, slice):
            return Track(self._records[index], self._settings)
        return self._records[index]

    def __iter__(self) -> Iterator[TrackRecord]:
        return iter(self._records)

    @property
    def settings(self) -> Mapping[str, Any]:
        """The tracker's settings: ``num_steps``, ``num_probes``, ``seed``, ``density_options``."""
        return self._settings

    @property
    def steps(self) -> np.ndarray:
        """Shape (r,): the recorded steps, ascending."""
        return np.array([r.step for r in self._records], dtype=np.int64)

    @property
    def densities(self) -> list[SpectralDensity]:
        """The recorded densities, in step order."""
        return [r.density for r in self._records]

    def scalar(self, name: str) -> np.ndarray:
        """Return shape (r,): the scalar `name` at each step, NaN where it was not recorded.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> import slq
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=5, num_probes=2)
        >>> _ = tracker.record(0, np.eye(8), loss=2.0)
        >>> _ = tracker.record(1, np.eye(8))
        >>> slq.load_track(tracker.path).scalar("loss")
        array([ 2., nan])
        """
        if not isinstance(name, str):
            msg = f"name must be a string, got {type(name).__name__}"
            raise TypeError(msg)
        return np.array([r.scalars.get(name, np.nan) for r in self._records], dtype=np.float64)

    def summary(self) -> TrackSummary:
        """Return the summaries at every step; see `slq.track_summary.summarize`.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> import slq
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=20, num_probes=2)
        >>> for step in range(3):
        ...     _ = tracker.record(step, np.diag(np.linspace(-1.0, 1.0, 50) + step))
        >>> [round(row.w1_previous, 6) for row in slq.load_track(tracker.path).summary()]
        [nan, 1.0, 1.0]
        """
        from slq.track_summary import summarize

        return summarize(self)

    def plot_heatmap(self, ax: Any = None, **options: Any) -> Any:
        """Draw the densities against step as a heat map; see `slq.track_plots.plot_heatmap`.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import tempfile
        >>> import numpy as np
        >>> import slq
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=10, num_probes=2)
        >>> for step in range(3):
        ...     _ = tracker.record(step, np.diag(np.linspace(-1.0, 1.0, 50) * (step + 1)))
        >>> slq.load_track(tracker.path).plot_heatmap().get_xlabel()
        'step'
        """
        from slq.track_plots import plot_heatmap

        return plot_heatmap(self, ax, **options)

    def plot_traces(self, ax: Any = None, **options: Any) -> Any:
        """Draw λ_max, negative mass and outliers against step; `slq.track_plots.plot_traces`.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import tempfile
        >>> import numpy as np
        >>> import slq
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=10, num_probes=2)
        >>> for step in range(3):
        ...     _ = tracker.record(step, np.diag(np.linspace(-1.0, 1.0, 50) * (step + 1)))
        >>> len(slq.load_track(tracker.path).plot_traces())
        3
        """
        from slq.track_plots import plot_traces

        return plot_traces(self, ax, **options)

    def __repr__(self) -> str:
        return f"Track({len(self)} records, steps {self.steps.tolist()})"


def load_track(path: str | os.PathLike[str]) -> Track:
    """Read the records a `Tracker` wrote to `path`.

    Every file is checked: the settings, and each record's density, step and
    scalars; temporary files left by an interrupted write are ignored.

    Parameters
    ----------
    path : str or os.PathLike
        The track's directory.

    Returns
    -------
    Track
        The records, sorted by step.

    Raises
    ------
    ValueError
        For a directory that is not a track, or a file in it that is damaged
        or not a track's (naming the file and what is wrong with it).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import slq
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=5, num_probes=2, every=3)
    >>> for step in range(7):
    ...     _ = tracker.maybe_record(step, lambda: np.eye(10), loss=float(step))
    >>> slq.load_track(tracker.path)
    Track(3 records, steps [0, 3, 6])
    """
    directory = Path(check_path("path", path))
    if not (directory / files.SETTINGS_FILE).is_file():
        msg = f"{str(directory)!r} is not an slq track: it has no {files.SETTINGS_FILE}"
        raise ValueError(msg)
    settings = files.read_settings(directory)
    records = [_record(file) for file in files.record_paths(directory).values()]
    return Track(records, settings)


def _record(path: Path) -> TrackRecord:
    step, fields, scalars = files.read_record(path)
    try:
        density = SpectralDensity(**fields)
    except (TypeError, ValueError) as err:
        msg = f"{str(path)!r} is not a valid record of an slq track: {err}"
        raise ValueError(msg) from err
    return TrackRecord(step, density, MappingProxyType(scalars))

"""`Tracker`: the spectral density recorded every few training steps, to one append-only directory.

A training loop calls `Tracker.maybe_record` (or `Tracker.record`) at every
step; on the steps that are due it runs `slq.density` with the same settings
and the same probes (the same seed) and writes the result with the step and
the loss, learning rate or any other scalars. `slq.load_track` reads the
records back as a `slq.Track`. The files are those of `slq._track_files`.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slq import _track_files as files
from slq._density import DEFAULT_NUM_PROBES, DEFAULT_NUM_STEPS, check_options, density
from slq._validate import check_non_negative_int, check_path, check_positive_int
from slq.persistence import json_ready
from slq.spectral_density import SpectralDensity

__all__ = ["Tracker"]

logger = logging.getLogger("slq")

# Options of `density` that change how a run is watched, not its result: never stored.
_RUNTIME_OPTIONS = ("progress", "callback")
# Options a Tracker owns or cannot pass on: one checkpoint file cannot serve every step.
_NOT_OPTIONS = ("op", "num_steps", "num_probes", "seed", "checkpoint")


class Tracker:
    """Record the spectral density of an operator over training, into a directory.

    Every due step runs `slq.density` with the tracker's settings, the same
    probes at every step (`seed`), so that changes between steps are the
    operator's, not probe noise, and writes a record: the `SpectralDensity`
    as `SpectralDensity.save` writes it, with the step and the scalars.

    Parameters
    ----------
    path : str or os.PathLike
        The track's directory: created if missing (its parent must exist). An
        existing track is reopened and appended to: its stored settings must
        equal these (`every` and the run-time options `progress` and
        `callback` may change). Temporary files left by a crash are removed.
    num_steps, num_probes : int, default 90 and 10
        Lanczos steps and probes of each density (see `slq.density`).
    seed : int, default 0
        The probes' seed: the same at every step.
    every : int, default 1
        A step is due when ``step % every == 0``. Steps count whatever the
        caller counts: optimiser steps or epochs.
    **density_options
        Any other keyword of `slq.density` (``probe``, ``reorthogonalize``,
        ``probe_batch_size``, ``tol``, ...), checked here as `density` checks
        them; not ``checkpoint``: each record is its own atomic file.

    Raises
    ------
    TypeError, ValueError
        For a bad argument (before any file is written), a `path` whose parent
        does not exist, or a track there with other settings (naming them).

    Notes
    -----
    A crash loses at most the record in flight. Recording a step already on
    file does nothing, so a resumed training run appends without duplicates.
    One process writes a track at a time. With an operator whose
    ``writes_files`` is False (a data-parallel adapter on a rank other than
    0), densities are computed but not written; every rank must reopen the
    same directory so that all agree on which steps are due.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import slq
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=20, num_probes=2, every=5)
    >>> for step in range(12):
    ...     a = np.diag(np.linspace(-1.0, 1.0, 100) + step)  # a stand-in for a model's Hessian
    ...     _ = tracker.maybe_record(step, lambda: a, loss=1.0 / (step + 1))
    >>> tracker.steps
    [0, 5, 10]
    >>> track = slq.load_track(tracker.path)
    >>> round(track[1].density.lambda_max, 2), track.scalar("loss")
    (6.0, array([1.        , 0.16666667, 0.09090909]))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        num_steps: int = DEFAULT_NUM_STEPS,
        num_probes: int = DEFAULT_NUM_PROBES,
        seed: int = 0,
        every: int = 1,
        **density_options: Any,
    ) -> None:
        directory = Path(check_path("path", path))
        self._every = check_positive_int("every", every)
        self._settings = _check_settings(num_steps, num_probes, seed, density_options)
        self._options = dict(density_options)
        self._path = _open_directory(directory, self._settings)
        self._recorded = set(files.record_paths(self._path))

    @property
    def path(self) -> Path:
        """The track's directory."""
        return self._path

    @property
    def every(self) -> int:
        """A step is due when it is a multiple of this."""
        return self._every

    @property
    def steps(self) -> list[int]:
        """The recorded steps, ascending (those on file when reopened included)."""
        return sorted(self._recorded)

    @property
    def settings(self) -> dict[str, Any]:
        """The stored settings: ``num_steps``, ``num_probes``, ``seed``, ``density_options``."""
        return {**self._settings, "density_options": dict(self._settings["density_options"])}

    def due(self, step: int) -> bool:
        """Return whether `step` is to be recorded: a multiple of `every`, not recorded yet.

        Examples
        --------
        >>> import tempfile
        >>> import slq
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", every=10)
        >>> tracker.due(20), tracker.due(25)
        (True, False)
        """
        step = check_non_negative_int("step", step)
        return step % self._every == 0 and step not in self._recorded

    def record(self, step: int, operator: Any, **scalars: Any) -> SpectralDensity | None:
        """Run `slq.density` of `operator` and record it at `step` with `scalars`, if due.

        Parameters
        ----------
        step : int
            The training step (or epoch), >= 0.
        operator
            Anything `slq.density` accepts: an adapter's Hessian, an array, ...
        **scalars : int or float
            Finite numbers kept with the record (``loss=...``, ``lr=...``):
            Python or numpy numbers; a framework's tensor as ``loss.item()``.

        Returns
        -------
        SpectralDensity or None
            The density recorded, or None when the step is not due (nothing
            is computed then).

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> import slq
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=50, num_probes=2)
        >>> round(tracker.record(0, np.diag(np.arange(50.0)), loss=2.5).lambda_max, 6)
        49.0
        >>> tracker.record(0, np.diag(np.arange(50.0)), loss=2.5) is None  # already recorded
        True
        """
        checked = files.check_scalars(scalars)
        if not self.due(step):
            return None
        dos = density(operator, **self._density_arguments())
        self._write(int(step), dos, checked, operator)
        return dos

    def maybe_record(
        self, step: int, build: Callable[[], Any], **scalars: Any
    ) -> SpectralDensity | None:
        """Record at `step` the density of the operator ``build()`` returns, if due.

        `build` is called only on due steps: a training loop pays nothing on
        the others, not even an operator's construction.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> import slq
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_probes=2, every=2)
        >>> [tracker.maybe_record(s, lambda: np.eye(3)) is not None for s in range(4)]
        [True, False, True, False]
        """
        if not callable(build):
            kind = type(build).__name__
            msg = f"build must be a function of no arguments returning the operator, got {kind}"
            raise TypeError(msg)
        files.check_scalars(scalars)
        if not self.due(step):
            return None
        return self.record(step, build(), **scalars)

    def _density_arguments(self) -> dict[str, Any]:
        settings = {k: v for k, v in self._settings.items() if k != "density_options"}
        return {**settings, **self._options}

    def _write(self, step: int, dos: SpectralDensity, scalars: dict[str, Any], op: Any) -> None:
        if not getattr(op, "writes_files", True):
            self._recorded.add(step)  # another rank writes it
            return
        path = files.write_record(self._path, step, dos, scalars)
        self._recorded.add(step)  # only once on file: a failed write leaves the step due
        logger.info(
            "track: step %d recorded to %s (λ in [%.3g, %.3g])",
            step,
            path,
            dos.lambda_min,
            dos.lambda_max,
        )

    def __repr__(self) -> str:
        return f"Tracker({str(self._path)!r}, every={self._every}, steps={self.steps})"


def _check_settings(
    num_steps: Any, num_probes: Any, seed: Any, options: dict[str, Any]
) -> dict[str, Any]:
    """Check the settings before any file is touched; return those that are stored."""
    allowed = set(inspect.signature(density).parameters) - set(_NOT_OPTIONS)
    for name in options:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            msg = f"Tracker got an unexpected keyword argument {name!r}: the options are {known}"
            raise TypeError(msg)
    seed = check_non_negative_int("seed", seed)
    num_probes = check_positive_int("num_probes", num_probes)
    check_options(num_steps=num_steps, num_probes=num_probes, seed=seed, **options)
    defaults = {n: p.default for n, p in inspect.signature(density).parameters.items()}
    # An option given at its default is the option left out: both open the same track.
    stored = {k: v for k, v in options.items() if k not in _RUNTIME_OPTIONS and v != defaults[k]}
    return {
        "num_steps": int(num_steps),
        "num_probes": num_probes,
        "seed": seed,
        "density_options": json_ready(stored),
    }


def _open_directory(directory: Path, settings: dict[str, Any]) -> Path:
    """Create the track at `directory`, or reopen it after checking its settings."""
    if not directory.parent.is_dir():
        msg = f"cannot create the track {str(directory)!r}: its parent directory does not exist"
        raise ValueError(msg)
    if directory.exists() and not directory.is_dir():
        msg = f"path must be a directory for the track, got the file {str(directory)!r}"
        raise ValueError(msg)
    directory.mkdir(exist_ok=True)
    if (directory / files.SETTINGS_FILE).exists():
        _check_same(directory, files.read_settings(directory), settings)
        for left in files.clean_temporaries(directory):
            logger.info("track: removed %s, left by an interrupted write", left)
    else:
        files.write_settings(directory, settings)
    return directory


def _check_same(directory: Path, stored: dict[str, Any], settings: dict[str, Any]) -> None:
    """Raise, naming each difference, unless the stored settings are `settings`."""
    flat_stored = {**stored, **stored["density_options"]}
    flat_given = {**settings, **settings["density_options"]}
    names = sorted((set(flat_stored) | set(flat_given)) - {"density_options"})
    differ = [
        f"{name}={_shown(flat_given, name)} (the track has {_shown(flat_stored, name)})"
        for name in names
        if flat_stored.get(name) != flat_given.get(name)
    ]
    if differ:
        msg = (
            f"the track {str(directory)!r} was recorded with other settings: "
            f"{'; '.join(differ)}; open it with its settings or use another path"
        )
        raise ValueError(msg)


def _shown(settings: dict[str, Any], name: str) -> str:
    return repr(settings[name]) if name in settings else "density's default"

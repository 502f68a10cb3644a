"""Checkpoints of `density` runs: finished probe batches, written atomically, resumed exactly.

A checkpoint belongs to one run: its settings, its operator (recognised by a
fingerprint, one product with a fixed vector) and, while a run writes it, that
run alone (a lock file beside it). A file that belongs to another run, or that
violates the schema, is refused with a ValueError naming the file and the field.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from slq._archive import Archive, check_writable, write_archive
from slq._batch_split import Decision
from slq._fingerprint import (
    FINGERPRINT_LENGTH,
    Fingerprint,
    fingerprint,
    fingerprint_difference,
)
from slq._lanczos import LanczosResult
from slq._lock import RunLock
from slq._probes import PROBES
from slq._reorthogonalization import REORTHOGONALIZE

__all__ = ["FORMAT", "Checkpoint"]

logger = logging.getLogger("slq")

FORMAT = "slq.density-checkpoint/2"
"""The format tag of a checkpoint; version 1 had no operator fingerprint."""

_WITHOUT_FINGERPRINT = "slq.density-checkpoint/1"


class Checkpoint:
    """The finished batches of one `density` call, kept in a ``.npz`` archive.

    Made before any product: the path must end in ``.npz`` and, for a run
    that writes, its directory must take a new file. `resume` then locks the
    file, refuses one written with other settings or for another operator, and
    returns its batches; `save` replaces it atomically after each batch;
    `close` releases the lock.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import slq
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.npz"
    >>> a = np.diag(np.arange(1.0, 101.0))
    >>> run = {"num_steps": 20, "num_probes": 4, "probe_batch_size": 2, "seed": 0}
    >>> first = slq.density(a, **run, checkpoint=path)
    >>> bool(np.array_equal(slq.density(a, **run, checkpoint=path).alpha, first.alpha))
    True
    >>> slq.density(100 * a, **run, checkpoint=path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: checkpoint '...' was written for another operator: ‖A v‖ was 54.93, now 5493 ...
    """

    def __init__(self, path: str | os.PathLike[str], *, writes: bool = True) -> None:
        if not isinstance(path, (str, os.PathLike)):
            msg = f"checkpoint must be a str or path-like ending in .npz, got {path!r}"
            raise TypeError(msg)
        self.path = Path(path)
        if self.path.suffix != ".npz":
            msg = f"checkpoint must be a path ending in .npz, got {str(path)!r}"
            raise ValueError(msg)
        if writes:
            check_writable(self.path, "the checkpoint")
        self._lock = RunLock(self.path) if writes else None
        self._settings: dict[str, Any] = {}
        self._fingerprint: Fingerprint | None = None
        self.splits: dict[int, Decision] = {}
        """How a batch of each size was split (`slq._batch_split`), as recorded."""

    def stored_seed(self) -> int | None:
        """Return the seed of an existing checkpoint (to resume a seed=None run), or None."""
        if not self.path.exists():
            return None
        with self._open() as archive:
            return archive.integer("settings.seed", high=None)

    def resume(self, op: Any, settings: dict[str, Any]) -> list[LanczosResult]:
        """Lock the checkpoint, check that it is this run's, and return its finished batches.

        `settings` say which run the batches belong to (operator size and
        dtype, steps, seed, probe kind, reorthogonalisation, batch size). The
        operator's fingerprint costs one product, taken after every check
        that needs none.

        Raises
        ------
        RuntimeError
            If another live run holds the checkpoint.
        ValueError
            For a file written with other settings, for another operator, by
            an older slq, or that violates the schema.
        """
        if self._lock is not None:
            self._lock.acquire()
        self._settings = settings
        stored = self._read() if self.path.exists() else None
        self._fingerprint = fingerprint(op)
        if stored is None:
            return []
        self.splits = stored[2]
        difference = fingerprint_difference(stored[0], self._fingerprint, op)
        if difference is not None:
            msg = (
                f"checkpoint {str(self.path)!r} was written for another operator: {difference}; "
                "delete it or pass another path"
            )
            raise ValueError(msg)
        logger.info("density: resuming %d finished batches from %s", len(stored[1]), self.path)
        return stored[1]

    def save(
        self, results: list[LanczosResult], *, splits: dict[int, Decision] | None = None
    ) -> None:
        """Write every finished batch, replacing the previous checkpoint atomically.

        `splits` maps a batch size to how its batches were split, for a resumed
        run to split the same way.
        """
        if self._fingerprint is None:
            msg = "Checkpoint.save before Checkpoint.resume: this is a bug in slq"
            raise RuntimeError(msg)
        if self._lock is not None:
            self._lock.check_owned()
        arrays: dict[str, Any] = {"fingerprint": self._fingerprint.numbers()}
        for i, r in enumerate(results):
            arrays |= {f"alpha_{i}": r.alpha, f"beta_{i}": r.beta, f"lengths_{i}": r.lengths}
            arrays |= {f"residual_{i}": r.residual_norm, f"matvecs_{i}": r.num_matvecs}
        if splits:
            rows = [(size, *decision) for size, decision in sorted(splits.items())]
            arrays["split"] = np.array(rows, dtype=np.int64)
        meta = {"format": FORMAT, "settings": self._settings, "num_batches": len(results)}
        write_archive(self.path, arrays, meta)

    def close(self) -> None:
        """Release the lock (the file stays, for a later call to resume from)."""
        if self._lock is not None:
            self._lock.release()

    def _open(self) -> Archive:
        archive = Archive(self.path)
        try:
            if archive.meta.get("format") == _WITHOUT_FINGERPRINT:
                msg = (
                    f"checkpoint {str(self.path)!r} was written by an older slq, without the "
                    "operator fingerprint that tells whether it belongs to this operator: "
                    "delete it to start afresh"
                )
                raise ValueError(msg)
            archive.check_format(FORMAT)
        except ValueError:
            archive.close()
            raise
        return archive

    def _read(self) -> tuple[Fingerprint, list[LanczosResult], dict[int, Decision]]:
        """Check the file against the schema and this run's settings; return its contents."""
        with self._open() as archive:
            _check_settings(archive, self._settings)
            stored = Fingerprint.from_numbers(archive.array("fingerprint", (FINGERPRINT_LENGTH,)))
            batch = archive.integer("settings.probe_batch_size", low=1)
            m = archive.integer("settings.num_steps", low=1)
            count = archive.integer("num_batches")
            batches = [_batch(archive, i, batch, m) for i in range(count)]
            return stored, batches, _splits(archive, batch)


def _check_settings(archive: Archive, settings: dict[str, Any]) -> None:
    """Check the stored settings against the schema, then against this run's `settings`."""
    dim = archive.integer("settings.dim", low=1)
    stored = {
        "dim": dim,
        "dtype": archive.string("settings.dtype"),
        "num_steps": archive.integer("settings.num_steps", low=1, high=dim),
        "seed": archive.integer("settings.seed", high=None),
        "probe": archive.choice("settings.probe", PROBES),
        "reorthogonalize": archive.choice("settings.reorthogonalize", REORTHOGONALIZE),
        "probe_batch_size": archive.integer("settings.probe_batch_size", low=1),
    }
    differ = {k: (stored.get(k), v) for k, v in settings.items() if stored.get(k) != v}
    if differ:
        detail = ", ".join(
            f"{k}: checkpoint {a!r}, this call {b!r}" for k, (a, b) in differ.items()
        )
        msg = (
            f"checkpoint {str(archive.path)!r} was made by a different run ({detail}); "
            "delete it or pass another path"
        )
        raise ValueError(msg)


def _splits(archive: Archive, batch: int) -> dict[int, Decision]:
    """Return the recorded decisions by batch size: rows (size, parts, after the trial)."""
    if not archive.has_array("split"):
        return {}
    field = "split"
    rows = archive.array(field, (range(1, batch + 1), 3), kind="iu")
    size, parts, after = rows.T
    if not np.all((size >= 1) & (size <= batch) & (parts >= 1) & (after >= 0)):
        raise archive.error(
            field, f"must hold batch sizes in [1, {batch}], parts >= 1, trials >= 0"
        )
    if not np.all(parts <= size):
        raise archive.error(field, "must split a batch into at most as many parts as probes")
    return {int(s): Decision(int(p), int(a)) for s, p, a in rows}


def _batch(archive: Archive, i: int, batch: int, m: int) -> LanczosResult:
    """Return batch `i`, its shapes and counts checked against the batch size and steps."""
    alpha = archive.array(f"alpha_{i}", (range(1, batch + 1), range(1, m + 1)))
    b, steps = alpha.shape
    beta = archive.array(f"beta_{i}", (b, steps - 1))
    field = f"lengths_{i}"
    lengths = archive.array(field, (b,), kind="iu")
    if lengths.min() < 1 or lengths.max() != steps:
        raise archive.error(field, f"must lie in [1, {steps}] and reach {steps}")
    residual = archive.array(f"residual_{i}", (b,), non_negative=True)
    field = f"matvecs_{i}"
    matvecs = int(archive.array(field, (), kind="iu"))
    if not b * steps <= matvecs <= b * m:
        raise archive.error(field, f"must lie in [{b * steps}, {b * m}], got {matvecs}")
    return LanczosResult(alpha, beta, lengths, residual, None, matvecs)

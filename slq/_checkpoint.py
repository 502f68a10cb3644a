"""Checkpoints of `density` runs: finished probe batches, written atomically, resumed exactly.

A file written with other settings, or that violates the schema, is refused
with a ValueError naming the file and the field.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from slq._archive import Archive, write_archive
from slq._lanczos import REORTHOGONALIZE, LanczosResult
from slq._probes import PROBES

__all__ = ["Checkpoint"]

logger = logging.getLogger("slq")

_FORMAT = "slq.density-checkpoint/1"


class Checkpoint:
    """The finished batches of one `density` call, kept in a ``.npz`` archive.

    `settings` say which run the batches belong to (operator size and dtype,
    steps, seed, probe kind, reorthogonalisation, batch size); a file written
    with other settings is refused rather than silently mixed in.
    """

    def __init__(self, path: str | os.PathLike[str], settings: dict[str, Any]) -> None:
        self.path = Path(path)
        self.settings = settings
        if self.path.suffix != ".npz":
            msg = f"checkpoint must be a path ending in .npz, got {str(path)!r}"
            raise ValueError(msg)

    def stored_seed(self) -> int | None:
        """Return the seed of an existing checkpoint (to resume a seed=None run), or None."""
        if not self.path.exists():
            return None
        with Archive(self.path) as archive:
            archive.check_format(_FORMAT)
            return archive.integer("settings.seed", high=None)

    def load(self) -> list[LanczosResult]:
        """Return the finished batches, or [] if there is no checkpoint yet."""
        if not self.path.exists():
            return []
        with Archive(self.path) as archive:
            archive.check_format(_FORMAT)
            _check_settings(archive, self.settings)
            batch = archive.integer("settings.probe_batch_size", low=1)
            m = archive.integer("settings.num_steps", low=1)
            count = archive.integer("num_batches")
            results = [_batch(archive, i, batch, m) for i in range(count)]
        logger.info("density: resuming %d finished batches from %s", len(results), self.path)
        return results

    def save(self, results: list[LanczosResult]) -> None:
        """Write every finished batch, replacing the previous checkpoint atomically."""
        arrays: dict[str, Any] = {}
        for i, r in enumerate(results):
            arrays |= {f"alpha_{i}": r.alpha, f"beta_{i}": r.beta, f"lengths_{i}": r.lengths}
            arrays |= {f"residual_{i}": r.residual_norm, f"matvecs_{i}": r.num_matvecs}
        meta = {"format": _FORMAT, "settings": self.settings, "num_batches": len(results)}
        write_archive(self.path, arrays, meta)


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

"""Checkpoints of `density` runs: finished probe batches, written atomically, resumed exactly."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from slq._lanczos import LanczosResult
from slq.persistence import read_archive, write_archive

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
        _, meta = read_archive(self.path)
        seed = meta.get("settings", {}).get("seed")
        return None if seed is None else int(seed)

    def load(self) -> list[LanczosResult]:
        """Return the finished batches, or [] if there is no checkpoint yet."""
        if not self.path.exists():
            return []
        arrays, meta = read_archive(self.path)
        if meta.get("format") != _FORMAT:
            msg = f"{str(self.path)!r} is not a density checkpoint (format {meta.get('format')!r})"
            raise ValueError(msg)
        stored = meta["settings"]
        differ = {k: (stored.get(k), v) for k, v in self.settings.items() if stored.get(k) != v}
        if differ:
            detail = ", ".join(
                f"{k}: checkpoint {a!r}, this call {b!r}" for k, (a, b) in differ.items()
            )
            msg = (
                f"checkpoint {str(self.path)!r} was made by a different run ({detail}); "
                "delete it or pass another path"
            )
            raise ValueError(msg)
        results = [_batch(arrays, i) for i in range(int(meta["num_batches"]))]
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


def _batch(arrays: dict[str, np.ndarray], i: int) -> LanczosResult:
    return LanczosResult(
        arrays[f"alpha_{i}"],
        arrays[f"beta_{i}"],
        arrays[f"lengths_{i}"],
        arrays[f"residual_{i}"],
        None,
        int(arrays[f"matvecs_{i}"]),
    )

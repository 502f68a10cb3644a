"""The outputs: the figures (with their data), ``summary.md``, ``summary.json`` and the tracks."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from slq.apps.demo.figures import write_figures
from slq.apps.demo.report import markdown
from slq.apps.demo.training import Run
from slq.persistence import json_ready

__all__ = ["fresh_tracks", "write_outputs"]

_TRACK_FILES = ("track.json", "step-*.npz", ".*.tmp")  # what a Tracker writes


def fresh_tracks(path: Path) -> Path:
    """Return the folder ``tracks`` of the outputs, emptied of the tracks of an earlier run.

    The demo replaces its outputs: a track reopened would be appended to. Only
    the files a `slq.Tracker` writes are removed, and the folders they leave empty.
    """
    tracks = path / "tracks"
    tracks.mkdir(exist_ok=True)
    for track in tracks.iterdir():
        if not (track / "track.json").is_file():
            continue
        for pattern in _TRACK_FILES:
            for file in track.glob(pattern):
                file.unlink()
        if not any(track.iterdir()):
            track.rmdir()
    return tracks


def write_outputs(
    path: Path,
    summary: dict[str, Any],
    runs: dict[str, list[Run]],
    exact: dict[str, Any],
    started: float,
    tracks: Path,
) -> list[Path]:
    """Write the figures, ``summary.md`` and ``summary.json``; return their paths and `tracks`."""
    files = [*write_figures(path, summary["findings"], runs, exact), tracks]
    summary["wall_time_s"] = time.perf_counter() - started
    report = path / "summary.md"
    report.write_text(markdown(summary), encoding="utf-8")
    data = path / "summary.json"
    files += [report, data]
    summary_json = json_ready({**summary, "files": [f.name for f in files]})
    data.write_text(json.dumps(summary_json, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return files

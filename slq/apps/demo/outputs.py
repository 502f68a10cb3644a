"""The outputs: the figures (with their data), ``summary.md`` and ``summary.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from slq.apps.demo.figures import write_figures
from slq.apps.demo.report import markdown
from slq.apps.demo.training import Run
from slq.persistence import json_ready

__all__ = ["write_outputs"]


def write_outputs(
    path: Path,
    summary: dict[str, Any],
    runs: dict[str, list[Run]],
    exact: dict[str, Any],
    started: float,
) -> list[Path]:
    """Write the figures, ``summary.md`` and ``summary.json``; return their paths."""
    files = write_figures(path, summary["findings"], runs, exact)
    summary["wall_time_s"] = time.perf_counter() - started
    report = path / "summary.md"
    report.write_text(markdown(summary), encoding="utf-8")
    data = path / "summary.json"
    files += [report, data]
    summary_json = json_ready({**summary, "files": [f.name for f in files]})
    data.write_text(json.dumps(summary_json, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return files

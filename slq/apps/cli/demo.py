"""``slq demo``: run the packaged demo and list the files it wrote."""

from __future__ import annotations

import argparse
import importlib
import textwrap
from pathlib import Path
from typing import Any

from slq.apps.cli.errors import UsageError, check_seed, missing
from slq.apps.cli.output import write_lines
from slq.apps.cli.report import number

__all__ = ["run_demo"]


def run_demo(args: argparse.Namespace) -> int:
    """Run `slq.apps.demo.run` and say where its files went."""
    check_seed(args.seed)
    out = Path(args.out)
    try:
        demo = importlib.import_module("slq.apps.demo")  # its dependencies may be absent
        summary = demo.run(out, quick=args.quick, seed=args.seed, progress=None)
    except ImportError as error:
        raise UsageError(missing(error, "the demo")) from error
    except (ValueError, TypeError, OSError) as error:
        raise UsageError(str(error)) from error
    write_lines(_demo_report(out, summary))
    return 0


def _demo_report(out: Path, summary: Any) -> list[str]:
    """Lines listing the demo's figures, its summary files and a digest of its summary."""
    summary = summary if isinstance(summary, dict) else {}
    files = summary.get("files")
    if not isinstance(files, (list, tuple)):
        files = sorted(out.iterdir()) if out.is_dir() else []
    paths = [Path(f) for f in files]
    figures = [p for p in paths if p.suffix.lower() in (".png", ".pdf", ".svg")]
    summaries = [p for p in paths if p.name.startswith("summary")]
    others = [p for p in paths if p not in figures and p not in summaries]
    lines = [f"slq demo: wrote {len(paths)} file{'s' * (len(paths) != 1)} into {out}"]
    for title, group in (("figures", figures), ("summary", summaries), ("other files", others)):
        if group:
            lines += [f"{title}:", *(f"  {p}" for p in group)]
    digest = _digest(summary)
    return [*lines, "", textwrap.fill(digest, width=79)] if digest else lines


def _digest(summary: dict[str, Any]) -> str:
    """One paragraph of the summary's top-level scalar fields (nested ones are in the files)."""
    fields = [
        f"{key} = {number(value) if isinstance(value, float) else value}"
        for key, value in summary.items()
        if key != "files" and isinstance(value, (str, int, float, bool))
    ]
    return "; ".join(fields) + "." if fields else ""

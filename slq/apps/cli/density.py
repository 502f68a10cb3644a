"""``slq density FILE``: the eigenvalue density of a matrix in a file, as text, JSON or a figure."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from slq._density import density
from slq.apps.cli.errors import UsageError, check_seed
from slq.apps.cli.matrix_files import load_matrix
from slq.apps.cli.report import density_report
from slq.persistence import json_ready

__all__ = ["run_density"]

_DPI = 150
_PLOT_HINT = "pip install 'slq[plot]'"


def run_density(args: argparse.Namespace) -> int:
    """Load the matrix, run `slq.density`, print its summary, and draw it with --plot."""
    _check_options(args)
    try:
        matrix = load_matrix(args.file)
        # An overflowing product is reported by the library as FloatingPointError, in one
        # line; numpy's own RuntimeWarning would only repeat it over several.
        with np.errstate(over="ignore", invalid="ignore"):
            dos = density(
                matrix,
                num_steps=args.steps,
                num_probes=args.probes,
                seed=args.seed,
                reorthogonalize=args.reorthogonalize,
            )
        summary = dos.summary()
    except ImportError as error:
        raise UsageError(str(error)) from error
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        raise UsageError(str(error)) from error
    if args.json:
        payload = json_ready({"file": str(args.file), **summary})
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        print("\n".join(density_report(args.file, summary)))
    if args.plot is not None:
        s = summary
        title = f"{args.file.name}: n = {s['dim']}, {s['num_probes']} probes x {s['num_steps']}"
        _save_plot(dos, args.plot, title=f"{title} steps")
        print(f"slq: figure written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Refuse bad option values before the (possibly long) load and run."""
    for option, value in (("--steps", args.steps), ("--probes", args.probes)):
        if value < 1:
            msg = f"{option} must be >= 1, got {value}"
            raise UsageError(msg)
    check_seed(args.seed)
    if args.plot is not None:
        _check_plot_path(args.plot)


def _check_plot_path(path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        msg = f"--plot needs matplotlib: {_PLOT_HINT}"
        raise UsageError(msg)
    from matplotlib.backend_bases import FigureCanvasBase

    if not path.parent.is_dir():
        msg = f"--plot: folder {path.parent} does not exist"
        raise UsageError(msg)
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix and path.suffix[1:].lower() not in formats:
        allowed = ", ".join(sorted(formats))
        msg = f"--plot: unknown figure format {path.suffix!r}; use one of {allowed}"
        raise UsageError(msg)


def _save_plot(dos: Any, path: Path, *, title: str) -> None:
    """Draw `dos` on a figure of its own (matplotlib's object API: no pyplot state)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = dos.plot(figure.subplots())
    ax.set_title(title)
    try:
        figure.savefig(path, dpi=_DPI)
    except (OSError, ValueError) as error:
        msg = f"--plot: cannot write {path}: {error}"
        raise UsageError(msg) from error

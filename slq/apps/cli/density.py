"""``slq density FILE``: the eigenvalue density of a matrix in a file, as text, JSON or a figure.

Everything that can be checked is checked before the run, in this order: the
options, the outputs (standard output, the --plot path), the file's header,
and the memory the matrix and the run need. Only then is the file read.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from slq._density import density
from slq.apps.cli.errors import UsageError, check_seed
from slq.apps.cli.figure import plot_path, save_figure
from slq.apps.cli.matrix_files import load_matrix, matrix_info
from slq.apps.cli.output import say, write_lines
from slq.apps.cli.report import density_report
from slq.apps.cli.resources import check_options_fit, check_run_fits
from slq.persistence import json_ready

__all__ = ["run_density"]


def run_density(args: argparse.Namespace) -> int:
    """Load the matrix, run `slq.density`, print its summary, and draw it with --plot."""
    _check_options(args)
    figure = plot_path(args.plot) if args.plot is not None else None
    try:
        dos = _run(args)
        summary = dos.summary()
    except ImportError as error:
        raise UsageError(str(error)) from error
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        raise UsageError(str(error)) from error
    except MemoryError as error:  # past the checks: the machine's memory was taken meanwhile
        msg = f"out of memory: {error or 'an allocation failed'}; lower --probes or --steps"
        raise UsageError(msg) from error
    if args.json:
        payload = json_ready({"file": str(args.file), **summary})
        write_lines([json.dumps(payload, indent=2, allow_nan=False)])
    else:
        write_lines(density_report(args.file, summary))
    if figure is not None:
        s = summary
        title = f"{args.file.name}: n = {s['dim']}, {s['num_probes']} probes x {s['num_steps']}"
        save_figure(dos, figure, title=f"{title} steps", xscale=args.xscale)
        message = f"slq: figure written to {figure}"
        if args.json:  # stdout holds the JSON alone
            say(message)
        else:
            write_lines([message])
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Refuse bad option values before the (possibly long) load and run."""
    for option, value in (("--steps", args.steps), ("--probes", args.probes)):
        if value < 1:
            msg = f"{option} must be >= 1, got {value}"
            raise UsageError(msg)
    check_seed(args.seed)
    check_options_fit(args.steps, args.probes, args.reorthogonalize)


def _run(args: argparse.Namespace) -> Any:
    """Check the file's header and the run's memory, then load the matrix and run."""
    info = matrix_info(args.file)
    room = check_run_fits(
        info, num_steps=args.steps, num_probes=args.probes, reorthogonalize=args.reorthogonalize
    )
    matrix = load_matrix(info)
    # An overflowing product is reported by the library as FloatingPointError, in one
    # line; numpy's own RuntimeWarning would only repeat it over several.
    with np.errstate(over="ignore", invalid="ignore"):
        return density(
            matrix,
            num_steps=args.steps,
            num_probes=args.probes,
            seed=args.seed,
            reorthogonalize=args.reorthogonalize,
            max_memory=room,
        )

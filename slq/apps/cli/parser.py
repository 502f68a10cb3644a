"""The parser of ``slq`` and of its commands ``demo`` and ``density``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from slq._density import DEFAULT_NUM_PROBES, DEFAULT_NUM_STEPS
from slq._reorthogonalization import REORTHOGONALIZE
from slq._version import __version__
from slq.apps.cli.output import write_text

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose --help output is never lost silently.

    argparse ignores its own write errors: --help into a full disk would exit 0.
    """

    def print_help(self, file: Any = None) -> None:
        if file is None:
            write_text(self.format_help())
        else:
            super().print_help(file)


class _Version(argparse.Action):
    """--version: print the version to standard output (or fail with `OutputError`), exit 0."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS)
        self.help = "show the version and exit"

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        write_text(f"slq {__version__}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``slq`` and its commands."""
    parser = _Parser(
        prog="slq",
        description=(
            "Stochastic Lanczos quadrature: eigenvalue densities of symmetric matrices "
            "from matrix-vector products."
        ),
        epilog="Run 'slq COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action=_Version)
    _add_verbose(parser, default=False)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", required=True
    )
    _add_demo(commands)
    _add_density(commands)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, default: Any) -> None:
    # A command's default must not overwrite a -v given before the command.
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log progress of the 'slq' logger to standard error",
    )


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="write the demo's figures and summary into a folder",
        description=(
            "Run the packaged demo and write its Hessian eigenvalue densities as PNG figures, "
            "summary.md and summary.json into --out. It needs the 'torch' and 'plot' extras "
            "and scikit-learn."
        ),
    )
    demo.add_argument(
        "--out", default="slq-demo", metavar="DIR", help="folder (default: %(default)s)"
    )
    demo.add_argument("--quick", action="store_true", help="smaller problems, for a fast check")
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="probe seed (default: 0)")
    _add_verbose(demo, default=argparse.SUPPRESS)


def _add_density(commands: Any) -> None:
    command = commands.add_parser(
        "density",
        help="estimate the eigenvalue density of a symmetric matrix stored in a file",
        description=(
            "Estimate the eigenvalue density of a real symmetric matrix by stochastic Lanczos "
            "quadrature and print its summaries: extreme Ritz values, |lambda_min|/lambda_max, "
            "the negative mass with its standard error and bracket, the outliers and the "
            "Wasserstein-1 error bound. FILE is a .npy array, a .npz archive (one array, or "
            "one named 'a', 'arr_0' or 'matrix'; or a scipy.sparse.save_npz file) or a "
            "Matrix Market .mtx file (sparse .npz and .mtx need scipy)."
        ),
    )
    command.add_argument("file", metavar="FILE", type=Path, help=".npy, .npz or .mtx file")
    command.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_NUM_STEPS,
        metavar="M",
        help="Lanczos steps (matrix-vector products) per probe, capped at n (default: %(default)s)",
    )
    command.add_argument(
        "--probes",
        type=int,
        default=DEFAULT_NUM_PROBES,
        metavar="K",
        help="random probes (default: %(default)s)",
    )
    command.add_argument("--seed", type=int, default=0, metavar="S", help="probe seed (default: 0)")
    command.add_argument(
        "--reorthogonalize",
        choices=REORTHOGONALIZE,
        default="full",
        help="how the Lanczos basis is kept orthogonal (default: %(default)s; see slq.lanczos)",
    )
    command.add_argument(
        "--plot",
        type=Path,
        metavar="PATH",
        help="also draw the density into PATH (needs matplotlib)",
    )
    axis = command.add_mutually_exclusive_group()
    axis.add_argument(
        "--linear",
        dest="xscale",
        action="store_const",
        const="linear",
        default="linear",
        help="--plot: linear eigenvalue axis, log density (the default)",
    )
    axis.add_argument(
        "--symlog",
        dest="xscale",
        action="store_const",
        const="symlog",
        help="--plot: symmetric-log eigenvalue axis, for spectra spanning decades",
    )
    command.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (non-finite numbers as null) instead of text",
    )
    _add_verbose(command, default=argparse.SUPPRESS)

"""`main`: parse the arguments, run the command, turn a usage error into one line and status 2."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from slq.apps.cli.demo import run_demo
from slq.apps.cli.density import run_density
from slq.apps.cli.errors import EXIT_ERROR, UsageError, one_line
from slq.apps.cli.parser import build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``slq`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success; 2 for a usage error or an input the command cannot use,
        reported as one line ``slq: error: ...`` on standard error.

    Examples
    --------
    >>> from slq.apps.cli import main
    >>> status = main(["--version"])  # doctest: +ELLIPSIS
    slq ...
    >>> status
    0
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors: argparse has printed
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    with _logging(verbose=args.verbose):
        try:
            return run_demo(args) if args.command == "demo" else run_density(args)
        except UsageError as failure:
            print(f"slq: error: {one_line(str(failure))}", file=sys.stderr)
            return EXIT_ERROR
        except BrokenPipeError:  # `slq density ... | head`: the reader has gone
            _silence_stdout()
            return 1


def _silence_stdout() -> None:
    """Point stdout at devnull, so that flushing it at exit raises no second BrokenPipeError.

    The recipe of the Python docs (library/signal.html, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file object
        pass


@contextmanager
def _logging(*, verbose: bool) -> Iterator[None]:
    """With `verbose`, send the "slq" logger's INFO records to stderr, for this call only."""
    if not verbose:
        yield
        return
    logger = logging.getLogger("slq")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("slq: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

"""`main`: parse the arguments, run the command, turn every failure into one line and a status."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from slq.apps.cli.demo import run_demo
from slq.apps.cli.density import run_density
from slq.apps.cli.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT,
    OutputError,
    UsageError,
    one_line,
)
from slq.apps.cli.output import check_stdout, flush_stdout, say, silence_stdout
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
        reported as one line ``slq: error: ...`` on standard error before
        anything is computed; 1 when output was lost (standard output or the
        figure could not be written), also as one line; 130 after Ctrl-C.

    Examples
    --------
    >>> from slq.apps.cli import main
    >>> status = main(["--version"])  # doctest: +ELLIPSIS
    slq ...
    >>> status
    0
    """
    try:
        status = _run(argv)
        flush_stdout()  # whatever is still buffered: its loss must not exit 0
    except KeyboardInterrupt:
        say("slq: interrupted")
        return EXIT_INTERRUPTED
    except UsageError as failure:
        say(f"slq: error: {one_line(str(failure))}")
        return EXIT_ERROR
    except (OutputError, BrokenPipeError) as failure:
        silence_stdout()
        reason = failure if isinstance(failure, OutputError) else "standard output was closed"
        say(f"slq: error: {one_line(str(reason))}")
        return EXIT_OUTPUT
    return status


def _run(argv: Sequence[str] | None) -> int:
    """Parse `argv` and run its command; argparse's own exits become a status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors: argparse has printed
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    check_stdout()
    with _logging(verbose=args.verbose):
        return run_demo(args) if args.command == "demo" else run_density(args)


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

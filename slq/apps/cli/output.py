"""Standard output of the commands: text that cannot be written is an error, never lost silently."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from typing import TextIO

from slq.apps.cli.errors import OutputError, UsageError

__all__ = ["check_stdout", "flush_stdout", "say", "silence_stdout", "write_lines", "write_text"]


def check_stdout() -> None:
    """Refuse to run when standard output is closed (``slq density a.npy >&-``).

    Python then sets `sys.stdout` to None and `print` writes nothing: the
    result would be lost while the status said success.
    """
    if sys.stdout is None:
        msg = "standard output is closed: the result could not be written"
        raise UsageError(msg)


def write_lines(lines: Iterable[str]) -> None:
    """Write `lines` to standard output and flush it, or raise `OutputError`."""
    write_text("".join(f"{line}\n" for line in lines))


def write_text(text: str) -> None:
    """Write `text` to standard output and flush it, or raise `OutputError`."""
    if sys.stdout is None:
        msg = "standard output is closed"
        raise OutputError(msg)
    try:
        sys.stdout.write(text)
    except (OSError, ValueError) as error:  # ValueError: stdout closed by the program
        raise _lost(error) from error
    flush_stdout()


def flush_stdout() -> None:
    """Flush standard output, or raise `OutputError` saying why it failed."""
    stream = sys.stdout
    if stream is None:
        return
    try:
        stream.flush()
    except (OSError, ValueError) as error:
        raise _lost(error) from error


def say(message: str, stream: TextIO | None = None) -> None:
    """Write one line to `stream` (default standard error), ignoring a failure to write it.

    For messages about the run, not its result: when standard error itself
    cannot be written there is nobody left to tell.
    """
    stream = sys.stderr if stream is None else stream
    if stream is None:  # stderr closed: `print(file=None)` would write to stdout
        return
    # Closed, full, or replaced by an odd object: there is nobody left to tell.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(message, file=stream, flush=True)


def silence_stdout() -> None:
    """Point stdout at devnull, so that Python's own flush at exit fails no second time.

    The recipe of the Python docs (library/signal.html, "Note on SIGPIPE"):
    the unwritten text stays in stdout's buffer, and exiting would print an
    "Exception ignored" traceback and change the exit status to 120.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file object
        pass


def _lost(error: OSError | ValueError) -> OutputError:
    if isinstance(error, (BrokenPipeError, ValueError)):
        return OutputError("standard output was closed before the result was written")
    reason = error.strerror or str(error) or type(error).__name__
    return OutputError(f"cannot write the result to standard output: {reason}")

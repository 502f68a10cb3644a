"""What every command shares: its errors, their exit statuses, and the checks of --seed."""

from __future__ import annotations

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OUTPUT",
    "OutputError",
    "UsageError",
    "check_seed",
    "missing",
    "one_line",
]

EXIT_ERROR = 2
"""Exit status of a usage or input error, as for argparse's own usage errors."""
EXIT_OUTPUT = 1
"""Exit status when output was lost: standard output or the figure could not be written."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C: 128 + SIGINT, as a shell reports a process killed by it."""

# What to install for a missing module, where the distribution is named otherwise.
_INSTALL = {"matplotlib": "'slq[plot]'", "torch": "'slq[torch]'", "sklearn": "scikit-learn"}


class UsageError(Exception):
    """An error the user can fix: reported as one line with exit status 2."""


class OutputError(Exception):
    """Output that could not be written (a full disk, a closed pipe): one line, exit status 1."""


def one_line(message: str) -> str:
    """Return `message` with its runs of whitespace, newlines included, as single spaces."""
    return " ".join(message.split())


def missing(error: ImportError, what: str) -> str:
    """Say which optional dependency `what` needs, from an ImportError."""
    name = (error.name or "").partition(".")[0]
    if name and name != "slq":
        return f"{what} needs {name}: pip install {_INSTALL.get(name, name)}"
    return f"{what} is unavailable: {error}"


def check_seed(seed: int) -> None:
    """Refuse a negative --seed."""
    if seed < 0:
        msg = f"--seed must be >= 0, got {seed}"
        raise UsageError(msg)

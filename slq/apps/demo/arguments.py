"""The checks `run` makes before any work: its arguments and the optional dependencies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from slq.apps.demo.config import FULL, QUICK, Config

__all__ = ["check_arguments", "require"]

_HINT = (
    "slq.apps.demo needs torch, scikit-learn and matplotlib: "
    "pip install 'slq[torch,plot]' scikit-learn"
)


def check_arguments(out: Any, quick: Any, seed: Any, progress: Any) -> tuple[Path, Config, int]:
    """Return the output folder, the configuration and the seed, or raise for a bad argument."""
    if not isinstance(out, (str, os.PathLike)):
        msg = f"out must be a path (str or os.PathLike), got {type(out).__name__}"
        raise TypeError(msg)
    path = Path(out)
    if path.exists() and not path.is_dir():
        msg = f"out must be a folder, got the file {str(path)!r}"
        raise ValueError(msg)
    if not isinstance(quick, bool):
        msg = f"quick must be True or False, got {quick!r}"
        raise TypeError(msg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        msg = f"seed must be an integer, got {seed!r}"
        raise TypeError(msg)
    if seed < 0:
        msg = f"seed must be >= 0, got {seed}"
        raise ValueError(msg)
    if progress is not None and not isinstance(progress, bool):
        msg = f"progress must be True, False or None, got {progress!r}"
        raise TypeError(msg)
    return path, QUICK if quick else FULL, int(seed)


def require() -> None:
    """Import the demo's dependencies, or raise an ImportError that says how to install them."""
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise ImportError(_HINT) from error

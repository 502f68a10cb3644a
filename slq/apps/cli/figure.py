"""The figure of ``slq density --plot PATH``: its path checked before the run, then drawn."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from slq.apps.cli.errors import OutputError, UsageError

__all__ = ["DEFAULT_FORMAT", "plot_path", "save_figure"]

DEFAULT_FORMAT = "png"
"""The format of a --plot path without a suffix: the suffix is added, and the path reported."""
_DPI = 150
_PLOT_HINT = "pip install 'slq[plot]'"


def plot_path(path: Path) -> Path:
    """Return the file --plot will write, after checking that it can be written.

    A path without a suffix gets ``.png``. Refuses a missing matplotlib, an
    unknown format, a folder that does not exist or cannot be written into,
    and a path that is a folder or a read-only file: all before the run.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from slq.apps.cli.figure import plot_path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_path(Path(folder) / "density").name
    'density.png'
    """
    if importlib.util.find_spec("matplotlib") is None:
        msg = f"--plot needs matplotlib: {_PLOT_HINT}"
        raise UsageError(msg)
    from matplotlib.backend_bases import FigureCanvasBase

    if path.is_dir():
        msg = f"--plot: {path} is a folder; give a file name"
        raise UsageError(msg)
    if not path.suffix:
        path = path.with_name(f"{path.name.rstrip('.')}.{DEFAULT_FORMAT}")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        allowed = ", ".join(sorted(formats))
        msg = f"--plot: unknown figure format {path.suffix!r}; use one of {allowed}"
        raise UsageError(msg)
    _check_writable(path)
    return path


def _check_writable(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        msg = f"--plot: folder {folder} does not exist"
        raise UsageError(msg)
    if path.is_dir():
        msg = f"--plot: {path} is a folder; give a file name"
        raise UsageError(msg)
    if path.exists() and not os.access(path, os.W_OK):
        msg = f"--plot: {path} cannot be written (permission denied)"
        raise UsageError(msg)
    try:  # the one test that holds for every cause: a file can be made there
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        msg = f"--plot: cannot write into folder {folder}: {error.strerror or error}"
        raise UsageError(msg) from error


def save_figure(dos: Any, path: Path, *, title: str, xscale: str = "linear") -> None:
    """Draw `dos` into `path` (matplotlib's object API: no pyplot state), or raise `OutputError`.

    `xscale` is the eigenvalue axis, ``"linear"`` or ``"symlog"`` (`slq.plotting.plot_density`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import slq
    >>> from slq.apps.cli.figure import save_figure
    >>> dos = slq.density(np.diag([1.0, 2.0, 3.0]), num_probes=2, seed=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_figure(dos, Path(folder) / "a.png", title="diag(1, 2, 3)")
    ...     (Path(folder) / "a.png").stat().st_size > 0
    True
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = dos.plot(figure.subplots(), xscale=xscale)
    ax.set_title(title)
    try:
        figure.savefig(path, dpi=_DPI, format=path.suffix[1:].lower())
    except (OSError, ValueError) as error:
        msg = f"--plot: cannot write {path}: {getattr(error, 'strerror', None) or error}"
        raise OutputError(msg) from error

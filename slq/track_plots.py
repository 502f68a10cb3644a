"""Figures of a spectrum over training: a heat map of the densities, and traces of summaries.

matplotlib is imported inside the functions, only when a figure is drawn.

`plot_heatmap` draws eigenvalue against step with the density as a
logarithmic colour, all densities smoothed by one kernel on one grid so that
colours compare across steps. `plot_traces` draws λ_max, the negative mass
and the outliers' positions against step, each with its uncertainty.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from slq._kernels import grid_points
from slq._validate import (
    check_bool,
    check_choice,
    check_open_interval,
    check_positive_float,
    check_positive_int,
)
from slq.estimate import student_t_quantile
from slq.track_summary import summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from slq.track import Track

__all__ = ["plot_heatmap", "plot_traces"]

_SCALES = ("linear", "symlog")
# The colour spans this many decades below the peak, as slq.plotting's density axis.
_DECADES = 6.0
# Half-width, in kernel widths, of the grid around the outermost Ritz values.
_PAD = 5.0
_HINT = "plotting needs matplotlib: pip install 'slq[plot]'"


def plot_heatmap(
    track: Track,
    ax: Axes | None = None,
    *,
    num: int = 256,
    sigma: float | None = None,
    scale: str = "linear",
    linthresh: float | None = None,
    cmap: Any = "viridis",
    colorbar: bool = True,
) -> Axes:
    """Draw the smoothed densities of a track as a heat map: step × eigenvalue, log colour.

    Each column is one record's density, smoothed by a Gaussian of width
    `sigma` on one grid of `num` eigenvalues covering every record's Ritz
    values: the same kernel at every step, so that colours compare. With
    ``scale="symlog"`` the eigenvalue axis is linear within ±`linthresh` and
    logarithmic beyond (outliers far from a bulk near zero), and the kernel
    widens to the grid's spacing where that exceeds `sigma`, so that a point
    mass between two grid points is never lost (a balloon estimator).

    Parameters
    ----------
    track : Track
        The records (`slq.load_track`).
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.
    num : int, default 256
        Grid points along the eigenvalue axis.
    sigma : float, optional
        Kernel width. Default: the median over records of
        `SpectralDensity.default_sigma` (linear) or of
        `SpectralDensity.bulk_sigma` (symlog, where the bulk must be resolved).
    scale : {"linear", "symlog"}
        The eigenvalue axis.
    linthresh : float, optional
        Half-width of the symlog axis' linear part; default `sigma`.
    cmap : str or matplotlib Colormap, default "viridis"
        The colours, dark for the least density shown.
    colorbar : bool, default True
        Add a colour bar labelled "density".

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import tempfile
    >>> import numpy as np
    >>> import slq
    >>> from slq.track_plots import plot_heatmap
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=20, num_probes=2)
    >>> for step in range(4):
    ...     spectrum = np.concatenate([np.linspace(-1.0, 1.0, 99), [10.0 * (step + 1)]])
    ...     _ = tracker.record(step, np.diag(spectrum))
    >>> plot_heatmap(slq.load_track(tracker.path), scale="symlog").get_yscale()
    'symlog'
    """
    _require_matplotlib()
    records = _check_track(track)
    ax = _check_ax(ax)
    num = check_positive_int("num", num)
    symlog = check_choice("scale", scale, _SCALES) == "symlog"
    sigma = _common_sigma(records, sigma, symlog)
    linthresh = sigma if linthresh is None else check_positive_float("linthresh", linthresh)
    check_bool("colorbar", colorbar)
    _check_cmap(cmap)
    eigenvalues = _grid(records, num, sigma, linthresh if symlog else None)
    values = np.stack([_smoothed(r.density, eigenvalues, sigma) for r in records], axis=1)
    return _draw_heatmap(ax, track.steps, eigenvalues, values, symlog, linthresh, cmap, colorbar)


def _common_sigma(records: Sequence[Any], sigma: Any, symlog: bool) -> float:
    if sigma is not None:
        return check_positive_float("sigma", sigma)
    widths = [r.density.bulk_sigma() if symlog else r.density.default_sigma() for r in records]
    return float(np.median(widths)) or 1.0


def _grid(records: Sequence[Any], num: int, sigma: float, linthresh: float | None) -> np.ndarray:
    low = min(r.density.lambda_min for r in records) - _PAD * sigma
    high = max(r.density.lambda_max for r in records) + _PAD * sigma
    return grid_points(low, high, max(num, 2), linthresh)


def _smoothed(density: Any, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Return the probe mean of Σ τ_i N(t; θ_i, σ_t²), σ_t = max(σ, the grid's local spacing).

    On an equispaced grid finer than σ this is `SpectralDensity.evaluate`.
    """
    spacing = np.gradient(grid)
    width = np.maximum(sigma, spacing)[None, :]
    nodes, weights = density.nodes.ravel(), density.weights.ravel() / density.num_probes
    used = weights > 0.0
    z = (grid[None, :] - nodes[used, None]) / width
    kernel = np.exp(-0.5 * z * z) / (width * math.sqrt(2.0 * math.pi))
    return np.asarray(weights[used] @ kernel)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Return cell edges around sorted `centres`: midpoints, the ends half a gap out."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])


def _draw_heatmap(
    ax: Axes,
    steps: np.ndarray,
    eigenvalues: np.ndarray,
    values: np.ndarray,
    symlog: bool,
    linthresh: float,
    cmap: Any,
    colorbar: bool,
) -> Axes:
    from matplotlib.colors import LogNorm

    peak = float(values.max()) if values.size and values.max() > 0.0 else 1.0
    floor = peak * 10.0**-_DECADES
    norm = LogNorm(vmin=floor, vmax=peak)
    x, y = _edges(steps.astype(float)), _edges(eigenvalues)
    mesh = ax.pcolormesh(x, y, np.maximum(values, floor), norm=norm, cmap=cmap, shading="flat")
    if symlog:
        ax.set_yscale("symlog", linthresh=linthresh)
    ax.set_xlabel("step")
    ax.set_ylabel(r"eigenvalue $\lambda$")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="density")
    return ax


def plot_traces(
    track: Track, ax: Sequence[Axes] | None = None, *, confidence: float = 0.95
) -> list[Axes]:
    r"""Draw λ_max, the negative mass and the outliers' positions against step.

    Three panels sharing the step axis, each with its uncertainty:

    - λ_max, the largest Ritz value, with its residual bound as an error bar
      (an eigenvalue lies within it: Parlett 1998, Thm 4.5.1);
    - the negative mass (`SpectralDensity.negative_mass`) with its
      quadrature bracket as a band and its probe error as error bars
      (`confidence` Student-t interval);
    - each outlier's position (`SpectralDensity.outliers`) as a point.

    Parameters
    ----------
    track : Track
        The records (`slq.load_track`).
    ax : sequence of three matplotlib Axes, optional
        Where to draw; a new figure with three rows if None.
    confidence : float, default 0.95
        Of the negative mass' probe-error bars.

    Returns
    -------
    list of matplotlib.axes.Axes
        The three panels.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import tempfile
    >>> import numpy as np
    >>> import slq
    >>> from slq.track_plots import plot_traces
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=20, num_probes=2)
    >>> for step in range(3):
    ...     _ = tracker.record(step, np.diag(np.linspace(-1.0 / (step + 1), 1.0, 50)))
    >>> [a.get_ylabel() for a in plot_traces(slq.load_track(tracker.path))]
    ['$\\lambda_{max}$', 'negative mass', 'outliers']
    """
    _require_matplotlib()
    records = _check_track(track)
    axes = _check_axes(ax)
    confidence = _check_confidence(confidence)
    table = summarize(records)
    steps = table.column("step")
    _trace_lambda_max(axes[0], steps, table)
    t = student_t_quantile(confidence, max(records[0].density.num_probes - 1, 1))
    _trace_negative_mass(axes[1], steps, table, t)
    _trace_outliers(axes[2], table)
    axes[-1].set_xlabel("step")
    return list(axes)


def _trace_lambda_max(ax: Axes, steps: np.ndarray, table: Any) -> None:
    residual = table.column("lambda_max_residual")
    error = np.where(np.isfinite(residual), residual, 0.0)
    ax.errorbar(steps, table.column("lambda_max"), yerr=error, marker="o", capsize=3)
    ax.set_ylabel(r"$\lambda_{max}$")


def _trace_negative_mass(ax: Axes, steps: np.ndarray, table: Any, t: float) -> None:
    lower, upper = table.column("negative_mass_lower"), table.column("negative_mass_upper")
    ax.fill_between(steps, lower, upper, alpha=0.3, label="quadrature bracket")
    stderr = np.nan_to_num(table.column("negative_mass_stderr"))
    mass = table.column("negative_mass")
    ax.errorbar(steps, mass, yerr=t * stderr, marker="o", capsize=3, label="estimate, probe error")
    ax.set_ylabel("negative mass")
    ax.legend(frameon=False, fontsize="small")


def _trace_outliers(ax: Axes, table: Any) -> None:
    points = [(row.step, x) for row in table for x in row.outliers]
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, "o", linestyle="none")
        if min(ys) > 0.0 and max(ys) > 10.0 * min(ys):  # outliers decades apart
            ax.set_yscale("log")
    ax.set_ylabel("outliers")


def _require_matplotlib() -> None:
    try:
        importlib.import_module("matplotlib")
    except ImportError as error:
        raise ImportError(_HINT) from error


def _check_track(track: Any) -> list[Any]:
    # By what it offers, not by class: `Track` calls this module, which need not import it.
    if not all(hasattr(track, name) for name in ("steps", "densities", "settings")):
        msg = f"track must be a Track (from slq.load_track), got {type(track).__name__}"
        raise TypeError(msg)
    if len(track) == 0:
        msg = "track must hold at least one record, got none"
        raise ValueError(msg)
    return list(track)


def _check_ax(ax: Any) -> Axes:
    from matplotlib import pyplot
    from matplotlib.axes import Axes

    if ax is None:
        return pyplot.subplots(layout="constrained")[1]
    if not isinstance(ax, Axes):
        msg = f"ax must be a matplotlib Axes or None, got {type(ax).__name__}"
        raise TypeError(msg)
    return ax


def _check_axes(ax: Any) -> list[Axes]:
    from matplotlib import pyplot
    from matplotlib.axes import Axes

    if ax is None:
        return list(pyplot.subplots(3, 1, sharex=True, layout="constrained", figsize=(6, 7))[1])
    axes = list(ax) if isinstance(ax, (Sequence, np.ndarray)) else None
    if axes is None or len(axes) != 3 or not all(isinstance(a, Axes) for a in axes):
        msg = f"ax must be a sequence of three matplotlib Axes or None, got {ax!r}"
        raise TypeError(msg)
    return axes


def _check_cmap(cmap: Any) -> None:
    from matplotlib import colormaps
    from matplotlib.colors import Colormap

    if not isinstance(cmap, Colormap) and not (isinstance(cmap, str) and cmap in colormaps):
        msg = f"cmap must be a matplotlib colormap or its name, got {cmap!r}"
        raise ValueError(msg)


def _check_confidence(confidence: Any) -> float:
    return check_open_interval("confidence", confidence, 0.0, 1.0)

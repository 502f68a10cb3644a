"""Figures of spectral densities: a bulk near zero and outliers orders of magnitude away.

matplotlib is imported inside the functions, only when a figure is drawn, so
that ``import slq`` stays light (install it with ``pip install 'slq[plot]'``).

By default the eigenvalue axis is linear and the density axis logarithmic, as
in Ghorbani, Krishnan & Xiao (2019, "An investigation into neural net
optimization via Hessian eigenvalue density"): the decades the density spans
are visible and distances along the spectrum are not distorted. A
symmetric-log eigenvalue axis (``xscale="symlog"``, linear within about one
bulk kernel width of zero) suits spectra spanning decades. In the "bulk plus
outliers" view each converged outlier is drawn as a point mass (a stem with
its Student-t interval as an error bar) on its own axis, on the right and
labelled as a mass (a fraction of the eigenvalues), not as a density.
"""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from slq._kernels import grid_points, smooth
from slq._validate import check_bool, check_choice, check_open_interval, check_positive_float
from slq.estimate import student_t_quantile
from slq.summaries import Outliers

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from slq.spectral_density import SpectralDensity

__all__ = ["plot_densities", "plot_density"]

# The density axis spans this many decades below the peak (fewer if an outlier's
# mass lies lower): the bulk's Gaussian tails have fallen to 1e-6 by 5.3 σ.
_DECADES = 6.0
# Curves and bands are clipped ten times below the axis' floor, so that their
# tails leave the plot through its bottom edge instead of running along it.
_CLIP = 0.1
# Half-width, in kernel widths, of the curve's support around the outermost node.
_PAD = 5.0
# Outliers whose positions are written next to their stems, at most.
_MAX_ANNOTATED = 8
_LINE_WIDTH = 1.5
_STEM_WIDTH = 0.8
_XSCALES = ("linear", "symlog")
_MASS_LABEL = "mass (fraction of eigenvalues)"
_BAND_ALPHA = 0.3
_HINT = "plotting needs matplotlib: pip install 'slq[plot]'"
# What a density offers that the figures use.
_DENSITY_MEMBERS = ("nodes", "weights", "num_probes", "outliers", "bulk_sigma", "default_sigma")


@dataclass(frozen=True)
class _Layer:
    """What one density draws: a curve with its band, and point masses."""

    grid: np.ndarray
    curve: np.ndarray
    band: tuple[np.ndarray, np.ndarray] | None
    positions: np.ndarray
    masses: np.ndarray
    mass_band: tuple[np.ndarray, np.ndarray] | None


def plot_density(
    density: SpectralDensity,
    ax: Axes | None = None,
    *,
    log: bool = True,
    xscale: str = "linear",
    band: bool = True,
    outliers: bool | Outliers = True,
    sigma: float | None = None,
    num: int = 1024,
    label: str | None = None,
    color: Any = None,
    confidence: float = 0.95,
) -> Axes:
    """Plot a spectral density: the bulk as a curve with its probe band, outliers as stems.

    Parameters
    ----------
    density : SpectralDensity
        The result of `slq.density`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure's axes (``pyplot.subplots()``).
    log : bool, default True
        Logarithmic density axis, whose floor lies 6 decades below the peak;
        the curve is clipped under it (and a logarithmic mass axis). False:
        linear.
    xscale : {"linear", "symlog"}, default "linear"
        The eigenvalue axis: linear, or symmetric-log (linear within
        ``density.bulk_sigma()`` of zero, logarithmic beyond) for spectra
        spanning decades.
    band : bool, default True
        Shade the pointwise Student-t `confidence` band over the probes
        (needs at least 2 probes; nothing is shaded with one).
    outliers : bool or Outliers, default True
        True: the bulk (`SpectralDensity.bulk`) smoothed at the bulk's own
        width, and each outlier of ``density.outliers()`` as a stem whose
        height is its mass (fraction of eigenvalues, not a density, on a
        second axis at the right), marked with its position. An `Outliers`
        found with other settings is used as given. False: the plain
        smoothed density (`SpectralDensity.evaluate`).
    sigma : float, optional
        Kernel width. Default ``density.bulk_sigma()``, except for the plain
        curve on linear axes: ``density.default_sigma()``.
    num : int, default 1024
        Points of the evaluation grid (≥ 2), equispaced in asinh(t / linthresh)
        on a symmetric-log axis. Points are added around any node that the
        grid would step over, so that narrow peaks keep their height.
    label : str, optional
        Legend entry of the curve; a legend is drawn when given.
    color : matplotlib color, optional
        Default: the axes' next color.
    confidence : float, default 0.95
        Coverage of the band, in (0, 1).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ImportError
        Without matplotlib.
    ValueError
        For num < 2, an unknown `xscale`, or a `confidence` or `sigma` out of range.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import slq
    >>> from slq.plotting import plot_density
    >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
    >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
    >>> ax = plot_density(dos, label="1000 × 1000")
    >>> ax.get_xscale(), ax.get_yscale()
    ('linear', 'log')
    >>> matplotlib.pyplot.close(ax.figure)
    """
    _require_matplotlib()
    _check_density(density)
    num, confidence = _check_num(num), _check_confidence(confidence)
    _check_style(ax, log, band, sigma)
    _check_label("label", label)
    _check_color("color", color)
    symlog = _check_xscale(xscale) == "symlog"
    found = _outliers_of(density, outliers)
    linthresh = density.bulk_sigma(found) if symlog else None
    sigma = _sigma(density, sigma, found, log)
    low, high = _support(density, sigma, found)
    layer = _layer(density, grid_points(low, high, num, linthresh), sigma, found, band, confidence)
    ax = _axes(ax)
    floor = _floor([layer]) if log else 0.0
    mass_ax = _mass_axes(ax, [layer], log)
    _draw(ax, mass_ax, layer, floor, label, color, annotate=True)
    _finish(ax, mass_ax, [layer], floor, linthresh, legend=label is not None)
    return ax


def plot_densities(
    densities: Sequence[SpectralDensity],
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    *,
    log: bool = True,
    xscale: str = "linear",
    band: bool = True,
    outliers: bool = True,
    sigma: float | None = None,
    num: int = 1024,
    colors: Sequence[Any] | None = None,
    confidence: float = 0.95,
) -> Axes:
    """Overlay several spectral densities on one axes: with and without BN, over training.

    Each density is drawn as by `plot_density` (its own kernel width and
    outliers), in its own color, on a common grid covering all of them; on
    log axes they share the smallest ``bulk_sigma()`` as the symmetric-log
    linear threshold, so that the narrowest bulk is resolved.

    Parameters
    ----------
    densities : sequence of SpectralDensity
        At least one.
    labels : sequence of str, optional
        One legend entry per density; the legend is drawn when given.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure's axes.
    log, xscale, band, outliers, sigma, num, confidence
        As in `plot_density`; `sigma`, when given, is used for every density.
    colors : sequence of matplotlib colors, optional
        One per density; default the axes' color cycle.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ImportError
        Without matplotlib.
    ValueError
        For no densities, as many labels or colors as densities, or the
        errors of `plot_density`.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import slq
    >>> from slq.plotting import plot_densities
    >>> narrow = slq.density(np.diag(np.linspace(-0.1, 0.1, 300)), num_probes=3, seed=0)
    >>> wide = slq.density(np.diag(np.linspace(-1.0, 1.0, 300)), num_probes=3, seed=0)
    >>> ax = plot_densities([narrow, wide], labels=["narrow", "wide"])
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['narrow', 'wide']
    >>> matplotlib.pyplot.close(ax.figure)
    """
    _require_matplotlib()
    densities = _check_densities(densities)
    labels_ = _check_per_density("labels", labels, len(densities))
    colors_ = _check_per_density("colors", colors, len(densities))
    num, confidence = _check_num(num), _check_confidence(confidence)
    _check_style(ax, log, band, sigma)
    for label in labels_:
        _check_label("each of labels", label)
    for color in colors_:
        _check_color("each of colors", color)
    symlog = _check_xscale(xscale) == "symlog"
    found = [_outliers_of(d, outliers) for d in densities]
    sigmas = [_sigma(d, sigma, f, log) for d, f in zip(densities, found, strict=True)]
    linthresh = (
        min(d.bulk_sigma(f) for d, f in zip(densities, found, strict=True)) if symlog else None
    )
    supports = [_support(d, s, f) for d, s, f in zip(densities, sigmas, found, strict=True)]
    grid = grid_points(min(s[0] for s in supports), max(s[1] for s in supports), num, linthresh)
    layers = [
        _layer(d, grid, s, f, band, confidence)
        for d, s, f in zip(densities, sigmas, found, strict=True)
    ]
    ax = _axes(ax)
    floor = _floor(layers) if log else 0.0
    mass_ax = _mass_axes(ax, layers, log)
    for layer, label, color in zip(layers, labels_, colors_, strict=True):
        _draw(ax, mass_ax, layer, floor, label, color, annotate=False)
    _finish(ax, mass_ax, layers, floor, linthresh, legend=labels is not None)
    return ax


def _require_matplotlib() -> None:
    """Import matplotlib, or raise an ImportError that says how to install it."""
    try:
        importlib.import_module("matplotlib")
    except ImportError as error:
        raise ImportError(_HINT) from error


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    from matplotlib import pyplot

    _, new = pyplot.subplots(layout="constrained")
    return new


def _is_density(obj: Any) -> bool:
    """Whether `obj` is a result to draw: Gauss rules with outliers and a bulk width.

    Checked by what it offers rather than by class, so that this module, which
    `SpectralDensity.plot` calls, need not import the class.
    """
    return all(hasattr(obj, name) for name in _DENSITY_MEMBERS)


def _check_density(density: Any) -> None:
    if not _is_density(density):
        msg = f"density must be a SpectralDensity, got {type(density).__name__}"
        raise TypeError(msg)


def _check_densities(densities: Any) -> list[SpectralDensity]:
    if _is_density(densities):
        msg = "densities must be a sequence of SpectralDensity; plot one with plot_density"
        raise TypeError(msg)
    densities = list(densities)
    if not densities:
        msg = "densities must hold at least one SpectralDensity, got none"
        raise ValueError(msg)
    for density in densities:
        _check_density(density)
    return densities


def _check_per_density(name: str, values: Any, count: int) -> list[Any]:
    if values is None:
        return [None] * count
    if isinstance(values, str):
        msg = f"{name} must be a sequence with one entry per density, got the string {values!r}"
        raise TypeError(msg)
    values = list(values)
    if len(values) != count:
        msg = f"{name} must have one entry per density ({count}), got {len(values)}"
        raise ValueError(msg)
    return values


def _check_num(num: Any) -> int:
    if isinstance(num, bool) or not isinstance(num, numbers.Integral):
        msg = f"num must be an integer >= 2, got {num!r}"
        raise TypeError(msg)
    if num < 2:
        msg = f"num must be >= 2, got {num}"
        raise ValueError(msg)
    return int(num)


def _check_xscale(xscale: Any) -> str:
    return check_choice("xscale", xscale, _XSCALES)


def _check_confidence(confidence: Any) -> float:
    return check_open_interval("confidence", confidence, 0.0, 1.0)


def _check_style(ax: Any, log: Any, band: Any, sigma: Any) -> None:
    """Raise for an `ax` that is not a matplotlib Axes, a flag that is not a bool, a bad `sigma`."""
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        msg = f"ax must be a matplotlib Axes or None, got {type(ax).__name__}"
        raise TypeError(msg)
    check_bool("log", log)
    check_bool("band", band)
    if sigma is not None:
        check_positive_float("sigma", sigma)


def _check_label(name: str, label: Any) -> None:
    if label is not None and not isinstance(label, str):
        msg = f"{name} must be a string or None, got {label!r}"
        raise TypeError(msg)


def _check_color(name: str, color: Any) -> None:
    from matplotlib.colors import is_color_like

    if color is not None and not is_color_like(color):
        msg = f"{name} must be a matplotlib color or None, got {color!r}"
        raise ValueError(msg)


def _outliers_of(density: SpectralDensity, outliers: bool | Outliers) -> Outliers | None:
    """Return the outliers drawn as point masses, or None for the plain smoothed curve."""
    if isinstance(outliers, Outliers):
        if outliers.members.shape != density.nodes.shape:
            msg = "outliers must come from this density: its members do not match its nodes"
            raise ValueError(msg)
        return outliers
    if not isinstance(outliers, (bool, np.bool_)):
        msg = f"outliers must be True, False or an Outliers, got {type(outliers).__name__}"
        raise TypeError(msg)
    return density.outliers() if outliers else None


def _sigma(
    density: SpectralDensity, sigma: float | None, found: Outliers | None, log: bool
) -> float:
    """Return the kernel width: the bulk's, unless the plain curve goes on linear axes."""
    if sigma is not None:
        return check_positive_float("sigma", sigma)
    if found is None and not log:
        return density.default_sigma()
    return density.bulk_sigma(found)


def _support(density: SpectralDensity, sigma: float, found: Outliers | None) -> tuple[float, float]:
    """Where the curve is above the floor: its nodes (outliers excepted) ± 5 σ."""
    used = density.weights > 0.0
    if found is not None:
        used &= ~found.members
    nodes = density.nodes[used]
    return float(nodes.min()) - _PAD * sigma, float(nodes.max()) + _PAD * sigma


def _refine(grid: np.ndarray, nodes: np.ndarray, sigma: float) -> np.ndarray:
    """Add points within 6 σ of each node where the grid is coarser than σ / 2.

    Far out on a symmetric-log grid the spacing grows like |t|, so a kernel of
    the bulk's width around an outlying node could fall between two points.
    """
    centers = np.unique(np.round(nodes / sigma)) * sigma
    centers = centers[(centers >= grid[0]) & (centers <= grid[-1])]
    index = np.clip(np.searchsorted(grid, centers), 1, grid.size - 1)
    coarse = centers[grid[index] - grid[index - 1] > 0.5 * sigma]
    if coarse.size == 0:
        return grid
    extra = coarse[:, None] + sigma * np.linspace(-6.0, 6.0, 61)[None, :]
    extra = extra[(extra > grid[0]) & (extra < grid[-1])]
    return np.union1d(grid, extra)


def _layer(
    density: SpectralDensity,
    grid: np.ndarray,
    sigma: float,
    found: Outliers | None,
    band: bool,
    confidence: float,
) -> _Layer:
    """Evaluate the curve (bulk or plain) and its band; collect the point masses."""
    weights = density.weights if found is None else np.where(found.members, 0.0, density.weights)
    grid = _refine(grid, density.nodes[weights > 0.0], sigma)
    curves = smooth(density.nodes, weights, grid, sigma, "gaussian")
    curve = curves.mean(axis=0)
    if not (band and density.num_probes >= 2):
        return _Layer(grid, curve, None, *_point_masses(found), None)
    t = student_t_quantile(confidence, density.num_probes - 1)
    half = t * curves.std(axis=0, ddof=1) / np.sqrt(density.num_probes)
    positions, masses = _point_masses(found)
    mass_half = t * found.mass_stderr if found is not None else np.zeros(0)
    return _Layer(
        grid,
        curve,
        (curve - half, curve + half),
        positions,
        masses,
        (masses - mass_half, masses + mass_half),
    )


def _point_masses(found: Outliers | None) -> tuple[np.ndarray, np.ndarray]:
    if found is None:
        return np.zeros(0), np.zeros(0)
    return found.positions, found.masses


def _floor(layers: list[_Layer]) -> float:
    """Return the log density axis' bottom: 6 decades below the peak."""
    peak = max(float(layer.curve.max()) for layer in layers)
    return peak * 10.0**-_DECADES if peak > 0.0 else 1e-300


def _mass_axes(ax: Axes, layers: list[_Layer], log: bool) -> Axes | None:
    """Return a second y axis at the right for the point masses, or None without any.

    A point mass is a fraction of the eigenvalues, not a density: drawn on the
    density's axis its height would be read in the wrong unit.
    """
    masses = np.concatenate([layer.masses for layer in layers])
    if masses.size == 0:
        return None
    mass_ax = ax.twinx()
    mass_ax.set_gid("masses")
    if log:
        mass_ax.set_yscale("log")
    tops = [layer.masses if layer.mass_band is None else layer.mass_band[1] for layer in layers]
    top = max(float(t.max()) for t in tops if t.size)
    positive = masses[masses > 0.0]
    bottom = 0.3 * float(positive.min()) if log and positive.size else 0.0
    mass_ax.set_ylim(bottom, top * (3.0 if log else 1.15))
    mass_ax.set_ylabel(_MASS_LABEL)
    return mass_ax


def _draw(
    ax: Axes,
    mass_ax: Axes | None,
    layer: _Layer,
    floor: float,
    label: str | None,
    color: Any,
    *,
    annotate: bool,
) -> None:
    """Draw one layer's curve and band on `ax`, its stems on `mass_ax`, in one color."""
    clip = _CLIP * floor
    (line,) = ax.plot(
        layer.grid, np.maximum(layer.curve, clip), color=color, lw=_LINE_WIDTH, label=label
    )
    color = line.get_color()
    if layer.band is not None:
        low, high = (np.maximum(limit, clip) for limit in layer.band)
        ax.fill_between(layer.grid, low, high, color=color, alpha=_BAND_ALPHA, lw=0)
    if layer.positions.size and mass_ax is not None:
        _draw_stems(mass_ax, layer, color, single=annotate)


def _draw_stems(ax: Axes, layer: _Layer, color: Any, *, single: bool) -> None:
    """Point masses on the mass axis: a thin stem from its bottom, a marker, an error bar.

    The error bar is the mass' Student-t interval over the probes. A single
    density's outliers get a legend entry and their positions written above
    them; in an overlay the curve's entry stands for its stems.
    """
    count = layer.positions.size
    bottom = ax.get_ylim()[0]
    ax.vlines(layer.positions, bottom, layer.masses, colors=color, lw=_STEM_WIDTH, ls=":")
    tops, yerr = layer.masses, None
    if layer.mass_band is not None:
        low, tops = (np.maximum(limit, bottom) for limit in layer.mass_band)
        yerr = np.vstack([layer.masses - low, tops - layer.masses]).clip(min=0.0)
    label = f"{count} outlier{'s' if count > 1 else ''}" if single else "_outliers"
    bars = ax.errorbar(
        layer.positions,
        layer.masses,
        yerr=yerr,
        fmt="o",
        color=color,
        ms=4.5,
        capsize=3,
        label=label,
    )
    bars.lines[0].set_gid("outliers")
    if single and count <= _MAX_ANNOTATED:
        _annotate(ax, layer.positions, np.maximum(tops, layer.masses), color)


def _annotate(ax: Axes, positions: np.ndarray, heights: np.ndarray, color: Any) -> None:
    """Write each position just above its stem."""
    for position, height in zip(positions, heights, strict=True):
        ax.annotate(
            f"{position:.3g}",
            (position, height),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize="small",
            color=color,
        )


def _finish(
    ax: Axes,
    mass_ax: Axes | None,
    layers: list[_Layer],
    floor: float,
    linthresh: float | None,
    *,
    legend: bool,
) -> None:
    """Scales, limits, labels and legend."""
    if linthresh is not None:
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.xaxis.set_major_locator(_symlog_locator(linthresh, subs=(1.0,)))
        ax.xaxis.set_minor_locator(_symlog_locator(linthresh, subs=np.arange(2.0, 10.0)))
    top = _max_curve(layers)
    if floor > 0.0:
        ax.set_yscale("log")
        # Headroom of a tenth of the decades shown keeps labels inside the frame.
        top *= (top / floor) ** 0.1
    else:
        top *= 1.05
    ax.set_ylim(floor, top)
    ax.margins(x=0.02)
    ax.autoscale_view(scalex=True, scaley=False)
    ax.set_xlabel(r"eigenvalue $\lambda$")
    ax.set_ylabel("density")
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if mass_ax is not None:
            more = mass_ax.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        ax.legend(handles, labels, frameon=False)


def _max_curve(layers: list[_Layer]) -> float:
    """Return the top of the highest curve or of its band."""
    return max(
        float((layer.curve if layer.band is None else layer.band[1]).max()) for layer in layers
    )


def _symlog_locator(linthresh: float, subs: Any) -> Any:
    """Return a symmetric-log locator with ticks at 0 and from the first decade ≥ linthresh.

    Decades below linthresh sit in the linear part of the axis, a fraction of
    a decade from 0, where their labels would overprint each other. The
    locator's own threshold, not the scale's, decides where decades start.
    """
    from matplotlib.ticker import SymmetricalLogLocator

    decade = 10.0 ** np.ceil(np.log10(linthresh) - 1e-9)
    return SymmetricalLogLocator(linthresh=decade * (1.0 + 1e-9), base=10.0, subs=subs)

"""The figures: densities at the checkpoints, and the negative mass and extremes over training."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from slq.apps.demo.config import CHECKPOINTS, NETWORKS, THRESHOLD
from slq.apps.demo.measuring import Study
from slq.spectral_density import SpectralDensity

__all__ = ["write_figures"]


def _figure(width: float = 6.4, height: float = 4.4, **subplots: Any) -> tuple[Any, Any]:
    """Return a matplotlib Figure (no pyplot state) and its axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(**subplots)


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, dpi=120)
    return path


def write_figures(path: Path, studies: dict[str, Study]) -> list[Path]:
    """Draw the six figures into the folder `path`; return their paths."""
    files = [_densities_figure(path, study) for study in studies.values()]
    files += [_overlay_figure(path, studies), _outliers_figure(path, studies)]
    files += [_negative_mass_figure(path, studies), _extremes_figure(path, studies)]
    return files


def _densities_figure(path: Path, study: Study) -> Path:
    """Figure: one network's density at the three checkpoints."""
    from slq.plotting import plot_densities

    figure, ax = _figure()
    points = [study.checkpoints[name] for name in CHECKPOINTS]
    labels = [f"{CHECKPOINTS[name]}" for name in CHECKPOINTS]
    plot_densities([p.density for p in points], labels=labels, ax=ax)
    ax.set_title(f"Hessian eigenvalue density {NETWORKS[study.name]} (n = {study.num_params})")
    return _save(figure, path / f"densities_{study.name}.png")


def _overlay_figure(path: Path, studies: dict[str, Study]) -> Path:
    """Figure: the final densities with and without BN on one axes."""
    from slq.plotting import plot_densities

    figure, ax = _figure()
    ends = [studies[name].checkpoints["end"].density for name in NETWORKS]
    plot_densities(ends, labels=list(NETWORKS.values()), ax=ax, colors=["C3", "C0"])
    ax.set_title("Hessian eigenvalue density at the end of training")
    return _save(figure, path / "final_overlay.png")


def _outliers_figure(path: Path, studies: dict[str, Study]) -> Path:
    """Figure: each final density on its own, outliers as annotated point masses."""
    figure, axes = _figure(11.0, 4.4, ncols=2)
    for ax, name, color in zip(axes, NETWORKS, ["C3", "C0"], strict=True):
        studies[name].checkpoints["end"].density.plot(ax, label=NETWORKS[name], color=color)
        end = studies[name].checkpoints["end"].density
        ax.set_title(f"end of training, {NETWORKS[name]}: λ_max = {end.lambda_max:.3g}")
    _share_limits(axes)
    return _save(figure, path / "final_outliers.png")


def _share_limits(axes: Any) -> None:
    """Give the axes common limits, so that the spectra's extents compare at a glance."""
    for get, put in (("get_xlim", "set_xlim"), ("get_ylim", "set_ylim")):
        lows, highs = zip(*(getattr(ax, get)() for ax in axes), strict=True)
        for ax in axes:
            getattr(ax, put)(min(lows), max(highs))


def _track(study: Study, key: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the epochs and one quantity of each tracked point."""
    epochs = np.array([p.epoch for p in study.points])
    return epochs, np.array([key(p.density) for p in study.points], dtype=np.float64)


def _negative_mass_figure(path: Path, studies: dict[str, Study]) -> Path:
    """Figure: the mass below 0 and below -λ_max/100 over training, ± stderr, with brackets."""
    figure, axes = _figure(11.0, 4.4, ncols=2)
    for ax, scale in zip(axes, (0.0, THRESHOLD), strict=True):
        for name, color in zip(NETWORKS, ["C3", "C0"], strict=True):
            _negative_mass_curve(ax, studies[name], scale, color)
        ax.set_xlabel("epoch")
        ax.legend(frameon=False, fontsize="small")
    axes[0].set_ylim(bottom=0.0)
    # Late in training the resolved mass is a thousandth of the early one: log scale.
    axes[1].set_yscale("log")
    axes[1].set_ylim(bottom=_log_floor(axes[1]))
    axes[0].set_ylabel("fraction of eigenvalues < 0")
    axes[0].set_title("below 0 (band: quadrature bracket)")
    axes[1].set_ylabel(f"fraction of eigenvalues < -λ_max/{1 / THRESHOLD:.0f}")
    axes[1].set_title(f"below -λ_max/{1 / THRESHOLD:.0f} (band: quadrature bracket)")
    figure.suptitle("Negative-eigenvalue mass of the Hessian over training (± 1 stderr)")
    return _save(figure, path / "negative_mass.png")


def _log_floor(ax: Any) -> float:
    """Return a log axis' bottom: a third of the smallest positive value drawn, at least 1e-5."""
    values = [line.get_ydata() for line in ax.get_lines()]
    positive = np.concatenate([np.asarray(v, dtype=np.float64) for v in values])
    positive = positive[positive > 0.0]
    return max(1e-5, float(positive.min()) / 3.0) if positive.size else 1e-5


def _negative_mass_curve(ax: Any, study: Study, scale: float, color: str) -> None:
    """Draw one network's negative mass below -scale·λ_max: value ± stderr, bracket as a band."""
    masses = [p.density.negative_mass(scale * max(p.density.lambda_max, 0.0)) for p in study.points]
    epochs = np.array([p.epoch for p in study.points])
    lower, upper = np.array([m.lower for m in masses]), np.array([m.upper for m in masses])
    ax.fill_between(epochs, lower, upper, color=color, alpha=0.15, lw=0)
    ax.errorbar(
        epochs,
        [m.value for m in masses],
        yerr=[m.stderr for m in masses],
        color=color,
        marker="o",
        ms=4,
        capsize=3,
        label=NETWORKS[study.name],
    )


def _separation_of(dos: SpectralDensity) -> float:
    edge = dos.outliers().bulk[1]
    return dos.lambda_max / edge if edge > 0.0 else math.nan


def _extremes_figure(path: Path, studies: dict[str, Study]) -> Path:
    """Figure: λ_max, |λ_min|/λ_max, λ_max over the bulk's edge and the outliers over training."""
    figure, axes = _figure(6.4, 8.8, nrows=4, sharex=True)
    quantities = [
        (lambda d: d.lambda_max, "λ_max", "log"),
        (lambda d: max(-d.lambda_min, 0.0) / d.lambda_max, "|λ_min| / λ_max", "log"),
        (_separation_of, "λ_max / bulk's upper edge", "linear"),
        (lambda d: len(d.outliers()), "outliers", "linear"),
    ]
    for ax, (key, label, scale) in zip(axes, quantities, strict=True):
        for name, color in zip(NETWORKS, ["C3", "C0"], strict=True):
            epochs, values = _track(studies[name], key)
            ax.plot(epochs, values, "o-", color=color, ms=4, label=NETWORKS[name])
        ax.set_yscale(scale)
        ax.set_ylabel(label)
    steps, probes = studies["no_bn"].points[0].density.alpha.shape[::-1]
    axes[0].set_title(
        f"Extreme eigenvalues and outliers over training\n(each point: {steps} Lanczos steps "
        f"x {probes} probes)"
    )
    axes[-1].yaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(frameon=False)
    axes[-1].set_xlabel("epoch")
    return _save(figure, path / "extremes.png")

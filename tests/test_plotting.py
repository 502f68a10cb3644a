"""`slq.plotting`: the figures' scales, curves, bands and outlier stems, on the Agg backend."""

from __future__ import annotations

import io
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib import pyplot
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

import slq
from slq.plotting import plot_densities, plot_density

SPIKED = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    pyplot.close("all")


@pytest.fixture(scope="module")
def spiked() -> slq.SpectralDensity:
    return slq.density(np.diag(SPIKED), num_steps=40, num_probes=4, seed=0, probe="gaussian")


@pytest.fixture(scope="module")
def narrow() -> slq.SpectralDensity:
    return slq.density(np.diag(np.linspace(-0.1, 0.1, 200)), num_steps=20, num_probes=3, seed=1)


def curves(ax) -> list:
    return [line for line in ax.get_lines() if line.get_gid() != "outliers"]


def mass_axes(ax):
    twins = [other for other in ax.figure.axes if other.get_gid() == "masses"]
    return twins[0] if twins else None


def stems(ax) -> list:
    masses = mass_axes(ax)
    return [] if masses is None else [x for x in masses.get_lines() if x.get_gid() == "outliers"]


def bands(ax) -> list:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_default_is_a_linear_eigenvalue_axis_and_log_density(spiked) -> None:
    ax = plot_density(spiked)
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "log")
    assert ax.get_xlabel() == r"eigenvalue $\lambda$"  # mathtext, not a literal λ_max
    assert ax.get_ylabel() == "density"
    assert ax.get_title() == ""


def test_symlog_option_has_symlog_x_at_the_bulk_width(spiked) -> None:
    ax = plot_density(spiked, xscale="symlog")
    assert (ax.get_xscale(), ax.get_yscale()) == ("symlog", "log")
    assert ax.xaxis.get_transform().linthresh == pytest.approx(spiked.bulk_sigma())


def test_point_masses_are_on_their_own_axis_labelled_as_mass(spiked) -> None:
    ax = plot_density(spiked)
    masses = mass_axes(ax)
    assert masses is not None and masses.get_ylabel() == "mass (fraction of eigenvalues)"
    assert masses.get_yscale() == "log"
    assert stems(ax) and not [x for x in ax.get_lines() if x.get_gid() == "outliers"]
    assert mass_axes(plot_density(spiked, outliers=False)) is None


def test_linear_mode_has_linear_axes(spiked) -> None:
    ax = plot_density(spiked, log=False)
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "linear")
    assert ax.get_ylim()[0] == 0.0


def test_bulk_curve_is_the_bulk_density_clipped_above_zero(spiked) -> None:
    ax = plot_density(spiked)
    (line,) = curves(ax)
    t, y = line.get_xdata(), line.get_ydata()
    assert np.all(np.isfinite(y)) and np.all(y > 0.0)
    assert np.all(np.diff(t) > 0.0)
    floor = ax.get_ylim()[0]
    np.testing.assert_allclose(y, np.maximum(spiked.bulk(t), 0.1 * floor), rtol=1e-12)
    # Its support ends 5 bulk widths past the bulk's outermost nodes, well short of the outliers.
    assert t[-1] < 2.0
    assert y.max() > 1e4 * floor


def test_plain_curve_keeps_outlier_peaks_on_a_symlog_grid(spiked) -> None:
    ax = plot_density(spiked, outliers=False, xscale="symlog")
    (line,) = curves(ax)
    t, y = line.get_xdata(), line.get_ydata()
    sigma = spiked.bulk_sigma()
    np.testing.assert_allclose(y, np.maximum(spiked.evaluate(t, sigma), 0.1 * ax.get_ylim()[0]))
    # The grid is refined around each outlier: its Gaussian keeps its peak mass / (σ √(2π)).
    found = spiked.outliers()
    for position, mass in zip(found.positions, found.masses, strict=True):
        near = np.abs(t - position) < sigma
        assert y[near].max() == pytest.approx(mass / (sigma * np.sqrt(2.0 * np.pi)), rel=0.01)
    assert stems(ax) == []


def test_plain_curve_on_linear_axes_uses_the_default_width(spiked) -> None:
    ax = plot_density(spiked, log=False, outliers=False, band=False)
    (line,) = curves(ax)
    t = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), np.maximum(spiked.evaluate(t), 0.0), atol=1e-15)


def test_band_is_shaded_with_probes_and_absent_otherwise(spiked) -> None:
    assert len(bands(plot_density(spiked))) == 1
    assert bands(plot_density(spiked, band=False)) == []
    single = slq.density(np.diag(SPIKED[::10]), num_steps=20, num_probes=1, seed=0)
    assert bands(plot_density(single)) == []


def test_plain_band_is_the_densitys_band(spiked) -> None:
    ax = plot_density(spiked, log=False, outliers=False, confidence=0.9)
    (line,) = curves(ax)
    t = line.get_xdata()
    low, high = spiked.band(t, spiked.default_sigma(), confidence=0.9)
    (band,) = bands(ax)
    y = band.get_paths()[0].vertices[:, 1]
    assert y.max() == pytest.approx(high.max())
    assert y.min() == pytest.approx(max(low.min(), 0.0))


def test_outliers_are_stems_at_their_positions_as_tall_as_their_masses(spiked) -> None:
    found = spiked.outliers()
    ax = plot_density(spiked, label="spiked")
    (markers,) = stems(ax)
    np.testing.assert_allclose(markers.get_xdata(), [10.0, 30.0, 100.0], rtol=1e-9)
    np.testing.assert_allclose(markers.get_ydata(), found.masses)
    masses = mass_axes(ax)
    floor = masses.get_ylim()[0]
    lines = [c for c in masses.collections if isinstance(c, LineCollection)]
    stem_lines, error_bars = lines  # stems from the floor, then the masses' intervals
    expected = [
        [[x, floor], [x, mass]] for x, mass in zip([10, 30, 100], found.masses, strict=True)
    ]
    np.testing.assert_allclose(stem_lines.get_segments(), expected, rtol=1e-9)
    assert len(error_bars.get_segments()) == 3
    assert [text.get_text() for text in masses.texts] == ["10", "30", "100"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["spiked", "3 outliers"]
    assert floor < found.masses.min() < masses.get_ylim()[1]


def test_given_outliers_are_drawn_as_given(spiked) -> None:
    found = spiked.outliers(separation=40.0)  # only 100 lies 40 bulk widths out
    ax = plot_density(spiked, outliers=found, band=False)
    (markers,) = stems(ax)
    np.testing.assert_allclose(markers.get_xdata(), [100.0])


def test_no_legend_without_a_label(spiked) -> None:
    assert plot_density(spiked).get_legend() is None


def test_symlog_ticks_leave_out_decades_inside_the_linear_part(spiked) -> None:
    ax = plot_density(spiked, xscale="symlog")
    ticks = ax.get_xticks()
    low, high = ax.get_xlim()
    ticks = ticks[(ticks >= low) & (ticks <= high)]
    linthresh = spiked.bulk_sigma()
    assert 0.0 in ticks and 100.0 in ticks
    assert np.all((ticks == 0.0) | (np.abs(ticks) >= linthresh))


def test_draws_on_given_axes_without_pyplot(spiked) -> None:
    figure = Figure()
    ax = figure.add_subplot()
    assert plot_density(spiked, ax, color="k") is ax
    assert pyplot.get_fignums() == []
    assert curves(ax)[0].get_color() == "k"


def test_plot_densities_overlays_one_curve_per_density(spiked, narrow) -> None:
    ax = plot_densities([spiked, narrow], labels=["spiked", "narrow"], xscale="symlog")
    lines = curves(ax)
    assert len(lines) == 2
    assert lines[0].get_color() != lines[1].get_color()
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["spiked", "narrow"]
    linthresh = min(spiked.bulk_sigma(), narrow.bulk_sigma())
    assert ax.xaxis.get_transform().linthresh == pytest.approx(linthresh)
    # One grid covers both; refinement only adds interior points.
    assert lines[0].get_xdata()[0] == lines[1].get_xdata()[0]
    assert lines[0].get_xdata()[-1] == lines[1].get_xdata()[-1]
    assert len(stems(ax)) == 1 and len(ax.texts) == len(mass_axes(ax).texts) == 0
    assert len(bands(ax)) == 2


def test_plot_densities_takes_colors_and_linear_axes(spiked, narrow) -> None:
    ax = plot_densities([spiked, narrow], colors=["k", "r"], log=False, band=False)
    assert [line.get_color() for line in curves(ax)] == ["k", "r"]
    assert ax.get_xscale() == "linear" and ax.get_legend() is None


def test_figures_render(spiked, narrow) -> None:
    # Drawing runs the locators and formatters; about a second per figure.
    for ax in (plot_density(spiked), plot_densities([spiked, narrow], log=False)):
        ax.figure.savefig(io.BytesIO(), format="png")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num": 1}, ValueError, "num must be >= 2, got 1"),
        ({"xscale": "log"}, ValueError, "xscale must be one of 'linear', 'symlog'"),
        ({"num": 2.5}, TypeError, "num must be an integer"),
        ({"confidence": 1.0}, ValueError, r"confidence must lie in \(0, 1\)"),
        ({"confidence": 0.0}, ValueError, "confidence"),
        ({"sigma": -1.0}, ValueError, "sigma must be a finite number > 0"),
        ({"outliers": "yes"}, TypeError, "outliers must be True, False or an Outliers"),
    ],
)
def test_plot_density_rejects_bad_options(spiked, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        plot_density(spiked, **kwargs)


def test_plot_density_rejects_outliers_of_another_density(spiked, narrow) -> None:
    with pytest.raises(ValueError, match="outliers must come from this density"):
        plot_density(spiked, outliers=narrow.outliers())


def test_plot_density_needs_a_spectral_density() -> None:
    with pytest.raises(TypeError, match="density must be a SpectralDensity, got ndarray"):
        plot_density(np.ones(3))


def test_plot_densities_rejects_bad_sequences(spiked) -> None:
    with pytest.raises(ValueError, match="at least one SpectralDensity"):
        plot_densities([])
    with pytest.raises(TypeError, match="plot one with plot_density"):
        plot_densities(spiked)
    with pytest.raises(ValueError, match=r"labels must have one entry per density \(2\), got 1"):
        plot_densities([spiked, spiked], labels=["one"])
    with pytest.raises(TypeError, match="labels must be a sequence"):
        plot_densities([spiked], labels="one")
    with pytest.raises(ValueError, match="colors must have one entry per density"):
        plot_densities([spiked], colors=["k", "r"])
    with pytest.raises(ValueError, match="num must be >= 2"):
        plot_densities([spiked], num=0)


def test_missing_matplotlib_says_how_to_install_it(spiked, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for plot in (lambda: plot_density(spiked), lambda: plot_densities([spiked])):
        with pytest.raises(ImportError, match=r"pip install 'slq\[plot\]'"):
            plot()


def test_importing_slq_and_its_plotting_module_leaves_matplotlib_out() -> None:
    code = "import sys, slq, slq.plotting; print('matplotlib' in sys.modules)"
    # -I keeps the working directory (a checkout's `slq/`) off sys.path.
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

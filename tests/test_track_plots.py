"""`Track.plot_heatmap` and `Track.plot_traces`: what they draw is the densities' numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from helpers import assert_close

matplotlib.use("Agg")

from matplotlib import pyplot

import slq


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    pyplot.close("all")


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> slq.Track:
    tracker = slq.Tracker(tmp_path_factory.mktemp("plots") / "t", num_steps=30, num_probes=3)
    for step in (0, 2, 4, 8):
        spectrum = np.concatenate(
            [np.linspace(-1.0, 1.0, 197) / (step + 1), [10.0 * (step + 1) ** 2]]
        )
        spectrum[:20] = np.abs(spectrum[:20])  # less negative mass as training goes on
        tracker.record(step, np.diag(spectrum), loss=1.0 / (step + 1))
    return slq.load_track(tracker.path)


def test_the_heatmap_is_each_density_on_one_grid_with_one_kernel(track: slq.Track) -> None:
    ax = track.plot_heatmap(num=3000, sigma=0.5)  # a grid finer than the kernel
    mesh = ax.collections[0]
    values = np.asarray(mesh.get_array()).reshape(3000, len(track))
    edges = mesh.get_coordinates()[:, 0, 1]
    grid = 0.5 * (edges[1:] + edges[:-1])
    floor = values.max() * 1e-6
    for column, record in zip(values.T, track, strict=True):
        expected = np.maximum(record.density.evaluate(grid, sigma=0.5), floor)
        assert_close(column, expected, factor=10.0)
    steps = mesh.get_coordinates()[0, :, 0]
    np.testing.assert_allclose(steps, [-1.0, 1.0, 3.0, 6.0, 10.0])  # cells centred on steps
    assert ax.get_xlabel() == "step" and ax.figure.axes[-1].get_ylabel() == "density"


def test_a_symlog_heatmap_keeps_an_outlier_between_grid_points(track: slq.Track) -> None:
    ax = track.plot_heatmap(num=64, scale="symlog", colorbar=False)
    mesh = ax.collections[0]
    values = np.asarray(mesh.get_array()).reshape(64, len(track))
    edges = mesh.get_coordinates()[:, 0, 1]
    widths = np.diff(edges)
    assert ax.get_yscale() == "symlog" and len(ax.figure.axes) == 1
    for column, record in zip(values.T, track, strict=True):
        outlier = record.density.lambda_max
        cell = np.searchsorted(edges, outlier) - 1
        near = slice(max(cell - 2, 0), cell + 3)
        # The mass of one eigenvalue in 198, not lost on a grid coarser than the bulk's kernel.
        assert np.sum(column[near] * widths[near]) > 0.5 / 198


def test_the_traces_are_the_summary(track: slq.Track) -> None:
    axes = track.plot_traces()
    table = track.summary()
    top, mass, outliers = axes
    np.testing.assert_array_equal(top.lines[0].get_ydata(), table.column("lambda_max"))
    np.testing.assert_array_equal(mass.lines[0].get_ydata(), table.column("negative_mass"))
    assert mass.get_ylabel() == "negative mass" and len(mass.collections) >= 1  # the bracket
    shown = outliers.lines[0].get_ydata()
    np.testing.assert_array_equal(shown, [x for row in table for x in row.outliers])
    assert outliers.get_yscale() == "log"  # 10 to 810: decades apart


def test_the_plots_draw_into_given_axes_and_refuse_an_empty_track(
    track: slq.Track, tmp_path: Path
) -> None:
    _, axes = pyplot.subplots(1, 4)
    assert track.plot_heatmap(axes[0]) is axes[0]
    assert track.plot_traces(list(axes[1:])) == list(axes[1:])
    empty = slq.Tracker(tmp_path / "empty", num_steps=5, num_probes=2)
    with pytest.raises(ValueError, match="track must hold at least one record"):
        slq.load_track(empty.path).plot_heatmap()
    with pytest.raises(TypeError, match="ax must be a sequence of three"):
        track.plot_traces(axes[:2])
    one = track[:1]  # a single record: one column of width 1
    assert one.plot_heatmap().collections[0].get_coordinates().shape[1] == 2

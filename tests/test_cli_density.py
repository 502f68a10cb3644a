"""`slq.apps.cli.density`: ``slq density FILE`` as text, JSON and a figure; its option errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import MATRIX, assert_one_line_error, run, save_npy, strict_json

import slq

SUMMARY_KEYS = {
    "file",
    "dim",
    "num_probes",
    "num_steps",
    "num_matvecs",
    "seed",
    "lambda_min",
    "lambda_max",
    "negative_mass",
    "extreme_ratio",
    "outliers",
    "wasserstein_bound",
}


@pytest.mark.parametrize("option", ["partial", "none"])
def test_reorthogonalize_option(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = save_npy(tmp_path, MATRIX)
    status, out, err = run(capsys, "density", path, "--reorthogonalize", option, "--json")
    assert (status, err) == (0, "")
    summary = strict_json(out)
    assert summary["reorthogonalize"] == option
    assert summary["lambda_max"] == pytest.approx(20.0, rel=1e-8)


def test_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_npy(tmp_path, MATRIX)
    status, out, err = run(capsys, "density", path, "--steps", 20, "--probes", 3, "--seed", 5)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{path}: n = 60, 20 Lanczos steps x 3 probes = 60 matvecs (seed 5)"
    labels = [line.split()[0] for line in lines[1:]]
    assert labels == [
        "lambda_min",
        "lambda_max",
        "|lambda_min|/lambda_max",
        "negative",
        "outliers",
        "bulk",
        "W1",
    ]
    assert lines[2].split()[1] == "20"


def test_json_has_the_summary_and_nan_becomes_null(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = save_npy(tmp_path, MATRIX)
    status, out, _ = run(capsys, "density", path, "--probes", 1, "--seed", 3, "--json")
    summary = strict_json(out)  # one probe: no standard error, NaN in the library's dict
    assert status == 0
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["num_probes"], summary["seed"]) == (1, 3)
    assert summary["negative_mass"]["stderr"] is None
    assert summary == strict_json(json.dumps({"file": str(path), **slq_summary(1, 3)}))


def slq_summary(probes: int, seed: int) -> dict[str, Any]:
    summary = slq.density(MATRIX, num_probes=probes, seed=seed).summary()
    return json.loads(json.dumps(summary).replace("NaN", "null"))


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    path, figure = save_npy(tmp_path, MATRIX), tmp_path / "density.png"
    status, out, _ = run(capsys, "density", path, "--probes", 2, "--plot", figure)
    assert status == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.splitlines()[-1] == f"slq: figure written to {figure}"


@pytest.mark.parametrize("flag", ["--linear", "--symlog"])
def test_plot_axis_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    pytest.importorskip("matplotlib")
    from slq.apps.cli import figure as figure_module

    seen = []
    monkeypatch.setattr(figure_module, "save_figure", lambda *a, **k: seen.append(k["xscale"]))
    monkeypatch.setattr("slq.apps.cli.density.save_figure", figure_module.save_figure)
    path = save_npy(tmp_path, MATRIX)
    status, _, _ = run(capsys, "density", path, "--probes", 2, "--plot", tmp_path / "a", flag)
    assert status == 0 and seen == [flag[2:]]


def test_plot_message_goes_to_stderr_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    path, figure = save_npy(tmp_path, MATRIX), tmp_path / "density.png"
    status, out, err = run(capsys, "density", path, "--probes", 2, "--json", "--plot", figure)
    assert status == 0
    assert strict_json(out)["dim"] == 60
    assert err == f"slq: figure written to {figure}\n"
    assert figure.is_file()


def with_options(*options: Any) -> Callable[[Path], list[Any]]:
    def case(folder: Path) -> list[Any]:
        return ["density", save_npy(folder, MATRIX), *options]

    return case


OPTION_ERRORS: dict[str, Callable[[Path], list[Any]]] = {
    "overflow": lambda folder: ["density", save_npy(folder, np.full((4, 4), 1e308))],
    "steps": with_options("--steps", 0),
    "probes": with_options("--probes", -1),
    "seed": with_options("--seed", -1),
    "plot-folder": lambda folder: ["density", folder / "a.npy", "--plot", folder / "no" / "a.png"],
    "plot-format": with_options("--plot", "figure.unknown"),
}


@pytest.mark.parametrize("case", OPTION_ERRORS.values(), ids=OPTION_ERRORS.keys())
def test_option_errors_are_one_line_with_status_2(
    case: Callable[[Path], list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")  # the --plot checks need it
    assert_one_line_error(*run(capsys, *case(tmp_path)))


def test_plot_without_matplotlib_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = run(capsys, "density", tmp_path / "missing.npy", "--plot", "a.png")
    assert_one_line_error(status, out, err)
    assert "pip install 'slq[plot]'" in err

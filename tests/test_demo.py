"""`slq.apps.demo.run`: the Ghorbani, Krishnan & Xiao (2019) reproduction, quick configuration."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import Backend, need

from slq.apps.demo import run
from slq.apps.demo.config import QUICK

FIGURES = (
    "densities_no_bn.png",
    "densities_bn.png",
    "final_overlay.png",
    "final_outliers.png",
    "negative_mass.png",
    "extremes.png",
)
NETWORKS = ("no_bn", "bn")
CHECKPOINTS = ("init", "epoch_1", "end")
SCALARS = (
    "train_loss",
    "train_accuracy",
    "test_accuracy",
    "wall_time_s",
    "lambda_min",
    "lambda_max",
    "num_matvecs",
)


@dataclass
class Demo:
    out: Path
    summary: dict[str, Any]
    same_rng: bool
    same_threads: bool
    messages: list[str]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    torch = need(Backend.TORCH)
    out = tmp_path_factory.mktemp("demo") / "created"
    handler, logger = _Collect(), logging.getLogger("slq")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # The session runs one thread; two here, so that failing to restore them shows.
    state, session_threads = torch.random.get_rng_state(), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        summary = run(out, quick=True, seed=0, progress=False)
        same_threads = torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(session_threads)
        logger.removeHandler(handler)
        logger.setLevel(level)
    same_rng = bool(torch.equal(state, torch.random.get_rng_state()))
    return Demo(out, summary, same_rng, same_threads, handler.messages)


def test_writes_every_file_and_the_figures_are_images(quick: Demo) -> None:
    from matplotlib.image import imread

    names = {Path(f).name for f in quick.summary["files"]}
    assert names == {*FIGURES, "summary.md", "summary.json"}
    for name in FIGURES:
        path = quick.out / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] >= 300 and image.shape[1] >= 500
        assert image.std() > 0.01  # something is drawn


def test_summary_json_is_the_returned_summary(quick: Demo) -> None:
    written = json.loads((quick.out / "summary.json").read_text(encoding="utf-8"))
    assert written["files"] == [Path(f).name for f in quick.summary["files"]]
    assert written["networks"]["bn"]["checkpoints"]["end"]["lambda_max"] == pytest.approx(
        quick.summary["networks"]["bn"]["checkpoints"]["end"]["lambda_max"]
    )
    assert written["quick"] is True and written["seed"] == 0
    assert written["wall_time_s"] > 0.0


def test_both_networks_have_the_three_checkpoints_with_finite_numbers(quick: Demo) -> None:
    written = json.loads((quick.out / "summary.json").read_text(encoding="utf-8"))
    assert set(written["networks"]) == set(NETWORKS)
    for name in NETWORKS:
        network = written["networks"][name]
        assert network["num_params"] > 0
        assert set(network["checkpoints"]) == set(CHECKPOINTS)
        for record in network["checkpoints"].values():
            numbers = [record[k] for k in SCALARS]
            numbers += list(record["negative_mass"].values())
            numbers += list(record["extreme_ratio"].values())[:1]
            assert all(isinstance(x, (int, float)) and math.isfinite(x) for x in numbers)
            assert record["lambda_min"] < 0.0 < record["lambda_max"]
            assert 0.0 <= record["test_accuracy"] <= 1.0
            assert record["outliers"]["count"] == len(record["outliers"]["positions"])
    # The BN network has BN's scale and shift instead of the convolutions' biases.
    c1, c2 = QUICK.channels
    assert written["networks"]["bn"]["num_params"] - written["networks"]["no_bn"]["num_params"] == (
        c1 + c2
    )


def test_negative_mass_brackets_are_ordered(quick: Demo) -> None:
    for network in quick.summary["networks"].values():
        records = [*network["checkpoints"].values(), *network["track"]]
        for record in records:
            for key in ("negative_mass", "negative_mass_below"):
                mass = record[key]
                assert 0.0 <= mass["lower"] <= mass["value"] <= mass["upper"] <= 1.0 + 1e-12
            # Mass below -λ_max/100 is part of the mass below 0.
            assert record["negative_mass_below"]["x"] < 0.0
            assert record["negative_mass_below"]["value"] <= record["negative_mass"]["value"]


def test_tracking_follows_training_at_one_budget(quick: Demo) -> None:
    config = QUICK
    for network in quick.summary["networks"].values():
        track = network["track"]
        epochs = [r["epoch"] for r in track]
        assert epochs[0] == 0.0 and epochs[-1] == config.epochs
        assert epochs == sorted(epochs) and len(epochs) > len(CHECKPOINTS)
        assert {(r["num_steps"], r["num_probes"]) for r in track} == {
            (config.track_steps, config.track_probes)
        }
        steps = {r["step"] for r in track}
        assert {r["step"] for r in network["checkpoints"].values()} <= steps
        assert network["checkpoints"]["end"]["num_steps"] == config.num_steps


def test_report_describes_both_networks_from_the_numbers(quick: Demo) -> None:
    report = (quick.out / "summary.md").read_text(encoding="utf-8")
    assert "without BN" in report and "with BN" in report
    for name in FIGURES:
        assert f"]({name})" in report
    ratio = quick.summary["comparison"]["lambda_max_ratio"]
    assert f"{ratio:.3g} times that with BN" in report
    assert report.count("\n| ") == 1 + len(NETWORKS) * len(CHECKPOINTS)


def test_caller_state_is_untouched_and_progress_is_logged(quick: Demo) -> None:
    assert quick.same_rng, "run changed the global torch RNG state"
    assert quick.same_threads, "run changed torch's number of threads"
    measured = [m for m in quick.messages if m.startswith("demo:") and "products" in m]
    steps = sum(len(n["track"]) for n in quick.summary["networks"].values())
    assert len(measured) == steps
    assert any(m.startswith("demo: done") for m in quick.messages)


def test_import_slq_apps_demo_pulls_in_no_framework() -> None:
    code = (
        "import sys, slq.apps.demo\n"
        "heavy = ('torch', 'sklearn', 'matplotlib', 'tqdm', 'jax', 'tensorflow')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"out": 3}, TypeError, "out must be a path"),
        ({"quick": "yes"}, TypeError, "quick must be True or False"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"seed": True}, TypeError, "seed must be an integer"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"progress": "bar"}, TypeError, "progress must be True, False or None"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(
    tmp_path: Path, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments = {"out": tmp_path, **options}
    out = arguments.pop("out")
    with pytest.raises(error, match=match):
        run(out, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_out_must_not_be_a_file(tmp_path: Path) -> None:
    file = tmp_path / "taken"
    file.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="out must be a folder"):
        run(file, quick=True)


def test_progress_without_tqdm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    need(Backend.TORCH)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        run(tmp_path, quick=True, progress=True)

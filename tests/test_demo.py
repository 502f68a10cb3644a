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

IDS = (
    "quadrature-vs-exact",
    "negative-mass-vanishes-early",
    "bulk-stabilises",
    "learning-rate-drop",
    "batchnorm-suppresses-outliers",
    "population-statistics-restore-outliers",
)
KEYS = ("id", "claim", "statistic", "values", "uncertainty", "verdict", "figure")
VERDICTS = ("reproduced", "not reproduced", "inconclusive")


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


def test_findings_contract(quick: Demo) -> None:
    findings = quick.summary["findings"]
    assert [f["id"] for f in findings] == list(IDS)
    for finding in findings:
        assert tuple(finding) == KEYS
        assert finding["verdict"] in VERDICTS
        assert finding["claim"] and finding["statistic"]
        figure = quick.out / finding["figure"]
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_json_is_the_returned_summary_and_lists_the_files(quick: Demo) -> None:
    saved = json.loads((quick.out / "summary.json").read_text(encoding="utf-8"))
    assert [f["verdict"] for f in saved["findings"]] == [
        f["verdict"] for f in quick.summary["findings"]
    ]
    assert sorted(saved["files"]) == sorted(p.name for p in quick.out.iterdir())


def test_figures_show_the_numbers_of_the_findings(quick: Demo) -> None:
    by_id = {f["id"]: json.loads(json.dumps(f)) for f in quick.summary["findings"]}

    def plotted(key: str) -> dict[str, Any]:
        name = Path(by_id[key]["figure"]).with_suffix(".json")
        return json.loads((quick.out / name).read_text(encoding="utf-8"))

    exact = by_id["quadrature-vs-exact"]
    assert plotted("quadrature-vs-exact")["l1"] == exact["values"]["l1"]
    assert plotted("quadrature-vs-exact")["w1"] == exact["values"]["w1"]
    mass = by_id["negative-mass-vanishes-early"]["values"]
    lam = by_id["learning-rate-drop"]["values"]
    bulk = by_id["bulk-stabilises"]["values"]
    for name in ("no_bn", "bn"):
        assert plotted("negative-mass-vanishes-early")[name]["y"] == mass[name]["mass"]
        assert plotted("negative-mass-vanishes-early")[name]["x"] == mass["epochs"]
        assert plotted("learning-rate-drop")[name]["y"] == lam[name]["lambda_max"]
        assert plotted("bulk-stabilises")[name]["y"] == bulk[name]["w1_per_epoch"]
    for key, pair in (
        ("batchnorm-suppresses-outliers", ("no_bn", "bn")),
        ("population-statistics-restore-outliers", ("eval", "train")),
    ):
        for name in pair:
            shown, values = plotted(key)[name], by_id[key]["values"][name]
            assert shown["separation"] == values["separation"]
            assert shown["per_seed"] == values["separation_per_seed"]


def test_training_claims_use_three_seeds(quick: Demo) -> None:
    by_id = {f["id"]: f for f in quick.summary["findings"]}
    per_seed = by_id["batchnorm-suppresses-outliers"]["values"]["no_bn"]["separation_per_seed"]
    assert len(per_seed) == QUICK.seeds >= 3
    seed_se = by_id["negative-mass-vanishes-early"]["uncertainty"]["no_bn"]["seed_se"]
    assert all(math.isfinite(x) for x in seed_se)


def test_report_is_generated_from_the_findings(quick: Demo) -> None:
    report = (quick.out / "summary.md").read_text(encoding="utf-8")
    for finding in quick.summary["findings"]:
        assert f"## {finding['id']}: {finding['verdict']}" in report
        assert f"![{finding['id']}]({finding['figure']})" in report


def test_caller_state_is_untouched_and_progress_is_logged(quick: Demo) -> None:
    assert quick.same_rng, "run changed the global torch RNG state"
    assert quick.same_threads, "run changed torch's number of threads"
    trained = [m for m in quick.messages if m.startswith("demo: trained")]
    assert len(trained) == 2 * QUICK.seeds
    assert any(m.startswith("demo: exact check") for m in quick.messages)
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

"""`slq.apps.cli.demo`: ``slq demo`` calls `slq.apps.demo.run` and lists what it wrote."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error, run


class FakeDemo:
    """Stands in for `slq.apps.demo`: records its calls and returns a summary like the real one."""

    def __init__(
        self, summary: Callable[[Path], Any] | None = None, error: Exception | None = None
    ):
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.summary, self.error = summary, error

    def run(self, out: Any, **options: Any) -> Any:
        self.calls.append((out, options))
        if self.error is not None:
            raise self.error
        return self.summary(Path(out)) if self.summary else {}


@pytest.fixture
def fake_demo(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeDemo]:
    def install(**options: Any) -> FakeDemo:
        fake = FakeDemo(**options)
        module = types.ModuleType("slq.apps.demo")
        module.run = fake.run  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "slq.apps.demo", module)
        return fake

    return install


def demo_summary(out: Path) -> dict[str, Any]:
    names = ["density.png", "ratio.png", "summary.md", "summary.json"]
    return {"files": [str(out / name) for name in names], "dim": 2000, "seconds": 1.5}


def test_demo_calls_run_and_prints_the_paths(
    fake_demo: Callable[..., FakeDemo], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = fake_demo(summary=demo_summary)
    status, out, err = run(capsys, "demo", "--out", tmp_path / "figures", "--quick", "--seed", 7)
    assert (status, err) == (0, "")
    assert fake.calls == [(tmp_path / "figures", {"quick": True, "seed": 7, "progress": None})]
    for name in demo_summary(tmp_path / "figures")["files"]:
        assert f"  {name}" in out.splitlines()
    assert "dim = 2000; seconds = 1.5." in out


def test_demo_defaults(
    fake_demo: Callable[..., FakeDemo],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    fake = fake_demo()
    status, out, _ = run(capsys, "demo")
    assert status == 0
    assert fake.calls == [(Path("slq-demo"), {"quick": False, "seed": 0, "progress": None})]
    assert out == "slq demo: wrote 0 files into slq-demo\n"


def test_demo_without_a_files_list_lists_the_folder(
    fake_demo: Callable[..., FakeDemo], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def writes(out: Path) -> None:
        out.mkdir()
        (out / "a.png").write_bytes(b"")

    fake_demo(summary=writes)
    status, out, _ = run(capsys, "demo", "--out", tmp_path / "d")
    assert status == 0
    folder = tmp_path / "d"
    assert out.splitlines() == [
        f"slq demo: wrote 1 file into {folder}",
        "figures:",
        f"  {folder / 'a.png'}",
    ]


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (PermissionError("[Errno 13] Permission denied: 'out'"), "Permission denied"),
        (ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib"), "slq[plot]"),
        (ModuleNotFoundError("No module named 'sklearn'", name="sklearn"), "scikit-learn"),
        (
            ModuleNotFoundError("No module named 'slq.apps.demo'", name="slq.apps.demo"),
            "unavailable",
        ),
    ],
    ids=["os-error", "no-matplotlib", "no-sklearn", "no-demo"],
)
def test_demo_errors_are_one_line(
    error: Exception,
    says: str,
    fake_demo: Callable[..., FakeDemo],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_demo(error=error)
    status, out, err = run(capsys, "demo")
    assert_one_line_error(status, out, err)
    assert says in err


def test_demo_seed_must_be_non_negative(
    fake_demo: Callable[..., FakeDemo], capsys: pytest.CaptureFixture[str]
) -> None:
    fake = fake_demo()
    assert_one_line_error(*run(capsys, "demo", "--seed", -2))
    assert fake.calls == []

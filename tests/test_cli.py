"""`slq.apps.cli`: the ``slq`` program and its parser: help, version, usage errors, -v."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import MATRIX, run, save_npy

import slq


@pytest.mark.parametrize("before", [True, False], ids=["before-command", "after-command"])
def test_verbose_logs_for_this_call_only(
    before: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("slq")
    handlers, level = list(logger.handlers), logger.level
    path = save_npy(tmp_path, MATRIX)
    argv = ["-v", "density", path] if before else ["density", path, "--verbose"]
    status, _, err = run(capsys, *argv, "--probes", 2)
    assert status == 0
    assert "slq: density: n=60, 2 probes x 60 steps" in err
    assert (logger.handlers, logger.level) == (handlers, level)


@pytest.mark.parametrize("argv", [[], ["demo"], ["density"]], ids=["slq", "demo", "density"])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *argv, "--help")
    assert status == 0
    assert out.startswith(f"usage: slq {' '.join(argv)}".rstrip())


def test_version_in_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slq", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"slq {slq.__version__}\n", "")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["density"],
        ["density", "a.npy", "--steps", "many"],
        ["density", "a.npy", "--reorthogonalize", "selective"],
        ["nope"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("usage: slq")
    assert "Traceback" not in err


def test_python_m_slq_and_the_console_script_run_the_same_main() -> None:
    from importlib.metadata import entry_points

    import slq.__main__ as dunder_main
    from slq.apps import cli

    assert dunder_main.main is cli.main
    scripts = entry_points(group="console_scripts", name="slq")
    assert [e.value for e in scripts] == ["slq.apps.cli:main"]

"""`slq.apps.cli.output`, `figure`, `program`: lost output, Ctrl-C, --plot paths; one line each."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import MATRIX, assert_one_line_error, run, save_npy

from slq.apps.cli import density as density_command
from slq.apps.cli import main

DEV_FULL = Path("/dev/full")
NO_SPACE = os.strerror(errno.ENOSPC)


def slq_process(*argv: Any, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m slq`` on `argv` in a subprocess; stdout and stderr are captured."""
    options = {"stdout": subprocess.PIPE, **options}
    command = [sys.executable, "-m", "slq", *(str(a) for a in argv)]
    return subprocess.run(
        command, stderr=subprocess.PIPE, text=True, timeout=120, check=False, **options
    )


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command reaches `slq.density`."""

    def density(*_: Any, **__: Any) -> None:
        raise AssertionError("the run started")

    monkeypatch.setattr(density_command, "density", density)


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line_and_status_1_in_a_subprocess(tmp_path: Path) -> None:
    with DEV_FULL.open("w") as full:
        done = slq_process("density", save_npy(tmp_path, MATRIX), "--probes", 2, stdout=full)
    assert done.returncode == 1
    assert done.stderr == f"slq: error: cannot write the result to standard output: {NO_SPACE}\n"


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["density", "--help"], ["--json"]])
def test_every_output_into_a_full_disk_is_status_1(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    if argv == ["--json"]:
        argv = ["density", str(save_npy(tmp_path, MATRIX)), "--probes", "2", "--json"]
    with DEV_FULL.open("w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        status = main(argv)
        monkeypatch.undo()
    err = capsys.readouterr().err
    assert status == 1
    assert err == f"slq: error: cannot write the result to standard output: {NO_SPACE}\n"


def test_closed_stdout_is_refused_before_the_run_in_a_subprocess(tmp_path: Path) -> None:
    # `slq density a.npy >&-`: Python starts with sys.stdout None, and print writes nothing.
    command = ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "slq", "density"]
    done = subprocess.run(
        [*command, str(save_npy(tmp_path, MATRIX))],
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        2,
        "slq: error: standard output is closed: the result could not be written\n",
    )


class BrokenPipe(io.StringIO):
    """A standard output whose reader has gone: `slq density ... | head -c 0`."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_broken_pipe_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_npy(tmp_path, MATRIX)
    monkeypatch.setattr(sys, "stdout", BrokenPipe())
    status = main(["density", str(path), "--probes", "2"])
    monkeypatch.undo()
    assert status == 1
    assert capsys.readouterr().err == (
        "slq: error: standard output was closed before the result was written\n"
    )


def test_ctrl_c_is_one_line_and_status_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(density_command, "density", interrupted)
    status, out, err = run(capsys, "density", save_npy(tmp_path, MATRIX))
    assert (status, out, err) == (130, "", "slq: interrupted\n")


def test_sigint_during_a_run_exits_130_in_a_subprocess(tmp_path: Path) -> None:
    # A run of many seconds, interrupted half a second after `main` is called.
    path = tmp_path / "a.npy"
    np.save(path, np.diag(np.linspace(1.0, 2.0, 300)))
    argv = ["density", str(path), "--steps", "300", "--probes", "10000"]
    argv += ["--reorthogonalize", "none"]
    script = (
        "import sys; from slq.apps.cli import main; print('ready', file=sys.stderr, flush=True); "
        f"sys.exit(main({argv!r}))"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        assert process.stderr.readline() == "ready\n"
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (130, "", "slq: interrupted\n")


@pytest.mark.usefixtures("no_run")
@pytest.mark.parametrize(
    ("plot", "words"),
    [
        ("no/such/folder/a.png", "folder"),
        (".", "is a folder"),
        ("a.unknown", "unknown figure format"),
        ("/proc/a.png", "cannot write into folder /proc"),
    ],
)
def test_unusable_plot_paths_are_refused_before_the_run(
    plot: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    if plot.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc")
    status, out, err = run(capsys, "density", save_npy(tmp_path, MATRIX), "--plot", plot)
    assert_one_line_error(status, out, err)
    assert words in err


def test_a_plot_path_without_suffix_gets_png_and_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    path = save_npy(tmp_path, MATRIX)
    status, out, _ = run(capsys, "density", path, "--probes", 2, "--plot", tmp_path / "out")
    assert status == 0
    assert out.splitlines()[-1] == f"slq: figure written to {tmp_path / 'out.png'}"
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "out").exists()


def test_a_figure_lost_after_the_run_is_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    figure = pytest.importorskip("matplotlib.figure")

    def full_disk(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(figure.Figure, "savefig", full_disk)
    path, png = save_npy(tmp_path, MATRIX), tmp_path / "a.png"
    status, out, err = run(capsys, "density", path, "--probes", 2, "--plot", png)
    assert status == 1
    assert out.startswith(f"{path}: n = 60")  # the summary was written
    assert err == f"slq: error: --plot: cannot write {png}: No space left on device\n"

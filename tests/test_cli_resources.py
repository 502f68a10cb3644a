"""`slq.apps.cli.resources`: runs and files too large for the memory are refused before reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import MATRIX, assert_one_line_error, limit_memory, mtx_text, run, save_npy

from slq.apps.cli import density as density_command
from slq.apps.cli import matrix_info
from slq.apps.cli.resources import available_memory, check_run_fits

GiB = 2**30


@pytest.fixture
def no_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command reads a matrix's data."""

    def load(*_: Any) -> None:
        raise AssertionError("the matrix was loaded")

    monkeypatch.setattr(density_command, "load_matrix", load)


def one_entry_mtx(folder: Path, n: int) -> Path:
    """A 60-byte file declaring an n x n matrix with one entry."""
    path = folder / "a.mtx"
    path.write_text(mtx_text(size=f"{n} {n} 1", body="1 1 1.0\n"))
    return path


@pytest.mark.usefixtures("no_load")
def test_n_of_ten_million_with_one_entry_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_memory(monkeypatch, 8 * GiB)
    status, out, err = run(capsys, "density", one_entry_mtx(tmp_path, 10**7))
    assert_one_line_error(status, out, err)
    assert "n = 10000000: the run needs about 73.8 GiB" in err
    assert "but 8.0 GiB is available; use --probes 1 or --steps" in err


@pytest.mark.usefixtures("no_load")
def test_a_billion_rows_declared_in_60_bytes_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_memory(monkeypatch, 64 * GiB)
    status, out, err = run(capsys, "density", one_entry_mtx(tmp_path, 10**9))
    assert_one_line_error(status, out, err)
    assert "too large for the memory of this machine" in err


def test_absurd_probes_are_refused_before_the_file_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_memory(monkeypatch, 4 * GiB)  # a 1 x 1 matrix would need 7.1 GiB
    status, out, err = run(capsys, "density", tmp_path / "missing.npy", "--probes", 10**8)
    assert_one_line_error(status, out, err)
    assert "--probes 100000000 with --steps 90 need at least" in err


@pytest.mark.usefixtures("no_load")
def test_probes_too_many_for_this_matrix_name_the_most_that_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_memory(monkeypatch, GiB)
    status, out, err = run(capsys, "density", save_npy(tmp_path, MATRIX), "--probes", 10**6)
    assert_one_line_error(status, out, err)
    most = int(err.split("use --probes ")[1].split()[0])
    info = matrix_info(tmp_path / "a.npy")
    check_run_fits(info, num_steps=90, num_probes=most, reorthogonalize="full")
    with pytest.raises(Exception, match="is available"):
        check_run_fits(info, num_steps=90, num_probes=most + 1, reorthogonalize="full")


def test_a_file_too_large_to_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_npy(tmp_path, MATRIX.astype(np.int64))  # read, then converted to float64
    limit_memory(monkeypatch, 40_000)
    status, out, err = run(capsys, "density", path, "--probes", 1, "--steps", 1)
    assert_one_line_error(status, out, err)
    assert "reading this 60 x 60 matrix needs about 56.2 KiB of memory but 39.1 KiB" in err


def test_unknown_memory_checks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_memory(monkeypatch, None)
    status, _, err = run(capsys, "density", save_npy(tmp_path, MATRIX), "--probes", 2)
    assert (status, err) == (0, "")


def test_available_memory_is_at_most_the_machine_total() -> None:
    total = Path("/proc/meminfo")
    if not total.is_file():
        pytest.skip("no /proc/meminfo")
    kib = int(total.read_text().split("MemTotal:")[1].split()[0])
    assert 0 < available_memory() <= kib * 1024

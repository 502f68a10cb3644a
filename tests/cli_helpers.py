"""Shared helpers of the command-line tests: the test matrix, running `main`, strict JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import symmetric_with_spectrum

from slq.apps.cli import main

# A bulk in [-1, 1] and three outliers; n = 60 < the default 90 steps, so every Ritz value is exact.
EIGENVALUES = np.concatenate([np.linspace(-1.0, 1.0, 57), [5.0, 10.0, 20.0]])
MATRIX = symmetric_with_spectrum(EIGENVALUES, seed=0)


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    """Run `slq` on `argv` (any objects, as strings); return its status, stdout and stderr."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def strict_json(text: str) -> dict[str, Any]:
    """Parse `text`, failing on NaN or Infinity (not strict JSON)."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def save_npy(path: Path, a: np.ndarray) -> Path:
    """Save `a` as `path`/a.npy and return the file's path."""
    np.save(path / "a.npy", a)
    return path / "a.npy"


def assert_one_line_error(status: int, out: str, err: str) -> None:
    """Assert that the command failed with status 2 and one line ``slq: error: ...``."""
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith("slq: error: ")
    assert "Traceback" not in err

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


def limit_memory(monkeypatch: pytest.MonkeyPatch, nbytes: int | None) -> None:
    """Make the command see `nbytes` of available memory (None: unknown)."""
    from slq.apps.cli import resources

    monkeypatch.setattr(resources, "available_memory", lambda: nbytes)


# A valid 3 x 3 CSR archive as `scipy.sparse.save_npz` writes it: diag(1, 2, 3).
CSR_ARRAYS: dict[str, np.ndarray] = {
    "format": np.array(b"csr"),
    "shape": np.array([3, 3]),
    "data": np.array([1.0, 2.0, 3.0]),
    "indices": np.array([0, 1, 2], dtype=np.int32),
    "indptr": np.array([0, 1, 2, 3], dtype=np.int32),
}


def save_sparse_arrays(path: Path, **changes: Any) -> Path:
    """Save `CSR_ARRAYS` with `changes` (an array, or None to leave one out) as `path`."""
    arrays = {name: a for name, a in {**CSR_ARRAYS, **changes}.items() if a is not None}
    np.savez(path, **arrays)
    return path


def mtx_text(banner: str = "coordinate real symmetric", size: str = "3 3 3", body: str = "") -> str:
    """A Matrix Market file: `banner`, `size` line and entries (default diag(1, 2, 3))."""
    body = body or "1 1 1.0\n2 2 2.0\n3 3 3.0\n"
    return f"%%MatrixMarket matrix {banner}\n% a comment\n{size}\n{body}"

"""`slq.apps.cli.matrix_files`: every file format, and a one-line error for each bad file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import MATRIX, assert_one_line_error, run, save_npy, strict_json

from slq.apps.cli import load_matrix

scipy_io = pytest.importorskip("scipy.io")
scipy_sparse = pytest.importorskip("scipy.sparse")


def save_npz_single(path: Path, a: np.ndarray) -> Path:
    np.savez(path / "a.npz", a)  # stored as "arr_0"
    return path / "a.npz"


def save_npz_named(path: Path, a: np.ndarray) -> Path:
    np.savez_compressed(path / "a.npz", matrix=a, labels=np.arange(3))
    return path / "a.npz"


def save_sparse_csr(path: Path, a: np.ndarray) -> Path:
    scipy_sparse.save_npz(path / "a.npz", scipy_sparse.csr_matrix(a))
    return path / "a.npz"


def save_sparse_coo(path: Path, a: np.ndarray) -> Path:
    scipy_sparse.save_npz(path / "a.npz", scipy_sparse.coo_array(a))
    return path / "a.npz"


def save_mtx_sparse(path: Path, a: np.ndarray) -> Path:
    scipy_io.mmwrite(path / "a.mtx", scipy_sparse.coo_matrix(a))
    return path / "a.mtx"


def save_mtx_dense(path: Path, a: np.ndarray) -> Path:
    scipy_io.mmwrite(path / "a.mtx", a)
    return path / "a.mtx"


SAVERS = [
    save_npy,
    save_npz_single,
    save_npz_named,
    save_sparse_csr,
    save_sparse_coo,
    save_mtx_sparse,
    save_mtx_dense,
]


@pytest.mark.parametrize("save", SAVERS, ids=lambda f: f.__name__.removeprefix("save_"))
def test_each_format_gives_the_extreme_eigenvalues(
    save: Callable[[Path, np.ndarray], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = save(tmp_path, MATRIX)
    status, out, err = run(capsys, "density", path, "--probes", 2, "--json")
    assert (status, err) == (0, "")
    summary = strict_json(out)
    assert summary["file"] == str(path)
    assert summary["dim"] == 60
    assert summary["num_steps"] == 60  # capped at n
    assert summary["lambda_max"] == pytest.approx(20.0, rel=1e-10)
    assert summary["lambda_min"] == pytest.approx(-1.0, rel=1e-8)


def test_integer_entries_become_float64(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "int.npy"
    np.save(path, np.diag(np.arange(1, 6)))
    assert load_matrix(path).dtype == np.float64
    status, out, _ = run(capsys, "density", path, "--json")
    assert status == 0
    assert strict_json(out)["lambda_max"] == pytest.approx(5.0)


def test_float32_is_kept(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", MATRIX.astype(np.float32))
    assert load_matrix(tmp_path / "a.npy").dtype == np.float32


def write(name: str, content: bytes | Callable[[Path], Any]) -> Callable[[Path], list[Any]]:
    """A case: write `name` in the folder (bytes, or a function of the path) and run on it."""

    def case(folder: Path) -> list[Any]:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content(path)
        return ["density", path]

    return case


def npy(a: Any, **options: Any) -> Callable[[Path], Any]:
    return lambda path: np.save(path, a, **options)


def truncated(path: Path) -> None:
    np.save(path, MATRIX)
    path.write_bytes(path.read_bytes()[:100])


def non_symmetric_sparse(path: Path) -> None:
    scipy_sparse.save_npz(path, scipy_sparse.csr_matrix(np.triu(MATRIX)))


def inf_sparse(path: Path) -> None:
    scipy_sparse.save_npz(path, scipy_sparse.csr_matrix(np.diag([1.0, np.inf])))


FILE_ERRORS: dict[str, Callable[[Path], list[Any]]] = {
    "missing": lambda folder: ["density", folder / "missing.npy"],
    "directory": lambda folder: ["density", folder],
    "extension": write("a.txt", b"1 0\n0 1\n"),
    "not-npy": write("a.npy", b"hello world"),
    "truncated-npy": write("a.npy", truncated),
    "pickled-npy": write("a.npy", npy(np.array([{}], dtype=object), allow_pickle=True)),
    "not-npz": write("a.npz", b"PK\x03\x04 not really"),
    "pickled-npz": write("a.npz", lambda p: np.savez(p, a=np.array([{}], dtype=object))),
    "unnamed-npz": write("a.npz", lambda p: np.savez(p, x=MATRIX, y=MATRIX)),
    "not-mtx": write("a.mtx", b"not a matrix market file\n"),
    "one-dimensional": write("a.npy", npy(np.ones(3))),
    "non-square": write("a.npy", npy(np.ones((2, 3)))),
    "empty": write("a.npy", npy(np.ones((0, 0)))),
    "complex": write("a.npy", npy(np.eye(2, dtype=complex))),
    "strings": write("a.npy", npy(np.array([["a", "b"], ["b", "a"]]))),
    "nan": write("a.npy", npy(np.diag([1.0, np.nan]))),
    "inf-sparse": write("a.npz", inf_sparse),
    "non-symmetric": write("a.npy", npy(MATRIX + np.triu(np.full_like(MATRIX, 1e-9)))),
    "non-symmetric-sparse": write("a.npz", non_symmetric_sparse),
}


@pytest.mark.parametrize("case", FILE_ERRORS.values(), ids=FILE_ERRORS.keys())
def test_bad_files_are_one_line_errors_with_status_2(
    case: Callable[[Path], list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_line_error(*run(capsys, *case(tmp_path)))


@pytest.mark.parametrize("save", [save_sparse_csr, save_mtx_sparse], ids=["npz", "mtx"])
def test_sparse_formats_without_scipy_say_how_to_install_it(
    save: Callable[[Path, np.ndarray], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = save(tmp_path, MATRIX)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)  # `import scipy.sparse` now fails
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    status, out, err = run(capsys, "density", path)
    assert_one_line_error(status, out, err)
    assert "pip install scipy" in err

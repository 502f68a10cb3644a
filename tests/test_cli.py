"""The ``slq`` command line: file formats, text and JSON reports, figures, one-line errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import symmetric_with_spectrum

import slq
from slq.cli import load_matrix, main

scipy_io = pytest.importorskip("scipy.io")
scipy_sparse = pytest.importorskip("scipy.sparse")

# A bulk in [-1, 1] and three outliers; n = 60 < the default 90 steps, so every Ritz value is exact.
EIGENVALUES = np.concatenate([np.linspace(-1.0, 1.0, 57), [5.0, 10.0, 20.0]])
MATRIX = symmetric_with_spectrum(EIGENVALUES, seed=0)
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


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def strict_json(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- file formats


def save_npy(path: Path, a: np.ndarray) -> Path:
    np.save(path / "a.npy", a)
    return path / "a.npy"


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


# --------------------------------------------------------------------------- reports


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


# --------------------------------------------------------------------------- help and version


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


# --------------------------------------------------------------------------- one-line errors


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


def with_options(*options: Any) -> Callable[[Path], list[Any]]:
    def case(folder: Path) -> list[Any]:
        return ["density", save_npy(folder, MATRIX), *options]

    return case


ERRORS: dict[str, Callable[[Path], list[Any]]] = {
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
    "overflow": write("a.npy", npy(np.full((4, 4), 1e308))),
    "steps": with_options("--steps", 0),
    "probes": with_options("--probes", -1),
    "seed": with_options("--seed", -1),
    "plot-folder": lambda folder: ["density", folder / "a.npy", "--plot", folder / "no" / "a.png"],
    "plot-format": with_options("--plot", "figure.unknown"),
}


def assert_one_line_error(status: int, out: str, err: str) -> None:
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith("slq: error: ")
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_one_line_with_status_2(
    case: Callable[[Path], list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")  # the --plot checks need it
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


def test_plot_without_matplotlib_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = run(capsys, "density", tmp_path / "missing.npy", "--plot", "a.png")
    assert_one_line_error(status, out, err)
    assert "pip install 'slq[plot]'" in err


# --------------------------------------------------------------------------- slq demo


class FakeDemo:
    """Stands in for `slq.demo`: records its calls and returns a summary like the real one."""

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
        module = types.ModuleType("slq.demo")
        module.run = fake.run  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "slq.demo", module)
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
        (ModuleNotFoundError("No module named 'slq.demo'", name="slq.demo"), "unavailable"),
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

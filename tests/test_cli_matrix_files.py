"""`slq.apps.cli.matrix_files`: every file format, and a one-line error for each bad file."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import (
    MATRIX,
    assert_one_line_error,
    mtx_text,
    run,
    save_npy,
    save_sparse_arrays,
    strict_json,
)

from slq.apps.cli import load_matrix, matrix_info

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


# Issue 16: crafted files, built here; each is refused from its header or its indices,
# before scipy or numpy could crash or allocate what it declares. (case, words of the error)
def sparse(**changes: Any) -> Callable[[Path], list[Any]]:
    return write("a.npz", lambda p: save_sparse_arrays(p, **changes))


def npy_header(shape: Any, descr: Any = "<f8", data: bytes = b"\0" * 64) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


def index(*values: int, dtype: Any = np.int32) -> np.ndarray:
    return np.array(values, dtype=dtype)


def npz_with_huge_header(path: Path) -> None:
    """A zip member whose .npy header declares more data than the member holds."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", npy_header((10**5, 10**5)))


def mtx(banner: str = "coordinate real symmetric", size: str = "3 3 3", body: str = "") -> bytes:
    return mtx_text(banner, size, body).encode()


HOSTILE_FILES: dict[str, tuple[Callable[[Path], list[Any]], str]] = {
    "index-past-the-end": (sparse(indices=index(0, 1, 100000)), "indices must lie in [0, 3)"),
    "index-negative": (sparse(indices=index(0, -5, 2)), "indices must lie in [0, 3)"),
    "index-huge": (sparse(indices=index(0, 1, 2**31 - 1)), "indices must lie"),
    "index-uint64": (sparse(indices=index(0, 1, 2**64 - 1, dtype=np.uint64)), "must lie"),
    "indptr-decreasing": (sparse(indptr=index(0, 5, 2, 3)), "without decreasing"),
    "indptr-not-from-0": (sparse(indptr=index(1, 1, 2, 3)), "rise from 0"),
    "indptr-past-the-end": (sparse(indptr=index(0, 1, 2, 4)), "rise from 0"),
    "indptr-short": (sparse(indptr=index(0, 1, 3)), "indptr"),
    "indices-float": (sparse(indices=np.array([0.0, 1.0, 2.0])), "integers"),
    "indices-long": (sparse(indices=index(0, 1, 2, 0)), "integers of shape (3,)"),
    "data-2d": (sparse(data=np.ones((3, 1))), "must be 1-D"),
    "data-complex": (sparse(data=np.ones(3, dtype=complex)), "complex"),
    "data-nan": (sparse(data=np.array([1.0, np.nan, 3.0])), "NaN"),
    "shape-negative": (sparse(shape=np.array([-3, -3])), "square and non-empty"),
    "shape-3d": (sparse(shape=np.array([3, 3, 3])), "two integers"),
    "shape-rectangular": (sparse(shape=np.array([3, 4])), "square"),
    "format-bsr": (sparse(format=np.array(b"bsr")), "save the matrix as CSR"),
    "format-number": (sparse(format=np.array(7)), "must be a string"),
    "format-long": (sparse(format=np.array(b"x" * 1000)), "not a sparse format"),
    "no-indptr": (sparse(indptr=None), "needs the arrays indptr"),
    "coo-row-past-the-end": (
        sparse(format=np.array(b"coo"), row=index(0, 1, 3), col=index(0, 1, 2)),
        "row must lie in [0, 3)",
    ),
    "coo-coords-negative": (
        sparse(format=np.array(b"coo"), coords=np.array([[0, 1, 2], [0, -1, 2]])),
        "col must lie",
    ),
    "coo-duplicates-overflow": (
        sparse(
            format=np.array(b"coo"),
            data=np.array([1e308, 1e308, 1.0]),
            row=index(0, 0, 1),
            col=index(0, 0, 1),
        ),
        "NaN or infinite",
    ),
    "npy-huge-shape": (write("a.npy", npy_header((10**9, 10**9))), "is truncated"),
    "npy-shape-negative": (write("a.npy", npy_header((-1, -1))), "invalid shape"),
    "npy-structured": (write("a.npy", npy_header((2, 2), [("x", "<f8")])), "real numbers"),
    "npy-truncated-header": (write("a.npy", npy_header((2, 2))[:20]), "a.npy"),
    "npz-member-truncated": (write("a.npz", lambda p: npz_with_huge_header(p)), "truncated"),
    "mtx-huge-dense": (write("a.mtx", mtx("array real general", "100000 100000", "1\n")), "only 1"),
    "mtx-more-entries-than-lines": (write("a.mtx", mtx(size="3 3 5")), "only 3 lines"),
    "mtx-more-entries-than-fit": (write("a.mtx", mtx(size="2 2 4")), "more than a 2 x 2"),
    "mtx-size-words": (write("a.mtx", mtx(size="3 3 three")), "size line"),
    "mtx-size-negative": (write("a.mtx", mtx(size="-3 -3 3")), "size line"),
    "mtx-index-past-the-end": (write("a.mtx", mtx(body="4 4 1\n1 1 1\n2 2 2\n")), "in [1, 3]"),
    "mtx-index-0": (write("a.mtx", mtx(body="0 1 1\n1 1 1\n2 2 2\n")), "in [1, 3]"),
    "mtx-index-fraction": (write("a.mtx", mtx(body="1.5 1 1\n1 1 1\n2 2 2\n")), "row col value"),
    "mtx-nul-byte": (write("a.mtx", mtx(body="1 1 1\n2 2 2\x00\n3 3 3\n")), "convert"),
    "mtx-four-columns": (write("a.mtx", mtx(body="1 1 1 7\n2 2 2\n3 3 3\n")), "4 were found"),
    "mtx-more-entries": (write("a.mtx", mtx(size="3 3 2")), "declares 2 entries, one a line"),
    "mtx-two-values-a-line": (
        write("a.mtx", mtx("array real symmetric", "2 2", "1 2\n3 4\n5 6\n")),
        "one a line",
    ),
    "mtx-skew-symmetric": (write("a.mtx", mtx("coordinate real skew-symmetric")), "skew"),
    "mtx-complex": (write("a.mtx", mtx("coordinate complex general")), "complex"),
    "mtx-long-line": (write("a.mtx", b"%%MatrixMarket matrix" + b" x" * 5000), "longer than"),
    "mtx-gz-not-gzip": (write("a.mtx.gz", b"not gzip at all"), "cannot read"),
}


@pytest.mark.parametrize("case", HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
def test_hostile_files_are_refused_in_one_line(
    case: tuple[Callable[[Path], list[Any]], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build, words = case
    status, out, err = run(capsys, *build(tmp_path))
    assert_one_line_error(status, out, err)
    assert words in err


def test_the_crafted_archives_that_crashed_scipy_exit_2_in_a_subprocess(tmp_path: Path) -> None:
    # They ended the process with "double free or corruption" (status 134) or a
    # segmentation fault (139): only a separate process can show that they no longer do.
    names = ["index-past-the-end", "index-negative", "index-huge", "indptr-decreasing"]
    paths = []
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        paths.append(str(HOSTILE_FILES[name][0](folder)[1]))
    script = (
        "import sys; from slq.apps.cli import main; "
        "print([main(['density', p]) for p in sys.argv[1:]])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"{[2] * len(names)}\n"), done.stderr
    assert len(done.stderr.splitlines()) == len(names)


def test_a_valid_coordinate_archive_with_coords_loads(tmp_path: Path) -> None:
    path = save_sparse_arrays(
        tmp_path / "a.npz", format=np.array(b"coo"), coords=np.array([[0, 1, 2], [0, 1, 2]])
    )
    assert load_matrix(path).toarray().tolist() == np.diag([1.0, 2.0, 3.0]).tolist()


def test_mtx_values_of_25_digits_load(tmp_path: Path) -> None:
    # scipy's compiled reader (1.12 to at least 1.17) crashes on them (scipy issue 19949).
    third = "0.3333333333333333333333333"
    (tmp_path / "a.mtx").write_text(mtx_text(body=f"1 1 {third}\n2 1 {third}\n3 3 {third}\n"))
    a = load_matrix(tmp_path / "a.mtx").toarray()
    assert a.tolist() == [[1 / 3, 1 / 3, 0.0], [1 / 3, 0.0, 0.0], [0.0, 0.0, 1 / 3]]


def test_mtx_arrays_store_columns_and_a_symmetric_one_its_lower_triangle(tmp_path: Path) -> None:
    a = np.array([[1.0, 2.0, 4.0], [2.0, 3.0, 5.0], [4.0, 5.0, 6.0]])
    (tmp_path / "g.mtx").write_text(
        mtx_text("array real general", "3 3", "".join(f"{x}\n" for x in a.T.flat))
    )
    (tmp_path / "s.mtx").write_text(
        mtx_text("array integer symmetric", "3 3", "1\n2\n4\n3\n5\n6\n")
    )
    assert load_matrix(tmp_path / "g.mtx").tolist() == a.tolist()
    assert load_matrix(tmp_path / "s.mtx").tolist() == a.tolist()


def test_csc_and_mtx_gz_load(tmp_path: Path) -> None:
    scipy_sparse.save_npz(tmp_path / "a.npz", scipy_sparse.csc_matrix(MATRIX))
    (tmp_path / "a.mtx.gz").write_bytes(gzip.compress(mtx()))
    assert abs(load_matrix(tmp_path / "a.npz") - MATRIX).max() == 0
    assert (
        load_matrix(tmp_path / "a.mtx.gz").toarray().tolist() == np.diag([1.0, 2.0, 3.0]).tolist()
    )


def test_matrix_info_reads_no_data(tmp_path: Path) -> None:
    # A header and 16 MB of zeros (a sparse file where the file system allows): the info
    # is exact, and the data is never read.
    path = tmp_path / "a.npy"
    path.write_bytes(npy_header((2000, 2000), "<f4", data=b""))
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size + 4 * 2000**2)
    info = matrix_info(path)
    assert (info.n, info.dtype, info.sparse, info.nbytes) == (2000, np.float32, False, 16 * 10**6)

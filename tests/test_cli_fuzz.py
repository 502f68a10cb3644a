"""Fuzzing ``slq density`` with malformed files: a result or one line with status 2, never more.

Valid ``.npy``, ``.npz`` and ``.mtx`` files are mutated (truncated, bytes
changed, header numbers replaced), sparse archives are built from arbitrary
arrays, and random bytes are given every extension. `main` runs in this
process: a crash of scipy's kernels would end the test run, a traceback or a
warning fails the example. The memory is limited so that a header declaring a
large matrix is refused, not run.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, limit_memory, mtx_text, strict_json
from hypothesis import given, settings
from hypothesis import strategies as st

from slq.apps.cli import main

scipy_sparse = pytest.importorskip("scipy.sparse")

# Most examples are refused in a millisecond: five times the profile's count takes about a second.
EXAMPLES = 5 * settings.default.max_examples
MATRIX = 2.0 * np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1)


def saved(save: Any) -> bytes:
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()


VALID: dict[str, bytes] = {
    "a.npy": saved(lambda f: np.save(f, MATRIX)),
    "a.npz": saved(lambda f: np.savez(f, matrix=MATRIX)),
    "z.npz": saved(lambda f: np.savez_compressed(f, MATRIX)),
    "csr.npz": saved(lambda f: scipy_sparse.save_npz(f, scipy_sparse.csr_array(MATRIX), False)),
    "coo.npz": saved(lambda f: scipy_sparse.save_npz(f, scipy_sparse.coo_matrix(MATRIX), False)),
    "a.mtx": mtx_text(
        size="4 4 7", body="1 1 2\n2 1 1\n2 2 2\n3 2 1\n3 3 2\n4 3 1\n4 4 2\n"
    ).encode(),
    "array.mtx": mtx_text(
        "array real general", "4 4", "".join(f"{x}\n" for x in MATRIX.T.flat)
    ).encode(),
}
VALID["a.mtx.gz"] = gzip.compress(VALID["a.mtx"])
NUMBERS = st.sampled_from(["0", "1", "3", "5", "-1", "99", "4294967297", "1000000000", "9" * 30])


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` after one to four edits: truncation, a changed byte, a changed number."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["truncate", "byte", "number", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "truncate":
            del data[at:]
        elif edit == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data = _replace_a_number(data, draw(st.integers(0, 10**6)), draw(NUMBERS))
    return bytes(data)


def _replace_a_number(data: bytearray, choice: int, number: str) -> bytearray:
    """Replace one run of ASCII digits (a shape, a size line, an index) with `number`."""
    runs = list(re.finditer(rb"\d+", bytes(data)))
    if not runs:
        return data
    run = runs[choice % len(runs)]
    return bytearray(data[: run.start()] + number.encode() + data[run.end() :])


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    limit_memory(monkeypatch, 256 * 2**20)
    return tmp_path


def check(folder: Path, name: str, content: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    """Run ``slq density`` on `content` saved as `name`: a result, or one line and status 2."""
    path = folder / name
    path.write_bytes(content)
    status = main(["density", str(path), "--steps", "4", "--probes", "2", "--json"])
    out, err = capsys.readouterr()
    if status == 0:
        assert err == ""
        assert out.startswith("{")
    else:
        assert_one_line_error(status, out, err)


@settings(max_examples=EXAMPLES)
@given(
    case=st.sampled_from(sorted(VALID)).flatmap(lambda n: st.tuples(st.just(n), mutated(VALID[n])))
)
def test_mutated_files(
    case: tuple[str, bytes], folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content = case
    check(folder, name, content, capsys)


@settings(max_examples=2 * settings.default.max_examples)
@given(
    name=st.sampled_from(["a.npy", "a.npz", "a.mtx", "a.mtx.gz"]), content=st.binary(max_size=200)
)
def test_random_bytes(
    name: str, content: bytes, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(folder, name, content, capsys)


INDICES = st.lists(st.integers(-3, 6), max_size=8)
INDEX_DTYPES = st.sampled_from([np.int8, np.int32, np.int64, np.uint16, np.uint64, np.float64])


@st.composite
def sparse_archives(draw: st.DrawFn) -> bytes:
    """A `save_npz`-like archive of arbitrary arrays: any format, shape, indices and lengths."""
    fmt = draw(st.sampled_from([b"csr", b"csc", b"coo", b"bsr", b"dia", b"xyz"]))
    n = draw(st.integers(-1, 5))
    arrays: dict[str, Any] = {"format": np.array(fmt), "shape": np.array([n, n])}
    data = draw(st.lists(st.floats(-1e308, 1e308) | st.just(float("nan")), max_size=8))
    arrays["data"] = cast(data, draw(st.sampled_from([np.float64, np.float32, np.int8])))
    names = ["indices", "indptr"] if fmt in (b"csr", b"csc", b"bsr") else ["row", "col"]
    for name in names + (["coords"] if draw(st.booleans()) else []):
        arrays[name] = cast(draw(INDICES), draw(INDEX_DTYPES))
    if fmt == b"dia":
        arrays["offsets"] = np.array(draw(INDICES))
    return saved(lambda f: np.savez(f, **arrays))


def cast(values: list[Any], dtype: Any) -> np.ndarray:
    """`values` as `dtype`, wrapping around or undefined where they do not fit: hostile too."""
    with np.errstate(all="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype)


@settings(max_examples=EXAMPLES)
@given(content=sparse_archives())
def test_arbitrary_sparse_archives(
    content: bytes, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(folder, "a.npz", content, capsys)


def test_the_valid_files_run(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The mutations start from files that work: each gives the largest eigenvalue.
    largest = np.linalg.eigvalsh(MATRIX)[-1]
    for name, content in VALID.items():
        (folder / name).write_bytes(content)
        status = main(["density", str(folder / name), "--json"])
        out, err = capsys.readouterr()
        assert (status, err) == (0, ""), name
        assert strict_json(out)["lambda_max"] == pytest.approx(largest, rel=1e-12), name

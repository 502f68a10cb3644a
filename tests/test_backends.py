"""`slq._backends`: every backend's basis and its one Gram–Schmidt pass, against numpy."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import Backend, assert_close, namespace, to_numpy

from slq._backends import backend_for
from slq._backends.array_api import gram_schmidt_pass, gram_schmidt_twice


def _stored(backend: Backend, rows: np.ndarray, dtype: str) -> tuple[object, object]:
    """The backend of `backend` and its basis holding `rows` (k, r, n)."""
    k, r, n = rows.shape
    chosen = backend_for(backend.xp)
    basis = chosen.new_basis((k, r + 3, n), backend.dtype(dtype), None)
    for j in range(r):
        basis = chosen.store_row(basis, j, backend.asarray(rows[:, j, :], dtype))
    return chosen, basis


def _orthonormal_rows(k: int, r: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([np.linalg.qr(rng.standard_normal((n, r)))[0].T for _ in range(k)])


@pytest.mark.parametrize(("dtype", "acc"), [("float64", "float64"), ("float32", "float64")])
def test_every_backends_pass_is_one_classical_gram_schmidt_pass(
    backend: Backend, dtype: str, acc: str
) -> None:
    rows = _orthonormal_rows(3, 5, 40, seed=1)
    w = np.random.default_rng(2).standard_normal((3, 40))
    chosen, basis = _stored(backend, rows, dtype)
    # The 5 stored rows, or (JAX: one compilation per block of rows) zero-padded to more.
    used = chosen.rows_to_project(basis, 5)
    projected, coefficients = chosen.project_pass(
        backend.asarray(w, dtype), basis, used, backend.dtype(acc)
    )
    expected_c = np.einsum("kjn,kn->kj", rows[:, :5], w)
    expected = w - np.einsum("kj,kjn->kn", expected_c, rows[:, :5])
    assert namespace(projected) is backend.xp
    # The coefficients are accumulated in `acc`: float64 agreement even for float32 rows.
    c = to_numpy(coefficients)
    assert c.dtype == np.dtype(acc) and c.shape == (3, used)
    stored = np.asarray(rows[:, :5], dtype=dtype).astype(np.float64)
    exact_c = np.einsum("kjn,kn->kj", stored, np.asarray(w, dtype=dtype).astype(np.float64))
    assert_close(c[:, :5], exact_c, dtype=np.float64, scale=np.abs(w).sum())
    assert np.all(c[:, 5:] == 0.0)
    assert_close(to_numpy(projected), expected, dtype=np.dtype(dtype), scale=np.abs(w).sum())


def test_every_backend_orthogonalises_to_working_precision(backend: Backend) -> None:
    rows = _orthonormal_rows(2, 6, 30, seed=3)
    chosen, basis = _stored(backend, rows, "float64")
    w = np.random.default_rng(4).standard_normal((2, 30))
    projected = to_numpy(chosen.orthogonalize(backend.asarray(w), basis, 6))
    assert np.abs(np.einsum("kjn,kn->kj", rows, projected)).max() < 1e-14 * np.abs(w).sum()


def test_orthogonalize_repeats_the_pass_only_for_the_probes_that_lost_orthogonality(
    backend: Backend,
) -> None:
    # Probe 0 lies within 1e-9 of the basis' span: one pass cuts its norm by ~1e9 and
    # leaves rounding of ~ε‖w‖ along the basis, ~1e-7 of what is left. Probe 1 is
    # orthogonal to the span but for ~1e-9: one pass is enough for it (DGKS).
    rows = _orthonormal_rows(2, 6, 30, seed=9)
    rng = np.random.default_rng(10)
    inside = rng.standard_normal(6) @ rows[0] + 1e-9 * rng.standard_normal(30)
    outside = rng.standard_normal(30)
    outside -= rows[1].T @ (rows[1] @ outside) - 1e-9 * rows[1][0]
    chosen, basis = _stored(backend, rows, "float64")
    passes = []
    real_pass = chosen.project_pass

    def counted(w: object, stored: object, count: int, acc: object) -> tuple[object, object]:
        passes.append(int(to_numpy(w).shape[0]))
        return real_pass(w, stored, count, acc)

    chosen.project_pass = counted  # an instance attribute: this backend object only
    try:
        w = backend.asarray(np.stack([inside, outside]))
        projected = to_numpy(chosen.orthogonalize(w, basis, 6))
    finally:
        del chosen.project_pass
    overlap = np.abs(np.einsum("kjn,kn->kj", rows, projected)).max(axis=1)
    assert np.all(overlap < 1e-14 * np.linalg.norm(projected, axis=1)), overlap
    if not chosen.repeats_in_kernel:  # numpy, torch: the second pass from the host
        assert passes == [1], passes  # probe 0 alone, once


def test_twice_sums_the_coefficients_of_both_passes() -> None:
    rows = _orthonormal_rows(1, 4, 20, seed=5)
    w = np.random.default_rng(6).standard_normal((1, 20))
    projected, c = gram_schmidt_twice(gram_schmidt_pass, w, rows, 4, np.float64)
    np.testing.assert_allclose(w - c @ rows[0], projected, atol=1e-14)


def test_a_wider_accumulation_reads_the_basis_in_bounded_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import slq._backends.array_api as generic

    rows = _orthonormal_rows(2, 9, 16, seed=7).astype(np.float32)
    w = np.random.default_rng(8).standard_normal((2, 16)).astype(np.float32)
    whole = gram_schmidt_pass(w, rows, 9, np.float64)
    monkeypatch.setattr(generic, "ACCUMULATION_ELEMENTS", 2 * 2 * 16)  # two rows a block
    blocked = gram_schmidt_pass(w, rows, 9, np.float64)
    assert_close(blocked[1], whole[1], dtype=np.float64)
    assert_close(blocked[0], whole[0], dtype=np.float32)


def test_every_backend_repeats_the_pass_only_where_dgks_asks(backend: Backend) -> None:
    # Probe 0 lies almost in the span of its basis, probe 1 almost orthogonal to it: the
    # first pass leaves probe 0 a sliver whose rounding error is large beside it.
    rows = _orthonormal_rows(2, 5, 30, seed=9)
    rng = np.random.default_rng(10)
    w = np.einsum("kj,kjn->kn", rng.standard_normal((2, 5)), rows)
    w += np.array([[1e-9], [1e3]]) * rng.standard_normal((2, 30))
    chosen, basis = _stored(backend, rows, "float64")
    before = backend.asarray(np.linalg.norm(w, axis=1))
    used = chosen.rows_to_project(basis, 5)
    projected, after, again = chosen.project_dgks(
        backend.asarray(w), basis, used, backend.dtype("float64"), before
    )
    assert to_numpy(again).tolist() == [True, False]
    if not chosen.repeats_in_kernel:
        projected = chosen.project_probes(projected, basis, used, [0])
    result = to_numpy(projected)
    assert_close(to_numpy(after), np.linalg.norm(result, axis=1), dtype=np.float64)
    overlap = np.abs(np.einsum("kjn,kn->kj", rows, result)).max(axis=1)
    assert np.all(overlap < 1e-14 * np.linalg.norm(result, axis=1))


@pytest.mark.parametrize("backend", [Backend.NUMPY, Backend.TORCH, Backend.TENSORFLOW])
@pytest.mark.parametrize("significant", [0, 1, 2, 6])
def test_the_pass_subtracts_only_rows_above_rounding(
    backend: Backend, significant: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend is Backend.TENSORFLOW:  # gathers only for large row sets: make this one large
        monkeypatch.setattr("slq._backends.tensorflow.GATHER_ELEMENTS", 0)
    # Two probes, six stored rows each; w has components of 1e-20 (rounding, kept) along
    # every row, and of order one along the first `significant` rows of probe 1 only.
    rows = _orthonormal_rows(2, 6, 40, seed=13)
    rng = np.random.default_rng(14)
    w = rng.standard_normal((2, 40))
    w -= np.einsum("kj,kjn->kn", np.einsum("kjn,kn->kj", rows, w), rows)  # orthogonal to all
    tiny = np.full((2, 6), 1e-20)
    big = tiny.copy()
    big[1, :significant] = rng.standard_normal(significant)
    w += np.einsum("kj,kjn->kn", big, rows)
    chosen, basis = _stored(backend, rows, "float64")
    before = np.linalg.norm(w, axis=1)
    given = backend.asarray(w)
    projected, _, again = chosen.project_dgks(
        given, basis, 6, backend.dtype("float64"), backend.asarray(before)
    )
    result = to_numpy(projected)
    assert not to_numpy(again).any()
    # Rows above rounding are gone, to rounding; probe 0 was only rounding away from them.
    overlap = np.abs(np.einsum("kjn,kn->kj", rows, result))
    assert np.all(overlap <= 4 * np.finfo(np.float64).eps * before[:, None])
    if significant == 0:  # nothing to subtract: the basis is read once, w returned as given
        # (TensorFlow: the pass is a graph call, which returns new tensors of the same numbers)
        assert projected is given or np.array_equal(result, w)
    if significant in (1, 2):  # probe 0 had nothing above rounding: kept, bit for bit
        np.testing.assert_array_equal(result[0], w[0])


def test_a_second_pass_of_some_probes_leaves_the_others_alone() -> None:
    rows = _orthonormal_rows(3, 4, 20, seed=11)
    w = np.random.default_rng(12).standard_normal((3, 20))
    chosen, basis = _stored(Backend.NUMPY, rows, "float64")
    again = chosen.project_probes(w, basis, 4, [1])
    np.testing.assert_array_equal(again[[0, 2]], w[[0, 2]])
    expected = gram_schmidt_pass(w[1:2], rows[1:2], 4, np.float64)[0][0]
    assert_close(again[1], expected, dtype=np.float64, scale=np.abs(w[1]).sum())


@pytest.mark.parametrize("n", [5, 5000])  # 5000: torch's row-by-row BLAS dots
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_dots_and_lengths_agree_with_numpy_on_every_backend(
    backend: Backend, n: int, dtype: str
) -> None:
    from slq._backends import row_dots, row_lengths

    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((3, n)), rng.standard_normal((3, n))
    xp = namespace(backend.asarray(a, dtype))
    dots = to_numpy(row_dots(backend.asarray(a, dtype), backend.asarray(b, dtype), xp))
    lengths = to_numpy(row_lengths(backend.asarray(a, dtype), xp))
    assert dots.shape == lengths.shape == (3,)
    # Summation orders differ between kernels: agreement to rounding of sum |a_i b_i|.
    exact = np.asarray(a, dtype).astype(np.float64), np.asarray(b, dtype).astype(np.float64)
    scale = np.abs(exact[0] * exact[1]).sum(axis=1)
    assert_close(dots, np.einsum("kn,kn->k", *exact), dtype=np.dtype(dtype), scale=scale.max())
    norms = np.linalg.norm(exact[0], axis=1)
    assert_close(lengths, norms, dtype=np.dtype(dtype), scale=norms.max())


# TensorFlow's basis is a list of row blocks appended in order, not an array of zeros.
@pytest.mark.parametrize("backend", [Backend.NUMPY, Backend.STRICT, Backend.TORCH, Backend.JAX])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_new_basis_is_zeros_of_its_dtype_and_takes_rows(backend: Backend, dtype: str) -> None:
    chosen = backend_for(backend.xp)
    basis = chosen.new_basis((2, 3, 4), backend.dtype(dtype), None)
    rows = np.arange(8.0).reshape(2, 4)
    basis = chosen.store_row(basis, 1, backend.asarray(rows, dtype))
    stored = to_numpy(chosen.stored_rows(basis, 3))
    assert stored.dtype == np.dtype(dtype) and stored.shape == (2, 3, 4)
    assert np.array_equal(stored[:, 1, :], rows)
    assert not stored[:, [0, 2], :].any()


def _huge_page_eligibility(address: int) -> int | None:
    """THPeligible of the mapping holding `address` (/proc/self/smaps), or None if not shown."""
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        bounds = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if bounds:
            inside = int(bounds[1], 16) <= address < int(bounds[2], 16)
        elif inside and line.startswith("THPeligible:"):
            return int(line.split()[1])
    return None


@pytest.mark.parametrize("shape", [(2, 3), (1, 91, 20_000)])  # 16 B and 14.6 MB
def test_a_basis_in_host_memory_is_zeros_on_small_pages(shape: tuple[int, ...]) -> None:
    from slq._backends.host_memory import basis_zeros

    basis = basis_zeros(shape, "float32" if len(shape) == 2 else "float64")
    assert basis.shape == shape and basis.flags.c_contiguous and not basis.any()
    basis[...] = 1.0  # writable; every page now faulted in
    assert float(basis.sum()) == basis.size
    if len(shape) == 2 or _huge_page_eligibility(basis.ctypes.data) is None:
        return  # too small for numpy's advice, or a kernel that does not say
    # numpy advises huge pages from 4 MiB (a plain array is eligible wherever the kernel
    # offers them on advice); the basis has that advice withdrawn.
    plain = np.zeros(shape)
    plain[...] = 1.0
    middle = basis.nbytes // 2
    settings = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if settings.exists() and "[never]" not in settings.read_text():
        assert _huge_page_eligibility(plain.ctypes.data + middle) == 1
    assert _huge_page_eligibility(basis.ctypes.data + middle) == 0


def test_an_offloaded_basis_is_on_small_pages_too() -> None:
    from slq._basis import HostBasis

    shape = (1, 91, 20_000)
    basis = HostBasis(backend_for(np), shape, np.float64, "cpu")
    basis.store(0, np.ones((1, 20_000)))
    assert basis.data is not None and float(basis.data.sum()) == 20_000.0
    eligible = _huge_page_eligibility(basis.data.ctypes.data + basis.data.nbytes // 2)
    assert eligible in (None, 0)  # None: a kernel that does not say


def test_a_basis_is_plain_zeros_where_the_os_takes_no_page_advice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mmap

    from slq._backends import host_memory

    monkeypatch.delattr(mmap, "MADV_NOHUGEPAGE", raising=False)  # as on Windows and macOS
    assert not host_memory.basis_zeros((1, 2, 2**20), "float32").any()
    monkeypatch.undo()
    monkeypatch.setattr(host_memory, "_madvise", lambda: None)  # no C madvise to call
    basis = host_memory.basis_zeros((1, 2, 2**20), "float64")
    assert basis.shape == (1, 2, 2**20) and not basis.any()


def test_a_torch_basis_on_the_cpu_is_zeros_the_os_provides() -> None:
    Backend.TORCH.require()
    import torch

    from slq._backends.namespace import fresh_zeros

    xp = namespace(torch.zeros(1))
    for dtype in (torch.float16, torch.float32, torch.float64, torch.bfloat16):
        made = fresh_zeros((2, 3), dtype, torch.device("cpu"), xp)
        assert made.dtype == dtype and made.device.type == "cpu" and not made.any()
        made[1, 2] = 1.0  # writable, whoever holds the memory
        assert float(made.sum()) == 1.0

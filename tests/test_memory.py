"""`slq.memory.memory_estimate` against arithmetic and `tracemalloc`; `density(max_memory=)`."""

from __future__ import annotations

import logging
import tracemalloc
from typing import Any

import numpy as np
import pytest
from helpers import Backend, CheckedOperator, assert_close

import slq
from slq import _batch_split
from slq import memory as memory_module
from slq._density import DEFAULT_NUM_PROBES, DEFAULT_NUM_STEPS
from slq.memory import (
    MemoryEstimate,
    check_max_memory,
    format_bytes,
    largest_fitting_batch,
    memory_estimate,
)


class _Diagonal:
    """A diagonal operator: one (n, k) output per product, no matrix of n² numbers."""

    def __init__(self, n: int, dtype: Any) -> None:
        self.d = np.linspace(-1.0, 1.0, n).astype(dtype)
        self.shape, self.dtype = (n, n), self.d.dtype

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return self.d * v

    def matmat(self, v: np.ndarray) -> np.ndarray:
        return self.d[:, None] * v


def _shape_only(n: int, dtype: Any = np.float64) -> Any:
    return slq.aslinearoperator(lambda v: v, shape=(n, n), dtype=dtype)


def test_estimate_is_the_documented_arithmetic() -> None:
    n, m, k, b = 1000, 20, 6, 3
    full = memory_estimate(_shape_only(n), m, k, probe_batch_size=b)
    assert (full.n, full.num_steps, full.num_probes, full.batch) == (n, m, k, b)
    assert (full.itemsize, full.accumulation_itemsize) == (8, 8)
    assert full.basis == b * m * n * 8
    assert full.vectors == 8 * b * n * 8
    assert full.host == b * n * 8 + 4 * k * m * 8
    assert full.total == full.basis + full.vectors + full.host
    none = memory_estimate(_shape_only(n), m, k, reorthogonalize="none", probe_batch_size=b)
    assert (none.basis, none.vectors) == (0, 7 * b * n * 8)


def test_float32_counts_four_bytes_and_two_float64_copies() -> None:
    e = memory_estimate(_shape_only(1000, np.float32), 20, 4)
    assert (e.itemsize, e.accumulation_itemsize, e.batch) == (4, 8, 4)
    assert e.basis == 4 * 20 * 1000 * 4
    assert e.vectors == 4 * 1000 * (5 * 4 + 3 * 4 + 2 * 8)


def test_steps_are_capped_at_n_and_the_batch_at_the_probes() -> None:
    e = memory_estimate(_shape_only(10), 90, 3, probe_batch_size=8)
    assert (e.num_steps, e.batch) == (10, 3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_itemsize_on_every_backend(backend: Backend, dtype: str) -> None:
    op = CheckedOperator(backend.asarray(np.eye(8), dtype))
    e = memory_estimate(op, 4, 2)
    size = np.dtype(dtype).itemsize
    assert e.itemsize == size
    assert e.basis == 2 * 4 * 8 * size
    assert op.inputs == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estimate_bounds_the_traced_numpy_peak(dtype: Any) -> None:
    n, m, b = 20000, 30, 4
    op = _Diagonal(n, dtype)
    slq.density(op, num_steps=3, num_probes=2, seed=0)  # first-call caches out of the count

    def peak(reorthogonalize: str) -> int:
        tracemalloc.start()
        try:
            slq.density(op, num_steps=m, num_probes=b, seed=0, reorthogonalize=reorthogonalize)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # An upper bound but for the run's bookkeeping (Python objects, tens of KB: 1%).
    full, none = (memory_estimate(op, m, b, reorthogonalize=r) for r in ("full", "none"))
    full_peak, none_peak = peak("full"), peak("none")
    assert 0.8 * full.total <= full_peak <= 1.01 * full.total, (full_peak, full)
    assert 0.8 * none.total <= none_peak <= 1.01 * none.total, (none_peak, none)
    assert none_peak < 0.5 * full.total
    partial = memory_estimate(op, m, b, reorthogonalize="partial")
    assert 0.8 * partial.total <= peak("partial") <= 1.01 * partial.total


class _Costed(_Diagonal):
    """The diagonal operator, its products advancing a virtual clock by their width squared."""

    def __init__(self, n: int, now: list[float]) -> None:
        super().__init__(n, np.float64)
        self.now = now

    def matmat(self, v: np.ndarray) -> np.ndarray:
        self.now[0] += float(v.shape[1]) ** 2  # per probe: the width, so parts are faster
        return super().matmat(v)


def test_estimate_bounds_the_peak_of_a_batch_split_into_parts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A part of a batch split by measurement runs on to the end in a basis of its own
    # while the batch's is still held: the estimate counts it where slq picks the batch.
    now = [0.0]
    monkeypatch.setattr(_batch_split, "clock", lambda: now[0])
    monkeypatch.setattr(_batch_split, "CACHE_BYTES", 61 * 20000 * 8)  # parts of one probe
    monkeypatch.setattr(_batch_split, "PRODUCT_SHARE", np.inf)
    _batch_split.clear_decisions()
    n, m, b = 20000, 60, 4
    op = _Costed(n, now)
    slq.density(op, num_steps=3, num_probes=2, seed=0)  # first-call caches out of the count
    caplog.set_level(logging.INFO, logger="slq")
    tracemalloc.start()
    try:
        slq.density(op, num_steps=m, num_probes=b, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        _batch_split.clear_decisions()
    assert any("split into 4 parts" in r.getMessage() for r in caplog.records)
    estimate = memory_estimate(op, m, b)
    whole = memory_estimate(op, m, b, probe_batch_size=b)  # a chosen batch is never split
    assert estimate.basis == whole.basis + m * n * 8  # one part of one probe
    assert estimate.vectors == whole.vectors + b * n * 8  # the parts' own vectors
    assert whole.total < peak <= 1.01 * estimate.total, (peak, estimate)
    # A max_memory with room for the batch but not for the copy: the parts go on in
    # the batch's basis, the same probes to rounding, and no error.
    caplog.clear()
    tracemalloc.start()
    try:
        room = whole.total + b * n * 8  # the parts' vectors, not the copy
        tight = slq.density(op, num_steps=m, num_probes=b, seed=0, max_memory=room)
        tight_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        _batch_split.clear_decisions()
    assert any("split into 4 parts" in r.getMessage() for r in caplog.records)
    assert tight_peak <= 1.01 * room, (tight_peak, room)
    reference = slq.density(op, num_steps=m, num_probes=b, seed=0, probe_batch_size=b)
    assert_close(tight.alpha, reference.alpha, dtype=np.float64, scale=1.0)
    with pytest.raises(ValueError, match="max_memory"):
        slq.density(op, num_steps=m, num_probes=b, seed=0, max_memory=room - 1)


@pytest.mark.parametrize("reorthogonalize", ["full", "partial"])
def test_offloaded_estimate_bounds_the_traced_numpy_peak(reorthogonalize: str) -> None:
    # numpy's "device" is the host: the copies the estimate counts for a GPU are not made,
    # so the estimate is an upper bound here, by those few (b, n) vectors.
    n, m, b = 20000, 30, 4
    op = _Diagonal(n, np.float64)
    slq.density(op, num_steps=3, num_probes=2, seed=0, offload_basis=True)
    tracemalloc.start()
    try:
        slq.density(
            op,
            num_steps=m,
            num_probes=b,
            seed=0,
            reorthogonalize=reorthogonalize,
            offload_basis=True,
        )
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    e = memory_estimate(op, m, b, reorthogonalize=reorthogonalize, offload_basis=True)
    assert traced <= e.total <= 1.25 * traced, (traced, e)


def test_offloading_moves_the_basis_to_the_host() -> None:
    op = _shape_only(10**6, np.float32)
    on_device = memory_estimate(op, 90, 10, probe_batch_size=10)  # never split
    offloaded = memory_estimate(op, 90, 10, offload_basis=True)
    assert offloaded.basis == on_device.basis == 10 * 90 * 10**6 * 4
    # slq's own batch on the device may split, and a part of one probe copies its basis.
    assert memory_estimate(op, 90, 10).basis == on_device.basis + 90 * 10**6 * 4
    assert on_device.device_bytes == on_device.basis + on_device.vectors
    assert offloaded.device_bytes == offloaded.vectors == 10 * 10**6 * (5 * 4 + 2 * 4 + 2 * 8)
    assert offloaded.host_bytes == offloaded.basis + offloaded.host
    assert offloaded.host == on_device.host + 4 * 10 * 10**6 * 4
    assert "offload_basis=True" in str(offloaded)
    none = memory_estimate(op, 90, 10, reorthogonalize="none", offload_basis=True)
    assert none.basis == 0 and none.device_bytes == none.vectors


def test_partial_needs_the_basis_of_full_and_a_few_host_numbers() -> None:
    op = _shape_only(1000)
    full = memory_estimate(op, 20, 4)
    partial = memory_estimate(op, 20, 4, reorthogonalize="partial")
    assert (partial.basis, partial.vectors) == (full.basis, full.vectors)
    assert partial.host == full.host + 4 * 4 * 20 * 8


def test_max_memory_refuses_before_any_product(backend: Backend) -> None:
    op = CheckedOperator(backend.asarray(np.eye(100)))
    need = memory_estimate(op, 10, 4).total
    with pytest.raises(ValueError, match="max_memory") as info:
        slq.density(op, num_steps=10, num_probes=4, max_memory=need - 1, seed=0)
    assert op.inputs == 0
    message = str(info.value)
    assert f"max_memory={need - 1} bytes" in message
    assert f"estimated {need} bytes" in message
    assert "probe_batch_size=3 fits" in message
    assert 'reorthogonalize="none" fits' in message


def test_max_memory_accepts_an_estimate_that_fits() -> None:
    op = CheckedOperator(np.eye(50))
    need = memory_estimate(op, 5, 4, probe_batch_size=2).total
    dos = slq.density(op, num_steps=5, num_probes=4, probe_batch_size=2, max_memory=need, seed=0)
    assert dos.num_probes == 4


def test_the_largest_fitting_batch_is_suggested() -> None:
    op = _shape_only(10**6, np.float32)
    budget = memory_estimate(op, 90, 10, probe_batch_size=3).total
    with pytest.raises(ValueError, match="probe_batch_size=3 fits") as info:
        check_max_memory(budget, op, 90, 10, "full", 10)
    assert 'reorthogonalize="none" fits (495.9 MiB)' in str(info.value)


def test_nothing_fits_says_so() -> None:
    with pytest.raises(ValueError, match="even one probe at a time does not fit"):
        check_max_memory(100, _shape_only(1000), 10, 4, "full", 4)


@pytest.mark.parametrize(
    ("max_memory", "error", "match"),
    [
        (-1, ValueError, "max_memory must be >= 1, got -1"),
        (0, ValueError, "max_memory must be >= 1"),
        (1.5e9, TypeError, "max_memory must be an integer"),
        (True, TypeError, "max_memory must be an integer"),
        ("1GB", TypeError, "max_memory must be an integer"),
    ],
)
def test_bad_max_memory(max_memory: Any, error: type[Exception], match: str) -> None:
    op = CheckedOperator(np.eye(10))
    with pytest.raises(error, match=match):
        slq.density(op, num_steps=3, num_probes=2, max_memory=max_memory)
    assert op.inputs == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_steps": 0}, ValueError, "num_steps must be >= 1"),
        ({"num_probes": 2.0}, TypeError, "num_probes must be an integer"),
        ({"reorthogonalize": "selective"}, ValueError, "reorthogonalize must be one of"),
        ({"offload_basis": "yes"}, TypeError, "offload_basis must be True or False"),
        ({"probe_batch_size": 0}, ValueError, "probe_batch_size must be >= 1"),
    ],
)
def test_bad_estimate_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        memory_estimate(np.eye(3), **kwargs)


def test_table_and_units() -> None:
    text = str(memory_estimate(_shape_only(10**6, np.float32), 90, 10))
    assert text == memory_estimate(_shape_only(10**6, np.float32)).describe()
    assert "basis        3.7 GiB" in text  # 3.4 GiB, and one part's copy of 0.34 GiB
    assert text.splitlines()[-1].split() == ["total", "4.2", "GiB"]
    assert [format_bytes(x) for x in (0, 1023, 1024, 2**20 * 1.5, 2**50)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "1024.0 TiB",
    ]


def test_defaults_are_density_defaults() -> None:
    e = memory_estimate(_shape_only(1000))
    assert e.num_steps == DEFAULT_NUM_STEPS
    assert e.num_probes == e.batch == DEFAULT_NUM_PROBES


def test_estimate_is_immutable() -> None:
    e = memory_estimate(_shape_only(100), 5, 2)
    assert isinstance(e, MemoryEstimate)
    with pytest.raises(AttributeError):
        e.basis = 0  # type: ignore[misc]


class _CountingEstimates:
    """Stands in for `slq.memory._estimate`, counting calls; fails fast past `limit`."""

    def __init__(self, estimate: Any, limit: int) -> None:
        self.estimate, self.limit, self.calls = estimate, limit, 0

    def __call__(self, *args: Any) -> MemoryEstimate:
        self.calls += 1
        assert self.calls <= self.limit, "the batch search is not logarithmic"
        return self.estimate(*args)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _CountingEstimates:
    counter = _CountingEstimates(memory_module._estimate, limit=100)
    monkeypatch.setattr(memory_module, "_estimate", counter)
    return counter


def test_a_billion_probes_are_refused_in_a_logarithmic_number_of_estimates(
    counted: _CountingEstimates,
) -> None:
    # Issue 16: this tried every batch size from 10⁹ down, for more than ten minutes.
    op = CheckedOperator(np.eye(50))
    with pytest.raises(ValueError, match="even one probe at a time does not fit") as info:
        slq.density(op, num_probes=10**9, max_memory=10**6)
    assert "num_probes" in str(info.value)
    assert counted.calls <= 2 * 30 + 5  # log2(1e9) < 30 halvings
    assert op.inputs == 0


def test_the_largest_fitting_batch_of_a_huge_run_is_found_by_bisection(
    counted: _CountingEstimates,
) -> None:
    op = _shape_only(1000)
    k, m, fits = 10**6, 10, 123_457
    budget = memory_estimate(op, m, k, probe_batch_size=fits).total
    with pytest.raises(ValueError, match=f"probe_batch_size={fits} fits"):
        check_max_memory(budget, op, m, k, "full", k)
    assert counted.calls <= 2 * 20 + 5


@pytest.mark.parametrize("upper", [0, 1, 2, 7, 64, 1000])
def test_largest_fitting_batch_is_the_largest_that_fits(upper: int) -> None:
    for limit in range(-1, upper + 2):
        asked: list[int] = []

        def fits(b: int, limit: int = limit, asked: list[int] = asked) -> bool:
            asked.append(b)
            return b <= limit

        assert largest_fitting_batch(fits, upper) == max(0, min(limit, upper))
        assert len(asked) <= max(upper, 1).bit_length()
        assert all(1 <= b <= upper for b in asked)


class _StoppedError(Exception):
    """Raised by the operator at its first product."""


class _StopAtFirstProduct:
    def __init__(self, n: int) -> None:
        self.shape, self.dtype = (n, n), np.dtype(np.float64)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        raise _StoppedError

    def matmat(self, v: np.ndarray) -> np.ndarray:
        raise _StoppedError


def test_a_huge_num_probes_allocates_nothing_large_before_the_first_product() -> None:
    # The memory before the first product is one batch's, whatever the number of probes.
    op = _StopAtFirstProduct(50)
    tracemalloc.start()
    try:
        with pytest.raises(_StoppedError):
            slq.density(op, num_steps=20, num_probes=10**9, probe_batch_size=1, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak

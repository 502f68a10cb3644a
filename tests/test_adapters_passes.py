"""The adapters' shared data pass (`slq.adapters._batches`): fingerprints, reading again.

A NumPy subclass of `Batches` tests the mechanism without a framework; each
framework's fingerprint must be the same function of the data.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Backend, need
from slq.adapters import _batches
from slq.adapters._batches import HASH_MULTIPLIER, Batches, first_change


def sums(x: np.ndarray) -> np.ndarray:
    """(Σ|x|, Σ w·x) in float64, w_j = (j · 2654435761 mod 2³²) / 2³²: the reference."""
    flat = np.asarray(x, np.float64).reshape(-1)
    w = (np.arange(flat.size, dtype=np.uint64) * HASH_MULTIPLIER % 2**32) / 2.0**32
    return np.array([np.abs(flat).sum(), (w * flat).sum()])


class NumpyBatches(Batches):
    """Batches of (x, y) numpy pairs, fingerprinted on the host."""

    def _read(self, raw, index):
        return raw

    def _measure(self, raw, batch, index):
        return len(batch[0]), batch[0].nbytes + batch[1].nbytes

    def _layout(self, raw, batch):
        return tuple(f"[{i}]: {a.dtype} {a.shape}" for i, a in enumerate(batch))

    def _summary(self, batch):
        return np.concatenate([sums(a) for a in batch])

    def _to_host(self, summaries):
        return list(summaries)


def pairs(seed: int = 0, sizes=(4, 4, 2)) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 3)), rng.integers(0, 3, n)) for n in sizes]


class Changing:
    """Re-iterable data whose batch `which` changes from the second pass on, by `change`."""

    def __init__(self, change, which: int = 2) -> None:
        self.batches, self.change, self.which, self.passes = pairs(), change, which, 0

    def __iter__(self):
        self.passes += 1
        for i, (x, y) in enumerate(self.batches):
            yield (self.change(x), y) if i == self.which and self.passes > 1 else (x, y)


def flip_one_row(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[1] = x[1, ::-1]  # same values, same sum: only the weights see it
    return x


def full_pass(batches: Batches) -> int:
    return sum(1 for _ in batches)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (flip_one_row, r"batch 2 of the data changed between passes \(its element \[0\] has other"),
        (lambda x: x + 1e-6, r"batch 2 .* \(its element \[0\] has other values\)"),
        (
            lambda x: x[:1],
            r"batch 2 .* \(its element \[0\] was float64 \(2, 3\), now float64 \(1, 3\)",
        ),
        (lambda x: x.astype(np.float32), r"batch 2 .* was float64 \(2, 3\), now float32 \(2, 3\)"),
    ],
)
def test_a_pass_that_reads_a_changed_batch_raises_naming_it(change, message) -> None:
    batches = NumpyBatches(Changing(change), cache=False)
    with pytest.raises(ValueError, match=message) as err:
        full_pass(batches)
    assert "pass cache_data=True" in str(err.value)


def test_the_first_batch_read_again_is_checked_when_the_data_is_read() -> None:
    with pytest.raises(ValueError, match="batch 0 of the data changed between passes"):
        NumpyBatches(Changing(flip_one_row, which=0), cache=False)


def test_unchanged_data_passes_and_cached_data_is_never_read_again() -> None:
    streamed = NumpyBatches(pairs(), cache=False)
    assert [full_pass(streamed) for _ in range(3)] == [3, 3, 3]
    changing = Changing(flip_one_row)
    cached = NumpyBatches(changing, cache=None)
    assert cached.cached and full_pass(cached) == 3 and changing.passes == 1
    assert [w for _, _, w in cached] == [0.4, 0.4, 0.2]


class Counted:
    """Data whose passes yield 2-batch pairs in the given numbers (the first read, then again)."""

    def __init__(self, *counts: int) -> None:
        self.counts = list(counts)

    def __iter__(self):
        return iter(pairs(sizes=(2,) * self.counts.pop(0)))


def test_more_or_fewer_batches_on_a_later_pass() -> None:
    # Passes: the first, batch 0 read again when the data is read, then a full pass.
    with pytest.raises(ValueError, match="data yielded more batches than the 2 of its first"):
        full_pass(NumpyBatches(Counted(2, 2, 3), cache=False))
    with pytest.raises(
        ValueError, match="a pass over the data yielded 1 batches, its first pass 2"
    ):
        full_pass(NumpyBatches(Counted(2, 2, 1), cache=False))
    with pytest.raises(
        ValueError, match="a pass over the data yielded no batches: data must be re-"
    ):
        full_pass(NumpyBatches(Counted(2, 2, 0), cache=False))


def test_one_shot_data() -> None:
    with pytest.raises(ValueError, match=r"data must be re-iterable .* a generator is used up"):
        NumpyBatches((b for b in pairs()), cache=False)
    assert NumpyBatches((b for b in pairs()), cache=True).num_examples == 10
    assert NumpyBatches((b for b in pairs()), cache=None).cached

    class OnceOnly:  # iterable, but its second iterator is empty
        def __init__(self) -> None:
            self.iterator = iter(pairs())

        def __iter__(self):
            return self.iterator

    with pytest.raises(ValueError, match="data must be re-iterable"):
        NumpyBatches(OnceOnly(), cache=False)


def test_a_one_shot_iterator_too_large_to_keep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batches, "DEFAULT_CACHE_BYTES", 100)
    with pytest.raises(ValueError, match="data is an iterator, used up after one pass, and its"):
        NumpyBatches((b for b in pairs()), cache=None)
    assert not NumpyBatches(pairs(), cache=None).cached


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (None, TypeError, "data must be one batch or an iterable of batches .*, got NoneType"),
        (3, TypeError, "got int"),
        ("batches.npz", TypeError, "got str"),
        ([], ValueError, "data is empty"),
        ([(np.ones((0, 3)), np.ones(0))], ValueError, "batch 0 has 0 examples"),
    ],
)
def test_bad_data(data, error, message) -> None:
    with pytest.raises(error, match=message):
        NumpyBatches(data, cache=False)


def test_first_change_tolerates_rounding_only() -> None:
    reference = [sums(np.arange(6.0)), np.concatenate([sums(np.ones(3)), sums(np.zeros(2))])]
    assert first_change(reference, [r.copy() for r in reference]) is None
    rounded = [r * (1 + 1e-14) for r in reference]
    assert first_change(reference, rounded) is None
    moved = [reference[0], np.concatenate([sums(np.ones(3)), sums([0.0, 1e-300])])]
    assert first_change(reference, moved) == (1, 1)
    nan = [np.array([np.nan, np.nan])]
    assert first_change(nan, [np.array([np.nan, np.nan])]) is None
    assert first_change(nan, [np.array([1.0, np.nan])]) == (0, 0)
    single = [np.array([1.0, 0.5], np.float32)]
    assert first_change(single, [np.array([1.0, 0.5 + 1e-7], np.float32)]) is None
    assert first_change(single, [np.array([1.0, 0.5 + 1e-3], np.float32)]) == (0, 0)


def framework_sums(backend: Backend, x: np.ndarray) -> np.ndarray:
    need(backend)
    if backend is Backend.TORCH:
        import torch
        from slq.adapters._torch_data import fingerprint

        return fingerprint(torch.as_tensor(x)).numpy()
    if backend is Backend.JAX:
        import jax.numpy as jnp
        from slq.adapters._jax_data import fingerprint

        return np.asarray(fingerprint([jnp.asarray(x)]))
    import tensorflow as tf
    from slq.adapters._tensorflow_data import fingerprint

    return fingerprint(tf.constant(x)).numpy()


@pytest.mark.parametrize("backend", [Backend.TORCH, Backend.JAX, Backend.TENSORFLOW])
def test_every_framework_fingerprints_alike(backend: Backend) -> None:
    x = np.random.default_rng(0).standard_normal((5, 7))
    np.testing.assert_allclose(framework_sums(backend, x), sums(x), rtol=1e-12)
    labels = np.arange(10, dtype=np.int32)
    np.testing.assert_allclose(framework_sums(backend, labels), sums(labels), rtol=1e-12)

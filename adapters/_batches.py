"""The batches of a curvature operator's data: read once, then kept, or read again on every pass.

Every product is a pass over the data (`CurvatureOperator`), so every pass must
give the same batches: data read again that shuffles or augments would make each
product one of a different matrix, and Lanczos would mix them without a sign.
`Batches` reads the data once to count its examples and keeps the batches on
the device when they fit (`cache_data`). Otherwise it records a fingerprint of
each batch — its layout (every array's place, dtype and shape) and two sums per
array computed where the batch lives, Σ|x| and Σ w·x with fixed pseudo-random
weights w in [0, 1) — and every later pass must repeat them, in order, or it
raises naming the first batch that changed. The weights make a moved,
flipped or swapped value change the sum, which Σ x alone would not notice.

Each framework writes how a batch is read, measured and fingerprinted; no
framework is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from slq.adapters._common import is_single_batch

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "HASH_MULTIPLIER",
    "REITERABLE",
    "Batches",
    "check_data",
    "first_change",
]

DEFAULT_CACHE_BYTES = 1 << 30
"""Batches are kept on the device when all of them take at most this much (1 GiB)."""

HASH_MULTIPLIER = 2654435761
"""Knuth's multiplicative hash: w_j = (j · 2654435761 mod 2³²) / 2³², the fingerprints' weights."""

REITERABLE = (
    "data must be re-iterable (a list, a DataLoader, a tf.data.Dataset); a generator is used "
    "up after one pass: pass cache_data=True or a list"
)

_ADVICE = (
    "with cache_data=False the data is read again on every product and must yield the same "
    "batches in the same order on every pass (a shuffling pipeline or random augmentation does "
    "not); pass cache_data=True to read the batches once and keep them, or fix their order"
)

# How far two fingerprints of unchanged data may differ, relative to Σ|x|: reductions of
# the same values may round differently where a kernel adds in another order. Float64
# sums agree to ~1e-15; float32 sums (no float64 on the device) to ~1e-6.
_RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def check_data(data: Any, cache: bool | None, one_batch: bool) -> None:
    """Raise, before reading anything, for data that is neither a batch nor iterable, or one-shot.

    `one_batch` says whether `data` is a single batch. An iterator (a generator)
    can only be read once: it is refused with ``cache_data=False``.
    """
    if one_batch:
        return
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        msg = (
            "data must be one batch or an iterable of batches (a list, a DataLoader, a "
            f"tf.data.Dataset), got {type(data).__name__}"
        )
        raise TypeError(msg)
    if cache is False and isinstance(data, Iterator):
        raise ValueError(REITERABLE)


def first_change(reference: list[np.ndarray], now: list[np.ndarray]) -> tuple[int, int] | None:
    """Return (batch, array) of the first fingerprint that differs, or None if all agree.

    Each fingerprint holds (Σ|x|, Σ w·x) per array of a batch; both are compared
    to within a tolerance of Σ|x| that only rounding can reach (`_RTOL`). NaN
    matches NaN: data may hold NaN where the model masks it out.
    """
    for batch, (then, current) in enumerate(zip(reference, now, strict=True)):
        pairs = then.reshape(-1, 2)
        scale = np.repeat(np.abs(pairs[:, 0]), 2)
        tolerance = _RTOL.get(then.dtype, 1e-5) * scale
        with np.errstate(invalid="ignore"):
            same = (
                (then == current)
                | (np.abs(then - current) <= tolerance)
                | (np.isnan(then) & np.isnan(current))
            )
        if not same.all():
            return batch, int(np.flatnonzero(~same)[0]) // 2
    return None


def _element(place: str) -> str:
    return f"its element {place}" if place else "the batch"


def _layout_change(then: tuple[str, ...], now: tuple[str, ...]) -> str:
    """Say which leaf of a batch changed its place, dtype or shape: "its element [0] was ..."."""
    leaf = next((i for i, (a, b) in enumerate(zip(then, now, strict=False)) if a != b), None)
    if leaf is None:
        return f"it had {len(then)} elements, now {len(now)}"
    place, was = then[leaf].split(": ", 1)
    place_now, is_now = now[leaf].split(": ", 1)
    if place != place_now:
        return f"its element {place} is now {place_now}"
    return f"{_element(place)} was {was}, now {is_now}"


def _changed(index: int, what: str) -> ValueError:
    return ValueError(f"batch {index} of the data changed between passes ({what}): {_ADVICE}")


class Batches:
    """The batches of `data` with their sizes: kept on the device, or read again on every pass.

    Iterating yields (index, batch as read, weight = batch size / N). A pass that
    reads the data again raises if it yields more or fewer batches than the
    first, or a batch whose fingerprint differs. Subclasses write:

    - ``_read(raw, index)``: the batch as products take it (converted, on the device);
    - ``_measure(raw, batch, index)``: its (number of examples, bytes);
    - ``_layout(raw, batch)``: its leaves as "place: dtype shape", the arrays first and in
      the order of the summary, then any other leaf with its value (a hash of it);
    - ``_summary(batch)``: (Σ|x|, Σ w·x) of each array leaf, computed where the batch is;
    - ``_to_host(summaries)``: a pass's summaries as numpy arrays, in one transfer;

    and may change ``_iterate()`` (how the source is iterated) and
    ``_is_one_batch(data)``.
    """

    _empty = "data is empty: pass one batch or an iterable of batches"

    def __init__(self, data: Any, cache: bool | None) -> None:
        one = self._is_one_batch(data)
        check_data(data, cache, one)
        self._source: Iterable[Any] = [data] if one else data
        one_shot = isinstance(self._source, Iterator)
        self.sizes: list[int] = []
        self.layouts: list[tuple[str, ...]] = []  # every leaf's place, dtype and shape
        self.nbytes = 0
        cached: list[Any] | None = []
        summaries: list[Any] = []
        for index, raw in enumerate(self._iterate()):
            batch = self._read(raw, index)
            size, nbytes = self._measure(raw, batch, index)
            self.sizes.append(size)
            self.nbytes += nbytes
            self.layouts.append(self._layout(raw, batch))
            if cached is not None and (
                cache or (cache is None and self.nbytes <= DEFAULT_CACHE_BYTES)
            ):
                cached.append(batch)
                continue
            if one_shot:
                msg = (
                    "data is an iterator, used up after one pass, and its batches take more "
                    f"than the {DEFAULT_CACHE_BYTES >> 30} GiB kept by default: pass "
                    "cache_data=True to keep them all, or data that can be read again "
                    "(a list, a DataLoader, a tf.data.Dataset)"
                )
                raise ValueError(msg)
            # Read again on every pass: fingerprints, also of the batches kept so far.
            summaries += [self._summary(kept) for kept in cached or []]
            summaries.append(self._summary(batch))
            cached = None
        self._check_sizes()
        self._cached = cached
        self.num_examples = sum(self.sizes)
        if cached is None:
            self._reference = self._host(summaries)
            self._check_second_pass_starts_alike()

    def _check_sizes(self) -> None:
        if not self.sizes:
            raise ValueError(self._empty)
        if min(self.sizes) < 1:
            bad = self.sizes.index(min(self.sizes))
            msg = f"batch {bad} has {self.sizes[bad]} examples; every batch needs at least one"
            raise ValueError(msg)

    def _check_second_pass_starts_alike(self) -> None:
        """Read batch 0 again now: a shuffling pipeline fails here, before any product."""
        try:
            raw = next(iter(self._iterate()))
        except StopIteration:
            raise ValueError(REITERABLE) from None
        batch = self._read(raw, 0)
        self._compare([self._layout(raw, batch)], [self._summary(batch)])

    @property
    def num_batches(self) -> int:
        """The number of batches."""
        return len(self.sizes)

    @property
    def cached(self) -> bool:
        """Whether the batches are kept on the device."""
        return self._cached is not None

    def __iter__(self) -> Iterator[tuple[int, Any, float]]:
        """Yield (index, batch as read, weight = batch size / N); check a pass that read again."""
        if self._cached is not None:
            for index, batch in enumerate(self._cached):
                yield index, batch, self.sizes[index] / self.num_examples
            return
        layouts: list[tuple[str, ...]] = []
        summaries: list[Any] = []
        for index, raw in enumerate(self._iterate()):
            if index >= len(self.sizes):
                msg = (
                    f"data yielded more batches than the {len(self.sizes)} of its first pass: "
                    f"{_ADVICE}"
                )
                raise ValueError(msg)
            batch = self._read(raw, index)
            layouts.append(self._layout(raw, batch))
            summaries.append(self._summary(batch))
            yield index, batch, self.sizes[index] / self.num_examples
        self._compare(layouts, summaries, whole=True)

    def first(self) -> Any:
        """Return the first batch, as read."""
        return next(iter(self))[1]

    def _compare(
        self, layouts: list[tuple[str, ...]], summaries: list[Any], whole: bool = False
    ) -> None:
        """Raise unless a pass's first batches (all of them if `whole`) match the first pass's."""
        if not layouts:
            msg = f"a pass over the data yielded no batches: {REITERABLE}"
            raise ValueError(msg)
        if whole and len(layouts) < len(self.sizes):
            msg = (
                f"a pass over the data yielded {len(layouts)} batches, its first pass "
                f"{len(self.sizes)}: {_ADVICE}"
            )
            raise ValueError(msg)
        for index, (then, now) in enumerate(zip(self.layouts, layouts, strict=False)):
            if then != now:
                raise _changed(index, _layout_change(then, now))
        change = first_change(self._reference[: len(summaries)], self._host(summaries))
        if change is not None:
            index, leaf = change
            place = self.layouts[index][leaf].split(": ")[0]
            raise _changed(index, f"{_element(place)} has other values")

    def _host(self, summaries: list[Any]) -> list[np.ndarray]:
        """Return the fingerprints on the host, one array per batch."""
        return self._to_host(summaries) if summaries else []

    # ------------------------------------------------------------------ the framework's parts

    def _is_one_batch(self, data: Any) -> bool:
        return is_single_batch(data)

    def _iterate(self) -> Iterator[Any]:
        return iter(self._source)

    def _read(self, raw: Any, index: int) -> Any:
        raise NotImplementedError

    def _measure(self, raw: Any, batch: Any, index: int) -> tuple[int, int]:
        raise NotImplementedError

    def _layout(self, raw: Any, batch: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def _summary(self, batch: Any) -> Any:
        raise NotImplementedError

    def _to_host(self, summaries: list[Any]) -> list[np.ndarray]:
        raise NotImplementedError

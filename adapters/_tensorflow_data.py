"""The data of a TensorFlow curvature operator: its (x, y) batches, read once and counted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import tensorflow as tf
from slq.adapters._common import is_single_batch

__all__ = ["Batches"]

DEFAULT_CACHE_BYTES = 1 << 30
"""Batches are kept as tensors when all of them take at most this much (1 GiB)."""


def _as_batch(batch: Any, index: int) -> tuple[Any, Any]:
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        msg = f"batch {index} is a {type(batch).__name__}; every batch must be an (x, y) pair"
        raise TypeError(msg)
    x, y = tf.nest.map_structure(tf.convert_to_tensor, tuple(batch))
    return x, y


def _batch_size(batch: tuple[Any, Any], index: int) -> int:
    tensors = tf.nest.flatten(batch)
    if any(t.shape.rank == 0 for t in tensors):
        msg = f"batch {index} holds a scalar; x and y need the batch axis first"
        raise ValueError(msg)
    sizes = sorted({int(t.shape[0]) for t in tensors})
    if len(sizes) > 1:
        msg = (
            f"batch {index}: its tensors have leading axes of sizes {sizes}; x and y need the "
            "same batch axis first"
        )
        raise ValueError(msg)
    return sizes[0]


def _spec(batch: tuple[Any, Any]) -> Any:
    """Return the batch's TensorSpecs with the batch axis open: one trace for every size."""
    return tf.nest.map_structure(lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), batch)


def _nbytes(batch: Any) -> int:
    return sum(t.shape.num_elements() * t.dtype.size for t in tf.nest.flatten(batch))


class Batches:
    """The (x, y) batches of `data` with their sizes: kept as tensors, or re-read every pass."""

    def __init__(self, data: Any, cache: bool | None) -> None:
        one = is_single_batch(data) or (
            isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Mapping)
        )
        self._source: Iterable[Any] = [data] if one else data
        self.spec: Any = None  # batch 0's TensorSpecs, the batch axis open
        self.sizes: list[int] = []
        cached: list[tuple[Any, Any]] | None = []
        total = 0
        for index, raw in enumerate(self._source):
            batch = self._read(raw, index)
            self.sizes.append(_batch_size(batch, index))
            total += _nbytes(batch)
            if cached is not None and (cache or (cache is None and total <= DEFAULT_CACHE_BYTES)):
                cached.append(batch)
            else:
                cached = None
        if not self.sizes:
            msg = "data is empty: pass one (x, y) batch or a tf.data.Dataset of (x, y) batches"
            raise ValueError(msg)
        self._cached = cached
        self.num_examples = sum(self.sizes)

    def _read(self, raw: Any, index: int) -> tuple[Any, Any]:
        batch = _as_batch(raw, index)
        if index == 0:
            self.spec = _spec(batch)
        elif not all(
            s.is_compatible_with(t)
            for s, t in zip(tf.nest.flatten(self.spec), tf.nest.flatten(batch), strict=True)
        ):
            msg = (
                f"batch {index} does not match batch 0: got {_spec(batch)}, expected "
                f"{self.spec}; batches may differ only in their leading (batch) axis"
            )
            raise ValueError(msg)
        return batch

    def __iter__(self) -> Any:
        source = (
            self._cached
            if self._cached is not None
            else (_as_batch(b, i) for i, b in enumerate(self._source))
        )
        for index, batch in enumerate(source):
            yield index, batch, self.sizes[index] / self.num_examples

    def first(self) -> tuple[Any, Any]:
        return next(iter(self))[1]

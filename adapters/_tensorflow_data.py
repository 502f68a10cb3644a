"""The data of a TensorFlow curvature operator: its (x, y) batches, read once and counted."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from slq.adapters import _batches
from slq.adapters._batches import HASH_MULTIPLIER
from slq.adapters._common import is_single_batch

__all__ = ["Batches", "fingerprint", "is_one_batch"]


def is_one_batch(data: Any) -> bool:
    """Say whether `data` is one (x, y) batch (x may be a dict of inputs) rather than batches."""
    return is_single_batch(data) or (
        isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Mapping)
    )


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


def _matches(spec: Any, batch: Any) -> bool:
    specs, tensors = tf.nest.flatten(spec), tf.nest.flatten(batch)
    return len(specs) == len(tensors) and all(
        s.is_compatible_with(t) for s, t in zip(specs, tensors, strict=True)
    )


def _nbytes(batch: Any) -> int:
    return sum(t.shape.num_elements() * t.dtype.size for t in tf.nest.flatten(batch))


def _leaves(batch: Any, place: str = "") -> list[tuple[str, Any]]:
    """Return (place, tensor) through tuples, lists and dicts (keys sorted, as tf.nest does)."""
    if isinstance(batch, Mapping):
        return [leaf for key in sorted(batch) for leaf in _leaves(batch[key], f"{place}[{key!r}]")]
    if isinstance(batch, (tuple, list)):
        return [leaf for i, value in enumerate(batch) for leaf in _leaves(value, f"{place}[{i}]")]
    return [(place, batch)]


def fingerprint(t: Any) -> Any:
    """(Σ|x|, Σ w·x) of a tensor, w the fixed pseudo-random weights of `slq.adapters._batches`."""
    if t.dtype == tf.string:
        t = tf.strings.to_hash_bucket_fast(t, 2**31 - 1)
    x = tf.reshape(t, [-1])
    if x.dtype.is_complex:
        x = tf.concat([tf.math.real(x), tf.math.imag(x)], 0)
    x = tf.cast(x, tf.float64)
    j = tf.range(tf.size(x, out_type=tf.int64), dtype=tf.int64)
    w = tf.cast(tf.bitwise.bitwise_and(j * HASH_MULTIPLIER, 0xFFFFFFFF), tf.float64) / 2.0**32
    return tf.stack([tf.reduce_sum(tf.abs(x)), tf.reduce_sum(w * x)])


def _fingerprints(x: Any, y: Any) -> Any:
    return tf.concat([fingerprint(t) for _, t in _leaves((x, y))], 0)


class Batches(_batches.Batches):
    """The (x, y) batches of `data` with their sizes: kept as tensors, or re-read every pass."""

    _empty = "data is empty: pass one (x, y) batch or a tf.data.Dataset of (x, y) batches"

    def __init__(self, data: Any, cache: bool | None) -> None:
        self.spec: Any = None  # batch 0's TensorSpecs, the batch axis open
        self._fingerprints: Any = None  # traced on first use, for batch 0's spec
        super().__init__(data, cache)

    def _is_one_batch(self, data: Any) -> bool:
        return is_one_batch(data)

    def _read(self, raw: Any, index: int) -> tuple[Any, Any]:
        batch = _as_batch(raw, index)
        if self.spec is None:
            self.spec = _spec(batch)
        elif not _matches(self.spec, batch):
            msg = (
                f"batch {index} does not match batch 0: got {_spec(batch)}, expected "
                f"{self.spec}; batches may differ only in their leading (batch) axis"
            )
            raise ValueError(msg)
        return batch

    def _measure(self, raw: Any, batch: Any, index: int) -> tuple[int, int]:
        return _batch_size(batch, index), _nbytes(batch)

    def _layout(self, raw: Any, batch: Any) -> tuple[str, ...]:
        return tuple(f"{place}: {t.dtype.name} {tuple(t.shape)}" for place, t in _leaves(batch))

    def _summary(self, batch: Any) -> Any:
        # Traced and, unless a string is hashed, compiled by XLA into one loop per tensor:
        # eager, its dozen small ops per tensor took half as long as a small MLP's product.
        if self._fingerprints is None:
            strings = any(s.dtype == tf.string for s in tf.nest.flatten(self.spec))
            self._fingerprints = tf.function(
                functools.partial(_fingerprints),
                input_signature=list(self.spec),
                jit_compile=not strings,
            )
        return self._fingerprints(*batch)

    def _to_host(self, summaries: list[Any]) -> list[np.ndarray]:
        flat = tf.concat(summaries, 0).numpy()
        return np.split(flat, np.cumsum([int(s.shape[0]) for s in summaries])[:-1])

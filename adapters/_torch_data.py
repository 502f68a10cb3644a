"""The data of a torch curvature operator: its batches, on the parameters' device."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from slq.adapters._common import is_single_batch

__all__ = ["Batches", "to_device"]

logger = logging.getLogger("slq")

DEFAULT_CACHE_BYTES = 1 << 30
"""Batches are kept on the device when all of them take at most this much (1 GiB)."""


def to_device(batch: Any, device: torch.device) -> Any:
    """Return `batch` with every tensor in it (tuples, lists, dicts) on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def _nbytes(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.numel() * batch.element_size()
    if isinstance(batch, Mapping):
        return sum(_nbytes(value) for value in batch.values())
    if isinstance(batch, (tuple, list)):
        return sum(_nbytes(value) for value in batch)
    return 0


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class Batches:
    """The batches of `data` with their sizes: cached on the device, or streamed each pass.

    Parameters
    ----------
    data
        One batch or an iterable of batches (see `is_single_batch`).
    device
        Where the parameters live; batches are moved there.
    size_of
        ``size_of(batch) -> int``: the number of examples in a batch.
    cache
        True: keep every batch on the device; False: iterate `data` on every
        pass; None: cache when all batches take at most `DEFAULT_CACHE_BYTES`.
    """

    def __init__(
        self,
        data: Any,
        device: torch.device,
        size_of: Callable[[Any], int],
        cache: bool | None,
    ) -> None:
        self._source: Iterable[Any] = [data] if is_single_batch(data) else data
        self.device = device
        self.sizes: list[int] = []
        self._cached: list[Any] | None = []
        first: Any = None
        total = 0
        for batch in self._source:
            batch = to_device(batch, device)
            first = batch if first is None else first
            self.sizes.append(int(size_of(batch)))
            total += _nbytes(batch)
            if self._cached is not None and (
                cache or (cache is None and total <= DEFAULT_CACHE_BYTES)
            ):
                self._cached.append(batch)
            else:
                self._cached = None
        if not self.sizes:
            msg = "data is empty: pass one (inputs, targets) batch or an iterable of batches"
            raise ValueError(msg)
        if min(self.sizes) < 1:
            bad = self.sizes.index(min(self.sizes))
            msg = f"batch {bad} has {self.sizes[bad]} examples; every batch needs at least one"
            raise ValueError(msg)
        self.num_examples = sum(self.sizes)
        if self._cached is None:
            self._check_repeatable(first)
        logger.debug(
            "data: %d batches, %d examples, %.1f MB, %s",
            len(self.sizes),
            self.num_examples,
            total / 1e6,
            "cached on the device" if self._cached is not None else "streamed each pass",
        )

    def _check_repeatable(self, first: Any) -> None:
        """Raise if a second pass over the data starts with a different batch."""
        again = to_device(next(iter(self._source)), self.device)
        if not _same(first, again):
            msg = (
                "two passes over data gave different first batches (shuffling or random "
                "augmentation?): the Hessian would change between products and Lanczos would "
                "be wrong. Pass a deterministic loader (shuffle=False, no augmentation) or "
                "cache_data=True to fix the batches once"
            )
            raise ValueError(msg)

    @property
    def num_batches(self) -> int:
        """The number of batches."""
        return len(self.sizes)

    @property
    def cached(self) -> bool:
        """Whether the batches are kept on the device."""
        return self._cached is not None

    def __iter__(self) -> Iterator[tuple[int, Any, float]]:
        """Yield (index, batch on the device, weight = batch size / N)."""
        source: Iterable[Any] = self._cached if self._cached is not None else self._source
        for index, batch in enumerate(source):
            if index >= len(self.sizes):
                msg = "data yielded more batches than on the first pass: it must be repeatable"
                raise ValueError(msg)
            yield index, to_device(batch, self.device), self.sizes[index] / self.num_examples

    def first(self) -> Any:
        """Return the first batch, on the device."""
        return next(iter(self))[1]

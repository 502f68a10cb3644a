"""The data of a torch curvature operator: its batches, on the parameters' device.

Batches are detached from any autograd graph of the caller's (slq differentiates
with respect to the parameters only) and tensors made under
``torch.inference_mode()`` are cloned, since autograd cannot save them. A
DataLoader draws from torch's random number generators when it is iterated
(a seed for its workers, a shuffling order): `ReplayedRandomness` lets every
pass draw the same numbers, from a snapshot taken before the first, and gives
the caller's generators back untouched after every batch read.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from slq.adapters import _batches
from slq.adapters._batches import HASH_MULTIPLIER

__all__ = ["Batches", "ReplayedRandomness", "fingerprint", "hash_weights", "to_device"]

logger = logging.getLogger("slq")


def to_device(batch: Any, device: torch.device) -> Any:
    """Return `batch` with every tensor in it (tuples, lists, dicts) on `device`, detached.

    A tensor made under ``torch.inference_mode()`` is cloned: autograd cannot
    save it for a backward pass.
    """
    if isinstance(batch, torch.Tensor):
        moved = batch.detach().to(device, non_blocking=True)
        return moved.clone() if moved.is_inference() else moved
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def _leaves(batch: Any, place: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (place, leaf) through tuples, lists and dicts: "[0]", "['input_ids']"."""
    if isinstance(batch, Mapping):
        for key, value in batch.items():
            yield from _leaves(value, f"{place}[{key!r}]")
    elif isinstance(batch, (tuple, list)):
        for i, value in enumerate(batch):
            yield from _leaves(value, f"{place}[{i}]")
    else:
        yield place, batch


def _nbytes(batch: Any) -> int:
    return sum(t.numel() * t.element_size() for _, t in _tensors(batch))


def _tensors(batch: Any) -> list[tuple[str, torch.Tensor]]:
    return [(p, leaf) for p, leaf in _leaves(batch) if isinstance(leaf, torch.Tensor)]


def _exact(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def hash_weights(n: int, device: torch.device) -> torch.Tensor:
    """Return the fingerprints' weights w_0 … w_{n-1} of `slq.adapters._batches`."""
    j = torch.arange(n, device=device, dtype=torch.int64)
    return (j * HASH_MULTIPLIER).bitwise_and_(0xFFFFFFFF).to(_exact(device)) / 2.0**32


def fingerprint(t: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Return (Σ|x|, Σ w·x) of a tensor; `weights`, if given, has at least its size."""
    x = (torch.view_as_real(t) if t.is_complex() else t).reshape(-1).to(_exact(t.device))
    w = hash_weights(x.numel(), x.device) if weights is None else weights[: x.numel()]
    return torch.stack([torch.linalg.vector_norm(x, 1), torch.dot(w, x)])


class ReplayedRandomness:
    """The torch random states a DataLoader draws from, the same on every pass over it.

    The global CPU generator (a DataLoader draws its workers' base seed from it,
    and a shuffling sampler without a generator its order) and the generators
    of the loader and its samplers. Each pass starts from the states taken
    when this is made; around each read the caller's states are set aside and
    put back, so that slq draws nothing from them.
    """

    def __init__(self, data: Any) -> None:
        found = [
            getattr(data, "generator", None),
            getattr(getattr(data, "sampler", None), "generator", None),
            getattr(
                getattr(getattr(data, "batch_sampler", None), "sampler", None), "generator", None
            ),
        ]
        unique = {id(g): g for g in found if isinstance(g, torch.Generator)}
        self._generators = list(unique.values())
        self._start = self._states()

    def _states(self) -> list[torch.Tensor]:
        return [torch.random.get_rng_state(), *(g.get_state() for g in self._generators)]

    def _set(self, states: list[torch.Tensor]) -> None:
        torch.random.set_rng_state(states[0])
        for g, state in zip(self._generators, states[1:], strict=True):
            g.set_state(state)

    def iterate(self, source: Any) -> Iterator[Any]:
        """Iterate `source` from the first pass's random states; leave the caller's as they are."""
        stream = self._start

        def replayed(step: Callable[[], Any]) -> Any:
            nonlocal stream
            own = self._states()
            self._set(stream)
            try:
                return step()
            finally:
                stream = self._states()
                self._set(own)

        iterator = replayed(lambda: iter(source))
        while True:
            try:
                item = replayed(lambda: next(iterator))
            except StopIteration:
                return
            yield item


class Batches(_batches.Batches):
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
        pass; None: cache when all batches take at most 1 GiB.
    """

    _empty = "data is empty: pass one (inputs, targets) batch or an iterable of batches"

    def __init__(
        self,
        data: Any,
        device: torch.device,
        size_of: Callable[[Any], int],
        cache: bool | None,
    ) -> None:
        self.device = device
        self._size_of = size_of
        self._weights = torch.zeros(0, device=device)  # the longest weights needed so far
        self._randomness = ReplayedRandomness(data)
        super().__init__(data, cache)
        logger.debug(
            "data: %d batches, %d examples, %.1f MB, %s",
            len(self.sizes),
            self.num_examples,
            self.nbytes / 1e6,
            "cached on the device" if self.cached else "streamed each pass",
        )

    def _iterate(self) -> Iterator[Any]:
        return self._randomness.iterate(self._source)

    def _read(self, raw: Any, index: int) -> Any:
        return to_device(raw, self.device)

    def _measure(self, raw: Any, batch: Any, index: int) -> tuple[int, int]:
        return int(self._size_of(batch)), _nbytes(batch)

    def _layout(self, raw: Any, batch: Any) -> tuple[str, ...]:
        arrays = [f"{p}: {t.dtype} {tuple(t.shape)}" for p, t in _tensors(batch)]
        others = [
            f"{p}: {type(leaf).__name__} #{zlib.crc32(repr(leaf).encode()):08x}"
            for p, leaf in _leaves(batch)
            if not isinstance(leaf, torch.Tensor)
        ]
        return (*arrays, *others)

    def _summary(self, batch: Any) -> torch.Tensor:
        tensors = [t for _, t in _tensors(batch)]
        longest = max((2 * t.numel() if t.is_complex() else t.numel() for t in tensors), default=0)
        if longest > self._weights.numel():  # kept, not made again for every batch
            self._weights = hash_weights(longest, self.device)
        sums = [fingerprint(t, self._weights) for t in tensors]
        return torch.cat(sums) if sums else self._weights[:0]

    def _to_host(self, summaries: list[torch.Tensor]) -> list[np.ndarray]:
        flat = torch.cat(summaries).cpu().numpy()
        return np.split(flat, np.cumsum([s.numel() for s in summaries])[:-1])

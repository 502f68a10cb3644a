"""The data of a JAX curvature operator: its batches, and how they are sharded over devices.

`Batches` reads the data once (sizes, and the batches kept on the device when
they fit); `Sharding` splits every batch over all devices, of one process or of
every process of a `jax.distributed` run, and `build_together` checks that the
processes agree on their data and parameters before any product.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from slq.adapters import _batches
from slq.adapters._batches import HASH_MULTIPLIER
from slq.adapters._jax_checks import check_untraced

__all__ = ["Batches", "Sharding", "build_together", "fingerprint", "leading_size"]


def leading_size(batch: Any, index: int) -> int:
    sizes = {
        int(np.shape(leaf)[0]) for leaf in jax.tree_util.tree_leaves(batch) if np.ndim(leaf) > 0
    }
    if len(sizes) != 1:
        msg = (
            f"batch {index}: its arrays have leading axes of sizes {sorted(sizes)}; every array "
            "of a batch needs the batch axis first (or pass batch_size=)"
        )
        raise ValueError(msg)
    return sizes.pop()


def _leaves(batch: Any, index: int) -> list[tuple[str, Any]]:
    """Return (place, array) for every leaf of a batch; raise naming a leaf that is no array."""
    leaves = jax.tree_util.tree_flatten_with_path(batch)[0]
    for path, leaf in leaves:
        check_untraced(leaf, f"batch {index}'s leaf {jax.tree_util.keystr(path) or '(the batch)'}")
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            msg = (
                f"batch {index}: its leaf {jax.tree_util.keystr(path) or 'the batch'} is a "
                f"{type(leaf).__name__}, not an array; a batch is a pytree of arrays"
            )
            raise TypeError(msg)
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in leaves]


@jax.jit
def fingerprint(leaves: list[Any]) -> Any:
    """(Σ|x|, Σ w·x) of each array, w the fixed pseudo-random weights of `slq.adapters._batches`."""
    exact = jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 unless x64 is enabled
    out = []
    for leaf in leaves:
        x = jnp.ravel(leaf)
        if jnp.iscomplexobj(x):
            x = jnp.concatenate([x.real, x.imag])
        x = x.astype(exact)
        j = jnp.arange(x.size, dtype=jnp.uint32)
        w = (j * jnp.uint32(HASH_MULTIPLIER)).astype(exact) / 2.0**32
        out += [jnp.sum(jnp.abs(x)), jnp.sum(w * x)]
    return jnp.stack(out) if out else jnp.zeros(0, exact)


class Batches(_batches.Batches):
    """The batches of `data` with their sizes: kept on the device, or re-read on every pass.

    ``trees`` (each batch's tree structure, shapes and dtypes in this process)
    are compared across processes by `build_together`.
    """

    _empty = "data is empty: pass one batch (a pytree of arrays) or an iterable of batches"

    def __init__(
        self,
        data: Any,
        place: Callable[[Any, int], Any],
        size_of: Callable[[Any, int], int],
        cache: bool | None,
    ) -> None:
        self._place, self._size_of = place, size_of
        self.trees: list[str] = []
        super().__init__(data, cache)

    def make_global(self, sizes: list[int]) -> None:
        """Count every process's examples: `sizes[b]` is the size of global batch b."""
        self.sizes = sizes
        self.num_examples = sum(sizes)

    def _read(self, raw: Any, index: int) -> Any:
        return self._place(raw, index)

    def _measure(self, raw: Any, batch: Any, index: int) -> tuple[int, int]:
        leaves = [leaf for _, leaf in _leaves(raw, index)]
        shapes = [(np.shape(leaf), str(np.dtype(leaf.dtype))) for leaf in leaves]
        self.trees.append(f"{jax.tree_util.tree_structure(raw)} {shapes}")
        nbytes = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in shapes)
        return int(self._size_of(raw, index)), nbytes

    def _layout(self, raw: Any, batch: Any) -> tuple[str, ...]:
        return tuple(
            f"{place}: {np.dtype(leaf.dtype)} {tuple(np.shape(leaf))}"
            for place, leaf in _leaves(raw, 0)
        )

    def _summary(self, batch: Any) -> list[Any]:
        """One vector per device, of this process's shards there: nothing is communicated."""
        by_device: dict[Any, list[Any]] = {}
        for leaf in jax.tree_util.tree_leaves(batch):
            for shard in leaf.addressable_shards:
                by_device.setdefault(shard.device, []).append(shard.data)
        return [fingerprint(parts) for parts in by_device.values()]

    def _to_host(self, summaries: list[list[Any]]) -> list[np.ndarray]:
        """Each batch's sums added over its devices' shards, read in one transfer."""
        return [np.sum(np.stack(parts), axis=0) for parts in jax.device_get(summaries)]


class Sharding:
    """Every batch split over all devices along its leading axis; parameters and vectors replicated.

    With several processes (`jax.distributed`) the devices are every process's,
    and each process passes its own part of every batch: global batch b joins, in
    process order, every process's batch b (`jax.make_array_from_process_local_data`).
    Parameters and vectors are the same on every process, which places its own
    copy: no communication but the products' reductions.
    """

    def __init__(self) -> None:
        devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
        self.mesh = Mesh(np.array(devices), ("data",))
        self.data = NamedSharding(self.mesh, PartitionSpec("data"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.process_index, self.process_count = jax.process_index(), jax.process_count()

    def place(self, batch: Any, index: int) -> Any:
        """Return this process's part of batch `index`, split over the devices."""
        count = jax.local_device_count()
        devices = (
            f"the {count} devices it is sharded over"
            if self.process_count == 1
            else f"the {count} devices of process {self.process_index}, over which each "
            "process splits its part of every batch"
        )
        for leaf in jax.tree_util.tree_leaves(batch):
            if np.ndim(leaf) == 0 or np.shape(leaf)[0] % count:
                msg = (
                    f"batch {index} has a leading axis of {np.shape(leaf)[:1]}, not a multiple of "
                    f"{devices}"
                )
                raise ValueError(msg)
        return jax.make_array_from_process_local_data(self.data, batch)

    def replicate(self, tree: Any) -> Any:
        """Return `tree` (the same on every process) replicated on every device."""
        return jax.make_array_from_process_local_data(self.replicated, tree)

    def gather(self, values: np.ndarray) -> np.ndarray:
        """Return every process's `values`, stacked along a new first axis (one collective)."""
        if self.process_count == 1:
            return values[None]
        return np.asarray(multihost_utils.process_allgather(values))

    def smallest(self, value: float) -> float:
        """Return the smallest of every process's `value` (gathered in float32)."""
        if self.process_count == 1:
            return value
        return float(self.gather(np.array([value], np.float32)).min())


def _checksum(tree: Any) -> int:
    """Return a 31-bit checksum of the arrays of `tree`, to compare them across processes."""
    return zlib.crc32(np.asarray(ravel_pytree(tree)[0]).tobytes()) & 0x7FFFFFFF


def build_together(build: Callable[[], Batches], params: Any, sharding: Sharding | None) -> Batches:
    """Build this process's batches; with several processes, check that they agree.

    Building is local (no collective), so a process whose build fails still joins
    the one gather that tells every process, and every process raises instead of
    waiting for it in a later collective.
    """
    if sharding is None or sharding.process_count == 1:
        return build()
    batches: Batches | None = None
    error: Exception | None = None
    try:
        batches = build()
    except Exception as err:  # re-raised below, once every process knows
        error = err
    count = 0 if batches is None else len(batches.sizes)
    mine = np.array([error is not None, count, _checksum(params)], np.int32)
    every = sharding.gather(mine)
    if error is not None:
        raise error
    assert batches is not None  # built when there was no error
    _check_processes_agree(every)
    _make_global(batches, sharding)
    return batches


def _check_processes_agree(every: np.ndarray) -> None:
    """Raise unless every row (failed, number of batches, params checksum) agrees."""
    failed = np.flatnonzero(every[:, 0]).tolist()
    if failed:
        msg = (
            f"building the sharded operator failed on process(es) {failed} (see their errors); "
            "every process needs at least one batch of data"
        )
        raise RuntimeError(msg)
    counts = every[:, 1].tolist()
    if len(set(counts)) > 1:
        msg = (
            f"every process must pass the same number of batches (global batch b joins every "
            f"process's batch b), got {counts} on processes 0 to {len(counts) - 1}"
        )
        raise ValueError(msg)
    if len(set(every[:, 2].tolist())) > 1:
        msg = (
            "params differ between processes: every process must pass the same parameters "
            "(initialise them from the same seed)"
        )
        raise ValueError(msg)


def _make_global(batches: Batches, sharding: Sharding) -> None:
    """Check that every process's batch b has one layout; count every process's examples."""
    rows = [
        [size, zlib.crc32(tree.encode()) & 0x7FFFFFFF]
        for size, tree in zip(batches.sizes, batches.trees, strict=True)
    ]
    every = sharding.gather(np.array(rows, np.int32))  # (processes, batches, 2)
    differ = np.flatnonzero((every[:, :, 1] != every[0, :, 1]).any(axis=0))
    if differ.size:
        b = int(differ[0])
        msg = (
            f"batch {b} differs in shapes or dtypes between processes (here: "
            f"{batches.trees[b]}): every process's batch {b} must have the same ones, as "
            f"each is one equal part of global batch {b}"
        )
        raise ValueError(msg)
    batches.make_global(every[:, :, 0].sum(axis=0).tolist())

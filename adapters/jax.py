"""JAX losses and data as exact, jitted Hessian operators.

``slq.density(adapters.jax_hessian(loss_fn, params, data))`` is the eigenvalue
density of the Hessian of L(θ) = Σ_b (N_b / N) loss_fn(θ, batch_b) over every
batch of `data`, for any pytree of parameters (pure JAX, Flax, Equinox).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from slq.adapters._common import DataCounts, check_vector, is_single_batch

from slq._validate import check_positive_int

__all__ = ["JaxHessian", "jax_hessian"]

logger = logging.getLogger("slq")

DEFAULT_CACHE_BYTES = 1 << 30
"""Batches are kept on the device when all of them take at most this much (1 GiB)."""

DEFAULT_RETAIN_BYTES = 2 << 30
"""Linearized gradients are kept while their residuals take at most this (2 GiB) on the
CPU; on an accelerator, at most half of its free memory."""


def _check_params(params: Any) -> None:
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    if not leaves:
        msg = "params has no array leaves: pass the pytree of parameters to differentiate"
        raise ValueError(msg)
    for path, leaf in leaves:
        name = jax.tree_util.keystr(path) or "params"
        if not hasattr(leaf, "dtype") or not hasattr(leaf, "shape"):
            msg = f"params leaf {name} is a {type(leaf).__name__}, not an array"
            raise TypeError(msg)
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            msg = f"params leaf {name} has dtype {leaf.dtype}: parameters must be floating point"
            raise TypeError(msg)


def _leading_size(batch: Any, index: int) -> int:
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


class _Batches:
    """The batches of `data` with their sizes: kept on the device, or re-read on every pass."""

    def __init__(
        self,
        data: Any,
        place: Callable[[Any, int], Any],
        size_of: Callable[[Any, int], int],
        cache: bool | None,
    ) -> None:
        self._source: Iterable[Any] = [data] if is_single_batch(data) else data
        self._place = place
        self.sizes: list[int] = []
        cached: list[Any] | None = []
        total = 0
        for index, batch in enumerate(self._source):
            self.sizes.append(int(size_of(batch, index)))
            total += sum(
                np.size(leaf) * np.dtype(leaf.dtype).itemsize
                for leaf in jax.tree_util.tree_leaves(batch)
            )
            if cached is not None and (cache or (cache is None and total <= DEFAULT_CACHE_BYTES)):
                cached.append(place(batch, index))
            else:
                cached = None
        if not self.sizes:
            msg = "data is empty: pass one batch (a pytree of arrays) or an iterable of batches"
            raise ValueError(msg)
        self._cached = cached
        self.num_examples = sum(self.sizes)

    def __iter__(self) -> Any:
        source: Iterable[Any] = (
            self._cached
            if self._cached is not None
            else (self._place(b, i) for i, b in enumerate(self._source))
        )
        for index, batch in enumerate(source):
            yield index, batch, self.sizes[index] / self.num_examples


def _default_chunk(device: Any) -> int | None:
    """Columns per step of `matmat`: one on a CPU, all of them on an accelerator.

    On the CPU, XLA's batched matrix products and the k-fold larger activations
    made a vmapped product of 8 columns cost 2.3x per column what one product
    does (64-200-10 MLP, digits, 2 cores); a compiled loop over the columns
    keeps the one-dispatch benefit without that.
    """
    return 1 if device.platform == "cpu" else None


def _budget(device: Any) -> float:
    stats = getattr(device, "memory_stats", lambda: None)()
    if device.platform != "cpu" and stats and "bytes_limit" in stats:
        return (stats["bytes_limit"] - stats.get("bytes_in_use", 0)) / 2
    return DEFAULT_RETAIN_BYTES


class JaxHessian(DataCounts):
    """The Hessian of a JAX loss over a dataset, as a `slq.LinearOperator`.

    Vectors are flat jax arrays in `jax.flatten_util.ravel_pytree` order, on the
    parameters' device. Made by `jax_hessian`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slq import adapters
    >>> def loss(params, batch):
    ...     x, y = batch
    ...     return jnp.mean((x @ params["w"] - y) ** 2)
    >>> data = (jnp.ones((8, 3)), jnp.zeros(8))
    >>> op = adapters.jax_hessian(loss, {"w": jnp.zeros(3)}, data)
    >>> isinstance(op, adapters.JaxHessian), op.shape
    (True, (3, 3))
    """

    def __init__(
        self,
        loss_fn: Callable[[Any, Any], Any],
        params: Any,
        batches: _Batches,
        *,
        chunk_size: int | None,
        reuse_primal: bool | None,
        sharding: Any,
    ) -> None:
        flat, self._unravel = ravel_pytree(params)
        self._params, self._batches = params, batches
        self._sharding = sharding
        n = int(flat.size)
        self.shape = (n, n)
        self.dtype = flat.dtype
        self.device = min(flat.devices(), key=lambda d: d.id)
        self._chunk = _default_chunk(self.device) if chunk_size is None else chunk_size
        self.traces = 0  # how often a product was traced (compiled): once per batch shape
        self._fresh = jax.jit(self._fresh_products)
        self._apply_linear = jax.jit(self._linear_products)
        self._linear = self._keep_primals(loss_fn, reuse_primal)
        self._loss = loss_fn
        self.hvp = (
            f"linearized gradient for {len(self._linear)}/{len(batches.sizes)} batches, "
            "else jvp of grad"
            if self._linear
            else "jvp of grad"
        )

    def __repr__(self) -> str:
        return (
            f"<slq Hessian of a JAX loss, n={self.shape[0]}, {self.dtype}, {self.device}, "
            f"{self.num_examples} examples in {self.num_batches} batches>"
        )

    def unflatten(self, v: Any) -> Any:
        """Return the flat vector `v` as a pytree shaped like the parameters.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from slq import adapters
        >>> loss = lambda params, batch: jnp.mean((batch @ params["w"]) ** 2)
        >>> op = adapters.jax_hessian(loss, {"w": jnp.zeros(3)}, jnp.ones((4, 3)))
        >>> op.flatten(op.unflatten(jnp.arange(3.0))).tolist()
        [0.0, 1.0, 2.0]
        """
        self._check(v, 1)
        return self._unravel(v)

    def flatten(self, tree: Any) -> Any:
        """Return the flat vector of a pytree shaped like the parameters.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from slq import adapters
        >>> loss = lambda params, batch: jnp.mean((batch @ params["w"]) ** 2)
        >>> op = adapters.jax_hessian(loss, {"w": jnp.zeros(3)}, jnp.ones((4, 3)))
        >>> op.flatten(op.unflatten(jnp.arange(3.0))).tolist()
        [0.0, 1.0, 2.0]
        """
        flat, _ = ravel_pytree(tree)
        self._check(flat, 1)
        return flat

    # The traced bodies: Python here runs only while tracing, so `traces` counts compiles.
    def _fresh_products(self, params: Any, batch: Any, tangents: Any, weight: Any) -> Any:
        self.traces += 1
        gradient = jax.grad(self._loss)

        def one(t: Any) -> Any:
            return ravel_pytree(
                jax.jvp(lambda p: gradient(p, batch), (params,), (self._unravel(t),))[1]
            )[0]

        return self._weighted(self._map(one, tangents), weight)

    def _weighted(self, products: Any, weight: Any) -> tuple[Any, Any]:
        """Return the batch's share of the products and whether they are all finite."""
        return weight * products, jnp.isfinite(products).all()

    def _map(self, one: Callable[[Any], Any], tangents: Any) -> Any:
        """Apply `one` to a vector, or to every column: `chunk` columns at a time."""
        if tangents.ndim == 1:
            return one(tangents)
        if self._chunk is None:
            return jax.vmap(one, in_axes=1, out_axes=1)(tangents)
        return jax.lax.map(one, tangents.T, batch_size=self._chunk).T

    def _linear_products(self, linear: Any, tangents: Any, weight: Any) -> Any:
        self.traces += 1

        def one(t: Any) -> Any:
            return ravel_pytree(linear(self._unravel(t)))[0]

        return self._weighted(self._map(one, tangents), weight)

    def _keep_primals(
        self, loss_fn: Callable[[Any, Any], Any], reuse: bool | None
    ) -> dict[int, Any]:
        """Linearize the gradient for as many batches as fit, so they skip the primal pass."""
        if reuse is False:
            return {}
        budget = math.inf if reuse else _budget(self.device)
        kept: dict[int, Any] = {}
        used = 0
        gradient = jax.grad(loss_fn)

        # Jitted, so batches of one shape share one linear function (one compile) and
        # differ only in their residuals.
        @jax.jit
        def linearize(params: Any, batch: Any) -> Any:
            return jax.linearize(lambda p: gradient(p, batch), params)[1]

        for index, batch, _ in self._batches:
            linear = linearize(self._params, batch)
            size = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(linear))
            if used + size > budget:
                break
            kept[index] = linear
            used += size
        logger.debug("jax_hessian: kept %d linearized gradients (%.1f MB)", len(kept), used / 1e6)
        return kept

    def matvec(self, v: Any, /) -> Any:
        """Return the product with the flat vector `v` of shape (n,)."""
        self._check(v, 1)
        return self._products(v)

    def matmat(self, vectors: Any, /) -> Any:
        """Return the products with the k columns of `vectors` (shape (n, k)) in one data pass."""
        self._check(vectors, 2)
        return self._products(vectors)

    def _products(self, vectors: Any) -> Any:
        tangents = (
            vectors
            if self._sharding is None
            else jax.device_put(vectors, self._sharding.replicated)
        )
        total = None
        finite = []
        for index, batch, weight in self._batches:
            linear = self._linear.get(index)
            out, ok = (
                self._apply_linear(linear, tangents, weight)
                if linear is not None
                else self._fresh(self._params, batch, tangents, weight)
            )
            finite.append(ok)
            total = out if total is None else total + out
        flags = np.asarray(finite)  # one transfer of a few booleans, after every batch is queued
        if not flags.all():
            self._raise_non_finite(int(np.flatnonzero(~flags)[0]))
        return jax.device_put(total, self.device)

    def _raise_non_finite(self, index: int) -> None:
        batch = next(b for i, b, _ in self._batches if i == index)
        loss = float(self._loss(self._params, batch))
        what = f"the loss is {loss}" if not math.isfinite(loss) else "the loss is finite"
        msg = f"the Hessian product is not finite on batch {index} ({what}): check that batch"
        raise FloatingPointError(msg)

    def _check(self, v: Any, ndim: int) -> None:
        check_vector(v, ndim, self.shape[0], self.dtype, jax.Array, "a jax array")


class _Sharding:
    """Data split over every device along its leading axis; parameters and vectors replicated."""

    def __init__(self) -> None:
        self.mesh = Mesh(np.array(jax.devices()), ("data",))
        self.data = NamedSharding(self.mesh, PartitionSpec("data"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

    def place(self, batch: Any, index: int) -> Any:
        count = self.mesh.size
        for leaf in jax.tree_util.tree_leaves(batch):
            if np.ndim(leaf) == 0 or np.shape(leaf)[0] % count:
                msg = (
                    f"batch {index} has a leading axis of {np.shape(leaf)[:1]}, not a multiple of "
                    f"the {count} devices it is sharded over"
                )
                raise ValueError(msg)
        return jax.device_put(batch, self.data)


def jax_hessian(
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    data: Any,
    *,
    batch_size: Callable[[Any], int] | None = None,
    reuse_primal: bool | None = None,
    chunk_size: int | None = None,
    cache_data: bool | None = None,
    shard: bool = False,
) -> JaxHessian:
    r"""Return the Hessian of a JAX loss over a dataset as a `slq.LinearOperator`.

    H = ∇²L(θ) with L(θ) = Σ_b (N_b / N) loss_fn(θ, batch_b): each batch's mean
    loss weighted by its size, so the operator does not depend on how the data
    is split (Ghorbani, Krishnan & Xiao 2019, Eq. 1).

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(params, batch) -> scalar``, the batch *mean* loss. A model with
        state (BatchNorm statistics: Flax ``batch_stats``, Equinox ``nn.State``)
        closes over the state; train-mode statistics are computed, used and
        discarded, never written back.
    params : pytree of floating arrays
        Where the Hessian is taken. Vectors are flat, in
        ``jax.flatten_util.ravel_pytree`` order (`flatten`, `unflatten`).
    data
        One batch (a pytree of arrays whose leading axis is the batch: a tuple,
        a dict) or an iterable of such batches.
    batch_size : callable, optional
        ``batch_size(batch) -> int`` where the leading axis is not the batch size.
    reuse_primal : bool, optional
        Keep ``jax.linearize`` of each batch's gradient, so that a product costs
        only its tangent part; None (default): for as many batches as fit in
        2 GiB on the CPU or half the free accelerator memory (by the residuals'
        size); the rest use a fresh ``jax.jvp`` of ``jax.grad``. Every product is
        compiled once per batch shape.
    chunk_size : int, optional
        At most this many vectors at once in `matmat` (``jax.vmap`` within
        ``jax.lax.map`` chunks). Default: one at a time on a CPU (where vmapped
        columns measured slower per column than single products), all k at once
        on an accelerator.
    cache_data : bool, optional
        Keep the batches on the device: True, False, or None to cache when they
        take at most 1 GiB.
    shard : bool
        Split every batch over all of ``jax.devices()`` along its leading axis:
        XLA computes the products data-parallel and reduces across devices.

    Returns
    -------
    JaxHessian
        An operator with ``matvec``, ``matmat``, ``shape``, ``dtype``, ``device``,
        ``flatten``, ``unflatten``, ``num_examples``, ``traces``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import slq
    >>> from slq import adapters
    >>> def loss_fn(params, batch):
    ...     x, y = batch
    ...     logits = jnp.tanh(x @ params["w1"]) @ params["w2"]
    ...     return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])
    >>> keys = jax.random.split(jax.random.key(0), 3)
    >>> params = {"w1": jax.random.normal(keys[0], (4, 8)),
    ...           "w2": jax.random.normal(keys[1], (8, 3))}
    >>> x, y = jax.random.normal(keys[2], (64, 4)), jnp.arange(64) % 3
    >>> op = adapters.jax_hessian(loss_fn, params, (x, y))
    >>> op.shape
    (56, 56)
    >>> dos = slq.density(op, num_steps=56, num_probes=2, seed=0)
    """
    if not callable(loss_fn):
        msg = f"loss_fn must be callable(params, batch), got {type(loss_fn).__name__}"
        raise TypeError(msg)
    _check_params(params)
    chunk = None if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    sharding = _Sharding() if shard else None
    params = jax.device_put(params, sharding.replicated) if sharding else params

    def size_of(batch: Any, index: int) -> int:
        return int(batch_size(batch)) if batch_size is not None else _leading_size(batch, index)

    def place(batch: Any, index: int) -> Any:
        return sharding.place(batch, index) if sharding else jax.device_put(batch)

    batches = _Batches(data, place, size_of, cache_data)
    _check_loss(loss_fn, params, next(iter(batches))[1])
    op = JaxHessian(
        loss_fn, params, batches, chunk_size=chunk, reuse_primal=reuse_primal, sharding=sharding
    )
    logger.info("jax_hessian: n=%d, %d examples; %s", op.shape[0], op.num_examples, op.hvp)
    return op


def _check_loss(loss_fn: Callable[[Any, Any], Any], params: Any, batch: Any) -> None:
    loss = loss_fn(params, batch)
    if np.ndim(loss) != 0:
        msg = f"loss_fn must return a scalar (the batch mean), got shape {np.shape(loss)}"
        raise ValueError(msg)
    if not math.isfinite(float(loss)):
        msg = f"the loss is {float(loss)} on batch 0: check the data and the parameters"
        raise FloatingPointError(msg)

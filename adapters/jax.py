"""JAX losses and data as exact, jitted Hessian operators.

``slq.density(adapters.jax_hessian(loss_fn, params, data))`` is the eigenvalue
density of the Hessian of L(θ) = Σ_b (N_b / N) loss_fn(θ, batch_b) over every
batch of `data`, for any pytree of parameters (pure JAX, Flax, Equinox).
With ``shard=True`` every batch is split over all devices, of one process or of
every process of a `jax.distributed` run.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from slq.adapters._batches import check_data
from slq.adapters._checks import check_callable, check_optional_bool
from slq.adapters._common import is_single_batch
from slq.adapters._jax_checks import (
    TRANSFORMED,
    check_loss,
    check_params,
    slow_in_cpu_loops,
)
from slq.adapters._jax_data import Batches, Sharding, build_together, leading_size
from slq.adapters._jax_products import (
    TRACES,
    HessianProduct,
    LinearizeBatches,
    checked_products,
    programs,
)
from slq.adapters._jax_verify import linearized_disagreement, seeded_vector
from slq.adapters._operator import CurvatureOperator

from slq._backends.traceable import TraceableProduct
from slq._validate import check_bool, check_positive_int

__all__ = ["JaxCurvatureOperator", "JaxHessian", "jax_hessian"]

logger = logging.getLogger("slq")

DEFAULT_RETAIN_BYTES = 2 << 30
"""Linearized gradients are kept while their residuals take at most this (2 GiB) on the
CPU; on an accelerator, at most half of its free memory."""


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


class JaxCurvatureOperator(CurvatureOperator):
    """The Hessian of a JAX loss over a dataset, as a `slq.LinearOperator`.

    Vectors are flat jax arrays in `jax.flatten_util.ravel_pytree` order, on the
    parameters' device (sharded: the first device of this process). Made by
    `jax_hessian`. Also importable by its former name, ``JaxHessian``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slq import adapters
    >>> def loss(params, batch):
    ...     x, y = batch
    ...     return jnp.mean((x @ params["w"] - y) ** 2)
    >>> data = (jnp.ones((8, 3)), jnp.zeros(8))
    >>> op = adapters.jax_hessian(loss, {"w": jnp.zeros(3)}, data)
    >>> isinstance(op, adapters.JaxCurvatureOperator), op.shape
    (True, (3, 3))
    """

    _array_type = jax.Array
    _array_name = "a jax array"

    def __init__(
        self,
        loss_fn: Callable[[Any, Any], Any],
        params: Any,
        batches: Batches,
        *,
        chunk_size: int | None,
        reuse_primal: bool | None,
        sharding: Any,
        slow_in_loops: bool = False,
    ) -> None:
        flat, self._unravel = ravel_pytree(params)
        self._params, self._batches = params, batches
        self._sharding = sharding
        n = int(flat.size)
        self.shape = (n, n)
        self.dtype = flat.dtype
        self.device = _first_local_device(flat)
        self._chunk = _default_chunk(self.device) if chunk_size is None else chunk_size
        # Each column its own program, called from the host: see `_jax_checks.SLOW_IN_CPU_LOOPS`.
        self._host_columns = slow_in_loops and chunk_size is None and self.device.platform == "cpu"
        self.traces = 0  # how often a product was traced (compiled): once per batch shape
        # Sharded: products replicated on every device, so any process reads them locally.
        self._programs = programs(None if sharding is None else sharding.replicated)
        self._loss = loss_fn
        self._linear = self._keep_primals(loss_fn, reuse_primal)
        self._verify_linearized()
        self.hvp = (
            f"linearized gradient for {len(self._linear)}/{len(batches.sizes)} batches, "
            "else jvp of grad"
            if self._linear
            else "jvp of grad"
        )
        if self._host_columns:
            self.hvp += "; a program per column, runs stepped (convolutions on the CPU)"

    @property
    def process_index(self) -> int:
        """The index of this process among those sharing the data; 0 when not sharded.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from slq import adapters
        >>> loss = lambda params, batch: jnp.mean((batch @ params["w"]) ** 2)
        >>> op = adapters.jax_hessian(loss, {"w": jnp.zeros(3)}, jnp.ones((4, 3)), shard=True)
        >>> op.process_index, op.process_count, op.writes_files
        (0, 1, True)
        """
        return 0 if self._sharding is None else self._sharding.process_index

    @property
    def process_count(self) -> int:
        """The number of processes sharing the data (``jax.process_count()`` when sharded), else 1.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from slq import adapters
        >>> loss = lambda params, batch: jnp.mean((batch @ params["w"]) ** 2)
        >>> adapters.jax_hessian(loss, {"w": jnp.zeros(3)}, jnp.ones((4, 3))).process_count
        1
        """
        return 1 if self._sharding is None else self._sharding.process_count

    @property
    def writes_files(self) -> bool:
        """Whether this process should write results (checkpoints, saved densities): process 0 only.

        `slq.density` reads it: every process computes the same density, one writes it.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from slq import adapters
        >>> loss = lambda params, batch: jnp.mean((batch @ params["w"]) ** 2)
        >>> adapters.jax_hessian(loss, {"w": jnp.zeros(3)}, jnp.ones((4, 3))).writes_files
        True
        """
        return self.process_index == 0

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
        return super().unflatten(v)

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
        return super().flatten(tree)

    def traceable_product(self) -> TraceableProduct | None:
        """Return the product as a pure function of the parameters and batches, or None.

        `slq.lanczos` and `slq.density` compile a batch's whole Lanczos run, these
        products and the finite flag of every batch included, into one XLA program
        with it (see `slq.aslinearoperator`'s ``traceable``). None where a product
        is more than one function of arrays on this device: batches read again on
        every pass (not cached) or sharded over devices; those runs go step by step.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from slq import adapters
        >>> loss = lambda params, batch: jnp.mean((batch @ params["w"]) ** 2)
        >>> op = adapters.jax_hessian(loss, {"w": jnp.ones(3)}, jnp.ones((2, 3)))
        >>> product = op.traceable_product()
        >>> operands = product.prepare(product.operands)  # the gradient linearized
        >>> products, finite = product.function(operands, jnp.eye(3)[:, :2])
        >>> products.tolist(), finite.tolist()
        ([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]], [True])
        """
        if self._sharding is not None or not self._batches.cached:
            return None
        batches = tuple(batch for _, batch, _ in self._batches)
        weights = jnp.asarray([size / self.num_examples for size in self._batches.sizes])
        operands = (self._params, batches, weights.astype(self.dtype))
        linearized = tuple(index in self._linear for index in range(len(batches)))
        function = HessianProduct(self._loss, self._chunk, linearized)
        prepare = LinearizeBatches(self._loss, linearized)
        return TraceableProduct(
            function, operands, self._raise_non_finite, prepare, not self._host_columns
        )

    def _keep_primals(
        self, loss_fn: Callable[[Any, Any], Any], reuse: bool | None
    ) -> dict[int, Any]:
        """Choose the batches whose gradient is linearized, so they skip the primal pass.

        As many as fit, by the residuals' size from `jax.eval_shape` (nothing is
        computed). Each is linearized at its first product (None until then):
        a run compiled whole linearizes inside its own program and keeps none.
        """
        if reuse is False:
            return {}
        budget = math.inf if reuse else _budget(self.device)
        if self._sharding is not None:
            # Every process must linearize the same batches: each one is a collective.
            budget = self._sharding.smallest(budget)
        kept: dict[int, Any] = {}
        used = 0
        linearize = self._programs.linearize
        for index, batch, _ in self._batches:
            shapes = jax.eval_shape(linearize, loss_fn, self._params, batch)
            shapes = jax.tree_util.tree_leaves(shapes)
            size = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in shapes)
            if used + size > budget:
                break
            kept[index] = None
            used += size
        logger.debug("jax_hessian: linearizing %d gradients (%.1f MB)", len(kept), used / 1e6)
        return kept

    def _verify_linearized(self) -> None:
        """Keep the linearized gradients only if batch 0's agrees with a fresh product.

        `slq.adapters._jax_verify` says why. The check is one program, compiled
        once per loss, chunk and shapes (`checked_products`): a new operator of
        the same loss, as during training, compiles nothing for it.
        """
        if 0 not in self._linear:  # the first batch's residuals did not fit: none kept
            return
        batch = self._batches.first()
        vector = self._tangents(seeded_vector(self.shape[0], self.dtype, self.device))
        replicated = None if self._sharding is None else self._sharding.replicated
        program = checked_products(replicated)

        def products() -> tuple[Any, Any]:
            both = program(self._loss, self._chunk, self._params, batch, vector)
            return tuple(_on_device(x, self.device) for x in both)  # type: ignore[return-value]

        why = linearized_disagreement(products, self.dtype)
        if why is None:
            return
        logger.warning(
            "jax_hessian: linearized gradient discarded, every product a fresh jvp of grad: %s",
            why,
        )
        self._linear = {}

    # The framework's parts of `CurvatureOperator`'s data pass.

    def _unflatten(self, v: Any) -> Any:
        return self._unravel(v)

    def _flatten(self, tree: Any) -> Any:
        return ravel_pytree(tree)[0]

    def _tangents(self, vectors: Any) -> Any:
        return vectors if self._sharding is None else self._sharding.replicate(vectors)

    def _batch_product(self, index: int, batch: Any, weight: float, tangents: Any) -> Any:
        if self._host_columns and tangents.ndim == 2:
            shares = [self._batch_product(index, batch, weight, t) for t in tangents.T]
            finite = jnp.stack([ok for _, ok in shares]).all()
            return jnp.stack([share for share, _ in shares], axis=1), finite
        programs, before = self._programs, TRACES.count
        if index not in self._linear:
            out = programs.fresh(self._loss, self._chunk, self._params, batch, tangents, weight)
        else:
            linear = self._linear[index]
            if linear is None:
                linear = self._linear[index] = programs.linearize(self._loss, self._params, batch)
            out = programs.linear(self._chunk, self._params, linear, tangents, weight)
        self.traces += TRACES.count - before
        return out

    def _flags(self, finite: list[Any]) -> np.ndarray:
        return np.asarray(finite)

    def _finish(self, total: Any, vectors: Any) -> Any:
        return _on_device(total, self.device)

    def _loss_value(self, batch: Any) -> float:
        return float(self._loss(self._params, batch))

    def _check(self, v: Any, ndim: int) -> None:
        if isinstance(v, jax.core.Tracer):
            msg = f"the vector is a traced value: {TRANSFORMED}"
            raise TypeError(msg)
        super()._check(v, ndim)

    def _place(self) -> str:
        where = f", process {self.process_index} of {self.process_count}"
        return where if self.process_count > 1 else ""

    def _description(self) -> str:
        return "Hessian of a JAX loss"


JaxHessian = JaxCurvatureOperator
"""The former name of `JaxCurvatureOperator`, kept for existing code."""


def _first_local_device(x: Any) -> Any:
    """Return the device of `x` with the smallest id among this process's."""
    here = jax.process_index()
    return min((d for d in x.devices() if d.process_index == here), key=lambda d: d.id)


def _on_device(x: Any, device: Any) -> Any:
    """Return `x` on `device`; a product replicated over several processes is read locally."""
    if x.is_fully_addressable:
        return jax.device_put(x, device)
    return next(s.data for s in x.addressable_shards if s.device == device)


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
) -> JaxCurvatureOperator:
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
    params : pytree of floating arrays, or a Flax NNX module
        Where the Hessian is taken. Vectors are flat, in
        ``jax.flatten_util.ravel_pytree`` order (`flatten`, `unflatten`).
        An ``nnx.Module``: the Hessian with respect to its ``nnx.Param``
        variables, and ``loss_fn(module, batch)`` receives a fresh copy of the
        module at those parameters (``nnx.merge(..., copy=True)``), so the
        module is never changed, not even its BatchNorm statistics in train
        mode; ``unflatten`` returns an ``nnx.State``.
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
        ``jax.lax.map`` chunks). Default: all k at once on an accelerator; one
        at a time on a CPU (where vmapped columns measured slower per column
        than single products), in a compiled loop, or, for a loss with
        convolutions, each column its own program called from the host and the
        Lanczos run stepped from the host too: XLA's CPU convolutions ran 2.7x
        slower inside a loop (jax-ml/jax#12868).
    cache_data : bool, optional
        Keep the batches on the device: True, False, or None to cache when they
        take at most 1 GiB.
    shard : bool
        Split every batch over all of ``jax.devices()`` along its leading axis
        (a multiple of ``jax.local_device_count()``): XLA computes the products
        data-parallel and reduces across devices. After
        ``jax.distributed.initialize``, those are every process's devices, and
        each process passes its own part of the data: the same number of
        batches, batch b of the same shapes on every process, global batch b
        being every process's batch b joined in process order. Every process
        must pass the same `params` and call `slq.density` with the same
        arguments and `seed`: vectors are replicated, not sent, and the
        products, hence the whole run, are identical on every process.
        ``num_examples`` counts every process's examples; ``writes_files`` is
        true on process 0 only.

    Returns
    -------
    JaxCurvatureOperator
        An operator with ``matvec``, ``matmat``, ``shape``, ``dtype``, ``device``,
        ``flatten``, ``unflatten``, ``num_examples``, ``num_batches``, ``traces``,
        ``process_index``, ``process_count`` and ``writes_files``.

    Raises
    ------
    ValueError
        For empty data or a loss that is not a scalar; with ``shard=True``, for
        a batch not divisible over the devices, or on every process when the
        processes disagree on the number of batches, their shapes or `params`.
    FloatingPointError
        When the loss on the first batch is not finite.
    RuntimeError
        With ``shard=True`` on several processes, on every process when another
        could not build its part (no data, a bad batch).

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

    Data-parallel over ``jax.devices()`` (one process here, so it writes files):

    >>> sharded = adapters.jax_hessian(loss_fn, params, (x, y), shard=True)
    >>> sharded.num_examples, sharded.process_count, sharded.writes_files
    (64, 1, True)
    """
    check_callable("loss_fn", loss_fn, "loss_fn(params, batch) -> mean loss")
    check_callable("batch_size", batch_size, "batch_size(batch) -> int", optional=True)
    check_optional_bool("reuse_primal", reuse_primal)
    chunk = None if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    check_data(data, check_optional_bool("cache_data", cache_data), is_single_batch(data))
    check_bool("shard", shard)
    loss_fn, params = _nnx_loss(loss_fn, params)
    check_params(params)
    sharding = Sharding() if shard else None

    def size_of(batch: Any, index: int) -> int:
        return int(batch_size(batch)) if batch_size is not None else leading_size(batch, index)

    def place(batch: Any, index: int) -> Any:
        return sharding.place(batch, index) if sharding else jax.device_put(batch)

    batches = build_together(lambda: Batches(data, place, size_of, cache_data), params, sharding)
    params = sharding.replicate(params) if sharding else params
    closed = check_loss(loss_fn, params, batches.first())
    op = JaxCurvatureOperator(
        loss_fn,
        params,
        batches,
        chunk_size=chunk,
        reuse_primal=reuse_primal,
        sharding=sharding,
        slow_in_loops=slow_in_cpu_loops(closed),
    )
    logger.info("jax_hessian: n=%d, %d examples; %s", op.shape[0], op.num_examples, op.hvp)
    return op


def _nnx_loss(loss_fn: Callable[[Any, Any], Any], params: Any) -> tuple[Callable[..., Any], Any]:
    """For a Flax NNX module: its ``nnx.Param`` state, and the loss of a fresh copy of it.

    ``nnx.merge`` without ``copy=True`` fails inside JAX transforms, and a module
    evaluated in place would keep what its loss writes (BatchNorm statistics in
    train mode). Each evaluation merges a new copy, whose changes are dropped.
    """
    nnx = sys.modules.get("flax.nnx")  # only a module of an imported Flax can be one
    if nnx is None or not isinstance(params, nnx.Module):
        return loss_fn, params
    graphdef, state, rest = nnx.split(params, nnx.Param, ...)

    def module_loss(theta: Any, batch: Any) -> Any:
        return loss_fn(nnx.merge(graphdef, theta, rest, copy=True), batch)

    return module_loss, state

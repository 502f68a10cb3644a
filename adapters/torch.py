"""PyTorch models and data as exact Hessian and Gauss–Newton operators.

``slq.density(adapters.torch_hessian(model, data))`` is the eigenvalue density of
the Hessian of L(θ) = (1/N) Σ_i ℓ(θ; x_i, y_i) over all of `data`, as in
Ghorbani, Krishnan & Xiao (2019).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from slq.adapters._checks import check_optional_bool
from slq.adapters._operator import CurvatureOperator
from slq.adapters._torch_data import Batches
from slq.adapters._torch_distributed import (
    Shard,
    build_together,
    describe,
    from_rank0,
    process_group,
    reduce_sum,
)
from slq.adapters._torch_func import (
    FunctionalModel,
    Tangents,
    all_finite,
    double_backward,
    forward_over_reverse,
    ggn,
    linearized_products,
    plain_autograd,
    vjp_of_gradient,
)
from slq.adapters._torch_plan import CHOICES, Choice, Plan, follow_plan, plan_products
from slq.adapters._torch_prepare import check_arguments, prepare_model
from slq.adapters._torch_verify import disagreement
from torch import nn

from slq._validate import check_bool, check_choice, check_positive_int

__all__ = [
    "TorchCurvature",
    "TorchCurvatureOperator",
    "torch_ggn",
    "torch_hessian",
    "torch_layer_hessians",
]

logger = logging.getLogger("slq")

HVP_METHODS = ("auto", "forward-over-reverse", "double-backward")

Product = Callable[[int, Any, Tangents], Tangents]
Prepared = tuple[FunctionalModel, Batches]


class TorchCurvatureOperator(CurvatureOperator):
    """A curvature matrix of a torch model over a dataset, as a `slq.LinearOperator`.

    Vectors are flat tensors of the parameters' dtype and device, laid out as the
    chosen parameters in ``named_parameters()`` order (see `flatten`, `unflatten`).
    Made by `torch_hessian`, `torch_ggn` and `torch_layer_hessians`; ``kind`` is
    "Hessian" or "GGN". A Hessian's ``hvp`` says in words how products are
    computed and ``hvp_choice`` what was measured to decide it (None for a GGN):
    the fresh method, the kind of per-batch state kept, and whether linearized
    products are vmapped. Also importable by its former name, ``TorchCurvature``.

    Examples
    --------
    >>> import torch
    >>> from slq import adapters
    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.tensor([0, 1] * 4))
    >>> op = adapters.torch_hessian(model, data)
    >>> isinstance(op, adapters.TorchCurvatureOperator), op.kind, op.shape
    (True, 'Hessian', (8, 8))
    """

    _array_type = torch.Tensor
    _array_name = "a torch.Tensor"
    _advice = "check that batch and the model"

    def __init__(
        self, fm: FunctionalModel, batches: Batches, product: Product, *, kind: str
    ) -> None:
        self._fm, self._batches, self._product = fm, batches, product
        self.kind = kind
        self.names: tuple[str, ...] = tuple(fm.names)
        self.shapes = {name: tuple(fm.primal[name].shape) for name in fm.names}
        self._sizes = [math.prod(s) for s in self.shapes.values()]
        n = sum(self._sizes)
        self.shape = (n, n)
        first = fm.primal[fm.names[0]]
        self.dtype, self.device = first.dtype, first.device
        self.hvp = "functional"
        self.hvp_choice: Choice | None = None  # set by `_hessian`
        self._shard: Shard | None = None  # set by `_distribute`, before any product

    @property
    def num_examples(self) -> int:
        """N, the number of examples the loss averages over: over every rank's shard."""
        return self._batches.num_examples if self._shard is None else self._shard.num_examples

    @property
    def num_batches(self) -> int:
        """The number of batches of the data: over every rank's shard."""
        return self._batches.num_batches if self._shard is None else self._shard.num_batches

    @property
    def rank(self) -> int:
        """The rank of this process in the torch.distributed group; 0 when not distributed."""
        return 0 if self._shard is None else self._shard.rank

    @property
    def world_size(self) -> int:
        """The number of processes sharing the data; 1 when not distributed."""
        return 1 if self._shard is None else self._shard.world_size

    @property
    def writes_files(self) -> bool:
        """Whether this process should write results (checkpoints): rank 0 only."""
        return self.rank == 0

    def _distribute(self, shard: Shard) -> None:
        """Make products sum over every rank's shard (see `_torch_distributed`)."""
        self._shard = shard

    def unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return the flat vector `v` (shape (n,)) as {parameter name: tensor} views.

        Examples
        --------
        >>> import torch
        >>> from slq import adapters
        >>> op = adapters.torch_hessian(torch.nn.Linear(2, 1), (torch.ones(4, 2), torch.ones(4, 1)),
        ...                             torch.nn.functional.mse_loss)
        >>> {name: tuple(t.shape) for name, t in op.unflatten(torch.arange(3.0)).items()}
        {'weight': (1, 2), 'bias': (1,)}
        >>> op.flatten(op.unflatten(torch.arange(3.0))).tolist()
        [0.0, 1.0, 2.0]
        """
        return super().unflatten(v)

    def flatten(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return the flat vector of {parameter name: tensor}, the inverse of `unflatten`.

        Examples
        --------
        A direction in parameter space, e.g. to take its curvature vᵀHv:

        >>> import torch
        >>> from slq import adapters
        >>> op = adapters.torch_hessian(torch.nn.Linear(2, 1), (torch.ones(4, 2), torch.ones(4, 1)),
        ...                             torch.nn.functional.mse_loss)
        >>> v = op.flatten({"weight": torch.ones(1, 2), "bias": torch.zeros(1)})
        >>> v.tolist(), float(v @ op.matvec(v))
        ([1.0, 1.0, 0.0], 8.0)
        """
        return super().flatten(parts)

    # The framework's parts of `CurvatureOperator`'s data pass.

    def _products(self, vectors: torch.Tensor) -> torch.Tensor:
        with plain_autograd(self.device):
            return super()._products(vectors)

    def _unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(v, self._sizes)
        return {name: p.view(self.shapes[name]) for name, p in zip(self.names, parts, strict=True)}

    def _flatten(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        if set(parts) != set(self.names):
            missing, extra = set(self.names) - set(parts), set(parts) - set(self.names)
            msg = (
                f"flatten needs exactly the operator's parameters; missing {sorted(missing)}, "
                f"extra {sorted(extra)}"
            )
            raise ValueError(msg)
        return torch.cat([parts[name].reshape(-1) for name in self.names])

    def _tangents(self, vectors: torch.Tensor) -> Tangents:
        """Return the k columns as {name: tensor of shape (k, *parameter shape)}."""
        if vectors.ndim == 1:
            vectors = vectors[:, None]
        if vectors.is_inference():  # made under torch.inference_mode(): autograd cannot save it
            vectors = vectors.clone()
        k = vectors.shape[1]
        parts = torch.split(vectors.T.contiguous(), self._sizes, dim=1)
        return {
            name: p.reshape(k, *self.shapes[name])
            for name, p in zip(self.names, parts, strict=True)
        }

    def _batch_product(
        self, index: int, batch: Any, weight: float, tangents: Tangents
    ) -> tuple[Tangents, torch.Tensor]:
        """(N_b / N) · product on batch b, and whether it is finite.

        Distributed: N_b · product, divided by the global N once the ranks' sums are added.
        """
        if self._shard is not None:
            weight = float(self._batches.sizes[index])
        out = self._product(index, batch, tangents)
        finite = all_finite(out.values())
        return {name: weight * t for name, t in out.items()}, finite

    def _add(self, total: Tangents, share: Tangents) -> Tangents:
        for name, t in share.items():
            total[name] = t if name not in total else total[name] + t
        return total

    def _reduce(self, total: Tangents) -> torch.Tensor:
        """Return the products as rows, (k, n); distributed, summed over the ranks."""
        flat = torch.cat(
            [total[name].detach().reshape(total[name].shape[0], -1) for name in self.names], dim=1
        )
        if self._shard is not None:
            flat = reduce_sum(flat) / self._shard.num_examples
        return flat

    def _flags(self, finite: list[torch.Tensor]) -> np.ndarray:
        return torch.stack(finite).cpu().numpy()

    def _finish(self, flat: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        if self._shard is not None and not bool(all_finite([flat])):
            msg = f"the {self.kind} product is not finite on another rank: see its error"
            raise FloatingPointError(msg)
        return flat.T if vectors.ndim == 2 else flat.T[:, 0]

    def _loss_value(self, batch: Any) -> float:
        with torch.no_grad():
            return float(self._fm.loss(self._fm.primal, batch).item())

    def _shard_label(self) -> str:
        return "" if self._shard is None else f" of rank {self.rank}'s shard"

    def _place(self) -> str:
        return describe(self._shard)

    def _description(self) -> str:
        return f"{self.kind} of {len(self.names)} parameter tensors"

    def _check(self, v: Any, ndim: int) -> None:
        super()._check(v, ndim)
        if v.device != self.device:
            msg = f"expected a vector on {self.device} (the parameters'), got one on {v.device}"
            raise ValueError(msg)


TorchCurvature = TorchCurvatureOperator
"""The former name of `TorchCurvatureOperator`, kept for existing code."""


# ----------------------------------------------------------------------------- building


def torch_hessian(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    *,
    params: Sequence[Any] | None = None,
    batch_loss: Callable[[nn.Module, Any], Any] | None = None,
    batchnorm: str = "train",
    hvp: str = "auto",
    reuse_primal: bool | None = None,
    chunk_size: int | None = None,
    cache_data: bool | None = None,
    compile: bool = False,
    dropout: bool = False,
    seed: int = 0,
    distributed: bool = False,
) -> TorchCurvatureOperator:
    r"""Return the Hessian of a model's mean loss over a dataset as a `slq.LinearOperator`.

    H(θ) = ∇²L(θ) with L(θ) = (1/N) Σ_i ℓ(θ; x_i, y_i) over all N examples of
    `data`: each batch's mean loss is weighted by its size / N, so the operator
    does not depend on how the data is split into batches (Ghorbani, Krishnan &
    Xiao 2019, Eq. 1) — except through train-mode BatchNorm, whose statistics
    are those of each batch.

    Parameters
    ----------
    model : torch.nn.Module
        Never modified: a private copy without tensors is evaluated with the
        model's own parameters and a snapshot of its buffers. Products use the
        parameters' current values (clone the model if you keep training it).
    data
        One ``(inputs, targets)`` batch, or an iterable of batches (a list, a
        DataLoader). Iterated once to count examples; kept on the parameters'
        device when it fits (`cache_data`), else iterated on every product.
    loss_fn : callable, default ``torch.nn.functional.cross_entropy``
        ``loss_fn(outputs, targets)`` returning the batch *mean*.
    params : sequence of str or Parameter, optional
        The parameters θ to differentiate (a layer, a block); default every
        parameter with ``requires_grad``. The others are held fixed.
    batch_loss : callable, optional
        ``batch_loss(model, batch) -> (mean_loss, batch_size)`` for batches that
        are not (inputs, targets) pairs (dicts, tuples of several tensors).
    batchnorm : {"train", "eval"}
        "train" (default): BatchNorm normalises by each batch's statistics, the
        loss the optimiser sees and the case in which Ghorbani et al. find that
        BN removes outlier eigenvalues. "eval": the running (population)
        statistics, a fixed function of θ independent of batching. Running
        statistics are never updated by a product.
    hvp : {"auto", "forward-over-reverse", "double-backward"}
        How a fresh Hessian-vector product is computed: ``torch.func.jvp`` of
        ``torch.func.grad`` (Pearlmutter 1994), or differentiating the
        gradient's graph. "auto" keeps double backward unless
        forward-over-reverse is clearly faster (at most 2/3 of its time), each
        timed once on the products that check it on the first batch, and only
        where some batch is computed fresh; it falls back to double backward
        when torch.func cannot trace the model, and logs its choice with the
        measured HVP / gradient time ratios. The decision is remembered for
        the model's structure (modules, parameter shapes, dtype, device, batch
        shapes, loss and options): a second operator of the same model times
        nothing, but still builds its own state and checks it. Distributed,
        only rank 0 measures, and every rank follows its choice (``hvp_choice``).
    reuse_primal : bool, optional
        Keep, per batch, the part of a product that does not depend on the
        vector, so that each product costs only its tangent part instead of a
        fresh forward and gradient: the gradient's graph (double backward
        through it), or the gradient linearized by ``torch.func.linearize``
        (forward-over-reverse). "auto" keeps the retained graph (the same
        arithmetic as a linearized product, without the cost of tracing it),
        and a linearized gradient only where the model cannot be differentiated
        twice; an explicit `hvp` keeps its own kind. None (default): for as many
        batches as fit in 2 GiB on the CPU or half of the free GPU memory,
        measured on the first batch's graph; the rest are computed fresh.
    chunk_size : int, optional
        At most this many vectors at once in `matmat` (``vmap`` chunks), to bound
        memory; default all k.
    cache_data : bool, optional
        Keep the batches on the device: True, False, or None to cache when they
        take at most 1 GiB.
    compile : bool
        Run fresh forward-over-reverse products through ``torch.compile``.
    dropout : bool
        Keep dropout layers active, their randomness frozen by `seed` so that the
        operator stays one fixed matrix. Default off.
    seed : int
        Seeds any randomness inside the model during a product; the caller's
        global RNG state is restored afterwards.
    distributed : bool
        Data parallel over an initialised ``torch.distributed`` process group
        (one process per device, as launched by ``torchrun``): `data` is this
        rank's shard (a ``DistributedSampler`` loader; shards may differ in
        size, but each needs at least one batch). Every product sums the ranks'
        shards with one ``all_reduce``, so every rank holds the same full-data
        product and runs the same Lanczos iteration; ``num_examples`` and
        ``num_batches`` count every rank's data. The operator's ``rank``,
        ``world_size`` and ``writes_files`` (rank 0 only) say where it runs.
        How products are computed (`hvp`, `reuse_primal`) is measured on rank
        0 alone and followed by every rank; each rank keeps per-batch state for
        as many of its own batches as fit on its device.

    Returns
    -------
    TorchCurvatureOperator
        An operator with ``matvec``, ``matmat``, ``shape``, ``dtype``, ``device``,
        ``flatten``, ``unflatten``, ``names``, ``num_examples``, ``hvp`` (how
        products are computed, in words) and ``hvp_choice`` (the measured
        decisions: fresh method, kind of kept state, vmapped or not).

    Examples
    --------
    >>> import torch
    >>> import slq
    >>> from slq import adapters
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> op = adapters.torch_hessian(model, (x, y))
    >>> op.shape
    (67, 67)
    >>> dos = slq.density(op, num_steps=67, num_probes=2, seed=0)
    >>> dos.lambda_max > 0
    True
    """
    options = {"batchnorm": batchnorm, "dropout": dropout, "cache_data": cache_data, "seed": seed}
    check_arguments(model, data, loss_fn, params, batch_loss, options)
    chunk = _check_hessian_options(hvp, chunk_size, reuse_primal, compile, distributed)
    prepare = functools.partial(prepare_model, model, data, loss_fn, params, batch_loss, options)
    with _building(model):
        return _build_hessian(prepare, hvp, chunk, reuse_primal, compile, distributed)


def _check_hessian_options(
    hvp: str, chunk_size: Any, reuse_primal: Any, compile: Any, distributed: Any
) -> int | None:
    """Check the options of a Hessian's products; return the chunk size."""
    check_choice("hvp", hvp, HVP_METHODS)
    chunk = None if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    check_optional_bool("reuse_primal", reuse_primal)
    check_bool("compile", compile)
    check_bool("distributed", distributed)
    return chunk


@contextlib.contextmanager
def _building(model: nn.Module) -> Iterator[None]:
    """Build under `plain_autograd`; say so if the caller's autocast is left out of the products."""
    device = next(model.parameters(), torch.empty(0)).device
    if torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type):
        logger.warning(
            "torch_hessian: called inside torch.autocast(%r): slq's products leave it out and "
            "compute in the parameters' dtype, so that every product is of one matrix; "
            "autocast inside the model's forward is kept",
            device.type,
        )
    with plain_autograd(device):
        yield


def _check_distributed(distributed: bool) -> None:
    """Fail early: before any data is read, and before any collective."""
    if not isinstance(distributed, bool):
        msg = f"distributed must be True or False, got {distributed!r}"
        raise TypeError(msg)
    if distributed:
        process_group()


def _build(
    build: Callable[[], TorchCurvatureOperator], distributed: bool
) -> TorchCurvatureOperator:
    """Build the operator, on this rank's shard and summing over every rank's if `distributed`."""
    _check_distributed(distributed)
    if not distributed:
        return build()
    op, shard = build_together(build, lambda op: (op.num_examples, op.num_batches))
    op._distribute(shard)
    return op


def _build_hessian(
    prepare: Callable[[], Prepared],
    hvp: str,
    chunk: int | None,
    reuse_primal: bool | None,
    compile: bool,
    distributed: bool,
) -> TorchCurvatureOperator:
    """Prepare, plan and build a Hessian; distributed, every rank follows rank 0's plan.

    Distributed, this takes two collectives on every rank, whatever fails where:
    one sends rank 0's choice (`from_rank0`), one adds the counts (`_build`).
    """
    _check_distributed(distributed)
    if not distributed:
        fm, batches = prepare()
        plan = plan_products(fm, batches, hvp, chunk, reuse_primal)
        return _hessian(fm, batches, plan, chunk, compile)
    rank, _ = process_group()

    def plan_on_rank_0() -> tuple[Prepared, Plan | None]:
        fm, batches = prepare()
        if rank != 0:
            return (fm, batches), None
        return (fm, batches), plan_products(fm, batches, hvp, chunk, reuse_primal, time_fresh=True)

    ((fm, batches), measured), index = from_rank0(plan_on_rank_0, _choice_index)

    def build() -> TorchCurvatureOperator:
        own = (
            measured
            if measured is not None
            else follow_plan(fm, batches, CHOICES[index], reuse_primal)
        )
        return _hessian(fm, batches, own, chunk, compile)

    return _build(build, distributed)


def _choice_index(planned: tuple[Prepared, Plan | None]) -> int:
    """Rank 0's choice, as an index to send to the other ranks."""
    plan = planned[1]
    if plan is None:
        msg = "slq bug: rank 0 made no product plan"
        raise RuntimeError(msg)
    return CHOICES.index(plan.choice)


def _hessian(
    fm: FunctionalModel, batches: Batches, plan: Plan, chunk: int | None, compile: bool
) -> TorchCurvatureOperator:
    fresh_fn = forward_over_reverse if plan.method == "forward-over-reverse" else double_backward
    if compile and plan.method == "forward-over-reverse":
        fresh_fn = _compiled(fm, plan, chunk)
    kept = plan.kept

    def product(index: int, batch: Any, tangents: Tangents) -> Tangents:
        state = kept.by_batch.get(index)
        if state is None:
            return fresh_fn(fm, batch, tangents, chunk)
        if kept.kind == "graph":
            return vjp_of_gradient(state, fm.names, tangents, retain=True)
        return linearized_products(state, tangents, kept.batched, chunk)

    op = TorchCurvatureOperator(fm, batches, product, kind="Hessian")
    op.hvp, op.hvp_choice = plan.describe(batches.num_batches), plan.choice
    ratios = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in plan.ratios.items())
    logger.info(
        "torch_hessian: n=%d, %d examples; %s; time per product / gradient: %s",
        op.shape[0],
        batches.num_examples,
        op.hvp,
        ratios or "not measured here (chosen on rank 0, or nothing to choose)",
    )
    return op


def _compiled(fm: FunctionalModel, plan: Plan, chunk: int | None) -> Callable[..., Tangents]:
    """``torch.compile`` of the fresh product, if it reproduces the fresh eager one."""
    compiled = torch.compile(forward_over_reverse)
    check = plan.check
    if check is None:  # followed rank 0's plan, which checked the compiled product
        return compiled
    why = disagreement(functools.partial(compiled, fm, check.batch, chunk=chunk), check)
    if why is None:
        return compiled
    logger.warning("torch_hessian: compiled products discarded (compile=True): %s", why)
    return forward_over_reverse


def torch_ggn(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    *,
    params: Sequence[Any] | None = None,
    batchnorm: str = "train",
    chunk_size: int | None = None,
    cache_data: bool | None = None,
    dropout: bool = False,
    seed: int = 0,
    distributed: bool = False,
) -> TorchCurvatureOperator:
    r"""Return the generalised Gauss–Newton matrix G = (1/N) Σ_i J_iᵀ H_ℓ J_i as an operator.

    J_i is the Jacobian of the model's outputs for example i with respect to θ
    and H_ℓ the Hessian of the loss with respect to the outputs (Schraudolph
    2002; Martens 2010). G is positive semi-definite for convex losses (cross
    entropy, squared error) and drops the second-order terms of the network
    from the Hessian. Data, parameters and BatchNorm are handled as in
    `torch_hessian`; batches must be (inputs, targets) pairs. With
    ``distributed=True``, `data` is this rank's shard, as in `torch_hessian`.

    Examples
    --------
    >>> import torch
    >>> from slq import adapters
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> G = adapters.torch_ggn(model, (x, y))
    >>> v = torch.randn(G.shape[0])
    >>> bool(v @ G.matvec(v) >= 0)
    True
    """
    options = {"batchnorm": batchnorm, "dropout": dropout, "cache_data": cache_data, "seed": seed}
    check_arguments(model, data, loss_fn, params, None, options)
    chunk = None if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    check_bool("distributed", distributed)
    loss = loss_fn or nn.functional.cross_entropy

    def build() -> TorchCurvatureOperator:
        fm, batches = prepare_model(model, data, loss, params, None, options)

        def product(index: int, batch: Any, tangents: Tangents) -> Tangents:
            return ggn(fm, batch, tangents, chunk, loss)

        return TorchCurvatureOperator(fm, batches, product, kind="GGN")

    with _building(model):
        return _build(build, distributed)


def torch_layer_hessians(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    *,
    by: str = "module",
    distributed: bool = False,
    **options: Any,
) -> dict[str, TorchCurvatureOperator]:
    """Return the diagonal blocks of the Hessian: one operator per module or per parameter.

    Each block is the Hessian with respect to one module's own parameters
    (``by="module"``) or one parameter tensor (``by="parameter"``), the others
    held fixed; the data is read once and shared. With ``hvp="auto"`` the first
    block's measurement chooses the fresh product method of every block.

    Parameters
    ----------
    model : torch.nn.Module
        As in `torch_hessian`; never modified.
    data
        As in `torch_hessian`: one batch or an iterable of batches (this rank's
        shard when `distributed`).
    loss_fn : callable, default ``torch.nn.functional.cross_entropy``
        ``loss_fn(outputs, targets)`` returning the batch mean.
    by : {"module", "parameter"}
        One block per module with parameters of its own, or per parameter tensor.
    distributed : bool
        Data parallel as in `torch_hessian`: `data` is this rank's shard, every
        block's products are summed over the ranks with one ``all_reduce``,
        its counts are global, and rank 0's product plan is every rank's. Every
        rank must build the blocks of the same model, in one call.
    **options
        The other keyword options of `torch_hessian` (`batch_loss`,
        `batchnorm`, `hvp`, `reuse_primal`, `chunk_size`, `cache_data`,
        `compile`, `dropout`, `seed`); gradient graphs are not kept
        (``reuse_primal=False``) unless asked, since each block would keep its own.

    Returns
    -------
    dict of str to TorchCurvatureOperator
        The blocks by module name (``""`` for the model's own parameters) or
        parameter name, in ``named_modules()`` / ``named_parameters()`` order.

    Examples
    --------
    >>> import torch
    >>> from slq import adapters
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> {name: op.shape[0] for name, op in adapters.torch_layer_hessians(model, (x, y)).items()}
    {'0': 40, '2': 27}
    """
    settings = {
        "batchnorm": options.pop("batchnorm", "train"),
        "dropout": options.pop("dropout", False),
        "cache_data": options.pop("cache_data", None),
        "seed": options.pop("seed", 0),
    }
    batch_loss = options.pop("batch_loss", None)
    hvp = options.pop("hvp", "auto")
    chunk_size = options.pop("chunk_size", None)
    reuse_primal = options.pop("reuse_primal", False)
    compile_ = options.pop("compile", False)
    if options:
        msg = f"unknown options for torch_layer_hessians: {sorted(options)}"
        raise TypeError(msg)
    check_choice("by", by, ("module", "parameter"))
    check_arguments(model, data, loss_fn, None, batch_loss, settings)
    chunk = _check_hessian_options(hvp, chunk_size, reuse_primal, compile_, distributed)
    groups = _blocks(model, by)
    _check_distributed(distributed)
    result: dict[str, TorchCurvatureOperator] = {}
    batches = None
    for name, names in groups.items():
        prepare = functools.partial(
            prepare_model, model, data, loss_fn, names, batch_loss, settings, batches
        )
        with _building(model):
            op = _build_hessian(prepare, hvp, chunk, reuse_primal, compile_, distributed)
        result[name], batches = op, op._batches
        if hvp == "auto" and op.hvp_choice is not None:  # the first block's timing decides
            hvp = op.hvp_choice.method
    return result


def _blocks(model: nn.Module, by: str) -> dict[str, list[str]]:
    """Return the trainable parameters' names by module (its own parameters) or one by one."""
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        msg = "the model has no trainable parameters (none with requires_grad)"
        raise ValueError(msg)
    if by == "parameter":
        return {name: [name] for name in trainable}
    groups = {}
    for module_name, module in model.named_modules():
        own = [
            f"{module_name}.{n}" if module_name else n
            for n, _ in module.named_parameters(recurse=False)
        ]
        own = [name for name in own if name in trainable]
        if own:
            groups[module_name] = own
    return groups

"""How a torch Hessian product is computed: measured once, on the first batch.

A fresh exact product repeats the forward pass and the gradient for every
vector (about 3 gradients of work). What does not depend on the vector can be
kept per batch instead — the gradient's graph, differentiated again for each
vector, or the gradient linearized by ``torch.func.linearize`` — so that each
product costs only its tangent part. This module measures the options on the
first batch and picks the fastest that fits in memory.

Data parallel, only rank 0 measures: its `Choice` (a few names) goes to every
rank, and each rank keeps its own batches' state by `follow_plan`, as many as
fit on its device, so that every rank computes products the same way.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from slq.adapters._torch_data import Batches
from slq.adapters._torch_func import (
    FunctionalModel,
    double_backward,
    forward_over_reverse,
    gradient_graph,
    linearized_hessian,
    linearized_products,
    vjp_of_gradient,
)
from slq.adapters._torch_verify import Check, disagreement, reference_check

__all__ = [
    "CHOICES",
    "DEFAULT_RETAIN_BYTES",
    "Choice",
    "Kept",
    "Plan",
    "follow_plan",
    "plan_products",
]

logger = logging.getLogger("slq")

DEFAULT_RETAIN_BYTES = 2 << 30
"""Per-batch state is kept while it takes at most this (2 GiB) on the CPU; on a GPU, at
most half of its free memory."""

_FRESH = {"forward-over-reverse": forward_over_reverse, "double-backward": double_backward}


class Choice(NamedTuple):
    """What the measurements decide: the whole of a plan but the per-batch state.

    Examples
    --------
    >>> from slq.adapters._torch_plan import CHOICES, Choice
    >>> choice = Choice("double-backward", "graph", False)
    >>> CHOICES[CHOICES.index(choice)] == choice
    True
    """

    method: str  # the fresh product: "forward-over-reverse" or "double-backward"
    kept: str  # how kept state is used: "graph", "linearized", or "none" (none passed its check)
    batched: bool  # linearized products vmapped over the vectors, else looped


CHOICES: tuple[Choice, ...] = tuple(
    Choice(method, kept, batched)
    for method in _FRESH
    for kept, batched in (
        ("graph", False),
        ("linearized", False),
        ("linearized", True),
        ("none", False),
    )
)
"""Every choice, so that one is sent to the other ranks as its index."""


class Kept(NamedTuple):
    """Per-batch state kept between products so that they skip the primal pass."""

    kind: str  # "graph" (double backward through it), "linearized" (torch.func.linearize), "none"
    by_batch: dict[int, Any]
    batched: bool  # apply a linearized product to k tangents with vmap, else one at a time


class Plan(NamedTuple):
    """The products' recipe: fresh method, kept state, and the measured time ratios."""

    method: str  # fresh products, for the batches whose state is not kept
    kept: Kept
    ratios: dict[str, float]  # seconds per product / seconds per gradient, as measured ({} if not)
    check: Check | None = None  # what a fast path must reproduce (None where not measured)

    @property
    def choice(self) -> Choice:
        """The measured decisions, without the per-batch state."""
        return Choice(self.method, self.kept.kind, self.kept.batched)

    def describe(self, num_batches: int) -> str:
        """Say in a line how products are computed."""
        if not self.kept.by_batch:
            return self.method
        kind = "retained graph" if self.kept.kind == "graph" else "linearized gradient"
        batched = " (vmapped)" if self.kept.batched else ""
        count = f"{len(self.kept.by_batch)}/{num_batches}"
        return f"{kind}{batched} for {count} batches, else {self.method}"


def _timed(device: torch.device, f: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall time of `f` over `repeat` calls after one warm-up, synchronising a GPU."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    f()
    best = math.inf
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        f()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _gradient_seconds(fm: FunctionalModel, batch: Any) -> float:
    leaves = [fm.primal[n].detach().requires_grad_() for n in fm.names]

    def gradient() -> None:
        with torch.enable_grad():
            loss = fm.loss(dict(zip(fm.names, leaves, strict=True)), batch)
            torch.autograd.grad(loss, leaves, allow_unused=True)

    return _timed(leaves[0].device, gradient, repeat=2)


def _fresh_ratios(
    fm: FunctionalModel, batch: Any, candidates: list[str], chunk: int | None, gradient: float
) -> dict[str, float]:
    """Time fresh products; forward-over-reverse may be untraceable, double backward not."""
    tangent = {n: torch.ones_like(t).unsqueeze(0) for n, t in fm.primal.items()}
    device = fm.primal[fm.names[0]].device
    ratios: dict[str, float] = {}
    for name in candidates:
        method = _FRESH[name]
        try:
            seconds = _timed(device, lambda: method(fm, batch, tangent, chunk), repeat=2)  # noqa: B023
        except Exception as err:  # torch.func raises many kinds for models it cannot trace
            if len(candidates) == 1:
                msg = (
                    f"hvp={name!r} cannot compute this model's Hessian products ({err}); "
                    "pass hvp='auto'"
                )
                raise ValueError(msg) from err
            if name == "double-backward":
                raise
            logger.info("torch_hessian: forward-over-reverse unavailable (%s)", err)
            continue
        ratios[name] = seconds / gradient
    return ratios


def _graph_bytes(fm: FunctionalModel, batch: Any, *, create_graph: bool = True) -> tuple[Any, int]:
    """Build one batch's gradient graph and measure the tensors it keeps alive.

    Without `create_graph` (a model autograd cannot differentiate twice) the
    first-order graph's size stands in for the linearized gradient's.
    """
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        graph = gradient_graph(fm, batch, create_graph=create_graph)
    return graph, sum(seen.values())


def _budget(device: torch.device) -> float:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free / 2
    return DEFAULT_RETAIN_BYTES


def _kept_count(batches: Batches, bytes_first: int, reuse_primal: bool | None) -> int:
    """How many leading batches' state fits, scaling the first batch's size per example."""
    budget = math.inf if reuse_primal else _budget(batches.device)
    per_example = bytes_first / batches.sizes[0]
    used, count = 0.0, 0
    for size in batches.sizes:
        used += per_example * size
        if used > budget:
            break
        count += 1
    return count


def _reuse_ratios(
    fm: FunctionalModel,
    graph: Any,
    batch: Any,
    kinds: list[str],
    chunk: int | None,
    gradient: float,
) -> tuple[dict[tuple[str, bool], float], Any]:
    """Time each way of reusing the primal pass, per vector of a batch of 4.

    Returns the ratios and the first batch's linearized product (None if not built).
    """
    tangents = {
        n: torch.ones(4, *t.shape, dtype=t.dtype, device=t.device) for n, t in fm.primal.items()
    }
    device = fm.primal[fm.names[0]].device
    ratios: dict[tuple[str, bool], float] = {}
    if "graph" in kinds:
        seconds = _timed(
            device, lambda: vjp_of_gradient(graph, fm.names, tangents, retain=True), repeat=2
        )
        ratios[("graph", False)] = seconds / 4 / gradient
    product = None
    # A traced product would redraw dropout masks. And linearize traces jvp(grad): where
    # eager jvp(grad) fails, tracing it can crash the process (torch 2.13 segfaults on
    # mse_loss), so it is only tried where an eager product works.
    if "linearized" in kinds and not fm.stochastic and _eager_jvp_works(fm, batch, chunk):
        try:
            product = linearized_hessian(fm, batch)
        except Exception as err:  # torch.func raises many kinds for models it cannot trace
            logger.info("torch_hessian: torch.func.linearize unavailable (%s)", err)
    if product is not None:
        ratios |= _time_linearized(product, tangents, chunk, device, gradient)
    return ratios, product


def _eager_jvp_works(fm: FunctionalModel, batch: Any, chunk: int | None) -> bool:
    """Return whether one eager forward-over-reverse product runs on `batch`."""
    tangent = {n: torch.ones_like(t).unsqueeze(0) for n, t in fm.primal.items()}
    try:
        forward_over_reverse(fm, batch, tangent, chunk)
    except Exception as err:  # torch.func raises many kinds for models it cannot trace
        logger.info("torch_hessian: forward-over-reverse unavailable (%s)", err)
        return False
    return True


def _time_linearized(
    product: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    tangents: Any,
    chunk: int | None,
    device: torch.device,
    gradient: float,
) -> dict[tuple[str, bool], float]:
    """Time the linearized product looped and vmapped, as multiples of a gradient."""
    ratios: dict[tuple[str, bool], float] = {}
    for batched in (False, True):
        try:
            seconds = _timed(
                device,
                functools.partial(linearized_products, product, tangents, batched, chunk),
                repeat=2,
            )
        except Exception:  # an op without a vmap rule: the loop stays available
            continue
        ratios[("linearized", batched)] = seconds / 4 / gradient
    return ratios


def plan_products(
    fm: FunctionalModel,
    batches: Batches,
    hvp: str,
    chunk: int | None,
    reuse_primal: bool | None,
    *,
    time_fresh: bool = False,
) -> Plan:
    """Measure the ways of computing products on the first batch and return the fastest plan.

    `hvp` "auto" considers every way; "forward-over-reverse" keeps to it (fresh, or
    linearized when reused); "double-backward" likewise (fresh, or a retained graph).
    A method that cannot run on the model is refused with an error naming `hvp`.
    Every way of reusing state, and a fresh forward-over-reverse product, must
    first reproduce a fresh double-backward product (`slq.adapters._torch_verify`).
    The fresh methods are timed only when some batch's state is not kept, or
    when `time_fresh` and there is a choice (for other ranks, whose batches may
    not all fit).
    """
    first = batches.first()
    gradient = _gradient_seconds(fm, first)
    check = reference_check(fm, first, chunk)
    fresh = _fresh_candidates(hvp, check)
    graph, size = (None, 0)
    if reuse_primal is not False:
        graph, size = _graph_bytes(fm, first, create_graph=check.double_backward_error is None)
    count = _kept_count(batches, size, reuse_primal) if graph is not None else 0
    kept, ratios = _verified_kept(fm, batches, graph, count, hvp, check, chunk, gradient)
    # The fresh method only serves batches whose state is not kept.
    if len(kept.by_batch) < batches.num_batches or (time_fresh and len(fresh) > 1):
        ratios = _fresh_ratios(fm, first, fresh, chunk, gradient) | ratios
        fresh = [m for m in fresh if m in ratios]
        if fresh == ["forward-over-reverse", "double-backward"]:
            fresh.sort(key=ratios.__getitem__)
        method = _verified_fresh(fm, fresh, hvp, check, chunk)
    else:
        method = fresh[-1]
    return Plan(method, kept, ratios, check)


def _fresh_candidates(hvp: str, check: Check) -> list[str]:
    """Return the fresh methods `hvp` allows on this model; refuse one that cannot run."""
    unavailable = check.double_backward_error
    if hvp == "double-backward" and unavailable is not None:
        msg = (
            f"hvp='double-backward' cannot differentiate this model twice ({unavailable}); "
            "pass hvp='auto' or hvp='forward-over-reverse'"
        )
        raise ValueError(msg)
    if unavailable is not None:
        logger.info("torch_hessian: double backward unavailable (%s)", unavailable)
        return ["forward-over-reverse"]
    return list(_FRESH) if hvp == "auto" else [hvp]


def _verified_fresh(
    fm: FunctionalModel, fresh: list[str], hvp: str, check: Check, chunk: int | None
) -> str:
    """Return the first of `fresh` (fastest first) that reproduces the reference."""
    for method in fresh:
        if method == check.method:  # the reference itself
            return method
        path = functools.partial(forward_over_reverse, fm, check.batch, chunk=chunk)
        why = disagreement(path, check)
        if why is None:
            return method
        logger.warning("torch_hessian: fresh forward-over-reverse products discarded: %s", why)
    msg = (
        f"hvp={hvp!r} cannot compute this model's Hessian products (see the log); "
        "pass hvp='auto' or hvp='double-backward'"
    )
    raise ValueError(msg)


def _verified_kept(
    fm: FunctionalModel,
    batches: Batches,
    graph: Any,
    count: int,
    hvp: str,
    check: Check,
    chunk: int | None,
    gradient: float,
) -> tuple[Kept, dict[str, float]]:
    """Time the ways of keeping state, and keep it by the fastest one that passes its check."""
    kinds = {"auto": ["graph", "linearized"], "double-backward": ["graph"]}.get(hvp, ["linearized"])
    if check.double_backward_error is not None:
        kinds = [k for k in kinds if k != "graph"]
    nothing = Kept("graph" if "graph" in kinds else "none", {}, False)
    if count == 0 or not kinds:
        return nothing, {}
    reuse, product = _reuse_ratios(fm, graph, check.batch, kinds, chunk, gradient)
    ratios = {f"{k}{' vmapped' if b else ''}": r for (k, b), r in reuse.items()}
    for kind, batched in sorted(reuse, key=reuse.__getitem__):
        if kind == "graph":
            path = functools.partial(vjp_of_gradient, graph, fm.names, retain=True)
        else:
            path = functools.partial(linearized_products, product, batched=batched, chunk=chunk)
        why = disagreement(path, check)
        if why is None:
            state = graph if kind == "graph" else product
            return Kept(kind, _keep(fm, batches, count, kind, state), batched), ratios
        what = "retained graph" if kind == "graph" else "linearized gradient"
        what += " (vmapped)" if batched else ""
        logger.warning("torch_hessian: %s products discarded: %s", what, why)
    return Kept("none", {}, False), ratios


def follow_plan(
    fm: FunctionalModel, batches: Batches, choice: Choice, reuse_primal: bool | None
) -> Plan:
    """Return the plan of `choice` (made on another rank) for these batches, measuring no time.

    Only the memory budget is local: state is kept for as many batches as fit here.
    """
    first = batches.first()
    graph, size = _graph_bytes(fm, first) if reuse_primal is not False else (None, 0)
    count = _kept_count(batches, size, reuse_primal) if graph is not None else 0
    if count == 0 or choice.kept == "none":
        return Plan(choice.method, Kept(choice.kept, {}, choice.batched), {})
    by_batch = _keep(fm, batches, count, choice.kept, graph if choice.kept == "graph" else None)
    return Plan(choice.method, Kept(choice.kept, by_batch, choice.batched), {})


def _keep(
    fm: FunctionalModel, batches: Batches, count: int, kind: str, first: Any
) -> dict[int, Any]:
    """Build the state of `kind` for the first `count` batches; `first` is batch 0's, if built."""
    by_batch: dict[int, Any] = {}
    for index, batch, _ in batches:
        if index >= count:
            break
        if index == 0 and first is not None:
            by_batch[index] = first
        elif kind == "graph":
            by_batch[index] = gradient_graph(fm, batch)
        else:
            by_batch[index] = linearized_hessian(fm, batch)
    return by_batch

"""How a torch Hessian product is computed: decided on the first batch, at almost no cost.

A fresh exact product repeats the forward pass and the gradient for every
vector (about 3 gradients of work). What does not depend on the vector can be
kept per batch instead — the gradient's graph, differentiated again for each
vector, or the gradient linearized by ``torch.func.linearize`` — so that each
product costs only its tangent part.

Deciding costs next to nothing beyond what the operator needs anyway — the
first batch's gradient graph (its kept state) and the check that a fast path
reproduces a fresh double-backward product (`slq.adapters._torch_verify`):
each candidate is timed once, on the check's own products (no warm-up, no
repeats), and only where it could be used.

- State is kept by the retained graph whenever it passes its check. A
  linearized product does the same arithmetic (a forward-mode instead of a
  reverse-mode pass over the gradient's graph) and measured 0.7–1.4x its
  time (faster on a CNN with BatchNorm, slower on an MLP: below the margin),
  but tracing it costs 45–100 gradients, up to 8% of a default density
  (benchmarks/README.md). It is kept where double backward cannot run,
  or where ``hvp="forward-over-reverse"`` asks for it.
- The fresh methods are timed only where some batch's state is not kept.
- A way replaces the plainer one only when clearly faster (`CLEARLY_FASTER`),
  and the decision is remembered for the model's structure
  (`slq.adapters._torch_plan_cache`), so that timing noise does not flip it
  and a second operator of the same model times nothing.

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
    Tangents,
    double_backward,
    forward_over_reverse,
    gradient_graph,
    linearized_hessian,
    linearized_products,
    vjp_of_gradient,
)
from slq.adapters._torch_plan_cache import forget, plan_key, recall, remember
from slq.adapters._torch_verify import NUM_VECTORS, Check, disagreement, reference_check

__all__ = [
    "CHOICES",
    "CLEARLY_FASTER",
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


CLEARLY_FASTER = 2 / 3
"""A way replaces the plainer one only if it takes at most 2/3 of its time, per vector.

Each is timed once, on a machine whose single timings may vary by ±30%
(benchmarks/README.md): a smaller margin would let noise flip between ways
that cost the same. The plainer ways are double backward (the reference
itself) and looped linearized products; a smaller gain is given up for a
stable choice.
"""

Clock = Callable[[torch.device, Callable[[], Any]], tuple[Any, float]]


def _timed(device: torch.device, f: Callable[[], Any]) -> tuple[Any, float]:
    """Return ``f()`` and its wall time in seconds: one call, synchronising a GPU."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = f()
    sync()
    return out, time.perf_counter() - start


def _untimed(device: torch.device, f: Callable[[], Any]) -> tuple[Any, float]:
    """Return ``f()`` and NaN: for a plan that is remembered, not measured."""
    del device
    return f(), math.nan


class _Stopwatch:
    """A product path whose last call is timed: the check calls it twice, the second warm."""

    def __init__(
        self, device: torch.device, path: Callable[[Tangents], Tangents], clock: Clock
    ) -> None:
        self.device, self.path, self.clock = device, path, clock
        self.seconds = math.nan
        self.error: Exception | None = None

    def __call__(self, tangents: Tangents) -> Tangents:
        try:
            out, self.seconds = self.clock(self.device, lambda: self.path(tangents))
        except Exception as err:  # torch.func raises many kinds for models it cannot trace
            self.error = err
            raise
        return out


def _device(fm: FunctionalModel) -> torch.device:
    return fm.primal[fm.names[0]].device


def _passes(
    fm: FunctionalModel,
    path: Callable[[Tangents], Tangents],
    check: Check,
    what: str,
    clock: Clock = _timed,
) -> float | None:
    """Return the seconds per vector of `path` if it passes its check, else None (logged).

    A path that raises is unavailable (logged as information); one that runs
    but disagrees is discarded with a warning: it would have been wrong.
    """
    watch = _Stopwatch(_device(fm), path, clock)
    why = disagreement(watch, check)
    if why is None:
        return watch.seconds / NUM_VECTORS
    if watch.error is not None:
        logger.info("torch_hessian: %s unavailable (%s)", what, watch.error)
    else:
        logger.warning("torch_hessian: %s products discarded: %s", what, why)
    return None


def _gradient_seconds(fm: FunctionalModel, batch: Any) -> float:
    """One gradient's wall time: the unit of the logged ratios where no graph is kept."""
    leaves = [fm.primal[n].detach().requires_grad_() for n in fm.names]

    def gradient() -> None:
        with torch.enable_grad():
            loss = fm.loss(dict(zip(fm.names, leaves, strict=True)), batch)
            torch.autograd.grad(loss, leaves, allow_unused=True)

    return _timed(leaves[0].device, gradient)[1]


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


class _Start(NamedTuple):
    """What every plan needs from the first batch, built once, and what it took."""

    check: Check  # what a fast path must reproduce
    graph: Any  # the first batch's gradient graph, or None where state is not kept
    num_kept: int  # how many leading batches' state fits
    reference: float  # seconds per vector of the check's fresh products (NaN if not timed)
    gradient: float  # seconds of the first batch's gradient (with its graph, where built)


def _start(
    fm: FunctionalModel,
    batches: Batches,
    chunk: int | None,
    reuse_primal: bool | None,
    clock: Clock,
) -> _Start:
    """Build the check and the first batch's graph, timing them with `clock`."""
    first, device = batches.first(), batches.device
    check, reference = clock(device, functools.partial(reference_check, fm, first, chunk))
    if reuse_primal is False:
        gradient = _gradient_seconds(fm, first) if clock is _timed else math.nan
        return _Start(check, None, 0, reference / NUM_VECTORS, gradient)
    build = functools.partial(
        _graph_bytes, fm, first, create_graph=check.double_backward_error is None
    )
    (graph, size), gradient = clock(device, build)
    count = _kept_count(batches, size, reuse_primal)
    return _Start(check, graph, count, reference / NUM_VECTORS, gradient)


class _Remembered(NamedTuple):
    """A measured decision, as remembered for the model's structure."""

    choice: Choice
    ratios: dict[str, float]
    fresh_measured: bool  # whether the fresh method was chosen by timing (else the default)


def plan_products(
    fm: FunctionalModel,
    batches: Batches,
    hvp: str,
    chunk: int | None,
    reuse_primal: bool | None,
    *,
    time_fresh: bool = False,
) -> Plan:
    """Decide how products are computed, on the first batch, and build the per-batch state.

    `hvp` "auto" considers every way; "forward-over-reverse" keeps to it (fresh, or
    linearized when reused); "double-backward" likewise (fresh, or a retained graph).
    A method that cannot run on the model is refused with an error naming `hvp`.
    Every way of reusing state, and a fresh forward-over-reverse product, must
    first reproduce a fresh double-backward product (`slq.adapters._torch_verify`),
    also when the decision is remembered from an earlier operator of the same
    structure: then nothing is timed. The fresh methods are timed only when
    some batch's state is not kept, or when `time_fresh` and there is a choice
    (for other ranks, whose batches may not all fit).
    """
    key = plan_key(
        fm, batches.layouts, hvp=hvp, chunk=chunk, reuse_primal=reuse_primal, time_fresh=time_fresh
    )
    remembered = recall(key)
    if remembered is not None:
        plan = _replay(fm, batches, remembered, chunk, reuse_primal)
        if plan is not None:
            return plan
        forget(key)
    start = _start(fm, batches, chunk, reuse_primal, _timed)
    fresh = _fresh_candidates(hvp, start.check)
    kept, seconds = _verified_kept(fm, batches, start, hvp, chunk)
    fresh_measured = len(kept.by_batch) < batches.num_batches or (time_fresh and len(fresh) > 1)
    method = fresh[-1]
    if fresh_measured:
        method, fresh_seconds = _chosen_fresh(fm, fresh, hvp, start, chunk)
        seconds = fresh_seconds | seconds
    ratios = {name: s / start.gradient for name, s in seconds.items()}
    plan = Plan(method, kept, ratios, start.check)
    remember(key, _Remembered(plan.choice, ratios, fresh_measured))
    return plan


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


def _chosen_fresh(
    fm: FunctionalModel, fresh: list[str], hvp: str, start: _Start, chunk: int | None
) -> tuple[str, dict[str, float]]:
    """Return the fresh method and the seconds per vector measured on the check's products.

    The reference is itself a fresh product of its method; forward-over-reverse,
    where it is not the reference, is timed on its own check and used only if
    it passes and, against double backward, is clearly faster.
    """
    check = start.check
    seconds = {check.method: start.reference}
    if "forward-over-reverse" in fresh and check.method != "forward-over-reverse":
        path = functools.partial(forward_over_reverse, fm, check.batch, chunk=chunk)
        timed = _passes(fm, path, check, "fresh forward-over-reverse")
        if timed is not None:
            seconds["forward-over-reverse"] = timed
    usable = [method for method in fresh if method in seconds]
    if not usable:
        msg = (
            f"hvp={hvp!r} cannot compute this model's Hessian products (see the log); "
            "pass hvp='auto' or hvp='double-backward'"
        )
        raise ValueError(msg)
    if len(usable) == 1:
        return usable[0], seconds
    faster = seconds["forward-over-reverse"] <= CLEARLY_FASTER * seconds["double-backward"]
    return ("forward-over-reverse" if faster else "double-backward"), seconds


def _kept_kinds(hvp: str, check: Check) -> list[str]:
    """Return the ways `hvp` allows to keep state, the preferred first."""
    kinds = {"auto": ["graph", "linearized"], "double-backward": ["graph"]}.get(hvp, ["linearized"])
    if check.double_backward_error is not None:
        kinds = [k for k in kinds if k != "graph"]
    return kinds


def _kept_path(
    fm: FunctionalModel, kind: str, state: Any, batched: bool, chunk: int | None
) -> Callable[[Tangents], Tangents]:
    if kind == "graph":
        return functools.partial(vjp_of_gradient, state, fm.names, retain=True)
    return functools.partial(linearized_products, state, batched=batched, chunk=chunk)


def _what(kind: str, batched: bool) -> str:
    what = "retained graph" if kind == "graph" else "linearized gradient"
    return what + (" (vmapped)" if batched else "")


def _verified_kept(
    fm: FunctionalModel, batches: Batches, start: _Start, hvp: str, chunk: int | None
) -> tuple[Kept, dict[str, float]]:
    """Keep state by the first way that passes its check; return it and its seconds per vector."""
    kinds = _kept_kinds(hvp, start.check)
    if start.num_kept == 0 or not kinds:
        return Kept("graph" if "graph" in kinds else "none", {}, False), {}
    if "graph" in kinds:
        path = _kept_path(fm, "graph", start.graph, False, chunk)
        seconds = _passes(fm, path, start.check, "retained graph")
        if seconds is not None:
            by_batch = _keep(fm, batches, start.num_kept, "graph", start.graph)
            return Kept("graph", by_batch, False), {"graph": seconds}
    if "linearized" in kinds:
        return _kept_linearized(fm, batches, start, chunk)
    return Kept("none", {}, False), {}


def _kept_linearized(
    fm: FunctionalModel, batches: Batches, start: _Start, chunk: int | None
) -> tuple[Kept, dict[str, float]]:
    """Keep linearized gradients: looped, or vmapped where clearly faster; none if both fail."""
    product = _linearized_product(fm, start.check.batch, chunk)
    if product is None:
        return Kept("none", {}, False), {}
    seconds: dict[bool, float] = {}
    for batched in (False, True):
        path = _kept_path(fm, "linearized", product, batched, chunk)
        timed = _passes(fm, path, start.check, _what("linearized", batched))
        if timed is not None:
            seconds[batched] = timed
    if not seconds:
        return Kept("none", {}, False), {}
    batched = len(seconds) == 1 and True in seconds
    if len(seconds) == 2:
        batched = seconds[True] <= CLEARLY_FASTER * seconds[False]
    by_batch = _keep(fm, batches, start.num_kept, "linearized", product)
    ratios = {f"linearized{' vmapped' if b else ''}": s for b, s in seconds.items()}
    return Kept("linearized", by_batch, batched), ratios


def _linearized_product(
    fm: FunctionalModel, batch: Any, chunk: int | None
) -> Callable[[Tangents], Tangents] | None:
    """Return `batch`'s linearized product, or None where it cannot be traced (logged)."""
    # A traced product would redraw dropout masks. And linearize traces jvp(grad): where
    # eager jvp(grad) fails, tracing it can crash the process (torch 2.13 segfaults on
    # mse_loss), so it is only tried where an eager product works.
    if fm.stochastic or not _eager_jvp_works(fm, batch, chunk):
        return None
    try:
        return linearized_hessian(fm, batch)
    except Exception as err:  # torch.func raises many kinds for models it cannot trace
        logger.info("torch_hessian: torch.func.linearize unavailable (%s)", err)
        return None


def _eager_jvp_works(fm: FunctionalModel, batch: Any, chunk: int | None) -> bool:
    """Return whether one eager forward-over-reverse product runs on `batch`."""
    tangent = {n: torch.ones_like(t).unsqueeze(0) for n, t in fm.primal.items()}
    try:
        forward_over_reverse(fm, batch, tangent, chunk)
    except Exception as err:  # torch.func raises many kinds for models it cannot trace
        logger.info("torch_hessian: forward-over-reverse unavailable (%s)", err)
        return False
    return True


def _replay(
    fm: FunctionalModel,
    batches: Batches,
    remembered: _Remembered,
    chunk: int | None,
    reuse_primal: bool | None,
) -> Plan | None:
    """Return the remembered plan with this operator's own state and check, timing nothing.

    None, to measure again, where this operator needs a decision the
    remembered one did not measure or its fast path fails the check now.
    """
    choice, ratios, fresh_measured = remembered
    start = _start(fm, batches, chunk, reuse_primal, _untimed)
    check = start.check
    uses = {choice.method} | ({"double-backward"} if choice.kept == "graph" else set())
    if check.double_backward_error is not None and "double-backward" in uses:
        return None
    kept = Kept(choice.kept, {}, choice.batched)
    if start.num_kept > 0 and choice.kept != "none":
        state = start.graph
        if choice.kept == "linearized":
            state = _linearized_product(fm, check.batch, chunk)
        path = (
            _kept_path(fm, choice.kept, state, choice.batched, chunk) if state is not None else None
        )
        if path is None or _passes(fm, path, check, _what(*choice[1:]), _untimed) is None:
            return None
        by_batch = _keep(fm, batches, start.num_kept, choice.kept, state)
        kept = Kept(choice.kept, by_batch, choice.batched)
    if len(kept.by_batch) < batches.num_batches:
        if not fresh_measured:
            return None
        if choice.method != check.method:
            path = functools.partial(forward_over_reverse, fm, check.batch, chunk=chunk)
            if _passes(fm, path, check, "fresh forward-over-reverse", _untimed) is None:
                return None
    logger.info(
        "torch_hessian: products computed as measured before for this model's structure "
        "(the same modules, parameter shapes, dtype, device, batch shapes and options); "
        "the fast path passed its check again, nothing was timed"
    )
    return Plan(choice.method, kept, dict(ratios), check)


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

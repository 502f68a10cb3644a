"""A torch model as a pure function of its parameters, and curvature products of it.

Every product here takes tangents as a dict {name: tensor of shape (k, *param.shape)}
and returns the products in the same form, for one batch of data.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, functionalize, grad, jvp, linearize, vjp, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = [
    "BATCHNORM",
    "FunctionalModel",
    "all_finite",
    "double_backward",
    "forward_over_reverse",
    "ggn",
    "plain_autograd",
]

logger = logging.getLogger("slq")

BATCHNORM = ("train", "eval")

Tangents = dict[str, torch.Tensor]


class _LossModule(nn.Module):
    """``batch -> (mean loss, batch size)`` around the model, so one functional_call covers both."""

    def __init__(self, model: nn.Module, batch_loss: Callable[[nn.Module, Any], Any]) -> None:
        super().__init__()
        self.model = model
        self.batch_loss = batch_loss

    def forward(self, batch: Any) -> tuple[torch.Tensor, int]:
        return self.batch_loss(self.model, batch)


def _stateless_copy(model: nn.Module, batchnorm: str, dropout: bool) -> nn.Module:
    """Copy `model` without its tensors (they are passed in at each call), in the asked modes.

    Every module is put in eval mode (dropout off) except, for batchnorm="train",
    the BatchNorm layers, which then normalise by the batch's statistics and, with
    ``track_running_stats = False``, never update running statistics.
    """
    tensors = [*model.parameters(), *model.buffers()]
    memo: dict[int, Any] = {
        id(t): (
            nn.Parameter(torch.empty_like(t, device="meta"), requires_grad=t.requires_grad)
            if isinstance(t, nn.Parameter)
            else torch.empty_like(t, device="meta")
        )
        for t in tensors
    }
    clone = copy.deepcopy(model, memo)
    clone.eval()
    for module in clone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and batchnorm == "train":
            module.train()
            module.track_running_stats = False
        elif isinstance(module, nn.modules.dropout._DropoutNd) and dropout:
            module.train()
    return clone


@contextlib.contextmanager
def plain_autograd(device: torch.device) -> Iterator[None]:
    """Run slq's evaluations with autograd on and autocast off, whatever the caller's context.

    An operator may be built or used under ``torch.no_grad()``,
    ``torch.inference_mode()`` (whose tensors autograd cannot save) or
    ``torch.autocast`` (which would compute products in lower precision, and
    unlike the products computed outside it: not one matrix). Autocast inside
    the model's own ``forward`` is the model's, and stays.
    """
    autocast = (
        torch.autocast(device.type, enabled=False)
        if torch.amp.is_autocast_available(device.type)
        else contextlib.nullcontext()
    )
    with torch.inference_mode(False), torch.enable_grad(), autocast:
        yield


def _usable(t: torch.Tensor) -> torch.Tensor:
    """`t` detached; cloned if made under ``torch.inference_mode()``, which autograd cannot save."""
    t = t.detach()
    return t.clone() if t.is_inference() else t


def all_finite(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """Return a 0-d bool tensor: whether every entry of every tensor is finite, on the device.

    From each tensor's least and largest entries (NaN propagates to both): one
    reduction a tensor, without the n-sized mask of ``isfinite(t).all()``
    (5x slower at n = 1e5 on a CPU core).

    Examples
    --------
    >>> import torch
    >>> from slq.adapters._torch_func import all_finite
    >>> bool(all_finite([torch.ones(3), torch.tensor([1.0, float("nan")])]))
    False
    """
    ends = [torch.stack(torch.aminmax(t)) for t in tensors if t.numel()]
    if not ends:
        return torch.tensor(True)
    return torch.isfinite(torch.cat(ends)).all()


def _is_compiled(model: nn.Module) -> bool:
    """Say whether the user compiled the model: ``torch.compile(model)`` or ``model.compile()``."""
    # torch.compile(model) wraps it in an OptimizedModule holding `_orig_mod`; checked
    # by that attribute, so that torch._dynamo is not imported for every model.
    return isinstance(getattr(model, "_orig_mod", None), nn.Module) or any(
        getattr(m, "_compiled_call_impl", None) is not None for m in model.modules()
    )


class FunctionalModel:
    """The loss of a private copy of the model, as a function of the chosen parameters.

    The user's model is never touched: its tensors are read (parameters share
    storage, buffers are copied once) and passed to the copy at each call.
    """

    def __init__(
        self,
        model: nn.Module,
        names: list[str],
        batch_loss: Callable[[nn.Module, Any], Any],
        *,
        batchnorm: str,
        dropout: bool,
        seed: int,
    ) -> None:
        params = dict(model.named_parameters())
        self.names = names
        self.primal = {name: _usable(params[name]) for name in names}
        fixed = {name: _usable(p) for name, p in params.items() if name not in self.primal}
        fixed.update({name: b.detach().clone() for name, b in model.named_buffers()})
        if any(p.is_inference() for p in params.values()):
            logger.info(
                "torch_hessian: the model's parameters were made under torch.inference_mode(), "
                "which autograd cannot differentiate: slq differentiates a copy of them"
            )
        self.module = _LossModule(_stateless_copy(model, batchnorm, dropout), batch_loss)
        self._fixed = fixed
        self._seed = seed
        self.stochastic = dropout  # a traced (linearized) product would redraw the masks
        # Set when the model calls scaled_dot_product_attention, whose fused kernels
        # cannot be differentiated twice (see `slq.adapters._torch_prepare`): slq's own
        # evaluations then run the math kernel; the user's setting is restored after each.
        self.math_attention = False
        self.compiled = _is_compiled(model)
        device = next(iter(self.primal.values())).device
        self._rng_devices = [device] if device.type == "cuda" else []
        self._device_type = device.type

    def _tensors(self, theta: Tangents, prefix: str = "") -> dict[str, torch.Tensor]:
        tensors = {**self._fixed, **theta}
        return {prefix + name: t for name, t in tensors.items()}

    @contextlib.contextmanager
    def _frozen_randomness(self) -> Iterator[None]:
        # Any randomness in the model (dropout, if kept on) restarts from the seed at
        # every evaluation, so the operator is one fixed matrix; the caller's global
        # RNG state is restored afterwards.
        use_math = self.math_attention
        with (
            sdpa_kernel(SDPBackend.MATH) if use_math else contextlib.nullcontext(),
            # A model the user compiled runs eagerly here: dynamo recompiles it under
            # every torch.func transform and saved-tensor hook (20 s for a tiny CNN)
            # and fails under some (torch 2.13). set_stance restores on exit.
            torch.compiler.set_stance("force_eager") if self.compiled else contextlib.nullcontext(),
            torch.random.fork_rng(devices=self._rng_devices, device_type=self._device_type),
        ):
            torch.manual_seed(self._seed)
            yield

    def loss_and_size(self, theta: Tangents, batch: Any) -> tuple[torch.Tensor, int]:
        """Return the batch's mean loss and size at parameters `theta`."""
        with self._frozen_randomness():
            return functional_call(self.module, self._tensors(theta, "model."), (batch,))

    def loss(self, theta: Tangents, batch: Any) -> torch.Tensor:
        """Return the batch's mean loss at parameters `theta`."""
        return self.loss_and_size(theta, batch)[0]

    def outputs(self, theta: Tangents, inputs: Any) -> torch.Tensor:
        """Return the model's outputs at parameters `theta`."""
        with self._frozen_randomness():
            return functional_call(self.module.model, self._tensors(theta), (inputs,))


def _map(one: Callable[[Tangents], Tangents], tangents: Tangents, chunk: int | None) -> Tangents:
    """Apply `one` to each of the k tangents; vmap shares the primal work between them."""
    k = next(iter(tangents.values())).shape[0]
    if k == 1:
        out = one({name: t[0] for name, t in tangents.items()})
        return {name: t.unsqueeze(0) for name, t in out.items()}
    # randomness="same": every tangent sees the same (frozen) dropout masks.
    return vmap(one, chunk_size=chunk, randomness="same")(tangents)


def forward_over_reverse(
    fm: FunctionalModel, batch: Any, tangents: Tangents, chunk: int | None
) -> Tangents:
    """Hessian products by forward-mode differentiation of the gradient (Pearlmutter 1994)."""
    gradient = grad(lambda theta: fm.loss(theta, batch))
    return _map(lambda t: jvp(gradient, (fm.primal,), (t,))[1], tangents, chunk)


def gradient_graph(
    fm: FunctionalModel, batch: Any, *, create_graph: bool = True
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Return (gradient with its graph, leaves): what a double-backward product differentiates."""
    leaves = [fm.primal[name].detach().requires_grad_() for name in fm.names]
    with torch.enable_grad():
        loss = fm.loss(dict(zip(fm.names, leaves, strict=True)), batch)
        grads = torch.autograd.grad(
            loss, leaves, create_graph=create_graph, allow_unused=True, materialize_grads=True
        )
    return list(grads), leaves


def vjp_of_gradient(
    graph: tuple[list[torch.Tensor], list[torch.Tensor]],
    names: list[str],
    tangents: Tangents,
    retain: bool,
) -> Tangents:
    """Differentiate the gradient once more along the tangents: H t = ∂(gᵀt)/∂θ.

    With `retain` (a graph kept across products) the k tangents go through it one
    at a time: measured faster than a batched (vmapped) backward, which only pays
    when it also shares a fresh forward pass.
    """
    grads, leaves = graph
    k = next(iter(tangents.values())).shape[0]
    live = [i for i, g in enumerate(grads) if g.requires_grad]
    if not live:  # the loss is linear in these parameters: H = 0
        return {name: torch.zeros_like(t) for name, t in tangents.items()}
    outputs = [grads[i] for i in live]
    cotangents = [tangents[names[i]] for i in live]
    options = {"allow_unused": True, "materialize_grads": True}
    results: list[torch.Tensor] | None = None
    with torch.enable_grad():
        if k > 1 and not retain:
            try:
                results = list(
                    torch.autograd.grad(
                        outputs,
                        leaves,
                        cotangents,
                        retain_graph=True,
                        is_grads_batched=True,
                        **options,
                    )
                )
            except RuntimeError:  # an op without a batching rule: one column at a time
                results = None
        if results is None:
            columns = [
                torch.autograd.grad(
                    outputs,
                    leaves,
                    [c[i] for c in cotangents],
                    retain_graph=retain or i < k - 1,
                    **options,
                )
                for i in range(k)
            ]
            results = [torch.stack(parts) for parts in zip(*columns, strict=True)]
    return {name: r.detach() for name, r in zip(names, results, strict=True)}


def linearized_hessian(fm: FunctionalModel, batch: Any) -> Callable[[Tangents], Tangents]:
    """Return t ↦ H t on one batch with the primal pass done once, now.

    ``torch.func.linearize`` of the gradient traces the forward-over-reverse
    product once and keeps what does not depend on the tangent, so each later
    product costs only the tangent part.

    The gradient is functionalized first. ``linearize`` traces with ``make_fx`` and
    folds the tangent-free part of the graph into constants, but torch.fx counts a
    mutating op as impure and leaves it out of the folding: an in-place op on a
    primal tensor (``out += identity`` in a residual block, ``x.mul_(s)``) then
    runs again at every call, on the folded constant it already changed, and each
    product drifts further from the Hessian (torch 2.13; found on ResNets, whose
    blocks add the shortcut in place). Idempotent ones (``ReLU(inplace=True)``,
    ``fill_``) happen to be harmless. ``functionalize`` rewrites every in-place op
    as its out-of-place form before tracing, so nothing folded is ever mutated.
    Products that reuse this are still checked against a fresh double backward
    when the operator is built (`slq.adapters._torch_plan`).
    """
    with warnings.catch_warnings():
        # torch.fx's constant folding warns about its own internal nodes (torch 2.13).
        warnings.filterwarnings("ignore", "Attempted to insert a get_attr Node", UserWarning)
        _, product = linearize(functionalize(grad(partial(_batch_loss, fm, batch))), fm.primal)
    return product


def _batch_loss(fm: FunctionalModel, batch: Any, theta: Tangents) -> torch.Tensor:
    return fm.loss(theta, batch)


def linearized_products(
    product: Callable[[Tangents], Tangents], tangents: Tangents, batched: bool, chunk: int | None
) -> Tangents:
    """Apply a linearized Hessian to k tangents: vmapped, or one at a time."""
    if batched:
        return _map(product, tangents, chunk)
    k = next(iter(tangents.values())).shape[0]
    outs = [product({name: t[i] for name, t in tangents.items()}) for i in range(k)]
    return {name: torch.stack([o[name] for o in outs]) for name in tangents}


def double_backward(
    fm: FunctionalModel, batch: Any, tangents: Tangents, chunk: int | None
) -> Tangents:
    """Hessian products by differentiating the gradient's graph (reverse over reverse)."""
    del chunk  # is_grads_batched evaluates every column in one pass
    return vjp_of_gradient(gradient_graph(fm, batch), fm.names, tangents, retain=False)


def ggn(
    fm: FunctionalModel,
    batch: Any,
    tangents: Tangents,
    chunk: int | None,
    loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
) -> Tangents:
    """Generalised Gauss–Newton products Jᵀ H_ℓ J t (Schraudolph 2002; Martens 2010)."""
    inputs, targets = batch[0], batch[1]

    def outputs(theta: Tangents) -> torch.Tensor:
        return fm.outputs(theta, inputs)

    z, pullback = vjp(outputs, fm.primal)[:2]
    loss_gradient = grad(lambda out: loss_fn(out, targets))

    def one(t: Tangents) -> Tangents:
        jt = jvp(outputs, (fm.primal,), (t,))[1]
        return pullback(jvp(loss_gradient, (z,), (jt,))[1])[0]

    return _map(one, tangents, chunk)

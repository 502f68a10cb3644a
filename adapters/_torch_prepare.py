"""How a torch model, its loss and its data become the pieces a curvature operator needs.

`check_arguments` checks what the torch adapters share before anything is read;
`prepare_model` checks the chosen parameters, builds the loss of one batch
(``(inputs, targets)`` pairs, Hugging Face dict batches, or the user's
`batch_loss`), reads the data once (`Batches`) and checks the first batch's
loss: a finite scalar, and computed in the parameters' precision.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from slq.adapters._batches import check_data
from slq.adapters._checks import (
    check_callable,
    check_optional_bool,
    check_seed,
    check_selection,
)
from slq.adapters._common import is_single_batch, names_of
from slq.adapters._torch_data import Batches
from slq.adapters._torch_func import BATCHNORM, FunctionalModel
from torch import nn

from slq._validate import check_bool, check_choice

__all__ = ["check_arguments", "prepare_model"]

logger = logging.getLogger("slq")


def _default_batch_loss(
    loss_fn: Callable[..., torch.Tensor] | None,
) -> Callable[[nn.Module, Any], Any]:
    def batch_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        if isinstance(batch, Mapping):
            return _mapping_loss(model, batch, loss_fn)
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            msg = (
                f"a batch must be an (inputs, targets) pair or a dict with 'labels', got "
                f"{type(batch).__name__}; for other batches pass "
                "batch_loss=callable(model, batch) -> (mean_loss, batch_size)"
            )
            raise TypeError(msg)
        inputs, targets = batch
        if loss_fn is None:
            return nn.functional.cross_entropy(_logits(model(inputs)), targets), len(inputs)
        return loss_fn(model(inputs), targets), int(inputs.shape[0])

    return batch_loss


def _logits(outputs: Any) -> Any:
    """Return the ``logits`` of a Hugging Face ``ModelOutput``; any other output as it is."""
    return outputs if isinstance(outputs, torch.Tensor) else getattr(outputs, "logits", outputs)


def _mapping_loss(
    model: nn.Module, batch: Mapping[str, Any], loss_fn: Callable[..., torch.Tensor] | None
) -> tuple[torch.Tensor, int]:
    """Return the loss and size of a dict of keyword inputs with ``labels`` (Hugging Face).

    Without `loss_fn` the model computes its own loss (``model(**batch).loss``);
    with it, ``loss_fn(model(**inputs), labels)``. The batch size is the leading
    axis of ``labels``.
    """
    if "labels" not in batch:
        msg = (
            f"a dict batch needs a 'labels' entry for the default loss, got keys {sorted(batch)}; "
            "or pass batch_loss=callable(model, batch) -> (mean_loss, batch_size)"
        )
        raise TypeError(msg)
    labels = batch["labels"]
    size = int(labels.shape[0])
    if loss_fn is not None:
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        return loss_fn(model(**inputs), labels), size
    loss = getattr(model(**batch), "loss", None)
    if loss is None:
        msg = (
            "the model returned no .loss for a dict batch with 'labels': pass "
            "loss_fn=callable(outputs, labels) or batch_loss=callable(model, batch)"
        )
        raise TypeError(msg)
    return loss, size


def check_arguments(
    model: Any,
    data: Any,
    loss_fn: Any,
    params: Any,
    batch_loss: Any,
    options: dict[str, Any],
) -> None:
    """Raise, naming the argument, for any that `prepare_model` cannot take: nothing is read yet."""
    if not isinstance(model, nn.Module):
        msg = f"model must be a torch.nn.Module, got {type(model).__name__}"
        raise TypeError(msg)
    cache = check_optional_bool("cache_data", options["cache_data"])
    check_data(data, cache, is_single_batch(data))
    check_callable("loss_fn", loss_fn, "loss_fn(outputs, targets) -> mean loss", optional=True)
    check_callable(
        "batch_loss", batch_loss, "batch_loss(model, batch) -> (mean loss, size)", optional=True
    )
    if batch_loss is not None and loss_fn is not None:
        msg = "pass loss_fn or batch_loss, not both"
        raise TypeError(msg)
    check_selection("params", params, "parameter names or Parameters")
    check_choice("batchnorm", options["batchnorm"], BATCHNORM)
    check_bool("dropout", options["dropout"])
    check_seed("seed", options["seed"])


def _select(model: nn.Module, params: Sequence[Any] | None) -> list[str]:
    available = dict(model.named_parameters())
    if params is None:
        names = [name for name, p in available.items() if p.requires_grad]
    else:
        names = names_of(list(params), available, "parameter")
    if not names:
        msg = "the model has no trainable parameters (none with requires_grad, or params is empty)"
        raise ValueError(msg)
    chosen = [available[name] for name in names]
    if len({p.dtype for p in chosen}) > 1 or len({p.device for p in chosen}) > 1:
        kinds = sorted({f"{p.dtype} on {p.device}" for p in chosen})
        msg = (
            f"the chosen parameters must share one dtype and one device, got {', '.join(kinds)}: "
            "choose some with params=, or convert the model (model.to(dtype))"
        )
        raise TypeError(msg)
    if not chosen[0].dtype.is_floating_point:
        msg = f"parameters must be floating point, got {chosen[0].dtype}"
        raise TypeError(msg)
    return names


def _tensors_in(tree: Any) -> Iterator[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            yield from _tensors_in(item)
    elif isinstance(tree, Mapping):
        for item in tree.values():
            yield from _tensors_in(item)


class _Watch(torch.overrides.TorchFunctionMode):
    """Notes whether the model calls ``scaled_dot_product_attention``, and its precision.

    ``narrowest`` is the narrowest floating dtype among the results of
    operations that depend on the parameters. Dependence is followed from the
    parameter tensors through every operation's arguments, by identity; the
    tensors are held weakly, so that the forward pass keeps no more memory than
    it would.
    """

    def __init__(self, params: Iterable[torch.Tensor]) -> None:
        super().__init__()
        self.attention = False
        self.narrowest: torch.dtype | None = None
        self._dependent: weakref.WeakValueDictionary[int, torch.Tensor] = (
            weakref.WeakValueDictionary({id(p): p for p in params})
        )

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        self.attention = self.attention or func is nn.functional.scaled_dot_product_attention
        out = func(*args, **kwargs)
        if any(id(t) in self._dependent for t in _tensors_in((args, kwargs))):
            for t in _tensors_in(out):
                self._dependent[id(t)] = t
                if t.dtype.is_floating_point and (
                    self.narrowest is None or t.dtype.itemsize < self.narrowest.itemsize
                ):
                    self.narrowest = t.dtype
        return out


def _check_first_loss(fm: FunctionalModel, batches: Batches) -> None:
    batch = batches.first()
    with torch.no_grad(), _Watch(fm.primal.values()) as watch:
        loss = fm.loss(fm.primal, batch)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        msg = (
            f"the loss must be a scalar tensor (the batch mean), got {shape}; use reduction='mean'"
        )
        raise ValueError(msg)
    if not torch.isfinite(loss):
        msg = f"the loss is {loss.item()} on batch 0: check the data and the model"
        raise FloatingPointError(msg)
    _warn_if_less_precise(loss.dtype, watch.narrowest, fm.primal[fm.names[0]].dtype)
    if watch.attention:
        _use_math_attention(fm)


def _warn_if_less_precise(
    loss: torch.dtype, narrowest: torch.dtype | None, dtype: torch.dtype
) -> None:
    """Warn when the loss, or an operation of the model, computes in less precision than θ."""
    if loss.itemsize < dtype.itemsize:
        logger.warning(
            "torch_hessian: the loss is %s but the parameters are %s: the Hessian is only as "
            "precise as the loss (Hugging Face's labels= loss casts the logits to float32: "
            "pass loss_fn=callable(outputs, labels) to compute it in %s)",
            loss,
            dtype,
            dtype,
        )
    elif narrowest is not None and narrowest.itemsize < dtype.itemsize:
        logger.warning(
            "torch_hessian: the model computes in %s where it depends on the parameters "
            "(autocast or a .half() layer inside it?), but they are %s: the Hessian is only "
            "as precise as %s",
            narrowest,
            dtype,
            narrowest,
        )


def _use_math_attention(fm: FunctionalModel) -> None:
    """Run ``scaled_dot_product_attention`` by the math kernel in slq's own evaluations.

    The fused kernels (flash, memory-efficient, cuDNN, and the CPU flash kernel)
    have neither a double backward nor forward AD (torch 2.13), and a product
    needs one of the two; the math kernel is plain differentiable operations and
    computes the same function. So no probe is run: the fused kernels are never
    usable here. Only slq's evaluations change kernel; the user's setting is
    restored after each.
    """
    fm.math_attention = True
    logger.info(
        "torch_hessian: the model calls scaled_dot_product_attention, whose fused kernels "
        "cannot be differentiated twice; slq's products run it by the math kernel "
        "(sdpa_kernel(SDPBackend.MATH)), your setting is left as it is"
    )


def prepare_model(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[..., torch.Tensor] | None,
    params: Sequence[Any] | None,
    batch_loss: Callable[[nn.Module, Any], Any] | None,
    options: dict[str, Any],
    batches: Batches | None = None,
) -> tuple[FunctionalModel, Batches]:
    names = _select(model, params)
    loss = batch_loss or _default_batch_loss(loss_fn)
    fm = FunctionalModel(
        model,
        names,
        loss,
        batchnorm=options["batchnorm"],
        dropout=options["dropout"],
        seed=options["seed"],
    )
    if batches is None:
        device = fm.primal[names[0]].device

        def size_of(batch: Any) -> int:
            with torch.no_grad():
                return int(fm.loss_and_size(fm.primal, batch)[1])

        batches = Batches(data, device, size_of, options["cache_data"])
    _check_first_loss(fm, batches)
    return fm, batches

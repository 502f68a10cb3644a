"""The product plans this process has already measured, by model structure.

Planning how to compute a torch Hessian product (`slq.adapters._torch_plan`)
times products on the first batch; a second operator of a model with the same
structure (a checkpoint later in training, the same network on new data of
the same shapes) would only repeat that measurement, and might choose
differently by timing noise. So each decision is remembered under a key of
everything it depends on but the parameters' values: the modules (type and
mode), every parameter and buffer (name, shape, dtype), which parameters are
differentiated and where, the loss, the batches' layouts, and the planning
options. A remembered plan saves only the timing: the per-batch state is
built, and its fast path checked against a fresh product, again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from slq.adapters._torch_func import FunctionalModel

__all__ = ["MAX_PLANS", "clear_plans", "forget", "plan_key", "recall", "remember"]

MAX_PLANS = 64
"""Plans remembered at most, the least recently used dropped first: each is a few names."""

_plans: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


def _loss_name(batch_loss: Callable[..., Any]) -> tuple[str, ...]:
    """Name the loss: the function, and the functions it closes over (the user's `loss_fn`)."""
    inner = []
    for cell in getattr(batch_loss, "__closure__", None) or ():
        try:
            inner.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return tuple(_name(f) for f in [batch_loss, *inner] if callable(f))


def _name(f: Any) -> str:
    """Return a function's module and qualified name, or another callable's repr."""
    qualname = getattr(f, "__qualname__", None)
    return f"{getattr(f, '__module__', '')}.{qualname}" if qualname else repr(f)


def plan_key(fm: FunctionalModel, layouts: list[tuple[str, ...]], **options: Any) -> Hashable:
    """Return what a plan for `fm` on batches of these `layouts` depends on, but the values.

    Examples
    --------
    >>> import torch
    >>> from slq.adapters._torch_func import FunctionalModel
    >>> from slq.adapters._torch_plan_cache import plan_key
    >>> def loss(model, batch):
    ...     return model(batch).sum(), len(batch)
    >>> def key(width):
    ...     model = torch.nn.Linear(3, width)
    ...     fm = FunctionalModel(model, ["weight"], loss, batchnorm="eval", dropout=False, seed=0)
    ...     return plan_key(fm, [("[0]: torch.float32 (4, 3)",)], hvp="auto")
    >>> key(2) == key(2), key(2) == key(5)
    (True, False)
    """
    model = fm.module.model
    modules = tuple(
        (name, type(m).__module__, type(m).__qualname__, m.training)
        for name, m in model.named_modules()
    )
    tensors = tuple(
        (name, tuple(t.shape), str(t.dtype))
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    )
    first = fm.primal[fm.names[0]]
    where = (str(first.dtype), str(first.device), tuple(fm.names))
    flags = (fm.stochastic, fm.math_attention, fm.compiled)
    shapes = tuple(sorted(set(layouts)))
    return (
        modules,
        tensors,
        where,
        flags,
        _loss_name(fm.module.batch_loss),
        shapes,
        tuple(sorted(options.items())),
    )


def recall(key: Hashable) -> Any:
    """Return the plan remembered under `key`, or None."""
    with _lock:
        if key not in _plans:
            return None
        _plans.move_to_end(key)
        return _plans[key]


def remember(key: Hashable, plan: Any) -> None:
    """Remember `plan` under `key`, forgetting the least recently used beyond `MAX_PLANS`."""
    with _lock:
        _plans[key] = plan
        _plans.move_to_end(key)
        while len(_plans) > MAX_PLANS:
            _plans.popitem(last=False)


def forget(key: Hashable) -> None:
    """Forget the plan under `key` (one whose fast path failed its check)."""
    with _lock:
        _plans.pop(key, None)


def clear_plans() -> None:
    """Forget every remembered plan, so that the next operator measures again.

    Examples
    --------
    >>> from slq.adapters._torch_plan_cache import clear_plans, recall, remember
    >>> remember("key", "plan")
    >>> clear_plans()
    >>> recall("key") is None
    True
    """
    with _lock:
        _plans.clear()

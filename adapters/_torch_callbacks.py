"""What the torch training callbacks (Lightning, Hugging Face) share: recording without a trace.

A recording builds `torch_hessian` on the user's evaluation data and hands it to
the tracker. `torch_hessian` never modifies the model (parameters, buffers,
gradients); `training_untouched` also puts back what the training loop reads
next and a recording might disturb: every random number generator (Python,
numpy, torch, CUDA) and each module's train/eval flag. Under
``torch.distributed`` every rank takes part in the products and rank 0 writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.distributed as dist
from slq.adapters._callbacks import density_arguments, host_random_untouched
from slq.adapters.torch import torch_hessian
from torch import nn

import slq

__all__ = ["TorchRecorder", "scalar", "training_untouched"]


@contextlib.contextmanager
def training_untouched(model: nn.Module) -> Iterator[None]:
    """Restore the random number generators and the modules' train flags on exit.

    Examples
    --------
    >>> import random, torch
    >>> from slq.adapters._torch_callbacks import training_untouched
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
    >>> with training_untouched(model):
    ...     _ = torch.rand(3), random.random()
    ...     model.eval()  # doctest: +ELLIPSIS
    Sequential(...)
    >>> model.training
    True
    """
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    modes = [(module, module.training) for module in model.modules()]
    try:
        with host_random_untouched():
            yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        for module, training in modes:
            module.training = training


def scalar(value: Any) -> float | None:
    """Return a loss or learning rate as a float; None if there is none.

    Examples
    --------
    >>> import torch
    >>> from slq.adapters._torch_callbacks import scalar
    >>> scalar(torch.tensor(0.5)), scalar({"loss": torch.tensor(2.0)}), scalar(None)
    (0.5, 2.0, None)
    """
    if isinstance(value, Mapping):
        value = value.get("loss")
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach()
    return float(value)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class TorchRecorder:
    """Records a torch model's Hessian density with a tracker, on one process or all ranks.

    Under an initialised ``torch.distributed`` group of several processes, `data`
    is this rank's shard: rank 0 decides whether the step is due (its tracker
    holds the file) and tells the others, every rank builds the operator with
    ``distributed=True`` and runs the same Lanczos iteration, and rank 0 writes.

    Examples
    --------
    >>> import tempfile, torch
    >>> import slq
    >>> from slq.adapters._torch_callbacks import TorchRecorder
    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.tensor([0, 1] * 4))
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
    >>> recorder = TorchRecorder(tracker, data, None, {})
    >>> recorder.record(0, model, loss=1.0).dim, recorder.record(0, model)
    (8, None)
    """

    def __init__(
        self,
        tracker: Any,
        data: Any,
        loss_fn: Callable[..., Any] | None,
        hessian_options: dict[str, Any],
    ) -> None:
        if "distributed" in hessian_options:
            msg = "distributed is set by the callback: on when torch.distributed runs several ranks"
            raise TypeError(msg)
        self.tracker, self.data, self.loss_fn = tracker, data, loss_fn
        self.hessian_options = hessian_options

    def record(self, step: int, model: nn.Module, **scalars: float | None) -> Any:
        """Record the density at `step` if the tracker says it is due; return it (None if not)."""
        given = {name: value for name, value in scalars.items() if value is not None}
        distributed = _distributed()
        if distributed and not self._due_on_rank_0(step):
            return None

        def build() -> Any:
            return torch_hessian(
                model, self.data, self.loss_fn, distributed=distributed, **self.hessian_options
            )

        with training_untouched(model):
            if not distributed:
                return self.tracker.maybe_record(step, build, **given)
            if dist.get_rank() == 0:
                return self.tracker.record(step, build(), **given)
            return slq.density(build(), **density_arguments(self.tracker))

    def _due_on_rank_0(self, step: int) -> bool:
        # Only rank 0's tracker is sure to hold the file: every rank must agree to build.
        flag = [bool(self.tracker.due(step)) if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(flag, src=0)
        return bool(flag[0])

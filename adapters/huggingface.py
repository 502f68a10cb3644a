"""A Hugging Face `transformers` callback that records the Hessian's spectrum as training goes.

``Trainer(..., callbacks=[adapters.HuggingFaceSpectrumCallback(tracker, data)])``
records ``slq.density(adapters.torch_hessian(model, data))`` with an
`slq.Tracker` at the start of training and every n optimiser steps or epochs,
leaving training exactly as it would be without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import transformers
from slq.adapters._callbacks import Schedule, check_tracker
from slq.adapters._torch_callbacks import TorchRecorder

from slq._validate import check_callable

__all__ = ["HuggingFaceSpectrumCallback"]


class HuggingFaceSpectrumCallback(transformers.TrainerCallback):
    """Record the Hessian density of a `transformers.Trainer`'s model with an `slq.Tracker`.

    Each record is ``slq.density(adapters.torch_hessian(model, data, loss_fn,
    **hessian_options))`` with the tracker's settings, stored at
    ``state.global_step`` (optimiser steps done) with the scalars ``lr`` (the
    optimiser's first group) and ``epoch`` (fractional, as the Trainer counts
    it); the training loss is in the Trainer's ``state.log_history``, logged
    after the step's callbacks. Training is unchanged: the model, its gradients
    and statistics are never modified, and the random number generators (Python,
    numpy, torch, CUDA) and train/eval flags are restored after each record. A
    step the tracker already holds is skipped, so a resumed run appends only
    new steps.

    Under a distributed launch (``torchrun``, ``accelerate launch``), `data` is
    this rank's shard of the evaluation subset: every rank takes part in the
    products and rank 0 writes.

    Parameters
    ----------
    tracker : slq.Tracker
        Where the densities go, and with which settings (``num_steps``, ...).
    data
        The fixed evaluation subset: one batch or a few (a list, a small
        DataLoader), as `adapters.torch_hessian` takes it. A dict batch, as a
        data collator gives it, with ``labels``: the model's own loss
        (``model(**batch).loss``) unless `loss_fn` is given.
    loss_fn : callable, optional
        ``loss_fn(outputs, labels)``, the batch mean, where ``outputs`` is the
        model's output object (take its ``.logits``).
    every_n_steps, every_n_epochs : int, optional
        Record after every n optimiser steps, or at the end of every n epochs
        (one of them); neither: at each step the tracker's ``every`` accepts.
    **hessian_options
        Passed to `adapters.torch_hessian` (``params``, ``batch_loss``, ...).

    Examples
    --------
    >>> import tempfile, torch
    >>> import transformers
    >>> from transformers.modeling_outputs import SequenceClassifierOutput
    >>> import slq
    >>> from slq import adapters
    >>> class Classifier(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                                        torch.nn.Linear(8, 3))
    ...     def forward(self, x, labels=None):
    ...         logits = self.net(x)
    ...         loss = torch.nn.functional.cross_entropy(logits, labels)
    ...         return SequenceClassifierOutput(loss=loss, logits=logits)
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> train = [{"x": xi, "labels": yi} for xi, yi in zip(x, y)]
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=10, num_probes=2)
    >>> callback = adapters.HuggingFaceSpectrumCallback(
    ...     tracker, {"x": x[:32], "labels": y[:32]}, every_n_steps=2)
    >>> args = transformers.TrainingArguments(
    ...     tempfile.mkdtemp(), max_steps=4, per_device_train_batch_size=16, use_cpu=True,
    ...     report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True)
    >>> trainer = transformers.Trainer(
    ...     Classifier(), args, train_dataset=train, callbacks=[callback])
    >>> trainer.remove_callback(transformers.PrinterCallback)  # it prints the metrics
    >>> _ = trainer.train()
    >>> slq.load_track(tracker.path).steps.tolist()
    [0, 2, 4]
    """

    def __init__(
        self,
        tracker: Any,
        data: Any,
        loss_fn: Callable[..., Any] | None = None,
        *,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = None,
        **hessian_options: Any,
    ) -> None:
        self.schedule = Schedule(every_n_steps, every_n_epochs)
        check_tracker(tracker, self.schedule)
        check_callable("loss_fn", loss_fn)
        self.recorder = TorchRecorder(tracker, data, loss_fn, hessian_options)

    @property
    def tracker(self) -> Any:
        """The `slq.Tracker` the densities go to."""
        return self.recorder.tracker

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Record the weights training starts from (Trainer event).

        Examples
        --------
        >>> import tempfile, torch
        >>> import transformers
        >>> import slq
        >>> from slq import adapters
        >>> model, data = torch.nn.Linear(3, 2), (torch.randn(8, 3), torch.tensor([0, 1] * 4))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.HuggingFaceSpectrumCallback(tracker, data, every_n_steps=5)
        >>> state, control = transformers.TrainerState(), transformers.TrainerControl()
        >>> callback.on_train_begin(None, state, control, model=model)
        >>> tracker.steps
        [0]
        """
        self._record(state, kwargs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Record if the optimiser steps done are a recording point (Trainer event).

        Examples
        --------
        >>> import tempfile, torch
        >>> import transformers
        >>> import slq
        >>> from slq import adapters
        >>> model, data = torch.nn.Linear(3, 2), (torch.randn(8, 3), torch.tensor([0, 1] * 4))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.HuggingFaceSpectrumCallback(tracker, data, every_n_steps=5)
        >>> control = transformers.TrainerControl()
        >>> for step in range(1, 11):
        ...     state = transformers.TrainerState(global_step=step)
        ...     callback.on_step_end(None, state, control, model=model)
        >>> tracker.steps
        [5, 10]
        """
        if self.schedule.at_step(state.global_step):
            self._record(state, kwargs)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Record if the epochs done are a recording point (Trainer event).

        Examples
        --------
        >>> import tempfile, torch
        >>> import transformers
        >>> import slq
        >>> from slq import adapters
        >>> model, data = torch.nn.Linear(3, 2), (torch.randn(8, 3), torch.tensor([0, 1] * 4))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.HuggingFaceSpectrumCallback(tracker, data, every_n_epochs=2)
        >>> state = transformers.TrainerState(global_step=8, epoch=2.0)
        >>> callback.on_epoch_end(None, state, transformers.TrainerControl(), model=model)
        >>> tracker.steps
        [8]
        """
        if self.schedule.at_epoch_end(round(state.epoch or 0)):
            self._record(state, kwargs)

    def _record(self, state: Any, kwargs: dict[str, Any]) -> None:
        optimizer = kwargs.get("optimizer")
        lr = optimizer.param_groups[0]["lr"] if optimizer is not None else None
        self.recorder.record(
            state.global_step,
            kwargs["model"],
            lr=None if lr is None else float(lr),
            epoch=float(state.epoch or 0.0),
        )

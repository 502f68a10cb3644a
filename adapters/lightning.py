"""A PyTorch Lightning callback that records the Hessian's spectrum as training goes.

``Trainer(callbacks=[adapters.LightningSpectrumCallback(tracker, data)])``
records ``slq.density(adapters.torch_hessian(module, data))`` with an
`slq.Tracker` at the start of training and every n optimiser steps or epochs,
leaving training exactly as it would be without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
from slq.adapters._callbacks import Schedule, check_tracker
from slq.adapters._torch_callbacks import TorchRecorder, scalar

from slq._validate import check_callable

__all__ = ["LightningSpectrumCallback"]


class LightningSpectrumCallback(pl.Callback):
    """Record the Hessian density of a LightningModule with an `slq.Tracker` during `fit`.

    Each record is ``slq.density(adapters.torch_hessian(module, data, loss_fn,
    **hessian_options))`` with the tracker's settings, stored at the trainer's
    ``global_step`` (optimiser steps done) with the scalars ``loss`` (the last
    training batch's), ``lr`` (the first optimiser's first group) and ``epoch``
    (epochs done, fractional: 0.5 halfway through the first).
    Training is unchanged: the model, its gradients and BatchNorm statistics are
    never modified, and the random number generators (Python, numpy, torch,
    CUDA) and train/eval flags are restored after each record. A step the
    tracker already holds is skipped, so a resumed run appends only new steps.

    Under a data-parallel strategy (DDP), `data` is this rank's shard of the
    evaluation subset: every rank takes part in the products (the Hessian is
    over all shards) and rank 0 writes.

    Parameters
    ----------
    tracker : slq.Tracker
        Where the densities go, and with which settings (``num_steps``, ...).
    data
        The fixed evaluation subset: one ``(inputs, targets)`` batch or a few
        (a list, a small DataLoader), as `adapters.torch_hessian` takes it.
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)``, the batch mean; default as in
        `adapters.torch_hessian` (cross-entropy). To reuse the module's own
        loss, give ``batch_loss=lambda module, batch: (module.loss(batch),
        batch_size)`` with a method the module's ``training_step`` also calls
        (not ``training_step`` itself: it logs).
    every_n_steps, every_n_epochs : int, optional
        Record after every n optimiser steps, or at the end of every n epochs
        (one of them); neither: at each step the tracker's ``every`` accepts.
    **hessian_options
        Passed to `adapters.torch_hessian` (``batchnorm``, ``params``,
        ``batch_loss``, ...).

    Examples
    --------
    >>> import tempfile, torch
    >>> import lightning.pytorch as pl
    >>> import slq
    >>> from slq import adapters
    >>> class Classifier(pl.LightningModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                                        torch.nn.Linear(8, 3))
    ...     def forward(self, x):
    ...         return self.net(x)
    ...     def training_step(self, batch, batch_idx):
    ...         x, y = batch
    ...         return torch.nn.functional.cross_entropy(self(x), y)
    ...     def configure_optimizers(self):
    ...         return torch.optim.SGD(self.parameters(), lr=0.1)
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=10, num_probes=2)
    >>> callback = adapters.LightningSpectrumCallback(tracker, (x[:32], y[:32]), every_n_steps=2)
    >>> trainer = pl.Trainer(max_steps=4, callbacks=[callback], logger=False,
    ...                      enable_checkpointing=False, enable_progress_bar=False,
    ...                      enable_model_summary=False)
    >>> trainer.fit(Classifier(), loader)
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
        super().__init__()
        self.schedule = Schedule(every_n_steps, every_n_epochs)
        check_tracker(tracker, self.schedule)
        check_callable("loss_fn", loss_fn)
        self.recorder = TorchRecorder(tracker, data, loss_fn, hessian_options)
        self._loss: float | None = None

    @property
    def tracker(self) -> Any:
        """The `slq.Tracker` the densities go to."""
        return self.recorder.tracker

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record the weights training starts from (Lightning hook).

        Examples
        --------
        >>> import tempfile, torch
        >>> import lightning.pytorch as pl
        >>> import slq
        >>> from slq import adapters
        >>> module = torch.nn.Linear(3, 2)  # the LightningModule being trained
        >>> data = (torch.randn(8, 3), torch.tensor([0, 1] * 4))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.LightningSpectrumCallback(tracker, data, every_n_epochs=1)
        >>> callback.on_train_start(pl.Trainer(logger=False), module)
        >>> tracker.steps
        [0]
        """
        self._loss = None
        self._record(trainer, pl_module, trainer.current_epoch)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Keep the batch's loss; record if the steps done are a recording point (Lightning hook).

        Examples
        --------
        >>> import tempfile, torch
        >>> import lightning.pytorch as pl
        >>> import slq
        >>> from slq import adapters
        >>> module = torch.nn.Linear(3, 2)  # the LightningModule being trained
        >>> data = (torch.randn(8, 3), torch.tensor([0, 1] * 4))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.LightningSpectrumCallback(tracker, data, every_n_steps=5)
        >>> loss = torch.tensor(0.5)  # what training_step returned
        >>> callback.on_train_batch_end(pl.Trainer(logger=False), module, loss, data, 0)
        >>> tracker.steps, slq.load_track(tracker.path).scalar("loss").tolist()
        ([0], [0.5])
        """
        self._loss = scalar(outputs)
        if self.schedule.at_step(trainer.global_step):
            batches = trainer.num_training_batches
            done = (batch_idx + 1) / batches if 0 < batches < float("inf") else math.nan
            self._record(trainer, pl_module, trainer.current_epoch + done)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record if the epochs done are a recording point (Lightning hook).

        Examples
        --------
        >>> import tempfile, torch
        >>> import lightning.pytorch as pl
        >>> import slq
        >>> from slq import adapters
        >>> module = torch.nn.Linear(3, 2)  # the LightningModule being trained
        >>> data = (torch.randn(8, 3), torch.tensor([0, 1] * 4))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.LightningSpectrumCallback(tracker, data, every_n_epochs=1)
        >>> callback.on_train_epoch_end(pl.Trainer(logger=False), module)
        >>> tracker.steps
        [0]
        """
        if self.schedule.at_epoch_end(trainer.current_epoch + 1):
            self._record(trainer, pl_module, trainer.current_epoch + 1)

    def _record(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: float) -> None:
        optimizers = trainer.optimizers
        lr = optimizers[0].param_groups[0]["lr"] if optimizers else None
        self.recorder.record(
            trainer.global_step,
            pl_module,
            loss=self._loss,
            lr=None if lr is None else float(lr),
            epoch=None if math.isnan(epoch) else float(epoch),
        )

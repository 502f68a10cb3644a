"""A Keras 3 callback that records the Hessian's spectrum as training goes.

``model.fit(..., callbacks=[adapters.KerasSpectrumCallback(tracker, data)])``
records ``slq.density(adapters.tf_hessian(model, data, loss_fn))`` with an
`slq.Tracker` at the start of training and every n optimiser steps or epochs,
leaving training exactly as it would be without it. Keras runs on the
TensorFlow backend here, the backend of `adapters.tf_hessian`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from slq.adapters._callbacks import Schedule, check_tracker, host_random_untouched
from slq.adapters.tensorflow import tf_hessian

from slq._validate import check_callable

__all__ = ["KerasSpectrumCallback"]


class KerasSpectrumCallback(keras.callbacks.Callback):
    """Record the Hessian density of a Keras model with an `slq.Tracker` during `fit`.

    Each record is ``slq.density(adapters.tf_hessian(model, data, loss_fn,
    **hessian_options))`` with the tracker's settings, stored at the optimiser's
    ``iterations`` (steps done, which continue across `fit` calls) with the
    scalars ``loss`` (as Keras logs it: the epoch's running mean), ``lr`` and
    ``epoch`` (epochs done, fractional: 0.5 halfway through the first; not
    known at training's start). Training is unchanged: `adapters.tf_hessian`
    evaluates the model statelessly (no variable is assigned, BatchNorm
    statistics and seeds included), and Python's and numpy's random number
    generators are restored after each record. A step the tracker already
    holds is skipped, so a resumed run appends only new steps. Single-process:
    `tf_hessian` has no data-parallel mode.

    Parameters
    ----------
    tracker : slq.Tracker
        Where the densities go, and with which settings (``num_steps``, ...).
    data
        The fixed evaluation subset: one ``(x, y)`` batch or a few (a list, a
        small ``tf.data.Dataset``), as `adapters.tf_hessian` takes it.
    loss_fn : callable, optional
        ``loss_fn(y_true, y_pred)``, the batch mean; default the loss the model
        was compiled with (a ``keras.losses.Loss``, or a name or function of
        per-example losses, averaged over the batch as Keras does).
    every_n_steps, every_n_epochs : int, optional
        Record after every n optimiser steps, or at the end of every n epochs
        (one of them); neither: at each step the tracker's ``every`` accepts.
        With ``steps_per_execution`` > 1 Keras calls back every that many
        steps: make `every_n_steps` a multiple of it.
    **hessian_options
        Passed to `adapters.tf_hessian` (``variables``, ``training``, ...).

    Examples
    --------
    >>> import tempfile
    >>> import keras, numpy as np
    >>> import slq
    >>> from slq import adapters
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential(
    ...     [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)])
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x, y = np.random.randn(64, 4).astype("float32"), np.random.randint(0, 3, 64)
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=10, num_probes=2)
    >>> callback = adapters.KerasSpectrumCallback(tracker, (x[:32], y[:32]), every_n_epochs=1)
    >>> _ = model.fit(x, y, batch_size=16, epochs=1, callbacks=[callback], verbose=0)
    >>> slq.load_track(tracker.path).steps.tolist()
    [0, 4]
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
        self.tracker = check_tracker(tracker, self.schedule)
        self.data, self.loss_fn = data, check_callable("loss_fn", loss_fn)
        self.hessian_options = hessian_options
        self._loss: float | None = None
        self._epoch = 0  # the epoch in progress, as Keras counts (from `initial_epoch`)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Record the weights training starts from (Keras hook).

        Examples
        --------
        >>> import tempfile
        >>> import keras, numpy as np
        >>> import slq
        >>> from slq import adapters
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> model.compile("sgd", "mse")
        >>> data = (np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.KerasSpectrumCallback(tracker, data, every_n_steps=5)
        >>> callback.set_model(model)
        >>> callback.on_train_begin()
        >>> tracker.steps
        [0]
        """
        self._loss = None
        self._record(None)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Keep the logged loss; record if the steps done are a recording point (Keras hook).

        Examples
        --------
        >>> import tempfile
        >>> import keras, numpy as np
        >>> import slq
        >>> from slq import adapters
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> model.compile("sgd", "mse")
        >>> data = (np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.KerasSpectrumCallback(tracker, data, every_n_steps=5)
        >>> callback.set_model(model)
        >>> callback.on_train_batch_end(0, {"loss": 0.5})  # no optimiser step yet: step 0
        >>> tracker.steps, slq.load_track(tracker.path).scalar("loss").tolist()
        ([0], [0.5])
        """
        if logs and "loss" in logs:
            self._loss = float(logs["loss"])
        if self.schedule.at_step(self._steps_done()):
            steps = (self.params or {}).get("steps")
            self._record(self._epoch + (batch + 1) / steps if steps else None)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Keep the epoch's index, for the ``epoch`` of records within it (Keras hook).

        Examples
        --------
        >>> import tempfile
        >>> import slq
        >>> from slq import adapters
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.KerasSpectrumCallback(tracker, None, every_n_steps=5)
        >>> callback.on_epoch_begin(3)
        >>> callback.tracker.steps  # nothing is recorded at an epoch's start
        []
        """
        self._epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Record if the epochs done are a recording point (Keras hook).

        Examples
        --------
        >>> import tempfile
        >>> import keras, numpy as np
        >>> import slq
        >>> from slq import adapters
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> model.compile("sgd", "mse")
        >>> data = (np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"))
        >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/track", num_steps=8, num_probes=2)
        >>> callback = adapters.KerasSpectrumCallback(tracker, data, every_n_epochs=2)
        >>> callback.set_model(model)
        >>> callback.on_epoch_end(0), tracker.steps  # one epoch done
        (None, [])
        >>> callback.on_epoch_end(1), tracker.steps
        (None, [0])
        """
        if self.schedule.at_epoch_end(epoch + 1):
            self._record(epoch + 1)

    def _steps_done(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _record(self, epochs_done: float | None) -> None:
        step = self._steps_done()
        if not self.tracker.due(step):
            return
        scalars = {"loss": self._loss, "lr": self._learning_rate(), "epoch": epochs_done}
        given = {name: value for name, value in scalars.items() if value is not None}
        with host_random_untouched():
            operator = tf_hessian(self.model, self.data, self._loss_fn(), **self.hessian_options)
            self.tracker.record(step, operator, **given)

    def _learning_rate(self) -> float | None:
        rate = getattr(self.model.optimizer, "learning_rate", None)  # a Variable, or a float
        return None if rate is None else float(getattr(rate, "numpy", lambda: rate)())

    def _loss_fn(self) -> Callable[..., Any]:
        if self.loss_fn is not None:
            return self.loss_fn
        compiled = getattr(self.model, "loss", None)
        if isinstance(compiled, keras.losses.Loss):
            return compiled
        function = keras.losses.get(compiled) if isinstance(compiled, str) else compiled
        if callable(function):
            # Keras reduces a loss function's per-example values by their mean, as here.
            return lambda y_true, y_pred: keras.ops.mean(function(y_true, y_pred))
        msg = (
            "KerasSpectrumCallback needs loss_fn(y_true, y_pred): the model was compiled "
            f"with loss={compiled!r}, not one loss function"
        )
        raise TypeError(msg)

"""`adapters.KerasSpectrumCallback`: records at the right steps, equal to a direct density,
training unchanged, resumable."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Backend, assert_close, need

need(Backend.TENSORFLOW)

import keras  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

SETTINGS = {"num_steps": 10, "num_probes": 2, "seed": 0}
RNG = np.random.default_rng(1)
X = RNG.standard_normal((64, 4)).astype("float32")
Y = RNG.integers(0, 3, 64)
EVAL = (X[:24], Y[:24])
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build() -> keras.Model:
    """83 parameters; BatchNormalization (moving statistics) and Dropout (seeded draws)."""
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("tanh"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3),
        ]
    )


class Snapshots(keras.callbacks.Callback):
    """The model's weights after each optimiser step (step 0: before training)."""

    def __init__(self) -> None:
        super().__init__()
        self.weights_at: dict[int, list[np.ndarray]] = {}

    def _keep(self) -> None:
        self.weights_at[int(self.model.optimizer.iterations.numpy())] = self.model.get_weights()

    def on_train_begin(self, logs: Any = None) -> None:
        self._keep()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._keep()


class KilledError(Exception):
    """The training process dies here."""


class Crash(keras.callbacks.Callback):
    def __init__(self, at_step: int) -> None:
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if int(self.model.optimizer.iterations.numpy()) == self.at_step:
            raise KilledError


def train(callbacks: list[keras.callbacks.Callback], epochs: int = 2) -> keras.Model:
    """Train from fixed seeds, 4 batches an epoch; return the model."""
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), LOSS)
    model.fit(X, Y, batch_size=16, epochs=epochs, shuffle=True, callbacks=callbacks, verbose=0)
    return model


def host_rng() -> tuple[Any, ...]:
    numpy = np.random.get_state()  # noqa: NPY002
    return random.getstate(), numpy[1].tolist(), numpy[2]


def test_records_every_n_steps_equal_direct_densities_and_leave_training_unchanged(
    tmp_path: Path,
) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    snapshots = Snapshots()
    # Double backward: each record builds and traces an operator (about 1 s), this the fastest.
    spectrum = adapters.KerasSpectrumCallback(
        tracker, EVAL, LOSS, every_n_steps=3, hvp="double-backward"
    )
    model = train([snapshots, spectrum], epochs=1)
    after = host_rng()
    alone = train([], epochs=1)
    alone_after = host_rng()

    track = slq.load_track(tracker.path)
    assert track.steps.tolist() == [0, 3]
    direct = build()
    direct.set_weights(snapshots.weights_at[3])
    dos = slq.density(adapters.tf_hessian(direct, EVAL, LOSS, hvp="double-backward"), **SETTINGS)
    assert_close(track[-1].density.nodes, dos.nodes, dtype=np.float32)
    assert_close(track[-1].density.weights, dos.weights, dtype=np.float32)
    assert np.isnan(track.scalar("loss")[0]) and np.isfinite(track.scalar("loss")[1:]).all()
    assert_close(track.scalar("lr"), np.full(2, 0.1), dtype=np.float32)
    assert track.scalar("epoch")[1] == 0.75  # 3 of 4 batches

    # Bit-identical: weights, BatchNorm statistics, optimiser state, flags, host RNG.
    for ours, theirs in zip(model.get_weights(), alone.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    for ours, theirs in zip(model.optimizer.variables, alone.optimizer.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert model.trainable and [w.trainable for w in model.weights] == [
        w.trainable for w in alone.weights
    ]
    assert after[0] == alone_after[0]
    assert all(np.array_equal(a, b) for a, b in zip(after[1:], alone_after[1:], strict=True))


def test_every_n_epochs_with_the_compiled_loss_resumes_after_a_kill_without_duplicates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "track"
    options = {"every_n_epochs": 1, "hvp": "double-backward"}  # no loss_fn: the compiled one
    first = adapters.KerasSpectrumCallback(slq.Tracker(path, **SETTINGS), EVAL, **options)
    with pytest.raises(KilledError):
        train([first, Crash(at_step=5)])
    assert slq.load_track(path).steps.tolist() == [0, 4]
    written = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}

    again = adapters.KerasSpectrumCallback(slq.Tracker(path, **SETTINGS), EVAL, **options)
    train([again])
    track = slq.load_track(path)
    assert track.steps.tolist() == [0, 4, 8]
    assert track.scalar("epoch").tolist()[1:] == [1, 2]  # unknown at the start: initial_epoch
    assert all(path.joinpath(name).stat().st_mtime_ns == t for name, t in written.items())


def test_bad_arguments_are_refused_by_name(tmp_path: Path) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    with pytest.raises(TypeError, match=r"tracker must be an slq\.Tracker, got PosixPath"):
        adapters.KerasSpectrumCallback(tmp_path, EVAL)
    with pytest.raises(TypeError, match="every_n_steps must be an integer >= 1, got '2'"):
        adapters.KerasSpectrumCallback(tracker, EVAL, every_n_steps="2")
    with pytest.raises(TypeError, match="loss_fn must be callable or None, got str"):
        adapters.KerasSpectrumCallback(tracker, EVAL, "mse")
    model = build()
    model.compile("sgd", {"dense": "mse"})
    callback = adapters.KerasSpectrumCallback(tracker, EVAL)
    callback.set_model(model)
    with pytest.raises(TypeError, match=r"needs loss_fn\(y_true, y_pred\)"):
        callback.on_train_begin()

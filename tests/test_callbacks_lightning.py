"""`adapters.LightningSpectrumCallback`: records at the right steps, equal to a direct density,
training unchanged, resumable."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Backend, assert_close, need

torch = need(Backend.TORCH)

import lightning.pytorch as pl  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

SETTINGS = {"num_steps": 10, "num_probes": 2, "seed": 0}
X = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))
EVAL = (X[:24], Y[:24])


class Net(pl.LightningModule):
    """83 parameters; BatchNorm (running statistics) and Dropout (draws from the RNG)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8),
            torch.nn.BatchNorm1d(8),
            torch.nn.Tanh(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(8, 3),
        )

    def forward(self, x: Any) -> Any:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


class Snapshots(pl.Callback):
    """The module's state after each optimiser step (step 0: before training)."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, Any]] = {}

    def _keep(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.states[trainer.global_step] = {k: v.clone() for k, v in module.state_dict().items()}

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._keep(trainer, module)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *_: Any) -> None:
        self._keep(trainer, module)


class KilledError(Exception):
    """The training process dies here (Lightning re-raises it after its teardown)."""


class Crash(pl.Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.global_step == self.at_step:
            raise KilledError


def train(callbacks: list[pl.Callback], **limits: Any) -> tuple[Net, pl.Trainer]:
    """Train from fixed seeds; return the module and the trainer."""
    pl.seed_everything(0, verbose=False)
    module = Net()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=16, shuffle=True
    )
    trainer = pl.Trainer(
        callbacks=callbacks,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **limits,
    )
    trainer.fit(module, loader)
    return module, trainer


def direct_density(state: dict[str, Any]) -> slq.SpectralDensity:
    module = Net()
    module.load_state_dict(state)
    module.train()  # as during training: BatchNorm by the batch's statistics
    return slq.density(adapters.torch_hessian(module, EVAL), **SETTINGS)


def host_rng() -> tuple[Any, ...]:
    numpy = np.random.get_state()  # noqa: NPY002
    return random.getstate(), numpy[1].tolist(), numpy[2], torch.get_rng_state()


def test_records_every_n_steps_equal_direct_densities_and_leave_training_unchanged(
    tmp_path: Path,
) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    snapshots = Snapshots()
    spectrum = adapters.LightningSpectrumCallback(tracker, EVAL, every_n_steps=2)
    module, trainer = train([snapshots, spectrum], max_steps=6)
    after = host_rng()
    alone, alone_trainer = train([Snapshots()], max_steps=6)
    alone_after = host_rng()

    track = slq.load_track(tracker.path)
    assert track.steps.tolist() == [0, 2, 4, 6]
    for record in track:
        direct = direct_density(snapshots.states[record.step])
        assert_close(record.density.nodes, direct.nodes)
        assert_close(record.density.weights, direct.weights)
    assert track.scalar("lr").tolist() == [0.1] * 4
    assert np.isnan(track.scalar("loss")[0]) and np.isfinite(track.scalar("loss")[1:]).all()
    assert track.scalar("epoch").tolist() == [0, 0.5, 1, 1.5]  # 4 batches an epoch

    # Bit-identical: weights, BatchNorm statistics, gradients, optimiser state, RNG.
    theirs = alone.state_dict()
    for name, value in module.state_dict().items():
        assert torch.equal(value, theirs[name]), name
    for p, q in zip(module.parameters(), alone.parameters(), strict=True):
        assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad)
    momenta = [trainer.optimizers[0].state[p]["momentum_buffer"] for p in module.parameters()]
    alone_momenta = alone_trainer.optimizers[0].state
    for m, p in zip(momenta, alone.parameters(), strict=True):
        assert torch.equal(m, alone_momenta[p]["momentum_buffer"])
    assert module.training == alone.training
    assert after[0] == alone_after[0]
    assert all(np.array_equal(a, b) for a, b in zip(after[1:], alone_after[1:], strict=True))


def test_records_every_n_epochs_at_each_epochs_last_step(tmp_path: Path) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    train([adapters.LightningSpectrumCallback(tracker, EVAL, every_n_epochs=1)], max_epochs=2)
    track = slq.load_track(tracker.path)
    assert track.steps.tolist() == [0, 4, 8]
    assert track.scalar("epoch").tolist() == [0, 1, 2]


def test_a_rerun_after_a_kill_appends_the_missing_steps_without_duplicates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "track"
    first = adapters.LightningSpectrumCallback(slq.Tracker(path, **SETTINGS), EVAL, every_n_steps=2)
    with pytest.raises(KilledError):
        train([first, Crash(at_step=3)], max_steps=6)
    assert slq.load_track(path).steps.tolist() == [0, 2]
    written = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}

    again = adapters.LightningSpectrumCallback(slq.Tracker(path, **SETTINGS), EVAL, every_n_steps=2)
    train([again], max_steps=6)
    assert slq.load_track(path).steps.tolist() == [0, 2, 4, 6]
    assert all(path.joinpath(name).stat().st_mtime_ns == t for name, t in written.items())


def test_bad_arguments_are_refused_by_name(tmp_path: Path) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    with pytest.raises(TypeError, match=r"tracker must be an slq\.Tracker, got str"):
        adapters.LightningSpectrumCallback("track", EVAL)
    with pytest.raises(ValueError, match="every_n_steps must be >= 1, got 0"):
        adapters.LightningSpectrumCallback(tracker, EVAL, every_n_steps=0)
    with pytest.raises(TypeError, match="every_n_epochs must be an integer >= 1"):
        adapters.LightningSpectrumCallback(tracker, EVAL, every_n_epochs=1.5)
    with pytest.raises(ValueError, match="give every_n_steps or every_n_epochs, not both"):
        adapters.LightningSpectrumCallback(tracker, EVAL, every_n_steps=1, every_n_epochs=1)
    with pytest.raises(TypeError, match="loss_fn must be callable or None, got str"):
        adapters.LightningSpectrumCallback(tracker, EVAL, "cross_entropy")
    with pytest.raises(TypeError, match="distributed is set by the callback"):
        adapters.LightningSpectrumCallback(tracker, EVAL, distributed=True)
    every_5 = slq.Tracker(tmp_path / "every5", every=5, **SETTINGS)
    with pytest.raises(ValueError, match="give the schedule once"):
        adapters.LightningSpectrumCallback(every_5, EVAL, every_n_steps=2)

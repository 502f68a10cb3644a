"""`adapters.HuggingFaceSpectrumCallback`: records at the right steps, equal to a direct density,
training unchanged, resumable."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Backend, assert_close, need

torch = need(Backend.TORCH)

import transformers  # noqa: E402
from transformers.modeling_outputs import SequenceClassifierOutput  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

SETTINGS = {"num_steps": 10, "num_probes": 2, "seed": 0}
X = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))
EVAL = {"x": X[:24], "labels": Y[:24]}  # a collated batch: the model's own loss


class Classifier(torch.nn.Module):
    """83 parameters, returning a `ModelOutput` with its loss; Dropout draws from the RNG."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8),
            torch.nn.BatchNorm1d(8),
            torch.nn.Tanh(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(8, 3),
        )

    def forward(self, x: Any, labels: Any = None) -> SequenceClassifierOutput:
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class Snapshots(transformers.TrainerCallback):
    """The model's state after each optimiser step (step 0: before training)."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, Any]] = {}

    def _keep(self, state: Any, model: Any) -> None:
        self.states[state.global_step] = {k: v.clone() for k, v in model.state_dict().items()}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._keep(state, kwargs["model"])

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._keep(state, kwargs["model"])


class KilledError(Exception):
    """The training process dies here."""


class Crash(transformers.TrainerCallback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.at_step:
            raise KilledError


def train(
    tmp_path: Path, callbacks: list[Any], **limits: Any
) -> tuple[Classifier, transformers.Trainer]:
    """Train from fixed seeds; return the model and the trainer."""
    transformers.set_seed(0)
    model = Classifier()
    args = transformers.TrainingArguments(
        str(tmp_path / "trainer"),
        per_device_train_batch_size=16,
        learning_rate=0.1,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
        **limits,
    )
    dataset = [{"x": x, "labels": y} for x, y in zip(X, Y, strict=True)]
    trainer = transformers.Trainer(model, args, train_dataset=dataset, callbacks=callbacks)
    trainer.remove_callback(transformers.PrinterCallback)
    trainer.train()
    return model, trainer


def host_rng() -> tuple[Any, ...]:
    numpy = np.random.get_state()  # noqa: NPY002
    return random.getstate(), numpy[1].tolist(), numpy[2], torch.get_rng_state()


def test_records_every_n_steps_equal_direct_densities_and_leave_training_unchanged(
    tmp_path: Path,
) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    snapshots = Snapshots()
    spectrum = adapters.HuggingFaceSpectrumCallback(tracker, EVAL, every_n_steps=2)
    model, trainer = train(tmp_path, [snapshots, spectrum], max_steps=6)
    after = host_rng()
    alone, alone_trainer = train(tmp_path, [Snapshots()], max_steps=6)
    alone_after = host_rng()

    track = slq.load_track(tracker.path)
    assert track.steps.tolist() == [0, 2, 4, 6]
    for record in track:
        direct = Classifier()
        direct.load_state_dict(snapshots.states[record.step])
        dos = slq.density(adapters.torch_hessian(direct, EVAL), **SETTINGS)
        assert_close(record.density.nodes, dos.nodes)
        assert_close(record.density.weights, dos.weights)
    assert track.scalar("epoch").tolist() == [0, 0.5, 1, 1.5]  # 4 batches an epoch
    assert np.isfinite(track.scalar("lr")).all()

    # Bit-identical: weights, BatchNorm statistics, gradients, optimiser state, RNG.
    theirs = alone.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, theirs[name]), name
    for p, q in zip(model.parameters(), alone.parameters(), strict=True):
        assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad)
    ours, other = trainer.optimizer.state_dict()["state"], alone_trainer.optimizer.state_dict()
    for index, state in ours.items():
        for key, value in state.items():
            assert torch.equal(value, other["state"][index][key]), key
    assert model.training == alone.training
    assert after[0] == alone_after[0]
    assert all(np.array_equal(a, b) for a, b in zip(after[1:], alone_after[1:], strict=True))


def test_records_every_n_epochs_at_each_epochs_last_step(tmp_path: Path) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    spectrum = adapters.HuggingFaceSpectrumCallback(tracker, EVAL, every_n_epochs=1)
    train(tmp_path, [spectrum], num_train_epochs=2)
    track = slq.load_track(tracker.path)
    assert track.steps.tolist() == [0, 4, 8]
    assert track.scalar("epoch").tolist() == [0, 1, 2]


def test_a_rerun_after_a_kill_appends_the_missing_steps_without_duplicates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "track"
    first = adapters.HuggingFaceSpectrumCallback(
        slq.Tracker(path, **SETTINGS), EVAL, every_n_steps=2
    )
    with pytest.raises(KilledError):
        train(tmp_path, [first, Crash(at_step=3)], max_steps=6)
    assert slq.load_track(path).steps.tolist() == [0, 2]
    written = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}

    again = adapters.HuggingFaceSpectrumCallback(
        slq.Tracker(path, **SETTINGS), EVAL, every_n_steps=2
    )
    train(tmp_path, [again], max_steps=6)
    assert slq.load_track(path).steps.tolist() == [0, 2, 4, 6]
    assert all(path.joinpath(name).stat().st_mtime_ns == t for name, t in written.items())


def test_bad_arguments_are_refused_by_name(tmp_path: Path) -> None:
    tracker = slq.Tracker(tmp_path / "track", **SETTINGS)
    with pytest.raises(TypeError, match=r"tracker must be an slq\.Tracker, got NoneType"):
        adapters.HuggingFaceSpectrumCallback(None, EVAL)
    with pytest.raises(ValueError, match="every_n_epochs must be >= 1, got -1"):
        adapters.HuggingFaceSpectrumCallback(tracker, EVAL, every_n_epochs=-1)
    with pytest.raises(ValueError, match="give every_n_steps or every_n_epochs, not both"):
        adapters.HuggingFaceSpectrumCallback(tracker, EVAL, every_n_steps=2, every_n_epochs=1)
    with pytest.raises(TypeError, match="loss_fn must be callable or None, got int"):
        adapters.HuggingFaceSpectrumCallback(tracker, EVAL, 3)

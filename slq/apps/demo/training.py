"""Training: one network from one seed by SGD, its Hessian density tracked on a schedule.

Each run records into its own `slq.Tracker` (a directory of the outputs'
``tracks/``); its measurements are read back with `slq.load_track`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slq.apps.demo.config import NETWORKS, Config
from slq.apps.demo.data import Data
from slq.spectral_density import SpectralDensity
from slq.track import Track, load_track
from slq.tracking import Tracker

__all__ = [
    "Point",
    "Run",
    "hessian_density",
    "hessian_operator",
    "measured_steps",
    "one_thread",
    "train",
]

logger = logging.getLogger("slq")


@dataclass
class Point:
    """One measurement: where in training, the loss the Hessian is of, and its density."""

    epoch: float
    step: int
    learning_rate: float
    loss: float
    accuracy: float
    density: SpectralDensity


@dataclass
class Run:
    """One network trained from one seed: its measurements in order."""

    name: str
    seed: int
    num_params: int
    points: list[Point] = field(default_factory=list)
    eval_density: SpectralDensity | None = None  # BN only: population statistics, at the end


def measured_steps(config: Config) -> list[int]:
    """Return the optimiser steps after which the density is measured (0 is initialisation)."""
    per_epoch = math.ceil(config.train_size / config.batch_size)
    early = [s for s in config.early_steps if s < per_epoch]
    return [0, *early, *(e * per_epoch for e in range(1, config.epochs + 1))]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, restoring the caller's setting afterwards.

    The tensors are batches of 64 pixels: too small for threads to pay, and on
    busy cores oversubscribed threads made the products ten times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def hessian_operator(model: Any, data: Data, batchnorm: str = "train") -> Any:
    """Return the training loss' Hessian over the fixed batches, as an operator."""
    from slq import adapters  # type: ignore[attr-defined]

    return adapters.torch_hessian(model, data.batches, batchnorm=batchnorm, hvp="double-backward")


def hessian_density(
    model: Any, data: Data, config: Config, seed: int, batchnorm: str = "train"
) -> SpectralDensity:
    """Return `slq.density` of the training loss' Hessian, with the probes a run's tracker uses."""
    from slq._density import density

    op = hessian_operator(model, data, batchnorm)
    return density(op, num_steps=config.num_steps, num_probes=config.num_probes, seed=seed)


def _loss(model: Any, data: Data) -> tuple[float, float]:
    """Return the training loss the Hessian is of (train-mode BN, fixed batches) and accuracy."""
    import copy

    import torch

    with torch.no_grad():
        copied = copy.deepcopy(model).train()  # its BN running statistics may change
        total, correct = 0.0, 0
        for x, y in data.batches:
            logits = copied(x)
            total += float(torch.nn.functional.cross_entropy(logits, y)) * x.shape[0]
            correct += int((logits.argmax(dim=1) == y).sum())
    size = data.x.shape[0]
    return total / size, correct / size


def train(
    name: str, model: Any, data: Data, config: Config, seed: int, bar: Any, track: Path
) -> Run:
    """Train one network for `config.epochs` epochs, tracking it after `measured_steps` to `track`.

    The same probes (`seed`) at every point: changes over training are not probe noise.
    """
    import torch

    run = Run(name, seed, sum(p.numel() for p in model.parameters()))
    tracker = Tracker(track, num_steps=config.num_steps, num_probes=config.num_probes, seed=seed)
    steps = set(measured_steps(config))
    per_epoch = len(data.batches)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    shuffle = torch.Generator().manual_seed(seed)
    step = 0
    _measure(tracker, model, data, 0, 0.0, config.learning_rate)
    for epoch in range(config.epochs):
        if epoch == config.drop_epoch:
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate / 10.0
        rate = optimizer.param_groups[0]["lr"]
        for indices in torch.randperm(data.x.shape[0], generator=shuffle).split(config.batch_size):
            model.train()
            loss = torch.nn.functional.cross_entropy(model(data.x[indices]), data.y[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step in steps:
                _measure(tracker, model, data, step, step / per_epoch, rate)
    run.points = _points(load_track(tracker.path))
    if name == "bn":
        model.eval()  # a forward pass in eval mode leaves the running statistics as they are
        run.eval_density = hessian_density(model, data, config, seed, batchnorm="eval")
    bar.update()
    bar.set_postfix_str(f"{NETWORKS[name]}, seed {seed}")
    point = run.points[-1].density
    logger.info(
        "demo: trained %s from seed %d (%d parameters): λ in [%.3g, %.3g] at the end",
        NETWORKS[name],
        seed,
        run.num_params,
        point.lambda_min,
        point.lambda_max,
    )
    return run


def _measure(
    tracker: Tracker, model: Any, data: Data, step: int, epoch: float, rate: float
) -> None:
    loss, accuracy = _loss(model, data)
    scalars = {"epoch": epoch, "learning_rate": rate, "loss": loss, "accuracy": accuracy}
    tracker.record(step, hessian_operator(model, data), **scalars)


def _points(track: Track) -> list[Point]:
    """Return the measurements of a run's track, in step order."""
    return [
        Point(
            r.scalars["epoch"],
            r.step,
            r.scalars["learning_rate"],
            r.scalars["loss"],
            r.scalars["accuracy"],
            r.density,
        )
        for r in track
    ]

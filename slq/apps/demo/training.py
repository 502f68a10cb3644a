"""Training: both networks by SGD, measured on a fixed schedule of optimiser steps."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from slq.apps.demo.config import NETWORKS, Config
from slq.apps.demo.data import Data, load_digits
from slq.apps.demo.measuring import Study, measure_into
from slq.apps.demo.networks import networks

__all__ = ["num_stages", "run_studies", "schedule", "sgd_step", "train"]


def schedule(config: Config, steps_per_epoch: int) -> tuple[list[int], dict[int, str]]:
    """Return the optimiser steps after which to measure, and the named checkpoints among them."""
    inside = {max(1, round(f * steps_per_epoch)) for f in config.track_fractions}
    epochs = {e * steps_per_epoch for e in range(1, config.epochs + 1)}
    steps = sorted({0} | inside | epochs)
    return steps, {0: "init", steps_per_epoch: "epoch_1", config.epochs * steps_per_epoch: "end"}


def num_stages(config: Config) -> int:
    """Return the progress bar's stages of one network: its epochs and measurements."""
    steps_per_epoch = math.ceil(config.num_train / config.batch_size)
    return config.epochs + len(schedule(config, steps_per_epoch)[0])


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, restoring the caller's setting afterwards.

    The tensors are batches of 8 × 8 images: too small for threads to pay, and
    on busy cores oversubscribed threads made the products ten times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_studies(config: Config, seed: int, bar: Any) -> dict[str, Study]:
    """Train and measure both networks, with the caller's torch RNG state forked away."""
    import torch

    data = load_digits(config)
    with torch.random.fork_rng(devices=[]), _one_thread():
        models = networks(config, seed)
        return {name: train(name, model, data, config, seed, bar) for name, model in models.items()}


def train(name: str, model: Any, data: Data, config: Config, seed: int, bar: Any) -> Study:
    """Train one network for `config.epochs` epochs, measuring on the schedule."""
    import torch

    num_params = sum(p.numel() for p in model.parameters())
    study = Study(name, num_params)
    steps, named = schedule(config, len(data.batches))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    shuffle = torch.Generator().manual_seed(seed)
    step = 0
    measure_into(study, model, data, config, seed, step, named, bar)
    for epoch in range(config.epochs):
        order = torch.randperm(data.train_x.shape[0], generator=shuffle)
        for indices in order.split(config.batch_size):
            sgd_step(model, optimizer, data.train_x[indices], data.train_y[indices])
            step += 1
            if step in steps:
                measure_into(study, model, data, config, seed, step, named, bar)
        bar.update()
        bar.set_postfix_str(f"{NETWORKS[name]}: epoch {epoch + 1}")
    return study


def sgd_step(model: Any, optimizer: Any, x: Any, y: Any) -> None:
    """Take one SGD step on the batch (x, y), the model in train mode."""
    import torch

    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

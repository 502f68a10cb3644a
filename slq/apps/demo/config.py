"""The demo's two sizes: data, network, training schedule, seeds and SLQ budgets."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "NETWORKS", "QUICK", "Config"]

NETWORKS = {"no_bn": "without BN", "bn": "with BN"}
"""The two networks, by key, with the label the figures and the report give them."""


@dataclass(frozen=True)
class Config:
    """One size of the study (see docs/batchnorm.md for why these numbers)."""

    train_size: int  # digits the networks are trained on (and the Hessian is of)
    width: int  # hidden units of both hidden layers
    epochs: int
    drop_epoch: int  # the learning rate is divided by 10 after this epoch
    batch_size: int  # also the BatchNorm batches of the Hessian
    learning_rate: float
    seeds: int  # independent trainings per network
    num_steps: int  # Lanczos steps of every density
    num_probes: int
    exact_steps: int  # Lanczos steps of the check against the exact spectrum
    early_steps: tuple[int, ...]  # optimiser steps measured inside epoch 1


FULL = Config(1024, 24, 12, 8, 64, 0.05, 3, 48, 4, 90, (1, 2, 4, 8))
QUICK = Config(128, 8, 4, 2, 32, 0.05, 3, 12, 2, 30, (1, 2))

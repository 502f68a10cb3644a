"""The demo's two sizes, and the names of its networks and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECKPOINTS", "FULL", "NETWORKS", "QUICK", "TEST_SIZE", "THRESHOLD", "Config"]

NETWORKS = {"no_bn": "without BN", "bn": "with BN"}
"""The two networks, by key, with the label the figures and the report give them."""

# The second negative mass counts eigenvalues below -THRESHOLD * λ_max: the mass below 0
# itself hangs on the side of 0 a heavy Gauss node at the zero cluster falls on (see `run`).
THRESHOLD = 0.01

# load_digits holds 1797 images; a stratified 25 % test split leaves 1347 for training.
_TRAIN_SIZE = 1347
TEST_SIZE = 450

CHECKPOINTS = {"init": "initialisation", "epoch_1": "after epoch 1", "end": "end of training"}
"""The points measured with the full SLQ budget, with their labels."""


@dataclass(frozen=True)
class Config:
    """One size of the experiment: data, network, optimiser and SLQ budgets."""

    train_size: int | None  # None: the whole training split (1347 digits)
    channels: tuple[int, int]
    epochs: int
    batch_size: int  # also the BatchNorm batches of the Hessian
    learning_rate: float
    num_steps: int  # Lanczos steps of the three full densities
    num_probes: int
    track_steps: int  # and of the cheaper tracking runs in between
    track_probes: int
    track_fractions: tuple[float, ...]  # tracking points inside epoch 1 (fractions of it)

    @property
    def num_train(self) -> int:
        """The number of training digits."""
        return _TRAIN_SIZE if self.train_size is None else self.train_size


FULL = Config(None, (8, 16), 8, 128, 0.05, 48, 4, 32, 2, (0.25, 0.5))
QUICK = Config(256, (4, 8), 3, 64, 0.05, 16, 2, 8, 2, (0.5,))

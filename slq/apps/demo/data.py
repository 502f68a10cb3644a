"""The data: scikit-learn's 8 × 8 digits as 64 standardised pixels, cut into fixed batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slq.apps.demo.config import Config

__all__ = ["Data", "load_digits"]


@dataclass(frozen=True)
class Data:
    """Standardised training digits as torch tensors, and the fixed batches of the Hessian."""

    x: Any
    y: Any
    batches: list[tuple[Any, Any]]


def load_digits(config: Config) -> Data:
    """Return the first `config.train_size` digits of a fixed shuffle, standardised per pixel."""
    import numpy as np
    import torch
    from sklearn import datasets

    x, y = datasets.load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(x.shape[0])[: config.train_size]
    x, y = x[order], y[order]
    std = x.std(axis=0)
    std[std == 0.0] = 1.0  # border pixels blank in every image
    tx = torch.tensor((x - x.mean(axis=0)) / std, dtype=torch.float32)
    ty = torch.tensor(y)
    batches = list(zip(tx.split(config.batch_size), ty.split(config.batch_size), strict=True))
    return Data(tx, ty, batches)

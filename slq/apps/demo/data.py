"""The data: scikit-learn's 8 × 8 digits, split, standardised and cut into fixed batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from slq.apps.demo.config import Config

__all__ = ["Data", "load_digits"]


@dataclass(frozen=True)
class Data:
    """Standardised digits as torch tensors, and the fixed batches of the Hessian."""

    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any
    batches: list[tuple[Any, Any]]


def load_digits(config: Config) -> Data:
    """Return the digits split 75/25 (stratified, fixed), standardised pixel by pixel."""
    import torch
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    x, y = datasets.load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    if config.train_size is not None:
        x_train, y_train = x_train[: config.train_size], y_train[: config.train_size]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0.0] = 1.0  # border pixels that are blank in every training image

    def images(a: np.ndarray) -> Any:
        return torch.tensor((a - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8)

    train_x, train_y = images(x_train), torch.tensor(y_train)
    batches = list(
        zip(train_x.split(config.batch_size), train_y.split(config.batch_size), strict=True)
    )
    return Data(train_x, train_y, images(x_test), torch.tensor(y_test), batches)

"""The two networks: the same small MLP with and without BatchNorm, from the same weights."""

from __future__ import annotations

from typing import Any

__all__ = ["network", "networks"]


def network(width: int, batchnorm: bool) -> Any:
    """Return linear [BN] ReLU → linear [BN] ReLU → linear, from 64 pixels to 10 classes.

    With BN the hidden layers have no bias: BN's shift replaces it, and a bias
    in front of train-mode BN would only add exact zero eigenvalues.
    """
    from torch import nn

    layers: list[Any] = []
    for fan_in in (64, width):
        layers.append(nn.Linear(fan_in, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def networks(width: int, seed: int) -> dict[str, Any]:
    """Return both networks with the same linear weights, drawn from `seed`.

    Called inside ``torch.random.fork_rng``: seeding the global generator there
    leaves the caller's state as it was.
    """
    import torch

    torch.manual_seed(seed)
    plain = network(width, batchnorm=False)
    normalised = network(width, batchnorm=True)
    weights = [m.weight for m in plain if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        linear = [m for m in normalised if isinstance(m, torch.nn.Linear)]
        for target, source in zip(linear, weights, strict=True):
            target.weight.copy_(source)
        linear[-1].bias.copy_(plain[-1].bias)
    return {"no_bn": plain, "bn": normalised}

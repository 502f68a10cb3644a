"""The two networks: the same small CNN with and without BatchNorm, from the same weights."""

from __future__ import annotations

from typing import Any

from slq.apps.demo.config import Config

__all__ = ["network", "networks"]


def network(channels: tuple[int, int], batchnorm: bool) -> Any:
    """Return conv [BN] ReLU → conv (stride 2) [BN] ReLU → linear, for 8 × 8 images."""
    from collections import OrderedDict

    from torch import nn

    c1, c2 = channels
    layers: OrderedDict[str, Any] = OrderedDict()
    layers["conv1"] = nn.Conv2d(1, c1, 3, padding=1, bias=not batchnorm)
    if batchnorm:
        layers["bn1"] = nn.BatchNorm2d(c1)
    layers["relu1"] = nn.ReLU()
    layers["conv2"] = nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=not batchnorm)
    if batchnorm:
        layers["bn2"] = nn.BatchNorm2d(c2)
    layers["relu2"] = nn.ReLU()
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(c2 * 16, 10)
    return nn.Sequential(layers)


def networks(config: Config, seed: int) -> dict[str, Any]:
    """Return both networks with the same convolution and linear weights.

    Called inside ``torch.random.fork_rng``: seeding the global generator there
    leaves the caller's state as it was.
    """
    import torch

    torch.manual_seed(seed)
    plain = network(config.channels, batchnorm=False)
    normalised = network(config.channels, batchnorm=True)
    shared = {k: v for k, v in plain.state_dict().items() if k in normalised.state_dict()}
    normalised.load_state_dict(shared, strict=False)
    return {"no_bn": plain, "bn": normalised}

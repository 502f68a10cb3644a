"""`slq.apps.demo.networks`: the two networks start from the same weights."""

from __future__ import annotations

import numpy as np
from helpers import Backend, need

from slq.apps.demo.config import QUICK
from slq.apps.demo.networks import networks


def test_both_networks_start_from_the_same_weights() -> None:
    need(Backend.TORCH)
    both = networks(QUICK, seed=3)
    plain, normalised = both["no_bn"].state_dict(), both["bn"].state_dict()
    for name in ("conv1.weight", "conv2.weight", "fc.weight", "fc.bias"):
        assert np.array_equal(plain[name].numpy(), normalised[name].numpy())
    assert "conv1.bias" in plain and "conv1.bias" not in normalised
    assert "bn1.weight" in normalised

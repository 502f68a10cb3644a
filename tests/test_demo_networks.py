"""`slq.apps.demo.networks`: the two networks start from the same weights."""

from __future__ import annotations

import numpy as np
from helpers import Backend, need

from slq.apps.demo.config import QUICK
from slq.apps.demo.networks import networks


def test_both_networks_start_from_the_same_weights() -> None:
    need(Backend.TORCH)
    both = networks(QUICK.width, seed=3)
    plain, normalised = both["no_bn"].state_dict(), both["bn"].state_dict()
    # no BN: 0, 2, 4 are linear; with BN: 0, 3, 6 (each hidden linear followed by BN, ReLU).
    for a, b in (("0", "0"), ("2", "3"), ("4", "6")):
        assert np.array_equal(plain[f"{a}.weight"].numpy(), normalised[f"{b}.weight"].numpy())
    assert np.array_equal(plain["4.bias"].numpy(), normalised["6.bias"].numpy())
    assert "0.bias" in plain and "0.bias" not in normalised
    assert "1.weight" in normalised

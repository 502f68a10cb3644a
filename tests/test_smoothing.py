"""`slq.smoothing`: kernel-smoothed curves of a result (more in test_density.py)."""

from __future__ import annotations

import numpy as np

import slq
from slq import smoothing

SPIKED = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])


def test_curves_integrate_to_their_mass_and_the_methods_delegate() -> None:
    dos = slq.density(np.diag(SPIKED), num_steps=40, num_probes=4, seed=0)
    t = smoothing.grid(dos, 20_000, scale="symlog")
    assert abs(np.trapezoid(smoothing.evaluate(dos, t), t) - 1.0) < 1e-3
    assert abs(np.trapezoid(smoothing.bulk(dos, t), t) - 0.997) < 1e-3
    low, high = smoothing.band(dos, t)
    assert np.all(low <= smoothing.evaluate(dos, t)) and np.all(smoothing.evaluate(dos, t) <= high)
    assert smoothing.bulk_sigma(dos) < smoothing.default_sigma(dos) / 40
    np.testing.assert_array_equal(dos.evaluate(t), smoothing.evaluate(dos, t))
    np.testing.assert_array_equal(dos.stderr(t), smoothing.stderr(dos, t))

"""`slq.apps.demo.measuring`: the tracking run read off a longer one."""

from __future__ import annotations

import numpy as np

import slq
from slq.apps.demo.measuring import prefix


def test_prefix_of_a_run_is_the_shorter_run() -> None:
    a = np.diag(np.linspace(-1.0, 3.0, 120))
    long = slq.density(a, num_steps=30, num_probes=4, seed=5)
    short = slq.density(a, num_steps=12, num_probes=2, seed=5)
    cut = prefix(long, 12, 2)
    np.testing.assert_allclose(cut.alpha, short.alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cut.beta, short.beta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cut.residual_norm, short.residual_norm, rtol=1e-10)
    assert (cut.num_matvecs, cut.dim) == (short.num_matvecs, short.dim)

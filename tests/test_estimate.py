"""`slq.Estimate`: intervals from probe samples."""

from __future__ import annotations

import numpy as np
import pytest

from slq.estimate import Estimate


def test_estimate_interval_and_errors() -> None:
    e = Estimate.from_samples(np.array([1.0, 2.0, 3.0]), num_matvecs=3, method="x")
    assert e.value == 2.0 and e.stderr == pytest.approx(1 / np.sqrt(3))
    low, high = e.interval(0.95)
    assert 2.0 - low == pytest.approx(high - 2.0)
    assert high - 2.0 == pytest.approx(4.302652729 / np.sqrt(3), rel=1e-8)
    assert float(e) == 2.0
    single = Estimate.from_samples(np.array([1.0]), num_matvecs=1, method="x")
    with pytest.raises(ValueError, match="at least 2"):
        single.interval()
    with pytest.raises(ValueError, match="confidence"):
        e.interval(1.5)

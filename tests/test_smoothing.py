"""`slq.smoothing`: kernel-smoothed curves of a result, their grids and bands."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import symmetric_with_spectrum

import slq
from slq import smoothing
from slq.estimate import student_t_quantile

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


def test_symlog_grid_resolves_the_bulk_and_the_outliers() -> None:
    dos = slq.density(np.diag(SPIKED * 1e-2), num_steps=40, num_probes=2, seed=0)
    t = dos.grid(200, scale="symlog")
    assert np.all(np.diff(t) > 0) and t[0] < dos.lambda_min and t[-1] > dos.lambda_max
    linear = dos.grid(200)
    assert np.sum(np.abs(t) < 0.01) > 5 * np.sum(np.abs(linear) < 0.01)
    custom = dos.grid(50, scale="symlog", linthresh=1e-3)
    assert custom[0] == pytest.approx(t[0])
    with pytest.raises(ValueError, match="scale"):
        dos.grid(10, scale="log")
    with pytest.raises(ValueError, match="linthresh"):
        dos.grid(10, scale="symlog", linthresh=0.0)


def test_band_contains_the_curve_with_t_quantiles() -> None:
    a = symmetric_with_spectrum(np.linspace(-1.0, 1.0, 80), seed=3)
    dos = slq.density(a, num_steps=10, num_probes=5, seed=0)
    t = dos.grid(50)
    low, high = dos.band(t, confidence=0.9)
    curve, se = dos.evaluate(t), dos.stderr(t)
    np.testing.assert_allclose(high - curve, student_t_quantile(0.9, 4) * se)
    np.testing.assert_allclose(curve - low, high - curve)

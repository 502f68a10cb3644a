"""The test helpers are code too: their own checks."""

import numpy as np
import pytest
from helpers import (
    Backend,
    assert_close,
    spectral_measure,
    symmetric_with_spectrum,
    tolerance,
)


def test_tolerance_scales_with_dtype_and_scale(backend: Backend) -> None:
    t64, t32 = tolerance(backend.dtype("float64")), tolerance(backend.dtype("float32"))
    assert t64 == pytest.approx(1000 * np.finfo(np.float64).eps)
    assert t32 == pytest.approx(1000 * np.finfo(np.float32).eps)
    assert tolerance(np.float64, scale=10.0) == pytest.approx(10 * t64)


@pytest.mark.parametrize("dtype", ["int64", "float16", "complex128"])
def test_tolerance_rejects_other_dtypes(dtype: str) -> None:
    with pytest.raises(ValueError, match="float32 or float64"):
        tolerance(np.dtype(dtype))


def test_symmetric_with_spectrum_has_that_spectrum() -> None:
    lam = np.array([-3.0, 0.0, 0.0, 1.0, 7.5])
    a = symmetric_with_spectrum(lam, seed=3)
    assert np.array_equal(a, a.T)
    np.testing.assert_allclose(np.linalg.eigvalsh(a), np.sort(lam), atol=1e-13)


def test_spectral_measure_sums_to_one_and_matches_moments() -> None:
    a = symmetric_with_spectrum(np.array([1.0, 2.0, 4.0]), seed=0)
    v = np.array([1.0, -2.0, 0.5])
    lam, w = spectral_measure(a, v)
    assert w.sum() == pytest.approx(1.0)
    assert np.sum(w * lam**2) == pytest.approx(v @ a @ a @ v / (v @ v))


def test_assert_close_accepts_rounding_and_refuses_more(backend: Backend) -> None:
    desired = np.array([1e3, -2.0, 0.0, 1e-12])
    rounded = desired + 50 * np.finfo(np.float64).eps * 1e3 * np.array([1, -1, 1, 1])
    assert_close(backend.asarray(rounded), desired)  # any backend's array, to rounding
    assert_close(rounded.tolist(), desired.tolist())
    with pytest.raises(AssertionError):
        assert_close(desired * (1 + 1e-9), desired)  # a real difference
    with pytest.raises(AssertionError):
        assert_close(desired[:3], desired)
    # The bound is relative to the scale, not to each entry: 1e-12 at entry 3 is far off.
    with pytest.raises(AssertionError):
        assert_close(desired + np.array([0, 0, 0, 1e-9]), desired)


def test_assert_close_follows_the_dtype_and_the_scale() -> None:
    one = np.float32(1.0)
    assert_close(np.float32(1.0 + 1e-5), one)  # float32: 1000 · 1.2e-7 = 1.2e-4
    with pytest.raises(AssertionError):
        assert_close(1.0 + 1e-5, 1.0)  # the same gap is far beyond float64's
    assert_close(1.0 + 1e-10, 1.0, scale=1e3)  # a sum of terms of size 1e3
    with pytest.raises(AssertionError):
        assert_close(1.0 + 1e-10, 1.0)
    assert_close(1e-14, 0.0)  # a zero desired value: scale 1
    with pytest.raises(AssertionError):
        assert_close(1e-12, 0.0)

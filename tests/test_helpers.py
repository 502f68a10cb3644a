"""The test helpers are code too: their own checks."""

import numpy as np
import pytest
from helpers import Backend, spectral_measure, symmetric_with_spectrum, tolerance


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

"""`slq.SpectralDensity`: its construction, curves, per-probe views and checks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    Backend,
    symmetric_with_spectrum,
)

import slq
import slq.bounds

SPIKED = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])


def test_residuals_agree_across_backends(backend: Backend) -> None:
    a = symmetric_with_spectrum(SPIKED[::10], seed=0)
    ours = slq.density(backend.asarray(a), num_steps=15, num_probes=2, seed=0)
    reference = slq.density(a, num_steps=15, num_probes=2, seed=0)
    np.testing.assert_allclose(ours.residual_norm, reference.residual_norm, rtol=1e-8)
    np.testing.assert_allclose(ours.ritz_residuals, reference.ritz_residuals, atol=1e-8)


def test_residual_norm_is_checked() -> None:
    with pytest.raises(ValueError, match="residual_norm"):
        slq.SpectralDensity(np.ones((2, 3)), np.ones((2, 2)), dim=5, residual_norm=[1.0])


def spiked(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lam = np.concatenate([rng.normal(0.0, 0.3, n - 3), [4.0, 6.0, 9.0]])
    return lam, symmetric_with_spectrum(lam, seed)


def test_evaluate_integrates_to_one_for_both_kernels() -> None:
    _, a = spiked(60)
    dos = slq.density(a, num_steps=20, num_probes=2, seed=0)
    t = dos.grid(4000)
    assert np.trapezoid(dos.evaluate(t), t) == pytest.approx(1.0, abs=1e-6)
    wide = np.linspace(-2000.0, 2000.0, 400_001)
    assert np.trapezoid(dos.evaluate(wide, sigma=0.5, kernel="lorentzian"), wide) == pytest.approx(
        1.0, abs=1e-3
    )


def test_per_probe_and_stderr_shapes() -> None:
    _, a = spiked(60)
    dos = slq.density(a, num_steps=20, num_probes=4, seed=0)
    t = dos.grid(50)
    curves = dos.per_probe(t)
    assert curves.shape == (4, 50)
    np.testing.assert_allclose(dos.evaluate(t), curves.mean(axis=0))
    np.testing.assert_allclose(dos.stderr(t), curves.std(axis=0, ddof=1) / 2.0)


def test_identity_has_a_width_to_smooth_with() -> None:
    dos = slq.density(np.eye(4), num_probes=2, seed=0)
    assert dos.default_sigma() == 1.0 and dos.lambda_min == dos.lambda_max == 1.0


def test_from_lanczos_builds_the_same_density() -> None:
    _, a = spiked(40)
    result = slq.lanczos(a, np.ones((40, 1)), 10)
    dos = slq.SpectralDensity.from_lanczos(result, dim=40, probe="ones")
    np.testing.assert_array_equal(dos.alpha, result.alpha)
    assert dos.probe == "ones" and dos.num_matvecs == 10


def test_density_is_immutable() -> None:
    dos = slq.density(np.eye(3), num_probes=2, seed=0)
    with pytest.raises(AttributeError):
        dos.dim = 4  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        dos.nodes[0, 0] = 1.0


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        ("evaluate", {"grid": np.zeros((2, 2))}, r"grid must be 1-D, got shape \(2, 2\)"),
        ("evaluate", {"grid": [0.0], "sigma": 0.0}, "sigma must be a finite number > 0, got 0.0"),
        (
            "evaluate",
            {"grid": [0.0], "sigma": np.nan},
            "sigma must be a finite number > 0, got nan",
        ),
        (
            "evaluate",
            {"grid": [0.0], "kernel": "box"},
            "kernel must be one of 'gaussian', 'lorentzian', got 'box'",
        ),
        ("grid", {"num": 0}, "num must be >= 1, got 0"),
        ("grid", {"pad": -1.0}, "pad must be a finite number >= 0, got -1.0"),
    ],
)
def test_bad_evaluation_arguments(method: str, kwargs: dict, message: str) -> None:
    dos = slq.density(np.eye(3) + np.diag([0.0, 1.0, 2.0]), num_probes=2, seed=0)
    with pytest.raises(ValueError, match=message):
        getattr(dos, method)(**kwargs)


def test_stderr_needs_two_probes() -> None:
    dos = slq.density(np.eye(3), num_probes=1, seed=0)
    with pytest.raises(ValueError, match="stderr needs at least 2 probes, this density has 1"):
        dos.stderr([0.0])


def test_bad_spectral_density_construction() -> None:
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        slq.SpectralDensity(np.zeros((1, 2)), np.ones((1, 1)), dim=0)
    with pytest.raises(ValueError, match=r"beta must have shape \(1, 1\)"):
        slq.SpectralDensity(np.zeros((1, 2)), np.ones((1, 2)), dim=3)

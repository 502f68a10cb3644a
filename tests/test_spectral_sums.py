"""tr A by Hutchinson and Hutch++, tr f(A) by SLQ: against dense traces, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Backend, CheckedOperator, symmetric_with_spectrum, tolerance

from slq.spectral_sums import trace, trace_function

METHODS = ("hutchinson", "hutch++")
N = 60


def indefinite(seed: int = 0) -> np.ndarray:
    return symmetric_with_spectrum(np.linspace(-1.0, 3.0, N), seed)


def spd(seed: int = 0, n: int = N) -> np.ndarray:
    return symmetric_with_spectrum(np.linspace(1.0, 10.0, n), seed)


def low_rank_plus_noise(n: int = 100, rank: int = 5) -> np.ndarray:
    """A few large eigenvalues on a small, wide bulk: where deflation pays."""
    eigenvalues = np.random.default_rng(0).uniform(-0.1, 0.1, n)
    eigenvalues[:rank] = np.geomspace(100.0, 10.0, rank)
    return symmetric_with_spectrum(eigenvalues, seed=0)


def covers(estimate: object, exact: float) -> bool:
    low, high = estimate.interval(0.95)  # type: ignore[attr-defined]
    return bool(low <= exact <= high)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", METHODS)
def test_same_probes_and_trace_on_every_backend(backend: Backend, method: str, dtype: str) -> None:
    a = indefinite()
    op = CheckedOperator(backend.asarray(a, dtype))
    estimate = trace(op, num_matvecs=30, method=method, seed=3)
    reference = trace(a, num_matvecs=30, method=method, seed=3)
    scale = np.abs(a).sum()
    assert estimate.value == pytest.approx(reference.value, abs=tolerance(dtype) * scale)
    assert estimate.num_samples == reference.num_samples
    assert abs(estimate.value - np.trace(a)) <= 5.0 * estimate.stderr
    assert (estimate.num_matvecs, estimate.method) == (30, method)


def test_hutchpp_is_exact_below_a_third_of_the_budget() -> None:
    u = np.random.default_rng(0).standard_normal((N, 4))
    a = u @ np.diag([5.0, 2.0, -1.0, 0.5]) @ u.T
    estimate = trace(a, num_matvecs=15, seed=0)
    assert estimate.value == pytest.approx(np.trace(a), abs=1e-10 * np.abs(a).sum())
    assert estimate.num_samples == 15 - 5 - 4  # the sketch's unused rank goes to Hutchinson


def test_hutchpp_spans_everything_when_the_sketch_would_exceed_n() -> None:
    a = symmetric_with_spectrum(np.array([-2.0, 1.0, 3.0, 7.0]), seed=1)
    estimate = trace(a, num_matvecs=30, seed=0)
    assert estimate.value == pytest.approx(9.0, abs=1e-12)
    assert estimate.num_samples == 30 - 4 - 4 and estimate.stderr < 1e-12


def test_hutchpp_of_zero_is_zero() -> None:
    estimate = trace(np.zeros((10, 10)), num_matvecs=9, seed=0)
    assert (estimate.value, estimate.num_samples, estimate.num_matvecs) == (0.0, 6, 9)


@pytest.mark.parametrize("method", METHODS)
def test_interval_coverage_over_seeds(method: str) -> None:
    a = indefinite(seed=7)[:50, :50]
    hits = [
        covers(trace(a, num_matvecs=30, method=method, seed=s), np.trace(a)) for s in range(200)
    ]
    assert np.mean(hits) >= 0.88


@pytest.mark.parametrize("f", ["log", np.sqrt], ids=["log", "callable"])
def test_trace_function_interval_coverage_over_seeds(f: object) -> None:
    a = spd(seed=2, n=50)
    exact = np.sum(np.log(np.linalg.eigvalsh(a)) if f == "log" else np.sqrt(np.linalg.eigvalsh(a)))
    hits = [
        covers(trace_function(a, f, num_steps=10, num_probes=10, seed=s), exact) for s in range(200)
    ]
    assert np.mean(hits) >= 0.88


def test_hutchpp_beats_hutchinson_at_equal_budget() -> None:
    errors: dict[str, list[float]] = {method: [] for method in METHODS}
    a = low_rank_plus_noise()
    for seed in range(50):
        for method in METHODS:
            estimate = trace(a, num_matvecs=45, method=method, seed=seed)
            errors[method].append((estimate.value - np.trace(a)) ** 2)
    assert np.mean(errors["hutch++"]) * 20.0 < np.mean(errors["hutchinson"])


def test_results_do_not_depend_on_the_batch_size() -> None:
    a = indefinite()
    for method in METHODS:
        whole = trace(a, num_matvecs=31, method=method, seed=5)
        batched = trace(a, num_matvecs=31, method=method, seed=5, probe_batch_size=4)
        assert batched.value == pytest.approx(whole.value, rel=1e-12)


def test_gaussian_probes_are_unbiased_too() -> None:
    a = indefinite()
    for method in METHODS:
        estimate = trace(a, num_matvecs=60, method=method, seed=1, probe="gaussian")
        assert abs(estimate.value - np.trace(a)) <= 5.0 * estimate.stderr


def test_one_stochastic_sample_leaves_the_stderr_unknown() -> None:
    estimate = trace(indefinite(), num_matvecs=1, method="hutchinson", seed=0)
    assert estimate.num_samples == 1 and np.isnan(estimate.stderr)
    with pytest.raises(ValueError, match="at least 2 samples"):
        estimate.interval()
    smallest = trace(indefinite(), num_matvecs=3, method="hutch++", seed=0)
    assert smallest.num_samples == 1 and np.isnan(smallest.stderr)


def test_trace_function_log_det_on_every_backend(backend: Backend) -> None:
    a = spd()
    op = CheckedOperator(backend.asarray(a))
    estimate = trace_function(op, "log", num_steps=12, num_probes=10, seed=0)
    exact = np.sum(np.log(np.linalg.eigvalsh(a)))
    assert covers(estimate, exact)
    assert estimate.method == "slq" and estimate.num_samples == 10


def test_trace_function_log_det_with_a_shift() -> None:
    a = indefinite()
    exact = np.sum(np.log(np.linalg.eigvalsh(a) + 1.5))
    assert covers(trace_function(a, "log", shift=1.5, seed=0), exact)


def test_log_of_an_indefinite_operator_suggests_a_shift() -> None:
    with pytest.raises(ValueError, match="shift"):
        trace_function(indefinite(), "log", seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_matvecs": 2}, ValueError, "num_matvecs must be >= 3 for method='hutch"),
        ({"num_matvecs": 0, "method": "hutchinson"}, ValueError, "num_matvecs must be >= 1"),
        ({"num_matvecs": 2.0}, TypeError, "num_matvecs must be an integer"),
        ({"method": "xtrace"}, ValueError, "method must be one of"),
        ({"probe": "sphere"}, ValueError, "probe must be one of"),
        ({"probe_batch_size": 0}, ValueError, "probe_batch_size must be >= 1"),
    ],
)
def test_trace_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        trace(indefinite(), **kwargs)


@pytest.mark.parametrize(
    ("f", "kwargs", "error", "match"),
    [
        ("logdet", {}, ValueError, "f must be a callable or one of 'log'"),
        (3.0, {}, TypeError, "f must be a callable or the name"),
        ("log", {"shift": float("inf")}, ValueError, "shift must be finite"),
        ("log", {"num_probes": 0}, ValueError, "num_probes must be >= 1"),
    ],
)
def test_trace_function_rejects_bad_arguments(
    f: object, kwargs: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        trace_function(spd(), f, **kwargs)


def test_an_operator_producing_nan_is_reported() -> None:
    a = indefinite()
    a[0, 0] = np.nan
    for method in METHODS:
        with pytest.raises(FloatingPointError, match="NaN"):
            trace(a, num_matvecs=9, method=method, seed=0)

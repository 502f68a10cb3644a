"""`slq.density`: runs against exact smoothed densities, seeds, batches, stopping rules, errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from helpers import Backend, CheckedOperator, assert_close, need, symmetric_with_spectrum
from hypothesis import given
from hypothesis import strategies as st
from strategies import Case, cases

import slq
from slq.testing import l1_distance


def spiked(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lam = np.concatenate([rng.normal(0.0, 0.3, n - 3), [4.0, 6.0, 9.0]])
    return lam, symmetric_with_spectrum(lam, seed)


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_density_is_within_its_error_bars_of_the_exact_one(backend: Backend, probe: str) -> None:
    lam, a = spiked()
    dos = slq.density(backend.asarray(a), num_steps=40, num_probes=30, seed=1, probe=probe)
    t = dos.grid(800)
    sigma = dos.default_sigma()
    error = l1_distance(dos, lam, sigma=sigma, grid=t)
    band = np.trapezoid(dos.stderr(t), t)
    assert error <= 3.0 * band, (error, band)
    assert error < 0.05


@given(case=cases(min_n=20, max_n=60), seed=st.integers(0, 2**16))
def test_density_error_is_bounded_by_its_stderr(case: Case, seed: int) -> None:
    dos = slq.density(case.matrix, num_steps=case.n, num_probes=16, seed=seed)
    t = dos.grid(400)
    error = l1_distance(dos, case.eigenvalues, sigma=dos.default_sigma(), grid=t)
    band = np.trapezoid(dos.stderr(t), t)
    assert error <= 4.0 * band + 1e-9


def test_extremes_and_metadata() -> None:
    lam, a = spiked()
    dos = slq.density(a, num_steps=50, num_probes=3, seed=2)
    assert dos.lambda_max == pytest.approx(9.0, rel=1e-10)
    assert lam.min() - 1e-12 <= dos.lambda_min < lam.min() + 0.2
    assert (dos.dim, dos.num_probes, dos.num_steps, dos.num_matvecs) == (300, 3, 50, 150)
    assert (dos.seed, dos.probe, dos.reorthogonalize) == (2, "rademacher", "full")
    assert dos.nodes.shape == dos.weights.shape == (3, 50)
    np.testing.assert_allclose(dos.weights.sum(axis=1), 1.0, rtol=1e-14)
    assert "SpectralDensity(dim=300, num_probes=3" in repr(dos)


def test_backends_agree_for_the_same_seed(backend: Backend) -> None:
    _, a = spiked(120)
    reference = slq.density(a, num_steps=30, num_probes=4, seed=7)
    dos = slq.density(CheckedOperator(backend.asarray(a)), num_steps=30, num_probes=4, seed=7)
    np.testing.assert_allclose(dos.alpha, reference.alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dos.beta, reference.beta, rtol=1e-10, atol=1e-12)


def test_float32_density_matches_float64(backend: Backend) -> None:
    _, a = spiked(200)
    d32 = slq.density(backend.asarray(a, "float32"), num_steps=30, num_probes=4, seed=3)
    d64 = slq.density(a, num_steps=30, num_probes=4, seed=3)
    t = d64.grid(300)
    np.testing.assert_allclose(d32.evaluate(t), d64.evaluate(t), atol=1e-4 * d64.evaluate(t).max())


@pytest.mark.parametrize("batch", [1, 3, 7, 100])
def test_result_does_not_depend_on_the_probe_batch_size(batch: int) -> None:
    _, a = spiked(100)
    whole = slq.density(a, num_steps=20, num_probes=7, seed=11)
    batched = slq.density(a, num_steps=20, num_probes=7, seed=11, probe_batch_size=batch)
    np.testing.assert_allclose(batched.alpha, whole.alpha, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(batched.beta, whole.beta, rtol=1e-12, atol=1e-14)
    assert batched.num_matvecs == whole.num_matvecs == 140


def test_more_probes_extend_the_same_probes() -> None:
    _, a = spiked(80)
    few = slq.density(a, num_steps=10, num_probes=2, seed=5)
    many = slq.density(a, num_steps=10, num_probes=5, seed=5)
    np.testing.assert_allclose(many.alpha[:2], few.alpha, rtol=1e-12)


def test_seed_none_is_recorded_and_repeatable() -> None:
    _, a = spiked(50)
    first = slq.density(a, num_steps=10, num_probes=2)
    again = slq.density(a, num_steps=10, num_probes=2, seed=first.seed)
    np.testing.assert_array_equal(first.alpha, again.alpha)


def test_generator_seed_is_consumed_like_scipy() -> None:
    _, a = spiked(50)
    rng = np.random.default_rng(0)
    first = slq.density(a, num_steps=5, num_probes=2, seed=rng)
    second = slq.density(a, num_steps=5, num_probes=2, seed=rng)
    assert not np.array_equal(first.alpha, second.alpha)
    replay = slq.density(a, num_steps=5, num_probes=2, seed=np.random.default_rng(0))
    np.testing.assert_array_equal(first.alpha, replay.alpha)


def test_breakdown_gives_exact_nodes_without_nan() -> None:
    a = symmetric_with_spectrum(np.repeat([-1.0, 0.5, 2.0], 20), seed=1)
    dos = slq.density(a, num_steps=30, num_probes=5, seed=0)
    assert np.isfinite(dos.nodes).all() and np.isfinite(dos.weights).all()
    heavy = dos.nodes[dos.weights > 1e-10]
    assert np.isclose(heavy[:, None], [-1.0, 0.5, 2.0], atol=1e-10).any(axis=1).all()
    t = dos.grid(500)
    assert np.isfinite(dos.evaluate(t)).all()


def test_check_symmetric_accepts_symmetric_operators(backend: Backend) -> None:
    _, a = spiked(50)
    dos = slq.density(backend.asarray(a, "float32"), num_probes=2, seed=0, check_symmetric=True)
    assert dos.num_matvecs == 2 * 50 + 2


def test_check_symmetric_rejects_a_nonsymmetric_operator() -> None:
    a = np.random.default_rng(0).standard_normal((30, 30))
    with pytest.raises(ValueError, match=r"the operator is not symmetric: for random unit u, v"):
        slq.density(a, check_symmetric=True, seed=0)


# numpy warns about arithmetic on the Inf before slq sees it in a coefficient and raises.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_names_the_global_probe_index() -> None:
    class NaNInProbe3:
        shape, dtype = (6, 6), np.dtype("float64")

        def __init__(self) -> None:
            self.calls = 0

        def matvec(self, v):
            return v

        def matmat(self, v):
            self.calls += 1
            out = np.arange(1.0, 7.0)[:, None] * v
            if self.calls == 6 + 2:  # second batch (probes 2, 3), its second step
                out[0, 1] = np.inf
            return out

    with pytest.raises(FloatingPointError, match="inf at Lanczos step 2 for probe 3"):
        slq.density(NaNInProbe3(), num_steps=6, num_probes=4, probe_batch_size=2, seed=0)


def test_logs_to_the_slq_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="slq"):
        slq.density(np.eye(3), num_probes=2, seed=4)
    assert any("density: n=3, 2 probes" in r.getMessage() for r in caplog.records)
    assert all(r.name == "slq" for r in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_steps": 0}, ValueError, "num_steps must be >= 1, got 0"),
        ({"num_probes": 0}, ValueError, "num_probes must be >= 1, got 0"),
        ({"num_probes": 2.0}, TypeError, "num_probes must be an integer >= 1, got 2.0"),
        ({"probe_batch_size": 0}, ValueError, "probe_batch_size must be >= 1, got 0"),
        (
            {"probe": "uniform"},
            ValueError,
            "probe must be one of 'rademacher', 'gaussian', got 'uniform'",
        ),
        ({"reorthogonalize": "twice"}, ValueError, "reorthogonalize must be one of"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
        (
            {"seed": 1.5},
            TypeError,
            "seed must be a non-negative int, a numpy Generator or SeedSequence, or None, got 1.5",
        ),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        slq.density(np.eye(3), **kwargs)


def test_bad_operators() -> None:
    with pytest.raises(ValueError, match=r"operator must be square, got shape \(2, 3\)"):
        slq.density(np.ones((2, 3)))
    with pytest.raises(TypeError, match="operator dtype must be real floating, got int64: cast"):
        slq.density(np.eye(3, dtype=np.int64))
    with pytest.raises(TypeError, match="got complex128: SLQ needs a real symmetric operator"):
        slq.density(np.eye(3, dtype=np.complex128))


def test_vectors_never_leave_the_operators_device() -> None:
    # array-api-strict refuses to combine arrays of two devices: a probe, basis or
    # workspace made on the default device would make this run fail.
    xps = need(Backend.STRICT)
    device = xps.Device("device1")
    _, a = spiked(60)
    op = CheckedOperator(xps.asarray(a, device=device))
    dos = slq.density(op, num_steps=20, num_probes=3, seed=0, check_symmetric=True)
    reference = slq.density(a, num_steps=20, num_probes=3, seed=0)
    np.testing.assert_allclose(dos.alpha, reference.alpha, rtol=1e-12)
    result = slq.lanczos(op, xps.ones((60, 2), device=device), 5, return_basis=True)
    assert result.basis.device == device


def test_adaptive_run_stops_at_tolerance_and_matches_a_fixed_run() -> None:
    a = symmetric_with_spectrum(np.random.default_rng(0).uniform(-1, 1, 200), seed=0)
    loose = slq.density(a, num_steps=20, tol=0.08, seed=3)
    tight = slq.density(a, num_steps=20, tol=0.04, seed=3)
    assert loose.stop_reason == tight.stop_reason == "tol"
    assert 4 <= loose.num_probes < tight.num_probes
    # Batches of 4 probes against one batch of all: the same probes, equal to rounding.
    fixed = slq.density(a, num_steps=20, num_probes=tight.num_probes, seed=3)
    assert_close(fixed.alpha, tight.alpha, scale=1.0)  # ‖A‖ = 1
    assert_close(fixed.beta, tight.beta, scale=1.0)
    t = tight.grid()
    assert np.trapezoid(tight.stderr(t), t) <= 0.04


def test_adaptive_run_stops_at_the_budget_or_the_probe_cap() -> None:
    a = symmetric_with_spectrum(np.random.default_rng(0).uniform(-1, 1, 200), seed=0)
    budget = slq.density(a, num_steps=20, tol=1e-6, max_matvecs=250, seed=0)
    assert budget.stop_reason == "max_matvecs" and budget.num_matvecs <= 250
    capped = slq.density(a, num_steps=20, tol=1e-6, num_probes=6, probe_batch_size=3, seed=0)
    assert capped.stop_reason == "num_probes" and capped.num_probes == 6
    with pytest.raises(ValueError, match="cannot pay for one batch"):
        slq.density(a, num_steps=20, max_matvecs=50)
    with pytest.raises(ValueError, match="tol"):
        slq.density(a, tol=-1.0)


def test_check_options_mirrors_every_keyword_of_density() -> None:
    # The Tracker validates its density options with check_options before any file is
    # written: a keyword added to density must be checked there too, with the same default.
    import inspect

    from slq._density import check_options

    ours = inspect.signature(check_options).parameters
    theirs = dict(inspect.signature(slq.density).parameters)
    del theirs["op"]
    assert {k: p.default for k, p in ours.items()} == {k: p.default for k, p in theirs.items()}

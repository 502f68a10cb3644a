"""`slq_budget`: its quadrature bound holds against dense oracles, and its (ε, η) promise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import spectral_measure, symmetric_with_spectrum

import slq
from slq.budget import Budget, slq_budget, ubaru2017_num_probes
from slq.spectral_sums import trace_function

FUNCTIONS = {"log": np.log, "exp": np.exp, "inverse": np.reciprocal}
# A spectrum per function: log and inverse must stay off 0, and log off its zero at 1.
SPECTRA = {"log": (2.0, 60.0), "exp": (-2.0, 3.0), "inverse": (0.3, 20.0)}


def instance(name: str, seed: int, n: int = 40) -> np.ndarray:
    low, high = SPECTRA[name]
    eigenvalues = np.random.default_rng(seed).uniform(low, high, n)
    return symmetric_with_spectrum(eigenvalues, seed)


def unit_rademacher(n: int, seed: int) -> np.ndarray:
    return np.where(np.random.default_rng(seed).random(n) < 0.5, -1.0, 1.0) / np.sqrt(n)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gauss_error_per_probe_is_within_the_bound(name: str, seed: int) -> None:
    a = instance(name, seed)
    lam = np.linalg.eigvalsh(a)
    budget = slq_budget(name, (lam[0], lam[-1]), epsilon=0.1, eta=0.1)
    assert budget.quadrature_error_bound(budget.num_steps) <= 0.05 * budget.min_abs_f
    f = FUNCTIONS[name]
    v = unit_rademacher(lam.size, seed)
    nodes_all, weights_all = spectral_measure(a, v)
    exact = np.sum(weights_all * f(nodes_all))
    result = slq.lanczos(a, v, budget.num_steps)
    rounding = 1e-12 * np.abs(f(lam)).max()
    for m in range(1, result.alpha.shape[1] + 1):
        nodes, weights = slq.gauss_quadrature(result.alpha[:, :m], result.beta[:, : m - 1])
        error = abs(np.sum(weights * f(nodes)) - exact)
        assert error <= budget.quadrature_error_bound(m) + rounding, m


@pytest.mark.parametrize("name", FUNCTIONS)
def test_recommended_budget_delivers_relative_accuracy(name: str) -> None:
    epsilon, eta = 0.5, 0.2
    a = instance(name, seed=3, n=30)
    lam = np.linalg.eigvalsh(a)
    exact = np.sum(FUNCTIONS[name](lam))
    budget = slq_budget(name, (lam[0], lam[-1]), epsilon=epsilon, eta=eta)
    hits = []
    for seed in range(10):
        estimate = trace_function(
            a, name, num_steps=budget.num_steps, num_probes=budget.num_probes, seed=seed
        )
        hits.append(abs(estimate.value - exact) <= epsilon * abs(exact))
    assert np.mean(hits) >= 1.0 - eta


def test_probe_count_follows_roosta_khorasani_ascher_with_half_epsilon() -> None:
    assert ubaru2017_num_probes(0.1, 0.05) == math.ceil(2400.0 * math.log(40.0))
    budget = slq_budget("log", (2.0, 20.0), epsilon=0.1, eta=0.05)
    assert budget.num_probes == ubaru2017_num_probes(0.1, 0.05)
    assert budget.num_matvecs == budget.num_steps * budget.num_probes


def test_square_needs_exactly_two_steps() -> None:
    # The two-point Gauss rule is exact for degree 3; one node is not exact for x².
    assert slq_budget("square", (1.0, 3.0), epsilon=0.01, eta=0.1).num_steps == 2


def test_tighter_accuracy_and_wider_spectra_cost_more() -> None:
    loose = slq_budget("log", (2.0, 200.0), epsilon=0.1, eta=0.1)
    tight = slq_budget("log", (2.0, 200.0), epsilon=0.01, eta=0.1)
    wide = slq_budget("log", (2.0, 2000.0), epsilon=0.1, eta=0.1)
    assert tight.num_steps > loose.num_steps and tight.num_probes > loose.num_probes
    assert wide.num_steps > loose.num_steps
    rho_max = (math.sqrt(200.0) + math.sqrt(2.0)) / (math.sqrt(200.0) - math.sqrt(2.0))
    assert 1.0 < loose.rho < rho_max


def test_a_callable_gives_the_named_function_s_budget() -> None:
    named = slq_budget("inverse", (0.5, 8.0), epsilon=0.1, eta=0.1)
    callable_ = slq_budget(lambda x: 1.0 / x, (0.5, 8.0), epsilon=0.1, eta=0.1, rho=named.rho)
    assert callable_.num_steps == named.num_steps
    assert callable_.max_abs_f == pytest.approx(named.max_abs_f)
    assert callable_.min_abs_f == pytest.approx(named.min_abs_f)


def test_a_one_point_spectrum_needs_one_step() -> None:
    budget = slq_budget("exp", (2.0, 2.0), epsilon=0.1, eta=0.1)
    assert isinstance(budget, Budget)
    assert budget.num_steps == 1 and budget.quadrature_error_bound(1) == 0.0


@pytest.mark.parametrize(
    ("f", "spectrum", "kwargs", "match"),
    [
        ("log", (0.5, 2.0), {}, "vanishes or changes sign"),
        ("square", (-1.0, 1.0), {}, "vanishes or changes sign"),
        (np.sin, (1.0, 5.0), {"rho": 1.5}, "vanishes or changes sign"),
        ("log", (-1.0, 2.0), {}, "spectrum must be positive"),
        ("inverse", (-1.0, 2.0), {}, "must be definite"),
        ("log", (2.0, 1.0), {}, "lambda_min <= lambda_max"),
        ("log", (1.0, math.nan), {}, "spectrum must be finite"),
        ("log", (1.0,), {}, "spectrum must be a pair"),
        ("log", (2.0, 20.0), {"epsilon": 0.0}, "epsilon must lie in"),
        ("log", (2.0, 20.0), {"epsilon": 1.0}, "epsilon must lie in"),
        ("log", (2.0, 20.0), {"eta": 1.5}, "eta must lie in"),
        ("log", (2.0, 20.0), {"rho": 3.0}, "rho must lie in"),
        ("log", (2.0, 20.0), {"rho": 1.0}, "rho must lie in"),
        (np.exp, (2.0, 20.0), {}, "rho is needed for a callable"),
        (lambda x: x + 1j, (2.0, 20.0), {"rho": 2.0}, "real-valued"),
        # The rightmost point of the ellipse of rho = 2 around [3, 4] is 4.125.
        (lambda x: 1.0 / (x - 4.125), (3.0, 4.0), {"rho": 2.0}, "not finite on the ellipse"),
        (lambda x: 1.0 / (x - 2.5), (3.0, 4.0), {"rho": 10.0}, "not analytic inside"),
        ("logdet", (2.0, 20.0), {}, "f must be a callable or one of"),
    ],
)
def test_bad_input_is_refused(f: object, spectrum: tuple, kwargs: dict, match: str) -> None:
    arguments = {"epsilon": 0.1, "eta": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        slq_budget(f, spectrum, **arguments)


def test_quadrature_error_bound_needs_a_step() -> None:
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        slq_budget("log", (2.0, 20.0), epsilon=0.1, eta=0.1).quadrature_error_bound(0)

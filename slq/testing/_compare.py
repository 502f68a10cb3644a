"""`compare`: several estimators on several problems, same seeds, same product budget."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from slq._validate import (
    check_bool,
    check_callable,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
)
from slq.testing._counting import counting_operator
from slq.testing._measures import Curve, Measure, as_measure
from slq.testing._metrics import extreme_error, ks_distance, l1_distance, wasserstein1
from slq.testing._problem import Problem
from slq.testing._table import Comparison, Record

__all__ = ["METRICS", "compare"]

logger = logging.getLogger("slq")

METRICS: dict[str, Callable[[Measure, Measure, float | None], dict[str, float]]] = {
    "l1": lambda a, b, sigma: {"l1": l1_distance(a, b, sigma=sigma)},
    "w1": lambda a, b, _: {"w1": wasserstein1(a, b)},
    "ks": lambda a, b, _: {"ks": ks_distance(a, b)},
    "extreme": lambda a, b, _: dict(
        zip(("lambda_min_error", "lambda_max_error"), extreme_error(a, b), strict=True)
    ),
}


def _check_estimators(estimators: Any) -> dict[str, Callable[..., Any]]:
    if not isinstance(estimators, Mapping) or not estimators:
        kind = type(estimators).__name__
        msg = f"estimators must be a non-empty mapping name -> callable, got {kind}"
        raise TypeError(msg)
    for name, estimator in estimators.items():
        if not isinstance(name, str):
            msg = f"estimator names must be strings, got {name!r}"
            raise TypeError(msg)
        check_callable(f"estimator {name!r}", estimator)
    return dict(estimators)


def _check_problems(problems: Any) -> list[Problem]:
    if isinstance(problems, (str, bytes)) or not isinstance(problems, Sequence) or not problems:
        msg = f"problems must be a non-empty sequence of Problem, got {type(problems).__name__}"
        raise TypeError(msg)
    for problem in problems:
        if not isinstance(problem, Problem):
            msg = f"each of problems must be a Problem, got {type(problem).__name__}"
            raise TypeError(msg)
    names = [problem.name for problem in problems]
    if len(set(names)) != len(names):
        msg = (
            f"problems must have distinct names (the table's rows), got {names}: rename one "
            "with dataclasses.replace(problem, name=...)"
        )
        raise ValueError(msg)
    return list(problems)


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        msg = f"seeds must be an iterable of ints >= 0, got {type(seeds).__name__}"
        raise TypeError(msg)
    checked = [check_non_negative_int("each of seeds", seed) for seed in seeds]
    if not checked:
        msg = "seeds must hold at least one seed"
        raise ValueError(msg)
    return checked


def _check_metrics(metrics: Any) -> tuple[str, ...]:
    if isinstance(metrics, str) or not isinstance(metrics, Iterable):
        msg = f"metrics must be a sequence of names from {tuple(METRICS)}, got {metrics!r}"
        raise TypeError(msg)
    names = tuple(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        msg = f"metrics must be a non-empty sequence of names from {tuple(METRICS)}, got {names!r}"
        raise ValueError(msg)
    return names


def _run_one(
    name: str, estimator: Callable[..., Any], problem: Any, budget: int, seed: int
) -> tuple[Measure, int, float]:
    """Run one estimator once; return (its measure, products spent, seconds)."""
    operator, counter = counting_operator(problem.matrix)
    start = time.perf_counter()
    estimate = estimator(operator, budget, seed)
    seconds = time.perf_counter() - start
    try:
        measure = as_measure(estimate, "the estimate")
    except (TypeError, ValueError) as error:
        msg = (
            f"estimator {name!r} returned an invalid density on problem {problem.name!r} "
            f"(seed {seed}): {error}"
        )
        raise type(error)(msg) from error
    if counter.products > budget:
        logger.warning(
            "compare: estimator %r spent %d products on %r, over the budget of %d",
            name,
            counter.products,
            problem.name,
            budget,
        )
    return measure, counter.products, seconds


def _measure(
    name: str, measure: Measure, truth: Measure, metrics: tuple[str, ...], sigma: float | None
) -> dict[str, float]:
    """Every metric of one run, errors naming the estimator (a Curve has no extremes, ...)."""
    values: dict[str, float] = {}
    try:
        for metric in metrics:
            if metric == "extreme" and isinstance(measure, Curve):
                values.update(lambda_min_error=float("nan"), lambda_max_error=float("nan"))
                continue
            values.update(METRICS[metric](measure, truth, sigma))
    except (TypeError, ValueError) as error:
        msg = f"estimator {name!r}: {error}"
        raise type(error)(msg) from error
    return values


def compare(
    estimators: Mapping[str, Callable[[Any, int, int], Any]],
    problems: Sequence[Any],
    *,
    seeds: Iterable[int],
    budget: int,
    metrics: Sequence[str] = ("l1", "w1", "ks", "extreme"),
    sigma: float | None = None,
    figure: bool = False,
) -> Comparison:
    """Run each estimator on each problem with each seed and the same budget; measure each.

    Each run gets a fresh counting `LinearOperator` around the problem's
    matrix, so the products are counted whatever the estimator does (a
    ``matvec`` counts 1, a ``matmat`` of k columns k). A run that spends more
    than `budget` is kept but flagged (``over_budget``, and a warning is
    logged), never silently accepted. Its estimate is compared with the
    problem's exact eigenvalues by each metric (`l1_distance` with its default
    σ, `wasserstein1`, `ks_distance`, `extreme_error`); a `Curve` has no
    extreme eigenvalues, and its ``lambda_min_error`` and ``lambda_max_error``
    are NaN.

    Parameters
    ----------
    estimators : mapping of str to callable
        name → ``f(operator, budget, seed)`` returning any estimate the metrics
        accept (`SpectralDensity`, `KPMDensity`, `Discrete`, `Curve`, ...);
        `slq_estimator` and `kpm_estimator` adapt this library's.
    problems : sequence of Problem
        Each with exact eigenvalues.
    seeds : iterable of int
        The same seeds for every estimator and problem.
    budget : int
        Matrix–vector products each run may spend.
    metrics : sequence of {"l1", "w1", "ks", "extreme"}
        The metrics to record ("extreme" gives two columns).
    sigma : float, optional
        The Gaussian kernel width of ``"l1"`` and of the figure; default each
        problem's spectral width / 100. Pick one every estimator can resolve
        with the budget (SLQ with m steps resolves about width / m).
    figure : bool, default False
        Also draw `Comparison.plot` into ``Comparison.figure`` (matplotlib).

    Returns
    -------
    Comparison
        One `Record` per (estimator, problem, seed), in that nesting order.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, or an estimator that returns something that is not
        a valid spectral measure (the message names the estimator).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.testing import compare, slq_estimator
    >>> from slq.testing import matrix_with_spectrum
    >>> problem = matrix_with_spectrum(np.linspace(0.0, 1.0, 60), seed=0)
    >>> table = compare({"slq": slq_estimator(num_probes=2)}, [problem], seeds=[0, 1], budget=20)
    >>> [(r.seed, r.products, r.over_budget) for r in table]
    [(0, 20, False), (1, 20, False)]
    """
    runners = _check_estimators(estimators)
    cases = _check_problems(problems)
    seed_list = _check_seeds(seeds)
    budget = check_positive_int("budget", budget)
    names = _check_metrics(metrics)
    if sigma is not None:
        sigma = check_positive_float("sigma", sigma)
    check_bool("figure", figure)
    truths = {problem.name: as_measure(problem, "problem") for problem in cases}
    records: list[Record] = []
    shown: dict[tuple[str, str], Measure] = {}
    for problem in cases:
        for name, estimator in runners.items():
            for seed in seed_list:
                measure, products, seconds = _run_one(name, estimator, problem, budget, seed)
                values = _measure(name, measure, truths[problem.name], names, sigma)
                records.append(Record(name, problem.name, seed, budget, products, seconds, values))
                shown.setdefault((problem.name, name), measure)
    result = Comparison(tuple(records), truths, shown, sigma)
    return dataclasses.replace(result, figure=result.plot()) if figure else result

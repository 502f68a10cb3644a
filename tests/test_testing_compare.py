"""The comparison harness of `slq.testing`: counted products, shared seeds, refused garbage."""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any

import numpy as np
import pytest

import slq
from slq.testing import (
    Comparison,
    Curve,
    Discrete,
    Problem,
    compare,
    kpm_estimator,
    matrix_with_spectrum,
    slq_estimator,
)


@pytest.fixture(scope="module")
def problems() -> list[Any]:
    spectrum = np.concatenate([np.linspace(0.0, 1.0, 38), [3.0, 4.0]])
    flipped = dataclasses.replace(matrix_with_spectrum(-spectrum, seed=1), name="flipped")
    return [matrix_with_spectrum(spectrum, seed=0), flipped]


def _spy(calls: list[tuple[int, int]]) -> Any:
    """An estimator that records its seed, spends 3 products one way and 2 another."""

    def estimator(op: Any, budget: int, seed: int) -> Any:
        calls.append((seed, budget))
        op.matvec(np.ones(op.shape[0]))
        op.matmat(np.ones((op.shape[0], 2)))
        op.matvec(np.ones(op.shape[0]))
        return Discrete(np.linspace(-4.0, 4.0, 9))

    return estimator


def test_products_are_counted_and_seeds_shared(problems: list[Any]) -> None:
    first: list[tuple[int, int]] = []
    second: list[tuple[int, int]] = []
    table = compare({"a": _spy(first), "b": _spy(second)}, problems, seeds=[3, 5], budget=10)
    assert first == second == [(3, 10), (5, 10)] * 2
    assert [r.products for r in table] == [4] * 8
    assert [(r.problem, r.estimator, r.seed) for r in table][:4] == [
        (problems[0].name, "a", 3),
        (problems[0].name, "a", 5),
        (problems[0].name, "b", 3),
        (problems[0].name, "b", 5),
    ]
    assert not any(r.over_budget for r in table)
    assert set(table[0].metrics) == {"l1", "w1", "ks", "lambda_min_error", "lambda_max_error"}


def test_an_estimator_that_overspends_is_flagged(
    problems: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="slq"):
        table = compare({"spender": _spy([])}, problems[:1], seeds=[0], budget=3, metrics=["ks"])
    assert table[0].over_budget
    assert table[0].as_dict()["over_budget"]
    assert "'spender' spent 4 products" in caplog.text
    assert "| 4! |" in table.summary()


@pytest.mark.parametrize(
    ("returned", "error", "match"),
    [
        (None, TypeError, "got NoneType"),
        ((np.zeros(3), np.full(3, 0.5)), ValueError, "weights must sum to 1"),
        (np.array([0.0, np.nan]), ValueError, "nodes must be finite"),
    ],
)
def test_an_invalid_estimate_is_refused_naming_its_estimator(
    problems: list[Any], returned: Any, error: type[Exception], match: str
) -> None:
    def garbage(op: Any, budget: int, seed: int) -> Any:
        return returned

    with pytest.raises(error, match=f"estimator 'garbage' returned an invalid density.*{match}"):
        compare({"garbage": garbage}, problems[:1], seeds=[0], budget=5)


def test_a_curve_estimator_is_measured_but_has_no_extremes(problems: list[Any]) -> None:
    def histogram(op: Any, budget: int, seed: int) -> Curve:
        return Curve([-1.0, 5.0], [1 / 6, 1 / 6])

    table = compare(
        {"flat": histogram}, problems[:1], seeds=[0], budget=1, metrics=["ks", "extreme"]
    )
    assert 0.0 < table[0].metrics["ks"] < 1.0
    assert np.isnan(table[0].metrics["lambda_max_error"])
    assert table.summary().endswith("| — | — |")


def test_a_metric_that_fails_names_the_estimator(problems: list[Any]) -> None:
    def coarse(op: Any, budget: int, seed: int) -> Curve:
        return Curve([-1.0, 5.0], [1 / 6, 1 / 6])

    with pytest.raises(ValueError, match="estimator 'coarse': a Curve's grid spacing 6"):
        compare({"coarse": coarse}, problems[:1], seeds=[0], budget=1, metrics=["l1"])


def test_slq_and_kpm_spend_their_budget_and_are_measured(problems: list[Any]) -> None:
    runs = {"slq": slq_estimator(num_probes=2), "kpm": kpm_estimator(num_probes=2)}
    table = compare(runs, problems, seeds=[0, 1], budget=64, sigma=0.2, figure=True)
    assert {r.products for r in table} == {64}
    for record in table:
        assert record.metrics["ks"] < 0.2, record
        assert record.metrics["l1"] < 0.3, record
    assert table.figure is not None
    assert len(table.figure.axes) == 2
    lines = table.summary().splitlines()
    assert len(lines) == 2 + 4
    assert "± " in lines[2]


def test_to_pandas_says_how_to_install_pandas(
    problems: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = compare({"a": _spy([])}, problems[:1], seeds=[0], budget=9, metrics=["ks"])
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        table.to_pandas()


def test_a_comparison_is_a_sequence_of_records(problems: list[Any]) -> None:
    table = compare({"a": _spy([])}, problems, seeds=[0], budget=9, metrics=["w1"])
    assert isinstance(table, Comparison)
    assert len(table) == 2
    assert [r.problem for r in table] == [p.name for p in problems]


def test_the_estimators_refuse_a_budget_they_cannot_use() -> None:
    a = np.diag(np.linspace(0.0, 1.0, 20))
    with pytest.raises(ValueError, match="budget must be >= 4 products for 4 SLQ probes, got 3"):
        slq_estimator(num_probes=4)(a, 3, 0)
    with pytest.raises(ValueError, match="budget must be >= 22 products for KPM with 2 probes"):
        kpm_estimator(num_probes=2)(a, 21, 0)
    assert kpm_estimator(num_probes=2, bounds=(-0.5, 1.5))(a, 10, 0).num_matvecs == 10
    with pytest.raises(TypeError, match="num_steps is set by the comparison"):
        slq_estimator(num_steps=5)


BAD = [
    ({"estimators": {}}, TypeError, "estimators must be a non-empty mapping"),
    ({"estimators": {"a": 3}}, TypeError, "estimator 'a' must be callable"),
    ({"estimators": {1: slq_estimator()}}, TypeError, "estimator names must be strings"),
    ({"problems": []}, TypeError, "problems must be a non-empty sequence"),
    ({"problems": [np.eye(3)]}, TypeError, "each of problems must be a Problem, got ndarray"),
    ({"problems": [Problem("x", np.eye(2), np.ones(2))] * 2}, ValueError, "distinct names"),
    ({"seeds": []}, ValueError, "seeds must hold at least one seed"),
    ({"seeds": [-1]}, ValueError, "each of seeds must be >= 0"),
    ({"seeds": "01"}, TypeError, "seeds must be an iterable of ints"),
    ({"budget": 0}, ValueError, "budget must be >= 1"),
    ({"budget": 2.5}, TypeError, "budget must be an integer"),
    ({"metrics": ["l2"]}, ValueError, "metrics must be a non-empty sequence of names"),
    ({"metrics": "l1"}, TypeError, "metrics must be a sequence of names"),
    ({"sigma": -1.0}, ValueError, "sigma must be a finite number > 0"),
    ({"figure": "yes"}, TypeError, "figure must be True or False"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD, ids=[b[2] for b in BAD])
def test_bad_arguments_are_refused_by_name(
    problems: list[Any], change: dict[str, Any], error: type[Exception], match: str
) -> None:
    calls: list[tuple[int, int]] = []
    arguments: dict[str, Any] = {
        "estimators": {"spy": _spy(calls)},
        "problems": problems[:1],
        "seeds": [0],
        "budget": 10,
    }
    with pytest.raises(error, match=match):
        compare(**{**arguments, **change})
    assert not calls, "an estimator ran before the arguments were checked"


BAD_ESTIMATORS = [
    (kpm_estimator, {"num_probes": 0}, ValueError, "num_probes must be >= 1"),
    (kpm_estimator, {"damping": "fejer"}, ValueError, "damping must be one of"),
    (kpm_estimator, {"bounds": (1.0, 0.0)}, ValueError, "bounds must be finite with a < b"),
    (slq_estimator, {"num_probes": "2"}, TypeError, "num_probes must be an integer"),
]


@pytest.mark.parametrize(("make", "options", "error", "match"), BAD_ESTIMATORS)
def test_the_estimators_check_their_options_when_made(
    make: Any, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make(**options)


def test_slq_estimator_is_slq_density_with_the_budget_split() -> None:
    a = matrix_with_spectrum(np.linspace(-1.0, 1.0, 30), seed=0).matrix
    dos = slq_estimator(num_probes=3, probe="gaussian")(a, 31, 7)
    direct = slq.density(a, num_steps=10, num_probes=3, seed=7, probe="gaussian")
    np.testing.assert_array_equal(dos.alpha, direct.alpha)

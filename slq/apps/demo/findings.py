"""The six findings of Ghorbani, Krishnan & Xiao (2019), each a statistic with a verdict."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from slq.apps.demo.config import NETWORKS, Config
from slq.apps.demo.statistics import (
    combine,
    isolated,
    overall,
    seed_stats,
    separation,
    verdict,
    wasserstein,
)
from slq.apps.demo.training import Run

__all__ = ["FIGURES", "all_findings"]

FIGURES = {
    "quadrature-vs-exact": "quadrature_vs_exact.png",
    "negative-mass-vanishes-early": "negative_mass.png",
    "bulk-stabilises": "bulk_stabilises.png",
    "learning-rate-drop": "learning_rate_drop.png",
    "batchnorm-suppresses-outliers": "batchnorm_outliers.png",
    "population-statistics-restore-outliers": "population_statistics.png",
}
NEGATIVE_THRESHOLD = 0.01  # of λ_max at initialisation, fixed for the whole run
# Thresholds of "matches": L1 between densities (at most 2) and W₁ over the spectrum's width.
MAX_L1, MAX_W1 = 0.1, 0.01


def _finding(key: str, claim: str, statistic: str, values: Any, uncertainty: Any, v: str) -> dict:
    return {
        "id": key,
        "claim": claim,
        "statistic": statistic,
        "values": values,
        "uncertainty": uncertainty,
        "verdict": v,
        "figure": FIGURES[key],
    }


def all_findings(runs: dict[str, list[Run]], exact: dict[str, Any], config: Config) -> list[dict]:
    """Return the six findings, in the order of the paper's argument."""
    return [
        quadrature_vs_exact(exact),
        negative_mass(runs),
        bulk_stabilises(runs, config),
        learning_rate_drop(runs, config),
        batchnorm_outliers(runs),
        population_statistics(runs),
    ]


def quadrature_vs_exact(exact: dict[str, Any]) -> dict:
    eig = exact["eigenvalues"]
    width = float(eig[-1] - eig[0])
    k = len(exact["w1_per_probe"])
    l1_se = float(np.std(exact["l1_per_probe"], ddof=1) / math.sqrt(k)) if k > 1 else math.nan
    w1_se = float(np.std(exact["w1_per_probe"], ddof=1) / math.sqrt(k)) if k > 1 else math.nan
    dos = exact["density"]
    values = {
        "num_params": exact["num_params"],
        "num_steps": dos.num_steps,
        "num_probes": dos.num_probes,
        "sigma": exact["sigma"],
        "l1": exact["l1"],
        "w1": exact["w1"],
        "w1_relative": exact["w1"] / width,
        "exact_lambda_min": float(eig[0]),
        "exact_lambda_max": float(eig[-1]),
        "slq_lambda_min": dos.lambda_min,
        "slq_lambda_max": dos.lambda_max,
    }
    uncertainty = {"l1_probe_se": l1_se, "w1_probe_se": w1_se}
    parts = [
        verdict(MAX_L1 - exact["l1"], l1_se),
        verdict(MAX_W1 * width - exact["w1"], w1_se),
    ]
    return _finding(
        "quadrature-vs-exact",
        "SLQ with about 90 Lanczos steps matches the exact eigenvalue density of a small network.",
        f"L1 between the smoothed densities (≤ {MAX_L1} to match) and W₁ between the Gauss "
        f"measures and the exact eigenvalues (≤ {MAX_W1} of the spectrum's width)",
        values,
        uncertainty,
        overall(parts),
    )


def _mass(run: Run, index: int) -> Any:
    threshold = NEGATIVE_THRESHOLD * run.points[0].density.lambda_max
    return run.points[index].density.negative_mass(threshold)


def negative_mass(runs: dict[str, list[Run]]) -> dict:
    epochs = [p.epoch for p in runs["no_bn"][0].points]
    first = epochs.index(1.0)
    values: dict[str, Any] = {"epochs": epochs, "first_epoch_index": first}
    uncertainty: dict[str, Any] = {}
    parts = []
    for name, group in runs.items():
        masses = [[_mass(run, i) for i in range(len(epochs))] for run in group]
        track = [seed_stats([m[i].value for m in masses]) for i in range(len(epochs))]
        probe_se = [float(np.mean([m[i].stderr for m in masses])) for i in range(len(epochs))]
        lower = [float(np.mean([m[i].lower for m in masses])) for i in range(len(epochs))]
        upper = [float(np.mean([m[i].upper for m in masses])) for i in range(len(epochs))]
        m0, m1 = track[0], track[first]
        error = combine(m0["se"], m1["se"], probe_se[0], probe_se[first])
        # Vanishes "largely": at most half of it left after epoch 1, beyond the errors
        # and with the brackets apart.
        part = verdict(0.5 * m0["mean"] - m1["mean"], error)
        if part == "reproduced" and upper[first] >= lower[0]:
            part = "inconclusive"
        parts.append(part)
        values[name] = {
            "mass": [t["mean"] for t in track],
            "lower": lower,
            "upper": upper,
            "left_after_epoch_1": m1["mean"] / m0["mean"] if m0["mean"] > 0 else math.nan,
            "verdict": part,
        }
        uncertainty[name] = {"seed_se": [t["se"] for t in track], "probe_se": probe_se}
    return _finding(
        "negative-mass-vanishes-early",
        "The negative eigenvalue mass present at initialisation largely vanishes early in "
        "training.",
        f"fraction of eigenvalues below −{NEGATIVE_THRESHOLD} λ_max(init) (a threshold fixed "
        "for the run), seed mean; reproduced when at most half of it is left after epoch 1",
        values,
        uncertainty,
        overall(parts),
    )


def bulk_stabilises(runs: dict[str, list[Run]], config: Config) -> dict:
    epochs = [p.epoch for p in runs["no_bn"][0].points]
    ends = [i for i, e in enumerate(epochs) if e >= 1.0 and float(e).is_integer()]
    values: dict[str, Any] = {"epochs": [epochs[i] for i in ends[1:]]}
    uncertainty: dict[str, Any] = {}
    parts = []
    for name, group in runs.items():
        first = [wasserstein(r.points[0].density, r.points[ends[0]].density) for r in group]
        steps = [
            [wasserstein(r.points[a].density, r.points[b].density) for a, b in _pairs(ends)]
            for r in group
        ]
        late_end = min(config.drop_epoch, len(ends)) - 1  # before the learning-rate drop
        late = [float(np.mean(s[:late_end])) for s in steps]
        ratio = seed_stats([lt / f for lt, f in zip(late, first, strict=True)])
        k = group[0].points[-1].density.num_probes // 2
        floor = [_halves(r.points[-1].density, k) if k else math.nan for r in group]
        part = verdict(0.5 - ratio["mean"], ratio["se"])
        if seed_stats(first)["mean"] <= 2.0 * float(np.mean(floor)):
            part = "inconclusive"  # the change across epoch 1 is within probe noise
        parts.append(part)
        per_epoch = [seed_stats([s[i] for s in steps]) for i in range(len(steps[0]))]
        values[name] = {
            "w1_first_epoch": seed_stats(first)["mean"],
            "w1_per_epoch": [t["mean"] for t in per_epoch],
            "late_over_first": ratio["mean"],
            "probe_noise_w1": float(np.mean(floor)),
            "verdict": part,
        }
        uncertainty[name] = {
            "w1_first_epoch_seed_se": seed_stats(first)["se"],
            "w1_per_epoch_seed_se": [t["se"] for t in per_epoch],
            "late_over_first_seed_se": ratio["se"],
        }
    return _finding(
        "bulk-stabilises",
        "After a short initial phase the bulk of the spectrum changes little.",
        "W₁ between consecutive epochs' densities before the learning-rate drop, over W₁ "
        "across epoch 1 (seed mean); reproduced when below 0.5",
        values,
        uncertainty,
        overall(parts),
    )


def _pairs(indices: list[int]) -> list[tuple[int, int]]:
    return list(itertools.pairwise(indices))


def _halves(dos: Any, k: int) -> float:
    """W₁ between the first k probes' measure and the next k's: the probe noise of W₁."""
    from scipy.stats import wasserstein_distance

    a, b = slice(0, k), slice(k, 2 * k)
    return float(
        wasserstein_distance(
            dos.nodes[a].ravel(),
            dos.nodes[b].ravel(),
            dos.weights[a].ravel(),
            dos.weights[b].ravel(),
        )
    )


def learning_rate_drop(runs: dict[str, list[Run]], config: Config) -> dict:
    epochs = [p.epoch for p in runs["no_bn"][0].points]
    before = epochs.index(float(config.drop_epoch))
    values: dict[str, Any] = {"epochs": epochs, "drop_epoch": config.drop_epoch}
    uncertainty: dict[str, Any] = {}
    parts = []
    for name, group in runs.items():
        tops = [[p.density.lambda_max for p in r.points] for r in group]
        track = [seed_stats([t[i] for t in tops]) for i in range(len(epochs))]
        ratio = seed_stats([t[-1] / t[before] for t in tops])
        counts = {
            "before": seed_stats([len(isolated(r.points[before].density)) for r in group])["mean"],
            "after": seed_stats([len(isolated(r.points[-1].density)) for r in group])["mean"],
        }
        part = verdict(ratio["mean"] - 1.0, ratio["se"])
        parts.append(part)
        values[name] = {
            "lambda_max": [t["mean"] for t in track],
            "after_over_before": ratio["mean"],
            "isolated_count": counts,
            "verdict": part,
        }
        uncertainty[name] = {
            "lambda_max_seed_se": [t["se"] for t in track],
            "after_over_before_seed_se": ratio["se"],
        }
    return _finding(
        "learning-rate-drop",
        "After a learning-rate drop the top eigenvalues grow: the outliers move further out.",
        f"λ_max at the end over λ_max just before the drop (learning rate / 10 after epoch "
        f"{config.drop_epoch}), seed mean; reproduced when above 1",
        values,
        uncertainty,
        overall(parts),
    )


def _separations(densities: list[Any]) -> tuple[dict[str, Any], float, float]:
    pairs = [separation(d) for d in densities]
    stats = seed_stats([p[0] for p in pairs])
    probe_se = float(np.nanmean([p[1] for p in pairs]))
    counts = float(np.mean([len(isolated(d)) for d in densities]))
    return stats, probe_se, counts


def _compare(a: list[Any], b: list[Any], labels: tuple[str, str]) -> tuple[dict, dict, str]:
    """Compare the separations λ_max / bulk edge of two sets of densities (a should exceed b)."""
    (sa, pa, ca), (sb, pb, cb) = _separations(a), _separations(b)
    error = combine(sa["se"], sb["se"], pa, pb)
    part = verdict(sa["mean"] - sb["mean"], error)
    if part == "reproduced" and ca < cb:
        part = "inconclusive"
    values = {
        labels[0]: {
            "separation": sa["mean"],
            "separation_per_seed": sa["per_seed"],
            "lambda_max": float(np.mean([d.lambda_max for d in a])),
            "isolated_count": ca,
            "isolated": isolated(a[0]),
        },
        labels[1]: {
            "separation": sb["mean"],
            "separation_per_seed": sb["per_seed"],
            "lambda_max": float(np.mean([d.lambda_max for d in b])),
            "isolated_count": cb,
            "isolated": isolated(b[0]),
        },
    }
    uncertainty = {
        labels[0]: {"separation_seed_se": sa["se"], "separation_probe_se": pa},
        labels[1]: {"separation_seed_se": sb["se"], "separation_probe_se": pb},
        "difference_se": error,
    }
    return values, uncertainty, part


def batchnorm_outliers(runs: dict[str, list[Run]]) -> dict:
    ends = {name: [r.points[-1].density for r in group] for name, group in runs.items()}
    values, uncertainty, part = _compare(ends["no_bn"], ends["bn"], ("no_bn", "bn"))
    return _finding(
        "batchnorm-suppresses-outliers",
        "Without BatchNorm large isolated eigenvalues appear; BatchNorm suppresses them.",
        "λ_max over the bulk edge (the 0.99 quantile) at the end of training, and the number of "
        "isolated eigenvalues (positive, multiplicity ≥ 1, at least twice the bulk edge), "
        f"{NETWORKS['no_bn']} vs {NETWORKS['bn']}, seed mean",
        values,
        uncertainty,
        part,
    )


def population_statistics(runs: dict[str, list[Run]]) -> dict:
    evals = [r.eval_density for r in runs["bn"]]
    trains = [r.points[-1].density for r in runs["bn"]]
    values, uncertainty, part = _compare(evals, trains, ("eval", "train"))
    return _finding(
        "population-statistics-restore-outliers",
        "With running (population) statistics instead of batch statistics in BatchNorm, the "
        "outliers return.",
        "λ_max over the bulk edge of the trained BN network's Hessian, batchnorm='eval' vs "
        "'train', seed mean",
        values,
        uncertainty,
        part,
    )

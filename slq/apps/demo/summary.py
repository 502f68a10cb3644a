"""The summary: every measurement as plain numbers, and the comparisons the report states."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from slq.apps.demo.config import CHECKPOINTS, NETWORKS, TEST_SIZE, THRESHOLD, Config
from slq.apps.demo.measuring import Point, Study

__all__ = ["change", "comparison", "make_summary", "record"]


def record(point: Point) -> dict[str, Any]:
    """Return one measurement as plain numbers (see `run` for the fields)."""
    dos = point.density
    outliers = dos.outliers()
    ratio = dos.extreme_ratio() if dos.lambda_max > 0.0 else None
    threshold = THRESHOLD * max(dos.lambda_max, 0.0)
    return {
        "epoch": point.epoch,
        "step": point.step,
        **point.metrics,
        "lambda_min": dos.lambda_min,
        "lambda_max": dos.lambda_max,
        "negative_mass": dataclasses.asdict(dos.negative_mass()),
        "negative_mass_below": dataclasses.asdict(dos.negative_mass(threshold)),
        "extreme_ratio": None
        if ratio is None
        else {"value": ratio.value, "lower": ratio.lower, "upper": ratio.upper},
        "outliers": {
            "count": len(outliers),
            "positions": outliers.positions.tolist(),
            "counts": outliers.counts.tolist(),
            "masses": outliers.masses.tolist(),
            "total_mass": outliers.mass,
        },
        "bulk": list(outliers.bulk),
        "num_steps": dos.num_steps,
        "num_probes": dos.num_probes,
        "num_matvecs": dos.num_matvecs,
        "wall_time_s": point.seconds,
    }


def _network_summary(study: Study) -> dict[str, Any]:
    return {
        "label": NETWORKS[study.name],
        "num_params": study.num_params,
        "hessian_products": study.hvp,
        "checkpoints": {name: record(study.checkpoints[name]) for name in CHECKPOINTS},
        "track": [record(point) for point in study.points],
    }


def _separation(measured: dict[str, Any]) -> float:
    """λ_max over the bulk's upper edge: how far the top eigenvalue stands out (nan if no edge)."""
    edge = measured["bulk"][1]
    return measured["lambda_max"] / edge if edge > 0.0 else math.nan


def comparison(networks: dict[str, Any]) -> dict[str, Any]:
    """Return the end-of-training comparisons the report's sentences are made from."""
    end = {name: networks[name]["checkpoints"]["end"] for name in NETWORKS}
    return {
        "lambda_max_ratio": end["no_bn"]["lambda_max"] / end["bn"]["lambda_max"],
        "separation": {name: _separation(r) for name, r in end.items()},
        "num_outliers": {name: r["outliers"]["count"] for name, r in end.items()},
        "negative_mass": _per_checkpoint(networks, "negative_mass"),
        "negative_mass_below": _per_checkpoint(networks, "negative_mass_below"),
        "negative_mass_below_change": {
            name: {
                later: change(c["init"]["negative_mass_below"], c[later]["negative_mass_below"])
                for later in ("epoch_1", "end")
            }
            for name, c in ((n, networks[n]["checkpoints"]) for n in NETWORKS)
        },
    }


def _per_checkpoint(networks: dict[str, Any], key: str) -> dict[str, dict[str, float]]:
    return {
        name: {c: networks[name]["checkpoints"][c][key]["value"] for c in CHECKPOINTS}
        for name in NETWORKS
    }


def _interval(mass: dict[str, Any]) -> tuple[float, float]:
    """Return a mass' bracket widened by two standard errors: where it may lie."""
    stderr = mass["stderr"] if math.isfinite(mass["stderr"]) else 0.0
    return mass["lower"] - 2.0 * stderr, mass["upper"] + 2.0 * stderr


def change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Return "falls", "rises" or "unresolved": whether the two masses' intervals separate."""
    (low_before, high_before), (low_after, high_after) = _interval(before), _interval(after)
    if high_after < low_before:
        return "falls"
    if low_after > high_before:
        return "rises"
    return "unresolved"


def make_summary(
    config: Config, seed: int, quick: bool, studies: dict[str, Study]
) -> dict[str, Any]:
    """Return what ``summary.json`` holds, but for the wall time and the files."""
    import torch

    networks = {name: _network_summary(study) for name, study in studies.items()}
    first = studies["no_bn"].points[0].density
    return {
        "paper": "Ghorbani, Krishnan & Xiao (2019), An investigation into neural net "
        "optimization via Hessian eigenvalue density, ICML",
        "quick": quick,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "data": {
            "dataset": "sklearn.datasets.load_digits (8x8), standardised per pixel",
            "train": config.num_train,
            "test": TEST_SIZE,
        },
        "hessian": {
            "loss": "mean cross-entropy over the training set",
            "batchnorm": "train (statistics of each batch)",
            "batch_size": config.batch_size,
            "reorthogonalize": first.reorthogonalize,
            "probe": first.probe,
        },
        "networks": networks,
        "comparison": comparison(networks),
        "wall_time_s": math.nan,  # set once the figures are drawn
        "torch_version": torch.__version__,
    }

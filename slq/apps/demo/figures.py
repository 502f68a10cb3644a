"""One figure per finding, drawn from the finding's own numbers; the plotted data beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from slq.apps.demo.config import NETWORKS
from slq.apps.demo.training import Run
from slq.persistence import json_ready

__all__ = ["write_figures"]

_COLORS = {"no_bn": "C3", "bn": "C0", "eval": "C2", "train": "C0"}


def _figure(ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2 * ncols, 4.2), layout="constrained")
    return figure, figure.subplots(1, ncols)


def _save(figure: Any, path: Path, plotted: dict[str, Any]) -> list[Path]:
    """Save the PNG and, beside it, the numbers it shows (``name.json``)."""
    figure.savefig(path, dpi=110)
    data = path.with_suffix(".json")
    data.write_text(json.dumps(json_ready(plotted), indent=1, allow_nan=False), encoding="utf-8")
    return [path, data]


def write_figures(
    path: Path, findings: list[dict], runs: dict[str, list[Run]], exact: dict[str, Any]
) -> list[Path]:
    """Draw each finding's figure into the folder `path`; return the files written."""
    by_id = {f["id"]: f for f in findings}
    draw = {
        "quadrature-vs-exact": lambda f: _exact(f, exact),
        "negative-mass-vanishes-early": _negative_mass,
        "bulk-stabilises": lambda f: _bulk(f, runs),
        "learning-rate-drop": _learning_rate,
        "batchnorm-suppresses-outliers": lambda f: _outliers(f, runs, ("no_bn", "bn")),
        "population-statistics-restore-outliers": lambda f: _outliers(f, runs, ("eval", "train")),
    }
    files: list[Path] = []
    for key, function in draw.items():
        figure, plotted = function(by_id[key])
        figure.suptitle(f"{key}: {by_id[key]['verdict']}", fontsize="medium")
        files += _save(figure, path / by_id[key]["figure"], plotted)
    return files


def _errorbars(ax: Any, x: Any, y: Any, err: Any, label: str, color: str) -> dict[str, Any]:
    ax.errorbar(x, y, yerr=err, fmt="o-", ms=4, capsize=3, lw=1, color=color, label=label)
    return {"x": list(x), "y": list(y), "yerr": list(err)}


def _two_se(*errors: list[float]) -> list[float]:
    """Error bars: two combined standard errors (seeds and probes) per point."""
    a = np.sqrt(sum(np.nan_to_num(np.asarray(e, dtype=float)) ** 2 for e in errors))
    return (2.0 * a).tolist()


def _exact(finding: dict, exact: dict[str, Any]) -> tuple[Any, dict]:
    figure, ax = _figure()
    v, u = finding["values"], finding["uncertainty"]
    grid = exact["grid"]
    floor = float(exact["exact_curve"].max()) * 1e-5
    ax.semilogy(grid, np.maximum(exact["exact_curve"], floor), "k", lw=2, label="exact (eigh)")
    ax.semilogy(
        grid,
        np.maximum(exact["slq_curve"], floor),
        "C1--",
        lw=1.5,
        label=f"SLQ, {v['num_steps']} steps × {v['num_probes']} probes",
    )
    ax.set_ylim(floor, None)
    ax.set_xlabel(r"eigenvalue $\lambda$")
    ax.set_ylabel(rf"density (Gaussian $\sigma$ = {v['sigma']:.2g})")
    ax.set_title(
        f"n = {v['num_params']}: $L_1$ = {v['l1']:.3g} ± {u['l1_probe_se']:.2g}, "
        f"$W_1$ = {v['w1']:.3g} ± {u['w1_probe_se']:.2g}",
        fontsize="small",
    )
    ax.legend(frameon=False)
    return figure, {
        "l1": v["l1"],
        "w1": v["w1"],
        "l1_se": u["l1_probe_se"],
        "w1_se": u["w1_probe_se"],
    }


def _negative_mass(finding: dict) -> tuple[Any, dict]:
    figure, ax = _figure()
    v, u = finding["values"], finding["uncertainty"]
    plotted = {}
    for name in NETWORKS:
        err = _two_se(u[name]["seed_se"], u[name]["probe_se"])
        plotted[name] = _errorbars(
            ax, v["epochs"], v[name]["mass"], err, NETWORKS[name], _COLORS[name]
        )
        ax.fill_between(
            v["epochs"], v[name]["lower"], v[name]["upper"], color=_COLORS[name], alpha=0.15, lw=0
        )
    ax.set_xscale("symlog", linthresh=v["epochs"][1] or 0.1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"fraction of eigenvalues below $-0.01\,\lambda_{\max}^{\mathrm{init}}$")
    ax.set_title("seed mean ± 2 s.e.; shaded: quadrature bracket", fontsize="small")
    ax.legend(frameon=False)
    return figure, plotted


def _bulk(finding: dict, runs: dict[str, list[Run]]) -> tuple[Any, dict]:
    from slq.plotting import plot_densities

    figure, (left, right) = _figure(2)
    run = runs["no_bn"][0]
    picks = [0, next(i for i, p in enumerate(run.points) if p.epoch == 1.0), len(run.points) - 1]
    plot_densities(
        [run.points[i].density for i in picks],
        labels=[f"epoch {run.points[i].epoch:g}" for i in picks],
        ax=left,
        colors=["C7", "C1", "C3"],
        band=False,
    )
    left.set_title(f"{NETWORKS['no_bn']}, seed {run.seed}", fontsize="small")
    v, u = finding["values"], finding["uncertainty"]
    plotted = {}
    for name in NETWORKS:
        err = _two_se(u[name]["w1_per_epoch_seed_se"])
        x = v["epochs"]
        plotted[name] = _errorbars(
            right, x, v[name]["w1_per_epoch"], err, NETWORKS[name], _COLORS[name]
        )
        right.axhline(v[name]["w1_first_epoch"], color=_COLORS[name], ls="--", lw=1)
        right.axhline(v[name]["probe_noise_w1"], color=_COLORS[name], ls=":", lw=1)
    right.set_yscale("log")
    right.set_xlabel("epoch e")
    right.set_ylabel(r"$W_1$(density at $e-1$, density at $e$)")
    right.set_title("dashed: $W_1$ across epoch 1; dotted: probe noise", fontsize="small")
    right.legend(frameon=False)
    return figure, plotted


def _learning_rate(finding: dict) -> tuple[Any, dict]:
    figure, ax = _figure()
    v, u = finding["values"], finding["uncertainty"]
    plotted = {}
    for name in NETWORKS:
        err = _two_se(u[name]["lambda_max_seed_se"])
        plotted[name] = _errorbars(
            ax, v["epochs"], v[name]["lambda_max"], err, NETWORKS[name], _COLORS[name]
        )
    ax.axvline(v["drop_epoch"], color="k", ls=":", lw=1, label="learning rate / 10")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"$\lambda_{\max}$")
    ax.set_title("seed mean ± 2 s.e.", fontsize="small")
    ax.legend(frameon=False)
    return figure, plotted


def _outliers(finding: dict, runs: dict[str, list[Run]], keys: tuple[str, str]) -> tuple[Any, dict]:
    from slq.plotting import plot_densities

    figure, (left, right) = _figure(2)
    if keys == ("no_bn", "bn"):
        densities = [runs["no_bn"][0].points[-1].density, runs["bn"][0].points[-1].density]
        labels = [NETWORKS["no_bn"], NETWORKS["bn"]]
    else:
        population = runs["bn"][0].eval_density
        assert population is not None, "the BN network is measured with population statistics"
        densities = [population, runs["bn"][0].points[-1].density]
        labels = ["BN, population statistics", "BN, batch statistics"]
    plot_densities(densities, labels=labels, ax=left, colors=[_COLORS[k] for k in keys], band=False)
    left.set_title("end of training, seed 0", fontsize="small")
    v, u = finding["values"], finding["uncertainty"]
    plotted = {}
    for i, key in enumerate(keys):
        se = np.hypot(u[key]["separation_seed_se"], np.nan_to_num(u[key]["separation_probe_se"]))
        right.errorbar(
            [i], [v[key]["separation"]], yerr=[2.0 * se], fmt="o", capsize=4, color=_COLORS[key]
        )
        seeds = v[key]["separation_per_seed"]
        right.plot([i + 0.1] * len(seeds), seeds, "x", color=_COLORS[key], ms=5)
        plotted[key] = {
            "separation": v[key]["separation"],
            "yerr": 2.0 * float(se),
            "per_seed": seeds,
        }
    right.set_xticks([0, 1], labels)
    right.set_xlim(-0.5, 1.5)
    right.set_ylabel(r"$\lambda_{\max}$ / bulk edge")
    right.set_title("seed mean ± 2 s.e.; ×: each seed", fontsize="small")
    return figure, plotted

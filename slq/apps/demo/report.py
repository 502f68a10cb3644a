"""The report: ``summary.md``, its table and the findings it draws from the numbers."""

from __future__ import annotations

import math
from typing import Any

from slq.apps.demo.config import CHECKPOINTS, NETWORKS, THRESHOLD

__all__ = ["markdown", "outlier_finding"]


def markdown(summary: dict[str, Any], figures: list[str]) -> str:
    """Return ``summary.md``: what was measured, a table, and findings made from the numbers."""
    data, config = summary["data"], summary["config"]
    lines = [
        "# Hessian eigenvalue density of a small CNN on digits, with and without BatchNorm",
        "",
        f"A reproduction at laptop scale of {summary['paper']}.",
        "",
        f"Data: {data['dataset']}; {data['train']} training and {data['test']} test images. "
        f"Training: SGD (momentum 0.9, learning rate {config['learning_rate']}), batches of "
        f"{config['batch_size']}, {config['epochs']} epochs, the same initial weights for both "
        "networks. Hessian: of the mean training loss, with BatchNorm in train mode over fixed "
        f"batches of {config['batch_size']}; `slq.density` with full reorthogonalisation, "
        f"{config['num_steps']} Lanczos steps x {config['num_probes']} probes at the checkpoints "
        f"below, {config['track_steps']} x {config['track_probes']} at the points tracked in "
        "between (see the figures). Negative mass: the fraction of eigenvalues below 0, ± its "
        "probe standard error, [its Chebyshev-Markov-Stieltjes bracket]. Outliers: converged "
        "Ritz values more than one bulk width outside the bulk (`SpectralDensity.outliers`).",
        "",
        *_table(summary),
        "",
        "## Findings",
        "",
        *_findings(summary),
        "",
        f"Wall time: {summary['wall_time_s']:.1f} s (torch {summary['torch_version']}).",
        "",
        "## Figures",
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
    ]
    return "\n".join(lines)


def _table(summary: dict[str, Any]) -> list[str]:
    header = (
        "| network | checkpoint | train loss | train acc | test acc | λ_min | λ_max "
        "| \\|λ_min\\|/λ_max | mass below 0 | mass below -λ_max/100 | outliers | products "
        "| SLQ time |"
    )
    lines = [header, "|" + "---|" * 13]
    for network in summary["networks"].values():
        for checkpoint, r in network["checkpoints"].items():
            mass, below = r["negative_mass"], r["negative_mass_below"]
            ratio = r["extreme_ratio"]["value"] if r["extreme_ratio"] else math.nan
            cells = [
                f"{network['label']} (n = {network['num_params']})",
                CHECKPOINTS[checkpoint],
                f"{r['train_loss']:.3f}",
                f"{r['train_accuracy']:.3f}",
                f"{r['test_accuracy']:.3f}",
                f"{r['lambda_min']:.3g}",
                f"{r['lambda_max']:.3g}",
                f"{ratio:.3g}",
                f"{mass['value']:.3f} ± {mass['stderr']:.3f} "
                f"[{mass['lower']:.3f}, {mass['upper']:.3f}]",
                f"{below['value']:.4f} ± {below['stderr']:.4f} "
                f"[{below['lower']:.4f}, {below['upper']:.4f}]",
                _outlier_cell(r["outliers"]),
                str(r["num_matvecs"]),
                f"{r['wall_time_s']:.1f} s",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _outlier_cell(outliers: dict[str, Any]) -> str:
    if not outliers["count"]:
        return "none"
    shown = ", ".join(f"{p:.3g}" for p in sorted(outliers["positions"], reverse=True)[:4])
    more = ", …" if outliers["count"] > 4 else ""
    return f"{outliers['count']} (at {shown}{more})"


def _findings(summary: dict[str, Any]) -> list[str]:
    return [outlier_finding(summary), "", _negative_mass_finding(summary)]


def outlier_finding(summary: dict[str, Any]) -> str:
    """Say how far the top eigenvalue stands out with and without BN, and what that means."""
    comparison = summary["comparison"]
    end = {name: summary["networks"][name]["checkpoints"]["end"] for name in NETWORKS}
    sep, count = comparison["separation"], comparison["num_outliers"]
    text = (
        f"At the end of training the largest eigenvalue without BN is "
        f"{comparison['lambda_max_ratio']:.3g} times that with BN "
        f"({end['no_bn']['lambda_max']:.3g} vs {end['bn']['lambda_max']:.3g}); it stands "
        f"{sep['no_bn']:.3g} times the bulk's upper edge without BN and {sep['bn']:.3g} times "
        f"with BN, and {count['no_bn']} vs {count['bn']} converged outliers were found. "
    )
    if not (math.isfinite(sep["no_bn"]) and math.isfinite(sep["bn"])):
        return text + "(A bulk edge at or below zero leaves the separation undefined.)"
    apart = sep["no_bn"] > sep["bn"]
    return text + (
        "Ghorbani, Krishnan & Xiao find large isolated eigenvalues without BN that BN "
        f"suppresses: here the top eigenvalue stands further from the bulk "
        f"{'without' if apart else 'with'} BN, "
        f"{'in line with' if apart else 'unlike'} that finding."
    )


_CHANGES = {
    "falls": "falls",
    "rises": "rises",
    "unresolved": "no change beyond the bracket ± 2 stderr",
}


def _negative_mass_finding(summary: dict[str, Any]) -> str:
    comparison = summary["comparison"]
    parts = []
    for name, network in summary["networks"].items():
        masses = [network["checkpoints"][c]["negative_mass_below"] for c in CHECKPOINTS]
        change = comparison["negative_mass_below_change"][name]
        parts.append(
            f"{network['label']} from {_mass(masses[0])} at initialisation to "
            f"{_mass(masses[1])} after epoch 1 ({_CHANGES[change['epoch_1']]}) and "
            f"{_mass(masses[2])} at the end ({_CHANGES[change['end']]})"
        )
    changes = comparison["negative_mass_below_change"]
    return (
        f"The fraction of eigenvalues below -λ_max/{1 / THRESHOLD:.0f} (negative curvature at "
        f"least {THRESHOLD:.0%} as strong as the largest positive one) goes {parts[0]}; "
        f"{parts[1]}. {_zero_cluster_sentence(summary)}Ghorbani, Krishnan & Xiao find that "
        "negative eigenvalues largely disappear early in training: here this mass falls beyond "
        f"its uncertainty {_where_falls(changes, 'epoch_1')} over the first epoch and "
        f"{_where_falls(changes, 'end')} by the end of training."
    )


def _where_falls(changes: dict[str, dict[str, str]], checkpoint: str) -> str:
    falls = [NETWORKS[name] for name, c in changes.items() if c[checkpoint] == "falls"]
    if len(falls) == 1:
        return f"only {falls[0]}"
    return "in both networks" if falls else "in neither network"


def _mass(mass: dict[str, Any]) -> str:
    return f"{mass['value']:.4f} [{mass['lower']:.4f}, {mass['upper']:.4f}]"


def _zero_cluster_sentence(summary: dict[str, Any]) -> str:
    """Say whether the mass below 0 itself is resolved, from its brackets at the end."""
    end = {n: summary["networks"][n]["checkpoints"]["end"]["negative_mass"] for n in NETWORKS}
    widest = max(m["upper"] - m["lower"] for m in end.values())
    brackets = " and ".join(
        f"[{m['lower']:.2f}, {m['upper']:.2f}] {NETWORKS[n]}" for n, m in end.items()
    )
    if widest <= 0.25:
        return f"Below 0 itself, the brackets at the end are {brackets}. "
    return (
        f"The mass below 0 itself is not resolved: at the end its brackets are {brackets}, "
        "as most eigenvalues sit in a cluster at zero that the Gauss nodes cannot place on "
        "either side. "
    )

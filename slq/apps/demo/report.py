"""``summary.md``: a short results section generated from the findings."""

from __future__ import annotations

from typing import Any

__all__ = ["markdown"]


def markdown(summary: dict[str, Any]) -> str:
    """Return the report: setup, then one paragraph and one figure per finding."""
    c = summary["config"]
    lines = [
        "# Hessian eigenvalue density of a small network on digits",
        "",
        f"A reproduction at laptop scale of {summary['paper']}. Two MLPs (64 → {c['width']} → "
        f"{c['width']} → 10, with and without BatchNorm) are trained by SGD (momentum 0.9, "
        f"batches of {c['batch_size']}, learning rate {c['learning_rate']}, divided by 10 after "
        f"epoch {c['drop_epoch']}) for {c['epochs']} epochs on {c['train_size']} digits, from "
        f"{c['seeds']} seeds each. Every density is `slq.density` of the training loss' "
        f"Hessian ({c['num_steps']} Lanczos steps × {c['num_probes']} probes, the same probes "
        "at every point). Uncertainties are standard errors over seeds and probes; a verdict "
        "is 'reproduced' or 'not reproduced' only when the effect exceeds two of them.",
        "",
        "| finding | verdict | figure |",
        "|---|---|---|",
        *[f"| `{f['id']}` | **{f['verdict']}** | {f['figure']} |" for f in summary["findings"]],
        "",
    ]
    for finding in summary["findings"]:
        lines += [
            f"## {finding['id']}: {finding['verdict']}",
            "",
            f"*Claim.* {finding['claim']}",
            "",
            f"*Statistic.* {finding['statistic']}.",
            "",
            f"*Measured.* {_numbers(finding['values'])}",
            "",
            f"*Uncertainty.* {_numbers(finding['uncertainty'])}",
            "",
            f"![{finding['id']}]({finding['figure']})",
            "",
        ]
    lines.append(f"Wall time: {summary['wall_time_s']:.1f} s (torch {summary['torch_version']}).")
    return "\n".join(lines) + "\n"


def _numbers(values: Any, depth: int = 0) -> str:
    """Render nested numbers as a compact sentence: key = value; lists shortened."""
    if isinstance(values, dict):
        parts = [f"{k} = {_numbers(v, depth + 1)}" for k, v in values.items()]
        text = "; ".join(parts)
        return f"({text})" if depth else text
    if isinstance(values, (list, tuple)):
        return "[" + ", ".join(_numbers(v, depth + 1) for v in values) + "]"
    if isinstance(values, float):
        return f"{values:.3g}"
    return str(values)

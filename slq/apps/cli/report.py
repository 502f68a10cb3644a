"""The text report of ``slq density``: `SpectralDensity.summary` as aligned lines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["density_report", "number"]


def number(x: Any) -> str:
    """Six significant digits; "n/a" for a missing or undefined value (one probe: no stderr)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.6g}"


def density_report(path: Path, s: dict[str, Any]) -> list[str]:
    """Return the dict of `SpectralDensity.summary` as lines of text."""
    lines = [
        f"{path}: n = {s['dim']}, {s['num_steps']} Lanczos steps x {s['num_probes']} probes "
        f"= {s['num_matvecs']} matvecs (seed {s['seed']})",
        *_extremes(s),
        *_negative_mass(s),
        *_outliers(s),
        *_wasserstein(s),
    ]
    return [lines[0], *(f"  {line}" for line in lines[1:])]


def _extremes(s: dict[str, Any]) -> list[str]:
    ratio = s.get("extreme_ratio")
    residuals = (ratio["residual_min"], ratio["residual_max"]) if ratio else (None, None)
    lines = []
    for name, residual in zip(("lambda_min", "lambda_max"), residuals, strict=True):
        note = f" (Ritz value, residual {number(residual)})" if residual is not None else ""
        lines.append(f"{name:<24}{number(s[name])}{note}")
    if ratio:
        lines.append(
            f"{'|lambda_min|/lambda_max':<24}{number(ratio['value'])} "
            f"in [{number(ratio['lower'])}, {number(ratio['upper'])}]"
        )
    return lines


def _negative_mass(s: dict[str, Any]) -> list[str]:
    mass = s.get("negative_mass")
    if not mass:
        return []
    return [
        f"{'negative mass':<24}{number(mass['value'])} +/- {number(mass['stderr'])} (stderr), "
        f"bracket [{number(mass['lower'])}, {number(mass['upper'])}]"
    ]


def _outliers(s: dict[str, Any]) -> list[str]:
    if "outliers" not in s:
        return []
    found = ", ".join(
        f"{number(o['position'])} (count {number(o['count'])})" for o in s["outliers"]
    )
    lines = [f"{'outliers':<24}{found or 'none'}"]
    if s.get("bulk"):
        low, high = s["bulk"]
        lines.append(f"{'bulk':<24}[{number(low)}, {number(high)}]")
    return lines


def _wasserstein(s: dict[str, Any]) -> list[str]:
    bound = s.get("wasserstein_bound")
    if not bound:
        return []
    return [
        f"{'W1 error bound':<24}{number(bound['total'])} (quadrature "
        f"{number(bound['quadrature'])} + sampling {number(bound['sampling'])}, "
        f"{100 * bound['confidence']:g}% confidence)"
    ]

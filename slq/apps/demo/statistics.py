"""Plain statistics of the findings: seed means and errors, W₁ of Gauss measures, gaps, verdicts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slq.spectral_density import SpectralDensity
from slq.summaries import weighted_quantile

__all__ = [
    "BULK_QUANTILE",
    "combine",
    "isolated",
    "seed_stats",
    "separation",
    "verdict",
    "wasserstein",
]

BULK_QUANTILE = 0.99
"""The bulk's upper edge: this quantile of the estimated spectral distribution."""


def seed_stats(values: list[float]) -> dict[str, Any]:
    """Return the values over seeds, their mean, standard deviation and standard error."""
    a = np.asarray(values, dtype=float)
    sd = float(a.std(ddof=1)) if a.size > 1 else math.nan
    return {
        "per_seed": a.tolist(),
        "mean": float(a.mean()),
        "sd": sd,
        "se": sd / math.sqrt(a.size),
    }


def combine(*errors: float) -> float:
    """Return the root sum of squares of independent standard errors (nan ones ignored)."""
    return math.sqrt(sum(e * e for e in errors if math.isfinite(e)))


def verdict(effect: float, error: float, margin: float = 0.0) -> str:
    """Return whether effect − margin exceeds two standard errors, either way, or neither.

    "reproduced" above +2 error, "not reproduced" below −2 error, else "inconclusive".
    """
    if effect - margin > 2.0 * error:
        return "reproduced"
    if effect - margin < -2.0 * error:
        return "not reproduced"
    return "inconclusive"


def overall(verdicts: list[str]) -> str:
    """Return the verdict of a claim made of parts: all reproduced, or any contradicted."""
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "not reproduced" if "not reproduced" in verdicts else "inconclusive"


def wasserstein(a: SpectralDensity, b: SpectralDensity, probes: slice = slice(None)) -> float:
    """Return W₁ between the probe-pooled Gauss measures of two densities (Vallender 1974)."""
    from scipy.stats import wasserstein_distance

    return float(
        wasserstein_distance(
            a.nodes[probes].ravel(),
            b.nodes[probes].ravel(),
            a.weights[probes].ravel(),
            b.weights[probes].ravel(),
        )
    )


def edges(dos: SpectralDensity) -> np.ndarray:
    """Return each probe's bulk edge: the `BULK_QUANTILE` quantile of its Gauss measure."""
    return np.array(
        [
            weighted_quantile(dos.nodes[p : p + 1], dos.weights[p : p + 1], BULK_QUANTILE)
            for p in range(dos.num_probes)
        ]
    )


def separation(dos: SpectralDensity) -> tuple[float, float]:
    """Return λ_max over the bulk edge, and its probe standard error (nan where the edge ≤ 0)."""
    pooled = weighted_quantile(dos.nodes, dos.weights, BULK_QUANTILE)
    if pooled <= 0.0:
        return math.nan, math.nan
    per_probe = dos.lambda_max / np.where(edges(dos) > 0.0, edges(dos), np.nan)
    se = float(np.nanstd(per_probe, ddof=1) / math.sqrt(dos.num_probes))
    return dos.lambda_max / pooled, se


def isolated(dos: SpectralDensity) -> list[float]:
    """Return the isolated eigenvalues: converged, positive, of multiplicity ≥ 1, past a gap.

    An outlier of `SpectralDensity.outliers` counts when its position is
    positive, its estimated multiplicity n · mass rounds to at least 1, and it
    lies at least twice as far from 0 as the bulk edge.
    """
    found = dos.outliers()
    edge = weighted_quantile(dos.nodes, dos.weights, BULK_QUANTILE)
    keep = (found.positions > 0.0) & (found.counts >= 0.5) & (found.positions >= 2.0 * edge)
    return sorted(found.positions[keep].tolist(), reverse=True)

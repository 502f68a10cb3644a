"""A result's curvature summaries as plain numbers: a JSON-ready dict and its JSON text."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slq.spectral_density import SpectralDensity
    from slq.summaries import Outliers

__all__ = ["summary", "to_json"]


def summary(density: SpectralDensity) -> dict[str, Any]:
    """Return the curvature summaries of a result as a JSON-ready dict of plain numbers.

    Extreme Ritz values with residual bounds, |λ_min|/λ_max, the negative
    mass (with its bracket and standard error), the outliers, the first two
    moments (1/n) tr A and (1/n) tr A², and, when the run's residuals are
    known, the W₁ bound.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.report import summary
    >>> dos = slq.density(np.diag(np.linspace(-1.0, 4.0, 200)), num_probes=2, seed=0)
    >>> out = summary(dos)
    >>> out["dim"], round(out["negative_mass"]["value"], 2)
    (200, 0.2)
    """
    out: dict[str, Any] = {
        "dim": density.dim,
        "num_probes": density.num_probes,
        "num_steps": density.num_steps,
        "num_matvecs": density.num_matvecs,
        "seed": density.seed,
        "reorthogonalize": density.reorthogonalize,
        "lambda_min": density.lambda_min,
        "lambda_max": density.lambda_max,
        "negative_mass": dataclasses.asdict(density.negative_mass()),
        "moments": {
            str(p): dataclasses.asdict(density.moment(p))
            for p in (1, 2)
            if p < 2 * density.num_steps
        },
    }
    if density.lambda_max > 0.0:
        out["extreme_ratio"] = dataclasses.asdict(density.extreme_ratio())
    if density.residual_norm is not None:
        outliers = density.outliers()
        out["outliers"] = _outlier_rows(outliers)
        out["bulk"] = list(outliers.bulk)
        out["wasserstein_bound"] = dataclasses.asdict(density.wasserstein_bound())
    return out


def _outlier_rows(outliers: Outliers) -> list[dict[str, float]]:
    """One dict of plain floats per outlier."""
    return [
        {
            "position": float(outliers.positions[i]),
            "count": float(outliers.counts[i]),
            "mass": float(outliers.masses[i]),
            "mass_stderr": float(outliers.mass_stderr[i]),
            "trace_share": float(outliers.trace_share[i]),
            "residual": float(outliers.residuals[i]),
        }
        for i in range(len(outliers))
    ]


def to_json(density: SpectralDensity, **dumps_options: Any) -> str:
    """Return `summary` as a JSON string (options go to `json.dumps`, e.g. ``indent=2``).

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> import slq
    >>> from slq.report import to_json
    >>> dos = slq.density(np.diag(np.linspace(-1.0, 4.0, 200)), num_probes=2, seed=0)
    >>> json.loads(to_json(dos))["dim"]
    200
    """
    return json.dumps(summary(density), **dumps_options)

"""Summaries over training: per recorded step, the numbers a `Track`'s densities give.

Each row is read off one density's stored coefficients (no products): its
extreme Ritz values with their residual bounds, the negative mass with its
quadrature bracket and probe error, the outliers' positions, and W₁ between
this density and the previous one, the bulk's stability.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slq.spectral_density import SpectralDensity
from slq.summaries import extreme_ritz

__all__ = ["StepSummary", "TrackSummary", "summarize", "wasserstein_between"]


@dataclass(frozen=True)
class StepSummary:
    """The summaries of one recorded density.

    Attributes
    ----------
    step : int
        The recorded step.
    lambda_min, lambda_max : float
        The extreme Ritz values over all probes.
    lambda_min_residual, lambda_max_residual : float
        Their residual bounds: an eigenvalue lies within each (Parlett 1998,
        Thm 4.5.1); infinite for a density without residual norms.
    negative_mass, negative_mass_stderr : float
        The fraction of eigenvalues below −`slq.summaries.zero_resolution`
        (`SpectralDensity.negative_mass`) and its probe standard error.
    negative_mass_lower, negative_mass_upper : float
        Its quadrature bracket: the mass m Lanczos steps cannot place.
    outliers : tuple of float
        Positions of the outliers (`SpectralDensity.outliers`), ascending.
    w1_previous : float
        W₁ between this density's Gauss measure and the previous record's
        (`wasserstein_between`); NaN at the first record.
    scalars : mapping of str to float
        The scalars recorded with it.
    """

    step: int
    lambda_min: float
    lambda_min_residual: float
    lambda_max: float
    lambda_max_residual: float
    negative_mass: float
    negative_mass_stderr: float
    negative_mass_lower: float
    negative_mass_upper: float
    outliers: tuple[float, ...]
    w1_previous: float
    scalars: Mapping[str, float]


class TrackSummary(tuple[StepSummary, ...]):
    """The `StepSummary` of every record, in step order: a tuple with a table and columns.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import slq
    >>> tracker = slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=30, num_probes=2)
    >>> for step in range(2):
    ...     _ = tracker.record(step, np.diag(np.linspace(-1.0, 1.0, 30) + 2 * step), loss=0.5)
    >>> table = slq.load_track(tracker.path).summary()
    >>> table.column("lambda_max").round(6)
    array([1., 3.])
    >>> print(table.to_markdown().splitlines()[0])
    | step | λ_min | λ_max | negative mass [bracket] | outliers | W₁ to previous | loss |
    """

    def column(self, name: str) -> np.ndarray:
        """Return the field `name` of every row as a float array (a scalar's name too).

        Examples
        --------
        >>> TrackSummary().column("step")
        array([], dtype=float64)
        """
        fields = StepSummary.__dataclass_fields__
        if not isinstance(name, str) or (name not in fields and not self._has_scalar(name)):
            allowed = ", ".join(f for f in fields if f not in ("outliers", "scalars"))
            msg = f"name must be a field ({allowed}) or a recorded scalar, got {name!r}"
            raise ValueError(msg)
        if name in ("outliers", "scalars"):
            msg = f"{name} is not one number per step: read it from the rows"
            raise ValueError(msg)
        if name in fields:
            return np.array([getattr(row, name) for row in self], dtype=np.float64)
        return np.array([row.scalars.get(name, np.nan) for row in self], dtype=np.float64)

    def to_dicts(self) -> list[dict[str, Any]]:
        """Return the rows as plain dicts (the outliers as a list, the scalars as a dict).

        Examples
        --------
        >>> TrackSummary().to_dicts()
        []
        """
        return [{**asdict(row), "outliers": list(row.outliers)} for row in self]

    def to_markdown(self, digits: int = 4) -> str:
        """Return the table in markdown, numbers to `digits` significant digits.

        Examples
        --------
        >>> TrackSummary().to_markdown().splitlines()[1]
        '| --- | --- | --- | --- | --- | --- |'
        """
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
            msg = f"digits must be an integer >= 1, got {digits!r}"
            raise ValueError(msg)
        names = sorted({name for row in self for name in row.scalars})
        head = ["step", "λ_min", "λ_max", "negative mass [bracket]", "outliers", "W₁ to previous"]
        lines = [_line([*head, *names]), _line(["---"] * (len(head) + len(names)))]
        lines += [_line(_cells(row, names, digits)) for row in self]
        return "\n".join(lines)

    def _has_scalar(self, name: str) -> bool:
        return any(name in row.scalars for row in self)


def _line(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cells(row: StepSummary, names: list[str], digits: int) -> list[str]:
    def g(x: float) -> str:
        return f"{x:.{digits}g}"

    mass = f"{g(row.negative_mass)} [{g(row.negative_mass_lower)}, {g(row.negative_mass_upper)}]"
    return [
        str(row.step),
        f"{g(row.lambda_min)} ± {g(row.lambda_min_residual)}",
        f"{g(row.lambda_max)} ± {g(row.lambda_max_residual)}",
        mass,
        ", ".join(g(x) for x in row.outliers) or "none",
        "" if math.isnan(row.w1_previous) else g(row.w1_previous),
        *(g(row.scalars[n]) if n in row.scalars else "" for n in names),
    ]


def wasserstein_between(a: SpectralDensity, b: SpectralDensity) -> float:
    """Return W₁ between the probe-pooled Gauss measures of two densities.

    Each density's measure is (1/k) Σ_v Σ_i τ_i δ_{θ_i}; W₁ = ∫ |F_a − F_b| dx,
    exact for two discrete measures (Villani 2009, Remark 2.19), computed by
    `slq.testing.wasserstein1`. Between densities of one track (the same
    probes) it is the change of the spectrum, not probe noise.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.track_summary import wasserstein_between
    >>> a = slq.density(np.diag(np.linspace(0.0, 1.0, 40)), num_steps=40, num_probes=2, seed=0)
    >>> b = slq.density(np.diag(np.linspace(0.5, 1.5, 40)), num_steps=40, num_probes=2, seed=0)
    >>> round(wasserstein_between(a, b), 6)  # shifted by 0.5
    0.5
    """
    from slq.testing import wasserstein1

    return float(wasserstein1(a, b))


def summarize(records: Iterable[Any]) -> TrackSummary:
    """Return the `StepSummary` of each record (a `TrackRecord`: step, density, scalars).

    Examples
    --------
    >>> summarize([])
    ()
    """
    rows, previous = [], None
    for record in records:
        rows.append(_row(record, previous))
        previous = record.density
    return TrackSummary(rows)


def _row(record: Any, previous: SpectralDensity | None) -> StepSummary:
    dos = record.density
    low, r_low, high, r_high = extreme_ritz(dos.nodes, dos.weights, dos.ritz_residuals)
    mass = dos.negative_mass()
    w1 = math.nan if previous is None else wasserstein_between(previous, dos)
    return StepSummary(
        step=record.step,
        lambda_min=low,
        lambda_min_residual=r_low,
        lambda_max=high,
        lambda_max_residual=r_high,
        negative_mass=mass.value,
        negative_mass_stderr=mass.stderr,
        negative_mass_lower=mass.lower,
        negative_mass_upper=mass.upper,
        outliers=tuple(float(x) for x in dos.outliers().positions),
        w1_previous=w1,
        scalars=dict(record.scalars),
    )

"""What `compare` returns: one record per run, a markdown summary, a DataFrame and a figure."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slq.testing._measures import Curve, Measure
from slq.testing._reference import comparison_grid, default_sigma

__all__ = ["Comparison", "Record"]


@dataclass(frozen=True)
class Record:
    """One run: an estimator on a problem with a seed.

    Attributes
    ----------
    estimator, problem : str
        Their names.
    seed : int
        The seed passed to the estimator.
    budget : int
        The products it was allowed.
    products : int
        The products it spent, counted by the harness.
    seconds : float
        Wall-clock time of the estimator's call (not bit-reproducible).
    metrics : mapping of str to float
        ``l1``, ``w1``, ``ks``, ``lambda_min_error``, ``lambda_max_error``: those asked for.
    """

    estimator: str
    problem: str
    seed: int
    budget: int
    products: int
    seconds: float
    metrics: Mapping[str, float]

    @property
    def over_budget(self) -> bool:
        """Whether the run spent more products than its budget."""
        return self.products > self.budget

    def as_dict(self) -> dict[str, Any]:
        """Return the record as one flat dict (the metrics as columns), e.g. for a DataFrame."""
        head = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del head["metrics"]
        return {**head, "over_budget": self.over_budget, **self.metrics}


# Line styles of the estimates, so that curves that coincide stay visible.
_STYLES = ("--", "-.", ":", "-")


def _smoothed_or_raw(measure: Measure, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Return the measure smoothed by the Gaussian of width σ; a Curve coarser than σ as is."""
    if isinstance(measure, Curve) and float(np.diff(measure.grid).max()) > sigma:
        return np.interp(grid, measure.grid, measure.values, left=0.0, right=0.0)
    return measure.smoothed(grid, sigma, "gaussian")


def _cell(values: list[float]) -> str:
    if np.isnan(values).any():
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{np.mean(values):.3g} ± {np.std(values, ddof=1):.2g}"


@dataclass(frozen=True)
class Comparison:
    """The records of `compare`, in (problem, estimator, seed) order, and what to draw.

    A sequence of `Record`: ``len``, iteration and indexing work on it.

    Attributes
    ----------
    records : tuple of Record
    truths : mapping of str to measure
        Each problem's exact spectrum, by problem name.
    estimates : mapping of (problem, estimator) to measure
        The first seed's estimate of each pair, for `plot`.
    sigma : float or None
        The kernel width of ``l1`` and `plot`; None: each problem's width / 100.
    figure : matplotlib Figure or None
        Drawn by ``compare(..., figure=True)``.
    """

    records: tuple[Record, ...]
    truths: Mapping[str, Measure] = field(repr=False)
    estimates: Mapping[tuple[str, str], Measure] = field(repr=False)
    sigma: float | None = None
    figure: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    def to_pandas(self) -> Any:
        """Return the records as a pandas DataFrame, one row per run.

        Raises
        ------
        ImportError
            Without pandas (``pip install pandas``).
        """
        try:
            import pandas as pd
        except ImportError as error:
            msg = "Comparison.to_pandas needs pandas: pip install pandas (or use .records)"
            raise ImportError(msg) from error
        return pd.DataFrame([record.as_dict() for record in self.records])

    def summary(self) -> str:
        """Return a markdown table: per problem and estimator, mean ± std over seeds.

        Products over the budget are marked with "!".

        Examples
        --------
        >>> import numpy as np
        >>> from slq.testing import compare, matrix_with_spectrum, slq_estimator
        >>> problem = matrix_with_spectrum(np.linspace(0.0, 1.0, 60), seed=0)
        >>> runs = {"slq": slq_estimator(num_probes=2)}
        >>> table = compare(runs, [problem], seeds=[0], budget=20, metrics=["ks"])
        >>> print(table.summary().splitlines()[0])
        | problem | estimator | products | ks |
        """
        metrics = list(self.records[0].metrics) if self.records else []
        lines = [
            "| problem | estimator | products | " + " | ".join(metrics) + " |",
            "|---|---|---:|" + "---:|" * len(metrics),
        ]
        groups: dict[tuple[str, str], list[Record]] = {}
        for record in self.records:
            groups.setdefault((record.problem, record.estimator), []).append(record)
        for (problem, estimator), runs in groups.items():
            products = f"{max(r.products for r in runs)}" + (
                "!" if any(r.over_budget for r in runs) else ""
            )
            cells = [_cell([r.metrics[m] for r in runs]) for m in metrics]
            lines.append(f"| {problem} | {estimator} | {products} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self, *, num_columns: int = 3) -> Any:
        """Draw one panel per problem: the truth and each estimator's first seed, smoothed alike.

        Every curve is smoothed by the Gaussian of the comparison's ``l1``
        (`sigma`, or the truth's width / 100); a `Curve` whose grid is coarser
        than σ is drawn as returned.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        names = list(self.truths)
        columns = min(num_columns, len(names))
        rows = -(-len(names) // columns)
        figure = Figure(figsize=(4.0 * columns, 3.0 * rows), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for ax, name in zip(axes[: len(names)], names, strict=True):
            self._panel(ax, name)
        for ax in axes[len(names) :]:
            ax.set_axis_off()
        return figure

    def _panel(self, ax: Any, problem: str) -> None:
        truth = self.truths[problem]
        low, high = truth.support()
        sigma = default_sigma(low, high) if self.sigma is None else self.sigma
        grid = comparison_grid(low, high, sigma, "gaussian")
        ax.plot(grid, truth.smoothed(grid, sigma, "gaussian"), "k-", lw=2.0, label="exact")
        shown = [(e, m) for (where, e), m in self.estimates.items() if where == problem]
        for (estimator, measure), style in zip(shown, itertools.cycle(_STYLES), strict=False):
            ax.plot(grid, _smoothed_or_raw(measure, grid, sigma), style, lw=1.2, label=estimator)
        ax.set_title(problem)
        ax.set_xlabel("λ")
        ax.legend(fontsize="small")

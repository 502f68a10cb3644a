"""`SpectralDensity`: a stochastic Lanczos quadrature result, and `load` to read one back.

The class is data (the Lanczos coefficients and the run's metadata), the Gauss
rules they define, and the kernel-smoothed density of those rules. What else
derives from a result lives as functions taking one, each in its own module,
with a one-line method here for users: spectral functionals in
`slq.functionals`, outliers and mass brackets in `slq.summaries`, the W₁ bound
in `slq.bounds`, JSON summaries in `slq.report`, Lanczos-based KPM in
`slq.lanczos_kpm`, saving in `slq.persistence`, figures in `slq.plotting`.
Those modules never import this one at run time: imports run top-down.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slq import bounds, functionals, persistence, plotting, report, smoothing, summaries
from slq._validate import (
    check_non_negative_int,
    check_optional_str,
    check_path,
    check_points,
    check_positive_int,
    check_real,
)
from slq.lanczos_kpm import lanczos_kpm
from slq.quadrature import check_coefficients, ritz_rules

if TYPE_CHECKING:
    from slq._lanczos import LanczosResult
    from slq.bounds import WassersteinBound
    from slq.estimate import Estimate
    from slq.kpm import KPMDensity
    from slq.summaries import ExtremeRatio, MassBelow, Outliers

__all__ = ["SpectralDensity", "load"]

# What `from_lanczos` reads of a `LanczosResult` (checked by name: no engine import here).
_LANCZOS_FIELDS = ("alpha", "beta", "residual_norm", "num_matvecs")


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    r"""Lanczos coefficients of k probes, and the density estimates derived from them.

    Everything else is computed from the coefficients on demand, on the host: no new products.

    Parameters
    ----------
    alpha : array_like, shape (k, m)
        Diagonals of the probes' Lanczos tridiagonals.
    beta : array_like, shape (k, m-1)
        Off-diagonals; a zero marks a breakdown (the probe's rule ends there).
    dim : int
        n, the dimension of the operator.
    num_matvecs : int
        Operator products the run spent.
    seed : int, optional
        The entropy the probes were drawn from (see `density`).
    probe, reorthogonalize : str, optional
        The options of the run, kept for the record.
    residual_norm : array_like, shape (k,), optional
        β_m, each probe's residual norm after its last step (0 after a
        breakdown): it turns into each Ritz value's error bound
        (`ritz_residuals`). Without it, no Ritz value counts as converged.
    stop_reason : str, optional
        Why an adaptive run (``density(..., tol=...)``) stopped: ``"tol"``,
        ``"max_matvecs"`` or ``"num_probes"``.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> result = slq.lanczos(np.diag(np.arange(1.0, 101.0)), np.ones((100, 2)), 20)
    >>> slq.SpectralDensity(result.alpha, result.beta, dim=100).weights.sum(axis=1)
    array([1., 1.])
    """

    alpha: np.ndarray
    beta: np.ndarray
    dim: int
    num_matvecs: int = 0
    seed: int | None = None
    probe: str | None = None
    reorthogonalize: str | None = None
    residual_norm: np.ndarray | None = None
    stop_reason: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self)

    @classmethod
    def from_lanczos(cls, result: LanczosResult, *, dim: int, **metadata: Any) -> SpectralDensity:
        """Return the density of the probes of a `lanczos` run on an operator of size `dim`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> result = slq.lanczos(np.diag(np.arange(10.0)), np.ones((10, 2)), 4)
        >>> slq.SpectralDensity.from_lanczos(result, dim=10).num_probes
        2
        """
        _check_lanczos_result(result)
        alpha, beta, residual_norm = result.alpha, result.beta, result.residual_norm
        return cls(alpha, beta, dim, result.num_matvecs, residual_norm=residual_norm, **metadata)

    @functools.cached_property
    def _rule(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nodes, weights, last = ritz_rules(self.alpha, self.beta)
        return _read_only(nodes), _read_only(weights), _read_only(last)

    @property
    def ritz_residuals(self) -> np.ndarray:
        """Shape (k, m): β_m |s_{m,i}|, the residual norm of each Ritz pair (Parlett 1998, §13.2).

        An eigenvalue lies within it of θ_i; infinite without `residual_norm`.
        """
        if self.residual_norm is None:
            return np.full(self.alpha.shape, np.inf)
        return self.residual_norm[:, None] * self._rule[2]

    @property
    def exact(self) -> np.ndarray:
        """Shape (k,) bool: probes whose run broke down, so that their rule is their measure."""
        if self.residual_norm is None:
            return np.zeros(self.num_probes, dtype=bool)
        return self.residual_norm == 0.0

    @property
    def nodes(self) -> np.ndarray:
        """Shape (k, m): Ritz values of each probe, ascending (see `gauss_quadrature`)."""
        return self._rule[0]

    @property
    def weights(self) -> np.ndarray:
        """Shape (k, m): Gauss weights, each row summing to 1, zero past a breakdown."""
        return self._rule[1]

    @property
    def num_probes(self) -> int:
        """k, the number of probes."""
        return self.alpha.shape[0]

    @property
    def num_steps(self) -> int:
        """m, the number of Lanczos steps of the longest probe."""
        return self.alpha.shape[1]

    @property
    def lambda_min(self) -> float:
        """Smallest Ritz value over all probes: an upper bound on the smallest eigenvalue."""
        return float(self.nodes[:, 0].min())

    @property
    def lambda_max(self) -> float:
        """Largest Ritz value over all probes: a lower bound on the largest eigenvalue."""
        return float(self.nodes[:, -1].max())

    # One-line delegations: each query is a function of the result, documented in its module.
    def default_sigma(self) -> float:
        """Return the kernel width used when none is given; see `slq.smoothing.default_sigma`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> round(slq.density(np.diag(np.linspace(0, 9, 10)), seed=0).default_sigma(), 6)
        0.9
        """
        return smoothing.default_sigma(self)

    def grid(
        self,
        num: int = 1024,
        *,
        pad: float | None = None,
        scale: str = "linear",
        linthresh: Any = None,
    ) -> np.ndarray:
        """Return `num` points covering the Ritz values; see `slq.smoothing.grid`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> points = slq.density(np.diag([0.0, 1.0]), num_probes=1, seed=0).grid(5, pad=0.0)
        >>> bool(np.allclose(points, [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-12))
        True
        """
        return smoothing.grid(self, num, pad=pad, scale=scale, linthresh=linthresh)

    def per_probe(
        self, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
    ) -> np.ndarray:
        r"""Return each probe's smoothed density, shape (k, g); see `slq.smoothing.per_probe`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> slq.density(np.diag(np.arange(50.0)), num_probes=3, seed=0).per_probe([0, 1]).shape
        (3, 2)
        """
        return smoothing.per_probe(self, grid, sigma, kernel)

    def evaluate(
        self, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
    ) -> np.ndarray:
        r"""Return the smoothed density φ_σ(t) on `grid`; see `slq.smoothing.evaluate`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 50)), num_probes=3, seed=1)
        >>> round(float(np.trapezoid(dos.evaluate(t := dos.grid(2000)), t)), 6)
        1.0
        """
        return smoothing.evaluate(self, grid, sigma, kernel)

    def stderr(self, grid: Any, sigma: float | None = None, kernel: str = "gaussian") -> np.ndarray:
        """Return the standard error of `evaluate` across probes; see `slq.smoothing.stderr`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 50)), num_probes=3, probe="gaussian")
        >>> bool((dos.stderr(np.linspace(0.0, 1.0, 7)) > 0).all())
        True
        """
        return smoothing.stderr(self, grid, sigma, kernel)

    def band(
        self,
        grid: Any,
        sigma: float | None = None,
        kernel: str = "gaussian",
        *,
        confidence: float = 0.95,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return pointwise Student-t limits of `evaluate`; see `slq.smoothing.band`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 300)), num_probes=5, seed=0)
        >>> low, high = dos.band(t := dos.grid(64))
        >>> bool(np.all(low <= dos.evaluate(t)) and np.all(dos.evaluate(t) <= high))
        True
        """
        return smoothing.band(self, grid, sigma, kernel, confidence=confidence)

    def cdf(self, x: Any) -> np.ndarray:
        """Return the estimated fraction of eigenvalues ≤ x; see `slq.functionals.cdf`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> slq.density(np.diag(np.arange(10.0)), seed=0).cdf([-0.5, 4.5, 9.5]).round(6)
        array([0. , 0.5, 1. ])
        """
        return functionals.cdf(self, x)

    def count(self, low: float, high: float) -> Estimate:
        """Estimate the number of eigenvalues in (low, high]; see `slq.functionals.count`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> round(slq.density(np.diag(np.arange(20.0)), seed=0).count(9.5, 19.5).value, 6)
        10.0
        """
        return functionals.count(self, low, high)

    def moment(self, p: int) -> Estimate:
        """Estimate the p-th spectral moment (1/n) tr(A^p); see `slq.functionals.moment`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> round(slq.density(np.diag(np.arange(1.0, 5.0)), num_steps=2, seed=0).moment(2).value, 6)
        7.5
        """
        return functionals.moment(self, p)

    def trace_function(self, f: Any, *, shift: float = 0.0) -> Estimate:
        """Estimate tr f(A + shift·I), no new products; see `slq.functionals.trace_function`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(1.0, 2.0, 500)), num_probes=8, seed=0)
        >>> round(dos.trace_function("log").value, 6)  # log det = Σ_j log λ_j
        193.107376
        """
        return functionals.trace_function(self, f, shift=shift)

    def mass_below(self, x: float) -> MassBelow:
        """Estimate the fraction of eigenvalues < x and bracket it; see `slq.summaries.mass_below`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> m = slq.density(np.diag(np.linspace(-1, 3, 400)), num_probes=4, seed=0).mass_below(0.0)
        >>> round(m.value, 2), m.lower <= 0.25 <= m.upper
        (0.25, True)
        """
        x = check_real("x", x)
        if np.isnan(x):
            msg = "x must be a number, got nan"
            raise ValueError(msg)
        return summaries.mass_below(self.nodes, self.weights, x, exact=self.exact)

    def negative_mass(self, threshold: float = 0.0) -> MassBelow:
        """Return the fraction below −max(`threshold`, `slq.summaries.zero_resolution`).

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> round(slq.density(np.diag(np.linspace(-1, 3, 400)), seed=0).negative_mass().value, 2)
        0.25
        """
        return self.mass_below(summaries.negative_point(self.nodes, self.weights, threshold))

    def outliers(
        self, *, tail: float = 0.01, separation: float = 1.0, rtol: float = 1e-3
    ) -> Outliers:
        """Return converged outlying Ritz values as point masses; `slq.summaries.find_outliers`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
        >>> out = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0).outliers()
        >>> out.positions.round(6), out.counts.round(2)
        (array([ 10.,  30., 100.]), array([1., 1., 1.]))
        """
        rules = self.nodes, self.weights, self.ritz_residuals, self.dim
        return summaries.find_outliers(*rules, tail=tail, separation=separation, rtol=rtol)

    def bulk_sigma(self, outliers: Outliers | None = None) -> float:
        """Return the kernel width that resolves the bulk; see `slq.smoothing.bulk_sigma`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
        >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
        >>> bool(dos.bulk_sigma() < dos.default_sigma() / 40)
        True
        """
        return smoothing.bulk_sigma(self, outliers)

    def bulk(
        self,
        grid: Any,
        sigma: float | None = None,
        kernel: str = "gaussian",
        *,
        outliers: Outliers | None = None,
    ) -> np.ndarray:
        """Return the smoothed density without the outliers' nodes; see `slq.smoothing.bulk`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
        >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
        >>> t = np.linspace(-2.0, 2.0, 4001)
        >>> round(float(np.trapezoid(dos.bulk(t), t)), 3)  # 997 of 1000 eigenvalues
        0.997
        """
        return smoothing.bulk(self, grid, sigma, kernel, outliers=outliers)

    def extreme_ratio(self) -> ExtremeRatio:
        """Return |λ_min| / λ_max with residual bounds; see `slq.summaries.extreme_ratio`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> round(slq.density(np.diag(np.linspace(-1, 4, 200)), seed=0).extreme_ratio().value, 6)
        0.25
        """
        return summaries.extreme_ratio(self.nodes, self.weights, self.ritz_residuals)

    def wasserstein_bound(
        self, *, confidence: float = 0.95, spectrum: tuple[float, float] | None = None
    ) -> WassersteinBound:
        """Return an a posteriori bound on W₁ to the spectrum; see `slq.bounds.wasserstein_bound`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 2000)), seed=0)
        >>> bool(dos.wasserstein_bound().total < 0.05)
        True
        """
        return bounds.wasserstein_bound(self, confidence=confidence, spectrum=spectrum)

    def summary(self) -> dict[str, Any]:
        """Return the curvature summaries as a JSON-ready dict; see `slq.report.summary`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> round(slq.density(np.diag(np.linspace(-1, 4, 200)), seed=0).summary()["lambda_max"], 6)
        4.0
        """
        return report.summary(self)

    def to_json(self, **dumps_options: Any) -> str:
        """Return `summary` as JSON (options go to `json.dumps`); see `slq.report.to_json`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> slq.density(np.diag(np.linspace(-1, 4, 200)), seed=0).to_json(indent=2).splitlines()[1]
        '  "dim": 200,'
        """
        return report.to_json(self, **dumps_options)

    def kpm(
        self,
        degree: int | None = None,
        *,
        bounds: tuple[float, float] | None = None,
        damping: str = "jackson",
    ) -> KPMDensity:
        """Return the Lanczos-based KPM density, no new products; see `slq.lanczos_kpm`.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> slq.density(np.diag(np.linspace(-1.0, 1.0, 500)), num_steps=30, seed=0).kpm().degree
        59
        """
        return lanczos_kpm(self, degree, bounds=bounds, damping=damping)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to a ``.npz`` archive (no pickle); see `slq.persistence.save` and `slq.load`.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 100)), num_probes=3, seed=0)
        >>> path = dos.save(pathlib.Path(tempfile.mkdtemp()) / "dos.npz")
        >>> bool(np.array_equal(slq.load(path).evaluate(t := dos.grid(64)), dos.evaluate(t)))
        True
        """
        return persistence.save(self, check_path("path", path))

    def plot(self, ax: Any = None, **options: Any) -> Any:
        """Draw the density with matplotlib, return the Axes; see `slq.plotting.plot_density`.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> import slq
        >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
        >>> slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0).plot().get_yscale()
        'log'
        """
        return plotting.plot_density(self, ax, **options)

    def __repr__(self) -> str:
        return (
            f"SpectralDensity(dim={self.dim}, num_probes={self.num_probes}, "
            f"num_steps={self.num_steps}, lambda_min={self.lambda_min:.6g}, "
            f"lambda_max={self.lambda_max:.6g})"
        )


def _check_fields(density: SpectralDensity) -> None:
    """Check a new result's fields, and freeze copies of its arrays."""
    coefficients = check_coefficients(density.alpha, density.beta)
    for name, array in zip(("alpha", "beta"), coefficients, strict=True):
        object.__setattr__(density, name, _read_only(array))
    object.__setattr__(density, "dim", check_positive_int("dim", density.dim))
    check_non_negative_int("num_matvecs", density.num_matvecs)
    if density.seed is not None:
        check_non_negative_int("seed", density.seed)
    for name in ("probe", "reorthogonalize", "stop_reason"):
        check_optional_str(name, getattr(density, name))
    if density.residual_norm is not None:
        residual = _check_residual_norm(density.residual_norm, density.num_probes)
        object.__setattr__(density, "residual_norm", _read_only(residual))


def _check_lanczos_result(result: Any) -> None:
    if not all(hasattr(result, name) for name in _LANCZOS_FIELDS):
        msg = f"result must be a LanczosResult (from slq.lanczos), got {type(result).__name__}"
        raise TypeError(msg)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _check_residual_norm(value: Any, num_probes: int) -> np.ndarray:
    residual = np.array(check_points("residual_norm", value, finite=False))
    if residual.shape != (num_probes,) or not np.all(residual >= 0.0):
        msg = f"residual_norm must hold {num_probes} non-negative numbers, got {value!r}"
        raise ValueError(msg)
    return residual


def load(path: str | os.PathLike[str]) -> SpectralDensity:
    """Load a result saved by `SpectralDensity.save`.

    The archive is read by `slq.persistence.read_result`; the result is built
    here, next to its class, so that persistence never needs to import it.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` archive. It is read with ``allow_pickle=False``: loading a
        file cannot run code.

    Returns
    -------
    SpectralDensity
        Equal to the saved one: the same coefficients, so it evaluates, plots
        and summarises exactly as the saved result did.

    Raises
    ------
    ValueError
        For a file that is not a saved slq result.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import slq
    >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 100)), num_probes=3, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dos.npz"
    >>> _ = dos.save(path)
    >>> again = slq.load(path)
    >>> bool(np.array_equal(again.alpha, dos.alpha)), again.seed
    (True, 0)
    """
    return SpectralDensity(**persistence.read_result(check_path("path", path)))

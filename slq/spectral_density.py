"""`SpectralDensity`: a stochastic Lanczos quadrature result and what derives from it."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slq import summaries
from slq._functions import apply_function
from slq._kernels import KERNELS, default_sigma
from slq._validate import check_choice, check_positive_int
from slq.bounds import WassersteinBound, quadrature_wasserstein, sampling_wasserstein
from slq.estimate import Estimate, check_spread, probe_stderr, student_t_quantile
from slq.lanczos import LanczosResult
from slq.quadrature import _as_batch, ritz_rules
from slq.summaries import ExtremeRatio, MassBelow, Outliers

if TYPE_CHECKING:
    from slq.kpm import KPMDensity

__all__ = ["SpectralDensity"]

# Bound on the (probes x nodes x grid points) temporary while evaluating kernels.
_EVALUATION_CHUNK = 1 << 22


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    r"""Lanczos coefficients of k probes, and the density estimates derived from them.

    Everything but the coefficients is computed from them on demand, on the
    host, without a single new product with the operator.

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
    >>> a = np.diag(np.arange(1.0, 101.0))
    >>> result = slq.lanczos(a, np.ones((100, 2)), 20)
    >>> dos = slq.SpectralDensity.from_lanczos(result, dim=100)
    >>> dos.num_probes, dos.weights.sum(axis=1)
    (2, array([1., 1.]))
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
        alpha, beta = _as_batch(self.alpha, self.beta)
        for array in (alpha, beta):
            array.flags.writeable = False
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "dim", check_positive_int("dim", self.dim))
        if self.residual_norm is not None:
            residual = np.array(self.residual_norm, dtype=np.float64)
            if residual.shape != (alpha.shape[0],) or not np.all(residual >= 0.0):
                msg = (
                    f"residual_norm must hold {alpha.shape[0]} non-negative numbers, "
                    f"got {self.residual_norm!r}"
                )
                raise ValueError(msg)
            residual.flags.writeable = False
            object.__setattr__(self, "residual_norm", residual)

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
        return cls(
            result.alpha,
            result.beta,
            dim=dim,
            num_matvecs=result.num_matvecs,
            residual_norm=result.residual_norm,
            **metadata,
        )

    @functools.cached_property
    def _rule(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rule = ritz_rules(self.alpha, self.beta)
        for array in rule:
            array.flags.writeable = False
        return rule

    @property
    def ritz_residuals(self) -> np.ndarray:
        """Shape (k, m): β_m |s_{m,i}|, the residual norm of each Ritz pair (Parlett 1998, §13.2).

        Some eigenvalue lies within it of the Ritz value θ_i. Infinite when the
        run's `residual_norm` is unknown, zero after a breakdown.
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

    def default_sigma(self) -> float:
        """Return the kernel width used when none is given: (λ_max − λ_min) / m.

        See ``slq._kernels.default_sigma`` for why. A spectrum of one point has
        no width; its scale max(|λ|, 1) stands in for it.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 9.0, 10)), num_steps=10, seed=0)
        >>> round(dos.default_sigma(), 6)
        0.9
        """
        width = self.lambda_max - self.lambda_min
        if width <= 0.0:
            width = max(abs(self.lambda_max), 1.0)
        return default_sigma(width, self.num_steps)

    def grid(
        self,
        num: int = 1024,
        *,
        pad: float | None = None,
        scale: str = "linear",
        linthresh: float | None = None,
    ) -> np.ndarray:
        """Return `num` points covering the Ritz values with `pad` on each side.

        `pad` defaults to 5 default kernel widths, where a Gaussian kernel has
        fallen below 4e-6 of its peak. With ``scale="symlog"`` the points are
        equispaced in asinh(t / linthresh): linear within about ±linthresh,
        logarithmic beyond, so that a narrow bulk near zero and outliers orders
        of magnitude away are both resolved. `linthresh` defaults to
        `bulk_sigma`, the kernel width that resolves the bulk.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag([0.0, 1.0]), num_probes=1, seed=0)
        >>> dos.grid(5, pad=0.0).round(12)
        array([0.  , 0.25, 0.5 , 0.75, 1.  ])
        """
        num = check_positive_int("num", num)
        check_choice("scale", scale, ("linear", "symlog"))
        pad = 5.0 * self.default_sigma() if pad is None else float(pad)
        if not (np.isfinite(pad) and pad >= 0.0):
            msg = f"pad must be a finite number >= 0, got {pad}"
            raise ValueError(msg)
        low, high = self.lambda_min - pad, self.lambda_max + pad
        if scale == "linear":
            return np.linspace(low, high, num)
        c = self.bulk_sigma() if linthresh is None else _positive("linthresh", linthresh)
        return c * np.sinh(np.linspace(np.arcsinh(low / c), np.arcsinh(high / c), num))

    def per_probe(
        self, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
    ) -> np.ndarray:
        r"""Return each probe's smoothed density φ_v(t) = Σ_i τ_i f_σ(t − θ_i) on `grid`.

        Parameters
        ----------
        grid : array_like, shape (g,)
            Points t at which to evaluate.
        sigma : float, optional
            Kernel width; default `default_sigma`.
        kernel : {"gaussian", "lorentzian"}
            f_σ: a normal density of standard deviation σ, or a Cauchy density
            of half-width σ.

        Returns
        -------
        numpy.ndarray, shape (k, g)

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 50)), num_probes=3, seed=0)
        >>> dos.per_probe(np.linspace(0.0, 1.0, 7)).shape
        (3, 7)
        """
        sigma = self.default_sigma() if sigma is None else _positive("sigma", sigma)
        return _smooth(self.nodes, self.weights, grid, sigma, kernel)

    def evaluate(
        self, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
    ) -> np.ndarray:
        r"""Return the smoothed density φ_σ(t), the probe average of `per_probe`, on `grid`.

        It integrates to 1 over the real line and estimates
        (1/n) Σ_j f_σ(t − λ_j), the eigenvalue density smoothed by the kernel.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 50)), num_probes=3, seed=1)
        >>> t = dos.grid(2000)
        >>> round(float(np.trapezoid(dos.evaluate(t), t)), 6)
        1.0
        """
        return self.per_probe(grid, sigma, kernel).mean(axis=0)

    def stderr(self, grid: Any, sigma: float | None = None, kernel: str = "gaussian") -> np.ndarray:
        """Return the standard error of `evaluate` across probes: std / sqrt(k).

        Raises
        ------
        ValueError
            With fewer than two probes, which leave the spread unknown.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> a = np.diag(np.linspace(0.0, 1.0, 50))
        >>> dos = slq.density(a, num_probes=3, seed=0, probe="gaussian")
        >>> bool((dos.stderr(np.linspace(0.0, 1.0, 7)) > 0).all())
        True
        """
        check_spread(self.num_probes)
        return probe_stderr(self.per_probe(grid, sigma, kernel))

    def trace_function(self, f: Any, *, shift: float = 0.0) -> Estimate:
        r"""Estimate tr f(A + shift·I) from the stored Gauss rules: no new products.

        Each probe gives n Σ_i τ_i f(θ_i + shift), an estimate of n vᵀ f(A) v whose
        mean over unit probes is tr f(A) (Ubaru, Chen & Saad 2017, eq. (3)-(5)).
        The Gauss rule of A + sI has nodes θ_i + s, so a shift costs nothing.

        Parameters
        ----------
        f : callable or {"log", "exp", "inverse", "sqrt", "square"}
            Applied to a float64 numpy array of Ritz values. ``"log"`` gives
            log det; it and ``"sqrt"`` need a positive (semi)definite operator,
            ``"inverse"`` a definite one: the Ritz values are checked.
        shift : float, default 0
            s in f(A + sI).

        Returns
        -------
        Estimate
            Value, probe-to-probe standard error and `Estimate.interval`.

        Raises
        ------
        ValueError
            For a named function whose domain the Ritz values leave (the message
            suggests a shift), or an f that does not keep the shape.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> a = np.diag(np.linspace(1.0, 2.0, 500))
        >>> logdet = slq.density(a, num_steps=20, num_probes=8, seed=0).trace_function("log")
        >>> exact = np.log(np.linspace(1.0, 2.0, 500)).sum()
        >>> round(logdet.value, 6), round(float(exact), 6)
        (193.107376, 193.107376)
        """
        shift = float(shift)
        if not np.isfinite(shift):
            msg = f"shift must be finite, got {shift}"
            raise ValueError(msg)
        used = self.weights > 0.0
        nodes = np.where(used, self.nodes + shift, self.nodes[:, -1:] + shift)
        values = apply_function(f, nodes[used])
        per_node = np.zeros_like(nodes)
        per_node[used] = values
        samples = self.dim * np.sum(self.weights * per_node, axis=1)
        return Estimate.from_samples(samples, num_matvecs=self.num_matvecs, method="slq")

    def band(
        self,
        grid: Any,
        sigma: float | None = None,
        kernel: str = "gaussian",
        *,
        confidence: float = 0.95,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return pointwise Student-t confidence limits of `evaluate` over the probes.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 300)), num_probes=5, seed=0)
        >>> t = dos.grid(64)
        >>> low, high = dos.band(t)
        >>> bool(np.all(low <= dos.evaluate(t)) and np.all(dos.evaluate(t) <= high))
        True
        """
        curve = self.evaluate(grid, sigma, kernel)
        half = student_t_quantile(confidence, self.num_probes - 1) * self.stderr(
            grid, sigma, kernel
        )
        return curve - half, curve + half

    def cdf(self, x: Any) -> np.ndarray:
        r"""Return the estimated fraction of eigenvalues ≤ x: the probe mean of Σ_{θ_i ≤ x} τ_i.

        The Gauss rules' distribution function, a step function; see
        `mass_below` for how far the true one can be from it. A Ritz value
        converged to an eigenvalue x lies on either side of x by rounding, so
        evaluate between eigenvalues, not at one.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.arange(10.0)), num_steps=10, num_probes=2, seed=0)
        >>> dos.cdf([-0.5, 4.5, 9.5]).round(6)  # between eigenvalues: a step function
        array([0. , 0.5, 1. ])
        """
        x = np.asarray(x, dtype=np.float64)
        below = self.nodes[:, :, None] <= x.reshape(-1)[None, None, :]
        return np.einsum("km,kmx->x", self.weights, below).reshape(x.shape) / self.num_probes

    def mass_below(self, x: float) -> MassBelow:
        r"""Estimate the fraction of eigenvalues < x, with its sampling and quadrature errors.

        `MassBelow` holds the estimate, its probe-to-probe standard error, and a
        bracket [lower, upper] that the mean of the probes' true masses lies in
        whatever the spectrum (Chebyshev–Markov–Stieltjes inequalities): when a
        cluster of eigenvalues at x is narrower than the spacing of the Gauss
        nodes, the side of x each node falls on is close to chance, and the
        bracket says how much mass that leaves undecided.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(-1.0, 3.0, 400)), num_probes=4, seed=0)
        >>> m = dos.mass_below(0.0)
        >>> round(m.value, 2), m.lower <= 0.25 <= m.upper
        (0.25, True)
        """
        return summaries.mass_below(self.nodes, self.weights, float(x), exact=self.exact)

    def negative_mass(self, threshold: float = 0.0) -> MassBelow:
        """Return the fraction of eigenvalues below −`threshold` (see `mass_below`).

        Ghorbani, Krishnan & Xiao (2019) track it through training; a small
        positive `threshold` ignores the negative side of a cluster at zero.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(-1.0, 3.0, 400)), num_probes=4, seed=0)
        >>> round(dos.negative_mass().value, 2)
        0.25
        """
        threshold = _non_negative("threshold", threshold)
        return self.mass_below(-threshold if threshold else 0.0)

    def count(self, low: float, high: float) -> Estimate:
        """Estimate the number of eigenvalues in (low, high]: n times the estimated mass.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.arange(100.0)), num_steps=100, num_probes=3, seed=0)
        >>> round(dos.count(9.5, 19.5).value, 6)
        10.0
        """
        if not low < high:
            msg = f"count needs low < high, got low={low}, high={high}"
            raise ValueError(msg)
        inside = (self.nodes > low) & (self.nodes <= high)
        samples = self.dim * np.sum(self.weights * inside, axis=1)
        return Estimate.from_samples(samples, num_matvecs=self.num_matvecs, method="slq")

    def moment(self, p: int) -> Estimate:
        r"""Estimate the p-th spectral moment (1/n) tr(A^p) = (1/n) Σ_j λ_j^p.

        Exact for each probe's measure when p ≤ 2m − 1 (Gauss exactness), so
        the only error is the probes' sampling error.

        Raises
        ------
        ValueError
            If p > 2m − 1: the Gauss rule no longer integrates λ^p exactly.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.arange(1.0, 5.0)), num_steps=2, num_probes=2, seed=0)
        >>> round(dos.moment(2).value, 6)  # (1 + 4 + 9 + 16) / 4
        7.5
        """
        if isinstance(p, bool) or not isinstance(p, int):
            msg = f"p must be an integer, got {p!r}"
            raise TypeError(msg)
        if p < 0:
            msg = f"p must be >= 0, got {p}"
            raise ValueError(msg)
        if p > 2 * self.num_steps - 1:
            msg = (
                f"moment {p} needs more Lanczos steps: {self.num_steps} steps integrate "
                f"degrees up to {2 * self.num_steps - 1} exactly"
            )
            raise ValueError(msg)
        samples = np.sum(self.weights * self.nodes**p, axis=1)
        return Estimate.from_samples(samples, num_matvecs=self.num_matvecs, method="slq")

    def wasserstein_bound(
        self, *, confidence: float = 0.95, spectrum: tuple[float, float] | None = None
    ) -> WassersteinBound:
        r"""Return an a posteriori bound on W₁ between this estimate and the true spectrum.

        The quadrature part follows from the Gauss rules alone
        (`slq.bounds.quadrature_wasserstein`), the sampling part from n and the
        number of probes (`slq.bounds.sampling_wasserstein`); the sum holds with
        probability `confidence` (Chen, Trogdon & Ubaru 2021, "Analysis of
        stochastic Lanczos quadrature for spectrum approximation").

        Parameters
        ----------
        confidence : float, default 0.95
            Probability with which the sampling part holds.
        spectrum : (float, float), optional
            An interval known to hold every eigenvalue (e.g. from Gershgorin
            discs or `slq.eigsh`). Default: the extreme Ritz values widened by
            their residual bounds, which holds when the extreme Ritz values
            have converged to the extreme eigenvalues (they do first:
            Kaniel–Paige theory) — check `ritz_residuals` for large outliers.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 2000)), num_probes=10, seed=0)
        >>> bound = dos.wasserstein_bound()
        >>> a, b = bound.spectrum  # contains [0, 1]
        >>> bool(bound.total < 0.05), bool(a <= 0.0 and b >= 1.0)
        (True, True)
        """
        if not 0.0 < confidence < 1.0:
            msg = f"confidence must lie in (0, 1), got {confidence}"
            raise ValueError(msg)
        interval = self._spectrum_interval() if spectrum is None else _interval(spectrum)
        # Ritz values lie inside the spectrum up to rounding, so a tight interval is
        # widened by that much; a wider miss is an error in the interval.
        slack = 1e-8 * max(abs(self.lambda_min), abs(self.lambda_max))
        if interval[0] > self.lambda_min + slack or interval[1] < self.lambda_max - slack:
            msg = f"spectrum {interval} must contain every Ritz value, which span "
            msg += f"[{self.lambda_min:.6g}, {self.lambda_max:.6g}]"
            raise ValueError(msg)
        interval = (min(interval[0], self.lambda_min), max(interval[1], self.lambda_max))
        quadrature = quadrature_wasserstein(self.nodes, self.weights, self.exact, interval)
        sampling = sampling_wasserstein(interval, self.dim, self.num_probes, confidence)
        mean = float(quadrature.mean())
        return WassersteinBound(mean + sampling, mean, sampling, confidence, interval)

    def _spectrum_interval(self) -> tuple[float, float]:
        if self.residual_norm is None:
            msg = "without the run's residual_norm, pass spectrum=(a, b) holding every eigenvalue"
            raise ValueError(msg)
        residuals = self.ritz_residuals
        low = self.nodes[:, 0] - residuals[:, 0]
        used_last = np.argmax(np.cumsum(self.weights, axis=1) >= 1.0 - 1e-12, axis=1)
        rows = np.arange(self.num_probes)
        high = self.nodes[rows, used_last] + residuals[rows, used_last]
        return float(low.min()), float(high.max())

    def outliers(
        self, *, tail: float = 0.01, separation: float = 1.0, rtol: float = 1e-3
    ) -> Outliers:
        """Return the converged outlying Ritz values as point masses apart from the bulk.

        The bulk is the interval between the `tail` and 1 − `tail` quantiles of
        the estimated distribution; an outlier is a Ritz value whose residual
        bound is at most `rtol` · max|θ| and that lies more than `separation`
        bulk widths outside the bulk (see `slq.summaries.find_outliers`); Ritz
        values of different probes within `rtol` · max|θ| are one outlier. The
        outliers together must hold less than `tail` of the eigenvalues at
        either end: raise `tail` for small operators with many outliers.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
        >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
        >>> out = dos.outliers()
        >>> out.positions.round(6), out.counts.round(2)
        (array([ 10.,  30., 100.]), array([1., 1., 1.]))
        """
        for name, value, upper in (("tail", tail, 0.5), ("rtol", rtol, np.inf)):
            if not 0.0 < float(value) < upper:
                msg = f"{name} must lie in (0, {upper}), got {value}"
                raise ValueError(msg)
        return summaries.find_outliers(
            self.nodes,
            self.weights,
            self.ritz_residuals,
            self.dim,
            tail=float(tail),
            separation=_non_negative("separation", separation),
            rtol=float(rtol),
        )

    def bulk_sigma(self, outliers: Outliers | None = None) -> float:
        """Return the kernel width that resolves the bulk: its width / m (cf. `default_sigma`).

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
        >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
        >>> bool(dos.bulk_sigma() < dos.default_sigma() / 40)
        True
        """
        low, high = (self.outliers() if outliers is None else outliers).bulk
        scale = max(abs(self.lambda_min), abs(self.lambda_max), 1e-300)
        return default_sigma(max(high - low, 1e-9 * scale), self.num_steps)

    def bulk(
        self,
        grid: Any,
        sigma: float | None = None,
        kernel: str = "gaussian",
        *,
        outliers: Outliers | None = None,
    ) -> np.ndarray:
        """Return the smoothed density without the outliers' nodes: the bulk of the view.

        Together with `outliers` (point masses at their positions) this is the
        "bulk plus outliers" picture: the bulk keeps mass 1 − outliers.mass and
        is smoothed with `bulk_sigma` by default, a kernel matched to the bulk's
        own width rather than to the whole spectrum's.

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
        outliers = self.outliers() if outliers is None else outliers
        sigma = self.bulk_sigma(outliers) if sigma is None else _positive("sigma", sigma)
        weights = np.where(outliers.members, 0.0, self.weights)
        return _smooth(self.nodes, weights, grid, sigma, kernel).mean(axis=0)

    def extreme_ratio(self) -> ExtremeRatio:
        """Return |λ_min| / λ_max with the residual bounds of the extreme Ritz values.

        Ghorbani, Krishnan & Xiao (2019) track it through training. The extreme
        eigenvalues are those Lanczos finds first, so a few dozen steps
        usually pin them down; `ExtremeRatio.lower`/`upper` say how well.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(-1.0, 4.0, 200)), num_probes=2, seed=0)
        >>> round(dos.extreme_ratio().value, 6)
        0.25
        """
        return summaries.extreme_ratio(self.nodes, self.weights, self.ritz_residuals)

    def summary(self) -> dict[str, Any]:
        """Return the curvature summaries as a JSON-ready dict of plain numbers.

        Extreme Ritz values with residual bounds, |λ_min|/λ_max, the negative
        mass (with its bracket and standard error), the outliers, the first two
        moments (1/n) tr A and (1/n) tr A², and, when the run's residuals are
        known, the W₁ bound.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(-1.0, 4.0, 200)), num_probes=2, seed=0)
        >>> summary = dos.summary()
        >>> summary["dim"], round(summary["negative_mass"]["value"], 2)
        (200, 0.2)
        """
        out: dict[str, Any] = {
            "dim": self.dim,
            "num_probes": self.num_probes,
            "num_steps": self.num_steps,
            "num_matvecs": self.num_matvecs,
            "seed": self.seed,
            "reorthogonalize": self.reorthogonalize,
            "lambda_min": self.lambda_min,
            "lambda_max": self.lambda_max,
            "negative_mass": dataclasses.asdict(self.negative_mass()),
            "moments": {
                str(p): dataclasses.asdict(self.moment(p)) for p in (1, 2) if p < 2 * self.num_steps
            },
        }
        if self.lambda_max > 0.0:
            out["extreme_ratio"] = dataclasses.asdict(self.extreme_ratio())
        if self.residual_norm is not None:
            outliers = self.outliers()
            out["outliers"] = [
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
            out["bulk"] = list(outliers.bulk)
            out["wasserstein_bound"] = dataclasses.asdict(self.wasserstein_bound())
        return out

    def kpm(
        self,
        degree: int | None = None,
        *,
        bounds: tuple[float, float] | None = None,
        damping: str = "jackson",
    ) -> KPMDensity:
        r"""Return the Lanczos-based KPM density of these probes: no new products.

        The Chebyshev moments of each probe's Gauss rule equal those of its
        spectral measure up to degree 2m − 1 (Chen, Trogdon & Ubaru 2023,
        "Lanczos-based KPM"; see `slq.kpm.from_quadrature`), so KPM's damped
        series — or its kernel-smoothed curve — comes free with an SLQ run.

        Parameters
        ----------
        degree : int, optional
            Default 2m − 1, the most the rules determine.
        bounds : (float, float), optional
            The interval mapped to [−1, 1]; it must hold every node. Default:
            the extreme Ritz values widened by 1% of their spread (any interval
            holding the nodes gives exact moments).
        damping : {"jackson", "lorentz", "none"}

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(-1.0, 1.0, 500)), num_steps=30, seed=0)
        >>> kpm = dos.kpm()
        >>> kpm.degree, kpm.num_probes
        (59, 10)
        >>> t = np.linspace(-1.0, 1.0, 5)
        >>> bool(np.allclose(kpm.evaluate(t, sigma=0.1), dos.evaluate(t, sigma=0.1), atol=0.05))
        True
        """
        from slq.kpm import from_quadrature

        if bounds is None:
            spread = self.lambda_max - self.lambda_min
            pad = 0.01 * max(spread, 1e-12 * abs(self.lambda_max), 1e-300)
            bounds = (self.lambda_min - pad, self.lambda_max + pad)
        return from_quadrature(
            self.nodes,
            self.weights,
            dim=self.dim,
            degree=2 * self.num_steps - 1 if degree is None else degree,
            bounds=bounds,
            num_matvecs=self.num_matvecs,
            seed=self.seed,
            damping=damping,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the result to a ``.npz`` archive (no pickle), atomically; `slq.load` reads it.

        The archive keeps the coefficients and the run's metadata (n, steps,
        probes, seed, probe kind, reorthogonalisation, stop reason, method and
        library version): everything here is a function of them, so the loaded
        result evaluates, plots and summarises exactly like this one.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 100)), num_probes=3, seed=0)
        >>> path = dos.save(pathlib.Path(tempfile.mkdtemp()) / "dos.npz")
        >>> t = dos.grid(64)
        >>> bool(np.array_equal(slq.load(path).evaluate(t), dos.evaluate(t)))
        True
        """
        from slq.persistence import FORMAT, write_archive

        arrays: dict[str, Any] = {"alpha": self.alpha, "beta": self.beta}
        if self.residual_norm is not None:
            arrays["residual_norm"] = self.residual_norm
        meta = {
            "format": FORMAT,
            "method": "slq",
            "dim": self.dim,
            "num_steps": self.num_steps,
            "num_probes": self.num_probes,
            "num_matvecs": self.num_matvecs,
            "seed": self.seed,
            "probe": self.probe,
            "reorthogonalize": self.reorthogonalize,
            "stop_reason": self.stop_reason,
        }
        return write_archive(path, arrays, meta)

    def to_json(self, **dumps_options: Any) -> str:
        """Return `summary` as a JSON string (options go to `json.dumps`, e.g. ``indent=2``).

        Examples
        --------
        >>> import json
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag(np.linspace(-1.0, 4.0, 200)), num_probes=2, seed=0)
        >>> json.loads(dos.to_json())["dim"]
        200
        """
        return json.dumps(self.summary(), **dumps_options)

    def plot(self, ax: Any = None, **options: Any) -> Any:
        """Draw the density with matplotlib; see `slq.plotting.plot_density` for `options`.

        By default: symmetric-log eigenvalue axis, log density axis, the bulk
        smoothed at its own width with its probe-to-probe band, and outliers as
        point masses. Returns the matplotlib Axes.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> import slq
        >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
        >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
        >>> ax = dos.plot(label="spiked")
        >>> ax.get_xscale(), ax.get_yscale()
        ('symlog', 'log')
        """
        from slq.plotting import plot_density

        return plot_density(self, ax, **options)

    def __repr__(self) -> str:
        return (
            f"SpectralDensity(dim={self.dim}, num_probes={self.num_probes}, "
            f"num_steps={self.num_steps}, lambda_min={self.lambda_min:.6g}, "
            f"lambda_max={self.lambda_max:.6g})"
        )


def _interval(spectrum: Any) -> tuple[float, float]:
    a, b = (float(x) for x in spectrum)
    if not (np.isfinite(a) and np.isfinite(b) and a <= b):
        msg = f"spectrum must be a finite interval (a, b) with a <= b, got {spectrum!r}"
        raise ValueError(msg)
    return a, b


def _positive(name: str, value: Any) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0.0):
        msg = f"{name} must be a finite number > 0, got {value}"
        raise ValueError(msg)
    return value


def _non_negative(name: str, value: Any) -> float:
    value = float(value)
    if not (np.isfinite(value) and value >= 0.0):
        msg = f"{name} must be a finite number >= 0, got {value}"
        raise ValueError(msg)
    return value


def _smooth(
    nodes: np.ndarray, weights: np.ndarray, grid: Any, sigma: float, kernel: str
) -> np.ndarray:
    """Return Σ_i τ_i f_σ(t − θ_i) for each probe (row) at each grid point t."""
    t = np.asarray(grid, dtype=np.float64)
    if t.ndim != 1:
        msg = f"grid must be 1-D, got shape {t.shape}"
        raise ValueError(msg)
    f = KERNELS[check_choice("kernel", kernel, tuple(KERNELS))]
    out = np.empty((nodes.shape[0], t.size))
    step = max(1, _EVALUATION_CHUNK // nodes.size)
    for start in range(0, t.size, step):
        chunk = t[start : start + step]
        values = f(chunk[None, None, :] - nodes[:, :, None], sigma)
        out[:, start : start + step] = np.einsum("km,kmg->kg", weights, values)
    return out

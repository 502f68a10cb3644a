"""`SpectralDensity`: a stochastic Lanczos quadrature result and what derives from it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from slq._kernels import KERNELS, default_sigma
from slq._validate import check_choice, check_positive_int
from slq.lanczos import LanczosResult
from slq.quadrature import _as_batch, gauss_quadrature

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

    def __post_init__(self) -> None:
        alpha, beta = _as_batch(self.alpha, self.beta)
        for array in (alpha, beta):
            array.flags.writeable = False
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "dim", check_positive_int("dim", self.dim))

    @classmethod
    def from_lanczos(cls, result: LanczosResult, *, dim: int, **metadata: Any) -> SpectralDensity:
        """Return the density of the probes of a `lanczos` run on an operator of size `dim`."""
        return cls(result.alpha, result.beta, dim=dim, num_matvecs=result.num_matvecs, **metadata)

    @functools.cached_property
    def _rule(self) -> tuple[np.ndarray, np.ndarray]:
        nodes, weights = gauss_quadrature(self.alpha, self.beta)
        nodes.flags.writeable = weights.flags.writeable = False
        return nodes, weights

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
        """
        width = self.lambda_max - self.lambda_min
        if width <= 0.0:
            width = max(abs(self.lambda_max), 1.0)
        return default_sigma(width, self.num_steps)

    def grid(self, num: int = 1024, *, pad: float | None = None) -> np.ndarray:
        """Return `num` equispaced points covering the Ritz values with `pad` on each side.

        `pad` defaults to 5 default kernel widths, where a Gaussian kernel has
        fallen below 4e-6 of its peak.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> dos = slq.density(np.diag([0.0, 1.0]), num_probes=1, seed=0)
        >>> dos.grid(5, pad=0.0).round(12)
        array([0.  , 0.25, 0.5 , 0.75, 1.  ])
        """
        num = check_positive_int("num", num)
        pad = 5.0 * self.default_sigma() if pad is None else float(pad)
        if not (np.isfinite(pad) and pad >= 0.0):
            msg = f"pad must be a finite number >= 0, got {pad}"
            raise ValueError(msg)
        return np.linspace(self.lambda_min - pad, self.lambda_max + pad, num)

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
        """
        t = np.asarray(grid, dtype=np.float64)
        if t.ndim != 1:
            msg = f"grid must be 1-D, got shape {t.shape}"
            raise ValueError(msg)
        f = KERNELS[check_choice("kernel", kernel, tuple(KERNELS))]
        sigma = self.default_sigma() if sigma is None else float(sigma)
        if not (np.isfinite(sigma) and sigma > 0.0):
            msg = f"sigma must be a finite number > 0, got {sigma}"
            raise ValueError(msg)
        out = np.empty((self.num_probes, t.size))
        step = max(1, _EVALUATION_CHUNK // self.nodes.size)
        for start in range(0, t.size, step):
            chunk = t[start : start + step]
            values = f(chunk[None, None, :] - self.nodes[:, :, None], sigma)
            out[:, start : start + step] = np.einsum("km,kmg->kg", self.weights, values)
        return out

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
        """
        if self.num_probes < 2:
            msg = f"stderr needs at least 2 probes, this density has {self.num_probes}"
            raise ValueError(msg)
        curves = self.per_probe(grid, sigma, kernel)
        return curves.std(axis=0, ddof=1) / np.sqrt(self.num_probes)

    def __repr__(self) -> str:
        return (
            f"SpectralDensity(dim={self.dim}, num_probes={self.num_probes}, "
            f"num_steps={self.num_steps}, lambda_min={self.lambda_min:.6g}, "
            f"lambda_max={self.lambda_max:.6g})"
        )

"""`slq.density` traced into a user's program (inside `jax.jit`): its result as arrays.

`SpectralDensity` is host data: numpy arrays, checked when made, its Gauss
rules and curves computed with numpy on demand. Inside a transformation
nothing can reach the host, so there `slq.density` returns a `TracedDensity`
instead: the coefficients, the Gauss rules (computed by the operator's
backend, `jnp.linalg.eigh` for JAX) and a smoothed curve, all arrays of the
operator's library. A NamedTuple is a JAX pytree: it can be returned from the
jitted function, and `to_density` turns the returned one into a
`SpectralDensity`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from slq._backends import array_namespace
from slq.spectral_density import SpectralDensity

__all__ = ["TracedDensity", "traced_density"]


class TracedDensity(NamedTuple):
    """What `slq.density` returns inside `jax.jit`: arrays of all m columns.

    Shapes cannot depend on traced values: every probe has m columns, with
    zeros in ``alpha``/``beta`` past its breakdown and, as in
    `SpectralDensity.nodes`, its last Ritz value repeated with weight 0.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import slq
    >>> @jax.jit
    ... def run(a):
    ...     return slq.density(a, num_steps=4, num_probes=2, seed=0)
    >>> traced = run(jnp.diag(jnp.arange(1.0, 9.0)))
    >>> isinstance(traced, slq.TracedDensity), traced.nodes.shape
    (True, (2, 4))
    """

    alpha: Any
    """Shape (k, m): diagonals of the probes' Lanczos tridiagonals."""
    beta: Any
    """Shape (k, m-1): off-diagonals; 0 from a probe's breakdown on."""
    residual_norm: Any
    """Shape (k,): β_m after each probe's last step (0 after a breakdown)."""
    nodes: Any
    """Shape (k, m): Ritz values of each probe, ascending."""
    weights: Any
    """Shape (k, m): Gauss weights of each probe, summing to 1."""
    num_matvecs: Any
    """Operator products the run spent (an integer array)."""
    dim: int
    """n, the dimension of the operator."""
    seed: int
    """The entropy the probes were drawn from."""

    def evaluate(self, grid: Any, sigma: Any = None) -> Any:
        r"""Return the Gaussian-smoothed density on `grid` (1-D), traceable.

        As `SpectralDensity.evaluate` with its default kernel:
        φ_σ(t) = (1/k) Σ_probes Σ_i τ_i N(t; θ_i, σ²), with σ by default the
        Ritz values' width over m (`slq.smoothing.default_sigma`).

        Examples
        --------
        >>> import jax, jax.numpy as jnp
        >>> import slq
        >>> grid = jnp.linspace(0.0, 9.0, 5)
        >>> curve = jax.jit(
        ...     lambda a: slq.density(a, num_steps=4, num_probes=2, seed=0).evaluate(grid)
        ... )(jnp.diag(jnp.arange(1.0, 9.0)))
        >>> curve.shape
        (5,)
        """
        xp = array_namespace(self.nodes)
        grid, sigma = _checked(xp, grid, sigma)
        nodes, weights = self.nodes, self.weights
        if sigma is None:
            high, low = xp.max(nodes), xp.min(nodes)
            width = high - low
            # One point has no width: its scale stands in for it (`smoothing.default_sigma`).
            scale = xp.maximum(xp.abs(high), xp.ones_like(high))
            sigma = xp.where(width > 0, width, scale) / nodes.shape[1]
        x = (grid[None, None, :] - nodes[:, :, None]) / sigma
        kernel = xp.exp(-0.5 * x * x) / (sigma * math.sqrt(2.0 * math.pi))
        return xp.mean(xp.sum(weights[:, :, None] * kernel, axis=1), axis=0)

    def to_density(self) -> SpectralDensity:
        """Return the `SpectralDensity` of a result returned from the transformation (concrete).

        Examples
        --------
        >>> import jax, jax.numpy as jnp
        >>> import slq
        >>> jax.config.update("jax_enable_x64", True)
        >>> run = jax.jit(lambda a: slq.density(a, num_steps=4, num_probes=2, seed=0))
        >>> run(jnp.diag(jnp.arange(1.0, 9.0))).to_density().num_probes
        2
        """
        return SpectralDensity(
            np.asarray(self.alpha, dtype=np.float64),
            np.asarray(self.beta, dtype=np.float64),
            dim=int(self.dim),
            num_matvecs=int(self.num_matvecs),
            seed=int(self.seed),
            residual_norm=np.asarray(self.residual_norm, dtype=np.float64),
        )


def _checked(xp: Any, grid: Any, sigma: Any) -> tuple[Any, Any]:
    """Return `grid` as an array and `sigma`, or raise: shapes and types are known when traced."""
    if isinstance(grid, str) or (not hasattr(grid, "shape") and not isinstance(grid, list | tuple)):
        msg = f"grid must be real numbers (a 1-D array), got {type(grid).__name__}"
        raise TypeError(msg)
    grid = xp.asarray(grid)
    if grid.ndim != 1 or not xp.isdtype(grid.dtype, "real floating"):
        msg = f"grid must be a 1-D array of real floats, got {grid.dtype} of shape {grid.shape}"
        raise ValueError(msg)
    if sigma is None:
        return grid, sigma
    if isinstance(sigma, bool) or (
        not isinstance(sigma, numbers.Real | np.ndarray) and not hasattr(sigma, "dtype")
    ):
        msg = f"sigma must be a real number or None, got {type(sigma).__name__}"
        raise TypeError(msg)
    if isinstance(sigma, numbers.Real) and not (math.isfinite(sigma) and float(sigma) > 0):
        msg = f"sigma must be a finite number > 0, got {sigma}"
        raise ValueError(msg)
    return grid, sigma


def traced_density(op: Any, results: list[Any], dim: int, seed: int) -> TracedDensity:
    """Join traced batches (`LanczosResult`s of arrays) and their Gauss rules into one result."""
    xp = op.xp
    alpha = xp.concat([r.alpha for r in results], axis=0)
    beta = xp.concat([r.beta for r in results], axis=0)
    lengths = xp.concat([r.lengths for r in results], axis=0)
    residual = xp.concat([r.residual_norm for r in results], axis=0)
    nodes, weights = op.backend.gauss_rules(alpha, beta, lengths)
    products = sum(r.num_matvecs for r in results)
    return TracedDensity(alpha, beta, residual, nodes, weights, products, dim, seed)

"""Smoothing kernels for turning quadrature nodes into a density curve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from slq._validate import check_choice, check_points

__all__ = ["KERNELS", "default_sigma", "grid_points", "smooth"]

# Bound on the (probes x nodes x grid points) temporary while evaluating kernels.
EVALUATION_CHUNK = 1 << 22


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * (x / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


def _lorentzian(x: np.ndarray, sigma: float) -> np.ndarray:
    return (sigma / np.pi) / (x**2 + sigma**2)


KERNELS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "gaussian": _gaussian,
    "lorentzian": _lorentzian,
}


def default_sigma(width: float, num_steps: int) -> float:
    """Kernel width: the spectral width divided by the number of Lanczos steps.

    An m-node Gauss rule integrates polynomials of degree 2m − 1 exactly, and a
    Gaussian of width σ on an interval of width W is resolved by polynomials of
    degree ~ W/σ (Lin, Saad & Yang 2016, §3; Ubaru, Chen & Saad 2017). With
    σ = W/m, each probe's smoothed curve is therefore close to the smoothed
    spectral measure of that probe; a smaller σ shows individual nodes.
    """
    return width / max(num_steps, 1)


def smooth(
    nodes: np.ndarray, weights: np.ndarray, grid: Any, sigma: float, kernel: str
) -> np.ndarray:
    """Return Σ_i τ_i f_σ(t − θ_i) for each probe (row) at each grid point t: shape (k, g).

    `nodes` and `weights` have shape (k, m); the kernels are evaluated in
    chunks of the grid so that the temporary stays below `EVALUATION_CHUNK`.
    """
    t = check_points("grid", grid)
    if t.ndim != 1:
        msg = f"grid must be 1-D, got shape {t.shape}"
        raise ValueError(msg)
    f = KERNELS[check_choice("kernel", kernel, tuple(KERNELS))]
    out = np.empty((nodes.shape[0], t.size))
    step = max(1, EVALUATION_CHUNK // nodes.size)
    for start in range(0, t.size, step):
        chunk = t[start : start + step]
        values = f(chunk[None, None, :] - nodes[:, :, None], sigma)
        out[:, start : start + step] = np.einsum("km,kmg->kg", weights, values)
    return out


def grid_points(low: float, high: float, num: int, linthresh: float | None = None) -> np.ndarray:
    """Return `num` points from `low` to `high`: equispaced in t, or in asinh(t / linthresh).

    The second is linear within about ±linthresh of zero and logarithmic beyond,
    so that a narrow bulk near zero and outliers far from it are both resolved.
    """
    if linthresh is None:
        return np.linspace(low, high, num)
    u = np.linspace(np.arcsinh(low / linthresh), np.arcsinh(high / linthresh), num)
    return linthresh * np.sinh(u)

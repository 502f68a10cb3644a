"""Smoothing kernels for turning quadrature nodes into a density curve."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["KERNELS", "default_sigma"]


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

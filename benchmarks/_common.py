"""What the benchmark scripts share: the data, a timer, and the exact smoothed density.

The reference densities and L1 distances are `slq.testing`'s."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from slq.testing import l1_distance, smoothed_density


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, no download), pixels in [0, 1]."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


def best(f: Callable[[], object], repeat: int = 3, warmup: bool = True) -> float:
    """The fastest of `repeat` timed calls of `f`, after one untimed call if `warmup`."""
    if warmup:
        f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def smoothed(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smoothed density of (probes, m) nodes and weights on `grid`, probe-averaged."""
    return smoothed_density(nodes, grid, sigma=sigma, weights=weights)


def l1(a: np.ndarray, b: np.ndarray, grid: np.ndarray) -> float:
    """The L1 distance of two curves already evaluated on `grid` (`l1_distance` takes measures)."""
    return float(np.trapezoid(np.abs(a - b), grid))


class Reference:
    """The exact spectrum smoothed with sigma = width / steps, on a grid 5 sigma past it."""

    def __init__(self, hessian: np.ndarray, steps: int) -> None:
        self.eigenvalues = np.linalg.eigvalsh((hessian + hessian.T) / 2)
        self._smooth(steps)

    @classmethod
    def of_spectrum(cls, eigenvalues: np.ndarray, steps: int) -> Reference:
        """The reference of a known sorted spectrum."""
        reference = cls.__new__(cls)
        reference.eigenvalues = eigenvalues
        reference._smooth(steps)
        return reference

    def _smooth(self, steps: int) -> None:
        low, high = self.eigenvalues[0], self.eigenvalues[-1]
        self.sigma = (high - low) / steps
        self.grid = np.linspace(low - 5 * self.sigma, high + 5 * self.sigma, 4000)
        self.curve = smoothed_density(self.eigenvalues, self.grid, sigma=self.sigma)

    def error(self, nodes: np.ndarray, weights: np.ndarray) -> float:
        """L1 distance of the smoothed (nodes, weights) to the exact density (slq.testing)."""
        rules = (np.nan_to_num(nodes), weights)
        return l1_distance(rules, self.eigenvalues, sigma=self.sigma, grid=self.grid)

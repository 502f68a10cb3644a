"""Hypothesis strategies: symmetric matrices with a prescribed, known spectrum."""

from __future__ import annotations

import numpy as np
from helpers import symmetric_with_spectrum
from hypothesis import strategies as st

SPECTRUM_KINDS = ("uniform", "repeated", "rank_deficient", "negative", "outliers")


class Case:
    """A symmetric matrix and its exact eigenvalues (float64).

    A plain class, not a dataclass: hypothesis would print a dataclass's arrays in full.
    """

    def __init__(self, kind: str, eigenvalues: np.ndarray, matrix: np.ndarray, seed: int) -> None:
        self.kind, self.eigenvalues, self.matrix, self.seed = kind, eigenvalues, matrix, seed

    @property
    def n(self) -> int:
        return self.eigenvalues.size

    @property
    def num_distinct(self) -> int:
        scale = max(np.abs(self.eigenvalues).max(), 1.0)
        return int(np.sum(np.diff(np.sort(self.eigenvalues)) > 1e-9 * scale)) + 1

    def __repr__(self) -> str:  # short, so failures stay readable
        return f"Case({self.kind}, n={self.n}, seed={self.seed})"


def _eigenvalues(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, n)
    if kind == "repeated":
        return rng.choice(rng.uniform(-2.0, 2.0, rng.integers(1, 5)), n)
    if kind == "rank_deficient":
        lam = rng.uniform(0.5, 2.0, n)
        lam[: rng.integers(1, n + 1) // 2 + n // 2] = 0.0
        return lam
    if kind == "negative":
        return -rng.uniform(0.1, 3.0, n)
    # A bulk near zero and a few large outliers: the shape of a network Hessian.
    lam = rng.normal(0.0, 0.05, n)
    spikes = min(n, int(rng.integers(1, 4)))
    lam[:spikes] = rng.uniform(5.0, 50.0, spikes)
    return lam


@st.composite
def cases(draw: st.DrawFn, *, min_n: int = 2, max_n: int = 40, kinds=SPECTRUM_KINDS) -> Case:
    """A random symmetric matrix of size n in [min_n, max_n] with spectrum of one of `kinds`."""
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(min_n, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    lam = _eigenvalues(kind, n, np.random.default_rng(seed))
    return Case(kind, lam, symmetric_with_spectrum(lam, seed + 1), seed)

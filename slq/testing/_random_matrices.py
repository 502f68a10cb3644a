"""Random matrices whose spectra follow a known law as n → ∞: GOE, Wishart, random regular graphs.

Actual random matrices, so finite-n effects (edge fluctuations, the largest
eigenvalue of a graph) are real; exact eigenvalues from one dense `eigvalsh`
up to n = `EXACT_LIMIT`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slq._validate import check_positive_int, check_real
from slq.testing._laws import kesten_mckay, marchenko_pastur, semicircle
from slq.testing._problem import (
    EXACT_LIMIT,
    Problem,
    check_like,
    exact_eigenvalues,
    generator,
    to_library,
)

__all__ = ["goe", "random_regular_graph", "wishart"]

# Switches tried per defective edge of the configuration model before giving up.
_MAX_SWITCHES = 100


def goe(n: int, *, seed: Any = None, like: Any = None) -> Problem:
    """Return a GOE matrix (G + Gᵀ)/√(2n), G Gaussian: law `semicircle` (radius 2).

    Off-diagonal entries have variance 1/n, diagonal ones 2/n.

    Examples
    --------
    >>> from slq import testing
    >>> p = testing.goe(400, seed=0)
    >>> p.law.name, bool(abs(p.eigenvalues[-1] - 2.0) < 0.2)
    ('semicircle(radius=2)', True)
    """
    n = check_positive_int("n", n)
    like = check_like(like)
    g = generator(seed).standard_normal((n, n))
    a = (g + g.T) / math.sqrt(2 * n)
    return Problem(f"GOE n = {n}", to_library(a, like), exact_eigenvalues(a), semicircle(2.0))


def wishart(n: int, ratio: float, *, seed: Any = None, like: Any = None) -> Problem:
    """Return XᵀX/m for Gaussian X of shape (m, n), m = round(n / ratio): law Marchenko–Pastur.

    The law's ratio is n/m exactly (m rounds n / `ratio`); `ratio` in (0, 1].

    Examples
    --------
    >>> from slq import testing
    >>> p = testing.wishart(200, 0.5, seed=0)
    >>> p.law.name, p.dim
    ('marchenko_pastur(ratio=0.5, variance=1)', 200)
    """
    n = check_positive_int("n", n)
    ratio = check_real("ratio", ratio)
    marchenko_pastur(ratio)  # checks the ratio before anything of size n is made
    like = check_like(like)
    m = max(round(n / ratio), n)
    x = generator(seed).standard_normal((m, n))
    a = x.T @ x / m
    a = (a + a.T) / 2
    law = marchenko_pastur(n / m)
    name = f"Wishart n = {n}, m = {m}"
    return Problem(name, to_library(a, like), exact_eigenvalues(a), law)


def random_regular_graph(n: int, degree: int, *, seed: Any = None) -> Problem:
    """Return the adjacency matrix of a random simple d-regular graph (scipy CSR): law Kesten–McKay.

    The configuration model (random pairing of n·d half-edges), with each loop
    or repeated edge removed by a random switch with another edge (McKay and
    Wormald 1990): nearly uniform over simple d-regular graphs. The eigenvalue d
    (constant vector) is the law's one outlier. Needs scipy.

    Raises
    ------
    ValueError
        If n·d is odd, d >= n or d < 3.

    Examples
    --------
    >>> from slq import testing
    >>> p = testing.random_regular_graph(100, 3, seed=0)
    >>> degrees = p.matrix.sum(axis=0)
    >>> float(degrees.min()), float(degrees.max()), float(p.eigenvalues[-1].round(12))
    (3.0, 3.0, 3.0)
    """
    n = check_positive_int("n", n)
    law = kesten_mckay(degree)
    if degree >= n or (n * degree) % 2:
        msg = f"a simple {degree}-regular graph on n = {n} vertices needs d < n and n·d even"
        raise ValueError(msg)
    import scipy.sparse as sp

    edges = _simple_pairing(n, degree, generator(seed))
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    matrix = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, n))
    matrix.sort_indices()
    exact = np.linalg.eigvalsh(matrix.toarray()) if n <= EXACT_LIMIT else None
    return Problem(f"random {degree}-regular graph n = {n}", matrix, exact, law)


def _simple_pairing(n: int, degree: int, rng: np.random.Generator) -> np.ndarray:
    """Edges (n·d/2, 2) of a simple d-regular graph: a random pairing, then switches."""
    stubs = rng.permutation(np.repeat(np.arange(n), degree)).reshape(-1, 2)
    edges = [_edge(int(a), int(b)) for a, b in stubs]
    count: dict[tuple[int, int], int] = {}
    for edge in edges:
        count[edge] = count.get(edge, 0) + 1
    for i in range(len(edges)):
        tries = 0
        while edges[i][0] == edges[i][1] or count[edges[i]] > 1:
            tries += 1
            if tries > _MAX_SWITCHES:
                msg = "could not make the pairing simple; this is a bug: please report it"
                raise RuntimeError(msg)
            _switch(edges, count, i, int(rng.integers(len(edges))), rng)
    return np.array(edges, dtype=np.int64)


def _edge(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


def _switch(
    edges: list[tuple[int, int]],
    count: dict[tuple[int, int], int],
    i: int,
    j: int,
    rng: np.random.Generator,
) -> None:
    """Replace edges {u, v}, {x, y} by {u, x}, {v, y} (or {u, y}, {v, x}) if both are new."""
    (u, v), (x, y) = edges[i], edges[j]
    if rng.integers(2):
        x, y = y, x
    new = (_edge(u, x), _edge(v, y))
    if i == j or any(a == b or count.get((a, b), 0) for a, b in new) or new[0] == new[1]:
        return
    for old in (edges[i], edges[j]):
        count[old] -= 1
    for edge in new:
        count[edge] = count.get(edge, 0) + 1
    edges[i], edges[j] = new

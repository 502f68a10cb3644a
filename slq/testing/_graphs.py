"""Graph Laplacians with closed-form spectra: path, cycle, d-dimensional grid and torus.

L = D − A as scipy CSR. The path's eigenvalues are 2 − 2 cos(πk/n) and the
cycle's 2 − 2 cos(2πk/n), k = 0, …, n − 1 (Chung 1997, §1.5); a grid (torus) is
the Cartesian product of paths (cycles), whose Laplacian is their Kronecker sum,
so its eigenvalues are all sums of one eigenvalue per axis.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from slq._validate import check_positive_int
from slq.testing._laws import arcsine
from slq.testing._problem import Problem

__all__ = ["cycle_laplacian", "grid_laplacian", "path_laplacian", "torus_laplacian"]


def _path_eigenvalues(n: int) -> np.ndarray:
    return 2.0 - 2.0 * np.cos(np.pi * np.arange(n) / n)


def _cycle_eigenvalues(n: int) -> np.ndarray:
    return 2.0 - 2.0 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _laplacian_1d(n: int, closed: bool) -> Any:
    import scipy.sparse as sp

    ones = np.ones(n - 1)
    adjacency = sp.diags_array([ones, ones], offsets=[-1, 1], shape=(n, n), format="lil")
    if closed:
        adjacency[0, n - 1] = adjacency[n - 1, 0] = 1.0
    adjacency = sp.csr_array(adjacency)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return sp.diags_array(degree, format="csr") - adjacency


def _kronecker_sum(parts: Sequence[Any]) -> Any:
    """L₁ ⊕ L₂ ⊕ ⋯ = Σ_i I ⊗ ⋯ ⊗ L_i ⊗ ⋯ ⊗ I, as CSR."""
    import scipy.sparse as sp

    sizes = [p.shape[0] for p in parts]
    total = None
    for axis, part in enumerate(parts):
        left = sp.eye_array(int(np.prod(sizes[:axis])), format="csr")
        right = sp.eye_array(int(np.prod(sizes[axis + 1 :])), format="csr")
        term = sp.kron(sp.kron(left, part), right, format="csr")
        total = term if total is None else total + term
    out = sp.csr_array(total)
    out.sort_indices()
    return out


def _outer_sum(spectra: Sequence[np.ndarray]) -> np.ndarray:
    return np.sort(functools.reduce(lambda a, b: np.add.outer(a, b).ravel(), spectra))


def _check_shape(shape: Any, smallest: int) -> tuple[int, ...]:
    try:
        sizes = tuple(shape)
    except TypeError:
        msg = f"shape must be a sequence of ints (one size per axis), got {shape!r}"
        raise TypeError(msg) from None
    if not sizes:
        msg = "shape must name at least one axis, got ()"
        raise ValueError(msg)
    sizes = tuple(check_positive_int("shape entries", s) for s in sizes)
    if min(sizes) < smallest:
        msg = f"every axis needs at least {smallest} vertices, got shape {sizes}"
        raise ValueError(msg)
    return sizes


def path_laplacian(n: int) -> Problem:
    """Return the Laplacian of the path on n vertices: eigenvalues 2 − 2 cos(πk/n), law arcsine.

    Examples
    --------
    >>> from slq import testing
    >>> p = testing.path_laplacian(3)
    >>> p.matrix.toarray()
    array([[ 1., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  1.]])
    >>> p.eigenvalues.round(12), p.law.name
    (array([0., 1., 3.]), 'arcsine(0, 4)')
    """
    n = check_positive_int("n", n)
    return Problem(f"path n = {n}", _laplacian_1d(n, False), _path_eigenvalues(n), arcsine())


def cycle_laplacian(n: int) -> Problem:
    """Return the Laplacian of the cycle on n >= 3 vertices: eigenvalues 2 − 2 cos(2πk/n).

    Its law is also the arcsine law on [0, 4].

    Examples
    --------
    >>> from slq import testing
    >>> testing.cycle_laplacian(4).eigenvalues.round(12)
    array([0., 2., 2., 4.])
    """
    n = check_positive_int("n", n)
    if n < 3:
        msg = f"a cycle needs n >= 3 vertices, got {n}"
        raise ValueError(msg)
    eigenvalues = np.sort(_cycle_eigenvalues(n))
    return Problem(f"cycle n = {n}", _laplacian_1d(n, True), eigenvalues, arcsine())


def grid_laplacian(shape: Sequence[int]) -> Problem:
    """Return the Laplacian of the d-dimensional grid graph of `shape` (a product of paths).

    Eigenvalues: every sum of one path eigenvalue per axis. The law is the
    arcsine law for one axis and None (no closed form) for more.

    Examples
    --------
    >>> from slq import testing
    >>> p = testing.grid_laplacian((2, 3))
    >>> p.dim, p.eigenvalues.round(12)
    (6, array([0., 1., 2., 3., 3., 5.]))
    """
    sizes = _check_shape(shape, 1)
    matrix = _kronecker_sum([_laplacian_1d(s, False) for s in sizes])
    eigenvalues = _outer_sum([_path_eigenvalues(s) for s in sizes])
    law = arcsine() if len(sizes) == 1 else None
    return Problem(f"grid {'x'.join(map(str, sizes))}", matrix, eigenvalues, law)


def torus_laplacian(shape: Sequence[int]) -> Problem:
    """Return the Laplacian of the d-dimensional torus of `shape` (a product of cycles, sizes >= 3).

    Examples
    --------
    >>> from slq import testing
    >>> p = testing.torus_laplacian((3, 4))
    >>> p.dim, p.eigenvalues.max().round(12), float(p.matrix.diagonal()[0])
    (12, np.float64(7.0), 4.0)
    """
    sizes = _check_shape(shape, 3)
    matrix = _kronecker_sum([_laplacian_1d(s, True) for s in sizes])
    eigenvalues = _outer_sum([_cycle_eigenvalues(s) for s in sizes])
    law = arcsine() if len(sizes) == 1 else None
    return Problem(f"torus {'x'.join(map(str, sizes))}", matrix, eigenvalues, law)

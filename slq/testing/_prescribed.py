"""Matrices with a prescribed spectrum: Q diag(λ) Qᵀ, dense or as a structured operator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from slq._validate import check_choice, check_positive_int, check_real
from slq.operator import aslinearoperator
from slq.testing._laws import SpectralLaw
from slq.testing._problem import (
    Problem,
    check_eigenvalues,
    check_like,
    generator,
    to_library,
)
from slq.testing._structured import (
    KRONECKER_FACTOR_LIMIT,
    HouseholderRotation,
    RotatedDiagonal,
    hadamard_rotation,
    kronecker_factor_sizes,
    random_kronecker_rotation,
)

__all__ = [
    "DENSE_LIMIT",
    "STRUCTURES",
    "matrix_with_spectrum",
    "spiked_eigenvalues",
    "spiked_matrix",
]

STRUCTURES = ("dense", "householder", "hadamard", "kronecker")
# A dense Haar rotation costs n² numbers and an n³ QR: 8192² float64 is 512 MiB.
DENSE_LIMIT = 8192


def matrix_with_spectrum(
    eigenvalues: Any, *, seed: Any = None, like: Any = None, structure: str = "dense"
) -> Problem:
    """Return a symmetric matrix Q diag(λ) Qᵀ whose eigenvalues are exactly `eigenvalues`.

    Parameters
    ----------
    eigenvalues : array_like, shape (n,)
        Finite real numbers, in any order, repeats allowed.
    seed : int, numpy Generator or SeedSequence, optional
        Seeds the random orthogonal Q; the same seed gives the same matrix.
    like : array, optional
        An array of the library, device and real floating dtype the matrix (or
        the operator's vectors) should have; default numpy float64.
    structure : {"dense", "householder", "hadamard", "kronecker"}
        How Q is made and stored:

        - ``"dense"``: Q Haar-random (QR of a Gaussian matrix, signs fixed,
          Mezzadri 2007); the matrix is a dense array, exactly symmetric.
          n ≤ 8192.
        - ``"householder"``: Q a product of 8 random Householder reflections;
          an operator storing 9·n numbers, any n. Q − I has rank 8: use it for
          size, not to hide the eigenbasis.
        - ``"hadamard"``: Q = W D₃ W D₂ W D₁, W the normalised Walsh–Hadamard
          transform and D_i random signs; an operator storing 4·n numbers, every
          coordinate spread over all others. n a power of two.
        - ``"kronecker"``: the same with W = Q₁ ⊗ ⋯ ⊗ Q_L, Haar-random
          orthogonal factors of at most 256 rows whose sizes multiply to n:
          dense like ``"hadamard"``, for any n whose prime factors are at most
          256 (10⁶ = 250 · 250 · 16); an operator storing 4·n numbers plus
          the factors.

        The operators apply Q and Qᵀ to a block of k vectors in one go (O(n·k)
        memory beyond their own), so ``slq.density`` runs at n = 10⁶.

    Returns
    -------
    Problem
        Named ``"prescribed spectrum"``, with ``matrix`` the array or
        `LinearOperator`, ``eigenvalues`` the input sorted (float64) and no law.

    Raises
    ------
    ValueError
        For eigenvalues that are empty, not 1-D or not finite, an unknown
        `structure`, n above 8192 for ``"dense"``, not a power of two for
        ``"hadamard"`` or with a prime factor above 256 for ``"kronecker"``;
        all before anything of size n is made.

    Examples
    --------
    >>> import numpy as np
    >>> from slq import testing
    >>> p = testing.matrix_with_spectrum([3.0, 1.0, 2.0], seed=0)
    >>> np.linalg.eigvalsh(p.matrix).round(12), p.eigenvalues
    (array([1., 2., 3.]), array([1., 2., 3.]))
    >>> op = testing.matrix_with_spectrum(np.arange(1.0, 9.0), seed=0, structure="hadamard").matrix
    >>> np.linalg.eigvalsh(op.matmat(np.eye(8))).round(12)
    array([1., 2., 3., 4., 5., 6., 7., 8.])
    """
    eigenvalues = check_eigenvalues(eigenvalues)
    structure = check_choice("structure", structure, STRUCTURES)
    like = check_like(like)
    _check_size(eigenvalues.size, structure)
    rng = generator(seed)
    if structure == "dense":
        matrix = to_library(_dense(eigenvalues, rng), like)
    else:
        like = np.zeros(0) if like is None else like
        kinds = {
            "householder": HouseholderRotation,
            "hadamard": hadamard_rotation,
            "kronecker": random_kronecker_rotation,
        }
        rotation = kinds[structure](eigenvalues.size, rng, like)
        matrix = aslinearoperator(RotatedDiagonal(eigenvalues, rotation, like), like=like)
    return Problem("prescribed spectrum", matrix, np.sort(eigenvalues), None)


def _check_size(n: int, structure: str) -> None:
    if structure == "dense" and n > DENSE_LIMIT:
        msg = (
            f"structure='dense' makes an n × n matrix, n <= {DENSE_LIMIT}; got n = {n}: use "
            "structure='kronecker' (n with small prime factors), 'hadamard' (n a power of "
            "two) or 'householder' (any n)"
        )
        raise ValueError(msg)
    if structure == "hadamard" and n & (n - 1):
        msg = (
            f"structure='hadamard' needs n a power of two, got n = {n}: use "
            "structure='kronecker' (n with prime factors <= "
            f"{KRONECKER_FACTOR_LIMIT}) or 'householder' (any n)"
        )
        raise ValueError(msg)
    if structure == "kronecker" and kronecker_factor_sizes(n) is None:
        msg = (
            f"structure='kronecker' needs n whose prime factors are all <= "
            f"{KRONECKER_FACTOR_LIMIT}, got n = {n}: use structure='householder' for any n"
        )
        raise ValueError(msg)


def _dense(eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = eigenvalues.size
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q *= np.sign(np.diag(r))  # Haar measure (Mezzadri 2007)
    a = (q * eigenvalues) @ q.T
    return (a + a.T) / 2.0


def spiked_eigenvalues(
    n: int, bulk: SpectralLaw, outliers: Sequence[tuple[float, int]]
) -> np.ndarray:
    """Return n sorted eigenvalues: the bulk law's quantiles plus outliers with multiplicities.

    The bulk gets n − Σ multiplicities points at its (i + 1/2)/m quantiles.

    Parameters
    ----------
    n : int
        The total count.
    bulk : SpectralLaw
        The law of the bulk.
    outliers : sequence of (value, multiplicity)
        Finite values, multiplicities >= 1 summing to less than n.

    Examples
    --------
    >>> from slq import testing
    >>> testing.spiked_eigenvalues(5, testing.uniform(0.0, 1.0), [(10.0, 2)])
    array([ 0.16666667,  0.5       ,  0.83333333, 10.        , 10.        ])
    """
    n = check_positive_int("n", n)
    if not isinstance(bulk, SpectralLaw):
        msg = f"bulk must be a SpectralLaw (e.g. testing.semicircle()), got {type(bulk).__name__}"
        raise TypeError(msg)
    values, counts = _check_outliers(outliers)
    if sum(counts) >= n:
        msg = f"the outliers' multiplicities must sum to less than n = {n}, got {sum(counts)}"
        raise ValueError(msg)
    spikes = np.repeat(np.array(values, dtype=np.float64), counts)
    return np.sort(np.concatenate([bulk.quantiles(n - sum(counts)), spikes]))


def _check_outliers(outliers: Any) -> tuple[list[float], list[int]]:
    try:
        pairs = [tuple(pair) for pair in outliers]
    except TypeError:
        msg = f"outliers must be a sequence of (value, multiplicity) pairs, got {outliers!r}"
        raise TypeError(msg) from None
    if any(len(pair) != 2 for pair in pairs):
        msg = f"outliers must be a sequence of (value, multiplicity) pairs, got {outliers!r}"
        raise ValueError(msg)
    values = [check_real("outlier value", value) for value, _ in pairs]
    if not np.all(np.isfinite(values)):
        msg = f"outlier values must be finite, got {values}"
        raise ValueError(msg)
    counts = [check_positive_int("outlier multiplicity", count) for _, count in pairs]
    return values, counts


def spiked_matrix(
    n: int,
    bulk: SpectralLaw,
    outliers: Sequence[tuple[float, int]],
    *,
    seed: Any = None,
    like: Any = None,
    structure: str = "dense",
) -> Problem:
    """Return a spiked model: `matrix_with_spectrum` of `spiked_eigenvalues`, with law `bulk`.

    The outliers' mass, Σ multiplicities / n, vanishes as n → ∞, so the limiting
    law is the bulk's; the outliers are in ``eigenvalues``.

    Examples
    --------
    >>> from slq import testing
    >>> p = testing.spiked_matrix(100, testing.semicircle(1.0), [(5.0, 1), (9.0, 2)], seed=0)
    >>> p.name, p.law.name, p.eigenvalues[-3:]
    ('spiked semicircle(radius=1)', 'semicircle(radius=1)', array([5., 9., 9.]))
    """
    eigenvalues = spiked_eigenvalues(n, bulk, outliers)
    problem = matrix_with_spectrum(eigenvalues, seed=seed, like=like, structure=structure)
    return Problem(f"spiked {bulk.name}", problem.matrix, problem.eigenvalues, bulk)

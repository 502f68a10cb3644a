"""Q diag(λ) Qᵀ as an operator, with a fast orthogonal Q that is never stored as a matrix.

Two orthogonal transforms, each applied to a block of vectors (n, k) at once:

- Householder: Q = H₁ ⋯ H_r, H_i = I − 2 u_i u_iᵀ with random unit u_i; r·n
  numbers. Q differs from I by rank r, so Q diag(λ) Qᵀ is diagonal plus rank 2r.
- Randomised Hadamard: Q = W D₃ W D₂ W D₁ with W the normalised Walsh–Hadamard
  matrix (n a power of two) and D_i random signs (Ailon & Chazelle 2009); Q is
  dense and spreads every coordinate over all others. W is a Kronecker product of
  small Hadamard matrices, applied one factor at a time as a matrix product
  (O(n·Σ B_i) work for factors of size B_i ≤ 64).
- Randomised Kronecker: the same with W = Q₁ ⊗ ⋯ ⊗ Q_L, Haar-random orthogonal
  factors whose sizes multiply to n (any n whose prime factors are at most
  `KRONECKER_FACTOR_LIMIT`, e.g. 10⁶ = 125 · 125 · 64): dense for such n too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slq._backends.namespace import namespace_and_device

__all__ = [
    "KRONECKER_FACTOR_LIMIT",
    "HouseholderRotation",
    "KroneckerRotation",
    "RotatedDiagonal",
    "hadamard_rotation",
    "kronecker_factor_sizes",
    "random_kronecker_rotation",
    "sylvester_hadamard",
]

# Reflections in the Householder transform, rounds of the randomised Hadamard one.
NUM_REFLECTIONS = 8
HADAMARD_ROUNDS = 3
# Largest Kronecker factor of W: 2⁶, so each factor is a cheap (64, 64) product.
_FACTOR_BITS = 6
KRONECKER_FACTOR_LIMIT = 256
"""The largest factor of a random Kronecker rotation, and so n's largest prime factor."""


def sylvester_hadamard(size: int) -> np.ndarray:
    """Return the normalised Walsh–Hadamard matrix of order `size` (a power of two).

    Sylvester's construction: W₂ₙ = [[Wₙ, Wₙ], [Wₙ, −Wₙ]] / √2; symmetric and orthogonal.

    Examples
    --------
    >>> from slq.testing._structured import sylvester_hadamard
    >>> sylvester_hadamard(2) * 2**0.5
    array([[ 1.,  1.],
           [ 1., -1.]])
    """
    w = np.ones((1, 1))
    while w.shape[0] < size:
        w = np.block([[w, w], [w, -w]]) / np.sqrt(2.0)
    return w


class HouseholderRotation:
    """Q = H₁ ⋯ H_r with random reflections H_i = I − 2 u_i u_iᵀ, in the library of `like`."""

    def __init__(self, n: int, rng: np.random.Generator, like: Any) -> None:
        u = rng.standard_normal((NUM_REFLECTIONS, n))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        xp, device = namespace_and_device(like)
        self.xp = xp
        self.columns = [xp.asarray(row[:, None], dtype=like.dtype, device=device) for row in u]

    def _reflect(self, u: Any, x: Any) -> Any:
        # 2 uᵀx first: a (1, k) product, so that only one (n, k) temporary is made.
        return x - u * (2.0 * self.xp.matmul(self.xp.matrix_transpose(u), x))

    def apply(self, x: Any) -> Any:
        """Q x for x of shape (n, k)."""
        for u in reversed(self.columns):
            x = self._reflect(u, x)
        return x

    def apply_transpose(self, x: Any) -> Any:
        """Qᵀ x for x of shape (n, k)."""
        for u in self.columns:
            x = self._reflect(u, x)
        return x


def kronecker_factor_sizes(n: int, limit: int = KRONECKER_FACTOR_LIMIT) -> list[int] | None:
    """Return factor sizes ≤ `limit` whose product is n (largest first), or None if none exist.

    Prime factors, largest first, each put in the first size it fits under `limit`.

    Examples
    --------
    >>> from slq.testing._structured import kronecker_factor_sizes
    >>> kronecker_factor_sizes(10**6), kronecker_factor_sizes(2 * 257)
    ([250, 250, 16], None)
    """
    primes, rest, p = [], n, 2
    while p * p <= rest:
        while rest % p == 0:
            primes.append(p)
            rest //= p
        p += 1
    primes += [rest] if rest > 1 else []
    if any(q > limit for q in primes):
        return None
    sizes: list[int] = []
    for q in sorted(primes, reverse=True):
        fits = [i for i, size in enumerate(sizes) if size * q <= limit]
        if fits:
            sizes[fits[0]] *= q
        else:
            sizes.append(q)
    return sorted(sizes, reverse=True) or [1]


class KroneckerRotation:
    """Q = W D₃ W D₂ W D₁, W = F₁ ⊗ ⋯ ⊗ F_L (orthogonal factors), D_i random signs.

    Built by `hadamard_rotation` (Walsh–Hadamard factors) or
    `random_kronecker_rotation` (Haar-random factors), in the library of `like`.
    """

    def __init__(
        self, factors: list[np.ndarray], n: int, rng: np.random.Generator, like: Any
    ) -> None:
        xp, device = namespace_and_device(like)
        self.xp = xp
        self.factors = [xp.asarray(f, dtype=like.dtype, device=device) for f in factors]
        self.transposed = [xp.asarray(f.T, dtype=like.dtype, device=device) for f in factors]
        signs = rng.choice(np.array([-1.0, 1.0]), size=(HADAMARD_ROUNDS, n))
        self.signs = [xp.asarray(s[:, None], dtype=like.dtype, device=device) for s in signs]

    def _kronecker(self, factors: list[Any], x: Any) -> Any:
        # x viewed as a tensor (B₁, …, B_L, k): multiply along the leading axis and
        # rotate it to the back, L times; the axes end as (k, B₁, …, B_L). With each
        # factor transposed this is the transpose of the same Kronecker product.
        xp, k = self.xp, x.shape[1]
        for w in factors:
            x = xp.matrix_transpose(xp.matmul(w, xp.reshape(x, (w.shape[0], -1))))
        return xp.matrix_transpose(xp.reshape(x, (k, -1)))

    def apply(self, x: Any) -> Any:
        """Q x for x of shape (n, k)."""
        for s in self.signs:
            x = self._kronecker(self.factors, s * x)
        return x

    def apply_transpose(self, x: Any) -> Any:
        """Qᵀ x = D₁ Wᵀ D₂ Wᵀ D₃ Wᵀ x for x of shape (n, k)."""
        for s in reversed(self.signs):
            x = s * self._kronecker(self.transposed, x)
        return x


def hadamard_rotation(n: int, rng: np.random.Generator, like: Any) -> KroneckerRotation:
    """Return the randomised Hadamard transform of order n = 2^b (Ailon & Chazelle 2009)."""
    bits = n.bit_length() - 1
    sizes = [_FACTOR_BITS] * (bits // _FACTOR_BITS) + [bits % _FACTOR_BITS] * (
        bits % _FACTOR_BITS > 0
    )
    return KroneckerRotation([sylvester_hadamard(2**b) for b in sizes], n, rng, like)


def random_kronecker_rotation(n: int, rng: np.random.Generator, like: Any) -> KroneckerRotation:
    """Return signs and Haar-random Kronecker factors (Mezzadri 2007), n of small prime factors."""
    sizes = kronecker_factor_sizes(n)
    if sizes is None:
        msg = f"n = {n} has a prime factor above {KRONECKER_FACTOR_LIMIT}"
        raise ValueError(msg)
    factors = []
    for size in sizes:
        q, r = np.linalg.qr(rng.standard_normal((size, size)))
        factors.append(q * np.sign(np.diag(r)))
    return KroneckerRotation(factors, n, rng, like)


class RotatedDiagonal:
    """The operator Q diag(λ) Qᵀ for an orthogonal `rotation` (a LinearOperator's protocol).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.testing._structured import HouseholderRotation, RotatedDiagonal
    >>> like = np.zeros(1)
    >>> rotation = HouseholderRotation(3, np.random.default_rng(0), like)
    >>> op = RotatedDiagonal(np.array([1.0, 2.0, 3.0]), rotation, like)
    >>> bool(np.isclose(np.trace(op.matmat(np.eye(3))), 6.0))
    True
    """

    def __init__(self, eigenvalues: np.ndarray, rotation: Any, like: Any) -> None:
        xp, device = namespace_and_device(like)
        self.shape = (eigenvalues.size, eigenvalues.size)
        self.dtype = like.dtype
        self.rotation = rotation
        self.eigenvalues = xp.asarray(eigenvalues[:, None], dtype=like.dtype, device=device)

    def matmat(self, x: Any) -> Any:
        """Q diag(λ) Qᵀ x for x of shape (n, k)."""
        return self.rotation.apply(self.eigenvalues * self.rotation.apply_transpose(x))

    def matvec(self, v: Any) -> Any:
        """Q diag(λ) Qᵀ v for v of shape (n,)."""
        xp = self.rotation.xp
        return xp.reshape(self.matmat(xp.reshape(v, (-1, 1))), (-1,))

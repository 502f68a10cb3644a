"""A test problem (a matrix and what is known of its spectrum), and the checks its makers share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from slq._backends.namespace import check_real_floating, is_array, namespace_and_device
from slq._validate import check_real_array, check_seed
from slq.testing._laws import SpectralLaw

__all__ = [
    "EXACT_LIMIT",
    "Problem",
    "check_eigenvalues",
    "check_like",
    "exact_eigenvalues",
    "generator",
    "to_library",
]

# Largest n whose finite random matrix gets exact eigenvalues (one dense eigvalsh,
# a few seconds at 4096).
EXACT_LIMIT = 4096


@dataclass(frozen=True)
class Problem:
    """A matrix to test a spectral estimator on, with what is known of its spectrum.

    Attributes
    ----------
    name : str
        What the matrix is, e.g. ``"GOE n = 500"``.
    matrix : array, scipy sparse matrix or LinearOperator
        Anything `slq.density` accepts.
    eigenvalues : numpy.ndarray or None
        The exact eigenvalues of this finite matrix, sorted, float64; None where
        they are not computable (a random matrix above `EXACT_LIMIT` = 4096).
    law : SpectralLaw or None
        The limiting law as n → ∞, None where none is known.

    Examples
    --------
    >>> import numpy as np
    >>> from slq import testing
    >>> p = testing.Problem("diagonal", np.diag([1.0, 2.0]), np.array([1.0, 2.0]), None)
    >>> p.dim
    2
    """

    name: str
    matrix: Any
    eigenvalues: np.ndarray | None
    law: SpectralLaw | None = None

    @property
    def dim(self) -> int:
        """The matrix's dimension n."""
        return int(self.matrix.shape[0])


def check_eigenvalues(value: Any) -> np.ndarray:
    """Return `value` as a float64 copy, or raise unless it is a non-empty 1-D finite array."""
    eigenvalues = np.array(check_real_array("eigenvalues", value), dtype=np.float64)
    if eigenvalues.ndim != 1 or eigenvalues.size == 0:
        msg = f"eigenvalues must be a non-empty 1-D array, got shape {eigenvalues.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(eigenvalues)):
        bad = eigenvalues[~np.isfinite(eigenvalues)][0]
        msg = f"eigenvalues must be finite, got {bad} among them"
        raise ValueError(msg)
    return eigenvalues


def check_like(like: Any) -> Any:
    """Return `like`, or raise unless it is None or an array of a real floating dtype."""
    if like is None:
        return None
    if not is_array(like):
        msg = f"like must be an array of the target library, got {type(like).__name__}"
        raise TypeError(msg)
    xp, _ = namespace_and_device(like)
    check_real_floating(like.dtype, xp, what="like")
    return like


def generator(seed: Any) -> np.random.Generator:
    """Return numpy's Generator for `seed` (None, an int >= 0, a Generator or SeedSequence)."""
    return np.random.default_rng(check_seed("seed", seed))


def to_library(a: np.ndarray, like: Any) -> Any:
    """Return the numpy array `a` in the library, dtype and device of `like` (None: `a`)."""
    if like is None:
        return a
    xp, device = namespace_and_device(like)
    return xp.asarray(a, dtype=like.dtype, device=device)


def exact_eigenvalues(dense: np.ndarray) -> np.ndarray | None:
    """Sorted float64 eigenvalues of the symmetric `dense`, or None above `EXACT_LIMIT`."""
    if dense.shape[0] > EXACT_LIMIT:
        return None
    return np.linalg.eigvalsh(dense)

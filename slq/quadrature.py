"""Gauss quadrature rules from Lanczos coefficients (Golub & Welsch 1969)."""

from __future__ import annotations

from typing import Any

import numpy as np

from slq._validate import check_real_array

__all__ = ["gauss_quadrature", "tridiagonal"]


def check_coefficients(alpha: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return `alpha` (k, m) and `beta` (k, m-1) as float64 batches, or raise naming the fault."""
    # Copies: a result marks its arrays read-only, and must not mark the caller's.
    alpha = np.array(np.atleast_2d(check_real_array("alpha", alpha)))
    beta = np.array(np.atleast_2d(check_real_array("beta", beta)))
    if alpha.ndim != 2 or alpha.shape[1] < 1:
        msg = f"alpha must have shape (m,) or (k, m) with m >= 1, got {np.shape(alpha)}"
        raise ValueError(msg)
    k, m = alpha.shape
    if m == 1 and beta.size == 0:
        beta = np.zeros((k, 0))
    if beta.shape != (k, m - 1):
        msg = f"beta must have shape {(k, m - 1)} to match alpha {alpha.shape}, got {beta.shape}"
        raise ValueError(msg)
    if not (np.isfinite(alpha).all() and np.isfinite(beta).all()):
        msg = "alpha and beta must be finite"
        raise ValueError(msg)
    return alpha, beta


def used_nodes(weights: np.ndarray) -> np.ndarray:
    """Return shape (k, m) bool: the nodes each rule uses, all up to its last positive weight.

    Past a breakdown a rule's unused entries carry zero weight (see `gauss_quadrature`).
    """
    m = weights.shape[1]
    last = m - 1 - np.argmax(weights[:, ::-1] > 0.0, axis=1)
    return np.arange(m)[None, :] <= last[:, None]


def _lengths(beta: np.ndarray) -> np.ndarray:
    # A zero off-diagonal splits T; the block below it has zero first components,
    # so it carries no weight and the rule is the leading block's alone.
    m = beta.shape[1] + 1
    zero = np.concatenate([beta == 0.0, np.ones((beta.shape[0], 1), dtype=bool)], axis=1)
    return np.minimum(zero.argmax(axis=1) + 1, m)


def tridiagonal(alpha: Any, beta: Any) -> np.ndarray:
    """Return the symmetric tridiagonal matrices with diagonals `alpha`, off-diagonals `beta`.

    Parameters
    ----------
    alpha : array_like, shape (m,) or (k, m)
    beta : array_like, shape (m-1,) or (k, m-1)

    Returns
    -------
    numpy.ndarray, shape (k, m, m)

    Examples
    --------
    >>> import slq
    >>> slq.tridiagonal([1.0, 2.0], [0.5])
    array([[[1. , 0.5],
            [0.5, 2. ]]])
    """
    alpha, beta = check_coefficients(alpha, beta)
    k, m = alpha.shape
    t = np.zeros((k, m, m))
    diagonal, upper = np.arange(m), np.arange(m - 1)
    t[:, diagonal, diagonal] = alpha
    t[:, upper, upper + 1] = beta
    t[:, upper + 1, upper] = beta
    return t


def gauss_quadrature(alpha: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Return the nodes and weights of the Gauss rules of Lanczos tridiagonals.

    For the T built from a unit probe v, the m nodes θ_i are the eigenvalues of
    T and the weights τ_i = s_{1,i}² the squared first components of its
    eigenvectors (Golub & Welsch 1969). The rule is exact for polynomials of
    degree ≤ 2m − 1: Σ_i τ_i p(θ_i) = vᵀ p(A) v.

    Parameters
    ----------
    alpha : array_like, shape (m,) or (k, m)
        Diagonals of the k tridiagonals (`LanczosResult.alpha`).
    beta : array_like, shape (m-1,) or (k, m-1)
        Off-diagonals. A zero marks a breakdown: the rule then has as many nodes
        as steps before it.

    Returns
    -------
    nodes : numpy.ndarray, shape (k, m)
        Ascending along each row. After a breakdown, the unused entries repeat
        the largest node, so that row minima and maxima are still the extreme
        nodes.
    weights : numpy.ndarray, shape (k, m)
        Non-negative, each row summing to 1; zero on unused entries.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> a = np.diag([1.0, 2.0, 3.0, 4.0])
    >>> result = slq.lanczos(a, np.ones(4), 4)
    >>> nodes, weights = slq.gauss_quadrature(result.alpha, result.beta)
    >>> nodes.round(8), weights.round(8)
    (array([[1., 2., 3., 4.]]), array([[0.25, 0.25, 0.25, 0.25]]))
    """
    nodes, weights, _ = ritz_rules(alpha, beta)
    return nodes, weights


def ritz_rules(alpha: Any, beta: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return `gauss_quadrature`'s nodes and weights and the eigenvectors' last components.

    The Ritz pair (θ_i, Q s_i) of a run that stopped with residual norm β_m has
    ‖A Q s_i − θ_i Q s_i‖ = β_m |s_{m,i}| (Parlett 1998, §13.2): the last
    components turn a run's residual norm into each Ritz value's error bound.
    Unused entries past a breakdown get 0.
    """
    alpha, beta = check_coefficients(alpha, beta)
    k, m = alpha.shape
    nodes, weights, last = np.zeros((k, m)), np.zeros((k, m)), np.zeros((k, m))
    lengths = _lengths(beta)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        t = tridiagonal(alpha[rows, :length], beta[rows, : length - 1])
        theta, vectors = np.linalg.eigh(t)
        tau = vectors[:, 0, :] ** 2
        nodes[rows, :length] = theta
        nodes[rows, length:] = theta[:, -1:]
        weights[rows, :length] = tau / tau.sum(axis=1, keepdims=True)
        last[rows, :length] = np.abs(vectors[:, -1, :])
    return nodes, weights, last

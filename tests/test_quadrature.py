"""Golub-Welsch Gauss rules against rules known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

import slq


def legendre_jacobi(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Recurrence coefficients of the orthonormal Legendre polynomials on [-1, 1]."""
    j = np.arange(1, m)
    return np.zeros(m), j / np.sqrt(4.0 * j**2 - 1.0)


@pytest.mark.parametrize("m", [1, 2, 5, 20, 60])
def test_recovers_gauss_legendre(m: int) -> None:
    nodes, weights = slq.gauss_quadrature(*legendre_jacobi(m))
    x, w = np.polynomial.legendre.leggauss(m)
    np.testing.assert_allclose(nodes[0], x, atol=1e-13)
    np.testing.assert_allclose(weights[0], w / 2.0, atol=1e-13)


def test_batch_with_breakdowns_pads_with_zero_weights() -> None:
    alpha = np.array([[0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    beta = np.array([[1.0, 0.0, 7.0], [*legendre_jacobi(4)[1]]])
    nodes, weights = slq.gauss_quadrature(alpha, beta)
    np.testing.assert_allclose(nodes[0], [-1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(weights[0], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(weights[1], np.polynomial.legendre.leggauss(4)[1] / 2)
    assert np.all(np.diff(nodes, axis=1) >= 0)


def test_single_node() -> None:
    nodes, weights = slq.gauss_quadrature([2.5], [])
    assert nodes.tolist() == [[2.5]] and weights.tolist() == [[1.0]]


def test_tridiagonal() -> None:
    t = slq.tridiagonal([[1.0, 2.0, 3.0]], [[4.0, 5.0]])
    np.testing.assert_array_equal(t[0], [[1, 4, 0], [4, 2, 5], [0, 5, 3]])


@pytest.mark.parametrize(
    ("alpha", "beta", "message"),
    [
        (np.zeros((2, 2, 2)), np.zeros((2, 1)), r"alpha must have shape \(m,\) or \(k, m\)"),
        (np.zeros((2, 3)), np.zeros((2, 3)), r"beta must have shape \(2, 2\) to match alpha"),
        (np.zeros(3), np.zeros(1), r"beta must have shape \(1, 2\)"),
        (np.array([0.0, np.nan]), np.ones(1), "alpha and beta must be finite"),
        (np.zeros((2, 0)), np.zeros((2, 0)), "with m >= 1"),
    ],
)
def test_bad_coefficients(alpha: np.ndarray, beta: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slq.gauss_quadrature(alpha, beta)

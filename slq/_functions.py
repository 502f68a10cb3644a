"""Named spectral functions f for tr f(A), and the checks of their domains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["FUNCTIONS", "resolve_function"]


def _positive(name: str, what: str) -> Callable[[np.ndarray], None]:
    def check(nodes: np.ndarray) -> None:
        low = float(nodes.min())
        if low <= 0.0:
            msg = (
                f"{name!r} needs a positive definite operator ({what}), but a Ritz value is "
                f"{low:.6g} <= 0, so the operator has an eigenvalue <= {low:.6g}; estimate "
                f"tr f(A + sI) instead with shift=s for some s > {-low:.6g}"
            )
            raise ValueError(msg)

    return check


def _nonzero_definite(nodes: np.ndarray) -> None:
    if not (nodes.min() > 0.0 or nodes.max() < 0.0):
        msg = (
            f"'inverse' needs a definite operator: the Ritz values span "
            f"[{nodes.min():.6g}, {nodes.max():.6g}], and Gauss quadrature of 1/x is "
            "unreliable when nodes can fall next to 0; shift the operator (shift=s) to "
            "make it definite"
        )
        raise ValueError(msg)


def _nonnegative(nodes: np.ndarray) -> None:
    if nodes.min() < 0.0:
        _positive("sqrt", "positive semidefinite")(nodes)


FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], None]]] = {
    "log": (np.log, _positive("log", "tr log A = log det A")),
    "exp": (np.exp, lambda nodes: None),
    "inverse": (np.reciprocal, _nonzero_definite),
    "sqrt": (np.sqrt, _nonnegative),
    "square": (np.square, lambda nodes: None),
}
"""name: (f, a check raising ValueError when the Ritz values leave f's domain)."""


def resolve_function(f: Any) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """Return (f on float64 arrays, its name) for a named function or a callable.

    A callable is applied to a float64 numpy array of Ritz values and must
    return an array of the same shape.
    """
    if isinstance(f, str):
        if f not in FUNCTIONS:
            allowed = ", ".join(repr(name) for name in FUNCTIONS)
            msg = f"f must be a callable or one of {allowed}, got {f!r}"
            raise ValueError(msg)
        return FUNCTIONS[f][0], f
    if not callable(f):
        msg = f"f must be a callable or the name of a function, got {type(f).__name__}"
        raise TypeError(msg)
    return f, getattr(f, "__name__", "f")


def apply_function(f: Any, nodes: np.ndarray) -> np.ndarray:
    """Return f(nodes) as float64, checking a named function's domain first."""
    fn, _ = resolve_function(f)
    if isinstance(f, str):
        FUNCTIONS[f][1](nodes)
    values = np.asarray(fn(nodes), dtype=np.float64)
    if values.shape != nodes.shape:
        msg = f"f must map an array of shape {nodes.shape} to the same shape, got {values.shape}"
        raise ValueError(msg)
    return values

"""Argument checks shared by the public functions; each error names the parameter."""

from __future__ import annotations

import numbers
from collections.abc import Collection
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_non_negative_float",
    "check_positive_float",
    "check_positive_int",
]


def check_positive_int(name: str, value: Any) -> int:
    """Return `value` as an int, or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be an integer >= 1, got {value!r}"
        raise TypeError(msg)
    if value < 1:
        msg = f"{name} must be >= 1, got {value}"
        raise ValueError(msg)
    return int(value)


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """Return `value`, or raise if it is not one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        msg = f"{name} must be one of {allowed}, got {value!r}"
        raise ValueError(msg)
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return `value`, or raise if it is not True or False (a truthy string is a mistake)."""
    if not isinstance(value, bool):
        msg = f"{name} must be True or False, got {value!r}"
        raise TypeError(msg)
    return value


def check_positive_float(name: str, value: Any) -> float:
    """Return `value` as a float, or raise if it is not a finite number > 0."""
    value = float(value)
    if not (np.isfinite(value) and value > 0.0):
        msg = f"{name} must be a finite number > 0, got {value}"
        raise ValueError(msg)
    return value


def check_non_negative_float(name: str, value: Any) -> float:
    """Return `value` as a float, or raise if it is not a finite number >= 0."""
    value = float(value)
    if not (np.isfinite(value) and value >= 0.0):
        msg = f"{name} must be a finite number >= 0, got {value}"
        raise ValueError(msg)
    return value

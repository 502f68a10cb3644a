"""Argument checks shared by the public functions; each error names the parameter.

A value of the wrong kind raises TypeError (a string where a number belongs,
a bool where a count belongs: Python's truthiness would otherwise let
``check_symmetric="no"`` mean yes); a value of the right kind out of range
raises ValueError. Every public function runs its checks before its first
product or allocation.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Collection
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_finite_float",
    "check_interval",
    "check_non_negative_float",
    "check_non_negative_int",
    "check_open_interval",
    "check_optional_bool",
    "check_optional_str",
    "check_path",
    "check_points",
    "check_positive_float",
    "check_positive_int",
    "check_real",
    "check_real_array",
    "check_seed",
]


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value: Any) -> int:
    """Return `value` as an int, or raise if it is not an integer >= 1."""
    if not _is_integer(value):
        msg = f"{name} must be an integer >= 1, got {value!r}"
        raise TypeError(msg)
    if value < 1:
        msg = f"{name} must be >= 1, got {value}"
        raise ValueError(msg)
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    """Return `value` as an int, or raise if it is not an integer >= 0."""
    if not _is_integer(value):
        msg = f"{name} must be an integer >= 0, got {value!r}"
        raise TypeError(msg)
    if value < 0:
        msg = f"{name} must be >= 0, got {value}"
        raise ValueError(msg)
    return int(value)


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """Return `value`, or raise if it is not one of the strings `choices`."""
    allowed = ", ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        msg = f"{name} must be one of {allowed}, got {value!r}"
        raise TypeError(msg)
    if value not in choices:
        msg = f"{name} must be one of {allowed}, got {value!r}"
        raise ValueError(msg)
    return value


def check_optional_str(name: str, value: Any) -> str | None:
    """Return `value`, or raise if it is neither None nor a string."""
    if value is not None and not isinstance(value, str):
        msg = f"{name} must be a string or None, got {value!r}"
        raise TypeError(msg)
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return `value` as a bool, or raise unless it is True or False (a truthy string is not)."""
    if not isinstance(value, (bool, np.bool_)):
        msg = f"{name} must be True or False, got {value!r}"
        raise TypeError(msg)
    return bool(value)


def check_optional_bool(name: str, value: Any) -> bool | None:
    """Return `value`, or raise if it is not True, False or None."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        msg = f"{name} must be True, False or None, got {value!r}"
        raise TypeError(msg)
    return None if value is None else bool(value)


def check_callable(name: str, value: Any) -> Any:
    """Return `value`, or raise if it is neither None nor callable."""
    if value is not None and not callable(value):
        msg = f"{name} must be callable or None, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def check_real(name: str, value: Any) -> float:
    """Return `value` as a float, or raise TypeError if it is not a real number.

    Python and numpy integers and floats, and 0-d numpy arrays of them, are
    real numbers; strings, bools, complex numbers and None are not.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return float(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        msg = f"{name} must be a real number, got {value!r}"
        raise TypeError(msg)
    return float(value)


def check_finite_float(name: str, value: Any) -> float:
    """Return `value` as a float, or raise if it is not a finite real number."""
    value = check_real(name, value)
    if not np.isfinite(value):
        msg = f"{name} must be finite, got {value}"
        raise ValueError(msg)
    return value


def check_positive_float(name: str, value: Any) -> float:
    """Return `value` as a float, or raise if it is not a finite number > 0."""
    value = check_real(name, value)
    if not (np.isfinite(value) and value > 0.0):
        msg = f"{name} must be a finite number > 0, got {value}"
        raise ValueError(msg)
    return value


def check_non_negative_float(name: str, value: Any) -> float:
    """Return `value` as a float, or raise if it is not a finite number >= 0."""
    value = check_real(name, value)
    if not (np.isfinite(value) and value >= 0.0):
        msg = f"{name} must be a finite number >= 0, got {value}"
        raise ValueError(msg)
    return value


def check_open_interval(name: str, value: Any, low: float, high: float) -> float:
    """Return `value` as a float, or raise if it does not lie in the open interval (low, high)."""
    value = check_real(name, value)
    if not low < value < high:
        msg = f"{name} must lie in ({low:g}, {high:g}), got {value}"
        raise ValueError(msg)
    return value


def check_interval(
    name: str, value: Any, *, closed: bool, ends: tuple[str, str] = ("a", "b")
) -> tuple[float, float]:
    """Return `value` as a pair (a, b) of finite floats with a < b (a <= b if `closed`).

    `ends` names a and b in the message.
    """
    try:
        items = list(value)
    except TypeError:
        msg = f"{name} must be a pair (a, b) of real numbers, got {value!r}"
        raise TypeError(msg) from None
    if len(items) != 2:
        msg = f"{name} must be a pair (a, b) of real numbers, got {len(items)} values: {value!r}"
        raise ValueError(msg)
    low, high = (check_real(name, item) for item in items)
    ordered = low <= high if closed else low < high
    if not (np.isfinite(low) and np.isfinite(high) and ordered):
        relation = f"{ends[0]} {'<=' if closed else '<'} {ends[1]}"
        msg = f"{name} must be finite with {relation}, got ({low}, {high})"
        raise ValueError(msg)
    return low, high


def check_real_array(name: str, value: Any) -> np.ndarray:
    """Return `value` as a float64 numpy array, or raise TypeError if it is not real numbers.

    Integers and floats pass; strings, bools, complex numbers and ragged lists
    do not. Values and shape are the caller's to check.
    """
    try:
        array = np.asarray(value)
    except ValueError:  # a ragged list; a GPU tensor's TypeError says how to copy it
        array = None
    if array is None or array.dtype.kind not in "iuf":
        kind = type(value).__name__ if array is None else f"{array.dtype} values"
        msg = f"{name} must be real numbers (an array, a list or a number), got {kind}"
        raise TypeError(msg)
    return array.astype(np.float64, copy=False)


def check_points(name: str, value: Any, *, finite: bool = True) -> np.ndarray:
    """Return `value` as a float64 numpy array of real numbers without NaN.

    Infinities are refused too when `finite`. The shape is the caller's to check.
    """
    array = check_real_array(name, value)
    bad = np.isnan(array) | (np.isinf(array) if finite else False)
    if bad.any():
        what = "finite" if finite else "free of NaN"
        msg = f"{name} must be {what}, got {array[bad].flat[0]}"
        raise ValueError(msg)
    return array


def check_path(name: str, value: Any) -> str | os.PathLike[str]:
    """Return `value`, or raise if it is not a non-empty str or path-like object."""
    if not isinstance(value, (str, os.PathLike)):
        msg = f"{name} must be a path (str or os.PathLike), got {type(value).__name__}"
        raise TypeError(msg)
    if os.fspath(value) == "":
        msg = f"{name} must not be empty"
        raise ValueError(msg)
    return value


def check_seed(name: str, value: Any) -> Any:
    """Return `value`, or raise unless it is None, an int >= 0, a Generator or a SeedSequence."""
    if value is None or isinstance(value, (np.random.Generator, np.random.SeedSequence)):
        return value
    if not _is_integer(value):
        msg = (
            f"{name} must be a non-negative int, a numpy Generator or SeedSequence, or None, "
            f"got {value!r}"
        )
        raise TypeError(msg)
    if value < 0:
        msg = f"{name} must be >= 0, got {value}"
        raise ValueError(msg)
    return value

"""Argument checks of the adapters' public functions: each error names the argument.

They run before any data is read and before any product, so that a mistyped
option costs nothing; `slq._validate` has the checks the core shares (choices,
positive integers, booleans).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

__all__ = ["check_callable", "check_optional_bool", "check_seed", "check_selection"]


def check_optional_bool(name: str, value: Any) -> bool | None:
    """Return `value`, or raise unless it is True, False or None.

    Examples
    --------
    >>> from slq.adapters._checks import check_optional_bool
    >>> check_optional_bool("cache_data", None), check_optional_bool("cache_data", False)
    (None, False)
    >>> check_optional_bool("cache_data", "yes")
    Traceback (most recent call last):
    TypeError: cache_data must be True, False or None, got 'yes'
    """
    if value is not None and not isinstance(value, bool):
        msg = f"{name} must be True, False or None, got {value!r}"
        raise TypeError(msg)
    return value


def check_callable(name: str, value: Any, signature: str, *, optional: bool = False) -> None:
    """Raise unless `value` is callable (or None, if `optional`); `signature` says how it is called.

    Examples
    --------
    >>> from slq.adapters._checks import check_callable
    >>> check_callable("loss_fn", "mse", "loss_fn(outputs, targets)")
    Traceback (most recent call last):
    TypeError: loss_fn must be callable as loss_fn(outputs, targets), got str
    """
    if (value is None and optional) or callable(value):
        return
    msg = f"{name} must be callable as {signature}, got {type(value).__name__}"
    raise TypeError(msg)


def check_seed(name: str, value: Any) -> int:
    """Return `value`, or raise unless it is an integer in [0, 2**64), what torch and numpy accept.

    Examples
    --------
    >>> from slq.adapters._checks import check_seed
    >>> check_seed("seed", 7)
    7
    >>> check_seed("seed", -1)
    Traceback (most recent call last):
    ValueError: seed must be in [0, 2**64), got -1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be an integer, got {value!r}"
        raise TypeError(msg)
    seed = int(value)
    if not 0 <= seed < 2**64:
        msg = f"{name} must be in [0, 2**64), got {seed}"
        raise ValueError(msg)
    return seed


def check_selection(name: str, value: Any, what: str) -> None:
    """Raise unless `value` is None or an iterable of names or objects (not one name or array).

    `what` names its items in the message ("parameter names or Parameters").

    Examples
    --------
    >>> from slq.adapters._checks import check_selection
    >>> check_selection("params", ["0.weight"], "parameter names or Parameters")
    >>> check_selection("params", "0.weight", "parameter names or Parameters")
    Traceback (most recent call last):
    TypeError: params must be a list of parameter names or Parameters (wrap one in a list), got str
    """
    if value is None:
        return
    one = isinstance(value, (str, bytes)) or hasattr(value, "shape")
    if one or not isinstance(value, Iterable):
        msg = f"{name} must be a list of {what} (wrap one in a list), got {type(value).__name__}"
        raise TypeError(msg)

"""A product an operator offers for tracing: what a compiled Lanczos run calls inside its loop.

No framework is imported here: the core carries a `TraceableProduct` with the
operator (``op.traceable``), and only a backend that compiles whole runs
(`slq._backends.jax`, `slq._backends.tensorflow`) calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["TraceableProduct"]


class TraceableProduct(NamedTuple):
    """An operator's product as a pure function of its arrays, traceable by the array library.

    ``function(operands, V)`` returns ``(A V, flags)`` for V of shape (n, k):
    flags is None, or a 1-D boolean array of the operator's own finite checks
    (one per data batch of an adapter). It must be pure: the same arrays give
    the same products, and nothing outside `operands` changes between calls.
    `function` (and `prepare`) are hashable and part of a compiled program's
    cache key: equal by value, so that the operator made again (by every
    `slq.density` call, or at new parameters) finds its program; a bound method
    or closure, equal only to itself, compiles the run again every time. The
    arrays are the program's arguments, not constants baked into it.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.traceable import TraceableProduct
    >>> double = TraceableProduct(lambda a, v: (a * v, None), 2.0)
    >>> double.function(double.operands, np.ones((3, 1)))[0].ravel()
    array([2., 2., 2.])
    """

    function: Callable[[Any, Any], tuple[Any, Any]]
    """``(operands, V) -> (A V, flags or None)``."""
    operands: Any
    """The arrays `function` reads (a pytree)."""
    raise_non_finite: Callable[[int], None] | None = None
    """Raises the operator's own error for the index of a false flag (its batch)."""
    prepare: Callable[[Any], Any] | None = None
    """Work every product of a run shares (linearizing a gradient), traced once before
    the loop: ``prepare(operands)`` returns the operands `function` reads. Hashable, by value."""
    fast_in_loop: bool = True
    """Whether the product runs about as fast inside a compiled loop as its own program. False
    where it runs several times slower there (convolutions on XLA's CPU): a run then steps
    from the host, calling the operator's products, unless it is itself traced (inside a
    user's ``jax.jit``), where it has no other way."""

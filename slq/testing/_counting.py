"""An operator that counts its products, so that a comparison knows what each estimator spent."""

from __future__ import annotations

from typing import Any

from slq.operator import LinearOperator, as_operator

__all__ = ["CountingOperator", "counting_operator"]


class CountingOperator:
    """A `LinearOperator` that forwards to another and counts the vectors it is applied to.

    A ``matvec`` counts 1 and a ``matmat`` of k columns counts k, whatever
    path the estimator takes. It offers no ``traceable_product``, so no run is
    compiled around the product and every product passes through the count.
    """

    def __init__(self, operator: Any) -> None:
        self.inner = as_operator(operator)
        self.shape = self.inner.shape
        self.dtype = self.inner.dtype
        self.device = self.inner.device
        self.products = 0

    def matvec(self, v: Any, /) -> Any:
        """Return A v and count one product."""
        self.products += 1
        return self.inner.matvec(v)

    def matmat(self, V: Any, /) -> Any:  # noqa: N803 (a matrix)
        """Return A V and count one product per column."""
        self.products += int(V.shape[1])
        return self.inner.matmat(V)


def counting_operator(matrix: Any) -> tuple[LinearOperator, CountingOperator]:
    """Return (an operator for estimators, its counter): the same library as `matrix`."""
    counter = CountingOperator(matrix)
    xp = counter.inner.xp
    like = xp.zeros((1,), dtype=counter.dtype, device=counter.device)
    return as_operator(counter, like=like), counter

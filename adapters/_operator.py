"""The base of every adapter's operator: the data pass, the weighting, the checks.

A curvature matrix of a mean loss over a dataset is the size-weighted sum of its
batches' matrices, C = Σ_b (N_b / N) C_b (Ghorbani, Krishnan & Xiao 2019, Eq. 1).
`CurvatureOperator` owns that sum and everything around it — reading the batches,
collecting one finite flag per batch without a transfer per batch, the error that
names the first non-finite batch (and this process's shard), the shape, dtype and
device checks of vectors, `flatten` / `unflatten` and the repr — so that each
framework writes only its per-batch product, as curvlinops' ``_matvec_batch``
under ``CurvatureLinearOperator._matmat``. The batches come from a subclass of
`slq.adapters._batches.Batches`, which checks that every pass over data read
again gives the same batches. No framework is imported here.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from slq.adapters._common import DataCounts, check_vector

__all__ = ["CurvatureOperator"]


class CurvatureOperator(DataCounts):
    """A curvature matrix of a model's mean loss over batches of data, as a `slq.LinearOperator`.

    Subclasses set ``shape``, ``dtype``, ``device`` and ``_batches`` (an iterable
    of ``(index, batch, size / N)`` with ``sizes`` and ``num_examples``), and
    write the framework's parts:

    - ``_tangents(vectors)``: the (n,) or (n, k) vectors as the per-batch product takes them;
    - ``_batch_product(index, batch, weight, tangents)``: batch b's weighted share
      (N_b / N) C_b V and its finite flag(s), both left on the device;
    - ``_add(total, share)``, ``_flags(finite)`` (to a numpy bool array, one per
      batch), ``_finish(total, vectors)``: summing, reading the flags, the result;
    - ``_unflatten(v)``, ``_flatten(parts)``, ``_loss_value(batch)``.

    The framework's operators (`TorchCurvatureOperator`, `JaxCurvatureOperator`,
    `TensorFlowCurvatureOperator`) document their vectors' layout and examples.
    """

    kind: str = "Hessian"
    """Which curvature matrix: "Hessian" or "GGN"."""

    shape: tuple[int, int]
    dtype: Any
    device: Any
    _batches: Any
    _array_type: ClassVar[Any]  # the framework's array class, for vector checks
    _array_name: ClassVar[str]  # how messages name it: "a torch.Tensor"
    _advice: ClassVar[str] = "check that batch"  # the end of the non-finite error

    # ------------------------------------------------------------------ the protocol

    def matvec(self, v: Any, /) -> Any:
        """Return the product with the flat vector `v` of shape (n,)."""
        self._check(v, 1)
        return self._products(v)

    def matmat(self, vectors: Any, /) -> Any:
        """Return the products with the k columns of `vectors` (shape (n, k)) in one data pass."""
        self._check(vectors, 2)
        return self._products(vectors)

    def unflatten(self, v: Any) -> Any:
        """Return the flat vector `v` (shape (n,)) in the parameters' own structure."""
        self._check(v, 1)
        return self._unflatten(v)

    def flatten(self, parts: Any) -> Any:
        """Return the flat vector of values shaped like the parameters (inverse of `unflatten`)."""
        flat = self._flatten(parts)
        self._check(flat, 1)
        return flat

    def __repr__(self) -> str:
        return (
            f"<slq {self._description()}, n={self.shape[0]}, {self._dtype_name()}, {self.device}, "
            f"{self.num_examples} examples in {self.num_batches} batches{self._place()}>"
        )

    # ------------------------------------------------------------------ the data pass

    def _products(self, vectors: Any) -> Any:
        """Σ_b (N_b / N) C_b V over every batch; raise naming the first non-finite batch.

        The flags stay on the device until every batch is queued: one transfer of
        a few booleans per pass, not one per batch.
        """
        tangents = self._tangents(vectors)
        total: Any = None
        finite = []
        for index, batch, weight in self._batches:
            share, ok = self._batch_product(index, batch, weight, tangents)
            finite.append(ok)
            total = share if total is None else self._add(total, share)
        total = self._reduce(total)
        flags = self._flags(finite)
        if not flags.all():
            self._raise_non_finite(int(np.flatnonzero(~flags)[0]))
        return self._finish(total, vectors)

    def _add(self, total: Any, share: Any) -> Any:
        return total + share

    def _reduce(self, total: Any) -> Any:
        """Return the sum over every process's shard of the data (this one's when not distributed).

        Every process reaches it, even with a non-finite batch: it may be a collective.
        """
        return total

    def _finish(self, total: Any, vectors: Any) -> Any:
        return total

    def _raise_non_finite(self, index: int) -> None:
        batch = next(b for i, b, _ in self._batches if i == index)
        loss = self._loss_value(batch)
        what = f"the loss is {loss}" if not math.isfinite(loss) else "the loss is finite"
        msg = (
            f"the {self.kind} product is not finite on batch {index}{self._shard_label()} "
            f"({what}): {self._advice}"
        )
        raise FloatingPointError(msg)

    def _shard_label(self) -> str:
        """Which shard of the data the batch numbers count in ("" when not distributed)."""
        return ""

    def _place(self) -> str:
        """Where this operator runs among several processes, for the repr ("" for one)."""
        return ""

    def _description(self) -> str:
        return f"{self.kind}"

    def _dtype_name(self) -> str:
        return str(self.dtype)

    def _check(self, v: Any, ndim: int) -> None:
        check_vector(v, ndim, self.shape[0], self.dtype, self._array_type, self._array_name)

    # ------------------------------------------------------------------ the framework's parts

    def _tangents(self, vectors: Any) -> Any:
        return vectors

    def _batch_product(self, index: int, batch: Any, weight: float, tangents: Any) -> Any:
        raise NotImplementedError

    def _flags(self, finite: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def _unflatten(self, v: Any) -> Any:
        raise NotImplementedError

    def _flatten(self, parts: Any) -> Any:
        raise NotImplementedError

    def _loss_value(self, batch: Any) -> float:
        raise NotImplementedError

"""What the framework adapters share: how `data` is read, and flat-vector bookkeeping."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

__all__ = ["DataCounts", "check_vector", "is_single_batch", "names_of", "product_tolerance"]


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def is_single_batch(data: Any) -> bool:
    """Say whether `data` is one batch rather than an iterable of batches.

    One batch is an array, a mapping (``{"x": ..., "y": ...}``) or a tuple/list
    whose first element is an array (``(inputs, targets)``); anything else is
    iterated for batches (a list of batches, a DataLoader, a tf.data.Dataset, a
    generator). An array is one batch, not an iterable of its rows.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.adapters._common import is_single_batch
    >>> x, y = np.ones((8, 3)), np.zeros(8)
    >>> is_single_batch((x, y)), is_single_batch(x), is_single_batch([(x, y), (x, y)])
    (True, True, False)
    """
    if isinstance(data, Mapping) or _is_array(data):
        return True
    return isinstance(data, (tuple, list)) and len(data) > 0 and _is_array(data[0])


def names_of(
    selected: Sequence[Any], available: Mapping[str, Any], what: str, argument: str = "params"
) -> list[str]:
    """Resolve a user's selection (names or the objects themselves) to names, in `available` order.

    Raises a clear error, naming the `argument` it came from, for a name or object
    that is not among `available`.
    """
    by_id = {id(value): name for name, value in available.items()}
    chosen = set()
    for item in selected:
        if isinstance(item, str):
            if item not in available:
                known = ", ".join(available) or "none"
                msg = (
                    f"{argument} names {item!r}, which is not a {what} of the model; "
                    f"its {what}s are: {known}"
                )
                raise ValueError(msg)
            chosen.add(item)
        elif id(item) in by_id:
            chosen.add(by_id[id(item)])
        else:
            msg = f"{argument} contains a {type(item).__name__} that is not a {what} of the model"
            raise ValueError(msg)
    return [name for name in available if name in chosen]


def product_tolerance(eps: float) -> float:
    """Return the relative difference allowed between two exact products that round differently.

    Two exact Hessian products computed by different routes agree in float64 to
    about 1e-13 (relative, in norm); half of the digits, √ε ≈ 1.5e-8, leaves a
    wide margin and still rejects the failures seen (relative errors of 0.4 to
    1). In lower precision the kernels themselves may round coarsely (TF32
    convolutions on a GPU agree to about 1e-3), so a third of the digits:
    ε^(1/3), about 5e-3 in float32. `eps` is the machine epsilon of the dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.adapters._common import product_tolerance
    >>> double, single = float(np.finfo(np.float64).eps), float(np.finfo(np.float32).eps)
    >>> product_tolerance(double) < 1e-7 < product_tolerance(single) < 1e-2
    True
    """
    return math.sqrt(eps) if eps < 1e-10 else float(eps ** (1 / 3))


def check_vector(v: Any, ndim: int, n: int, dtype: Any, kind: type, what: str) -> None:
    """Raise a clear error unless `v` is a `kind` of shape (n,) (ndim 1) or (n, k), of `dtype`.

    `what` names the expected type in the message ("a jax array", "a torch.Tensor").
    """
    if not isinstance(v, kind):
        msg = f"expected {what}, got {type(v).__name__}"
        raise TypeError(msg)
    v = cast("Any", v)  # isinstance against a runtime type narrowed it to object
    if v.ndim != ndim or v.shape[0] != n:
        want = f"({n},)" if ndim == 1 else f"({n}, k)"
        msg = f"expected a vector of shape {want}, got {tuple(v.shape)}"
        raise ValueError(msg)
    if v.dtype != dtype:
        # A TensorFlow dtype prints as <dtype: 'float64'>; its name is what users write.
        want, got = getattr(dtype, "name", dtype), getattr(v.dtype, "name", v.dtype)
        msg = f"expected dtype {want} (the parameters'), got {got}"
        raise TypeError(msg)


class DataCounts:
    """The `num_examples` and `num_batches` of an operator over batches with sizes."""

    _batches: Any  # has `num_examples` and `sizes`

    @property
    def num_examples(self) -> int:
        """N, the number of examples the loss averages over."""
        return int(self._batches.num_examples)

    @property
    def num_batches(self) -> int:
        """The number of batches of the data."""
        return len(self._batches.sizes)

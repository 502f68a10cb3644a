"""The `LinearOperator` protocol and `aslinearoperator`, which makes one of almost anything."""

from __future__ import annotations

import functools
import numbers
import sys
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from slq._backends import (
    array_namespace,
    backend_for,
    check_real_floating,
    dtype_name,
    is_array,
    library_name,
    like_from_dtype,
    namespace_and_device,
)
from slq._backends.traceable import TraceableProduct
from slq._validate import check_bool

__all__ = ["LinearOperator", "aslinearoperator", "check_array_of", "matmat"]


@runtime_checkable
class LinearOperator(Protocol):
    """A symmetric linear operator known only through its products with vectors.

    Anything with these attributes is an operator; nothing needs to inherit from
    this class. Symmetry is part of the contract and is not checked (see
    ``density(..., check_symmetric=True)`` for a randomised check).

    Attributes
    ----------
    shape : tuple of int
        ``(n, n)``.
    dtype
        The dtype of the vectors, in the operator's own array library
        (``numpy.float64``, ``torch.float32``, ...).

    Notes
    -----
    Two members are optional and used when present:

    ``matmat(V)``
        Products with the ``k`` columns of ``V`` (shape ``(n, k)``) at once;
        without it, the columns are applied one ``matvec`` at a time.
    ``device``
        Where the vectors live (a torch, JAX, CuPy or TensorFlow device); without it, the
        library's default device.
    ``traceable_product()``
        Returns the product as a pure function of the operator's arrays (a
        JAX operator's, as `adapters.jax_hessian` offers), or None: a batch's
        whole Lanczos run is then compiled into one program with it.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> class Diagonal:
    ...     def __init__(self, d):
    ...         self.d, self.shape, self.dtype = d, (d.size, d.size), d.dtype
    ...     def matvec(self, v):
    ...         return self.d * v
    >>> isinstance(Diagonal(np.arange(3.0)), slq.LinearOperator)
    True
    """

    shape: tuple[int, int]
    dtype: Any

    def matvec(self, v: Any, /) -> Any:
        """Return the product of the operator with the vector `v` of shape (n,)."""
        ...


class CoreOperator:
    """An operator with every optional member filled in: what the core works with."""

    __slots__ = (
        "_matmat",
        "_matvec",
        "backend",
        "device",
        "dtype",
        "shape",
        "source",
        "traceable",
        "xp",
    )

    def __init__(
        self,
        shape: tuple[int, int],
        dtype: Any,
        like: Any,
        matvec: Callable[[Any], Any],
        matmat: Callable[[Any], Any] | None,
        source: str,
    ) -> None:
        self.shape = shape
        self.dtype = dtype
        self.xp, self.device = namespace_and_device(like)
        # The library's seam, chosen once here: the core never asks which library it is.
        self.backend = backend_for(self.xp)
        self._matvec = matvec
        self._matmat = matmat
        self.source = source
        # The product as a pure function of arrays, where the backend can compile a
        # whole run around it (`slq._backends.traceable`); None: products one by one.
        self.traceable: TraceableProduct | None = None
        check_real_floating(dtype, self.xp)

    def matvec(self, v: Any, /) -> Any:
        """Return the product with the vector `v` of shape (n,)."""
        return self._matvec(v)

    def matmat(self, V: Any, /) -> Any:  # noqa: N803 (a matrix)
        """Return the product with the columns of `V` (shape (n, k))."""
        if self._matmat is not None:
            return self._matmat(V)
        columns = [self._matvec(V[:, i]) for i in range(V.shape[1])]
        check_same_library(columns[0], self.xp)
        return self.xp.stack(columns, axis=1)

    def __repr__(self) -> str:
        return (
            f"<slq operator shape={self.shape} dtype={dtype_name(self.dtype)} device={self.device} "
            f"from {self.source}>"
        )


def check_same_library(output: Any, xp: Any) -> None:
    """Raise if the operator's `output` is not an array of its input's namespace `xp`."""
    try:
        out_xp = array_namespace(output)
    except TypeError:
        out_xp = None
    if out_xp is not xp:
        name = library_name(out_xp) if out_xp is not None else type(output).__name__
        msg = (
            f"the operator returned a {name} array for a {library_name(xp)} input; it must "
            "return arrays of its input's library"
        )
        raise TypeError(msg)


def check_array_of(name: str, value: Any, xp: Any) -> Any:
    """Return `value`, or raise TypeError unless it is an array of the namespace `xp`."""
    if not is_array(value):
        kind = type(value).__name__
        msg = f"{name} must be a {library_name(xp)} array (the operator's), got {kind}"
        raise TypeError(msg)
    value_xp = array_namespace(value)
    if value_xp is not xp:
        msg = (
            f"{name} is a {library_name(value_xp)} array but the operator's vectors are "
            f"{library_name(xp)} arrays; create {name} with the operator's library"
        )
        raise TypeError(msg)
    return value


def _check_shape_argument(shape: Any) -> tuple[int, int]:
    """Check the `shape=` given with a callable: a pair of integers, then as any shape."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) != 2 or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims
    ):
        msg = f"shape must be a pair (n, n) of integers, got {shape!r}"
        raise TypeError(msg)
    return _check_shape(dims)


def _check_like(like: Any) -> Any:
    if like is not None and not is_array(like):
        kind = type(like).__name__
        msg = f"like must be an array of the operator's library and device, got {kind}"
        raise TypeError(msg)
    return like


def _check_dtype(dtype: Any) -> Any:
    if isinstance(dtype, str):
        msg = (
            f"dtype must be a dtype object of the vectors' library (numpy.float64, "
            f"torch.float32, ...), got the string {dtype!r}"
        )
        raise TypeError(msg)
    return dtype


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if dims is None or len(dims) != 2 or not all(isinstance(d, numbers.Integral) for d in dims):
        msg = f"operator must be 2-D, got shape {shape!r}"
        raise ValueError(msg)
    if dims[0] != dims[1]:
        msg = f"operator must be square, got shape {dims}"
        raise ValueError(msg)
    if dims[0] < 1:
        msg = f"operator must have at least one row, got shape {dims}"
        raise ValueError(msg)
    return int(dims[0]), int(dims[1])


def _is_scipy_sparse(obj: Any) -> bool:
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(obj)


def _from_array(a: Any) -> CoreOperator:
    xp, _ = namespace_and_device(a)
    shape = _check_shape(a.shape)
    backend = backend_for(xp)
    # The layout of the columns' product is the backend's choice (`array_product`).
    matvec = functools.partial(xp.matmul, a)
    op = CoreOperator(
        shape, a.dtype, a, matvec, backend.array_product(a), f"a {library_name(xp)} array"
    )
    op.traceable = op.backend.traceable_array(a)
    return op


def _from_scipy_sparse(a: Any) -> CoreOperator:
    import numpy as np

    shape = _check_shape(a.shape)
    like = np.zeros(0, dtype=a.dtype)
    return CoreOperator(shape, a.dtype, like, a.__matmul__, a.__matmul__, type(a).__name__)


def _from_protocol(obj: Any, like: Any) -> CoreOperator:
    shape = _check_shape(obj.shape)
    if like is None:
        like = like_from_dtype(obj.dtype, getattr(obj, "device", None))
    matmat = getattr(obj, "matmat", None)
    op = CoreOperator(shape, obj.dtype, like, obj.matvec, matmat, type(obj).__name__)
    offer = getattr(obj, "traceable_product", None)
    op.traceable = offer() if callable(offer) else None
    return op


def _from_callable(
    f: Callable[[Any], Any], shape: Any, dtype: Any, like: Any, traceable: bool
) -> CoreOperator:
    if shape is None:
        msg = "a callable needs shape=(n, n) (and dtype= or like=) to be an operator"
        raise TypeError(msg)
    if dtype is None and like is None:
        msg = (
            "a callable needs dtype= (a numpy, torch, JAX or TensorFlow dtype) or like= (an array)"
        )
        raise TypeError(msg)
    shape = _check_shape_argument(shape)
    if like is None:
        like = like_from_dtype(dtype)
    if dtype is None:
        dtype = like.dtype
    name = getattr(f, "__name__", type(f).__name__)
    op = CoreOperator(shape, dtype, like, f, None, f"callable {name}")
    if traceable:
        op.traceable = op.backend.traceable_callable(f)
    return op


def as_operator(
    obj: Any,
    /,
    *,
    shape: Any = None,
    dtype: Any = None,
    like: Any = None,
    traceable: bool = False,
) -> CoreOperator:
    """`aslinearoperator`, typed as what it returns: the core's operator class."""
    check_bool("traceable", traceable)
    unchanged = shape is None and dtype is None and like is None and not traceable
    if isinstance(obj, CoreOperator) and unchanged:
        return obj
    like, dtype = _check_like(like), _check_dtype(dtype)
    if traceable and (not callable(obj) or is_array(obj) or hasattr(obj, "matvec")):
        msg = (
            "traceable=True describes a callable; arrays and adapters' operators are "
            "traceable already"
        )
        raise TypeError(msg)
    array_like = is_array(obj) or _is_scipy_sparse(obj)
    is_protocol = hasattr(obj, "matvec") and hasattr(obj, "shape") and hasattr(obj, "dtype")
    if (array_like or is_protocol) and (shape is not None or dtype is not None):
        msg = "shape= and dtype= describe a callable; this operator already has its own"
        raise TypeError(msg)
    if is_protocol:
        return _from_protocol(obj, like)
    if _is_scipy_sparse(obj):
        return _from_scipy_sparse(obj)
    if is_array(obj):
        if like is not None:
            msg = "like= describes a callable or protocol object, not an array"
            raise TypeError(msg)
        return _from_array(obj)
    if callable(obj):
        return _from_callable(obj, shape, dtype, like, traceable)
    msg = (
        f"cannot make a linear operator from {type(obj).__name__}: pass a 2-D array, a "
        "scipy.sparse matrix, an object with shape, dtype and matvec, or a callable "
        "with shape= and dtype="
    )
    raise TypeError(msg)


def aslinearoperator(
    obj: Any,
    /,
    *,
    shape: Any = None,
    dtype: Any = None,
    like: Any = None,
    traceable: bool = False,
) -> LinearOperator:
    """Return `obj` as a `LinearOperator` whose vectors live in the right library.

    Parameters
    ----------
    obj
        One of: a 2-D array of any array-API library (numpy, torch, JAX, CuPy,
        array-api-strict) or a TensorFlow tensor; a scipy.sparse matrix or
        array; an object following `LinearOperator` (a
        ``scipy.sparse.linalg.LinearOperator`` is one); a callable
        ``f(v) -> A v`` on vectors of shape (n,).
    shape : tuple of int, optional
        ``(n, n)``; required for a callable, not allowed otherwise.
    dtype : optional
        The callable's vector dtype (numpy, torch, JAX or TensorFlow dtype); for a callable,
        give `dtype` or `like`.
    like : array, optional
        An array of the library and device the vectors live in (a CuPy array,
        a tensor on a GPU, ...). Used with callables and protocol objects whose
        dtype does not name the library (JAX and CuPy use numpy dtypes).
    traceable : bool, default False
        The callable is a pure JAX function of its vector (``like=`` a JAX
        array): the same vector always gives the same product, and it can be
        traced by `jax.jit` and `jax.vmap`; or a pure TensorFlow function of
        its tensor (``like=`` a tensor, or a TensorFlow `dtype`), traceable by
        `tf.function` (TensorFlow ops only: numpy inside it would be frozen
        into the graph). `lanczos` and `density` then run a batch's whole
        Lanczos recurrence, products included, as one compiled XLA program
        (JAX) or one `tf.function` call (TensorFlow), and `lanczos` runs
        inside a user's `jax.jit`. A 2-D JAX array or TensorFlow tensor and
        `adapters.jax_hessian` are traceable without asking.

    Returns
    -------
    LinearOperator
        An operator with ``matvec``, ``matmat``, ``shape``, ``dtype``, ``device``
        and ``xp`` (the array namespace of its vectors). An operator made by this
        function is returned unchanged.

    Raises
    ------
    ValueError
        If the operator is not 2-D and square.
    TypeError
        If its dtype is not real floating, or a callable lacks `shape`/`dtype`.
    ValueError
        For ``traceable=True`` with vectors of a library that does not compile
        whole runs (anything but JAX and TensorFlow).

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> op = slq.aslinearoperator(np.diag([1.0, 2.0, 3.0]))
    >>> op.shape, op.matvec(np.ones(3))
    ((3, 3), array([1., 2., 3.]))
    >>> op = slq.aslinearoperator(lambda v: 2.0 * v, shape=(4, 4), dtype=np.float32)
    >>> op.matmat(np.ones((4, 2), dtype=np.float32))[:, 0]
    array([2., 2., 2., 2.], dtype=float32)
    """
    return as_operator(obj, shape=shape, dtype=dtype, like=like, traceable=traceable)


def matmat(op: LinearOperator, vectors: Any, /) -> Any:
    """Apply `op` to the columns of `vectors` (shape (n, k)), one matvec each if need be.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> slq.matmat(slq.aslinearoperator(np.eye(2)), np.ones((2, 3))).shape
    (2, 3)
    """
    op = as_operator(op)
    check_array_of("vectors", vectors, op.xp)
    if len(vectors.shape) != 2 or vectors.shape[0] != op.shape[0]:
        msg = f"vectors must have shape ({op.shape[0]}, k), got {tuple(vectors.shape)}"
        raise ValueError(msg)
    return op.matmat(vectors)

"""Array-namespace plumbing: which library and device a vector lives in.

Nothing here imports a framework. A framework's namespace is only looked up when
the user already handed us one of its dtypes, devices or arrays, which means the
framework is already imported.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

import array_api_compat
import numpy as np

from slq._backends.host_memory import basis_zeros

__all__ = [
    "accumulation_dtype",
    "array_namespace",
    "check_real_floating",
    "contiguous_rows",
    "device",
    "dtype_name",
    "eps",
    "fresh_zeros",
    "is_array",
    "library_name",
    "like_from_dtype",
    "namespace_and_device",
    "row_dots",
    "row_lengths",
    "subtract_scaled",
    "to_host",
    "vectors_to_host",
]

# Root module of a dtype's or device's type -> module that can make an array of it.
_ARRAY_MODULES = {
    "numpy": "numpy",
    "torch": "torch",
    "jax": "jax.numpy",
    "jaxlib": "jax.numpy",
    "cupy": "cupy",
    "array_api_strict": "array_api_strict",
    "dask": "dask.array",
    # array-api-compat does not cover TensorFlow: slq brings its own namespace.
    "tensorflow": "slq._backends.tensorflow",
}

_TENSORFLOW = "slq._backends.tensorflow"


def _root_module(obj: Any) -> str:
    # `jnp.float32` is a class whose module names the library; a numpy or torch
    # dtype is an instance whose *type* does.
    module = obj.__module__ if isinstance(obj, type) else type(obj).__module__
    return (module or "").split(".")[0]


def _array_module(root: str) -> Any | None:
    # Only a library that is already imported: its dtype or device could not exist otherwise.
    name = _ARRAY_MODULES.get(root)
    if name is None or root not in sys.modules:
        return None
    return importlib.import_module(name)


def _is_tensorflow(x: Any) -> bool:
    # The module name first: it never imports TensorFlow for another library's array.
    if not type(x).__module__.startswith("tensorflow."):
        return False
    return _tensorflow().is_array(x)


def _tensorflow() -> Any:
    return importlib.import_module(_TENSORFLOW)


def array_namespace(*arrays: Any) -> Any:
    """Return the array-API namespace of `arrays`: array-api-compat's, or slq's for TensorFlow."""
    if arrays and all(_is_tensorflow(x) for x in arrays):
        return _tensorflow()
    return array_api_compat.array_namespace(*arrays)


def is_array(obj: Any) -> bool:
    """Return whether `obj` is an array the core can work on (TensorFlow tensors included)."""
    return array_api_compat.is_array_api_obj(obj) or _is_tensorflow(obj)


def device(x: Any) -> Any:
    """Return the device of the array `x`."""
    return _tensorflow().device(x) if _is_tensorflow(x) else array_api_compat.device(x)


def like_from_dtype(dtype: Any, device: Any = None) -> Any:
    """Return an empty array with `dtype` on `device`, in the library they belong to.

    The library is read from the device's type when it names one (a JAX or CuPy
    device: their dtypes are numpy dtypes), else from the dtype's type; a numpy
    dtype with no such device means numpy.
    """
    for root in (_root_module(device) if device is not None else None, _root_module(dtype)):
        module = _array_module(root) if root else None
        if module is not None and root != "numpy":
            break
    else:
        module = np
    kwargs = {} if device is None else {"device": device}
    try:
        return module.zeros((0,), dtype=dtype, **kwargs)
    except TypeError as err:
        msg = (
            f"cannot make a vector of dtype {dtype!r} on device {device!r} with "
            f"{module.__name__}; pass `like=` an array of the operator's library and device"
        )
        raise TypeError(msg) from err


def library_name(xp: Any) -> str:
    """Return the short name of an array namespace: "numpy", "torch", "jax.numpy", ..."""
    return (
        "tensorflow"
        if xp.__name__ == _TENSORFLOW
        else xp.__name__.removeprefix("array_api_compat.")
    )


def namespace_and_device(like: Any) -> tuple[Any, Any]:
    """Return the array-API namespace and the device of the array `like`."""
    return array_namespace(like), device(like)


def dtype_name(dtype: Any) -> str:
    """Return `dtype` as messages show it: ``tf.int64`` for TensorFlow's ``<dtype: 'int64'>``."""
    return repr(dtype) if _root_module(dtype) == "tensorflow" else str(dtype)


def check_real_floating(dtype: Any, xp: Any, *, what: str = "operator") -> None:
    """Raise a clear error unless `dtype` is a real floating dtype of `xp`."""
    if xp.isdtype(dtype, "real floating"):
        return
    if xp.isdtype(dtype, "complex floating"):
        msg = (
            f"{what} dtype must be real floating, got {dtype_name(dtype)}: SLQ needs a real "
            "symmetric operator (for a Hermitian H, use the real form "
            "[[Re H, -Im H], [Im H, Re H]])"
        )
    else:
        msg = (
            f"{what} dtype must be real floating, got {dtype_name(dtype)}: cast it to float64 "
            "(or float32)"
        )
    raise TypeError(msg)


def eps(dtype: Any, xp: Any) -> float:
    """Machine epsilon of the floating dtype `dtype`."""
    return float(xp.finfo(dtype).eps)


def accumulation_dtype(xp: Any, device: Any, dtype: Any) -> Any:
    """Return the dtype in which to accumulate inner products: float64 where the device has it.

    imate reports ~30% errors from float32 SLQ at n > 1e7; accumulating the Lanczos
    coefficients in float64 removes that source of error.
    """
    try:
        return _accumulation_dtype(xp, device, dtype)
    except TypeError:  # an unhashable device or dtype: ask without the cache
        return _accumulation_dtype.__wrapped__(xp, device, dtype)


@functools.lru_cache(maxsize=64)
def _accumulation_dtype(xp: Any, device: Any, dtype: Any) -> Any:
    # Cached: JAX builds its dtype table anew on every call (0.3 ms), several times a step.
    try:
        available = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
    except (AttributeError, TypeError):
        return dtype
    return available.get("float64", dtype)


def to_host(x: Any) -> np.ndarray:
    """Copy a small array (a few scalars) from any library and device to numpy."""
    return _copy_to_host(x)


def vectors_to_host(x: Any) -> np.ndarray:
    """Copy n-vectors to numpy: only where the user asked for host memory (`offload_basis`).

    Kept apart from `to_host` so that a check that only scalars leave the device
    (``benchmarks/gpu_check.py``) can tell the two apart. On the CPU the result
    may share memory with `x`.
    """
    return _copy_to_host(x)


def _copy_to_host(x: Any) -> np.ndarray:
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    if _is_tensorflow(x):
        return np.asarray(x.numpy())  # from any device
    try:
        return np.from_dlpack(x)
    except (AttributeError, BufferError, RuntimeError, TypeError, ValueError):
        pass
    try:
        # Not on the CPU (CUDA tensors, CuPy): move it there first.
        return np.asarray(array_api_compat.to_device(x, "cpu"))
    except (BufferError, RuntimeError, TypeError, ValueError):
        return np.asarray(x)


def contiguous_rows(x: Any, xp: Any) -> Any:
    """Return the 2-D array `x` with each row contiguous in memory, copying only if needed.

    The array API has no notion of layout; flattening and reshaping is the
    portable way to get C order. A transposed (n, k) operator output would
    otherwise leave every row strided, and numpy's matmul then bypasses BLAS.
    """
    if xp.__name__ == _TENSORFLOW:  # TensorFlow tensors are always dense in C order
        return x
    return xp.reshape(xp.reshape(x, (-1,)), x.shape)


def subtract_scaled(w: Any, c: Any, v: Any, xp: Any, *, in_place: bool = False) -> Any:
    """Return w − c v for rows `w`, `v` (k, n) and `c` (k, 1); into `w` itself with `in_place`.

    In place where the library writes arrays in place (elsewhere `w` is rebound),
    so that a Lanczos step makes no fresh n-vector, whose page faults cost as
    much as the arithmetic (0.15 ms at n = 1e5 in torch). torch's fused
    ``addcmul`` makes no temporary for c v either.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.namespace import subtract_scaled
    >>> w = np.ones((1, 3))
    >>> subtract_scaled(w, np.array([[2.0]]), np.ones((1, 3)), np, in_place=True) is w, w
    (True, array([[-1., -1., -1.]]))
    """
    if library_name(xp) == "torch":
        return w.addcmul_(c, v, value=-1) if in_place else w.addcmul(c, v, value=-1)
    if in_place:
        w -= c * v
        return w
    return w - c * v


# From this row length on, torch on a CPU takes each row's inner product as one BLAS
# dot: its batched vecdot (a bmm of (1, n) by (n, 1) blocks) measured 1.8x (k = 1) to
# 3.6x (k = 32) slower at n = 1e5, one thread. Below it the calls' overhead dominates.
_DOT_BY_ROW = 4096


def row_dots(a: Any, b: Any, xp: Any) -> Any:
    """Return the inner product of each row of `a` with the same row of `b`: (k, n) -> (k,).

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.namespace import row_dots
    >>> row_dots(np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((2, 2)), np)
    array([3., 7.])
    """
    if _dots_by_row(a, xp):
        return xp.stack([x.dot(y) for x, y in zip(a, b, strict=True)])
    return xp.vecdot(a, b, axis=-1)


def _dots_by_row(a: Any, xp: Any) -> bool:
    if library_name(xp) != "torch" or a.device.type != "cpu":
        return False
    return bool(a.shape[0] > 0 and a.shape[-1] >= _DOT_BY_ROW)


def row_lengths(rows: Any, xp: Any) -> Any:
    """Return the Euclidean norm of each row of `rows`: (k, n) -> (k,), unscaled.

    The square root of a sum of squares, as the rows' own dtype holds it: the
    Lanczos engine keeps its vectors within 2^±60 (`power_of_two_scale`).

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.namespace import row_lengths
    >>> row_lengths(np.array([[3.0, 4.0]]), np)
    array([5.])
    """
    if library_name(xp) == "torch":  # one reduction, 2.5-5x faster than its vecdot
        return xp.linalg.vector_norm(rows, axis=-1)
    # sqrt of a vecdot, not vector_norm: numpy squares into an n-sized temporary first.
    return xp.sqrt(xp.vecdot(rows, rows, axis=-1))


# torch dtypes a numpy array can hold, by name: the basis `fresh_zeros` allocates.
_NUMPY_FLOATS = ("float16", "float32", "float64")


def fresh_zeros(shape: tuple[int, ...], dtype: Any, device: Any, xp: Any) -> Any:
    """Return a new array of zeros, its pages zeroed by the OS as they are first written.

    numpy, and torch on the CPU, get `basis_zeros`: memory the OS zeroes a
    4 KiB page at a time as rows are written (`slq._backends.host_memory`).
    torch's own `zeros` writes zeros over pages the kernel zeroes anyway when
    they are first touched (24–27 ms for a (1, 90, 10⁵) float64 basis), so a
    CPU tensor holds the numpy array's memory instead (`asarray` shares it).
    Elsewhere the library's own `zeros`.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.namespace import fresh_zeros
    >>> fresh_zeros((1, 2), np.float64, "cpu", np)
    array([[0., 0.]])
    """
    library = library_name(xp)
    if library == "numpy":
        return basis_zeros(shape, dtype)
    name = str(dtype).removeprefix("torch.")
    if library == "torch" and str(device) == "cpu" and name in _NUMPY_FLOATS:
        return xp.asarray(basis_zeros(shape, name), device=device)
    return xp.zeros(shape, dtype=dtype, device=device)

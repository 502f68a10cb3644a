"""`aslinearoperator`: every accepted input, and a clear error for every other."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from helpers import Backend, assert_close, device, namespace, need, to_numpy

import slq

A = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])


def test_arrays_of_every_backend(backend: Backend) -> None:
    op = slq.aslinearoperator(backend.asarray(A))
    assert op.shape == (3, 3) and op.xp is backend.xp
    v = backend.asarray(np.ones(3))
    out = op.matvec(v)
    assert namespace(out) is backend.xp
    np.testing.assert_allclose(to_numpy(out), A @ np.ones(3))
    np.testing.assert_allclose(to_numpy(op.matmat(backend.asarray(np.eye(3)))), A)
    assert isinstance(op, slq.LinearOperator)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("k", [1, 5])
def test_array_columns_product_is_a_times_v(backend: Backend, order: str, k: int) -> None:
    # numpy's columns' product runs as rows, (Vᵀ aᵀ)ᵀ: still a @ V, for any a and layout.
    rng = np.random.default_rng(0)
    a = np.asarray(rng.standard_normal((30, 30)), order=order)  # not symmetric on purpose
    v = rng.standard_normal((30, k))
    out = slq.aslinearoperator(backend.asarray(a)).matmat(backend.asarray(v))
    assert tuple(out.shape) == (30, k)
    assert_close(to_numpy(out), a @ v, scale=float(np.abs(a).sum(axis=1).max()))


def test_an_operator_is_returned_unchanged() -> None:
    op = slq.aslinearoperator(A)
    assert slq.aslinearoperator(op) is op


@pytest.mark.parametrize("kind", ["csr_array", "csr_matrix", "coo_array"])
def test_scipy_sparse(kind: str) -> None:
    import scipy.sparse as sparse

    op = slq.aslinearoperator(getattr(sparse, kind)(A))
    assert op.dtype == np.float64 and op.xp is array_api_compat.numpy
    np.testing.assert_allclose(op.matvec(np.ones(3)), A @ np.ones(3))
    np.testing.assert_allclose(op.matmat(np.eye(3)), A)


def test_scipy_linear_operator() -> None:
    import scipy.sparse.linalg as linalg

    op = slq.aslinearoperator(linalg.aslinearoperator(A))
    np.testing.assert_allclose(op.matmat(np.eye(3)), A)


def test_protocol_object_without_matmat_gets_columnwise_matmat(backend: Backend) -> None:
    class Diagonal:
        def __init__(self, d):
            self.d, self.shape, self.dtype = d, (3, 3), d.dtype
            self.device = device(d)

        def matvec(self, v):
            return self.d * v

    op = slq.aslinearoperator(Diagonal(backend.asarray([1.0, 2.0, 3.0])))
    assert op.xp is backend.xp
    np.testing.assert_allclose(
        to_numpy(op.matmat(backend.asarray(np.ones((3, 2))))), [[1, 1], [2, 2], [3, 3]]
    )


def test_callable_with_dtype(backend: Backend) -> None:
    op = slq.aslinearoperator(lambda v: 2.0 * v, shape=(4, 4), dtype=backend.dtype("float32"))
    assert op.xp is backend.xp and op.dtype == backend.dtype("float32")
    out = op.matmat(backend.asarray(np.ones((4, 3)), "float32"))
    np.testing.assert_allclose(to_numpy(out), 2.0)


def test_callable_with_like(backend: Backend) -> None:
    like = backend.asarray(np.zeros(1))
    op = slq.aslinearoperator(lambda v: 3.0 * v, shape=(2, 2), like=like)
    assert op.xp is backend.xp and op.dtype == like.dtype
    np.testing.assert_allclose(to_numpy(op.matvec(backend.asarray(np.ones(2)))), 3.0)


def test_jax_device_selects_jax_for_numpy_dtypes() -> None:
    need(Backend.JAX)
    import jax

    class OnJax:
        shape, dtype, device = (2, 2), np.dtype("float64"), jax.devices("cpu")[0]

        def matvec(self, v):
            return v

    assert slq.aslinearoperator(OnJax()).xp is array_api_compat.array_namespace(jax.numpy.zeros(1))


def test_matmat_helper() -> None:
    np.testing.assert_allclose(slq.matmat(A, np.eye(3)), A)


def test_repr_names_the_source() -> None:
    assert "from a numpy array" in repr(slq.aslinearoperator(A))


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (np.ones(3), r"operator must be 2-D, got shape \(3,\)"),
        (np.ones((2, 2, 2)), r"operator must be 2-D, got shape \(2, 2, 2\)"),
        (np.ones((3, 4)), r"operator must be square, got shape \(3, 4\)"),
        (np.ones((0, 0)), r"operator must have at least one row, got shape \(0, 0\)"),
    ],
)
def test_bad_shapes(obj: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slq.aslinearoperator(obj)


def test_bad_shape_for_a_callable() -> None:
    with pytest.raises(ValueError, match=r"operator must be square, got shape \(2, 3\)"):
        slq.aslinearoperator(lambda v: v, shape=(2, 3), dtype=np.float64)


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        ("int64", "operator dtype must be real floating, got .*int64: cast it to float64"),
        ("bool", "operator dtype must be real floating, got .*bool: cast it to float64"),
        ("complex128", "operator dtype must be real floating, got .*complex128: SLQ needs a real"),
    ],
)
def test_bad_dtypes(backend: Backend, dtype: str, message: str) -> None:
    a = backend.asarray(np.eye(2), dtype)
    with pytest.raises(TypeError, match=message):
        slq.aslinearoperator(a)


def test_callable_needs_shape_and_dtype() -> None:
    with pytest.raises(TypeError, match=r"a callable needs shape=\(n, n\)"):
        slq.aslinearoperator(lambda v: v)
    with pytest.raises(TypeError, match="a callable needs dtype="):
        slq.aslinearoperator(lambda v: v, shape=(2, 2))


def test_shape_and_dtype_are_for_callables_only() -> None:
    with pytest.raises(TypeError, match="shape= and dtype= describe a callable"):
        slq.aslinearoperator(A, shape=(3, 3))
    with pytest.raises(TypeError, match="like= describes a callable"):
        slq.aslinearoperator(A, like=np.zeros(1))


def test_unknown_object() -> None:
    with pytest.raises(TypeError, match="cannot make a linear operator from str"):
        slq.aslinearoperator("matrix.npy")

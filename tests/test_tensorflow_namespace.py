"""slq's own array namespace for TensorFlow (array-api-compat has none) and its row-block basis."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Backend, need

import slq
from slq import _backends

tf = need(Backend.TENSORFLOW)
xp = _backends.array_namespace(tf.zeros(1))  # what the core resolves for a tensor
backend = _backends.backend_for(xp)

KINDS = ("bool", "signed integer", "unsigned integer", "integral", "real floating")
KINDS += ("complex floating", "numeric")


def test_the_core_finds_the_namespace_from_tensors_dtypes_and_devices() -> None:
    t = tf.constant([1.0, 2.0], dtype=tf.float32)
    assert xp.__name__ == "slq._backends.tensorflow" and _backends.library_name(xp) == "tensorflow"
    assert _backends.namespace_and_device(t) == (xp, t.device)
    assert _backends.namespace_and_device(tf.Variable(t)) == (xp, t.device)
    like = _backends.like_from_dtype(tf.float32)
    assert isinstance(like, tf.Tensor) and like.dtype == tf.float32
    assert _backends.like_from_dtype(tf.float64, t.device).device == t.device
    assert _backends.accumulation_dtype(xp, t.device, tf.float32) == tf.float64
    np.testing.assert_array_equal(_backends.to_host(t), [1.0, 2.0])
    with pytest.raises(TypeError):
        _backends.array_namespace(t, np.ones(2))


def test_namespace_functions_agree_with_numpy() -> None:
    for name, dtype in xp.__array_namespace_info__().dtypes().items():
        for kind in KINDS:
            assert xp.isdtype(dtype, kind) == np.isdtype(np.dtype(name), kind), (name, kind)
    assert set(xp.__array_namespace_info__().dtypes(kind="real floating")) == {
        "float32",
        "float64",
    }
    assert xp.finfo(tf.float32).eps == np.finfo(np.float32).eps
    a = np.arange(6.0).reshape(2, 3)
    t = xp.asarray(a, dtype=tf.float64)
    np.testing.assert_allclose(xp.vecdot(t, t), np.vecdot(a, a))
    np.testing.assert_allclose(xp.vecdot(t, t, axis=0), np.vecdot(a, a, axis=0))
    v, w = xp.asarray(a[0]), xp.asarray(a[:, 0])
    np.testing.assert_allclose(xp.matmul(t, v), a @ a[0])
    np.testing.assert_allclose(xp.matmul(w, t), a[:, 0] @ a)
    np.testing.assert_allclose(xp.matmul(v, v), a[0] @ a[0])
    np.testing.assert_allclose(xp.matmul(t, xp.permute_dims(t, (1, 0))), a @ a.T)
    np.testing.assert_allclose(xp.linalg.vector_norm(t, axis=-1), np.linalg.norm(a, axis=-1))
    assert xp.asarray(a, dtype=tf.float32).dtype == tf.float32
    assert xp.astype(t, tf.float32).dtype == tf.float32
    assert xp.zeros_like(t).device == t.device
    assert xp.expand_dims(t, axis=1).shape == (2, 1, 3)


def test_the_basis_stores_each_row_into_blocks_that_are_never_copied_again() -> None:
    rows = np.random.default_rng(0).standard_normal((40, 2, 7))
    blocks = backend.new_basis((2, 40, 7), tf.float64, None)
    for j, row in enumerate(rows):
        blocks = backend.store_row(blocks, j, tf.constant(row))
        if j == xp.BLOCK_ROWS:
            first = blocks[0]
    assert [int(b.shape[1]) for b in blocks] == [16, 16, 8]
    assert blocks[0] is first  # a full block is kept as it is
    stored = np.transpose(rows, (1, 0, 2))  # (k, m, n)
    np.testing.assert_array_equal(backend.stored_rows(blocks, 40), stored)
    np.testing.assert_array_equal(backend.stored_rows(blocks, 20), stored[:, :20])
    with pytest.raises(AssertionError, match="a bug in slq"):
        backend.store_row(blocks, 3, tf.constant(rows[0]))


def test_projection_is_classical_gram_schmidt_twice() -> None:
    rng = np.random.default_rng(1)
    basis = np.stack([np.linalg.qr(rng.standard_normal((50, 20)))[0].T for _ in range(3)])
    w = rng.standard_normal((3, 50))
    blocks = backend.new_basis((3, 20, 50), tf.float64, None)
    for j in range(20):
        blocks = backend.store_row(blocks, j, tf.constant(basis[:, j]))
    expected = w
    for _ in range(2):
        expected = expected - np.einsum(
            "kj,kjn->kn", np.einsum("kjn,kn->kj", basis, expected), basis
        )
    np.testing.assert_allclose(
        backend.orthogonalize(tf.constant(w), blocks, 20), expected, atol=1e-13
    )


def test_basis_without_reorthogonalization_is_a_tensor() -> None:
    a = np.diag(np.linspace(1.0, 2.0, 30))
    v = np.ones((30, 2))
    result = slq.lanczos(
        tf.constant(a), tf.constant(v), 20, reorthogonalize="none", return_basis=True
    )
    assert isinstance(result.basis, tf.Tensor) and result.basis.shape == (2, 30, 20)
    reference = slq.lanczos(a, v, 20, reorthogonalize="none", return_basis=True)
    np.testing.assert_allclose(result.basis, reference.basis, atol=1e-10)

"""Shared test helpers: backends, dense oracles, tolerances, a namespace-checking operator."""

from __future__ import annotations

import enum
import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import array_api_compat
import numpy as np
import pytest

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "tensorflow")


class Backend(enum.Enum):
    """An array library the core must work on, unchanged."""

    NUMPY = "numpy"
    STRICT = "array_api_strict"
    TORCH = "torch"
    JAX = "jax"
    TENSORFLOW = "tensorflow"

    def require(self) -> None:
        """Import the library, failing (never skipping) the test if it is missing."""
        try:
            self.module()
        except ImportError as err:
            pytest.fail(
                f"backend {self.value!r} was requested (SLQ_TEST_BACKENDS) but is not "
                f"installed: {err}. Install the test extra: pip install -e '.[test]'"
            )

    def module(self) -> Any:
        if self is Backend.JAX:
            jax = importlib.import_module("jax")
            jax.config.update("jax_enable_x64", True)
            return importlib.import_module("jax.numpy")
        return importlib.import_module(self.value)

    @property
    def xp(self) -> Any:
        """The array-API namespace the core sees for this library's arrays."""
        return namespace(self.asarray(np.zeros(1)))

    def dtype(self, name: str) -> Any:
        return getattr(self.module(), name)

    def asarray(self, a: Any, dtype: str = "float64") -> Any:
        """Copy the numpy array `a` into this library, as `dtype`."""
        mod = self.module()
        if self is Backend.TENSORFLOW:  # no `asarray` in TensorFlow's own namespace
            return mod.convert_to_tensor(np.asarray(a, dtype=dtype), dtype=getattr(mod, dtype))
        return mod.asarray(np.asarray(a, dtype=dtype), dtype=getattr(mod, dtype))


def _tensorflow_tensor(x: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(x, tf.Tensor)


def namespace(x: Any) -> Any:
    """The namespace of `x`: array-api-compat's, or slq's own for a TensorFlow tensor.

    array-api-compat does not cover TensorFlow; slq brings `slq._backends.tensorflow`.
    """
    if _tensorflow_tensor(x):
        return importlib.import_module("slq._backends.tensorflow")
    return array_api_compat.array_namespace(x)


def device(x: Any) -> Any:
    """The device of `x` (TensorFlow names it by a string attribute)."""
    return x.device if _tensorflow_tensor(x) else array_api_compat.device(x)


def requested_backends() -> list[Backend]:
    names = os.environ.get("SLQ_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",")
    return [Backend(name.strip()) for name in names if name.strip()]


def need(backend: Backend) -> Any:
    """Return the library of `backend` for a test written for it.

    Skips only when the run did not request that backend (SLQ_TEST_BACKENDS);
    a requested backend that is missing fails.
    """
    if backend not in requested_backends():
        pytest.skip(
            f"backend {backend.value!r} not requested in SLQ_TEST_BACKENDS",
            allow_module_level=True,
        )
    backend.require()
    return importlib.import_module(backend.value)


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any backend to numpy."""
    return np.asarray(np.from_dlpack(x))


def tolerance(dtype: Any, scale: float = 1.0) -> float:
    """Relative tolerance for comparing a `dtype` computation with a float64 oracle.

    1000 unit roundoffs, times `scale`: Lanczos with full reorthogonalisation loses
    a modest multiple of eps per step, and the tests run at most a few dozen steps.
    """
    if isinstance(dtype, type):
        name = dtype.__name__
    elif type(dtype).__module__.startswith("tensorflow."):
        name = dtype.name  # str() gives "<dtype: 'float32'>"
    else:
        name = str(dtype).rsplit(".", 1)[-1]
    if name not in ("float32", "float64"):
        raise ValueError(f"tolerance needs a float32 or float64 dtype, got {dtype!r}")
    return scale * 1000.0 * float(np.finfo(name).eps)


def assert_close(
    actual: Any, desired: Any, *, scale: float | None = None, dtype: Any = None, factor: float = 1.0
) -> None:
    """Assert |actual − desired| ≤ factor · tolerance(dtype) · scale, entry by entry.

    For results that agree only to rounding: the same computation with other
    batch shapes, BLAS kernels or backends. The bound is absolute, relative to
    `scale`, the size of the quantities the computation combined (default
    max |desired|, or 1 if that is 0): rounding errors scale with those, so an
    entry near zero gets no more relative slack than the largest one. `dtype`
    defaults to that of `desired` (float64 for Python floats).
    """
    actual, desired = to_numpy_any(actual), to_numpy_any(desired)
    if actual.shape != desired.shape:
        raise AssertionError(f"shapes differ: {actual.shape} != {desired.shape}")
    if scale is None:
        biggest = float(np.max(np.abs(desired), initial=0.0))
        scale = biggest if biggest > 0 else 1.0
    bound = factor * tolerance(desired.dtype if dtype is None else dtype, scale=scale)
    np.testing.assert_allclose(actual, desired, rtol=0, atol=bound)


def to_numpy_any(x: Any) -> np.ndarray:
    """`x` as a float numpy array: an array of any backend, a list or a Python number."""
    if hasattr(x, "__dlpack__") and not isinstance(x, np.ndarray):
        x = to_numpy(x)
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def symmetric_with_spectrum(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    """Return A = Q diag(λ) Qᵀ (exactly symmetric) with a Haar-random orthogonal Q."""
    from slq import testing

    return testing.matrix_with_spectrum(eigenvalues, seed=seed).matrix


def spectral_measure(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probe's exact spectral measure: eigenvalues and weights (u_jᵀ v)² / ‖v‖²."""
    lam, u = np.linalg.eigh(a)
    w = (u.T @ v) ** 2
    return lam, w / w.sum()


class CheckedOperator:
    """A dense operator that asserts it only ever receives arrays of its own library."""

    def __init__(self, a: Any, *, with_matmat: bool = True) -> None:
        self.a = a
        self.xp = namespace(a)
        self.shape = tuple(a.shape)
        self.dtype = a.dtype
        self.device = device(a)
        self.inputs = 0
        if not with_matmat:
            self.matmat = None  # type: ignore[assignment]

    def _check(self, v: Any, ndim: int) -> None:
        assert namespace(v) is self.xp, type(v)
        assert device(v) == self.device
        assert v.ndim == ndim and v.dtype == self.dtype
        self.inputs += 1

    def matvec(self, v: Any) -> Any:
        self._check(v, 1)
        return (self.a @ v[:, None])[:, 0]  # TensorFlow's `@` needs 2-D operands

    def matmat(self, v: Any) -> Any:
        self._check(v, 2)
        return self.a @ v


def check_extreme_eigenvalues(op: Any, dense: np.ndarray) -> None:
    """Run SLQ to the operator's full size and compare its extreme Ritz values with eigvalsh."""
    import slq

    exact = np.linalg.eigvalsh(dense)
    dos = slq.density(op, num_steps=op.shape[0], num_probes=2, seed=0)
    scale = np.abs(exact).max()
    assert dos.lambda_max == pytest.approx(exact[-1], abs=1e-8 * scale)
    assert dos.lambda_min == pytest.approx(exact[0], abs=1e-8 * scale)


def rewrite_archive(path: Path, change: Callable[[dict[str, Any], dict[str, Any]], Any]) -> None:
    """Apply `change` to the metadata and arrays of the slq archive at `path`, as a tamperer would.

    `change(meta, arrays)` edits them in place, or returns a str or list that
    replaces the metadata whole.
    """
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("meta")))
    replaced = change(meta, arrays)
    if isinstance(replaced, (str, list)):
        meta = replaced
    arrays.setdefault("meta", np.asarray(meta if isinstance(meta, str) else json.dumps(meta)))
    np.savez(path, **arrays)

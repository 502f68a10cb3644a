"""Where the Lanczos vectors are kept: on the operator's device, or in host memory."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from slq._backend import new_basis, store_row, stored_rows, vectors_to_host
from slq._gram_schmidt import project_out

__all__ = ["DeviceBasis", "HostBasis", "orthogonalize", "rows_used"]

# Row-count granularity of the basis slices for immutable (per-shape compiled) arrays.
_SHAPE_BLOCK = 16


def rows_used(basis: Any, j: int) -> int:
    """Return how many stored rows to project against after step j.

    Rows not yet filled are zero and contribute nothing, so a few extra are
    harmless: JAX then compiles once per block of rows, not once per step.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._basis import rows_used
    >>> rows_used(np.zeros((1, 90, 5)), 0), rows_used(np.zeros((1, 90, 5)), 16)
    (16, 32)
    """
    return min(basis.shape[1], -(-(j + 1) // _SHAPE_BLOCK) * _SHAPE_BLOCK)


def orthogonalize(w: Any, basis: Any, j: int, xp: Any) -> Any:
    """Remove from each row of `w` its components along the first j+1 stored vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._basis import orthogonalize
    >>> orthogonalize(np.array([[1.0, 2.0, 3.0]]), np.eye(3)[None, :2, :], 1, np)
    array([[0., 0., 3.]])
    """
    if array_api_compat.is_jax_array(basis):
        from slq import _jax

        return _jax.compiled(_jax.project_rows, static_argnums=(2,))(w, basis, rows_used(basis, j))
    return project_out(w, basis, j + 1)


class DeviceBasis:
    """The Lanczos vectors of k probes, (k, m, n), on the operator's device.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._basis import DeviceBasis
    >>> basis = DeviceBasis(np, (1, 2, 3), np.float64, "cpu")
    >>> basis.store(0, np.array([[1.0, 0.0, 0.0]]))
    >>> basis.project(np.array([[2.0, 5.0, 0.0]]), 1)
    array([[0., 5., 0.]])
    """

    def __init__(self, xp: Any, shape: tuple[int, int, int], dtype: Any, device: Any) -> None:
        self.xp = xp
        self.rows = new_basis(xp, shape, dtype, device)

    def store(self, j: int, q: Any) -> None:
        """Keep the rows of `q` (k, n) as the j-th Lanczos vectors."""
        self.rows = store_row(self.rows, j, q)

    def project(self, w: Any, rows: int) -> Any:
        """Return `w` (k, n) reorthogonalised against the first `rows` vectors (CGS twice)."""
        return orthogonalize(w, self.rows, rows - 1, self.xp)

    def vectors(self, m: int) -> Any:
        """Return the first m vectors as (k, n, m), in the operator's library."""
        return self.xp.permute_dims(stored_rows(self.rows, m), (0, 2, 1))


class HostBasis:
    """The Lanczos vectors in host memory as numpy; the working vectors stay on the device.

    Every stored vector is copied to the host once; a reorthogonalisation
    copies the new vector there and back, and runs Gram–Schmidt on the CPU.
    Device memory is then O(k n) whatever m is.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._basis import HostBasis
    >>> basis = HostBasis(np, (1, 2, 3), np.float64, "cpu")
    >>> basis.store(0, np.array([[1.0, 0.0, 0.0]]))
    >>> basis.project(np.array([[2.0, 5.0, 0.0]]), 1)
    array([[0., 5., 0.]])
    """

    def __init__(self, xp: Any, shape: tuple[int, int, int], dtype: Any, device: Any) -> None:
        self.xp, self.shape, self.dtype, self.device = xp, shape, dtype, device
        self.rows: np.ndarray | None = None  # allocated at the first vector, in its dtype

    def store(self, j: int, q: Any) -> None:
        """Copy the rows of `q` (k, n) to the host as the j-th Lanczos vectors."""
        host = vectors_to_host(q)
        if self.rows is None:
            self.rows = np.zeros(self.shape, dtype=host.dtype)
        self.rows[:, j, :] = host

    def project(self, w: Any, rows: int) -> Any:
        """Return `w` (k, n) reorthogonalised on the host against the first `rows` vectors."""
        assert self.rows is not None, "store a vector before projecting"
        host = project_out(vectors_to_host(w), self.rows, rows)
        return self.xp.asarray(host, dtype=self.dtype, device=self.device)

    def vectors(self, m: int) -> np.ndarray:
        """Return the first m vectors as a numpy (k, n, m) view."""
        assert self.rows is not None, "no vector stored"
        return np.transpose(self.rows[:, :m, :], (0, 2, 1))

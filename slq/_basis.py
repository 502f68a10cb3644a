"""Where the Lanczos vectors are kept: on the operator's device, or in host memory."""

from __future__ import annotations

from typing import Any

import numpy as np

from slq._backends import ArrayAPIBackend, host_backend, vectors_to_host

__all__ = ["DeviceBasis", "HostBasis"]


class DeviceBasis:
    """The Lanczos vectors of k probes, (k, m, n), on the operator's device.

    The array type, how rows are written and the projection are the backend's.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends import backend_for
    >>> from slq._basis import DeviceBasis
    >>> basis = DeviceBasis(backend_for(np), (1, 2, 3), np.float64, "cpu")
    >>> basis.store(0, np.array([[1.0, 0.0, 0.0]]))
    >>> basis.project(np.array([[2.0, 5.0, 0.0]]), 1)
    array([[0., 5., 0.]])
    """

    def __init__(
        self, backend: ArrayAPIBackend, shape: tuple[int, int, int], dtype: Any, device: Any
    ) -> None:
        self.backend = backend
        self.rows = backend.new_basis(shape, dtype, device)

    def store(self, j: int, q: Any) -> None:
        """Keep the rows of `q` (k, n) as the j-th Lanczos vectors."""
        self.rows = self.backend.store_row(self.rows, j, q)

    def project(self, w: Any, rows: int) -> Any:
        """Return `w` (k, n) reorthogonalised against the first `rows` vectors (CGS twice)."""
        return self.backend.orthogonalize(w, self.rows, rows)

    def vectors(self, m: int) -> Any:
        """Return the first m vectors as (k, n, m), in the operator's library."""
        return self.backend.xp.permute_dims(self.backend.stored_rows(self.rows, m), (0, 2, 1))


class HostBasis:
    """The Lanczos vectors in host memory as numpy; the working vectors stay on the device.

    Every stored vector is copied to the host once; a reorthogonalisation
    copies the new vector there and back, and runs Gram–Schmidt on the CPU with
    the host's backend. Device memory is then O(k n) whatever m is.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends import backend_for
    >>> from slq._basis import HostBasis
    >>> basis = HostBasis(backend_for(np), (1, 2, 3), np.float64, "cpu")
    >>> basis.store(0, np.array([[1.0, 0.0, 0.0]]))
    >>> basis.project(np.array([[2.0, 5.0, 0.0]]), 1)
    array([[0., 5., 0.]])
    """

    def __init__(
        self, backend: ArrayAPIBackend, shape: tuple[int, int, int], dtype: Any, device: Any
    ) -> None:
        self.xp, self.shape, self.dtype, self.device = backend.xp, shape, dtype, device
        self.host = host_backend()
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
        host = self.host.orthogonalize(vectors_to_host(w), self.rows, rows)
        return self.xp.asarray(host, dtype=self.dtype, device=self.device)

    def vectors(self, m: int) -> np.ndarray:
        """Return the first m vectors as a numpy (k, n, m) view."""
        assert self.rows is not None, "no vector stored"
        return np.transpose(self.rows[:, :m, :], (0, 2, 1))

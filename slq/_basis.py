"""Where the Lanczos vectors are kept: on the operator's device, or in host memory.

The two storages of a basis; which one a run uses is the caller's choice
(`offload_basis`), independent of the reorthogonalisation policy that reads it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from slq._backends import ArrayAPIBackend, host_backend, vectors_to_host
from slq._backends.host_memory import basis_zeros

__all__ = ["DeviceBasis", "HostBasis", "storage"]


class DeviceBasis:
    """The Lanczos vectors of k probes, (k, m, n), on the operator's device.

    The array type, how rows are written and the projection are the backend's;
    the raw basis is `data`, for kernels that project against it themselves.

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
        self.data = backend.new_basis(shape, dtype, device)

    # Kernels on the device project against `data` inside a step of their own.
    on_device = True

    def store(self, j: int, q: Any) -> None:
        """Keep the rows of `q` (k, n) as the j-th Lanczos vectors."""
        self.data = self.backend.store_row(self.data, j, q)

    def project(self, w: Any, rows: int) -> Any:
        """Return `w` (k, n) reorthogonalised against the first `rows` vectors (once, or twice)."""
        return self.backend.orthogonalize(w, self.data, rows)

    def probes(self, start: int, stop: int) -> DeviceBasis | None:
        """Return the basis of probes `start`:`stop`, written through to this one, or None.

        None where the library cannot share the memory (JAX, TensorFlow).
        """
        view = self.backend.probe_rows(self.data, start, stop)
        if view is None:
            return None
        part = copy.copy(self)
        part.data = view
        return part

    def detach(self, rows: int) -> None:
        """Go on in memory of its own, with a copy of the first `rows` vectors."""
        self.data = self.backend.private_rows(self.data, rows)

    def release(self) -> None:
        """Free the vectors (a detached part that has run to its end)."""
        self.data = None

    def stored(self, rows: int) -> Any:
        """Return the first `rows` vectors as one (k, rows, n) array."""
        return self.backend.stored_rows(self.data, rows)

    def vectors(self, m: int) -> Any:
        """Return the first m vectors as (k, n, m), in the operator's library."""
        return self.backend.xp.permute_dims(self.stored(m), (0, 2, 1))


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
        self.data: np.ndarray | None = None  # allocated at the first vector, in its dtype

    on_device = False

    def store(self, j: int, q: Any) -> None:
        """Copy the rows of `q` (k, n) to the host as the j-th Lanczos vectors."""
        host = vectors_to_host(q)
        if self.data is None:  # written a row a step, as a device basis: see host_memory
            self.data = basis_zeros(self.shape, host.dtype)
        self.data[:, j, :] = host

    def project(self, w: Any, rows: int) -> Any:
        """Return `w` (k, n) reorthogonalised on the host against the first `rows` vectors."""
        assert self.data is not None, "store a vector before projecting"
        host = self.host.orthogonalize(vectors_to_host(w), self.data, rows)
        return self.xp.asarray(host, dtype=self.dtype, device=self.device)

    def vectors(self, m: int) -> np.ndarray:
        """Return the first m vectors as a numpy (k, n, m) view."""
        assert self.data is not None, "no vector stored"
        return np.transpose(self.data[:, :m, :], (0, 2, 1))


def storage(offload_basis: bool) -> type[DeviceBasis] | type[HostBasis]:
    """Return where a run keeps its basis: `HostBasis` when offloaded, else `DeviceBasis`.

    Examples
    --------
    >>> from slq._basis import storage
    >>> storage(True).__name__, storage(False).__name__
    ('HostBasis', 'DeviceBasis')
    """
    return HostBasis if offload_basis else DeviceBasis

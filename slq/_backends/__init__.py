"""The backend seam: everything the core knows about particular array libraries.

The core (`slq.lanczos`, `slq.eigsh`, `slq.kpm`, ...) never names an array
library. `slq.operator` chooses a backend once, with `backend_for`, when it makes
an operator, and the backend travels with the operator as ``op.backend``:

- `slq._backends.array_api`: any array-API namespace, eager (numpy, torch,
  array-api-strict, CuPy, ...);
- `slq._backends.jax`: compiled kernels for JAX;
- `slq._backends.tensorflow`: slq's array-API namespace for TensorFlow and its
  basis of row blocks.

Nothing here imports a framework: a library's backend module is imported only
for a namespace of that library, which is then already loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

import array_api_compat
import numpy as np

from slq._backends.array_api import ArrayAPIBackend
from slq._backends.namespace import (
    accumulation_dtype,
    array_namespace,
    check_real_floating,
    contiguous_rows,
    device,
    dtype_name,
    eps,
    is_array,
    library_name,
    like_from_dtype,
    namespace_and_device,
    row_dots,
    row_lengths,
    subtract_scaled,
    to_host,
    vectors_to_host,
)

__all__ = [
    "ArrayAPIBackend",
    "accumulation_dtype",
    "array_namespace",
    "backend_for",
    "check_real_floating",
    "contiguous_rows",
    "device",
    "dtype_name",
    "eps",
    "host_backend",
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


def backend_for(xp: Any) -> ArrayAPIBackend:
    """Return the backend for the array namespace `xp`.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends import backend_for
    >>> backend_for(np).name
    'array_api'
    """
    name = library_name(xp)
    if name == "tensorflow":
        return importlib.import_module("slq._backends.tensorflow").TensorFlowBackend(xp)  # type: ignore[no-any-return]
    if array_api_compat.is_jax_namespace(xp):
        return importlib.import_module("slq._backends.jax").JaxBackend(xp)  # type: ignore[no-any-return]
    return ArrayAPIBackend(xp)


def host_backend() -> ArrayAPIBackend:
    """Return the backend of host memory (numpy), where an offloaded basis lives."""
    return ArrayAPIBackend(array_namespace(np.empty(0)))

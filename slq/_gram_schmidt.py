"""Classical Gram–Schmidt, twice, of a batch of vectors against a stored basis."""

from __future__ import annotations

from typing import Any

from slq._backend import array_namespace

__all__ = ["project_out"]


def project_out(w: Any, basis: Any, rows: int) -> Any:
    """Remove from each row of `w` (k, n) its components along ``basis[:, :rows, :]``.

    Classical Gram–Schmidt applied twice: "twice is enough" (Giraud, Langou &
    Rozložník 2005) to reach orthogonality to working precision. `basis` is
    (k, m, n), or TensorFlow's list of row blocks (see `slq._backend.new_basis`).

    Examples
    --------
    >>> import numpy as np
    >>> from slq._gram_schmidt import project_out
    >>> basis = np.eye(3)[None, :2, :]  # e_1, e_2 for one probe
    >>> project_out(np.array([[1.0, 2.0, 3.0]]), basis, 2)
    array([[0., 0., 3.]])
    """
    if isinstance(basis, list):  # TensorFlow's row blocks
        from slq import _tensorflow

        return _tensorflow.project_rows(w, basis, rows)
    xp = array_namespace(w, basis)
    stored = basis[:, :rows, :]
    stored_t = xp.matrix_transpose(stored)
    # Row-vector products, (1, n) @ (n, j) and (1, j) @ (j, n) per probe: measured up to
    # 10x faster than the column-vector form in torch on the CPU, and no slower in numpy.
    for _ in range(2):
        coefficients = w[:, None, :] @ stored_t
        w = w - (coefficients @ stored)[:, 0, :]
    return w

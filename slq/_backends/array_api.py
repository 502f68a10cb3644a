"""The generic backend: any array-API namespace through array-api-compat, eager."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat

from slq._backends.namespace import array_namespace, library_name
from slq._backends.traceable import TraceableProduct

__all__ = [
    "ACCUMULATION_ELEMENTS",
    "DGKS_ETA",
    "ArrayAPIBackend",
    "gram_schmidt_pass",
    "gram_schmidt_twice",
    "project_dgks",
    "project_twice",
]

# Largest copy of stored rows (k · rows · n numbers) cast to a wider dtype for the
# inner products of one pass: 32 MB in float64. Larger bases are read in row blocks.
ACCUMULATION_ELEMENTS = 1 << 22

# The Daniel–Gragg–Kaufman–Stewart (1976) test: a Gram–Schmidt pass that leaves less than
# this share of its input's norm lost too much to cancellation and is repeated; 1/√2 is
# DGKS's and ARPACK's choice (dsaitr: 0.717; Reichel & Gragg 1990).
DGKS_ETA = 1.0 / math.sqrt(2.0)

ProjectPass = Callable[[Any, Any, int, Any], tuple[Any, Any]]
ProjectDGKS = Callable[[Any, Any, int, Any, Any], tuple[Any, Any, Any]]


def gram_schmidt_pass(w: Any, basis: Any, rows: int, acc: Any) -> tuple[Any, Any]:
    """One classical Gram–Schmidt pass of each row of `w` (k, n) against ``basis[:, :rows, :]``.

    Returns the projected `w` and the coefficients Q w (k, rows), computed in the
    dtype `acc`: `w`'s own (no copy; what Lanczos uses) or a wider one (what the
    Rayleigh quotient of `eigsh` needs), then through row blocks of at most
    `ACCUMULATION_ELEMENTS` numbers cast to it.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.array_api import gram_schmidt_pass
    >>> basis = np.eye(3)[None, :2, :]  # e_1, e_2 for one probe
    >>> w, c = gram_schmidt_pass(np.array([[1.0, 2.0, 3.0]]), basis, 2, np.float64)
    >>> w, c
    (array([[0., 0., 3.]]), array([[1., 2.]]))
    """
    xp = array_namespace(w, basis)
    k, n = w.shape
    size = rows if acc == w.dtype else max(1, ACCUMULATION_ELEMENTS // max(k * n, 1))
    w_acc = xp.astype(w, acc, copy=False)[:, None, :]
    coefficients, update = [], None
    for start in range(0, rows, size):
        stored = basis[:, start : min(start + size, rows), :]
        # Row-vector products, (1, n) @ (n, j) and (1, j) @ (j, n) per probe: measured up
        # to 10x faster than the column-vector form in torch on the CPU, no slower in numpy.
        c = w_acc @ xp.matrix_transpose(xp.astype(stored, acc, copy=False))
        part = xp.astype(c, w.dtype, copy=False) @ stored
        update = part if update is None else update + part
        coefficients.append(c[:, 0, :])
    if update is None:
        return w, xp.zeros((k, 0), dtype=acc, device=array_api_compat.device(w))
    total = coefficients[0] if len(coefficients) == 1 else xp.concat(coefficients, axis=1)
    return w - update[:, 0, :], total


def gram_schmidt_twice(
    project_pass: ProjectPass, w: Any, basis: Any, rows: int, acc: Any
) -> tuple[Any, Any]:
    """Classical Gram–Schmidt twice with a backend's pass: `w` projected, and Q w summed.

    "Twice is enough" (Giraud, Langou & Rozložník 2005) to reach orthogonality
    to working precision. A plain function, so that it runs inside a compiled step.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.array_api import gram_schmidt_pass, gram_schmidt_twice
    >>> basis = np.eye(3)[None, :1, :]
    >>> gram_schmidt_twice(gram_schmidt_pass, np.array([[2.0, 5.0, 0.0]]), basis, 1, np.float64)
    (array([[0., 5., 0.]]), array([[2.]]))
    """
    w, first = project_pass(w, basis, rows, acc)
    w, second = project_pass(w, basis, rows, acc)
    return w, first + second


def project_twice(w: Any, basis: Any, rows: int, acc: Any) -> tuple[Any, Any]:
    """`gram_schmidt_twice` with the generic pass: the projection a Lanczos step runs."""
    return gram_schmidt_twice(gram_schmidt_pass, w, basis, rows, acc)


def project_dgks(w: Any, basis: Any, rows: int, acc: Any, before: Any) -> tuple[Any, Any, Any]:
    """One Gram–Schmidt pass and the DGKS test; the second pass is left to the caller.

    Returns the projected `w` (k, n), its row norms in `acc` and a (k,) boolean:
    the probes whose norm fell below `DGKS_ETA` times `before` (the norms of `w`
    as given), for which the pass lost orthogonality to cancellation and must be
    repeated (Daniel, Gragg, Kaufman & Stewart 1976). An eager library decides
    that on the host, from norms it copies there anyway; a compiled one repeats
    the pass inside its kernel (``repeats_in_kernel``) and returns the norms
    after it, and the same boolean.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.array_api import project_dgks
    >>> basis = np.eye(3)[None, :1, :]
    >>> w, after, again = project_dgks(np.array([[3.0, 4.0, 0.0]]), basis, 1, np.float64, 5.0)
    >>> w, after, again
    (array([[0., 4., 0.]]), array([4.]), array([False]))
    """
    xp = array_namespace(w, basis)
    w, _ = gram_schmidt_pass(w, basis, rows, w.dtype)
    after = xp.sqrt(xp.vecdot(xp.astype(w, acc, copy=False), xp.astype(w, acc, copy=False)))
    return w, after, after < DGKS_ETA * before


class ArrayAPIBackend:
    """What the algorithms need from an array library, written once against the array API.

    A backend owns the stored Lanczos basis (its type, how a row is written and
    read), the one classical Gram–Schmidt pass against it, and how a step's kernel
    is run (eagerly here; compiled where the library gains from it). Subclasses
    override only what their library does better.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends import backend_for
    >>> backend = backend_for(np)
    >>> basis = backend.new_basis((1, 2, 3), np.float64, "cpu")
    >>> basis = backend.store_row(basis, 0, np.array([[1.0, 0.0, 0.0]]))
    >>> backend.orthogonalize(np.array([[2.0, 5.0, 0.0]]), basis, 1)
    array([[0., 5., 0.]])
    """

    name = "array_api"

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    # The projection kernels: plain functions, so that they can run inside a compiled
    # step. One pass, and the pass twice (a library may run both in one call).
    project_pass: ProjectPass = staticmethod(gram_schmidt_pass)
    project_twice: ProjectPass = staticmethod(project_twice)
    # One pass and the DGKS test (`project_dgks`): what a Lanczos step runs. Whether
    # the kernel also runs the second pass it finds needed, or leaves it to the caller.
    project_dgks: ProjectDGKS = staticmethod(project_dgks)
    repeats_in_kernel = False

    def new_basis(self, shape: tuple[int, int, int], dtype: Any, device: Any) -> Any:
        """Return an empty basis of `shape` (k, m, n), to be filled by `store_row`."""
        return self.xp.zeros(shape, dtype=dtype, device=device)

    def store_row(self, basis: Any, j: int, rows: Any) -> Any:
        """Return `basis` with ``basis[:, j, :] = rows`` (k, n), in place where possible."""
        if array_api_compat.is_writeable_array(basis):
            basis[:, j, :] = rows
            return basis
        return basis.at[:, j, :].set(rows)

    def stored_rows(self, basis: Any, rows: int) -> Any:
        """Return the first `rows` stored rows of `basis` as one (k, rows, n) array."""
        return basis[:, :rows, :]

    def rows_to_project(self, basis: Any, rows: int) -> int:
        """Return how many stored rows a projection against the first `rows` reads.

        More than `rows` where the library compiles per shape: the rows not yet
        stored are zero and add nothing.
        """
        return rows

    def projection_operand(self, basis: Any, rows: int) -> tuple[Any, int | None]:
        """Return what a step's kernel projects against for the first `rows` stored rows.

        Here the basis itself and `rows_to_project`; a library whose kernel is
        traced per value of its static arguments passes the rows themselves.
        """
        return basis, self.rows_to_project(basis, rows)

    def orthogonalize(self, w: Any, basis: Any, rows: int) -> Any:
        """Return `w` (k, n) projected against the first `rows` stored vectors (CGS twice)."""
        kernel = self.compiled(type(self).project_twice, static_argnums=(2, 3))
        projected, _ = kernel(w, basis, self.rows_to_project(basis, rows), w.dtype)
        return projected

    def project_probes(self, w: Any, basis: Any, rows: int, probes: Sequence[int]) -> Any:
        """Return `w` (k, n) with the rows `probes` projected once more (one pass).

        The second pass of `project_dgks`, where it is left to the caller. Each
        probe is projected against its own slice of the basis: a view, where
        gathering the probes would copy their whole basis.
        """
        xp, k = self.xp, w.shape[0]
        if len(probes) == k:
            return self.project_pass(w, basis, rows, w.dtype)[0]
        parts = [w[i : i + 1, :] for i in range(k)]
        for i in probes:
            parts[i] = self.project_pass(parts[i], basis[i : i + 1, ...], rows, w.dtype)[0]
        return xp.concat(parts, axis=0)

    def compiled(self, function: Callable[..., Any], static_argnums: tuple[int, ...]) -> Any:
        """Return `function` as this library runs a step's kernel best: here, as it is."""
        return function

    def compiled_step(self, function: Callable[..., Any], static_argnums: tuple[int, ...]) -> Any:
        """Return a Lanczos step's whole kernel as this library runs it best: `compiled`.

        Apart from `compiled` because a library may compile a whole step only
        where its arguments keep their shapes and static values through a run.
        """
        return self.compiled(function, static_argnums)

    # Whole runs compiled into one program (JAX): here never, every step runs eagerly.

    def lanczos_program(self, op: Any, reorthogonalize: Any, offload_basis: bool) -> Any:
        """Return a batch's whole Lanczos run as one compiled program, or None: here, None."""
        return None

    def start_rows(self, v0: Any, dtype: Any, acc: Any, safe_exponent: int) -> Any:
        """Return v0 as unit rows and their norms in one compiled call, or None: here, None."""
        return None

    def is_traced(self, x: Any) -> bool:
        """Return whether `x` is a value being traced into a program: never here."""
        return False

    def traceable_array(self, a: Any) -> TraceableProduct | None:
        """Return the product with the 2-D array `a` for compiled runs, or None: here, None."""
        return None

    def traceable_callable(self, f: Callable[[Any], Any]) -> TraceableProduct:
        """Return the callable `f` on vectors as a traceable product; only where runs compile."""
        msg = (
            "traceable=True needs vectors of a library that compiles whole runs (JAX: pass "
            f"like= a JAX array), got {library_name(self.xp)} vectors"
        )
        raise ValueError(msg)

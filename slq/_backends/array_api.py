"""The generic backend: any array-API namespace through array-api-compat, eager."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from slq._backends.namespace import (
    array_namespace,
    fresh_zeros,
    library_name,
    row_lengths,
    to_host,
)
from slq._backends.traceable import TraceableProduct

__all__ = [
    "ACCUMULATION_ELEMENTS",
    "DGKS_ETA",
    "ROWS_PRODUCT_LIBRARIES",
    "ArrayAPIBackend",
    "gram_schmidt_pass",
    "gram_schmidt_twice",
    "project_dgks",
    "project_twice",
    "subtract_significant",
]

# Largest copy of stored rows (k · rows · n numbers) cast to a wider dtype for the
# inner products of one pass: 32 MB in float64. Larger bases are read in row blocks.
ACCUMULATION_ELEMENTS = 1 << 22

# The Daniel–Gragg–Kaufman–Stewart (1976) test: a Gram–Schmidt pass that leaves less than
# this share of its input's norm lost too much to cancellation and is repeated; 1/√2 is
# DGKS's and ARPACK's choice (dsaitr: 0.717; Reichel & Gragg 1990).
DGKS_ETA = 1.0 / math.sqrt(2.0)

# Libraries whose matrix product with (n, k) columns is faster computed as rows,
# (Vᵀ aᵀ)ᵀ: numpy's OpenBLAS dgemm took 0.6–0.9× the time of a @ V at k = 2–64,
# n = 1000 and 4000, C- or F-ordered `a`, and the same at k = 1; torch's kernels
# gained nothing that way (0.5–1.6×). See benchmarks/README.md (issue 18, fourth session).
ROWS_PRODUCT_LIBRARIES = frozenset({"numpy"})

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
    after it, and the same boolean. The pass subtracts only the stored rows
    some coefficient of which is above rounding (`subtract_significant`).

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
    stored = basis[:, :rows, :]
    coefficients = (w[:, None, :] @ xp.matrix_transpose(stored))[:, 0, :]
    floor = xp.finfo(w.dtype).eps * xp.astype(xp.asarray(before), w.dtype)
    w = subtract_significant(w, coefficients, stored, xp.reshape(floor, (-1, 1)))
    cast = xp.astype(w, acc, copy=False)  # one copy where w is narrower, not two
    after = row_lengths(cast, xp)
    return w, after, after < DGKS_ETA * before


def subtract_significant(w: Any, coefficients: Any, stored: Any, floor: Any) -> Any:
    """Return w − Σ_i c_i q_i over the stored rows where some |c_i| exceeds `floor`.

    A pass's own rounding leaves components of about ε‖w‖ along the basis (its
    input's norm), so coefficients below ``floor = ε‖w‖`` (k, 1) are rounding:
    subtracting them changes nothing a pass guarantees, and the result is
    orthogonal to every stored row to within ~ε of its length either way. After
    the three-term recurrence against an orthonormal basis nearly all of them
    are (0–20% of the rows above it in m = 90 runs on sparse, stencil and spiked
    spectra; most of a tightly clustered one's): so this reads the basis once for
    the coefficients and again only for each probe's rows that need it, where
    the full pass reads all of it twice. Where more than a third of the
    coefficients are needed, the full product is cheaper than gathering rows,
    and it runs.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.array_api import subtract_significant
    >>> stored = np.eye(4)[None, :3, :]  # e_1, e_2, e_3
    >>> w = np.array([[1.0, 1e-20, 1e-20, 3.0]])
    >>> c = np.array([[1.0, 1e-20, 1e-20]])  # e_2's and e_3's are rounding: kept in w
    >>> subtract_significant(w, c, stored, np.array([[1e-15]]))
    array([[0.e+00, 1.e-20, 1.e-20, 3.e+00]])
    """
    xp = array_namespace(w, stored)
    needed = to_host(xp.abs(coefficients) > floor)  # (k, j) booleans: one small copy
    if not needed.any():
        return w
    if 3 * int(needed.sum()) > needed.size:
        return w - (coefficients[:, None, :] @ stored)[:, 0, :]
    # Each probe its own rows: probes of a batch lose orthogonality along different ones.
    projected = []
    for probe in range(needed.shape[0]):
        # Runs of consecutive rows are views of the basis, and the later runs are
        # subtracted in place from this new row: the pass holds no more than the full
        # one, a product and its result (what `memory_estimate` counts).
        runs = contiguous_runs(needed[probe])
        if not runs:
            projected.append(w[probe, :])
            continue
        (first, *others) = runs
        row = (
            w[probe, :] - coefficients[probe, first[0] : first[1]] @ stored[probe, slice(*first), :]
        )
        for start, stop in others:
            row -= coefficients[probe, start:stop] @ stored[probe, start:stop, :]
        projected.append(row)
    # One probe: a view, where stacking would hold a copy of w beside the pass's own.
    return xp.expand_dims(projected[0], axis=0) if len(projected) == 1 else xp.stack(projected)


def contiguous_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return the (start, stop) of each run of True in a 1-D boolean array.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._backends.array_api import contiguous_runs
    >>> contiguous_runs(np.array([True, True, False, True, False, False, True]))
    [(0, 2), (3, 4), (6, 7)]
    """
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


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
        return fresh_zeros(shape, dtype, device, self.xp)

    def store_row(self, basis: Any, j: int, rows: Any) -> Any:
        """Return `basis` with ``basis[:, j, :] = rows`` (k, n), in place where possible."""
        if array_api_compat.is_writeable_array(basis):
            basis[:, j, :] = rows
            return basis
        return basis.at[:, j, :].set(rows)

    def probe_rows(self, basis: Any, start: int, stop: int) -> Any | None:
        """Return the basis of probes `start`:`stop`, sharing `basis`'s memory, or None.

        A view that `store_row` writes through, so a part of a batch fills its
        batch's basis; None where the library cannot write through a view.
        """
        if not array_api_compat.is_writeable_array(basis):
            return None
        return basis[start:stop, ...]

    def private_rows(self, basis: Any, rows: int) -> Any:
        """Return a new basis of `basis`'s shape holding its first `rows` rows, zeros after.

        For a part of a batch that runs on to the end alone: a part's own basis
        is allocated as it starts and freed as it ends, so the allocator reuses one
        part's memory for the next (a view of the batch's basis would fault in
        every page of the whole batch's: measured 10-40% of a split run's time).
        """
        fresh = self.xp.zeros_like(basis)
        fresh[:, :rows, :] = basis[:, :rows, :]
        return fresh

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
        """Return `w` (k, n) projected against the first `rows` stored vectors.

        One classical Gram–Schmidt pass (`project_dgks`), and a second for the
        rows of `w` whose norm it cut below `DGKS_ETA` of their own: iterated
        Gram–Schmidt as PROPACK's partial reorthogonalisation runs it (Larsen
        1998), half the basis reads of projecting twice every time.
        """
        xp = self.xp
        before = row_lengths(w, xp)
        kernel = self.compiled(type(self).project_dgks, static_argnums=(2, 3))
        stored, count = self.projection_operand(basis, rows)
        projected, _, again = kernel(w, stored, count, w.dtype, before)
        if self.repeats_in_kernel:
            return projected
        probes = np.flatnonzero(to_host(again))
        if probes.size:
            count = self.rows_to_project(basis, rows)
            projected = self.project_probes(projected, basis, count, probes.tolist())
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

    def lanczos_program(
        self, op: Any, reorthogonalize: Any, offload_basis: bool, traced: bool = False
    ) -> Any:
        """Return a batch's whole Lanczos run as one compiled program, or None: here, None.

        `traced`: the run is inside a user's compiled function, where only one program can run.
        """
        return None

    def start_rows(self, v0: Any, dtype: Any, acc: Any, safe_exponent: int) -> Any:
        """Return v0 as unit rows and their norms in one compiled call, or None: here, None."""
        return None

    def is_traced(self, x: Any) -> bool:
        """Return whether `x` is a value being traced into a program: never here."""
        return False

    def array_product(self, a: Any) -> Callable[[Any], Any]:
        """Return the product of the 2-D array `a` with an (n,) vector or (n, k) columns.

        The same numbers as ``a @ v`` to rounding; where the library's kernel is
        faster on the transposed problem (`ROWS_PRODUCT_LIBRARIES`) the columns'
        product is computed as (Vᵀ aᵀ)ᵀ, which returns a view of the rows
        that a Lanczos step works with, so nothing is copied either.
        """
        xp = self.xp
        # xp.matmul, not `a @`: TensorFlow's `@` refuses a 1-D operand.
        product = functools.partial(xp.matmul, a)
        if library_name(xp) not in ROWS_PRODUCT_LIBRARIES:
            return product
        a_t = xp.matrix_transpose(a)

        def rows_product(v: Any) -> Any:
            if v.ndim == 1:
                return product(v)
            return xp.matrix_transpose(xp.matmul(xp.matrix_transpose(v), a_t))

        return rows_product

    def traceable_array(self, a: Any) -> TraceableProduct | None:
        """Return the product with the 2-D array `a` for compiled runs, or None: here, None."""
        return None

    def traceable_callable(self, f: Callable[[Any], Any]) -> TraceableProduct:
        """Return the callable `f` on vectors as a traceable product; only where runs compile."""
        msg = (
            "traceable=True needs vectors of a library that compiles whole runs (JAX or "
            "TensorFlow: pass like= a JAX array or a tensor), got "
            f"{library_name(self.xp)} vectors"
        )
        raise ValueError(msg)

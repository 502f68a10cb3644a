"""The JAX backend: compiled Lanczos kernels.

Eager JAX copies an immutable array on every indexed update and dispatches each
operation on its own; these kernels keep the basis in one donated buffer and
reorthogonalise in one compiled call per step. An operator with a traceable
product runs a batch's whole recurrence as one program instead
(`slq._backends.jax_lanczos`). Imported only when the vectors already are JAX
arrays, so JAX is already loaded.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from slq._backends.array_api import DGKS_ETA, ArrayAPIBackend, gram_schmidt_twice
from slq._backends.compiled import compiled_product
from slq._backends.jax_lanczos import CompiledRun, Settings, compiled_run, start_rows
from slq._backends.traceable import TraceableProduct

__all__ = [
    "ColumnProduct",
    "JaxBackend",
    "compiled",
    "gauss_rules",
    "matrix_product",
    "project_dgks",
    "project_pass",
    "project_twice",
    "store_row",
]

# Row-count granularity of the basis slices: JAX compiles once per shape, so per
# block of rows rather than once per step. Rows not yet filled are zero and add nothing.
SHAPE_BLOCK = 16

WHOLE_BASIS_BYTES = 32 << 20
"""A basis of at most this many bytes is projected against whole at every step: one
compiled kernel a run instead of one per block (0.25 s each on the CPU, six for m = 90,
k = 1, n = 1626), for at most m/2 zero rows read a step on average (~0.1 s a run here)."""


@functools.partial(jax.jit, donate_argnums=(0,))
def store_row(basis: Any, j: Any, rows: Any) -> Any:
    """Return `basis` (k, m, n) with ``basis[:, j, :] = rows``, written into its own buffer.

    An eager ``.at[].set`` copied the whole basis: 0.46 s a step at k=10, m=91,
    n=1.1e5, against 0.8 ms for this.
    """
    return basis.at[:, j, :].set(rows)


def project_pass(w: Any, basis: Any, rows: int, acc: Any) -> tuple[Any, Any]:
    """One classical Gram–Schmidt pass against the first `rows` stored vectors, probe by probe.

    Returns the projected `w` (k, n) and the coefficients (k, rows) in `acc`, as
    `slq._backends.array_api.gram_schmidt_pass` does. A loop over probes of
    (rows, n) matrix-vector products: XLA's CPU batched products ran 2.2x slower
    for k=10 (and 8x for k=1 in the transposed form) at n=1.1e5.
    """

    def one(probe: tuple[Any, Any]) -> tuple[Any, Any]:
        return _probe_pass(probe[0], probe[1], rows, acc)

    return jax.lax.map(one, (w, basis))  # type: ignore[no-any-return]


def project_twice(w: Any, basis: Any, rows: int, acc: Any) -> tuple[Any, Any]:
    """`gram_schmidt_twice` of the same pass, both passes of a probe in one iteration.

    Two loops over the probes, one per pass, ran 9% slower (MLP Hessian, n = 15010,
    k = 10): a probe's stored rows are read twice while they are in cache.
    """

    def one(probe: tuple[Any, Any]) -> tuple[Any, Any]:
        return gram_schmidt_twice(_probe_pass, probe[0], probe[1], rows, acc)

    return jax.lax.map(one, (w, basis))  # type: ignore[no-any-return]


def project_dgks(w: Any, basis: Any, rows: int, acc: Any, before: Any) -> tuple[Any, Any, Any]:
    """`slq._backends.array_api.project_dgks` with the second pass inside: one `lax.cond`.

    Returns the projected `w` (k, n), its final row norms in `acc`, and which
    probes were projected twice: those whose first pass left less than
    `DGKS_ETA` of `before` (Daniel, Gragg, Kaufman & Stewart 1976). The pass is
    repeated for every probe when one needs it, and kept only for those.
    Traceable, so that a whole compiled run can call it. All probes at once
    (batched products, as matfree's vmapped ``tridiag_sym``): a loop over the
    probes copied each probe's stored rows out of the basis (to slice them and
    to hand them to its ``lax.cond``) every step, which made a 90-step compiled
    run's projections cost 2.2x (k = 16, n = 4000) and 2.0x (k = 10, n = 1.1e5)
    the CPU time of these.
    """
    stored = basis if rows == basis.shape[1] else basis[:, :rows]
    w = _batched_pass(w, stored, acc)
    after = _norms(w, acc)
    again = after < DGKS_ETA * before

    def repeat(x: Any) -> tuple[Any, Any]:
        y = _batched_pass(x, stored, acc)
        return jnp.where(again[:, None], y, x), jnp.where(again, _norms(y, acc), after)

    w, after = jax.lax.cond(jnp.any(again), repeat, lambda x: (x, after), w)
    return w, after, again


def _batched_pass(w: Any, stored: Any, acc: Any) -> Any:
    """One classical Gram–Schmidt pass of every probe's w (k, n) against its rows (k, r, n)."""
    c = jnp.einsum("krn,kn->kr", stored.astype(acc), w.astype(acc))
    return w - jnp.einsum("kr,krn->kn", c.astype(w.dtype), stored)


def _norms(x: Any, acc: Any) -> Any:
    x = x.astype(acc)
    return jnp.sqrt(jnp.sum(x * x, axis=-1))


def _probe_pass(x: Any, stored: Any, rows: int, acc: Any) -> tuple[Any, Any]:
    stored = stored[:rows]
    c = stored.astype(acc) @ x.astype(acc)
    return x - c.astype(x.dtype) @ stored, c


_start_rows = jax.jit(start_rows, static_argnums=(1, 2, 3))


def gauss_rules(alpha: Any, beta: Any, lengths: Any) -> tuple[Any, Any]:
    """Nodes and weights of each probe's Gauss rule in the graph, as `slq.quadrature.ritz_rules`.

    Golub & Welsch (1969): the eigenvalues of the tridiagonal T and the squared
    first components of its eigenvectors. Shapes cannot depend on `lengths`:
    each T is m × m, its entries past a breakdown replaced by a diagonal twice
    a Gershgorin bound of the rest, which is decoupled (β = 0 there), so its
    eigenvalues sort last and its eigenvectors have no first component; those
    nodes then repeat the last Ritz value, with weight 0.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slq._backends.jax import gauss_rules
    >>> alpha, beta = jnp.asarray([[2.0, 2.0], [3.0, 0.0]]), jnp.asarray([[1.0], [0.0]])
    >>> nodes, weights = gauss_rules(alpha, beta, jnp.asarray([2, 1]))
    >>> nodes.tolist(), weights.tolist()
    ([[1.0, 3.0], [3.0, 3.0]], [[0.5, 0.5], [1.0, 0.0]])
    """
    m = alpha.shape[1]
    used = jnp.arange(m)[None, :] < lengths[:, None]
    bound = jnp.max(jnp.abs(alpha)) + 2 * jnp.max(jnp.abs(beta), initial=0.0)
    filler = jnp.where(bound > 0, 2 * bound, 1.0)
    diagonal = jnp.where(used, alpha, filler)
    t = jax.vmap(jnp.diag)(diagonal)
    t = t + jax.vmap(lambda b: jnp.diag(b, 1) + jnp.diag(b, -1))(beta)
    theta, vectors = jnp.linalg.eigh(t)
    last = jnp.take_along_axis(theta, jnp.maximum(lengths - 1, 0)[:, None], axis=1)
    nodes = jnp.where(used, theta, last)
    tau = jnp.where(used, vectors[:, 0, :] ** 2, 0.0)
    return nodes, tau / jnp.sum(tau, axis=1, keepdims=True)


@functools.cache
def compiled(function: Callable[..., Any], static_argnums: tuple[int, ...]) -> Any:
    """Return ``jax.jit(function)``, made once per function."""
    return jax.jit(function, static_argnums=static_argnums)


def matrix_product(a: Any, vectors: Any) -> tuple[Any, None]:
    """Return ``(a @ vectors, None)``: a JAX matrix's product, as a traceable product."""
    return a @ vectors, None


@dataclasses.dataclass(frozen=True)
class ColumnProduct:
    """A traceable product from a function on vectors, vmapped over the columns.

    Equal for the same function, so operators made again from it share their
    compiled runs.
    """

    function: Callable[[Any], Any]

    def __call__(self, operands: Any, vectors: Any) -> tuple[Any, None]:
        """Return ``(f(v) for each column v of vectors)`` as columns, and no flags."""
        return jax.vmap(self.function, in_axes=1, out_axes=1)(vectors), None


class JaxBackend(ArrayAPIBackend):
    """JAX arrays: a donated basis buffer, projections and steps compiled with `jax.jit`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slq._backends import backend_for
    >>> backend = backend_for(jnp)
    >>> basis = backend.new_basis((1, 20, 3), jnp.float32, None)
    >>> basis = backend.store_row(basis, 0, jnp.asarray([[1.0, 0.0, 0.0]], dtype=jnp.float32))
    >>> backend.rows_to_project(basis, 1)  # a small basis: whole, one compiled kernel
    20
    >>> backend.orthogonalize(jnp.ones((1, 3), dtype=jnp.float32), basis, 1).tolist()
    [[0.0, 1.0, 1.0]]
    """

    name = "jax"
    project_pass = staticmethod(project_pass)
    project_twice = staticmethod(project_twice)
    project_dgks = staticmethod(project_dgks)
    repeats_in_kernel = True

    def store_row(self, basis: Any, j: int, rows: Any) -> Any:
        """Return `basis` with row j written into its own (donated) buffer."""
        return store_row(basis, j, rows)

    def rows_to_project(self, basis: Any, rows: int) -> int:
        """Round up to a block of rows, one compilation per block, or the whole small basis."""
        if basis.size * basis.dtype.itemsize <= WHOLE_BASIS_BYTES:
            return int(basis.shape[1])
        return min(basis.shape[1], -(-rows // SHAPE_BLOCK) * SHAPE_BLOCK)

    def compiled(self, function: Callable[..., Any], static_argnums: tuple[int, ...]) -> Any:
        """Return ``jax.jit(function)``: one compiled call instead of a dozen eager dispatches."""
        return compiled(function, static_argnums)

    def lanczos_program(
        self, op: Any, reorthogonalize: Any, offload_basis: bool, traced: bool = False
    ) -> Callable[..., CompiledRun] | None:
        """Return the batch's whole run as one XLA program, or None to run it step by step.

        Compiled when the operator has a traceable product (``op.traceable``: a
        JAX array, `jax_hessian`, a callable made with ``traceable=True``), the
        basis stays on the device and the policy decides nothing on the host:
        "full" and "none". "partial" runs eagerly: Simon's ω recurrence, which
        picks the steps to project, runs in numpy between steps. A product
        slow inside a loop (``fast_in_loop`` false) runs step by step unless
        the run is `traced` (inside a user's ``jax.jit``).
        """
        traceable = compiled_product(op, reorthogonalize, offload_basis, traced)
        if traceable is None:
            return None
        every_step = reorthogonalize.projects_every_step

        def run(rows: Any, **engine: Any) -> CompiledRun:
            settings = Settings(
                full=every_step, project_dgks=project_dgks, block=SHAPE_BLOCK, **engine
            )
            program = compiled_run(traceable.function, traceable.prepare, settings)
            return program(traceable.operands, rows)

        return run

    def is_traced(self, x: Any) -> bool:
        """Return whether `x` is traced (inside `jax.jit`, `jax.vmap`, ...)."""
        return isinstance(x, jax.core.Tracer)

    def start_rows(self, v0: Any, dtype: Any, acc: Any, safe_exponent: int) -> tuple[Any, Any]:
        """Return v0 as unit rows and their norms from one compiled call (see `start_rows`)."""
        return _start_rows(v0, dtype, acc, safe_exponent)

    def gauss_rules(self, alpha: Any, beta: Any, lengths: Any) -> tuple[Any, Any]:
        """Return the probes' Gauss rules in the graph (see `gauss_rules`)."""
        return gauss_rules(alpha, beta, lengths)

    def traceable_array(self, a: Any) -> TraceableProduct:
        """Return ``a @ V`` as a traceable product: `a` is an argument of the program."""
        return TraceableProduct(matrix_product, a)

    def traceable_callable(self, f: Callable[[Any], Any]) -> TraceableProduct:
        """Return `f` (on vectors of shape (n,)) vmapped over columns, as a traceable product."""
        return TraceableProduct(ColumnProduct(f), ())

"""A batch's whole Lanczos run as one XLA program: no host round trip per step.

The eager engine (`slq._lanczos.run_batch`) reads three numbers per probe to
the host after every step, to decide breakdowns and keep the coefficients in
float64 numpy. Here the same recurrence runs as one `jax.lax.while_loop`: the
products (a `TraceableProduct` of the operator), Gram–Schmidt (one pass, a second
where DGKS asks: `slq._backends.jax.project_dgks`) against the
stored basis, the breakdown test and the coefficients all stay on the device,
and the host reads them once at the end (matfree's ``tridiag_sym`` is one
program the same way). The arithmetic is the eager engine's, step for step:
the same power-of-two scale, the same stored rows projected out (here against
the whole basis, whose rows not yet stored are zero), the same breakdown
tolerance, so both agree to rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from slq._backends.compiled import HostRun, Settings

__all__ = ["CompiledRun", "HostRun", "Settings", "compiled_run", "power_of_two", "start_rows"]


class CompiledRun(NamedTuple):
    """What one compiled run returns, on the device (``alpha``/``beta`` not yet scaled)."""

    alpha: Any  # (k, m) accumulation dtype: α_j, 0 once a probe has stopped
    beta: Any  # (k, m): β_j, 0 from a probe's breakdown on
    lengths: Any  # (k,) int32: steps each probe ran
    steps: Any  # () int32: steps the batch ran (all probes stopped, or m)
    raw: Any  # (m, 2, k): α_j and ‖r_j‖ as computed, for the finite check
    flags: Any  # (m, B) bool: the operator's finite flags per step, or None
    scale: Any  # () working dtype: the power of two the run divided A by
    basis: Any  # (k, m, n) working dtype, or None
    repeats: Any  # () int32: DGKS second passes, over probes and steps

    def vectors(self, m: int) -> Any:
        """Return the first m basis vectors as (k, n, m), as `slq._basis.DeviceBasis` does."""
        return jnp.transpose(self.basis[:, :m, :], (0, 2, 1))

    def traced_coefficients(self) -> tuple[Any, Any, Any, Any]:
        """Return α (k, m), β (k, m-1), lengths and β_m, scaled back: `LanczosResult`'s fields.

        Shapes cannot depend on traced values: m columns, zeros past a breakdown.
        """
        scale = self.scale.astype(self.alpha.dtype)
        alpha, beta = self.alpha * scale, self.beta * scale
        last = jnp.take(beta, self.steps - 1, axis=1)
        residual = jnp.where(self.lengths == self.steps, last, 0.0)
        return alpha, beta[:, :-1], self.lengths, residual

    def is_traced(self) -> bool:
        """Whether the run was traced into a user's program (inside `jax.jit`)."""
        return isinstance(self.alpha, jax.core.Tracer)

    def host(self) -> HostRun:
        """Return the small arrays on the host, in one transfer (the basis stays)."""
        small = (self.alpha, self.beta, self.lengths, self.steps, self.raw, self.scale)
        host, flags, repeats = jax.device_get((small, self.flags, self.repeats))
        alpha, beta, lengths, steps, raw, scale = (np.asarray(x) for x in host)
        flags = None if flags is None else np.asarray(flags)
        return HostRun(alpha, beta, lengths, steps, raw, scale, flags, int(repeats))


class _Carry(NamedTuple):
    j: Any  # () int32: the step to run
    q: Any  # (k, n) current Lanczos vectors
    q_prev: Any  # (k, n) previous ones
    beta_prev: Any  # (k, 1) β_{j-1} in the working dtype
    active: Any  # (k,) bool: probes that have not broken down
    scale: Any  # () working dtype
    basis: Any  # (k, m, n) or None: q_0 … q_j stored
    raw: Any  # (m, 3, k) α_j, ‖r_j‖, ‖A q_j‖ in the accumulation dtype
    live: Any  # (m, k) bool: active after step j
    flags: Any  # (m, B) bool or None
    repeats: Any  # () int32: DGKS second passes so far


def power_of_two(w: Any, safe_exponent: int) -> Any:
    """`slq._lanczos.power_of_two_scale` in the graph: 2^e near max |w| outside 2^±safe, else 1.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slq._backends.jax_lanczos import power_of_two
    >>> float(power_of_two(jnp.asarray([[3.0, -4.0]]), 60))
    1.0
    >>> float(power_of_two(jnp.asarray([[2.0**-100]]), 60)) == 2.0**-99
    True
    """
    largest = jnp.max(jnp.abs(w))
    exponent = jnp.frexp(largest)[1]
    ordinary = ~(jnp.isfinite(largest) & (largest > 0)) | (jnp.abs(exponent) <= safe_exponent)
    return jnp.where(ordinary, jnp.ones((), w.dtype), jnp.ldexp(jnp.ones((), w.dtype), exponent))


def start_rows(v0: Any, dtype: Any, acc: Any, safe_exponent: int) -> tuple[Any, Any]:
    """Start vectors v0 (n,) or (n, k) as unit rows (k, n) of `dtype`, and their norms.

    `slq._lanczos.prepare_start`'s arithmetic in the graph: scaled by a power of
    two (`power_of_two`), then divided by the norms (accumulated in `acc`),
    which are returned for the host's check. A zero or non-finite start vector
    gives NaN rows; traced ones cannot be checked.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slq._backends.jax_lanczos import start_rows
    >>> rows, norms = start_rows(jnp.asarray([0.0, 2.0**-100]), jnp.float32, jnp.float32, 60)
    >>> rows.tolist(), norms.tolist()
    ([[0.0, 1.0]], [0.5])
    """
    rows = (v0[None, :] if v0.ndim == 1 else v0.T).astype(dtype)
    rows = rows * (1 / power_of_two(rows, safe_exponent))
    wide = rows.astype(acc)
    norms = jnp.sqrt(jnp.sum(wide * wide, axis=-1))
    return rows / norms.astype(rows.dtype)[:, None], norms


def compiled_run(
    product: Any, prepare: Any, settings: Settings
) -> Callable[[Any, Any], CompiledRun]:
    """Return the run as a function ``(operands, rows) -> CompiledRun``, compiled.

    `product` and `prepare` are a `TraceableProduct`'s. One program per
    (product, prepare, settings), and JAX's own cache per shapes and dtypes of
    the operands and start rows: a second run does not recompile. A run inside
    a user's `jax.jit` is traced into the user's program.
    """
    return _program(product, prepare, settings)


@functools.lru_cache(maxsize=32)
def _program(product: Any, prepare: Any, settings: Settings) -> Any:
    return jax.jit(functools.partial(_run, product, prepare, settings))


def _run(product: Any, prepare: Any, settings: Settings, operands: Any, rows: Any) -> CompiledRun:
    m = settings.num_steps
    operands = operands if prepare is None else prepare(operands)
    init = _initial(product, settings, operands, rows)

    def more(c: _Carry) -> Any:
        return (c.j < m) & jnp.any(c.active)

    def step(c: _Carry) -> _Carry:
        return _step(product, operands, settings, c)

    final = jax.lax.while_loop(more, step, init)
    return _finish(final, m)


def _initial(product: Any, settings: Settings, operands: Any, rows: Any) -> _Carry:
    k, n = rows.shape
    m, dtype = settings.num_steps, rows.dtype
    acc = _accumulation(dtype)
    stores = settings.full or settings.return_basis
    # The flags' shape is the operator's: ask for it without running a product.
    flag_shape = jax.eval_shape(product, operands, rows.T)[1]
    return _Carry(
        j=jnp.zeros((), jnp.int32),
        q=rows,
        q_prev=jnp.zeros_like(rows),
        beta_prev=jnp.zeros((k, 1), dtype),
        active=jnp.ones(k, bool),
        scale=jnp.ones((), dtype),
        basis=jnp.zeros((k, m, n), dtype).at[:, 0, :].set(rows) if stores else None,
        raw=jnp.zeros((m, 3, k), acc),
        live=jnp.zeros((m, k), bool),
        flags=None if flag_shape is None else jnp.ones((m, *flag_shape.shape), bool),
        repeats=jnp.zeros((), jnp.int32),
    )


def _accumulation(dtype: Any) -> Any:
    """float64 when JAX has it (x64 enabled), else the working dtype: as the eager engine."""
    return jnp.promote_types(dtype, jax.dtypes.canonicalize_dtype(jnp.float64))


def _step(product: Any, operands: Any, settings: Settings, c: _Carry) -> _Carry:
    """Step j of `slq._lanczos.run_batch`: store q_j, A q_j, project, test for breakdown.

    Gram–Schmidt (DGKS, `settings.project_dgks`) runs against all m stored rows:
    those not yet stored are zero and add nothing. Projecting against only the
    rows filled so far (one `lax.switch` branch per block of rows) made XLA copy
    the rows it sliced, every step, which cost more than the zero rows it spared
    (k = 16, n = 15010: 2.85 s against 2.77 s of CPU in a 90-step run).
    """
    j, q = c.j, c.q
    w, flags = product(operands, q.T)
    # Else XLA folds the transpose below into the product: a matrix's ``(A Qᵀ)ᵀ``
    # became ``Q Aᵀ``, whose CPU kernel ran 2.2x slower (n = 4000, k = 16, one thread).
    w = jax.lax.optimization_barrier(w)
    w = w.T.astype(q.dtype)
    scale = jnp.where(j == 0, power_of_two(w, settings.safe_exponent), c.scale)
    w = w * (1 / scale)
    acc = c.raw.dtype
    image_norm = _norms(w, acc)
    alpha = jnp.sum(q.astype(acc) * w.astype(acc), axis=-1)
    subtracted = alpha.astype(w.dtype)
    w = w - subtracted[:, None] * q - c.beta_prev * c.q_prev
    if settings.full:  # as `slq._lanczos._residual`: α corrected, then one pass (DGKS)
        alpha = subtracted.astype(acc) + jnp.sum(q.astype(acc) * w.astype(acc), axis=-1)
        m = settings.num_steps
        w, beta, again = settings.project_dgks(w, c.basis, m, acc, _norms(w, acc))
        repeats = c.repeats + jnp.sum(again, dtype=jnp.int32)
    else:
        beta, repeats = _norms(w, acc), c.repeats
    live = c.active & ~(beta <= settings.tolerance * image_norm)
    inverse = jnp.where(live, 1.0 / jnp.where(live, beta, 1.0), 0.0)
    q_next = w * inverse.astype(w.dtype)[:, None]
    # q_{j+1} stored last, after the basis was read: written into the basis at
    # the start of step j+1, it made XLA copy the whole basis 4 times a step.
    basis = c.basis
    if basis is not None:
        basis = basis.at[:, j + 1, :].set(q_next, mode="drop")  # none past m
    return _Carry(
        j=j + 1,
        q=q_next,
        q_prev=q,
        beta_prev=jnp.where(live, beta, 0.0).astype(w.dtype)[:, None],
        active=live,
        scale=scale,
        basis=basis,
        raw=c.raw.at[j].set(jnp.stack([alpha, beta, image_norm])),
        live=c.live.at[j].set(live),
        flags=None if c.flags is None else c.flags.at[j].set(flags),
        repeats=repeats,
    )


def _norms(rows: Any, acc: Any) -> Any:
    wide = rows.astype(acc)
    return jnp.sqrt(jnp.sum(wide * wide, axis=-1))


def _finish(c: _Carry, m: int) -> CompiledRun:
    """Return the coefficients as the eager engine keeps them: zeros once a probe stopped."""
    before = jnp.concatenate([jnp.ones((1, c.live.shape[1]), bool), c.live[:-1]])
    ran = before & (jnp.arange(m) < c.j)[:, None]  # probe active at the start of step j
    alpha = jnp.where(ran, c.raw[:, 0], 0.0).T
    beta = jnp.where(c.live, c.raw[:, 1], 0.0).T
    lengths = jnp.sum(ran, axis=0, dtype=jnp.int32)
    return CompiledRun(
        alpha, beta, lengths, c.j, c.raw[:, :2], c.flags, c.scale, c.basis, c.repeats
    )

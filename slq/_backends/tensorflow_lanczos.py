"""A batch's whole Lanczos run as one TensorFlow graph: no eager call per step.

The eager engine (`slq._lanczos.run_batch`) calls TensorFlow a dozen times a
step (the product's transposes, storing the row, the step's graph, the next
vector's scale), and every call costs TensorFlow's fixed dispatch time (~0.5 ms
for a `tf.function` call). Here the same recurrence runs inside one
`tf.function`, as JAX's `slq._backends.jax_lanczos` runs it in one XLA program:
the products (a `TraceableProduct` of the operator), Gram–Schmidt (one pass, a
second where DGKS asks: `slq._backends.tensorflow.dgks_in_graph`), the
breakdown test and the coefficients stay in the graph, and the host reads them
once at the end. The arithmetic is the eager engine's, step for step: the same
power-of-two scale, projections against the same stored rows (the same pass,
which subtracts only the rows above rounding), the same breakdown tolerance,
so both agree to rounding.

A tensor cannot be written in place, and inside a `tf.while_loop` an updated
tensor is copied whole (a (k, m, n) basis written row by row cost more than the
projections). So the basis is a fixed number of row blocks, loop variables
that start empty: a step appends its row to the block it fills (a copy of
that block only, `store`), and the other blocks pass through untouched. One
`tf.while_loop` runs every step after the first, so the step is traced twice
whatever m is (a loop per block traced it once per block: with the pass's
gathers, the first call took twice as long). A probe that breaks down stops;
the loop stops when every probe has, or when a product is not finite (the host
then raises the eager engine's error).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import tensorflow as tf

from slq._backends.compiled import HostRun, Settings

__all__ = [
    "ColumnProduct",
    "GraphRun",
    "graph_run",
    "matrix_product",
    "power_of_two",
    "rows_per_block",
    "store",
]

# At most this many row blocks: every step reads each block (empty ones cost a
# few ops), so a long run gets longer blocks instead of more of them.
MAX_BLOCKS = 8


class GraphRun(NamedTuple):
    """What one graph run returns, as tensors (``alpha``/``beta`` not yet scaled)."""

    alpha: Any  # (k, m) float64: α_j, 0 once a probe has stopped
    beta: Any  # (k, m): β_j, 0 from a probe's breakdown on
    lengths: Any  # (k,) int32: steps each probe ran
    steps: Any  # () int32: steps the batch ran
    raw: Any  # (m, 3, k): ‖A q_j‖, α_j, β_j as computed, for the finite check
    flags: Any  # (m, B) bool: the operator's finite flags per step, or None
    scale: Any  # () float64: the power of two the run divided A by
    basis: Any  # tuple of (k, b, n) blocks of the working dtype, or None
    repeats: Any  # () int32: DGKS second passes, over probes and steps

    def vectors(self, m: int) -> Any:
        """Return the first m basis vectors as (k, n, m), as `slq._basis.DeviceBasis` does."""
        return tf.transpose(tf.concat(self.basis, axis=1)[:, :m, :], perm=(0, 2, 1))

    def is_traced(self) -> bool:
        """Whether the run was traced into a user's program: never (runs start on the host)."""
        return False

    def host(self) -> HostRun:
        """Return the small arrays as numpy (the basis stays)."""
        small = (self.alpha, self.beta, self.lengths, self.steps, self.raw, self.scale)
        alpha, beta, lengths, steps, raw, scale = (x.numpy() for x in small)
        flags = None if self.flags is None else self.flags.numpy()
        return HostRun(alpha, beta, lengths, steps, raw, scale, flags, int(self.repeats))


class _Carry(NamedTuple):
    j: Any  # () int32: the step to run
    q: Any  # (k, n) current Lanczos vectors
    q_prev: Any  # (k, n) previous ones
    beta_prev: Any  # (k, 1) β_{j-1} in the working dtype
    active: Any  # (k,) bool: probes that have not broken down
    finite: Any  # () bool: every product so far was finite
    scale: Any  # () float64
    blocks: Any  # tuple of (k, b, n) row blocks, b <= rows_per_block(m, block); empty ones last
    raw: Any  # (m, 3, k) float64: ‖A q_j‖, α_j, β_j
    live: Any  # (m, k) bool: active after step j
    flags: Any  # (m, B) bool (B = 0 without the operator's own flags)
    repeats: Any  # () int32


@dataclasses.dataclass(frozen=True)
class _Context:
    product: Callable[[Any, Any], tuple[Any, Any]]
    operands: Any
    settings: Settings
    stores: bool  # the basis is kept (to project against, or to return)


def matrix_product(a: Any, vectors: Any) -> tuple[Any, None]:
    """Return ``(a @ vectors, None)``: a TensorFlow matrix's product, as a traceable product.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from slq._backends.tensorflow_lanczos import matrix_product
    >>> matrix_product(2.0 * tf.eye(2), tf.ones((2, 1)))[0].numpy().ravel()
    array([2., 2.], dtype=float32)
    """
    return tf.matmul(a, vectors), None


@dataclasses.dataclass(frozen=True)
class ColumnProduct:
    """A traceable product from a function on vectors, applied column by column.

    The columns as the eager engine's products take them (`CoreOperator.matmat`
    of a callable), so both run the same arithmetic. Equal for the same
    function, so operators made again from it share their graphs.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from slq._backends.tensorflow_lanczos import ColumnProduct
    >>> ColumnProduct(lambda v: 3.0 * v)((), tf.ones((2, 2)))[0].numpy()
    array([[3., 3.],
           [3., 3.]], dtype=float32)
    """

    function: Callable[[Any], Any]

    def __call__(self, operands: Any, vectors: Any) -> tuple[Any, None]:
        """Return ``f(v)`` for each column v of `vectors`, as columns, and no flags."""
        columns = [self.function(vectors[:, i]) for i in range(int(vectors.shape[1]))]
        return tf.stack(columns, axis=1), None


def power_of_two(w: Any, safe_exponent: int) -> Any:
    """`slq._lanczos.power_of_two_scale` in the graph: 2^e near max |w| outside 2^±safe, else 1.

    float64 whatever `w`'s dtype, exact: the exponent is read from the bits.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from slq._backends.tensorflow_lanczos import power_of_two
    >>> float(power_of_two(tf.constant([[3.0, -4.0]]), 60))
    1.0
    >>> float(power_of_two(tf.constant([[2.0**-100]]), 60)) == 2.0**-99
    True
    >>> float(power_of_two(tf.constant([[2.0**-1010]], tf.float64), 60)) == 2.0**-1009
    True
    """
    largest = tf.cast(tf.reduce_max(tf.abs(w)), tf.float64)
    exponent = _frexp_exponent(largest)
    ordinary = ~(tf.math.is_finite(largest) & (largest > 0)) | (tf.abs(exponent) <= safe_exponent)
    return tf.where(ordinary, tf.constant(1.0, tf.float64), _two_to(exponent))


def _frexp_exponent(x: Any) -> Any:
    """Return e with x = f · 2^e, 0.5 <= f < 1, for a positive finite float64 x (`math.frexp`)."""
    tiny = x < 2.0**-1000  # subnormal, or near: made normal by an exact 2^64 first
    bits = tf.bitcast(tf.where(tiny, x * 2.0**64, x), tf.int64)
    field = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 52), 0x7FF)
    return field - 1022 - tf.where(tiny, tf.constant(64, tf.int64), tf.constant(0, tf.int64))


def _two_to(e: Any) -> Any:
    """2^e in float64, exactly, for int64 e in [-1073, 1024] (inf for 1024)."""
    normal = e > -1000
    biased = tf.where(normal, e, e + 64) + 1023
    power = tf.bitcast(tf.bitwise.left_shift(biased, 52), tf.float64)
    return tf.where(normal, power, power * 2.0**-64)


def graph_run(product: Any, prepare: Any, settings: Settings) -> Callable[[Any, Any], GraphRun]:
    """Return the run as a function ``(operands, rows) -> GraphRun``: one graph call.

    `product` and `prepare` are a `TraceableProduct`'s. One `tf.function` per
    (product, prepare, settings), traced once per shapes and dtypes of the
    operands and start rows: a second run traces nothing.
    """
    program = _program(product, prepare, settings)

    def run(operands: Any, rows: Any) -> GraphRun:
        out = program(operands, rows)
        flags = None if out.flags.shape[1] == 0 else out.flags
        basis = out.basis if (settings.full or settings.return_basis) else None
        return out._replace(flags=flags, basis=basis)

    return run


@functools.lru_cache(maxsize=32)
def _program(product: Any, prepare: Any, settings: Settings) -> Any:
    def run(operands: Any, rows: Any) -> GraphRun:
        return _run(product, prepare, settings, operands, rows)

    return tf.function(run, autograph=False)


def _run(product: Any, prepare: Any, settings: Settings, operands: Any, rows: Any) -> GraphRun:
    operands = operands if prepare is None else prepare(operands)
    stores = settings.full or settings.return_basis
    ctx = _Context(product, operands, settings, stores)
    size = rows_per_block(settings.num_steps, settings.block)
    count = -(-settings.num_steps // size) if stores else 0
    carry = _initial(ctx, rows, count)
    carry = _step(ctx, carry, first=True)  # step 0: fixes the scale and flags' shape
    carry = _loop(ctx, carry)
    return _finish(carry, settings.num_steps)


def rows_per_block(m: int, block: int) -> int:
    """Rows of each block of an m-row basis: `block`, more where that makes over `MAX_BLOCKS`.

    Examples
    --------
    >>> from slq._backends.tensorflow_lanczos import rows_per_block
    >>> rows_per_block(90, 16), rows_per_block(1000, 16)
    (16, 125)
    """
    return max(block, -(-m // MAX_BLOCKS))


def _initial(ctx: _Context, rows: Any, count: int) -> _Carry:
    k, n = rows.shape
    m, dtype = ctx.settings.num_steps, rows.dtype
    return _Carry(
        j=tf.constant(0, tf.int32),
        q=rows,
        q_prev=tf.zeros_like(rows),
        beta_prev=tf.zeros((k, 1), dtype),
        active=tf.ones((k,), tf.bool),
        finite=tf.constant(True),
        scale=tf.constant(1.0, tf.float64),
        blocks=tuple(tf.zeros((k, 0, n), dtype) for _ in range(count)),
        raw=tf.zeros((m, 3, k), tf.float64),
        live=tf.zeros((m, k), tf.bool),
        flags=tf.ones((m, 0), tf.bool),  # shaped by step 0's product
        repeats=tf.constant(0, tf.int32),
    )


def _loop(ctx: _Context, carry: _Carry) -> _Carry:
    """Run the steps after the first until m, or until every probe stopped."""
    m = ctx.settings.num_steps

    def more(c: _Carry) -> Any:
        return (c.j < m) & tf.reduce_any(c.active) & c.finite

    def step(c: _Carry) -> tuple[_Carry]:
        return (_step(ctx, c, first=False),)

    shapes = tf.nest.map_structure(lambda t: t.shape, carry)
    k, n = carry.q.shape
    growing = tuple(tf.TensorShape([k, None, n]) for _ in carry.blocks)  # a row a step
    shapes = shapes._replace(blocks=growing)
    return tf.while_loop(more, step, (carry,), shape_invariants=(shapes,))[0]  # type: ignore[no-any-return]


def _step(ctx: _Context, c: _Carry, *, first: bool) -> _Carry:
    """Step j of `slq._lanczos.run_batch`: store q_j, A q_j, project, test for breakdown."""
    settings, j, q = ctx.settings, c.j, c.q
    size = rows_per_block(settings.num_steps, settings.block)
    blocks = store(c.blocks, 0 if first else j // size, q) if ctx.stores else c.blocks
    w, flags = _apply(ctx, q)
    scale = power_of_two(w, settings.safe_exponent) if first else c.scale
    w = w * tf.cast(1.0 / scale, w.dtype)
    w, alpha, beta, image_norm, again = _residual(ctx, c, w, list(blocks))
    live = c.active & ~(beta <= settings.tolerance * image_norm)
    inverse = tf.where(live, 1.0 / tf.where(live, beta, 1.0), 0.0)
    raw = tf.stack([image_norm, alpha, beta])
    all_flags = c.flags if not first else tf.ones((c.raw.shape[0], *flags.shape), tf.bool)
    return _Carry(
        j=j + 1,
        q=w * tf.cast(inverse, w.dtype)[:, None],
        q_prev=q,
        beta_prev=tf.cast(tf.where(live, beta, 0.0), w.dtype)[:, None],
        active=live,
        finite=c.finite & tf.reduce_all(tf.math.is_finite(raw)) & tf.reduce_all(flags),
        scale=scale,
        blocks=blocks,
        raw=_set_row(c.raw, j, raw),
        live=_set_row(c.live, j, live),
        flags=_set_row(all_flags, j, flags) if flags.shape[0] else all_flags,
        repeats=c.repeats + tf.reduce_sum(tf.cast(again, tf.int32)),
    )


def _residual(ctx: _Context, c: _Carry, w: Any, blocks: list[Any]) -> tuple[Any, ...]:
    """`slq._lanczos._residual` in the graph: the recurrence, α corrected, one pass (DGKS).

    Returns r_j, α_j, β_j = ‖r_j‖, ‖A q_j‖ and which probes were projected twice.
    """
    acc, q = tf.float64, c.q
    image_norm = _norms(w, acc)
    q_acc = tf.cast(q, acc)
    alpha = _dot(q_acc, tf.cast(w, acc))
    subtracted = tf.cast(alpha, w.dtype)
    w = w - subtracted[:, None] * q - c.beta_prev * c.q_prev
    if not ctx.settings.full:
        return w, alpha, _norms(w, acc), image_norm, tf.zeros_like(c.active)
    alpha = tf.cast(subtracted, acc) + _dot(q_acc, tf.cast(w, acc))
    w, beta, again = ctx.settings.project_dgks(w, blocks, acc, _norms(w, acc))
    return w, alpha, beta, image_norm, again


def _apply(ctx: _Context, q: Any) -> tuple[Any, Any]:
    """Return A q for the rows q (k, n), as rows of q's dtype, and the operator's flags (B,)."""
    w, flags = ctx.product(ctx.operands, tf.transpose(q))
    flags = tf.ones((0,), tf.bool) if flags is None else tf.reshape(flags, (-1,))
    return tf.cast(tf.transpose(w), q.dtype), flags


def store(blocks: tuple[Any, ...], index: Any, q: Any) -> tuple[Any, ...]:
    """Return `blocks` with the rows `q` (k, n) appended to block `index`: a copy of it only.

    `index` a Python int (that block alone is traced) or a tensor (a `tf.switch_case`
    over the blocks, each branch passing the others through uncopied).

    Examples
    --------
    >>> import tensorflow as tf
    >>> from slq._backends.tensorflow_lanczos import store
    >>> blocks = (tf.zeros((1, 2, 3)), tf.zeros((1, 0, 3)))
    >>> [int(b.shape[1]) for b in store(blocks, tf.constant(1), tf.ones((1, 3)))]
    [2, 1]
    """

    def append_to(i: int) -> Callable[[], tuple[Any, ...]]:
        def append() -> tuple[Any, ...]:
            grown = tf.concat([blocks[i], tf.expand_dims(q, 1)], axis=1)
            return (*blocks[:i], grown, *blocks[i + 1 :])

        return append

    if isinstance(index, int):
        return append_to(index)()
    return tuple(tf.switch_case(index, [append_to(i) for i in range(len(blocks))]))


def _set_row(table: Any, j: Any, row: Any) -> Any:
    return tf.tensor_scatter_nd_update(table, tf.reshape(j, (1, 1)), row[None])


def _dot(a: Any, b: Any) -> Any:
    # The eager engine's `vecdot`: the same Einsum op, so the same summation.
    return tf.raw_ops.Einsum(inputs=[a, b], equation="...i,...i->...")


def _norms(w: Any, acc: Any) -> Any:
    wide = tf.cast(w, acc)
    return tf.sqrt(_dot(wide, wide))


def _finish(c: _Carry, m: int) -> GraphRun:
    """Return the coefficients as the eager engine keeps them: zeros once a probe stopped."""
    before = tf.concat([tf.ones((1, c.live.shape[1]), tf.bool), c.live[:-1]], axis=0)
    ran = before & (tf.range(m) < c.j)[:, None]  # probe active at the start of step j
    zero = tf.zeros_like(c.raw[:, 1])
    alpha = tf.transpose(tf.where(ran, c.raw[:, 1], zero))
    beta = tf.transpose(tf.where(c.live, c.raw[:, 2], zero))
    lengths = tf.reduce_sum(tf.cast(ran, tf.int32), axis=0)
    return GraphRun(alpha, beta, lengths, c.j, c.raw, c.flags, c.scale, c.blocks, c.repeats)

"""The array namespace the core sees for TensorFlow tensors, and the basis kept in row blocks.

array-api-compat does not cover TensorFlow, so this module is that namespace: the
functions the core calls, with array-API signatures, and nothing more. It imports
TensorFlow, so `slq._backends` imports it only once it is handed a TensorFlow
tensor or dtype, when TensorFlow is already loaded. `TensorFlowBackend` keeps
the Lanczos basis as a list of row blocks.

>>> import tensorflow as tf
>>> from slq._backends import tensorflow as xp
>>> x = xp.asarray([[3.0, 4.0]], dtype=tf.float64)
>>> xp.sqrt(xp.vecdot(x, x)).numpy()
array([5.])
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from slq._backends.array_api import DGKS_ETA, ArrayAPIBackend, gram_schmidt_twice
from slq._backends.compiled import Settings, compiled_product
from slq._backends.tensorflow_lanczos import (
    ColumnProduct,
    GraphRun,
    graph_run,
    matrix_product,
)
from slq._backends.traceable import TraceableProduct

__array_api_version__ = "2023.12"

# Rows per block of the stored Lanczos basis: see `store_row`.
BLOCK_ROWS = 16

# Smallest row set (k · n numbers: one stored row of every probe) whose pass gathers
# the rows above rounding: below, the gather's two dozen ops per block cost more
# than the reads they save (k = 1, n = 1e4: 0.08 ms a step more; k = 8: 0.3 ms less).
GATHER_ELEMENTS = 1 << 16

_DTYPES = {
    name: getattr(tf, name)
    for name in (
        *("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
        *("float32", "float64", "complex64", "complex128"),
    )
}

_KINDS = {
    "bool": lambda d: d.is_bool,
    "signed integer": lambda d: d.is_integer and not d.is_unsigned,
    "unsigned integer": lambda d: d.is_integer and d.is_unsigned,
    "integral": lambda d: d.is_integer,
    "real floating": lambda d: d.is_floating,
    "complex floating": lambda d: d.is_complex,
    "numeric": lambda d: d.is_integer or d.is_floating or d.is_complex,
}


class _Info:
    """What `__array_namespace_info__()` returns: the dtypes of a device."""

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, Any]:
        """Return the dtypes of `kind`; TensorFlow has all of them on every device."""
        return {name: d for name, d in _DTYPES.items() if kind is None or isdtype(d, kind)}


def __array_namespace_info__() -> _Info:  # noqa: N807 (the array API's name)
    """Return the namespace's inspection object."""
    return _Info()


def is_array(x: Any) -> bool:
    """Return whether `x` is a TensorFlow tensor or variable."""
    return isinstance(x, (tf.Tensor, tf.Variable))


def device(x: Any) -> str:
    """Return the device `x` lives on, as TensorFlow names it."""
    return str(x.device)


def isdtype(dtype: Any, kind: Any) -> bool:
    """Return whether `dtype` is of `kind` (a kind name, a dtype, or a tuple of these)."""
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    dtype = tf.as_dtype(dtype)
    return _KINDS[kind](dtype) if isinstance(kind, str) else dtype == tf.as_dtype(kind)


def finfo(dtype: Any) -> np.finfo:
    """Return the machine limits of a floating `dtype`."""
    return np.finfo(tf.as_dtype(dtype).as_numpy_dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Any:
    """Return `obj` as a tensor of `dtype` on `device`."""
    if is_array(obj):
        tensor = obj if dtype is None else tf.cast(obj, dtype)
    else:  # converted, and cast, on the host: one op, not three
        tensor = tf.convert_to_tensor(obj, dtype=dtype)
    if device is None or tensor.device == device:
        return tensor
    with tf.device(device):
        return tf.identity(tensor)


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """Return a tensor of zeros of `shape` on `device`."""
    with tf.device(device):
        return tf.zeros(shape, dtype=tf.float32 if dtype is None else dtype)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    """Return zeros shaped like `x`, on its device unless told otherwise."""
    with tf.device(x.device if device is None else device):
        return tf.zeros_like(x, dtype=dtype)


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    """Return `x` cast to `dtype` (tensors are immutable: no copy is ever needed)."""
    return tf.cast(x, dtype)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Return the dot products of real vectors along `axis`."""
    if axis == -1:  # one op instead of two, and no n-sized product
        return _einsum("...i,...i->...", x1, x2)
    return tf.reduce_sum(x1 * x2, axis=axis)


def matmul(x1: Any, x2: Any, /) -> Any:
    """Return the matrix product, 1-D operands taken as in the array API (TF's `@` wants 2-D)."""
    if x1.shape.rank == 1 and x2.shape.rank == 1:
        return tf.tensordot(x1, x2, 1)
    if x2.shape.rank == 1:
        return tf.linalg.matvec(x1, x2)
    if x1.shape.rank == 1:
        return tf.linalg.matvec(x2, x1, transpose_a=True)
    return tf.matmul(x1, x2)


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    """Return `x` with its axes permuted."""
    return tf.transpose(x, perm=_constant(tuple(axes)))


def expand_dims(x: Any, /, *, axis: int = 0) -> Any:
    """Return `x` with a new axis of length 1 at `axis`."""
    return tf.expand_dims(x, axis)


@functools.cache
def _constant(value: tuple[int, ...]) -> Any:
    # Converting a Python tuple costs more than the op itself (0.1 ms of 0.17 for a transpose).
    with tf.init_scope():  # an eager tensor, even when first asked for inside a tf.function
        return tf.constant(value, dtype=tf.int32)


def matrix_transpose(x: Any, /) -> Any:
    """Return `x` with its last two axes swapped."""
    return tf.linalg.matrix_transpose(x)


def reshape(x: Any, /, shape: Any, *, copy: Any = None) -> Any:
    """Return `x` with a new shape."""
    return tf.reshape(x, shape)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    """Stack tensors of one shape along a new `axis`."""
    return tf.stack(list(arrays), axis=axis)


def abs(x: Any, /) -> Any:
    """Return the element-wise absolute value."""
    return tf.abs(x)


def max(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    """Return the largest element along `axis` (all of it for None)."""
    return tf.reduce_max(x, axis=axis, keepdims=keepdims)


def sqrt(x: Any, /) -> Any:
    """Return the element-wise square root."""
    return tf.sqrt(x)


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    """Return the vector norm of `x` along `axis` (all of it for None)."""
    return tf.norm(x, ord=ord, axis=axis, keepdims=keepdims)


linalg = types.SimpleNamespace(vector_norm=_vector_norm)


# The Lanczos basis. A tensor cannot be written in place: storing row j into one
# (k, m, n) tensor copies all of it every step, and so did a tf.Variable's sliced
# `assign` (46 ms a row at k=8, m=90, n=1e4; reading a slice copied it all again).
# So the basis is a list of (k, b, n) blocks of at most BLOCK_ROWS rows: a step
# appends its rows to the last block (copying that block only) and a full block is
# never copied again. Re-stacking all rows every step instead ran 2.5-3x slower at
# n=1e5. Merging equal blocks (a binary counter) was no faster, and its merges
# briefly double the basis; a block of 16 rows needs at most 32 rows on top.


def store_row(blocks: list[Any], j: int, rows: Any) -> list[Any]:
    """Append `rows` (shape (k, n)) to the basis `blocks` as row j, the next one."""
    stored = sum(int(block.shape[1]) for block in blocks)
    if j != stored:
        msg = f"Lanczos rows are stored in order: got row {j} after {stored} rows (a bug in slq)"
        raise AssertionError(msg)
    row = tf.expand_dims(rows, 1)  # not rows[:, None]: TF's indexing costs 0.3 ms a call
    if blocks and blocks[-1].shape[1] < BLOCK_ROWS:
        blocks[-1] = tf.concat([blocks[-1], row], axis=1)
    else:
        blocks.append(row)
    return blocks


def first_rows(blocks: list[Any], rows: int) -> list[Any]:
    """Return the blocks holding the first `rows` stored rows, the last one cut to fit."""
    kept, count = [], 0
    for block in blocks:
        if count >= rows:
            break
        kept.append(block[:, : rows - count, :] if count + block.shape[1] > rows else block)
        count += int(block.shape[1])
    return kept


def stack_rows(blocks: list[Any], rows: int) -> Any:
    """Return the first `rows` stored rows as one (k, rows, n) tensor."""
    return tf.concat(first_rows(blocks, rows), axis=1)


def project_pass(w: Any, blocks: list[Any], rows: int, acc: Any) -> tuple[Any, Any]:
    """One classical Gram–Schmidt pass against the first `rows` stored rows, in one graph call.

    Returns the projected `w` (k, n) and the coefficients (k, rows) in `acc`, as
    `slq._backends.array_api.gram_schmidt_pass` does; a block is cast to `acc`
    one at a time. Eager dispatch of the products per block cost as much as the
    products themselves at n=1e4 (3.5 against 2.1 ms a step at k=1).
    """
    return _project_pass(w, first_rows(blocks, rows), tf.as_dtype(acc))  # type: ignore[no-any-return]


def project_twice(w: Any, blocks: list[Any], rows: int, acc: Any) -> tuple[Any, Any]:
    """`gram_schmidt_twice` with the pass below, both passes in one graph call.

    Two calls of `project_pass` cost a Lanczos step 0.65 ms more at n = 1e4, k = 1
    (the blocks are cut and dispatched twice).
    """
    return _project_twice(w, first_rows(blocks, rows), tf.as_dtype(acc))  # type: ignore[no-any-return]


# Traced once per number of blocks and dtype and, with reduce_retracing, then for any shape.
@tf.function(reduce_retracing=True, autograph=False)
def _project_twice(w: Any, blocks: list[Any], acc: Any) -> tuple[Any, Any]:
    return gram_schmidt_twice(_one_pass, w, blocks, len(blocks), acc)


@tf.function(reduce_retracing=True, autograph=False)
def _project_pass(w: Any, blocks: list[Any], acc: Any) -> tuple[Any, Any]:
    return _one_pass(w, blocks, len(blocks), acc)


def project_dgks(
    w: Any, blocks: list[Any], rows: int | None, acc: Any, before: Any
) -> tuple[Any, Any, Any]:
    """`slq._backends.array_api.project_dgks` with the second pass inside the graph call.

    Returns the projected `w` (k, n), its final row norms in `acc`, and which
    probes were projected twice (DGKS: those whose first pass left less than
    `DGKS_ETA` of `before`). The second pass runs under `tf.cond` only when some
    probe needs it, and is kept only for those probes. With `rows` None the
    blocks are exactly the rows to project against (see `projection_operand`).
    """
    blocks = blocks if rows is None else first_rows(blocks, rows)
    return _project_dgks(w, blocks, tf.as_dtype(acc), before)  # type: ignore[no-any-return]


@tf.function(reduce_retracing=True, autograph=False)
def _project_dgks(w: Any, blocks: list[Any], acc: Any, before: Any) -> tuple[Any, Any, Any]:
    return dgks_in_graph(w, blocks, acc, before)


def dgks_in_graph(w: Any, blocks: list[Any], acc: Any, before: Any) -> tuple[Any, Any, Any]:
    """Return what `project_dgks` does, traced into the caller's graph.

    The first pass is `slq._backends.array_api.project_dgks`'s: coefficients in
    `w`'s dtype, then only the rows above rounding subtracted
    (`subtract_significant`) where a row set has `GATHER_ELEMENTS` numbers,
    every row below; the second, where DGKS asks, a full pass.
    """
    coefficients = [_einsum("kjn,kn->kj", block, w) for block in blocks]
    if w.shape.num_elements() is not None and w.shape.num_elements() < GATHER_ELEMENTS:
        pairs = zip(coefficients, blocks, strict=True)
        w = w - tf.add_n([_einsum("kj,kjn->kn", c, b) for c, b in pairs])
    else:
        floor = np.finfo(w.dtype.as_numpy_dtype).eps * tf.cast(before, w.dtype)[:, None]
        w = subtract_significant(w, coefficients, blocks, floor)
    after = _norms(w, acc)
    again = after < DGKS_ETA * before

    def repeat() -> tuple[Any, Any]:
        projected = tf.where(again[:, None], _one_pass(w, blocks, len(blocks), w.dtype)[0], w)
        return projected, _norms(projected, acc)

    w, after = tf.cond(tf.reduce_any(again), repeat, lambda: (w, after))
    return w, after, again


def subtract_significant(w: Any, coefficients: list[Any], blocks: list[Any], floor: Any) -> Any:
    """`slq._backends.array_api.subtract_significant` in the graph, over row blocks.

    Returns w − Σ_i c_i q_i over the stored rows whose |c_i| exceeds `floor`
    (k, 1), the rounding of a pass; `coefficients` holds each block's (k, b)
    coefficients. As there, where more than a third of all coefficients are
    needed, every row is subtracted (reading is then cheaper than gathering).

    Examples
    --------
    >>> import tensorflow as tf
    >>> from slq._backends.tensorflow import subtract_significant
    >>> blocks = [tf.eye(4, dtype=tf.float64)[None, :3, :]]  # e_1, e_2, e_3
    >>> w = tf.constant([[1.0, 1e-20, 1e-20, 3.0]], tf.float64)
    >>> c = [tf.constant([[1.0, 1e-20, 1e-20]], tf.float64)]
    >>> subtract_significant(w, c, blocks, tf.constant([[1e-15]], tf.float64)).numpy()
    array([[0.e+00, 1.e-20, 1.e-20, 3.e+00]])
    """
    needed = [tf.abs(c) > floor for c in coefficients]
    count = tf.add_n([tf.reduce_sum(tf.cast(x, tf.int32)) for x in needed])
    total = tf.add_n([tf.size(x) for x in needed])

    def every_row() -> Any:
        pairs = zip(coefficients, blocks, strict=True)
        return w - tf.add_n([_einsum("kj,kjn->kn", c, b) for c, b in pairs])

    def gathered() -> Any:
        projected = w
        for c, block, x in zip(coefficients, blocks, needed, strict=True):
            projected = _subtract_marked(projected, c, block, x)
        return projected

    # No branch for "none needed": gathering no rows costs as little, and each
    # tf.cond costs tracing time (its branches are traced per block count).
    return tf.cond(3 * count > total, every_row, gathered)


def _subtract_marked(w: Any, c: Any, block: Any, needed: Any) -> Any:
    """Return w − Σ c_i q_i over the rows of one block that `needed` marks; w itself if none.

    A block with no marked row (an empty block of a compiled run, most old ones)
    passes `w` through: no (k, n) zeros to make and add.
    """
    return tf.cond(tf.reduce_any(needed), lambda: w - _gathered_part(c, block, needed), lambda: w)


def _gathered_part(c: Any, block: Any, needed: Any) -> Any:
    """Return Σ c_i q_i (k, n) over the rows of one block that `needed` (k, b) marks."""
    k, b = tf.unstack(tf.shape(c))
    counts = tf.reduce_sum(tf.cast(needed, tf.int32), axis=1)
    # Each probe's marked rows first, in order (the largest keys), padded with zero
    # weights to the most any probe has: one gather and one product for the batch.
    keys = tf.cast(needed, tf.int32) * b + tf.range(b - 1, -1, -1)
    most = tf.reduce_max(counts)
    order = tf.math.top_k(keys, most).indices + (tf.range(k) * b)[:, None]
    weights = tf.gather(tf.reshape(c, (-1,)), order)
    weights = tf.where(tf.range(most) < counts[:, None], weights, 0.0)
    rows = tf.gather(tf.reshape(block, (k * b, tf.shape(block)[2])), order)
    return _einsum("kj,kjn->kn", weights, rows)


def _norms(w: Any, acc: Any) -> Any:
    w = tf.cast(w, acc)
    return tf.sqrt(_einsum("kn,kn->k", w, w))


def _one_pass(w: Any, blocks: list[Any], rows: int, acc: Any) -> tuple[Any, Any]:
    # `rows` is unused: the blocks hold exactly the rows to project against.
    w_acc = tf.cast(w, acc)
    coefficients = [_einsum("kjn,kn->kj", tf.cast(block, acc), w_acc) for block in blocks]
    update = tf.add_n(
        [
            _einsum("kj,kjn->kn", tf.cast(c, w.dtype), block)
            for c, block in zip(coefficients, blocks, strict=True)
        ]
    )
    return w - update, tf.concat(coefficients, axis=1)


def step_graph(function: Callable[..., Any], static_argnums: tuple[int, ...]) -> Any:
    """Return `function` as one graph call, traced per block count and static arguments.

    A step run eagerly dispatched a dozen ops (norms, casts, the recurrence,
    the coefficients' stack) around its projection's graph call, each costing
    tens of microseconds: as much as the arithmetic at n = 1e4. The static
    arguments are bound before tracing: a `tf.function` given them as Python
    values spends longer matching its cache than running the graph.
    """

    def call(*args: Any) -> Any:
        static = tuple(args[i] for i in static_argnums)
        dynamic = [a for i, a in enumerate(args) if i not in static_argnums]
        return _bound_graph(function, static_argnums, static)(*dynamic)

    return call


@functools.cache
def _bound_graph(function: Callable[..., Any], positions: tuple[int, ...], static: tuple) -> Any:
    def bound(*dynamic: Any) -> Any:
        args = list(dynamic)
        for i, value in zip(positions, static, strict=True):
            args.insert(i, value)
        return function(*args)

    return tf.function(bound, reduce_retracing=True, autograph=False)


def _einsum(equation: str, a: Any, b: Any) -> Any:
    # einsum, not matmul or matvec: 1.5-3x faster for these batched matrix-vector
    # products on the CPU. The raw op: tf.einsum's own parsing took 70 us a call.
    return tf.raw_ops.Einsum(inputs=[a, b], equation=equation)


class TensorFlowBackend(ArrayAPIBackend):
    """TensorFlow tensors: the basis as a list of row blocks, projected in one graph call.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from slq._backends import backend_for
    >>> from slq._backends import tensorflow as xp
    >>> backend = backend_for(xp)
    >>> basis = backend.new_basis((1, 2, 3), tf.float64, None)
    >>> basis = backend.store_row(basis, 0, tf.constant([[1.0, 0.0, 0.0]], tf.float64))
    >>> backend.orthogonalize(tf.constant([[2.0, 5.0, 0.0]], tf.float64), basis, 1).numpy()
    array([[0., 5., 0.]])
    """

    name = "tensorflow"
    project_pass = staticmethod(project_pass)
    project_twice = staticmethod(project_twice)
    project_dgks = staticmethod(project_dgks)
    repeats_in_kernel = True

    def new_basis(self, shape: tuple[int, int, int], dtype: Any, device: Any) -> list[Any]:
        """Return an empty list of row blocks: a tensor cannot be written in place."""
        return []

    def store_row(self, basis: Any, j: int, rows: Any) -> list[Any]:
        """Append `rows` as row j (see `store_row`)."""
        return store_row(basis, j, rows)

    def stored_rows(self, basis: Any, rows: int) -> Any:
        """Return the first `rows` stored rows as one (k, rows, n) tensor."""
        return stack_rows(basis, rows)

    def projection_operand(self, basis: Any, rows: int) -> tuple[Any, None]:
        """Return the blocks of the first `rows` rows: the step's graph is traced per block count.

        Passing `rows` would trace it again at every step.
        """
        return first_rows(basis, rows), None

    def compiled_step(self, function: Callable[..., Any], static_argnums: tuple[int, ...]) -> Any:
        """Return a Lanczos step's kernel as one graph call (see `step_graph`)."""
        return step_graph(function, static_argnums)

    def lanczos_program(
        self, op: Any, reorthogonalize: Any, offload_basis: bool, traced: bool = False
    ) -> Callable[..., GraphRun] | None:
        """Return the batch's whole run as one graph call, or None to run it step by step.

        One graph (`slq._backends.tensorflow_lanczos`) when the operator has a
        traceable product (``op.traceable``: a TensorFlow tensor, a callable
        made with ``traceable=True``), the basis stays on the device and the
        policy decides nothing on the host: "full" and "none". "partial" runs
        eagerly: Simon's ω recurrence, which picks the steps to project, runs
        in numpy between steps.
        """
        traceable = compiled_product(op, reorthogonalize, offload_basis, traced)
        if traceable is None:
            return None
        every_step = reorthogonalize.projects_every_step

        def run(rows: Any, **engine: Any) -> GraphRun:
            settings = Settings(
                full=every_step, project_dgks=dgks_in_graph, block=BLOCK_ROWS, **engine
            )
            program = graph_run(traceable.function, traceable.prepare, settings)
            return program(traceable.operands, rows)

        return run

    def traceable_array(self, a: Any) -> TraceableProduct:
        """Return ``a @ V`` as a traceable product: `a` is an argument of the graph."""
        return TraceableProduct(matrix_product, a)

    def traceable_callable(self, f: Callable[[Any], Any]) -> TraceableProduct:
        """Return `f` (on vectors of shape (n,)), column by column, as a traceable product."""
        return TraceableProduct(ColumnProduct(f), ())

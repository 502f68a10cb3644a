"""TensorFlow and Keras models and data as exact Hessian operators.

``slq.density(adapters.tf_hessian(model, data, loss_fn))`` is the eigenvalue
density of the Hessian of L(θ) = Σ_b (N_b / N) loss_fn(y_b, model(x_b)) over
every batch of `data`, for a Keras 3 model (TensorFlow backend) or any callable
whose trainable ``tf.Variable`` objects are θ.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from slq.adapters._common import DataCounts, check_vector, is_single_batch, names_of

from slq._validate import check_choice, check_positive_int

__all__ = ["TfHessian", "tf_hessian"]

logger = logging.getLogger("slq")

HVP_METHODS = ("auto", "forward-over-reverse", "double-backward")

DEFAULT_CACHE_BYTES = 1 << 30
"""Batches are kept as tensors when all of them take at most this much (1 GiB)."""

DEFAULT_CHUNK_SIZE = 8
"""Vectors per traced product in `matmat`, unless `chunk_size` says otherwise.

The columns of a chunk are unrolled in one ``tf.function``: Grappler merges their
identical forward and gradient computations, so each extra column costs mostly
its tangent part. On a 64-200-10 MLP (digits, 2 shared CPU cores, three runs) a
vector cost 0.8-1.3x a gradient in chunks of 4 to 16 (1.04-1.08x in chunks of 8)
against 2.1-2.4x alone, while tracing took about 0.15-0.2 s per column (1.1-1.75 s
for 8, 2.4-3.3 s for 16): 8 bounds the trace and the memory of the columns'
activations. ``tf.vectorized_map`` over the columns
measured 2.0x a gradient per vector, a ``tf.while_loop`` over them 1.6x.
"""


_ZERO = tf.UnconnectedGradients.ZERO

Tensors = list[Any]


# ----------------------------------------------------------------------------- the model


class _KerasModel:
    """A Keras model run through `stateless_call`: none of its variables is ever assigned.

    Train-mode BatchNorm statistics and dropout seeds advance only in the state
    that `stateless_call` returns, which is discarded.
    """

    kind = "a Keras model"

    def __init__(
        self,
        model: Any,
        selected: Sequence[int],
        names: Sequence[str],
        loss_fn: Callable[..., Any],
        training: bool,
    ) -> None:
        self._model, self._selected = model, list(selected)
        self._loss_fn, self._training = loss_fn, training
        self.variables = [model.trainable_variables[i] for i in self._selected]
        self.names = list(names)

    def read(self) -> tuple[Tensors, Any]:
        """Read every variable once: the selected values (θ) and what the loss needs."""
        values = [tf.convert_to_tensor(v) for v in self._model.trainable_variables]
        state = [tf.convert_to_tensor(v) for v in self._model.non_trainable_variables]
        return [values[i] for i in self._selected], (values, state)

    def loss(self, context: Any, x: Any, y: Any) -> Any:
        values, state = context
        outputs, _ = self._model.stateless_call(values, state, x, training=self._training)
        return self._loss_fn(y, outputs)


class _CallableModel:
    """Any callable ``model(x)`` that reads its own trainable ``tf.Variable`` objects."""

    kind = "a callable"

    def __init__(self, model: Any, variables: Sequence[Any], loss_fn: Callable[..., Any]) -> None:
        self._model, self._loss_fn = model, loss_fn
        self.variables = list(variables)
        self.names = _unique_names([v.name for v in self.variables])

    def read(self) -> tuple[Tensors, Any]:
        return list(self.variables), None

    def loss(self, context: Any, x: Any, y: Any) -> Any:
        return self._loss_fn(y, self._model(x))


Model = _KerasModel | _CallableModel


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}#{count}")
    return unique


# ----------------------------------------------------------------------------- products


def _dense(tensors: Sequence[Any]) -> Tensors:
    """Gradients as dense tensors (an embedding's gradient arrives as IndexedSlices)."""
    return [tf.convert_to_tensor(t) for t in tensors]


def _forward_over_reverse(model: Model, x: Any, y: Any, columns: list[Tensors]) -> list[Tensors]:
    """H t = the directional derivative of the gradient along t (Pearlmutter 1994).

    One accumulator per column; the columns' primal computations are identical,
    and Grappler computes them once.
    """
    primals, context = model.read()
    products = []
    for tangents in columns:
        with tf.autodiff.ForwardAccumulator(primals, tangents) as accumulator:
            with tf.GradientTape() as tape:
                tape.watch(primals)
                loss = model.loss(context, x, y)
            gradient = _dense(tape.gradient(loss, primals, unconnected_gradients=_ZERO))
        products.append(accumulator.jvp(gradient, unconnected_gradients=_ZERO))
    return products


def _double_backward(model: Model, x: Any, y: Any, columns: list[Tensors]) -> list[Tensors]:
    """H t = the gradient of ⟨∇L, t⟩: reverse mode through the recorded gradient, per column."""
    primals, context = model.read()
    with tf.GradientTape(persistent=len(columns) > 1) as outer:
        outer.watch(primals)
        with tf.GradientTape() as inner:
            inner.watch(primals)
            loss = model.loss(context, x, y)
        gradient = _dense(inner.gradient(loss, primals, unconnected_gradients=_ZERO))
    return [
        outer.gradient(gradient, primals, output_gradients=t, unconnected_gradients=_ZERO)
        for t in columns
    ]


_PRODUCTS = {
    "forward-over-reverse": _forward_over_reverse,
    "double-backward": _double_backward,
}


# ----------------------------------------------------------------------------- data


def _as_batch(batch: Any, index: int) -> tuple[Any, Any]:
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        msg = f"batch {index} is a {type(batch).__name__}; every batch must be an (x, y) pair"
        raise TypeError(msg)
    x, y = tf.nest.map_structure(tf.convert_to_tensor, tuple(batch))
    return x, y


def _batch_size(batch: tuple[Any, Any], index: int) -> int:
    tensors = tf.nest.flatten(batch)
    if any(t.shape.rank == 0 for t in tensors):
        msg = f"batch {index} holds a scalar; x and y need the batch axis first"
        raise ValueError(msg)
    sizes = sorted({int(t.shape[0]) for t in tensors})
    if len(sizes) > 1:
        msg = (
            f"batch {index}: its tensors have leading axes of sizes {sizes}; x and y need the "
            "same batch axis first"
        )
        raise ValueError(msg)
    return sizes[0]


def _spec(batch: tuple[Any, Any]) -> Any:
    """Return the batch's TensorSpecs with the batch axis open: one trace for every size."""
    return tf.nest.map_structure(lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), batch)


def _nbytes(batch: Any) -> int:
    return sum(t.shape.num_elements() * t.dtype.size for t in tf.nest.flatten(batch))


class _Batches:
    """The (x, y) batches of `data` with their sizes: kept as tensors, or re-read every pass."""

    def __init__(self, data: Any, cache: bool | None) -> None:
        one = is_single_batch(data) or (
            isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Mapping)
        )
        self._source: Iterable[Any] = [data] if one else data
        self.spec: Any = None  # batch 0's TensorSpecs, the batch axis open
        self.sizes: list[int] = []
        cached: list[tuple[Any, Any]] | None = []
        total = 0
        for index, raw in enumerate(self._source):
            batch = self._read(raw, index)
            self.sizes.append(_batch_size(batch, index))
            total += _nbytes(batch)
            if cached is not None and (cache or (cache is None and total <= DEFAULT_CACHE_BYTES)):
                cached.append(batch)
            else:
                cached = None
        if not self.sizes:
            msg = "data is empty: pass one (x, y) batch or a tf.data.Dataset of (x, y) batches"
            raise ValueError(msg)
        self._cached = cached
        self.num_examples = sum(self.sizes)

    def _read(self, raw: Any, index: int) -> tuple[Any, Any]:
        batch = _as_batch(raw, index)
        if index == 0:
            self.spec = _spec(batch)
        elif not all(
            s.is_compatible_with(t)
            for s, t in zip(tf.nest.flatten(self.spec), tf.nest.flatten(batch), strict=True)
        ):
            msg = (
                f"batch {index} does not match batch 0: got {_spec(batch)}, expected "
                f"{self.spec}; batches may differ only in their leading (batch) axis"
            )
            raise ValueError(msg)
        return batch

    def __iter__(self) -> Any:
        source = (
            self._cached
            if self._cached is not None
            else (_as_batch(b, i) for i, b in enumerate(self._source))
        )
        for index, batch in enumerate(source):
            yield index, batch, self.sizes[index] / self.num_examples

    def first(self) -> tuple[Any, Any]:
        return next(iter(self))[1]


# ----------------------------------------------------------------------------- the operator


def _own(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `method` so that its tf.function keeps trace statistics of its own.

    TensorFlow counts traces per code object, so every operator's (single) trace
    would add up to a "frequent retracing" warning; a partial has no code object.
    """
    return functools.partial(method)


def _first_columns(matrix: Any, k: int) -> Any:
    return matrix if matrix.shape[1] == k else matrix[:, :k]


class TfHessian(DataCounts):
    """The Hessian of a TensorFlow model's mean loss over a dataset, as a `slq.LinearOperator`.

    Vectors are flat tensors of the variables' dtype, laid out as the chosen
    variables in order (see `flatten`, `unflatten`). Made by `tf_hessian`.

    Examples
    --------
    >>> import keras, numpy as np, tensorflow as tf
    >>> from slq import adapters
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="out")], name="net")
    >>> x, y = np.ones((8, 3), "float32"), np.arange(8) % 2
    >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    >>> op = adapters.tf_hessian(model, (x, y), loss)
    >>> op.names, op.shape, op.hvp
    (('net/out/kernel', 'net/out/bias'), (8, 8), 'forward-over-reverse')
    >>> kernel, bias = op.unflatten(op.matvec(tf.ones(8)))
    >>> kernel.shape, bias.shape
    (TensorShape([3, 2]), TensorShape([2]))
    >>> op.flatten([kernel, bias]).shape
    TensorShape([8])
    """

    def __init__(
        self,
        model: Model,
        batches: _Batches,
        *,
        hvp: str,
        chunk_size: int,
        jit_compile: bool,
    ) -> None:
        self._model, self._batches = model, batches
        self.names: tuple[str, ...] = tuple(model.names)
        self.shapes = tuple(tuple(int(d) for d in v.shape) for v in model.variables)
        self._sizes = [math.prod(s) for s in self.shapes]
        n = sum(self._sizes)
        self.shape = (n, n)
        first = tf.convert_to_tensor(model.variables[0])
        self.dtype = first.dtype
        self.device = first.device
        self.hvp = hvp
        self.chunk_size = chunk_size
        self.traces = 0  # how often a product was traced: once per number of columns
        self._jit_compile = jit_compile
        self._traced: dict[int | None, Any] = {}
        self._weights = [
            tf.constant(size / batches.num_examples, self.dtype) for size in batches.sizes
        ]
        self._loss = tf.function(_own(self._batch_loss), input_signature=list(batches.spec))

    def __repr__(self) -> str:
        return (
            f"<slq Hessian of {self._model.kind} with {len(self.names)} variables, "
            f"n={self.shape[0]}, {self.dtype.name}, {self.device}, {self.num_examples} "
            f"examples in {self.num_batches} batches>"
        )

    def unflatten(self, v: Any) -> list[Any]:
        """Return the flat vector `v` (shape (n,)) as tensors shaped like the variables.

        Examples
        --------
        >>> import keras
        >>> import tensorflow as tf
        >>> from slq import adapters
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> data = (tf.ones((4, 2)), tf.ones((4, 1)))
        >>> op = adapters.tf_hessian(model, data, keras.losses.MeanSquaredError())
        >>> [tuple(t.shape) for t in op.unflatten(tf.range(3.0))]
        [(2, 1), (1,)]
        >>> op.flatten(op.unflatten(tf.range(3.0))).numpy().tolist()
        [0.0, 1.0, 2.0]
        """
        self._check(v, 1)
        return self._split(v)

    def flatten(self, tensors: Sequence[Any]) -> Any:
        """Return the flat vector of tensors shaped like the variables (inverse of `unflatten`).

        Examples
        --------
        A direction in parameter space, e.g. to take its curvature vᵀHv:

        >>> import keras
        >>> import tensorflow as tf
        >>> from slq import adapters
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> data = (tf.ones((4, 2)), tf.ones((4, 1)))
        >>> op = adapters.tf_hessian(model, data, keras.losses.MeanSquaredError())
        >>> v = op.flatten([tf.ones((2, 1)), tf.zeros((1,))])
        >>> v.numpy().tolist(), float(tf.tensordot(v, op.matvec(v), 1))
        ([1.0, 1.0, 0.0], 8.0)
        """
        shapes = tuple(tuple(tf.convert_to_tensor(t).shape) for t in tensors)
        if shapes != self.shapes:
            msg = f"flatten needs tensors of shapes {list(self.shapes)}, got {list(shapes)}"
            raise ValueError(msg)
        flat = self._join(tensors)
        self._check(flat, 1)
        return flat

    def _split(self, v: Any) -> list[Any]:
        parts = tf.split(v, self._sizes)
        return [tf.reshape(p, s) for p, s in zip(parts, self.shapes, strict=True)]

    @staticmethod
    def _join(tensors: Sequence[Any]) -> Any:
        return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)

    def matvec(self, v: Any, /) -> Any:
        """Return the product with the flat vector `v` of shape (n,)."""
        self._check(v, 1)
        return self._products(v)

    def matmat(self, vectors: Any, /) -> Any:
        """Return the products with the k columns of `vectors` (shape (n, k)) in one data pass."""
        self._check(vectors, 2)
        if vectors.shape[1] == 0:
            return tf.zeros_like(vectors)
        return self._products(vectors)

    # The traced body: Python here runs only while tracing, so `traces` counts traces.
    def _traced_products(self, x: Any, y: Any, weight: Any, tangents: Any) -> Any:
        self.traces += 1
        one = tangents.shape.rank == 1
        vectors = [tangents] if one else tf.unstack(tangents, axis=1)
        products = _PRODUCTS[self.hvp](self._model, x, y, [self._split(t) for t in vectors])
        flat = [self._join(p) for p in products]
        out = flat[0] if one else tf.stack(flat, axis=1)
        return weight * out, tf.reduce_all(tf.math.is_finite(out))

    def _function(self, columns: int | None) -> Any:
        """Return the product with one vector (None) or `columns` of them, traced once."""
        if columns not in self._traced:
            n = self.shape[0]
            signature = [
                *self._batches.spec,
                tf.TensorSpec([], self.dtype),
                tf.TensorSpec([n] if columns is None else [n, columns], self.dtype),
            ]
            self._traced[columns] = tf.function(
                _own(self._traced_products),
                input_signature=signature,
                jit_compile=self._jit_compile,
            )
        return self._traced[columns]

    def _chunks(self, vectors: Any) -> list[Any]:
        """Split into equal chunks of at most `chunk_size` columns, zero-padding the last.

        Eager slicing costs about 0.3 ms a call on the CPU (a fifth of a small
        model's product): the chunks are one `tf.split`, a vector is not reshaped.
        """
        if vectors.shape.rank == 1:
            return [vectors]
        k = int(vectors.shape[1])
        count = -(-k // self.chunk_size)
        width = -(-k // count)
        if count * width > k:
            vectors = tf.pad(vectors, [[0, 0], [0, count * width - k]])
        return tf.split(vectors, count, axis=1) if count > 1 else [vectors]

    def _products(self, vectors: Any) -> Any:
        chunks = self._chunks(vectors)
        product = self._function(None if vectors.shape.rank == 1 else int(chunks[0].shape[1]))
        totals: list[Any] = [None] * len(chunks)
        flags = []
        for index, (x, y), _ in self._batches:
            for j, chunk in enumerate(chunks):
                out, ok = product(x, y, self._weights[index], chunk)
                totals[j] = out if totals[j] is None else totals[j] + out
                flags.append(ok)
        # One transfer of a few booleans, after every batch is queued.
        finite = np.atleast_1d((flags[0] if len(flags) == 1 else tf.stack(flags)).numpy())
        if not finite.all():
            self._raise_non_finite(int(finite.argmin()) // len(chunks))
        total = totals[0] if len(totals) == 1 else tf.concat(totals, axis=1)
        return total if vectors.shape.rank == 1 else _first_columns(total, vectors.shape[1])

    def _batch_loss(self, x: Any, y: Any) -> Any:
        return self._model.loss(self._model.read()[1], x, y)

    def _check_losses(self) -> None:
        """Every batch's loss must be a finite scalar: one forward pass over the data."""
        for index, (x, y), _ in self._batches:
            loss = self._loss(x, y)
            if loss.shape.rank != 0:
                msg = (
                    "loss_fn must return a scalar (the batch mean), got shape "
                    f"{tuple(loss.shape)}; use a reducing loss (Keras losses reduce by default)"
                )
                raise ValueError(msg)
            if not math.isfinite(float(loss)):
                msg = f"the loss is {float(loss)} on batch {index}: check that batch and the model"
                raise FloatingPointError(msg)
            if index == 0 and loss.dtype.size < self.dtype.size:
                logger.warning(
                    "tf_hessian: the loss is %s but the variables are %s: the Hessian is only "
                    "as precise as the loss (give the Keras loss dtype=%r)",
                    loss.dtype.name,
                    self.dtype.name,
                    self.dtype.name,
                )

    def _raise_non_finite(self, index: int) -> None:
        x, y = next(b for i, b, _ in self._batches if i == index)
        loss = float(self._loss(x, y))
        what = f"the loss is {loss}" if not math.isfinite(loss) else "the loss is finite"
        msg = f"the Hessian product is not finite on batch {index} ({what}): check that batch"
        raise FloatingPointError(msg)

    def _check(self, v: Any, ndim: int) -> None:
        check_vector(v, ndim, self.shape[0], self.dtype, tf.Tensor, "a tf.Tensor")

    def _try_forward_mode(self) -> None:
        """Trace the forward-over-reverse matvec; fall back to double backward if that fails."""
        try:
            self._function(None).get_concrete_function()
        except Exception as err:  # any failure to trace forward mode, such as a missing rule
            # AutoGraph wraps errors from user code: its last line is the original error.
            lines = str(err).strip().splitlines() or [""]
            logger.info(
                "tf_hessian: forward-over-reverse failed (%s: %s); using double backward",
                type(err).__name__,
                lines[-1].strip(),
            )
            self.hvp = "double-backward"
            self._traced.clear()


# ----------------------------------------------------------------------------- building


def _is_keras(model: Any) -> bool:
    if not isinstance(model, keras.Layer):
        return False
    if keras.backend.backend() != "tensorflow":
        msg = (
            f"tf_hessian needs Keras with the TensorFlow backend, but Keras runs on "
            f"{keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow before importing keras"
        )
        raise TypeError(msg)
    return True


def _keras_model(
    model: Any, variables: Sequence[Any] | None, loss_fn: Callable[..., Any], training: bool
) -> _KerasModel:
    if not model.built:
        msg = (
            f"the {type(model).__name__} is not built (it has no variables yet): call it once "
            "on a batch, model(x[:1]), or give it a keras.Input, before tf_hessian"
        )
        raise ValueError(msg)
    trainable = list(model.trainable_variables)
    available = dict(zip(_unique_names([v.path for v in trainable]), trainable, strict=True))
    if variables is None:
        names = list(available)
    else:
        # A Keras variable's tf.Variable stands for it.
        unwrap = {id(v.value): v for v in trainable}
        names = names_of(
            [unwrap.get(id(v), v) for v in variables], available, "trainable variable", "variables"
        )
    positions = {name: i for i, name in enumerate(available)}
    return _KerasModel(model, [positions[name] for name in names], names, loss_fn, training)


def _callable_model(
    model: Any, variables: Sequence[Any] | None, loss_fn: Callable[..., Any], first: Any
) -> _CallableModel:
    if variables is None:
        found = getattr(model, "trainable_variables", None)
        if found is None:  # a plain function: the variables it reads
            with tf.GradientTape() as tape:
                loss_fn(first[1], model(first[0]))
            found = [v for v in tape.watched_variables() if v.trainable]
        chosen = list(found)
    else:
        chosen = list(variables)
        for v in chosen:
            if not isinstance(v, tf.Variable):
                msg = f"variables contains a {type(v).__name__}, not a tf.Variable"
                raise TypeError(msg)
    return _CallableModel(model, chosen, loss_fn)


def _check_variables(model: Model) -> None:
    if not model.variables:
        msg = (
            "the model has no trainable variables (or variables= is empty): nothing to "
            "differentiate"
        )
        raise ValueError(msg)
    dtypes = {tf.as_dtype(v.dtype) for v in model.variables}
    if len(dtypes) > 1:
        msg = f"the chosen variables must share one dtype, got {sorted(d.name for d in dtypes)}"
        raise TypeError(msg)
    dtype = dtypes.pop()
    if not dtype.is_floating:
        msg = f"variables must be floating point, got {dtype.name}"
        raise TypeError(msg)


def tf_hessian(
    model: Any,
    data: Any,
    loss_fn: Callable[[Any, Any], Any],
    *,
    variables: Sequence[Any] | None = None,
    training: bool = False,
    hvp: str = "auto",
    chunk_size: int | None = None,
    cache_data: bool | None = None,
    jit_compile: bool = False,
) -> TfHessian:
    r"""Return the Hessian of a model's mean loss over a dataset as a `slq.LinearOperator`.

    H = ∇²L(θ) with L(θ) = Σ_b (N_b / N) loss_fn(y_b, model(x_b)): each batch's
    mean loss weighted by its size, so the operator does not depend on how the
    data is split (Ghorbani, Krishnan & Xiao 2019, Eq. 1) — except through
    train-mode BatchNorm, whose statistics are each batch's.

    Parameters
    ----------
    model : keras.Model or callable
        A built Keras 3 model (TensorFlow backend), evaluated with
        ``model.stateless_call`` so that no variable of it (BatchNorm moving
        statistics, dropout seeds) is ever assigned; or any callable
        ``model(x)`` reading trainable ``tf.Variable`` objects (a ``tf.Module``,
        a function), which must not assign to them itself. Products use the
        variables' current values: do not train the model while using the
        operator.
    data
        One ``(x, y)`` batch (tensors or arrays; x may be a dict of inputs), or
        an iterable of such batches: a ``tf.data.Dataset``, a list. Read once
        to count the examples and check every batch's loss; kept as tensors
        when all batches take at most 1 GiB (`cache_data`), else re-read on
        every product.
    loss_fn : callable
        ``loss_fn(y_true, y_pred)`` returning the batch *mean*, such as
        ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``. A
        Keras loss computes in ``keras.config.floatx()`` unless given
        ``dtype=``: give ``dtype="float64"`` for a float64 model.
    variables : sequence of variables or str, optional
        The variables θ to differentiate (a layer's weights), as objects or
        names (Keras ``variable.path``); default every trainable variable. The
        others are held fixed.
    training : bool
        Call the Keras model in training mode: BatchNorm normalises by each
        batch's statistics (the loss the optimiser sees) and dropout is active
        with the model's current seed, frozen, so the operator stays one fixed
        matrix. False (default): inference mode, BatchNorm's moving statistics.
        Either way the moving statistics are never updated.
    hvp : {"auto", "forward-over-reverse", "double-backward"}
        How a product is computed: ``tf.autodiff.ForwardAccumulator`` over a
        ``tf.GradientTape`` (Pearlmutter 1994), or a tape over the gradient's
        tape. "auto" traces forward-over-reverse once and falls back to double
        backward if that fails.
    chunk_size : int, optional
        At most this many vectors per traced product in `matmat` (default 8):
        unrolled in one ``tf.function``, where they share the forward pass and
        the gradient. k columns are split into equal chunks (the last padded
        with zeros), traced once per chunk width.
    cache_data : bool, optional
        Keep the batches as tensors: True, False, or None to cache when they
        take at most 1 GiB.
    jit_compile : bool
        Compile the products with XLA (``tf.function(jit_compile=True)``). On
        the CPU this made a lone product about 25% faster, but the columns of a
        chunk no longer shared their forward pass, so `matmat` was no faster.

    Returns
    -------
    TfHessian
        An operator with ``matvec``, ``matmat``, ``shape``, ``dtype``,
        ``device``, ``flatten``, ``unflatten``, ``names``, ``num_examples``,
        ``hvp``, ``traces``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> import slq
    >>> from slq import adapters
    >>> model = keras.Sequential(
    ...     [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)]
    ... )
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.standard_normal((64, 4)).astype("float32"), rng.integers(0, 3, 64)
    >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    >>> op = adapters.tf_hessian(model, (x, y), loss)
    >>> op.shape, op.dtype.name
    ((67, 67), 'float32')
    >>> dos = slq.density(op, num_steps=30, num_probes=2, seed=0)
    >>> dos.num_matvecs
    60
    """
    check_choice("hvp", hvp, HVP_METHODS)
    chunk = (
        DEFAULT_CHUNK_SIZE if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    )
    if not callable(loss_fn):
        msg = f"loss_fn must be callable(y_true, y_pred), got {type(loss_fn).__name__}"
        raise TypeError(msg)
    if not callable(model):
        msg = f"model must be a Keras model or a callable, got {type(model).__name__}"
        raise TypeError(msg)
    keras_model = _is_keras(model)
    if training and not keras_model:
        msg = (
            "training=True selects the mode of Keras layers; a callable is called as model(x): "
            "build the mode into it"
        )
        raise TypeError(msg)
    # A Keras model is checked before the data is read: an unbuilt model is the likelier mistake.
    wrapped: Model | None = (
        _keras_model(model, variables, loss_fn, training) if keras_model else None
    )
    batches = _Batches(data, cache_data)
    chosen = wrapped or _callable_model(model, variables, loss_fn, batches.first())
    _check_variables(chosen)
    method = "forward-over-reverse" if hvp == "auto" else hvp
    op = TfHessian(chosen, batches, hvp=method, chunk_size=chunk, jit_compile=jit_compile)
    op._check_losses()
    if hvp == "auto":
        op._try_forward_mode()
    logger.info(
        "tf_hessian: n=%d, %s, %d examples in %d batches; %s, training=%s, "
        "up to %d vectors per traced product%s",
        op.shape[0],
        op.dtype.name,
        op.num_examples,
        op.num_batches,
        op.hvp,
        training,
        chunk,
        ", XLA" if jit_compile else "",
    )
    return op

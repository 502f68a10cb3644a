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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from slq.adapters._batches import check_data
from slq.adapters._checks import check_callable, check_optional_bool, check_selection
from slq.adapters._operator import CurvatureOperator
from slq.adapters._tensorflow_data import Batches, is_one_batch
from slq.adapters._tensorflow_model import (
    PRODUCTS,
    Model,
    callable_model,
    check_variables,
    is_keras,
    keras_model,
    narrowest_dtype,
)

from slq._validate import check_bool, check_choice, check_positive_int

__all__ = ["TensorFlowCurvatureOperator", "TfHessian", "tf_hessian"]

# The products by `hvp` method, looked up at trace time (a test replaces one).
_PRODUCTS = PRODUCTS

logger = logging.getLogger("slq")

HVP_METHODS = ("auto", "forward-over-reverse", "double-backward")

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


# ----------------------------------------------------------------------------- the operator


def _own(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `method` so that its tf.function keeps trace statistics of its own.

    TensorFlow counts traces per code object, so every operator's (single) trace
    would add up to a "frequent retracing" warning; a partial has no code object.
    """
    return functools.partial(method)


def _first_columns(matrix: Any, k: int) -> Any:
    return matrix if matrix.shape[1] == k else matrix[:, :k]


class TensorFlowCurvatureOperator(CurvatureOperator):
    """The Hessian of a TensorFlow model's mean loss over a dataset, as a `slq.LinearOperator`.

    Vectors are flat tensors of the variables' dtype, laid out as the chosen
    variables in order (see `flatten`, `unflatten`). Made by `tf_hessian`. Also
    importable by its former name, ``TfHessian``.

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

    _array_type = tf.Tensor
    _array_name = "a tf.Tensor"

    def __init__(
        self,
        model: Model,
        batches: Batches,
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
        return super().unflatten(v)

    def flatten(self, parts: Sequence[Any]) -> Any:
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
        return super().flatten(parts)

    def _unflatten(self, v: Any) -> list[Any]:
        return self._split(v)

    def _flatten(self, parts: Sequence[Any]) -> Any:
        shapes = tuple(tuple(tf.convert_to_tensor(t).shape) for t in parts)
        if shapes != self.shapes:
            msg = f"flatten needs tensors of shapes {list(self.shapes)}, got {list(shapes)}"
            raise ValueError(msg)
        return self._join(parts)

    def _split(self, v: Any) -> list[Any]:
        parts = tf.split(v, self._sizes)
        return [tf.reshape(p, s) for p, s in zip(parts, self.shapes, strict=True)]

    @staticmethod
    def _join(tensors: Sequence[Any]) -> Any:
        return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)

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

    # The framework's parts of `CurvatureOperator`'s data pass.

    def _products(self, vectors: Any) -> Any:
        if vectors.shape.rank == 2 and vectors.shape[1] == 0:
            return tf.zeros_like(vectors)
        return super()._products(vectors)

    def _tangents(self, vectors: Any) -> tuple[list[Any], Any]:
        """Return the chunks of columns and the traced product that takes one chunk."""
        chunks = self._chunks(vectors)
        return chunks, self._function(None if vectors.shape.rank == 1 else int(chunks[0].shape[1]))

    def _batch_product(
        self, index: int, batch: Any, weight: float, tangents: tuple[list[Any], Any]
    ) -> tuple[list[Any], list[Any]]:
        """Return the batch's weighted products and finite flags, one per chunk."""
        (x, y), (chunks, product) = batch, tangents
        outs, flags = [], []
        for chunk in chunks:
            out, ok = product(x, y, self._weights[index], chunk)
            outs.append(out)
            flags.append(ok)
        return outs, flags

    def _add(self, total: list[Any], share: list[Any]) -> list[Any]:
        return [t + s for t, s in zip(total, share, strict=True)]

    def _flags(self, finite: list[list[Any]]) -> np.ndarray:
        flags = [ok for chunk_flags in finite for ok in chunk_flags]
        read = np.atleast_1d((flags[0] if len(flags) == 1 else tf.stack(flags)).numpy())
        return np.asarray(read.reshape(len(finite), -1).all(axis=1))

    def _finish(self, totals: list[Any], vectors: Any) -> Any:
        total = totals[0] if len(totals) == 1 else tf.concat(totals, axis=1)
        return total if vectors.shape.rank == 1 else _first_columns(total, vectors.shape[1])

    def _loss_value(self, batch: Any) -> float:
        x, y = batch
        return float(self._loss(x, y))

    def _description(self) -> str:
        return f"Hessian of {self._model.kind} with {len(self.names)} variables"

    def _dtype_name(self) -> str:
        return str(self.dtype.name)

    def _check(self, v: Any, ndim: int) -> None:
        if not tf.executing_eagerly():
            msg = (
                "the operator was called inside a tf.function: call matvec and matmat eagerly "
                "(its products are traced tf.functions already)"
            )
            raise TypeError(msg)
        super()._check(v, ndim)

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
            if index == 0:
                self._warn_if_less_precise(loss.dtype)

    def _warn_if_less_precise(self, loss: Any) -> None:
        """Warn when the loss, or an op that depends on θ, computes in less precision than θ."""
        if loss.size < self.dtype.size:
            logger.warning(
                "tf_hessian: the loss is %s but the variables are %s: the Hessian is only "
                "as precise as the loss (give the Keras loss dtype=%r)",
                loss.name,
                self.dtype.name,
                self.dtype.name,
            )
            return
        traced = self._loss.get_concrete_function()
        narrowest = narrowest_dtype(traced, self._model.variables)
        if narrowest is not None and narrowest.size < self.dtype.size:
            logger.warning(
                "tf_hessian: the model computes in %s where it depends on the variables (a "
                "mixed precision dtype policy, or a cast?), but they are %s: the Hessian is only "
                "as precise as %s",
                narrowest.name,
                self.dtype.name,
                narrowest.name,
            )

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


TfHessian = TensorFlowCurvatureOperator
"""The former name of `TensorFlowCurvatureOperator`, kept for existing code."""


# ----------------------------------------------------------------------------- building


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
) -> TensorFlowCurvatureOperator:
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
    TensorFlowCurvatureOperator
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
    chunk = _check_arguments(model, data, loss_fn, variables, training, hvp, chunk_size)
    check_data(data, check_optional_bool("cache_data", cache_data), is_one_batch(data))
    check_bool("jit_compile", jit_compile)
    of_keras = is_keras(model)
    if training and not of_keras:
        msg = (
            "training=True selects the mode of Keras layers; a callable is called as model(x): "
            "build the mode into it"
        )
        raise TypeError(msg)
    # A Keras model is checked before the data is read: an unbuilt model is the likelier mistake.
    wrapped: Model | None = keras_model(model, variables, loss_fn, training) if of_keras else None
    batches = Batches(data, cache_data)
    chosen = wrapped or callable_model(model, variables, loss_fn, batches.first())
    check_variables(chosen)
    method = "forward-over-reverse" if hvp == "auto" else hvp
    op = TensorFlowCurvatureOperator(
        chosen, batches, hvp=method, chunk_size=chunk, jit_compile=jit_compile
    )
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


def _check_arguments(
    model: Any, data: Any, loss_fn: Any, variables: Any, training: Any, hvp: Any, chunk_size: Any
) -> int:
    """Raise, naming the argument, for any that `tf_hessian` cannot take; return the chunk size."""
    if not callable(model):
        msg = f"model must be a Keras model or a callable, got {type(model).__name__}"
        raise TypeError(msg)
    check_callable("loss_fn", loss_fn, "loss_fn(y_true, y_pred) -> mean loss")
    check_selection("variables", variables, "variables or their names")
    check_bool("training", training)
    check_choice("hvp", hvp, HVP_METHODS)
    if chunk_size is None:
        return DEFAULT_CHUNK_SIZE
    return check_positive_int("chunk_size", chunk_size)

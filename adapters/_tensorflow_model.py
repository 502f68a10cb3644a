"""A TensorFlow model as a loss of its variables, and the Hessian-vector products of it.

`keras_model` and `callable_model` wrap a Keras 3 model (run through
``stateless_call``) or any callable reading its own ``tf.Variable`` objects as a
`Model` with ``read()`` and ``loss(...)``; `PRODUCTS` maps each ``hvp`` method to
the function computing H t for a list of columns t on one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf
from slq.adapters._common import names_of

__all__ = [
    "PRODUCTS",
    "CallableModel",
    "KerasModel",
    "Model",
    "Tensors",
    "callable_model",
    "check_variables",
    "is_keras",
    "keras_model",
    "narrowest_dtype",
]

_ZERO = tf.UnconnectedGradients.ZERO

Tensors = list[Any]


# ----------------------------------------------------------------------------- the model


class KerasModel:
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


class CallableModel:
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


Model = KerasModel | CallableModel


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


PRODUCTS = {
    "forward-over-reverse": _forward_over_reverse,
    "double-backward": _double_backward,
}


def is_keras(model: Any) -> bool:
    if not isinstance(model, keras.Layer):
        return False
    if keras.backend.backend() != "tensorflow":
        msg = (
            f"tf_hessian needs Keras with the TensorFlow backend, but Keras runs on "
            f"{keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow before importing keras"
        )
        raise TypeError(msg)
    return True


def keras_model(
    model: Any, variables: Sequence[Any] | None, loss_fn: Callable[..., Any], training: bool
) -> KerasModel:
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
    return KerasModel(model, [positions[name] for name in names], names, loss_fn, training)


def callable_model(
    model: Any, variables: Sequence[Any] | None, loss_fn: Callable[..., Any], first: Any
) -> CallableModel:
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
    return CallableModel(model, chosen, loss_fn)


def check_variables(model: Model) -> None:
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


def _handle(variable: Any) -> Any:
    """Return the resource handle of a tf.Variable, or of the one behind a Keras variable."""
    return variable.handle if isinstance(variable, tf.Variable) else variable.value.handle


def narrowest_dtype(function: Any, variables: Sequence[Any]) -> Any:
    """Return the narrowest floating dtype of a traced tensor that depends on `variables`, or None.

    The tensors are those of the traced `function`'s graph; dependence is
    followed from the variables' captured handles through their reads, casts
    and every later op to its outputs.
    """
    graph = function.graph
    inside = {id(outer): inner for outer, inner in graph.captures}
    frontier = [inside[id(_handle(v))] for v in variables if id(_handle(v)) in inside]
    seen = {id(t) for t in frontier}
    narrowest = None
    while frontier:
        for op in frontier.pop().consumers():
            for out in op.outputs:
                if id(out) in seen:
                    continue
                seen.add(id(out))
                frontier.append(out)
                if out.dtype.is_floating and (narrowest is None or out.dtype.size < narrowest.size):
                    narrowest = out.dtype
    return narrowest

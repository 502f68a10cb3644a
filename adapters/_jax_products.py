"""The Hessian products of a JAX loss, per batch and as one traceable function.

Every program here is a module-level function of its arrays with the loss and
the column chunk static, or a frozen dataclass equal by value: operators of one
loss and chunk share their compiled programs, so an operator made again (at new
parameters during training, by every `jax_hessian` call) compiles nothing. A
jitted bound method compiled them again for each operator (0.8 s for a small
CNN on the CPU). A product is ``jax.jvp`` of ``jax.grad`` (forward over reverse),
or the tangent part of a gradient linearized once (``jax.linearize``).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = [
    "TRACES",
    "HessianProduct",
    "LinearizeBatches",
    "Programs",
    "checked_products",
    "programs",
]


class Traces(threading.local):
    """How often this thread traced a product program.

    `JaxCurvatureOperator.traces` counts the compiles its own calls caused.
    """

    count = 0


TRACES = Traces()


class Programs(NamedTuple):
    """The compiled per-batch products, shared by every operator of one loss and chunk."""

    fresh: Callable[..., tuple[Any, Any]]
    """``(loss, chunk, params, batch, tangents, weight)``: by ``jax.jvp`` of ``jax.grad``."""
    linear: Callable[..., tuple[Any, Any]]
    """``(chunk, params, linear, tangents, weight)``: by a linearized gradient."""
    linearize: Callable[..., Any]
    """``(loss, params, batch)``: the batch's gradient linearized (`jax.linearize`)."""


@functools.lru_cache(maxsize=8)
def programs(out_shardings: Any) -> Programs:
    """Return the per-batch programs whose products land with `out_shardings` (None: anywhere)."""
    out = {} if out_shardings is None else {"out_shardings": out_shardings}
    return Programs(
        jax.jit(_fresh_program, static_argnums=(0, 1), **out),
        jax.jit(_linear_program, static_argnums=(0,), **out),
        # Batches of one shape share one linear function (one compile), not their residuals.
        jax.jit(_linearized, static_argnums=(0,)),
    )


# The traced bodies: Python here runs only while tracing, so `TRACES` counts compiles.
def _fresh_program(
    loss: Any, chunk: int | None, params: Any, batch: Any, tangents: Any, weight: Any
) -> tuple[Any, Any]:
    TRACES.count += 1
    unravel = ravel_pytree(params)[1]
    return _weighted(_hvp_fresh(loss, unravel, params, batch, tangents, chunk), weight)


def _linear_program(
    chunk: int | None, params: Any, linear: Any, tangents: Any, weight: Any
) -> tuple[Any, Any]:
    TRACES.count += 1
    unravel = ravel_pytree(params)[1]
    return _weighted(_hvp_linear(linear, unravel, tangents, chunk), weight)


def _linearized(loss: Any, params: Any, batch: Any) -> Any:
    """Return the batch's gradient linearized at `params`: H_b as a linear function."""
    return jax.linearize(lambda p: jax.grad(loss)(p, batch), params)[1]


def _hvp_fresh(
    loss: Callable[[Any, Any], Any],
    unravel: Callable[[Any], Any],
    params: Any,
    batch: Any,
    tangents: Any,
    chunk: int | None,
) -> Any:
    """H_b V by `jax.jvp` of `jax.grad` on one batch: a vector (n,), or the columns of (n, k)."""
    gradient = jax.grad(loss)

    def one(t: Any) -> Any:
        return ravel_pytree(jax.jvp(lambda p: gradient(p, batch), (params,), (unravel(t),))[1])[0]

    return _columns(one, tangents, chunk)


def _hvp_linear(
    linear: Any, unravel: Callable[[Any], Any], tangents: Any, chunk: int | None
) -> Any:
    """H_b V by a batch's linearized gradient (`jax.linearize`): its tangent part only."""

    def one(t: Any) -> Any:
        return ravel_pytree(linear(unravel(t)))[0]

    return _columns(one, tangents, chunk)


@functools.lru_cache(maxsize=8)
def checked_products(out_shardings: Any) -> Callable[..., tuple[Any, Any]]:
    """Return the check's program: a batch's H V by its linearized gradient and by a fresh jvp.

    ``program(loss, chunk, params, batch, vectors)``; the loss and chunk are
    static, so operators of one loss share the compiled program.
    """
    out = {} if out_shardings is None else {"out_shardings": out_shardings}

    @functools.partial(jax.jit, static_argnums=(0, 1), **out)
    def program(loss: Any, chunk: int | None, params: Any, batch: Any, vectors: Any) -> Any:
        unravel = ravel_pytree(params)[1]
        linear = _linearized(loss, params, batch)
        return (
            _hvp_linear(linear, unravel, vectors, chunk),
            _hvp_fresh(loss, unravel, params, batch, vectors, chunk),
        )

    return program


def _columns(one: Callable[[Any], Any], tangents: Any, chunk: int | None) -> Any:
    """Apply `one` to a vector, or to every column: `chunk` columns at a time."""
    if tangents.ndim == 1:
        return one(tangents)
    if chunk is None:
        return jax.vmap(one, in_axes=1, out_axes=1)(tangents)
    return jax.lax.map(one, tangents.T, batch_size=chunk).T


def _weighted(products: Any, weight: Any) -> tuple[Any, Any]:
    """Return the batch's share of the products and whether they are all finite."""
    return weight * products, jnp.isfinite(products).all()


@dataclasses.dataclass(frozen=True)
class HessianProduct:
    """The Hessian product over cached batches as a pure function of its arrays.

    Operands: (params, batches, weights). Holds no arrays, so that compiled runs
    cached by it keep no data alive; operators of one loss, chunk and choice of
    linearized batches share their compiled runs (a new operator at new
    parameters, as during training, compiles nothing).
    """

    loss: Callable[[Any, Any], Any]
    chunk: int | None
    linearized: tuple[bool, ...]
    """Per batch: whether its gradient is linearized once per run (`jax.linearize`)."""

    def __call__(self, operands: Any, tangents: Any) -> tuple[Any, Any]:
        """Return Σ_b (N_b / N) H_b V and the finite flag of every batch, as `matmat` does.

        `operands` are those `LinearizeBatches` returns.
        """
        params, batches, linears, weights = operands
        unravel = ravel_pytree(params)[1]
        total, finite = None, []
        for b, (batch, linear) in enumerate(zip(batches, linears, strict=True)):
            if linear is not None:
                products = _hvp_linear(linear, unravel, tangents, self.chunk)
            else:
                products = _hvp_fresh(self.loss, unravel, params, batch, tangents, self.chunk)
            share, ok = _weighted(products, weights[b])
            finite.append(ok)
            total = share if total is None else total + share
        return total, jnp.stack(finite)


@dataclasses.dataclass(frozen=True)
class LinearizeBatches:
    """A run's shared work: each chosen batch's gradient linearized, once per run.

    A class equal for equal fields, not a bound method: a compiled run is cached
    by it, and a bound method compares its instance by identity, so every new
    operator (and every `slq.density`, which asks the operator again) compiled
    the whole run again.
    """

    loss: Callable[[Any, Any], Any]
    linearized: tuple[bool, ...]
    """Per batch: whether its gradient is linearized (`jax.linearize`)."""

    def __call__(self, operands: Any) -> Any:
        """Return (params, batches, linears, weights): a linear function or None per batch."""
        params, batches, weights = operands
        linears = tuple(
            _linearized(self.loss, params, batch) if chosen else None
            for batch, chosen in zip(batches, self.linearized, strict=True)
        )
        return params, batches, linears, weights

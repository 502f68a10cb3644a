"""Checks of what `jax_hessian` is given: parameters, their precision, the loss on a batch.

Parameters must be concrete floating arrays of one dtype — not values traced
inside ``jax.jit`` or ``jax.vmap``, and not float64 arrays that JAX, with its
64-bit mode off, would silently make float32 — and the loss a finite scalar.
A loss that computes in a narrower floating dtype than the parameters where it
depends on them (a model in bfloat16, a float32 cast) gets a warning: the
Hessian is then only as precise as that dtype.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core

__all__ = [
    "SLOW_IN_CPU_LOOPS",
    "check_loss",
    "check_params",
    "check_untraced",
    "narrowest_dtype",
    "slow_in_cpu_loops",
]

logger = logging.getLogger("slq")

TRANSFORMED = (
    "jax_hessian was called inside a JAX transformation (jax.jit, jax.vmap, jax.grad): "
    "build the operator and call its products outside them (it compiles its own)"
)


def check_untraced(x: Any, what: str) -> None:
    """Raise if `x` is a value traced by a JAX transformation; `what` names it in the message."""
    if isinstance(x, jax.core.Tracer):
        msg = f"{what} is a traced value: {TRANSFORMED}"
        raise TypeError(msg)


def check_params(params: Any) -> None:
    """Raise unless every leaf of `params` is a concrete floating array, all of one dtype."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    if not leaves:
        msg = "params has no array leaves: pass the pytree of parameters to differentiate"
        raise ValueError(msg)
    dtypes: dict[str, list[str]] = {}
    for path, leaf in leaves:
        name = jax.tree_util.keystr(path) or "params"
        check_untraced(leaf, f"params leaf {name}")
        if not hasattr(leaf, "dtype") or not hasattr(leaf, "shape"):
            msg = f"params leaf {name} is a {type(leaf).__name__}, not an array"
            raise TypeError(msg)
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            msg = f"params leaf {name} has dtype {leaf.dtype}: parameters must be floating point"
            raise TypeError(msg)
        if jax.dtypes.canonicalize_dtype(leaf.dtype) != leaf.dtype:
            msg = (
                f"params leaf {name} is {leaf.dtype}, which JAX would make "
                f"{jax.dtypes.canonicalize_dtype(leaf.dtype)} (its 64-bit mode is off): "
                "enable it with jax.config.update('jax_enable_x64', True), or pass float32"
            )
            raise TypeError(msg)
        dtypes.setdefault(str(leaf.dtype), []).append(name)
    if len(dtypes) > 1:
        found = "; ".join(f"{dtype} ({', '.join(names)})" for dtype, names in dtypes.items())
        msg = (
            f"params leaves must share one dtype, got {found}: their flat vector would be of "
            "one of them; cast them to one (jax.tree.map(lambda p: p.astype(...), params))"
        )
        raise TypeError(msg)


def check_loss(loss_fn: Callable[[Any, Any], Any], params: Any, batch: Any) -> Any:
    """Raise unless the loss on `batch` is a finite scalar; warn if it is less precise than θ.

    The loss's jaxpr is searched for a narrower dtype (`narrowest_dtype`) and
    the loss evaluated jitted: evaluated eagerly, each of its operations was
    compiled on its own, 1 s of a first `jax_hessian` (MLP, 2-core CPU);
    ``jax.jit`` of the same loss compiles it once per process. Returns the
    jaxpr, for `slow_in_cpu_loops`.
    """
    closed = jax.make_jaxpr(loss_fn)(params, batch)
    loss = jax.jit(loss_fn)(params, batch)
    if np.ndim(loss) != 0:
        msg = f"loss_fn must return a scalar (the batch mean), got shape {np.shape(loss)}"
        raise ValueError(msg)
    if not math.isfinite(float(loss)):
        msg = f"the loss is {float(loss)} on batch 0: check the data and the parameters"
        raise FloatingPointError(msg)
    leaves = jax.tree_util.tree_leaves(params)
    dtype = np.dtype(leaves[0].dtype)
    narrowest = narrowest_dtype(closed, len(leaves))
    if narrowest is not None and narrowest.itemsize < dtype.itemsize:
        logger.warning(
            "jax_hessian: the loss computes in %s where it depends on the parameters, but they "
            "are %s: the Hessian is only as precise as %s",
            narrowest,
            dtype,
            narrowest,
        )
    return closed


SLOW_IN_CPU_LOOPS = frozenset({"conv_general_dilated"})
"""Primitives that XLA's CPU backend runs several times slower inside a loop's body.

It gives a convolution its fast (Eigen) form only where it may choose the
operands' layouts, which a while loop's body fixes (jax-ml/jax#12868, open).
Measured on a 4-8-channel CNN's Hessian product (digits, float64, 2 cores):
11.0 ms as its own program, 29.8 ms inside a ``fori_loop``; a 64-200-10 MLP's,
3.9 and 4.0 ms."""


def slow_in_cpu_loops(closed: Any) -> bool:
    """Return whether the jaxpr `closed`, or one inside it, uses a `SLOW_IN_CPU_LOOPS` primitive.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from slq.adapters._jax_checks import slow_in_cpu_loops
    >>> conv = lambda x: jax.lax.conv(x, jnp.ones((1, 1, 2, 2)), (1, 1), "VALID").sum()
    >>> slow_in_cpu_loops(jax.make_jaxpr(jax.jit(conv))(jnp.ones((1, 1, 3, 3))))
    True
    >>> slow_in_cpu_loops(jax.make_jaxpr(jnp.sum)(jnp.ones(3)))
    False
    """
    return _uses(closed.jaxpr, SLOW_IN_CPU_LOOPS)


def _uses(jaxpr: Any, names: frozenset[str]) -> bool:
    return any(
        eqn.primitive.name in names or any(_uses(sub, names) for sub in _subjaxprs(eqn))
        for eqn in jaxpr.eqns
    )


def narrowest_dtype(closed: Any, count: int) -> Any:
    """Return the narrowest floating dtype of a value of a jaxpr that depends on its first inputs.

    `closed` is the loss's jaxpr, ``jax.make_jaxpr(loss_fn)(params, batch)``,
    whose first `count` inputs are the parameters' leaves. Dependence is
    followed from them through every equation, into sub-jaxprs (``jit``,
    ``cond``, ``scan``...); None if no value that depends on them is floating.
    """
    flags = [i < count for i in range(len(closed.jaxpr.invars))]
    return _narrowest(closed.jaxpr, flags)


def _narrowest(jaxpr: Any, dependent_inputs: list[bool]) -> Any:
    dependent = {v for v, d in zip(jaxpr.invars, dependent_inputs, strict=True) if d}
    narrowest = None
    for eqn in jaxpr.eqns:
        flags = [not isinstance(v, core.Literal) and v in dependent for v in eqn.invars]
        if not any(flags):
            continue
        for sub in _subjaxprs(eqn):
            inner = flags if len(sub.invars) == len(flags) else [True] * len(sub.invars)
            narrowest = _narrower(narrowest, _narrowest(sub, inner))
        for v in eqn.outvars:
            dependent.add(v)
            narrowest = _narrower(narrowest, getattr(v.aval, "dtype", None))
    return narrowest


def _subjaxprs(eqn: Any) -> Iterator[Any]:
    for sub in core.jaxprs_in_params(eqn.params):
        yield getattr(sub, "jaxpr", sub)  # a ClosedJaxpr's, or a Jaxpr itself


def _narrower(a: Any, b: Any) -> Any:
    if b is None or not jnp.issubdtype(b, jnp.floating):
        return a
    return b if a is None or np.dtype(b).itemsize < np.dtype(a).itemsize else a

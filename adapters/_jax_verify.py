"""Checks that a linearized JAX gradient gives the Hessian, before an operator trusts it.

``jax.linearize`` evaluates the gradient once and keeps its residuals, so that
every later product costs only the tangent pass. That is exact for a pure loss,
but a loss is user code: one that reads Python state, calls back to the host
(``jax.pure_callback``) or carries a ``custom_jvp`` rule that disagrees with its
derivative gives a linear function that is not the Hessian, with nothing to say
so. As the torch adapter does (`slq.adapters._torch_verify`), the linearized
product is compared, when the operator is built, with an independent fresh
product — ``jax.jvp`` of ``jax.grad`` on the same batch — on a seeded vector,
and two of its products of that vector must be identical. A path that fails is
dropped, with one log line saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from slq.adapters._common import product_tolerance

__all__ = ["linearized_disagreement", "seeded_vector"]


def seeded_vector(n: int, dtype: Any, device: Any) -> Any:
    """Return a fixed standard normal vector of length n.

    One vector, not a batch: the linearized and the fresh product are both
    exact transforms of the loss, and a batch of columns (``jax.lax.map`` on a
    CPU) made the check's program 2-3x dearer to compile and run.
    """
    values = np.random.default_rng(0).standard_normal(n)
    return jax.device_put(jnp.asarray(values, dtype=dtype), device)


def _relative_difference(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    den = float(np.linalg.norm(b))
    num = float(np.linalg.norm(a - b))
    return num / den if den > 0 else num


def linearized_disagreement(products: Callable[[], tuple[Any, Any]], dtype: Any) -> str | None:
    """Return why the linearized product cannot be trusted, or None if it passes.

    `products` returns the seeded vector's products by the linearized gradient
    and by a fresh ``jvp`` of ``grad``. It is called twice: the check passes when
    the two linearized products are identical, bit for bit, and agree with the
    fresh one to `product_tolerance` of the dtype.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slq.adapters._jax_verify import linearized_disagreement
    >>> right = lambda: (jnp.ones((3, 2)), jnp.ones((3, 2)))
    >>> linearized_disagreement(right, jnp.float32) is None
    True
    >>> linearized_disagreement(lambda: (2 * jnp.ones((3, 2)), jnp.ones((3, 2))), jnp.float32)
    'it differs from a fresh jvp of grad product by 1.0e+00 (relative; at most 5e-03 allowed)'
    """
    try:
        first, reference = (np.asarray(x) for x in products())
        second = np.asarray(products()[0])
    except Exception as err:  # a loss JAX cannot linearize raises many kinds
        return f"it failed: {err}"
    if not np.array_equal(first, second, equal_nan=True):
        return "two products of one vector differ"
    limit = product_tolerance(float(jnp.finfo(dtype).eps))
    difference = _relative_difference(first, reference)
    if not difference <= limit:  # NaN fails too
        return (
            f"it differs from a fresh jvp of grad product by {difference:.1e} "
            f"(relative; at most {limit:.0e} allowed)"
        )
    return None

"""Checks that a fast torch product path gives the Hessian, before an operator trusts it.

Reusing per-batch state (a linearized gradient, a retained graph) or a compiled
product makes every product cheaper, but such a path can be wrong for some models
while a fresh product is right: ``torch.func.linearize`` once replayed in-place
ops on its folded constants, so every call drifted further (see
`linearized_hessian`). A silently wrong Hessian is the worst bug this library can
have, so each such path is compared, when the operator is built, with a fresh,
independent product on seeded vectors — double backward through a new graph, the
plainest use of autograd — and two of its products of one vector must be
identical. A path that fails is dropped, with one log line saying why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from slq.adapters._common import product_tolerance
from slq.adapters._torch_func import (
    FunctionalModel,
    Tangents,
    forward_over_reverse,
    gradient_graph,
    vjp_of_gradient,
)

__all__ = ["Check", "disagreement", "reference_check", "tolerance"]

logger = logging.getLogger("slq")

NUM_VECTORS = 2
"""Vectors per check: two, so that vmapped (batched) paths are exercised too."""


class Check(NamedTuple):
    """Seeded vectors and their fresh products on the first batch: what a fast path must give."""

    batch: Any  # the first batch
    tangents: Tangents  # NUM_VECTORS seeded vectors, {name: (k, *shape)}
    reference: Tangents  # their products by `method`, computed fresh
    method: str  # "double-backward", or "forward-over-reverse" where autograd cannot
    double_backward_error: Exception | None  # why double backward is unavailable, if it is


def tolerance(dtype: torch.dtype) -> float:
    """Return the relative difference allowed between exact products of `dtype`.

    See `slq.adapters._common.product_tolerance`.

    Examples
    --------
    >>> import torch
    >>> from slq.adapters._torch_verify import tolerance
    >>> tolerance(torch.float64) < 1e-7 < tolerance(torch.float32) < 1e-2
    True
    """
    return product_tolerance(torch.finfo(dtype).eps)


def _seeded_tangents(fm: FunctionalModel) -> Tangents:
    generator = torch.Generator().manual_seed(0)
    return {
        name: torch.randn(NUM_VECTORS, *t.shape, generator=generator, dtype=t.dtype).to(t.device)
        for name, t in fm.primal.items()
    }


def reference_check(fm: FunctionalModel, batch: Any, chunk: int | None) -> Check:
    """Return seeded vectors and their fresh products, by double backward where it runs."""
    tangents = _seeded_tangents(fm)
    try:
        # One column at a time through a new graph: no vmap, nothing kept from before.
        graph = gradient_graph(fm, batch)
        reference = vjp_of_gradient(graph, fm.names, tangents, retain=True)
        return Check(batch, tangents, reference, "double-backward", None)
    except RuntimeError as err:  # an op without a second derivative
        reference = forward_over_reverse(fm, batch, tangents, chunk)
        return Check(batch, tangents, reference, "forward-over-reverse", err)


def _relative_difference(a: Tangents, b: Tangents) -> float:
    num = sum(float(torch.sum((a[n].double() - b[n].double()) ** 2)) for n in b)
    den = sum(float(torch.sum(b[n].double() ** 2)) for n in b)
    return math.sqrt(num / den) if den > 0 else math.sqrt(num)


def disagreement(product: Callable[[Tangents], Tangents], check: Check) -> str | None:
    """Return why `product` cannot be trusted, or None if it passes the check.

    It passes when two products of the seeded vectors are identical, bit for bit,
    and agree with the fresh reference to `tolerance`.
    """
    try:
        first, second = product(check.tangents), product(check.tangents)
    except Exception as err:  # torch.func raises many kinds for models it cannot trace
        return f"it failed: {err}"
    if any(not torch.equal(first[n], second[n]) for n in first):
        return "two products of one vector differ"
    limit = tolerance(next(iter(first.values())).dtype)
    difference = _relative_difference(first, check.reference)
    if not difference <= limit:  # NaN fails too
        return (
            f"it differs from a fresh {check.method} product by {difference:.1e} "
            f"(relative; at most {limit:.0e} allowed)"
        )
    return None

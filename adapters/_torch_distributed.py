"""Data-parallel torch curvature products: each rank holds a shard, all get the full product.

The operator of `torch_hessian(..., distributed=True)` is (1/N) Σ_b N_b H_b over
the batches of every rank's shard, N the global number of examples. Each rank
sums N_b H_b v over its own batches; one ``all_reduce(SUM)`` per product adds the
ranks' sums, so every rank holds the same full-data product and runs the same
Lanczos iteration (the data-parallel reduction of distributed training, applied
to Hessian-vector products).

Every rank must call the same collectives in the same order: a rank that fails
to build its operator still takes part in the one construction collective,
which tells every rank that the build failed, and a non-finite product is
reduced like any other before every rank raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

import torch
import torch.distributed as dist

__all__ = ["Shard", "build_together", "describe", "process_group", "reduce_sum"]

T = TypeVar("T")


class Shard(NamedTuple):
    """A rank's place in the process group, and the global data counts.

    Examples
    --------
    >>> from slq.adapters._torch_distributed import Shard, describe
    >>> describe(Shard(rank=1, world_size=2, num_examples=100, num_batches=4))
    ', rank 1 of 2'
    """

    rank: int
    world_size: int
    num_examples: int  # N over every rank's shard
    num_batches: int  # batches over every rank's shard


def process_group() -> tuple[int, int]:
    """Return (rank, world size) of the default process group; raise if there is none.

    Examples
    --------
    >>> from slq.adapters._torch_distributed import process_group
    >>> process_group()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: distributed=True needs an initialised torch.distributed process group ...
    """
    if not (dist.is_available() and dist.is_initialized()):
        msg = (
            "distributed=True needs an initialised torch.distributed process group "
            "(e.g. launched with torchrun)"
        )
        raise ValueError(msg)
    return dist.get_rank(), dist.get_world_size()


def _collective_device() -> torch.device:
    """Where the construction collective runs: NCCL reduces CUDA tensors only."""
    if "nccl" in str(dist.get_backend()).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def build_together(
    build: Callable[[], T], counts: Callable[[T], tuple[int, int]]
) -> tuple[T, Shard]:
    """Run `build` on this rank, then agree with every rank on success and on the data counts.

    `counts(result)` gives this rank's (examples, batches). One ``all_reduce``
    adds them over the ranks, together with a failure flag per rank, so that a
    rank whose build raised (an empty shard, a NaN loss) re-raises its own error
    and every other rank raises instead of waiting for it in a later collective.

    Examples
    --------
    >>> from slq.adapters._torch_distributed import build_together
    >>> build_together(lambda: 1, lambda r: (r, r))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: distributed=True needs an initialised torch.distributed process group ...
    """
    rank, world_size = process_group()
    result: T | None = None
    error: Exception | None = None
    try:
        result = build()
    except Exception as err:  # re-raised below, once every rank knows
        error = err
    flags = torch.zeros(world_size + 2, dtype=torch.int64, device=_collective_device())
    if error is None:
        examples, batches = counts(result)  # type: ignore[arg-type]  # set when no error
        flags[world_size], flags[world_size + 1] = examples, batches
    else:
        flags[rank] = 1
    dist.all_reduce(flags, op=dist.ReduceOp.SUM)
    if error is not None:
        raise error
    failed = [r for r in range(world_size) if int(flags[r]) != 0]
    if failed:
        msg = (
            f"building the distributed operator failed on rank(s) {failed} (see their errors); "
            "every rank needs at least one batch of data"
        )
        raise RuntimeError(msg)
    shard = Shard(rank, world_size, int(flags[world_size]), int(flags[world_size + 1]))
    return result, shard  # type: ignore[return-value]  # set when no error


def reduce_sum(flat: torch.Tensor) -> torch.Tensor:
    """Sum `flat` over the ranks in place and return it: one collective, identical on every rank.

    Examples
    --------
    >>> import torch
    >>> from slq.adapters._torch_distributed import reduce_sum
    >>> reduce_sum(torch.ones(2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: distributed=True needs an initialised torch.distributed process group ...
    """
    process_group()
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return flat


def describe(shard: Shard | None) -> str:
    """Say in a few words which rank of how many, for a repr ('' when not distributed).

    Examples
    --------
    >>> from slq.adapters._torch_distributed import describe
    >>> describe(None)
    ''
    """
    return "" if shard is None else f", rank {shard.rank} of {shard.world_size}"

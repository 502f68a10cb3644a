"""Data-parallel torch curvature products: each rank holds a shard, all get the full product.

The operator of `torch_hessian(..., distributed=True)` is (1/N) Σ_b N_b H_b over
the batches of every rank's shard, N the global number of examples. Each rank
sums N_b H_b v over its own batches; one ``all_reduce(SUM)`` per product adds the
ranks' sums, so every rank holds the same full-data product and runs the same
Lanczos iteration (the data-parallel reduction of distributed training, applied
to Hessian-vector products).

Every rank must call the same collectives in the same order: a rank that fails
to build its operator still takes part in each construction collective, which
tells every rank that the build failed, and a non-finite product is reduced
like any other before every rank raises. A Hessian takes two construction
collectives: the first sends rank 0's product plan (`from_rank0`), the second
adds the data counts (`build_together`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "Shard",
    "build_together",
    "describe",
    "from_rank0",
    "process_group",
    "reduce_sum",
]

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


def _run_together(
    step: Callable[[], T], share: Callable[[T], Sequence[int]], width: int
) -> tuple[T, list[int]]:
    """Run `step` on this rank, then one ``all_reduce`` of a failure flag per rank and `share`.

    Returns the result and the sums over the ranks of `share(result)` (`width`
    integers). A rank whose step raised re-raises its own error once every rank
    knows; the others raise a RuntimeError naming it.
    """
    rank, world_size = process_group()
    result: T | None = None
    values: Sequence[int] = (0,) * width
    error: Exception | None = None
    try:
        result = step()
        values = share(result)
    except Exception as err:  # re-raised below, once every rank knows
        error = err
    flags = torch.zeros(world_size + width, dtype=torch.int64, device=_collective_device())
    if error is None:
        flags[world_size:] = torch.tensor(list(values), dtype=torch.int64)
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
    return result, [int(x) for x in flags[world_size:].tolist()]  # type: ignore[return-value]


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
    result, (examples, batches) = _run_together(build, counts, 2)
    return result, Shard(rank, world_size, examples, batches)


def from_rank0(step: Callable[[], T], choose: Callable[[T], int]) -> tuple[T, int]:
    """Run `step` on every rank and give every rank rank 0's ``choose(result)`` (an int >= 0).

    What rank 0 measured (which product method is fastest) then decides for
    every rank, so that timing noise cannot make ranks differ. `choose` is
    called on rank 0 only. One ``all_reduce``, with the failure flags of
    `build_together`: a rank whose step raised fails every rank.

    Examples
    --------
    >>> from slq.adapters._torch_distributed import from_rank0
    >>> from_rank0(lambda: 1, lambda r: r)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: distributed=True needs an initialised torch.distributed process group ...
    """
    rank, _ = process_group()
    result, (chosen,) = _run_together(step, lambda r: (choose(r) if rank == 0 else 0,), 1)
    return result, chosen


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

"""`slq.memory_estimate`: how many bytes a `density` run holds, before running it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from slq._backends import accumulation_dtype
from slq._batch_split import part_sizes, trial_plan
from slq._reorthogonalization import REORTHOGONALIZE, Policy, policy
from slq._validate import check_bool, check_choice, check_non_negative_int, check_positive_int
from slq.operator import as_operator

__all__ = ["MemoryEstimate", "check_max_memory", "largest_fitting_batch", "memory_estimate"]

# The same defaults as `slq.density` (a test keeps them equal); not imported from
# there because `slq.density` imports this module.
_DEFAULT_NUM_STEPS = 90
_DEFAULT_NUM_PROBES = 10

# Working (b, n) arrays alive at a step's peak, counted from `slq._lanczos.run_batch` and
# `_residual`: the batch's start vectors (held by the caller), q_j, q_{j-1}, the
# previous step's residual (still bound in the loop) and the new product A q_j ...
_LIVE_VECTORS = 5
# ... plus the temporaries of the update of A q_j, which the policy counts
# (`Policy.update_temporaries`).
# With the basis offloaded, the host holds a copy of the new vector and the three
# Gram–Schmidt temporaries, and the device only runs the three-term recurrence.
_OFFLOAD_HOST_VECTORS = 4
# Inner products are taken on copies of q_j and A q_j cast to the accumulation dtype
# (float64) when the vectors are narrower; the copy of q_j lives through the update,
# beside its temporaries.
_ACCUMULATION_COPIES = 2
# Host float64 coefficient arrays per probe and step: α and β per batch, then
# concatenated for the result.
_HOST_COEFFICIENTS = 4
_FLOAT64_BYTES = 8


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a `density` run holds at its peak, part by part.

    Counts the arrays slq itself allocates; not the operator's own memory (its
    matrix, a model's parameters, or the autograd graph an adapter keeps while
    it computes a Hessian-vector product), nor the interpreter or framework.
    With a GPU, `basis` and `vectors` are device memory and `host` is CPU memory.

    Examples
    --------
    >>> from slq.memory import MemoryEstimate
    >>> estimate = MemoryEstimate(1000, 10, 2, 2, 8, 8, "full", 160_000, 128_000, 16_640)
    >>> estimate.total
    304640
    """

    n: int
    """The operator's dimension."""
    num_steps: int
    """m, Lanczos steps per probe (capped at n)."""
    num_probes: int
    """k, probes in the whole run."""
    batch: int
    """b, probes run at once."""
    itemsize: int
    """Bytes per number of the operator's dtype (4 for float32)."""
    accumulation_itemsize: int
    """Bytes per number of the dtype inner products are accumulated in."""
    reorthogonalize: str
    """``"full"``, ``"partial"`` or ``"none"``."""
    basis: int
    """The stored Lanczos vectors: b·m·n numbers, 0 with ``"none"``."""
    vectors: int
    """The working (b, n) vectors and temporaries of one step at its peak."""
    host: int
    """Host arrays besides the basis: the batch's float64 probes (b·n), the
    coefficients (k·m), and with `offload_basis` the host copies of vectors."""
    offload_basis: bool = False
    """Whether the basis is in host memory rather than on the operator's device."""

    def __post_init__(self) -> None:
        for name in ("n", "num_steps", "num_probes", "batch", "itemsize", "accumulation_itemsize"):
            check_positive_int(name, getattr(self, name))
        for name in ("basis", "vectors", "host"):
            check_non_negative_int(name, getattr(self, name))
        check_choice("reorthogonalize", self.reorthogonalize, REORTHOGONALIZE)
        check_bool("offload_basis", self.offload_basis)

    @property
    def total(self) -> int:
        """Bytes in all: ``basis + vectors + host``."""
        return self.basis + self.vectors + self.host

    @property
    def device_bytes(self) -> int:
        """Bytes on the operator's device: the vectors, and the basis unless offloaded.

        Examples
        --------
        >>> from slq.memory import MemoryEstimate
        >>> e = MemoryEstimate(1000, 10, 2, 2, 8, 8, "full", 160_000, 128_000, 16_640, True)
        >>> e.device_bytes, e.host_bytes
        (128000, 176640)
        """
        return self.vectors + (0 if self.offload_basis else self.basis)

    @property
    def host_bytes(self) -> int:
        """Bytes in host memory: `host`, and the basis if offloaded (see `device_bytes`)."""
        return self.host + (self.basis if self.offload_basis else 0)

    def describe(self) -> str:
        """Return the estimate as a small table in KiB, MiB or GiB.

        Examples
        --------
        >>> from slq.memory import MemoryEstimate
        >>> print(MemoryEstimate(1000, 10, 2, 2, 8, 8, "none", 0, 112_000, 16_640).describe())
        n=1000, 10 steps, 2 probes in batches of 2, 8-byte numbers, reorthogonalize='none'
          basis            0 B
          vectors    109.4 KiB
          host        16.2 KiB
          total      125.6 KiB
        """
        header = (
            f"n={self.n}, {self.num_steps} steps, {self.num_probes} probes in batches of "
            f"{self.batch}, {self.itemsize}-byte numbers, reorthogonalize={self.reorthogonalize!r}"
        )
        if self.offload_basis:
            header += ", offload_basis=True (the basis is in host memory)"
        parts = {"basis": self.basis, "vectors": self.vectors, "host": self.host}
        rows = [f"  {name:<8}{format_bytes(size):>12}" for name, size in parts.items()]
        return "\n".join([header, *rows, f"  {'total':<8}{format_bytes(self.total):>12}"])

    def __str__(self) -> str:
        return self.describe()


def format_bytes(size: float) -> str:
    """Return a byte count in binary units, e.g. ``"3.4 GiB"``.

    Examples
    --------
    >>> from slq.memory import format_bytes
    >>> format_bytes(512), format_bytes(3 * 2**30)
    ('512 B', '3.0 GiB')
    """
    unit = "B"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024:
            break
        size, unit = size / 1024, larger
    return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"


def memory_estimate(
    op: Any,
    /,
    num_steps: int = _DEFAULT_NUM_STEPS,
    num_probes: int = _DEFAULT_NUM_PROBES,
    *,
    reorthogonalize: str = "full",
    offload_basis: bool = False,
    probe_batch_size: int | None = None,
) -> MemoryEstimate:
    r"""Estimate the memory a `density` run with these settings holds at its peak.

    Arithmetic on the array shapes, no product with the operator. With b probes
    per batch, m steps, dimension n and s bytes per number (4 for float32):

    - ``basis``: the Lanczos vectors kept for full or partial
      reorthogonalisation, b·m·n·s; 0 with ``reorthogonalize="none"``. On the
      operator's device, or in host memory with `offload_basis`. Where a batch
      of full reorthogonalisation may be split into parts by measurement (the
      default batch, numpy, torch and other libraries that write through views;
      see the docs' "Batches split by measurement"), also the basis one part
      copies as it runs on alone: p·m·n·s for parts of p probes (and in
      ``vectors``, the parts' own working vectors, b·n·s).
    - ``vectors``: the (b, n) working arrays of one step at its peak. Five live
      throughout (start vectors, q_j, q_{j−1}, the previous residual and A q_j);
      the update adds three temporaries for Gram–Schmidt twice (``"full"``, and
      ``"partial"``'s local pass), two for the three-term recurrence
      (``"none"``, or any option with `offload_basis`); when the vectors are
      narrower than float64, the inner products are taken on two float64 copies
      besides. So 8·b·n·s (float64, "full"), 7·b·n·s (float64, "none"), or
      8·b·n·s + 2·b·n·8 (float32, "full").
    - ``host``: the batch's probes drawn as float64 on the host, b·n·8, the
      float64 coefficients, 4·k·m·8, with ``"partial"`` its estimates of the
      loss of orthogonality, 4·b·m·8, and with `offload_basis` a host copy of
      the new vectors and the Gram–Schmidt temporaries, 4·b·n·s.

    `device_bytes` and `host_bytes` split the total by where it lives.

    The counts follow the numpy code path and are checked against `tracemalloc`
    in the tests (within a few percent at n = 20000). Other libraries allocate
    alike, but their allocators may hold freed buffers for reuse; TensorFlow
    briefly copies one block of 16 stored rows as it appends a vector.

    Parameters
    ----------
    op
        A symmetric operator: anything `aslinearoperator` accepts. Only its
        shape and dtype are read.
    num_steps : int, default 90
        m, Lanczos steps per probe; capped at n, as in `density`.
    num_probes : int, default 10
        k, the number of probes.
    reorthogonalize : {"full", "partial", "none"}
        See `lanczos`.
    offload_basis : bool, default False
        Count the basis in host memory (see `lanczos`).
    probe_batch_size : int, optional
        b, probes run at once; default all k. The basis and the working vectors
        scale with b, not k.

    Returns
    -------
    MemoryEstimate
        Bytes per part and in ``total``; ``print`` it for a table.

    Notes
    -----
    Not included: the operator's own memory, e.g. a dense matrix, a model's
    parameters, or the autograd graph an adapter keeps for every batch of
    Hessian-vector products, which can exceed everything counted here.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.memory import memory_estimate
    >>> op = slq.aslinearoperator(lambda v: v, shape=(10**6, 10**6), dtype=np.float32)
    >>> full = memory_estimate(op, 90, 10)
    >>> print(full)
    n=1000000, 90 steps, 10 probes in batches of 10, 4-byte numbers, reorthogonalize='full'
      basis        3.7 GiB
      vectors    495.9 MiB
      host        76.3 MiB
      total        4.2 GiB

    Of the basis, 0.34 GiB is the copy a part of one probe makes, should slq split
    the batch by measurement; a batch size of the user's is never split:

    >>> format(memory_estimate(op, 90, 10, probe_batch_size=10).basis / 2**30, ".1f")
    '3.4'
    >>> none = memory_estimate(op, 90, 10, reorthogonalize="none")
    >>> none.basis, format(none.total / 2**20, ".0f")
    (0, '496')

    The basis in host memory leaves the device O(b·n) numbers:

    >>> offloaded = memory_estimate(op, 90, 10, offload_basis=True)
    >>> format(offloaded.device_bytes / 2**20, ".0f"), format(offloaded.host_bytes / 2**30, ".1f")
    ('420', '3.6')
    """
    k = check_positive_int("num_probes", num_probes)
    b = k if probe_batch_size is None else check_positive_int("probe_batch_size", probe_batch_size)
    chosen = probe_batch_size is not None
    return _run_estimate(op, num_steps, k, reorthogonalize, offload_basis, b, may_split=not chosen)


def _run_estimate(
    op: Any,
    num_steps: int,
    k: int,
    name: str,
    offload_basis: bool,
    b: int,
    *,
    may_split: bool,
    private_bases: bool = True,
) -> MemoryEstimate:
    """`memory_estimate` for batches of b; `may_split`: slq picks the batch size (no user's).

    `private_bases`: the parts of a split batch copy their bases (see `BatchSplit`).
    """
    op = as_operator(op)
    n = op.shape[0]
    m = min(check_positive_int("num_steps", num_steps), n)
    chosen = policy(name)
    check_bool("offload_basis", offload_basis)
    itemsize = _itemsize(op.xp, op.dtype)
    acc = _itemsize(op.xp, accumulation_dtype(op.xp, op.device, op.dtype))
    b = min(b, k)
    split = may_split and _splits(op, chosen, offload_basis)
    part = _part_probes(b, m, n, itemsize) if split else 0
    estimate = _estimate(n, m, k, b, itemsize, acc, chosen, offload_basis)
    if not part:
        return estimate
    # The parts' own working vectors until they rejoin, one (b, n) array more; and
    # the copy of one part's basis.
    copy = part * m * n * itemsize if private_bases else 0
    vectors = estimate.vectors + b * n * itemsize
    return dataclasses.replace(estimate, basis=estimate.basis + copy, vectors=vectors)


def _splits(op: Any, chosen: Policy, offload_basis: bool) -> bool:
    """Whether a batch of `op` may be split into parts that share its basis (`_batch_split`)."""
    if offload_basis or not chosen.projects_every_step:
        return False
    backend = op.backend
    basis = backend.new_basis((2, 1, 1), op.dtype, op.device)
    return backend.probe_rows(basis, 0, 1) is not None


def _part_probes(b: int, m: int, n: int, itemsize: int) -> int:
    """Probes of the largest part a split batch of b may run alone, in a basis of its own."""
    trial = trial_plan(b, m, n, itemsize)
    if trial is None:
        return 0
    return part_sizes(b, trial.parts)[0]


def _itemsize(xp: Any, dtype: Any) -> int:
    # `finfo(...).bits` is the array API's portable way to a dtype's size.
    return int(xp.finfo(dtype).bits) // 8


def _estimate(
    n: int,
    m: int,
    k: int,
    b: int,
    itemsize: int,
    acc: int,
    reorthogonalize: Policy,
    offload_basis: bool,
) -> MemoryEstimate:
    """Return the estimate for b of k probes, m steps, dimension n (see `memory_estimate`)."""
    stores = reorthogonalize.stores_basis
    offload = offload_basis and stores
    basis = b * m * n * itemsize if stores else 0
    # With the basis offloaded the device runs only the three-term recurrence.
    temporaries = policy("none" if offload else reorthogonalize.name).update_temporaries
    casts = _ACCUMULATION_COPIES * acc if acc != itemsize else 0
    vectors = b * n * (_LIVE_VECTORS * itemsize + temporaries * itemsize + casts)
    host = b * n * _FLOAT64_BYTES + _HOST_COEFFICIENTS * k * m * _FLOAT64_BYTES
    host += reorthogonalize.host_numbers_per_step * b * m * _FLOAT64_BYTES
    if offload:
        host += _OFFLOAD_HOST_VECTORS * b * n * itemsize
    name = reorthogonalize.name
    return MemoryEstimate(n, m, k, b, itemsize, acc, name, basis, vectors, host, offload)


def check_max_memory(
    max_memory: int | None,
    op: Any,
    num_steps: int,
    num_probes: int,
    reorthogonalize: str,
    batch: int,
    offload_basis: bool = False,
    *,
    may_split: bool = False,
) -> bool:
    """Raise if a `density` run is estimated to need more than `max_memory` bytes.

    Called before any product; `op` is the checked operator, `num_steps` already
    capped at n, `batch` the planned probe batch size, `may_split` whether the
    run may split its batches by measurement (the user chose no batch size).
    Return whether parts of a split batch may run in bases of their own: False
    where only that copy would not fit (the parts then go on in the batch's
    basis, slower but within `max_memory`).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.memory import check_max_memory
    >>> check_max_memory(10**6, np.eye(10), 5, 4, "full", 4)
    True
    """
    if max_memory is None:
        return True
    budget = check_positive_int("max_memory", max_memory)
    k = check_positive_int("num_probes", num_probes)
    # A split batch's copies first, then without them: the parts go on in its basis.
    for private_bases in (True, False) if may_split else (True,):
        estimate = _run_estimate(
            op,
            num_steps,
            k,
            reorthogonalize,
            offload_basis,
            batch,
            may_split=may_split,
            private_bases=private_bases,
        )
        if estimate.total <= budget:
            return private_bases
    msg = (
        f"max_memory={budget} bytes ({format_bytes(budget)}) is below the estimated "
        f"{estimate.total} bytes ({format_bytes(estimate.total)}) for a batch of "
        f"{estimate.batch} probes x {estimate.num_steps} steps at n={estimate.n}, "
        f"reorthogonalize={reorthogonalize!r}; {_what_fits(op, estimate, budget)}"
    )
    raise ValueError(msg)


def _what_fits(op: Any, estimate: MemoryEstimate, budget: int) -> str:
    """Return advice: the largest batch that fits, or reorthogonalize="none", or neither."""
    options = []
    batch = largest_fitting_batch(
        lambda b: _again(estimate, b, estimate.reorthogonalize).total <= budget,
        estimate.batch - 1,
    )
    if batch:
        options.append(f"probe_batch_size={batch} fits")
    none = _again(estimate, estimate.batch, "none")
    if estimate.reorthogonalize != "none" and none.total <= budget:
        options.append(f'reorthogonalize="none" fits ({format_bytes(none.total)})')
    if not options:
        return (
            "even one probe at a time does not fit: lower num_steps or num_probes (the "
            "coefficients of every probe are kept), or raise max_memory"
        )
    return " and ".join(options) + " (see slq.memory_estimate)"


def largest_fitting_batch(fits: Callable[[int], bool], upper: int) -> int:
    """Return the largest b in [1, upper] with ``fits(b)``, or 0 if none does.

    Bisection, so O(log upper) calls: memory grows with the batch size, so
    `fits` is true up to some b and false beyond it. A run of 10⁹ probes is
    planned in some 30 estimates, not 10⁹.

    Examples
    --------
    >>> from slq.memory import largest_fitting_batch
    >>> largest_fitting_batch(lambda b: 3 * b + 5 <= 100, 10**9)
    31
    """
    low, high = 0, upper  # fits(low) holds, or low is 0; the answer lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _again(e: MemoryEstimate, batch: int, reorthogonalize: str) -> MemoryEstimate:
    """Return the estimate `e` redone for another batch size or reorthogonalisation."""
    n, m, k, s, acc = e.n, e.num_steps, e.num_probes, e.itemsize, e.accumulation_itemsize
    return _estimate(n, m, k, batch, s, acc, policy(reorthogonalize), e.offload_basis)

"""Lanczos batch size by measurement: a batch of probes split into parts where they run faster.

A batch advances k probes together, one ``matmat`` a step, then a Gram–Schmidt
pass of each probe against its own stored basis. Where products dominate
(a dense GEMM, a network's batched HVP), one batch is fastest. Where they are
cheap, the passes dominate, and a part of a few probes is faster per probe:
its basis stays in the cache from one step to the next, where a whole batch's
basis (k (j+1) n numbers at step j) is read from memory at every step.

So a batch whose basis would outgrow `CACHE_BYTES` runs a fixed schedule of
trials (`Trial`), each `WINDOW` steps: `TRIAL_STEPS` steps whole, then
`TRIAL_STEPS` + 1 as two parts (the first of a candidate size, its basis
within `CACHE_BYTES`), then `TRIAL_STEPS` whole again. The first part's step
time per probe, against the whole batch's on both sides of it (the same mean
step index: a step's Gram–Schmidt work grows with j), decides: split into
parts of the candidate size from there when they take at most
`SWITCH_RATIO` of the batch's time; whole to the end where they were slower
(above `RETRY_RATIO`); otherwise whole until the next trial, where the basis
is about twice as large. A batch whose products already take
`PRODUCT_SHARE` of its first timed steps is kept whole without running parts.
Parts run one after another, each to the end; every probe does the same
arithmetic either way.

The decision is remembered per operator for the process, and recorded in
checkpoints: a run that finds it runs the same schedule without timing, so
the same call gives the same bits. Only a first run in another process may
decide otherwise, which changes results by rounding only (products of another
width). A batch whose probe count the user chose is never split.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

__all__ = [
    "CACHE_BYTES",
    "MAX_DECISIONS",
    "PRODUCT_SHARE",
    "RETRY_RATIO",
    "SWITCH_RATIO",
    "TRIAL_STEPS",
    "WINDOW",
    "BatchSplit",
    "Decision",
    "Trial",
    "clear_decisions",
    "clock",
    "drive",
    "part_sizes",
    "trial_plan",
]

logger = logging.getLogger("slq")

CACHE_BYTES = 32 << 20
"""A part's whole basis, (m+1) n numbers a probe, fits in this much: a cache's share.

Only the candidate's size: the decision is measured. Below it at the end of a
run, a whole batch's basis never leaves the cache and the batch is not tried split."""

TRIAL_STEPS = 3
"""Steps timed whole on each side of the parts, and timed in the first part."""

SWITCH_RATIO = 0.8
"""The first part's step time per probe, over the whole batch's, at or below which the
batch is split: clearly faster, so that timing noise cannot flip the decision."""

RETRY_RATIO = 1.0
"""At or below this ratio (but above `SWITCH_RATIO`) a batch kept whole is tried again
later, where its basis is larger; above it, parts were slower and it stays whole."""

MAX_DECISIONS = 64
"""Decisions remembered at most, the least recently used dropped first."""

clock: Callable[[], float] = time.perf_counter
"""The timer of trial steps (tests replace it)."""


WINDOW = 3 * TRIAL_STEPS + 1

PRODUCT_SHARE = SWITCH_RATIO
"""A batch whose products take this share of its steps is kept whole without timing parts.

A part's products cost no less per probe than the batch's (a column each, or a
pass over the data whatever the width), so parts could save at most the rest
of a step, less than a split needs (`SWITCH_RATIO`): a network's HVPs, say,
where a part would pay a whole pass over the data for a few probes."""
"""Steps of one trial: whole, then in parts, then whole again."""


class Trial(NamedTuple):
    """The fixed schedule of a batch that may be split (see the module's docstring)."""

    starts: tuple[int, ...]
    """Steps at which the trials begin, while the batch is still whole."""
    parts: int
    """The candidate: parts of at most `CACHE_BYTES` of basis each."""


class Decision(NamedTuple):
    """How a batch ran: split into `parts` after trial `after`, or whole (parts 1)."""

    parts: int
    after: int


def trial_plan(k: int, m: int, n: int, itemsize: int) -> Trial | None:
    """Return the trials of a batch of k probes, m steps, n numbers of `itemsize` bytes, or None.

    The first trial begins at a twentieth of the steps: early, because steps
    before a split run whole, and because parts gain most per probe where a
    part's basis is smallest beside the batch's (Gram-Schmidt passes measured
    2.5-7 times faster at j = 6-17, 1.6 times at j = 45, on a 2-core VM at
    n = 2e4, k = 16). Where the cache is larger than the batch's early basis,
    parts gain only later (measured at n = 1e5), so a batch kept whole is tried
    again once its basis has about doubled, as long as the decision comes by half
    of the run. None where the whole basis stays within `CACHE_BYTES`, or
    where the run is too short.

    Examples
    --------
    >>> from slq._batch_split import trial_plan
    >>> trial_plan(16, 90, 20_000, 8)  # parts of 2: 15 MB of basis each
    Trial(starts=(4, 28), parts=8)
    >>> trial_plan(16, 90, 1_000, 8) is None  # 12 MB of basis in all: kept whole
    True
    """
    per_probe = (m + 1) * n * itemsize
    parts = -(-k // max(1, CACHE_BYTES // per_probe))
    starts, start = [], max(1, m // 20)
    while start + WINDOW <= m // 2:
        starts.append(start)
        start = 2 * (start + WINDOW)
    if parts < 2 or not starts:
        return None
    return Trial(tuple(starts), parts)


def part_sizes(k: int, parts: int) -> list[int]:
    """Return the sizes of `parts` consecutive parts of k probes, as equal as they come.

    Examples
    --------
    >>> from slq._batch_split import part_sizes
    >>> part_sizes(10, 4)
    [3, 3, 2, 2]
    """
    return [k // parts + (i < k % parts) for i in range(parts)]


class BatchSplit:
    """How the batches of one run are split, for the object `owner` the user passed.

    `recorded` maps a batch size to the `Decision` a checkpoint recorded for
    it, which this run follows; `decisions` holds what this run used, to be
    recorded in turn.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._batch_split import BatchSplit, Decision
    >>> BatchSplit(np.eye(3), recorded={4: Decision(2, 0)}).decisions
    {}
    """

    def __init__(
        self,
        owner: Any,
        *,
        recorded: dict[int, Decision] | None = None,
        private_bases: bool = True,
    ) -> None:
        self.owner = owner
        self.recorded = dict(recorded or {})
        self.decisions: dict[int, Decision] = {}
        # Parts run to their ends in bases of their own (faster; one more part's basis).
        self.private_bases = private_bases

    def record(self) -> dict[int, Decision]:
        """Return the decision for every batch size this run followed or made."""
        return {**self.recorded, **self.decisions}

    def run_to_end(self, run: Any) -> None:
        """Run the `BatchRun` `run` to the end, split as decided or as measured now."""
        op = run.op
        n, itemsize = op.shape[0], op.xp.finfo(op.dtype).bits // 8
        trial = trial_plan(run.k, run.m, n, itemsize)
        if trial is None:
            run_steps(run, 0, run.m)
            return
        key = (run.k, run.m, n, str(op.dtype), str(op.device))
        known = self.recorded.get(run.k)
        if known is None:
            known = _recall(self.owner, key)
        decision = _run_trials(run, trial, known, self.private_bases)
        if decision is None:
            return  # every probe stopped, or too few steps were timed: nothing to remember
        self.decisions[run.k] = decision
        if _recall(self.owner, key) is None:
            _remember(self.owner, key, decision)


def _run_trials(
    run: Any, trial: Trial, known: Decision | None, private_bases: bool = True
) -> Decision | None:
    """Run the batch through its trials and on to the end; return the decision it followed.

    After a trial, the batch is split where parts were clearly faster, kept
    whole to the end where they were slower, and otherwise tried again at the
    next trial. With `known`, the same schedule without timing. None where
    every probe stopped before a decision, or a trial timed too few steps.
    """
    step, decidable = 0, True
    for i, start in enumerate(trial.starts):
        timings = None if known is not None else _Timings()
        if not (run_steps(run, step, start) and _run_trial(run, start, trial.parts, timings)):
            return None
        step = start + WINDOW
        if timings is None:
            assert known is not None
            if known.after != i:
                continue
            parts = known.parts
        else:
            ratio = _ratio(run, timings)
            decidable &= ratio is not None
            again = ratio is None or (ratio <= RETRY_RATIO and i + 1 < len(trial.starts))
            parts = trial.parts if ratio is not None and ratio <= SWITCH_RATIO else 1
            _log(run, timings, ratio, parts, step, again and parts == 1)
            if again and parts == 1:
                continue
        if parts > 1:
            parts_run = run.split(part_sizes(run.k, parts))
            run_parts(run, parts_run, step, run.m, to_the_end=True, private_bases=private_bases)
        else:
            run_steps(run, step, run.m)
        return Decision(parts, i) if timings is None or decidable else None
    run_steps(run, step, run.m)
    return Decision(1, len(trial.starts) - 1) if known is not None or decidable else None


def drive(run: Any, split: BatchSplit | None) -> None:
    """Run the `BatchRun` `run` to the end: whole, or as `split` decides where it can split."""
    if split is None or not run.splittable:
        run_steps(run, 0, run.m)
    else:
        split.run_to_end(run)


def run_steps(run: Any, start: int, stop: int, times: list[float] | None = None) -> bool:
    """Run steps `start`:`stop` of the whole batch; return whether a probe still runs."""
    for j in range(start, stop):
        began = clock()
        running = run.step(j)
        if times is not None:
            times.append(clock() - began)
        run.report(j)
        if not running:
            return False
    return True


def run_parts(
    run: Any,
    parts: list[Any],
    start: int,
    stop: int,
    times: list[Any] | None = None,
    *,
    to_the_end: bool = False,
    private_bases: bool = True,
) -> bool:
    """Run steps `start`:`stop` part after part, then re-join them.

    `times`, one entry a part, collects its step times where the entry is a
    list; the first step of each part is not timed: it brings the part's basis
    into the cache. Parts that run `to_the_end` do so, with `private_bases`, in
    a basis of their own, freed as each ends: the allocator then reuses one
    part's memory for the next, where a view of the batch's basis faults in
    every page of it (measured 10-40% of a split run's time; 25% at n = 1e5,
    k = 10), at the cost of one part's basis beside the batch's, which
    `memory_estimate` counts. Return whether a probe still runs.
    """
    for i, part in enumerate(parts):
        if not part.active.any():
            continue  # stopped probes stay zero rows: nothing to run
        timed = None if times is None else times[i]
        private = to_the_end and private_bases
        if private:
            part.detach()
        for j in range(start, stop):
            began = clock()
            running = part.step(j)
            if timed is not None and j > start:
                timed.append(clock() - began)
            if not running:
                break
        if private:
            part.release()
    run.merge(parts)
    for j in range(start, run.steps_run):
        run.report(j)
    return bool(run.active.any())


class _Timings:
    """Step times of a trial: the whole batch's before and after the part timed, and the part's.

    Each is taken as its fastest step: other work on the machine only ever adds
    time, and the mean of the two whole ones brackets the part's step index.
    """

    def __init__(self) -> None:
        self.before: list[float] = []
        self.part: list[float] = []
        self.after: list[float] = []
        self.part_size = 1
        self.product_share = 0.0  # of the whole batch's steps before the part

    def per_probe(self, k: int) -> tuple[float, float] | None:
        """Return the step times per probe, (part, whole), or None if too few steps ran."""
        if min(len(self.before), len(self.after), len(self.part)) < TRIAL_STEPS:
            return None
        whole = (min(self.before) + min(self.after)) / 2
        return min(self.part) / self.part_size, whole / k


def _run_trial(run: Any, start: int, parts: int, timings: _Timings | None) -> bool:
    """Run the `WINDOW` steps of a trial from `start`, timed into `timings` if given.

    The part timed is the candidate's size from the first probe still running
    when it begins; the probes before and after it form parts of their own.
    Return whether a probe still runs.
    """
    t = TRIAL_STEPS
    before, after = (None, None) if timings is None else (timings.before, timings.after)
    in_products = run.keeper.product_seconds
    if not run_steps(run, start, start + t, before):
        return False
    if timings is not None and before:
        timings.product_share = (run.keeper.product_seconds - in_products) / sum(before)
        if timings.product_share >= PRODUCT_SHARE:  # parts cannot gain enough: keep it whole
            return run_steps(run, start + t, start + WINDOW, after)
    live = int(run.active.argmax())
    size = min(part_sizes(run.k, parts)[0], run.k - live)
    sizes = [count for count in (live, size, run.k - live - size) if count]
    timed: list[Any] = [None] * len(sizes)
    if timings is not None:
        timed[1 if live else 0], timings.part_size = timings.part, size
    return run_parts(run, run.split(sizes), start + t, start + 2 * t + 1, timed) and run_steps(
        run, start + 2 * t + 1, start + WINDOW, after
    )


def _ratio(run: Any, timings: _Timings) -> float | None:
    """Return the part's step time per probe over the whole batch's, None if too few ran."""
    if timings.product_share >= PRODUCT_SHARE:
        # A part's products cost no less per probe than the batch's (a column each, or one
        # pass over data for any width), so at best it saves the rest: too little to split.
        return math.inf
    times = timings.per_probe(run.k)
    if times is None:
        return None
    part, whole = times
    return part / whole if whole > 0 else 1.0


def _log(
    run: Any, timings: _Timings, ratio: float | None, parts: int, step: int, again: bool
) -> None:
    if ratio is None:
        logger.info("lanczos: a trial of a batch split timed too few steps (breakdowns)")
        return
    outcome = f"split into {parts} parts" if parts > 1 else "kept whole"
    if ratio == math.inf:
        logger.info(
            "lanczos: products took %.0f%% of a batch's steps: %s from step %d, not timed in parts",
            100 * timings.product_share,
            outcome,
            step,
        )
        return
    part, whole = timings.per_probe(run.k) or (0.0, 0.0)
    logger.info(
        "lanczos: a step took %.3g ms a probe in a part of %d, %.3g ms in the batch of %d "
        "(%.2f): %s from step %d%s",
        1e3 * part,
        timings.part_size,
        1e3 * whole,
        run.k,
        ratio,
        outcome,
        step,
        ", tried again later" if again else "",
    )


# The decisions of this process, by operator: the object's identity, checked
# through a weak reference (an id is reused once its object is gone), and the run.
_decisions: OrderedDict[Hashable, tuple[weakref.ref[Any], Decision]] = OrderedDict()
_lock = threading.Lock()


def _recall(owner: Any, key: tuple[Any, ...]) -> Decision | None:
    with _lock:
        found = _decisions.get((id(owner), *key))
        if found is None or found[0]() is not owner:
            return None
        _decisions.move_to_end((id(owner), *key))
        return found[1]


def _remember(owner: Any, key: tuple[Any, ...], decision: Decision) -> None:
    try:
        ref = weakref.ref(owner)
    except TypeError:
        logger.debug("lanczos: %s takes no weak reference: its split is not remembered", owner)
        return
    with _lock:
        _decisions[(id(owner), *key)] = (ref, decision)
        _decisions.move_to_end((id(owner), *key))
        while len(_decisions) > MAX_DECISIONS:
            _decisions.popitem(last=False)


def clear_decisions() -> None:
    """Forget every remembered decision (the next run of each operator measures again).

    Examples
    --------
    >>> from slq._batch_split import clear_decisions
    >>> clear_decisions()
    """
    with _lock:
        _decisions.clear()

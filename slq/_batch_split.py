"""Lanczos batch size by measurement: a batch of probes split into parts where they run faster.

A batch advances k probes together, one ``matmat`` a step, then a Gram–Schmidt
pass of each probe against its own stored basis. Where products dominate
(a dense GEMM, a network's batched HVP), one batch is fastest. Where they are
cheap, the passes dominate, and a part of a few probes is faster per probe:
its basis stays in the cache from one step to the next, where a whole batch's
basis (k (j+1) n numbers at step j) is read from memory at every step.

So a batch whose basis would outgrow `CACHE_BYTES` runs a fixed schedule
(`Trial`): whole for `start` + `TRIAL_STEPS` steps, then as two parts (the
first of a candidate size, its basis within `CACHE_BYTES`) for
`TRIAL_STEPS` + 1 steps, then whole again for `TRIAL_STEPS`. The first part's
step time per probe, against the whole batch's on both sides of it (the same
mean step index: a step's Gram–Schmidt work grows with j), decides how the rest
of the batch runs: split into parts of the candidate size when they take at
most `SWITCH_RATIO` of the batch's time, else whole. Parts run one after
another, each to the end; every probe does the same arithmetic either way.

The decision is remembered per operator for the process, and recorded in
checkpoints: a run that finds it runs the same schedule without timing, so
the same call gives the same bits. Only a first run in another process may
decide otherwise, which changes results by rounding only (products of another
width). A batch whose probe count the user chose is never split.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

__all__ = [
    "CACHE_BYTES",
    "MAX_DECISIONS",
    "SWITCH_RATIO",
    "TRIAL_STEPS",
    "BatchSplit",
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

MAX_DECISIONS = 64
"""Decisions remembered at most, the least recently used dropped first."""

clock: Callable[[], float] = time.perf_counter
"""The timer of trial steps (tests replace it)."""


class Trial(NamedTuple):
    """The fixed schedule of a batch that may be split (see the module's docstring)."""

    start: int
    """Step at which the whole batch's first timed steps begin."""
    parts: int
    """The candidate: parts of at most `CACHE_BYTES` of basis each."""

    @property
    def decided(self) -> int:
        """The step from which the batch runs as decided."""
        return self.start + 3 * TRIAL_STEPS + 1


def trial_plan(k: int, m: int, n: int, itemsize: int) -> Trial | None:
    """Return the trial of a batch of k probes, m steps, n numbers of `itemsize` bytes, or None.

    The trial starts at a twentieth of the steps: early, because the steps
    before the decision run whole whatever it is, and because parts gain most
    per probe where a part's basis is smallest beside the batch's (measured
    2.5-7 times faster Gram-Schmidt passes at j = 6-17, 1.6 times at j = 45,
    on a 2-core VM at n = 2e4 and k = 16). None where the whole basis stays
    within `CACHE_BYTES`, or where the run is too short for the decision to
    come by half of its steps.

    Examples
    --------
    >>> from slq._batch_split import trial_plan
    >>> trial_plan(16, 90, 20_000, 8)  # parts of 2: 15 MB of basis each
    Trial(start=4, parts=8)
    >>> trial_plan(16, 90, 1_000, 8) is None  # 12 MB of basis in all: kept whole
    True
    """
    per_probe = (m + 1) * n * itemsize
    parts = -(-k // max(1, CACHE_BYTES // per_probe))
    start = max(1, m // 20)
    if parts < 2 or start + 3 * TRIAL_STEPS + 1 > m // 2:
        return None
    return Trial(start, parts)


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

    `recorded` maps a batch size to the number of parts a checkpoint recorded
    for it, which this run follows; `decisions` holds what this run used, to
    be recorded in turn.

    Examples
    --------
    >>> import numpy as np
    >>> from slq._batch_split import BatchSplit
    >>> BatchSplit(np.eye(3), recorded={4: 2}).decisions
    {}
    """

    def __init__(self, owner: Any, *, recorded: dict[int, int] | None = None) -> None:
        self.owner = owner
        self.recorded = dict(recorded or {})
        self.decisions: dict[int, int] = {}

    def record(self) -> dict[int, int]:
        """Return the parts of every batch size this run followed or decided."""
        return {**self.recorded, **self.decisions}

    def run(self, run: Any) -> None:
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
        timings = None if known is not None else _Timings()
        if not _run_trial(run, trial, timings):
            return  # every probe stopped: nothing left to decide
        parts = known if timings is None else _decide(run, trial, timings)
        if parts is None:
            parts = 1  # too few timed steps (breakdowns): whole, and nothing remembered
        else:
            self.decisions[run.k] = parts
            if _recall(self.owner, key) is None:
                _remember(self.owner, key, parts)
        if parts == 1:
            run_steps(run, trial.decided, run.m)
        else:
            split = run.split(part_sizes(run.k, parts))
            run_parts(run, split, trial.decided, run.m, to_the_end=True)


def drive(run: Any, split: BatchSplit | None) -> None:
    """Run the `BatchRun` `run` to the end: whole, or as `split` decides where it can split."""
    if split is None or not run.splittable:
        run_steps(run, 0, run.m)
    else:
        split.run(run)


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
) -> bool:
    """Run steps `start`:`stop` part after part, then re-join them.

    `times`, one entry a part, collects its step times where the entry is a
    list; the first step of each part is not timed: it brings the part's basis
    into the cache. Parts that run `to_the_end` do so in a basis of their own,
    freed as each ends. Return whether a probe still runs.
    """
    for i, part in enumerate(parts):
        if not part.active.any():
            continue  # stopped probes stay zero rows: nothing to run
        timed = None if times is None else times[i]
        if to_the_end:
            part.detach()
        for j in range(start, stop):
            began = clock()
            running = part.step(j)
            if timed is not None and j > start:
                timed.append(clock() - began)
            if not running:
                break
        if to_the_end:
            part.release()
    run.merge(parts)
    for j in range(start, run.steps_run):
        run.report(j)
    return bool(run.active.any())


class _Timings:
    """Step times of a trial: the whole batch's, and those of the part timed, with its size."""

    def __init__(self) -> None:
        self.whole: list[float] = []
        self.part: list[float] = []
        self.part_size = 1


def _run_trial(run: Any, trial: Trial, timings: _Timings | None) -> bool:
    """Run steps 0 to `trial.decided` on the trial's schedule, timed into `timings` if given.

    The part timed is the candidate's size from the first probe still running
    when it begins; the probes before and after it form parts of their own.
    Return whether a probe still runs.
    """
    s, t = trial.start, TRIAL_STEPS
    whole = None if timings is None else timings.whole
    if not (run_steps(run, 0, s) and run_steps(run, s, s + t, whole)):
        return False
    live = int(run.active.argmax())
    size = min(part_sizes(run.k, trial.parts)[0], run.k - live)
    sizes = [count for count in (live, size, run.k - live - size) if count]
    timed: list[Any] = [None] * len(sizes)
    if timings is not None:
        timed[1 if live else 0], timings.part_size = timings.part, size
    return run_parts(run, run.split(sizes), s + t, s + 2 * t + 1, timed) and run_steps(
        run, s + 2 * t + 1, trial.decided, whole
    )


def _decide(run: Any, trial: Trial, timings: _Timings) -> int | None:
    """Return the number of parts the timed trial favours, or None if too few steps ran."""
    if len(timings.whole) < 2 * TRIAL_STEPS or len(timings.part) < TRIAL_STEPS:
        return None
    per_probe_whole = statistics.median(timings.whole) / run.k
    per_probe_part = statistics.median(timings.part) / timings.part_size
    ratio = per_probe_part / per_probe_whole if per_probe_whole > 0 else 1.0
    parts = trial.parts if ratio <= SWITCH_RATIO else 1
    logger.info(
        "lanczos: a step took %.3g ms a probe in a part of %d, %.3g ms in the batch of %d "
        "(%.2f): %s from step %d",
        1e3 * per_probe_part,
        timings.part_size,
        1e3 * per_probe_whole,
        run.k,
        ratio,
        f"split into {parts} parts" if parts > 1 else "kept whole",
        trial.decided,
    )
    return parts


# The decisions of this process, by operator: the object's identity, checked
# through a weak reference (an id is reused once its object is gone), and the run.
_decisions: OrderedDict[Hashable, tuple[weakref.ref[Any], int]] = OrderedDict()
_lock = threading.Lock()


def _recall(owner: Any, key: tuple[Any, ...]) -> int | None:
    with _lock:
        found = _decisions.get((id(owner), *key))
        if found is None or found[0]() is not owner:
            return None
        _decisions.move_to_end((id(owner), *key))
        return found[1]


def _remember(owner: Any, key: tuple[Any, ...], parts: int) -> None:
    try:
        ref = weakref.ref(owner)
    except TypeError:
        logger.debug("lanczos: %s takes no weak reference: its split is not remembered", owner)
        return
    with _lock:
        _decisions[(id(owner), *key)] = (ref, parts)
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

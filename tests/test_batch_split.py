"""Batches split into parts by measurement: the same coefficients, choices obeyed and remembered.

The trial's timer is replaced by a virtual clock that only the operator's
products advance, by a cost of their width: which way a batch goes is then
decided by the cost model, never by the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Backend, assert_close, rewrite_archive

import slq
from slq import _batch_split
from slq._lanczos import prepare_start, run_batch
from slq._reorthogonalization import policy


def chebyshev(g: int, centre: float) -> np.ndarray:
    return centre + np.cos(np.pi * (np.arange(g) + 0.5) / g)


# Blocks of 3, 8 and 15 Chebyshev points, then 174 more eigenvalues: a probe of
# equal entries on a block breaks down after as many steps as the block has
# points, to rounding (β_j = 1/2 until then), and a random probe runs on.
SPECTRUM = np.concatenate(
    [chebyshev(3, 10.0), chebyshev(8, 20.0), chebyshev(15, 30.0), np.linspace(-5, 5, 174)]
)
BLOCKS = {3: slice(0, 3), 8: slice(3, 11), 15: slice(11, 26)}
STEPS = 60  # the trial: whole to step 6, parts to 10, whole to 13; as decided from 13


def parts_faster(width: int) -> float:
    return float(width) ** 2  # per probe: the width


def whole_faster(width: int) -> float:
    return 1.0  # per probe: 1 / width


class Virtual:
    """A dense operator whose products advance a virtual clock by `cost(width)`."""

    def __init__(self, a: Any, clock: list[float], cost: Callable[[int], float]) -> None:
        self.a, self.shape, self.dtype = a, tuple(a.shape), a.dtype
        self.clock, self.cost, self.widths = clock, cost, []

    def matvec(self, v: Any) -> Any:
        return self.matmat(v[:, None])[:, 0]

    def matmat(self, v: Any) -> Any:
        self.widths.append(int(v.shape[1]))
        self.clock[0] += self.cost(int(v.shape[1]))
        return self.a @ v


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The virtual clock; every batch is tried split into parts of one probe."""
    now = [0.0]
    monkeypatch.setattr(_batch_split, "clock", lambda: now[0])
    monkeypatch.setattr(_batch_split, "CACHE_BYTES", 1)
    # The virtual cost stands for a whole step's, not only its product's.
    monkeypatch.setattr(_batch_split, "PRODUCT_SHARE", np.inf)
    _batch_split.clear_decisions()
    yield now
    _batch_split.clear_decisions()


def start_vector(stops: int | None, seed: int) -> np.ndarray:
    """A probe that breaks down after `stops` steps, or a random one (None)."""
    if stops is None:
        return np.random.default_rng(seed).standard_normal(SPECTRUM.size)
    v = np.zeros(SPECTRUM.size)
    v[BLOCKS[stops]] = 1.0
    return v


@pytest.mark.parametrize("backend", [Backend.NUMPY, Backend.TORCH], ids=lambda b: b.value)
def test_a_split_batch_gives_the_coefficients_of_the_whole_batch(
    backend: Backend, clock: list[float]
) -> None:
    # Probes stop at steps 3 (before the trial), 8 (in its parts) and 15 (split),
    # the others run on: parts of stopped probes, of running ones, of both kinds.
    stops = [3, None, 8, None, 15, None]
    v0 = np.stack([start_vector(s, seed) for seed, s in enumerate(stops)], axis=1)
    a = backend.asarray(np.diag(SPECTRUM))
    results = {}
    for name, split in (("whole", None), ("split", _batch_split.BatchSplit(object()))):
        virtual = Virtual(a, clock, parts_faster)
        op = slq.aslinearoperator(virtual)
        rows = prepare_start(backend.asarray(v0), op)
        results[name] = run_batch(
            op, rows, STEPS, policy("full"), False, probe_offset=0, split=split
        )
        assert results[name].num_matvecs == sum(virtual.widths)
    whole, split = results["whole"], results["split"]
    # Split: the trial's part of probe 1 (4 steps), then probes 1, 3 and 5 alone
    # from step 13 on, and probe 4 for its last two steps; stopped probes never.
    assert virtual.widths.count(1) == 4 + 3 * (STEPS - 13) + 2
    lengths = [STEPS if s is None else s for s in stops]
    np.testing.assert_array_equal(split.lengths, lengths)
    np.testing.assert_array_equal(whole.lengths, lengths)
    assert_close(split.alpha, whole.alpha)
    assert_close(split.beta, whole.beta)
    assert_close(split.residual_norm, whole.residual_norm)
    assert split.num_matvecs < whole.num_matvecs  # stopped probes' parts are not run


def run(op: Any, **options: Any) -> slq.SpectralDensity:
    return slq.density(op, num_steps=STEPS, num_probes=6, seed=0, probe="gaussian", **options)


def test_an_explicit_probe_batch_size_is_never_split(clock: list[float]) -> None:
    for batch in (6, 3):
        op = Virtual(np.diag(SPECTRUM), clock, parts_faster)
        run(op, probe_batch_size=batch)
        assert set(op.widths) == {batch}


def test_the_decision_is_remembered_per_operator(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    op = Virtual(np.diag(SPECTRUM), clock, parts_faster)
    with caplog.at_level("INFO", logger="slq"):
        first = run(op)
    assert "split into 6 parts from step 13" in caplog.text
    schedule = list(op.widths)
    assert schedule[-10:] == [1] * 10
    # The same operator, though whole batches would now time faster: nothing is
    # measured, the same schedule runs, and the same call gives the same bits.
    op.cost, op.widths = whole_faster, []
    caplog.clear()
    with caplog.at_level("INFO", logger="slq"):
        again = run(op)
    assert op.widths == schedule and "a probe in a part" not in caplog.text
    np.testing.assert_array_equal(again.alpha, first.alpha)
    np.testing.assert_array_equal(again.beta, first.beta)
    # Another operator is measured afresh: kept whole, to rounding the same result.
    other = Virtual(np.diag(SPECTRUM), clock, whole_faster)
    whole = run(other)
    assert other.widths[-10:] == [6] * 10
    assert_close(whole.alpha, first.alpha)


def test_a_resumed_checkpoint_splits_as_recorded(tmp_path: Path, clock: list[float]) -> None:
    # Adaptive runs use batches of 4 by default; this tol runs both.
    options = {"num_steps": STEPS, "num_probes": 8, "tol": 1e-12, "seed": 0, "probe": "gaussian"}
    uninterrupted = slq.density(Virtual(np.diag(SPECTRUM), clock, parts_faster), **options)
    _batch_split.clear_decisions()

    def stop_at_the_second_batch(step: slq.LanczosStep) -> None:
        if step.probes.start == 4:
            raise KeyboardInterrupt

    path = tmp_path / "run.npz"
    first = Virtual(np.diag(SPECTRUM), clock, parts_faster)
    with pytest.raises(KeyboardInterrupt):
        slq.density(first, **options, checkpoint=path, callback=stop_at_the_second_batch)
    _batch_split.clear_decisions()  # as in a new process, where whole batches time faster
    resumed_op = Virtual(np.diag(SPECTRUM), clock, whole_faster)
    resumed = slq.density(resumed_op, **options, checkpoint=path)
    assert resumed_op.widths[-10:] == [1] * 10
    np.testing.assert_array_equal(resumed.alpha, uninterrupted.alpha)
    np.testing.assert_array_equal(resumed.beta, uninterrupted.beta)

    def too_many_parts(meta: dict[str, Any], arrays: dict[str, Any]) -> None:
        arrays["split"] = np.array([[4, 5, 0]])

    rewrite_archive(path, too_many_parts)
    with pytest.raises(ValueError, match="split must split a batch into at most"):
        slq.density(resumed_op, **options, checkpoint=path)


def test_a_batch_kept_whole_is_tried_again_unless_parts_were_slower(clock: list[float]) -> None:
    # m = 90: trials from steps 4 and 28; each runs its timed part (one probe) 4 steps.
    trials = {}
    for name, cost in (("even", float), ("parts slower", whole_faster)):
        op = Virtual(np.diag(SPECTRUM), clock, cost)
        slq.density(op, num_steps=90, num_probes=6, seed=0, probe="gaussian")
        trials[name] = op.widths.count(1) // 4
        assert op.widths[-10:] == [6] * 10
    assert trials == {"even": 2, "parts slower": 1}


def test_a_batch_whose_products_dominate_is_kept_whole_untried(
    clock: list[float], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Here the virtual cost is the product's alone, all of every step: a part could
    # save nothing of it, and the batch is never run in parts.
    monkeypatch.setattr(_batch_split, "PRODUCT_SHARE", _batch_split.SWITCH_RATIO)
    op = Virtual(np.diag(SPECTRUM), clock, parts_faster)
    with caplog.at_level("INFO", logger="slq"):
        slq.density(op, num_steps=90, num_probes=6, seed=0, probe="gaussian")
    assert set(op.widths) == {6}
    assert "products took 100% of a batch's steps: kept whole from step 14" in caplog.text

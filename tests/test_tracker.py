"""`slq.Tracker` and `slq.load_track`: records at the due steps, equal to a direct density,
training unchanged, resume without duplicates, hostile files refused, and the summaries."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Backend, CheckedOperator, assert_close, need, rewrite_archive

import slq
from slq.track_summary import TrackSummary

SPECTRUM = np.concatenate([np.linspace(-1.0, 1.0, 37), [6.0, 20.0, 50.0]])


def _operator(step: int) -> np.ndarray:
    """A stand-in for a Hessian over training: the bulk shrinks, one outlier grows."""
    spectrum = SPECTRUM.copy()
    spectrum[:37] /= step + 1
    spectrum[-1] += step
    return np.diag(spectrum)


def _tracker(path: Path, **options: Any) -> slq.Tracker:
    return slq.Tracker(path, **{"num_steps": 12, "num_probes": 3, "seed": 4, **options})


def test_records_the_due_steps_with_their_scalars(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "t", every=3)
    built = []
    for step in range(10):
        tracker.maybe_record(step, lambda s=step: built.append(s) or _operator(s), loss=step / 2)
    assert built == [0, 3, 6, 9]  # no operator is built on the other steps
    assert tracker.steps == [0, 3, 6, 9]
    track = slq.load_track(tracker.path)
    np.testing.assert_array_equal(track.steps, [0, 3, 6, 9])
    np.testing.assert_array_equal(track.scalar("loss"), [0.0, 1.5, 3.0, 4.5])
    assert np.isnan(track.scalar("lr")).all()
    assert track.settings["num_probes"] == 3 and track.settings["seed"] == 4
    assert [r.step for r in track[1:3]] == [3, 6] and len(track[1:3]) == 2


def test_a_record_equals_a_direct_density_with_the_same_seed(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "t", probe="gaussian", reorthogonalize="partial")
    recorded = tracker.record(2, _operator(2))
    direct = slq.density(
        _operator(2),
        num_steps=12,
        num_probes=3,
        seed=4,
        probe="gaussian",
        reorthogonalize="partial",
    )
    assert recorded is not None
    np.testing.assert_array_equal(recorded.alpha, direct.alpha)  # the same call: bit-identical
    loaded = slq.load_track(tracker.path)[0].density
    np.testing.assert_array_equal(loaded.beta, direct.beta)
    assert (loaded.probe, loaded.reorthogonalize, loaded.seed) == ("gaussian", "partial", 4)
    assert slq.load(tracker.path / "step-000000000002.npz").num_probes == 3  # a plain result too


def test_a_step_not_due_costs_no_product(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "t", every=2)
    op = CheckedOperator(_operator(0))
    assert tracker.record(1, op) is None
    assert tracker.record(0, op) is not None
    inputs = op.inputs
    assert tracker.record(0, op) is None and op.inputs == inputs  # recorded: not due again
    assert not tracker.due(0) and tracker.due(2) and not tracker.due(3)


def test_reopening_appends_and_a_crash_loses_only_the_record_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "t"
    tracker = _tracker(path, every=2)

    def train(tracker: slq.Tracker, crash_at: int | None) -> None:
        for step in range(8):
            if step == crash_at:
                raise KeyboardInterrupt  # a kill in the middle of training
            tracker.maybe_record(step, lambda s=step: _operator(s), loss=float(step))

    with pytest.raises(KeyboardInterrupt):
        train(tracker, crash_at=5)
    (path / ".step-000000000006.npz.0123456789ab.tmp").write_bytes(b"half a record")
    np.testing.assert_array_equal(slq.load_track(path).steps, [0, 2, 4])  # ignored by readers
    resumed = _tracker(path, every=2)  # the same settings: appends
    assert resumed.steps == [0, 2, 4]
    assert not any(p.name.endswith(".tmp") for p in path.iterdir())  # cleaned on reopen
    train(resumed, crash_at=None)  # the resumed run starts again from step 0
    track = slq.load_track(path)
    np.testing.assert_array_equal(track.steps, [0, 2, 4, 6])
    np.testing.assert_array_equal(track.scalar("loss"), [0.0, 2.0, 4.0, 6.0])
    uninterrupted = _tracker(tmp_path / "u", every=2)
    train(uninterrupted, crash_at=None)
    for a, b in zip(track, slq.load_track(uninterrupted.path), strict=True):
        np.testing.assert_array_equal(a.density.alpha, b.density.alpha)


def test_reopening_with_other_settings_names_the_difference(tmp_path: Path) -> None:
    _tracker(tmp_path / "t", probe="gaussian")
    with pytest.raises(ValueError, match=r"num_probes=5 \(the track has 3\)"):
        _tracker(tmp_path / "t", num_probes=5, probe="gaussian")
    with pytest.raises(ValueError, match=r"probe=density's default \(the track has 'gaussian'\)"):
        _tracker(tmp_path / "t")
    # Run-time options and the schedule may change; an option at its default is no option.
    _tracker(tmp_path / "t", probe="gaussian", every=7, progress=False)
    _tracker(tmp_path / "d", reorthogonalize="full")
    _tracker(tmp_path / "d")


def test_bad_arguments_are_refused_before_any_file(tmp_path: Path) -> None:
    path = tmp_path / "t"
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        _tracker(path, bogus=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'checkpoint'"):
        _tracker(path, checkpoint=tmp_path / "c.npz")
    with pytest.raises(ValueError, match="reorthogonalize must be one of"):
        _tracker(path, reorthogonalize="twice")
    with pytest.raises(ValueError, match="parent directory does not exist"):
        _tracker(tmp_path / "missing" / "t")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="path must be a directory for the track, got the file"):
        _tracker(tmp_path / "file")
    assert not path.exists()
    tracker = _tracker(path)
    op = CheckedOperator(_operator(0))
    with pytest.raises(TypeError, match=r"scalar loss must be an int or a float.*loss\.item\(\)"):
        tracker.record(0, op, loss="0.5")
    with pytest.raises(ValueError, match="scalar loss must be a finite number"):
        tracker.record(0, op, loss=np.inf)
    with pytest.raises(TypeError, match="scalar flag must be an int or a float"):
        tracker.maybe_record(0, lambda: op, flag=True)
    assert op.inputs == 0 and tracker.steps == []


def test_load_track_refuses_what_a_tracker_did_not_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"is not an slq track: it has no track\.json"):
        slq.load_track(tmp_path)
    tracker = _tracker(tmp_path / "t")
    (tracker.path / "step-5.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"step-5\.npz.*expected step-<12 digits>\.npz"):
        slq.load_track(tracker.path)


def _settings(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def tamper(path: Path) -> None:
        file = path / "track.json"
        settings = json.loads(file.read_text())
        replaced = change(settings)
        file.write_text(replaced if isinstance(replaced, str) else json.dumps(settings))

    return tamper


def _record(change: Callable[[dict, dict], Any]) -> Callable[[Path], None]:
    return lambda path: rewrite_archive(path / "step-000000000000.npz", change)


def _track_meta(**values: Any) -> Callable[[dict, dict], None]:
    return lambda meta, arrays: meta["track"].update(values)


FIRST = "step-000000000000.npz"
# (the file, what the error must say, a change to a track of one record)
HOSTILE = [
    ("track.json", "not strict JSON|Expecting", _settings(lambda s: '{"seed": NaN')),
    ("track.json", "format must be", _settings(lambda s: s.update(format="other"))),
    ("track.json", "seed must be an integer", _settings(lambda s: s.update(seed="4"))),
    ("track.json", "must hold", _settings(lambda s: s.pop("num_steps"))),
    ("track.json", "density_options must be", _settings(lambda s: s.update(density_options=[]))),
    (FIRST, "track.step must be the step its name says", _record(_track_meta(step=3))),
    (FIRST, "track.step must be an integer", _record(_track_meta(step="0"))),
    (FIRST, "track.format must be", _record(lambda m, a: m.pop("track"))),
    (FIRST, "track.scalars must be", _record(_track_meta(scalars=[1.0]))),
    (FIRST, "track.scalars.loss must be a finite", _record(_track_meta(scalars={"loss": "1"}))),
    (FIRST, "alpha must have shape", _record(lambda m, a: m.update(num_steps=5))),
    (FIRST, "cannot read", lambda path: (path / FIRST).write_bytes(b"x")),
]


@pytest.mark.parametrize(("file", "problem", "tamper"), HOSTILE, ids=[h[1][:24] for h in HOSTILE])
def test_load_track_refuses_a_tampered_file_naming_it(
    tmp_path: Path, file: str, problem: str, tamper: Callable[[Path], None]
) -> None:
    tracker = _tracker(tmp_path / "t")
    tracker.record(0, _operator(0), loss=1.0)
    tamper(tracker.path)
    named = re.escape(repr(str(tracker.path / file)))
    with pytest.raises(ValueError, match=f"(?=.*{named})(?=.*{problem})"):
        slq.load_track(tracker.path)


def test_summary_tracks_the_extremes_the_negative_mass_and_the_bulk(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "t", num_steps=40)
    for step in range(3):
        tracker.record(step, _operator(step), loss=1.0 / (step + 1))
    track = slq.load_track(tracker.path)
    table = track.summary()
    assert isinstance(table, TrackSummary) and len(table) == 3
    assert_close(table.column("lambda_max"), [50.0, 51.0, 52.0])  # 40 steps: converged
    assert (table.column("lambda_max_residual") < 1e-6).all()
    for row, record in zip(table, track, strict=True):
        mass = record.density.negative_mass()
        assert (row.negative_mass, row.negative_mass_lower) == (mass.value, mass.lower)
        assert row.outliers == tuple(record.density.outliers().positions)
    # The bulk [-1, 1] / (s + 1) shrinks: W₁ to the previous density is the mean shift of |λ|.
    assert np.isnan(table[0].w1_previous)
    assert table[1].w1_previous == pytest.approx(37 / 40 * 0.5 * (1 - 1 / 2) + 1 / 40, rel=0.1)
    assert table.column("loss")[2] == pytest.approx(1 / 3)
    markdown = table.to_markdown()
    assert markdown.count("\n") == 4 and "| loss |" in markdown.splitlines()[0]
    assert table.to_dicts()[2]["step"] == 2
    with pytest.raises(ValueError, match="name must be a field"):
        table.column("bogus")


def test_an_operator_that_writes_no_files_is_measured_but_not_written(tmp_path: Path) -> None:
    class OtherRank(CheckedOperator):
        writes_files = False

    tracker = _tracker(tmp_path / "t")
    assert tracker.record(0, OtherRank(_operator(0))) is not None
    assert tracker.steps == [0] and not tracker.due(0)
    assert len(slq.load_track(tracker.path)) == 0


def _torch_training(tracker: slq.Tracker | None, steps: int = 6) -> tuple[list, Any, Any]:
    """Train a tiny MLP by SGD with momentum; track its Hessian on a fixed evaluation subset."""
    torch = need(Backend.TORCH)
    from slq import adapters

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = torch.Generator().manual_seed(1)
    x, y = torch.randn(48, 4, generator=data), torch.randint(0, 3, (48,), generator=data)
    evaluation = (x[:16], y[:16])
    loss_fn = torch.nn.functional.cross_entropy
    for step in range(steps):
        batch = torch.randperm(48, generator=data)[:8]
        loss = loss_fn(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if tracker is not None:
            build = lambda: adapters.torch_hessian(model, [evaluation], loss_fn)  # noqa: E731
            tracker.maybe_record(step, build, loss=loss.item())
    return [p.detach().clone() for p in model.parameters()], model, evaluation


def test_a_torch_training_loop_is_tracked_and_unchanged(tmp_path: Path) -> None:
    torch = need(Backend.TORCH)
    from slq import adapters

    tracker = _tracker(tmp_path / "t", num_steps=10, num_probes=2, every=2)
    tracked, _, evaluation = _torch_training(tracker)
    plain, _, _ = _torch_training(None)
    for a, b in zip(tracked, plain, strict=True):
        assert torch.equal(a, b)  # the same weights, bit for bit
    track = slq.load_track(tracker.path)
    np.testing.assert_array_equal(track.steps, [0, 2, 4])
    # The record at step 4 is of the weights after 5 optimiser steps (0..4).
    _, at_step_4, _ = _torch_training(None, steps=5)
    op = adapters.torch_hessian(at_step_4, [evaluation], torch.nn.functional.cross_entropy)
    direct = slq.density(op, num_steps=10, num_probes=2, seed=4)
    assert_close(track[-1].density.alpha, direct.alpha, dtype=np.float32)
    assert_close(track[-1].density.beta, direct.beta, dtype=np.float32)
    assert track.scalar("loss")[0] > 0.0


def test_a_jax_training_loop_is_tracked(tmp_path: Path) -> None:
    jax = need(Backend.JAX)
    jnp = jax.numpy
    from slq import adapters

    def loss_fn(params: dict, batch: tuple) -> Any:
        x, y = batch
        return jnp.mean((jnp.tanh(x @ params["w"]) @ params["v"] - y) ** 2)

    key = jax.random.PRNGKey(0)
    params = {"w": jax.random.normal(key, (3, 4)), "v": jnp.ones((4,))}
    batch = (jax.random.normal(jax.random.PRNGKey(1), (16, 3)), jnp.zeros(16))
    tracker = _tracker(tmp_path / "t", num_steps=8, num_probes=2, every=2)
    grad = jax.grad(loss_fn)
    for step in range(3):
        p = params
        build = lambda p=p: adapters.jax_hessian(loss_fn, p, batch)  # noqa: E731
        tracker.maybe_record(step, build, loss=float(loss_fn(p, batch)))
        params = jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, params, grad(params, batch))
    track = slq.load_track(tracker.path)
    np.testing.assert_array_equal(track.steps, [0, 2])
    direct = slq.density(adapters.jax_hessian(loss_fn, p, batch), num_steps=8, num_probes=2, seed=4)
    assert_close(track[-1].density.alpha, direct.alpha, dtype=np.float32)

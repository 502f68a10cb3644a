"""Saving and loading results (every field of a file checked), progress, callbacks, strict JSON.

Checkpoints are tested in test_checkpoint.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import rewrite_archive

import slq
from slq._progress import progress_bar
from slq.persistence import json_ready

SPECTRUM = np.concatenate([np.linspace(-1.0, 1.0, 197), [5.0, 9.0, 20.0]])
MATRIX = np.diag(SPECTRUM)
RUN = {"num_steps": 15, "num_probes": 7, "probe_batch_size": 2, "seed": 5, "probe": "gaussian"}


def test_save_and_load_reproduce_the_result_exactly(tmp_path: Path) -> None:
    dos = slq.density(MATRIX, num_steps=20, num_probes=4, seed=3, tol=0.5)
    again = slq.load(dos.save(tmp_path / "dos.npz"))
    t = dos.grid(128)
    np.testing.assert_array_equal(again.evaluate(t), dos.evaluate(t))
    np.testing.assert_array_equal(again.residual_norm, dos.residual_norm)
    assert again.summary() == dos.summary()
    for field in ("dim", "num_matvecs", "seed", "probe", "reorthogonalize", "stop_reason"):
        assert getattr(again, field) == getattr(dos, field)
    assert json.loads(dos.to_json(indent=1))["dim"] == 200


def test_load_refuses_what_it_did_not_write(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"must end in \.npz"):
        slq.density(MATRIX, num_probes=2, seed=0).save(tmp_path / "dos.npy")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    (tmp_path / "list.json").write_text("[1, 2]")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    for name in ("garbage.npz", "objects.npy", "plain.npy", "list.json"):
        with pytest.raises(
            ValueError, match=f"cannot read {re.escape(repr(str(tmp_path / name)))}"
        ):
            slq.load(tmp_path / name)
    np.savez(tmp_path / "plain.npz", alpha=np.zeros(3))
    with pytest.raises(ValueError, match="no metadata"):
        slq.load(tmp_path / "plain.npz")
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"cannot read|pickle"):
        slq.load(tmp_path / "pickled.npz")


def _meta(**values: Any) -> Callable[[dict, dict], None]:
    return lambda meta, arrays: meta.update(values)


def _array(name: str, value: Any) -> Callable[[dict, dict], None]:
    return lambda meta, arrays: arrays.update({name: value})


def _drop(name: str) -> Callable[[dict, dict], None]:
    def drop(meta: dict, arrays: dict) -> None:
        meta.pop(name, None)
        arrays.pop(name, None)

    return drop


# (the field the error must name, a change to a saved result)
TAMPERED = [
    *(("dim", _meta(dim=value)) for value in ("40", 40.7, 1e30, 10**30, 0)),
    ("num_matvecs", _meta(num_matvecs=-1)),
    ("num_matvecs", _meta(num_matvecs=True)),
    ("num_probes", _drop("num_probes")),
    ("num_probes", _meta(num_probes=0)),
    ("alpha", _meta(num_probes=3)),  # counts that the arrays contradict
    ("alpha", _meta(num_steps=19)),
    ("alpha", _array("alpha", np.full((4, 20), "0.5"))),
    ("alpha", _array("alpha", np.full((4, 20), np.inf))),
    ("alpha", _array("alpha", np.zeros((4, 20), dtype=complex))),
    ("alpha", _array("alpha", np.zeros(80))),
    ("alpha", _drop("alpha")),
    ("beta", _array("beta", np.zeros((4, 20)))),
    ("residual_norm", _array("residual_norm", -np.ones(4))),
    ("residual_norm", _array("residual_norm", np.ones(5))),
    *(("seed", _meta(seed=value)) for value in ("3", -1, 3.0)),
    ("probe", _meta(probe=1)),
    ("stop_reason", _meta(stop_reason=["tol"])),
    ("format", _meta(format="slq.SpectralDensity/0")),
    ("format", _drop("format")),
    ("meta", lambda meta, arrays: [1, 2]),  # JSON, but a list
    ("meta", lambda meta, arrays: "{not json"),
    ("meta", lambda meta, arrays: '{"dim": NaN}'),
    ("meta", _array("meta", np.zeros(3))),
]


@pytest.mark.parametrize(("field", "change"), TAMPERED, ids=[field for field, _ in TAMPERED])
def test_load_refuses_a_tampered_file_naming_the_file_and_the_field(
    tmp_path: Path, field: str, change: Callable[[dict, dict], Any]
) -> None:
    path = tmp_path / "dos.npz"
    slq.density(MATRIX, num_steps=20, num_probes=4, seed=3).save(path)
    rewrite_archive(path, change)
    with pytest.raises(ValueError, match=f"{re.escape(repr(str(path)))}.*: {field} ") as info:
        slq.load(path)
    assert type(info.value) is ValueError


def test_saved_files_follow_the_umask(tmp_path: Path) -> None:
    dos = slq.density(MATRIX, num_steps=10, num_probes=2, seed=0)
    for umask in (0o022, 0o077, 0o002):
        previous = os.umask(umask)
        try:
            saved = dos.save(tmp_path / f"dos{umask}.npz")
            checkpoint = tmp_path / f"run{umask}.npz"
            slq.density(MATRIX, num_steps=10, num_probes=2, seed=0, checkpoint=checkpoint)
        finally:
            os.umask(previous)
        for path in (saved, checkpoint):
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, (path.name, oct(umask))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_save_to_a_missing_directory_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "dos.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(repr(str(path)))):
        slq.density(MATRIX, num_steps=10, num_probes=2, seed=0).save(path)


def test_callback_sees_every_step_and_progress_can_be_forced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    steps: list[slq.LanczosStep] = []
    slq.density(MATRIX, **RUN, callback=steps.append, progress=True)
    assert len(steps) == 4 * 15  # four batches (2, 2, 2, 1) of 15 steps
    assert steps[0].probes == range(2) and steps[-1].probes == range(6, 7)
    assert steps[-1].step == 14 and steps[0].alpha.shape == (2,)
    assert "matvec" in capsys.readouterr().err
    slq.density(MATRIX, **RUN, progress=False)
    slq.density(MATRIX, **RUN)  # stderr is not a terminal under pytest: silent
    assert capsys.readouterr().err == ""


def test_import_slq_loads_no_framework_or_plotting() -> None:
    code = (
        "import sys, slq; heavy = ['torch', 'jax', 'tensorflow', 'matplotlib', 'tqdm', 'scipy'];"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_progress_bar_only_when_asked_or_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    silent = progress_bar(False, 3, "test")
    silent.update()
    silent.set_postfix_str("a stage")  # the stand-in has what `slq demo` calls on a bar
    silent.close()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert type(progress_bar(None, 3, "test")) is type(silent)
    bar = progress_bar(True, 3, "test", unit="stage")
    try:
        assert type(bar) is not type(silent) and (bar.total, bar.unit) == (3, "stage")
    finally:
        bar.close()


def test_json_ready_gives_strict_json() -> None:
    value = {1: np.float32(0.5), "b": (np.int64(3), np.bool_(True)), "c": np.array([np.inf])}
    ready = json_ready(value)
    assert ready == {"1": 0.5, "b": [3, True], "c": [None]}
    assert json.loads(json.dumps(ready, allow_nan=False)) == ready
    assert type(ready["b"][0]) is int and type(ready["b"][1]) is bool

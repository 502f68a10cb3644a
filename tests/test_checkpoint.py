"""Checkpoints of `density`: exact resumption; another run's or a damaged file refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import slq
from slq._archive import Archive

SPECTRUM = np.concatenate([np.linspace(-1.0, 1.0, 197), [5.0, 9.0, 20.0]])
MATRIX = np.diag(SPECTRUM)
RUN = {"num_steps": 15, "num_probes": 7, "probe_batch_size": 2, "seed": 5, "probe": "gaussian"}


def num_batches(path: Path) -> int:
    with Archive(path) as archive:
        return archive.integer("num_batches")


def test_checkpointed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    reference = slq.density(MATRIX, **RUN)
    first = slq.density(MATRIX, **{**RUN, "num_probes": 4}, checkpoint=path)  # two batches
    np.testing.assert_array_equal(first.alpha, reference.alpha[:4])
    resumed = slq.density(MATRIX, **RUN, checkpoint=path)
    np.testing.assert_array_equal(resumed.alpha, reference.alpha)
    np.testing.assert_array_equal(resumed.beta, reference.beta)
    assert resumed.num_matvecs == reference.num_matvecs
    # A seed=None call resumes with the checkpoint's seed.
    assert slq.density(MATRIX, **{**RUN, "seed": None}, checkpoint=path).seed == 5


def test_a_shorter_last_batch_is_redone(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    slq.density(MATRIX, **{**RUN, "num_probes": 5}, checkpoint=path)  # batches 2, 2, 1
    resumed = slq.density(MATRIX, **RUN, checkpoint=path)
    np.testing.assert_array_equal(resumed.alpha, slq.density(MATRIX, **RUN).alpha)


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"seed": 6}, "seed"),
        ({"num_steps": 16}, "num_steps"),
        ({"probe": "rademacher"}, "probe"),
        ({"probe_batch_size": 3}, "probe_batch_size"),
    ],
)
def test_checkpoint_of_another_run_is_refused(tmp_path: Path, change: dict, what: str) -> None:
    path = tmp_path / "run.npz"
    slq.density(MATRIX, **{**RUN, "num_probes": 2}, checkpoint=path)
    with pytest.raises(ValueError, match=f"different run.*{what}"):
        slq.density(MATRIX, **{**RUN, **change}, checkpoint=path)
    with pytest.raises(ValueError, match="dim"):
        slq.density(np.eye(50), **RUN, checkpoint=path)
    with pytest.raises(ValueError, match="dtype"):
        slq.density(MATRIX.astype(np.float32), **RUN, checkpoint=path)
    with pytest.raises(ValueError, match=r"\.npz"):
        slq.density(MATRIX, **RUN, checkpoint=tmp_path / "run.ckpt")


def rewrite(path: Path, change: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    """Apply `change` to the metadata and arrays of the archive at `path`, as a tamperer would."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(meta, arrays)
    np.savez(path, meta=np.asarray(json.dumps(meta)), **arrays)


def _settings(**values: Any) -> Callable[[dict, dict], None]:
    return lambda meta, arrays: meta["settings"].update(values)


def _array(name: str, value: Callable[[np.ndarray], Any]) -> Callable[[dict, dict], None]:
    return lambda meta, arrays: arrays.update({name: value(arrays[name])})


TAMPERED = {
    "settings.dim": _settings(dim="200"),
    "settings.num_steps": _settings(num_steps=15.0),
    "settings.seed": _settings(seed=True),
    "settings.probe": _settings(probe=["gaussian"]),
    "settings": lambda meta, arrays: meta.update(settings=[1, 2]),
    "num_batches": lambda meta, arrays: meta.update(num_batches=-1),
    "format": lambda meta, arrays: meta.update(format="slq.SpectralDensity/1"),
    "alpha_1": _array("alpha_1", lambda a: a.astype(str)),
    "alpha_0": _array("alpha_0", lambda a: np.where(a == a[0, 0], np.nan, a)),
    "beta_0": _array("beta_0", lambda b: b[:, :-1]),
    "lengths_0": _array("lengths_0", lambda n: n + 100),
    "residual_0": _array("residual_0", lambda r: -r),
    "matvecs_1": _array("matvecs_1", lambda _: np.array(10**12)),
}


@pytest.mark.parametrize("field", TAMPERED)
def test_a_tampered_checkpoint_is_refused_naming_the_file_and_field(
    tmp_path: Path, field: str
) -> None:
    path = tmp_path / "run.npz"
    slq.density(MATRIX, **{**RUN, "num_probes": 4}, checkpoint=path)
    rewrite(path, TAMPERED[field])
    with pytest.raises(ValueError, match=f"{re.escape(repr(str(path)))}.* {re.escape(field)} "):
        slq.density(MATRIX, **RUN, checkpoint=path)


_WORKER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import slq

    matrix = np.diag(np.concatenate([np.linspace(-1.0, 1.0, 197), [5.0, 9.0, 20.0]]))

    def slow(v):
        time.sleep(0.004)
        return matrix @ v

    op = slq.aslinearoperator(slow, shape=matrix.shape, dtype=np.float64)
    run = dict(num_steps=15, num_probes=7, probe_batch_size=2, seed=5, probe="gaussian")
    slq.density(op, **run, checkpoint=sys.argv[1])
    """
)


@pytest.mark.parametrize("delay", [0.0, 0.13])
def test_a_run_killed_with_sigkill_resumes_to_the_same_result(tmp_path: Path, delay: float) -> None:
    path = tmp_path / "run.npz"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen([sys.executable, str(script), str(path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait()
    assert path.exists(), "the worker finished no batch before it was killed"
    assert num_batches(path) < 4, "the worker finished before it was killed"
    resumed = slq.density(MATRIX, **RUN, checkpoint=path)
    reference = slq.density(MATRIX, **RUN)
    np.testing.assert_allclose(resumed.alpha, reference.alpha, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(resumed.beta, reference.beta, rtol=1e-13, atol=1e-15)


def test_an_operator_that_does_not_write_files_only_reads_the_checkpoint(tmp_path: Path) -> None:
    class Replica:  # a data-parallel adapter on a rank other than 0
        shape, dtype, writes_files = MATRIX.shape, MATRIX.dtype, False

        def matvec(self, v: np.ndarray) -> np.ndarray:
            return MATRIX @ v

    path = tmp_path / "run.npz"
    slq.density(Replica(), **RUN, checkpoint=path)
    assert not path.exists()
    slq.density(MATRIX, **{**RUN, "num_probes": 4}, checkpoint=path)
    resumed = slq.density(Replica(), **RUN, checkpoint=path)
    np.testing.assert_array_equal(resumed.alpha, slq.density(MATRIX, **RUN).alpha)
    assert num_batches(path) == 2

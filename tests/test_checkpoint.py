"""Checkpoints of `density`: exact resumption; another run's, operator's or file's refused."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Backend, assert_close, rewrite_archive

import slq
from slq._archive import Archive
from slq._fingerprint import fingerprint, fingerprint_difference
from slq._lock import process_start_time

SPECTRUM = np.concatenate([np.linspace(-1.0, 1.0, 197), [5.0, 9.0, 20.0]])
MATRIX = np.diag(SPECTRUM)
_Q = np.linalg.qr(np.random.default_rng(0).standard_normal((200, 200)))[0]
DENSE = (_Q * SPECTRUM) @ _Q.T  # every product rounds: another summation order rounds otherwise
RUN = {"num_steps": 15, "num_probes": 7, "probe_batch_size": 2, "seed": 5, "probe": "gaussian"}


class Counting:
    """`matrix` as an operator that counts its products (columns of `matmat`)."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix, self.shape, self.dtype, self.products = matrix, matrix.shape, matrix.dtype, 0

    def matvec(self, v: np.ndarray) -> np.ndarray:
        self.products += 1
        return self.matrix @ v

    def matmat(self, v: np.ndarray) -> np.ndarray:
        self.products += v.shape[1]
        return self.matrix @ v


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
    assert not path.with_name("run.npz.lock").exists()


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


def test_checkpoint_of_another_operator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    slq.density(DENSE, **{**RUN, "num_probes": 2}, checkpoint=path)
    others = {
        "100 B": 100 * np.diag(SPECTRUM[::-1]),  # the case: another matrix, scaled
        "permuted": DENSE[::-1, ::-1],  # the same spectrum and norm
        "perturbed": DENSE * (1 + 1e-9),
    }
    for name, other in others.items():
        op = Counting(other)
        with pytest.raises(ValueError, match=r"written for another operator: .* was .*, now"):
            slq.density(op, **RUN, checkpoint=path)
        assert op.products == 1, name  # the fingerprint, and nothing else
    was, now = (fingerprint(slq.aslinearoperator(a)).norm for a in (DENSE, others["100 B"]))
    with pytest.raises(ValueError, match=f"‖A v‖ was {was:.4g}, now {now:.4g}"):
        slq.density(others["100 B"], **RUN, checkpoint=path)


def test_the_same_operator_resumes_through_another_product(
    tmp_path: Path, backend: Backend
) -> None:
    path, run = tmp_path / "run.npz", {**RUN, "num_probes": 4}  # batches of one shape
    slq.density(DENSE, **{**run, "num_probes": 2}, checkpoint=path)
    # Reversed summation, one column at a time: rounds otherwise than numpy's matmul.
    reversed_sum = slq.aslinearoperator(
        lambda v: DENSE[:, ::-1] @ v[::-1], shape=DENSE.shape, dtype=np.float64
    )
    a, b = fingerprint(slq.aslinearoperator(DENSE)), fingerprint(reversed_sum)
    assert a != b and fingerprint_difference(a, b, reversed_sum) is None
    resumed = slq.density(backend.asarray(DENSE), **run, checkpoint=path)
    reference = slq.density(DENSE, **run)
    assert_close(resumed.alpha, reference.alpha, scale=20.0)  # ‖A‖ = 20


def test_the_fingerprint_costs_one_product_not_counted_in_the_result(tmp_path: Path) -> None:
    op = Counting(DENSE)
    plain = slq.density(op, **RUN)
    products, op.products = op.products, 0
    checked = slq.density(op, **RUN, checkpoint=tmp_path / "run.npz")
    assert op.products == products + 1
    assert checked.num_matvecs == plain.num_matvecs == products
    np.testing.assert_array_equal(checked.alpha, plain.alpha)


def fake_lock(path: Path, pid: int) -> Path:
    lock = path.with_name(path.name + ".lock")
    owner = {"pid": pid, "host": socket.gethostname(), "started": process_start_time(pid)}
    lock.write_text(json.dumps({**owner, "token": "another run"}), encoding="utf-8")
    return lock


def test_a_live_lock_is_refused_before_any_product_and_a_dead_one_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.npz"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (os.getpid(), sleeper.pid):
            lock = fake_lock(path, pid)
            op = Counting(MATRIX)
            with pytest.raises(
                RuntimeError, match=f"in use by process {pid}.*{re.escape(str(lock))}"
            ):
                slq.density(op, **RUN, checkpoint=path)
            assert op.products == 0 and lock.exists() and not path.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    with caplog.at_level(logging.WARNING, logger="slq"):
        slq.density(MATRIX, **RUN, checkpoint=path)
    assert f"of process {sleeper.pid}, which has ended" in caplog.text
    assert path.exists() and not lock.exists()


def test_a_lock_of_another_host_or_unreadable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    lock = path.with_name("run.npz.lock")
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "token": "x"}), encoding="utf-8")
    with pytest.raises(RuntimeError, match="process 1 on host 'elsewhere'"):
        slq.density(MATRIX, **RUN, checkpoint=path)
    lock.write_text("", encoding="utf-8")
    with pytest.raises(RuntimeError, match="unknown process"):
        slq.density(MATRIX, **RUN, checkpoint=path)


def test_the_lock_is_released_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"

    def fail(step: slq.LanczosStep) -> None:
        if step.probes.start == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        slq.density(MATRIX, **RUN, checkpoint=path, callback=fail)
    assert num_batches(path) == 1 and not path.with_name("run.npz.lock").exists()


def test_a_run_whose_lock_was_taken_stops_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"

    def take_over(step: slq.LanczosStep) -> None:
        if step.probes.start == 2:
            fake_lock(path, os.getpid())

    with pytest.raises(RuntimeError, match="another run has taken over the lock"):
        slq.density(MATRIX, **RUN, checkpoint=path, callback=take_over)
    assert num_batches(path) == 1
    assert json.loads(path.with_name("run.npz.lock").read_text())["token"] == "another run"


def test_an_unwritable_checkpoint_is_refused_before_any_product(tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("")
    for path in (tmp_path / "missing" / "run.npz", tmp_path / "a file" / "run.npz"):
        op = Counting(MATRIX)
        with pytest.raises(
            ValueError, match=f"cannot write the checkpoint {re.escape(repr(str(path)))}"
        ):
            slq.density(op, **RUN, checkpoint=path)
        assert op.products == 0
    with pytest.raises(TypeError, match=r"checkpoint must be a path \(str or os.PathLike\)"):
        slq.density(MATRIX, **RUN, checkpoint=3)  # type: ignore[arg-type]


def test_a_read_only_directory_is_refused_before_any_product(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.name == "posix" and os.geteuid() == 0:  # root writes anywhere: refuse as a mount would
        create = os.open

        def read_only(name: Any, *args: Any, **kwargs: Any) -> int:
            if Path(name).parent == tmp_path:
                raise PermissionError(13, "Permission denied", str(name))
            return create(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
    tmp_path.chmod(0o500)
    try:
        op = Counting(MATRIX)
        with pytest.raises(ValueError, match=r"cannot write the checkpoint .*: Permission denied"):
            slq.density(op, **RUN, checkpoint=tmp_path / "run.npz")
        assert op.products == 0
    finally:
        tmp_path.chmod(0o700)


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
    "fingerprint": lambda meta, arrays: arrays.pop("fingerprint"),
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
    rewrite_archive(path, TAMPERED[field])
    op = Counting(MATRIX)
    with pytest.raises(ValueError, match=f"{re.escape(repr(str(path)))}.* {re.escape(field)} "):
        slq.density(op, **RUN, checkpoint=path)
    assert op.products == 0


def test_a_checkpoint_without_fingerprint_or_with_a_bad_seed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    slq.density(MATRIX, **{**RUN, "num_probes": 2}, checkpoint=path)
    rewrite_archive(path, _settings(seed="5"))
    with pytest.raises(ValueError, match=r"settings\.seed must be an integer"):
        slq.density(MATRIX, **{**RUN, "seed": None}, checkpoint=path)
    rewrite_archive(path, lambda meta, arrays: meta.update(format="slq.density-checkpoint/1"))
    with pytest.raises(ValueError, match="older slq, without the operator fingerprint"):
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
def test_a_run_killed_with_sigkill_resumes_to_the_same_result(
    tmp_path: Path, delay: float, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.npz"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen([sys.executable, str(script), str(path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # A second run on the same file while the worker is alive: refused, no product.
        op = Counting(MATRIX)
        with pytest.raises(RuntimeError, match=f"in use by process {worker.pid}"):
            slq.density(op, **RUN, checkpoint=path)
        assert op.products == 0
        time.sleep(delay)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait()
    assert path.exists(), "the worker finished no batch before it was killed"
    assert num_batches(path) < 4, "the worker finished before it was killed"
    with caplog.at_level(logging.WARNING, logger="slq"):
        resumed = slq.density(MATRIX, **RUN, checkpoint=path)
    assert "which has ended" in caplog.text  # the killed worker's lock, taken over
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
    # A replica takes no lock: rank 0 holds it while the others read.
    fake_lock(path, os.getpid())
    slq.density(Replica(), **RUN, checkpoint=path)

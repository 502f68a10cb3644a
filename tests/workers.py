"""Multi-process tests without races: launch workers, run one, and end it cleanly.

`launch_workers` runs ``python SCRIPT PORT OUT INDEX`` once per process and
waits. Two things made such tests fail at random before:

- A port found free by binding and closing a socket can be taken by anyone
  before the workers bind it (another test's workers, a lingering process).
  Here the parent holds the port, bound with SO_REUSEPORT, until the workers
  end: the kernel then refuses it to every other process, while a server that
  also asks for SO_REUSEPORT (gRPC's, under ``jax.distributed``) can still
  listen on it. torch workers need no port at all: they meet in a file
  (`rendezvous`), and gloo's own connections use ports the kernel assigns.
- A worker whose interpreter shuts down while gloo's background threads are
  alive aborts ("terminate called without an active exception"), even after a
  successful run. `run_worker` therefore ends every worker with ``os._exit``,
  after flushing, with status 0 only if its body returned.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

WORKER_TIMEOUT = 120.0
"""Seconds a group of workers may take; a worker still running then dumps its stacks and is
killed, so a deadlock fails the test instead of hanging CI."""


def error_message(build: Callable[[], object]) -> str:
    """Return "Type: message" of what `build()` raises, or "no error" (for a worker to record)."""
    try:
        build()
    except Exception as err:  # recorded for the parent to check
        return f"{type(err).__name__}: {err}"
    return "no error"


def rendezvous(out: Path) -> str:
    """The ``init_method`` of a torch process group for the workers writing to `out`."""
    return f"file://{out / 'rendezvous'}"


def _reserved_port() -> socket.socket:
    """A localhost socket bound to a free port with SO_REUSEPORT, held to reserve the port."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    return s


def launch_workers(
    script: str, out: Path, count: int = 2, env: dict[str, str] | None = None
) -> None:
    """Run ``python script PORT OUT INDEX`` for INDEX in 0..count-1 and wait for all of them.

    Fails, rather than hangs, when a worker deadlocks or exits with an error.
    Workers' stderr goes to files, not pipes (a full pipe would block a worker its
    peers wait for); each worker runs in its own session so that a timeout kills
    it with anything it started.
    """
    logs = [out / f"stderr{i}.txt" for i in range(count)]
    with _reserved_port() as reserved:
        port = str(reserved.getsockname()[1])
        workers = []
        for i, log in enumerate(logs):
            with log.open("w") as stderr:
                command = [sys.executable, script, port, str(out), str(i)]
                workers.append(
                    subprocess.Popen(command, stderr=stderr, env=env, start_new_session=True)
                )
        for worker in workers:
            try:
                worker.wait(timeout=WORKER_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    errors = [
        f"worker {i} (exit {w.returncode}):\n{log.read_text()[-3000:]}"
        for i, (w, log) in enumerate(zip(workers, logs, strict=True))
    ]
    assert all(w.returncode == 0 for w in workers), "\n".join(errors)


def run_worker(body: Callable[[int, Path, int], None]) -> NoReturn:
    """Run ``body(port, out, index)`` from `launch_workers`' command line, then exit at once.

    A worker still running a few seconds before the parent's timeout writes every
    thread's stack to stderr. The exit skips interpreter shutdown (see the module
    docstring): status 0 if `body` returned, 1 with its traceback otherwise.
    """
    faulthandler.dump_traceback_later(WORKER_TIMEOUT - 10, exit=True)
    port, out, index = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    status = 1
    try:
        body(port, out, index)
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

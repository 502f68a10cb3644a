"""A lock file beside a checkpoint, so that two live runs never write the same one."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import Any

__all__ = ["RunLock"]

logger = logging.getLogger("slq")


class RunLock:
    """An exclusive claim on `target`, held in the file ``target + ".lock"``.

    The lock file is created with ``O_CREAT | O_EXCL``, so that of two
    processes exactly one gets it; it holds the owner's pid, host, process start
    time and a random token. A lock left by a process that has died (on this
    host: its pid is gone, or now belongs to a process started later) is taken
    over with a warning; a live one, or one of another host (whose processes
    cannot be checked from here), is refused.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> lock = RunLock(pathlib.Path(tempfile.mkdtemp()) / "run.npz")
    >>> lock.acquire()
    >>> lock.path.exists()
    True
    >>> lock.release()
    >>> lock.path.exists()
    False
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = target.with_name(target.name + ".lock")
        self._token: str | None = None

    def acquire(self) -> None:
        """Take the lock, or raise RuntimeError naming its live holder and what to do."""
        for _ in range(3):  # a stale lock is removed, or a lock vanishes: try again
            if self._create():
                return
            holder = self._holder()
            if holder is None and not self.path.exists():
                continue  # released between our try and our look
            if not _is_stale(holder):
                raise self._refusal(holder)
            logger.warning(
                "checkpoint: taking over the lock %s of process %s, which has ended",
                self.path,
                holder and holder.get("pid"),
            )
            self.path.unlink(missing_ok=True)
        raise self._refusal(self._holder())

    def check_owned(self) -> None:
        """Raise RuntimeError if another process has taken the lock since `acquire`."""
        holder = self._holder()
        if self._token is None or holder is None or holder.get("token") != self._token:
            msg = (
                f"another run has taken over the lock {str(self.path)!r} of checkpoint "
                f"{str(self.target)!r}; this run stops rather than overwrite its file"
            )
            raise RuntimeError(msg)

    def release(self) -> None:
        """Remove the lock file if this process still holds it."""
        holder = self._holder()
        if self._token is not None and holder is not None and holder.get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def _create(self) -> bool:
        token = secrets.token_hex(8)
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "token": token}
        owner["started"] = process_start_time(os.getpid())
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(self.path, flags, 0o666)
        except FileExistsError:
            return False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(owner, f)
        except BaseException:
            self.path.unlink(missing_ok=True)  # an empty lock would lock out every later run
            raise
        self._token = token
        return True

    def _holder(self) -> dict[str, Any] | None:
        """Return the lock file's owner record, or None if it is gone or unreadable."""
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _refusal(self, holder: dict[str, Any] | None) -> RuntimeError:
        who = (
            "an unknown process (the lock file is unreadable)"
            if holder is None
            else f"process {holder.get('pid')!r} on host {holder.get('host')!r}"
        )
        msg = (
            f"checkpoint {str(self.target)!r} is in use by {who}: two runs must not share "
            f"one checkpoint. Wait for that run or pass another path; if no such run is "
            f"alive, delete {str(self.path)!r}"
        )
        return RuntimeError(msg)


def _is_stale(holder: dict[str, Any] | None) -> bool:
    """Return True only for a lock whose owner is known to have ended (on this host)."""
    if holder is None or holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if type(pid) is not int or pid <= 0:
        return False
    if not _alive(pid):
        return True
    started = holder.get("started")
    now = process_start_time(pid)
    return started is not None and now is not None and started != now  # pid reused


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill would signal the process: assume it is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def process_start_time(pid: int) -> str | None:
    """Return when process `pid` started, in clock ticks since boot (Linux), or None.

    Tells a live owner from a new process that was given a dead owner's pid.

    Examples
    --------
    >>> import os
    >>> process_start_time(os.getpid()) == process_start_time(os.getpid())
    True
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the name, in parentheses, may hold spaces
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5)

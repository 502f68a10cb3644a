"""Whether a matrix and a run fit in the memory available, checked before anything is allocated.

The run's own arrays are counted by `slq.memory_estimate` (the Lanczos basis,
the working vectors, the coefficients), the matrix by its `MatrixInfo`; both
are compared with the memory the machine has available now.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from slq.apps.cli.errors import UsageError
from slq.apps.cli.file_reading import MatrixFileError
from slq.apps.cli.matrix_info import MatrixInfo
from slq.memory import format_bytes, memory_estimate
from slq.operator import aslinearoperator

__all__ = ["available_memory", "check_load_fits", "check_options_fit", "check_run_fits"]

_MEMINFO = Path("/proc/meminfo")
# A container's limit (cgroup v2); "max" when there is none.
_CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")


def available_memory() -> int | None:
    """Return the bytes of memory available to new allocations, or None where unknown.

    Linux's MemAvailable (free memory plus what the kernel can reclaim), capped
    by a container's cgroup limit; elsewhere the free, else the total, physical
    memory that `os.sysconf` reports.

    Examples
    --------
    >>> from slq.apps.cli.resources import available_memory
    >>> memory = available_memory()
    >>> memory is None or memory > 0
    True
    """
    found = _meminfo_available() or _sysconf("SC_AVPHYS_PAGES") or _sysconf("SC_PHYS_PAGES")
    limit = _cgroup_limit()
    return min(found, limit) if found and limit else found or limit


def check_load_fits(info: MatrixInfo) -> None:
    """Refuse a file whose reading would need more memory than is available.

    Examples
    --------
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from slq.apps.cli.matrix_info import MatrixInfo
    >>> from slq.apps.cli.resources import check_load_fits
    >>> check_load_fits(MatrixInfo(Path("a.npy"), "npy", 3, np.dtype("float64"), 9, False, 72))
    """
    available = available_memory()
    if available is not None and info.load_bytes > available:
        msg = (
            f"{info.path}: reading this {info.n} x {info.n} matrix needs about "
            f"{format_bytes(info.load_bytes)} of memory but {format_bytes(available)} is available"
        )
        raise MatrixFileError(msg)


def check_options_fit(num_steps: int, num_probes: int, reorthogonalize: str) -> None:
    """Refuse --steps and --probes that no matrix, not even a 1 x 1 one, leaves room for.

    Examples
    --------
    >>> from slq.apps.cli.resources import check_options_fit
    >>> check_options_fit(90, 10, "full")
    """
    available = available_memory()
    least = _run_bytes(1, np.dtype(np.float32), reorthogonalize)(num_steps, num_probes)
    if available is not None and least > available:
        msg = (
            f"--probes {num_probes} with --steps {num_steps} need at least "
            f"{format_bytes(least)} of memory for any matrix, but {format_bytes(available)} "
            "is available; lower --probes"
        )
        raise UsageError(msg)


def check_run_fits(
    info: MatrixInfo, *, num_steps: int, num_probes: int, reorthogonalize: str
) -> int | None:
    """Refuse a run whose matrix and arrays (`slq.memory_estimate`) exceed the memory available.

    The message names both sizes and the largest --probes and --steps that fit.
    Counted without the copy of a part's basis that a split batch may make;
    returns the bytes left for the run's arrays (None where unknown), for
    `density`'s `max_memory`, which forgoes that copy where it does not fit.

    Examples
    --------
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from slq.apps.cli.matrix_info import MatrixInfo
    >>> from slq.apps.cli.resources import check_run_fits
    >>> info = MatrixInfo(Path("a.npy"), "npy", 3, np.dtype("float64"), 9, False, 72)
    >>> room = check_run_fits(info, num_steps=90, num_probes=10, reorthogonalize="full")
    """
    available = available_memory()
    run = _run_bytes(info.n, info.dtype, reorthogonalize)
    need = info.nbytes + run(num_steps, num_probes)
    if available is None:
        return None
    if need <= available:
        return available - info.nbytes
    room = available - info.nbytes
    msg = (
        f"{info.path}: n = {info.n}: the run needs about {format_bytes(need)} of memory "
        f"(the matrix {format_bytes(info.nbytes)}, {num_probes} probes x "
        f"{min(num_steps, info.n)} Lanczos steps {format_bytes(need - info.nbytes)}) but "
        f"{format_bytes(available)} is available; {_advice(info, run, num_steps, num_probes, room)}"
    )
    raise UsageError(msg)


def _advice(
    info: MatrixInfo, run: Callable[[int, int], int], steps: int, probes: int, room: int
) -> str:
    """Say which smaller --probes or --steps, or which --reorthogonalize, would fit in `room`."""
    if run(1, 1) > room:
        return "the matrix is too large for the memory of this machine"
    options = []
    most_probes = _largest(lambda k: run(steps, k) <= room, probes - 1)
    if most_probes:
        options.append(f"--probes {most_probes}")
    most_steps = _largest(lambda m: run(m, probes) <= room, min(steps, info.n) - 1)
    if most_steps:
        options.append(f"--steps {most_steps}")
    if _run_bytes(info.n, info.dtype, "none")(steps, probes) <= room:
        options.append("--reorthogonalize none")
    return "use " + " or ".join(options) if options else "lower --probes and --steps"


def _largest(fits: Callable[[int], bool], upper: int) -> int:
    """Return the largest k in [1, upper] with fits(k), for `fits` true up to a point; else 0."""
    low, high = 0, upper
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def _run_bytes(n: int, dtype: np.dtype, reorthogonalize: str) -> Callable[[int, int], int]:
    """Return (steps, probes) -> bytes of `slq.density`'s arrays for an n x n matrix."""
    op = aslinearoperator(lambda v: v, shape=(n, n), dtype=dtype)

    def run_bytes(steps: int, probes: int) -> int:
        # One batch of all probes, never split: the least the run holds.
        estimate = memory_estimate(
            op, steps, probes, reorthogonalize=reorthogonalize, probe_batch_size=probes
        )
        return estimate.total

    return run_bytes


def _meminfo_available() -> int | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sysconf(pages: str) -> int | None:
    try:
        count, size = os.sysconf(pages), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # the name is unknown on this system
        return None
    return count * size if count > 0 and size > 0 else None


def _cgroup_limit() -> int | None:
    try:
        text = _CGROUP_LIMIT.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

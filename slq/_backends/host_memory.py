"""A Lanczos basis in host memory: zeros on 4 KiB pages, faulted in as its rows are written.

numpy advises transparent huge pages for every array over 4 MiB. A basis is
written a row a step, so each fresh 2 MiB page is faulted in by a step's store.
Where freed memory goes back to the hypervisor (virtio-balloon free page
reporting, as on this project's Firecracker VMs), the kernel finds free huge
pages only among those it has handed back, and each one then costs the host a
fault for every 4 KiB of it: writing the rows of a (8, 91, 10⁵) float64 basis
took 13.6 ms a step against 2.3 ms on 4 KiB pages, whose free lists hold
recently freed, still-backed memory. At k = 1 both cost the same. So the basis
is numpy's `zeros` (lazily zeroed by the OS, counted by `tracemalloc` as
numpy's arrays are) with that advice withdrawn where the OS takes it
(``MADV_NOHUGEPAGE``, Linux); torch's own CPU tensors get no huge pages either.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["basis_zeros"]

# numpy advises huge pages from 4 MiB on; below, there is nothing to withdraw.
_NUMPY_HUGE_PAGE_FROM = 4 * 1024 * 1024


def basis_zeros(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Return a C-ordered numpy array of zeros whose pages the OS maps 4 KiB at a time.

    Parameters
    ----------
    shape : tuple of int
        The array's shape.
    dtype : numpy dtype or its name
        Its element type.

    Returns
    -------
    numpy.ndarray
        Zeros, writable, not yet touched: each page is zeroed by the OS when it
        is first written.

    Examples
    --------
    >>> from slq._backends.host_memory import basis_zeros
    >>> a = basis_zeros((2, 91, 10_000), "float64")
    >>> a.shape, a.dtype.name, bool(a.any()), a.flags.c_contiguous
    ((2, 91, 10000), 'float64', False, True)
    """
    array = np.zeros(shape, dtype)
    if array.nbytes >= _NUMPY_HUGE_PAGE_FROM:
        _withdraw_huge_page_advice(array)
    return array


def _withdraw_huge_page_advice(array: np.ndarray) -> None:
    """Advise ``MADV_NOHUGEPAGE`` over the whole pages of `array`'s memory, where the OS can."""
    advice: int | None = getattr(mmap, "MADV_NOHUGEPAGE", None)  # Linux only
    if advice is None:
        return
    madvise = _madvise()
    if madvise is None:
        return
    page = mmap.PAGESIZE
    start = array.ctypes.data
    first, last = -(-start // page) * page, (start + array.nbytes) // page * page
    if last > first:
        madvise(first, last - first, advice)  # a refusal leaves the pages as they were


@functools.cache
def _madvise() -> Callable[[int, int, int], int] | None:
    """Return the C library's ``madvise``, or None where there is none to call."""
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (AttributeError, OSError, TypeError):  # no C library to open by name, or no madvise
        return None
    function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]

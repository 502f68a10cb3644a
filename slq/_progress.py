"""Progress reporting for long runs: an optional tqdm bar and a per-step callback."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["LanczosStep", "progress_bar"]

# A bar appears only once a run has taken this long, so short runs stay silent.
_BAR_DELAY_SECONDS = 2.0


class LanczosStep(NamedTuple):
    """What a `density` callback receives after every Lanczos step of a probe batch.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> steps = []
    >>> _ = slq.density(np.eye(5), num_steps=3, num_probes=2, seed=0, callback=steps.append)
    >>> steps[0].probes, steps[0].step, steps[0].alpha.round(6)
    (range(0, 2), 0, array([1., 1.]))
    """

    probes: range
    """The probes of the batch (their indices)."""
    step: int
    """j, counting from 0."""
    alpha: np.ndarray
    """Shape (b,): α_j of each probe of the batch (0 for a probe that has stopped)."""
    beta: np.ndarray
    """Shape (b,): β_j of each probe (0 from a probe's breakdown on)."""


class _NoBar:
    """Stands in for a tqdm bar when none is shown."""

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix_str(self, s: str) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def progress_bar(progress: bool | None, total: int, desc: str, *, unit: str = "matvec") -> Any:
    """Return a tqdm bar over `total` units (products by default), or a silent stand-in.

    None shows one only when stderr is a terminal and tqdm is installed, and
    only after the run has taken a couple of seconds; True insists (and needs
    tqdm); False never shows one.
    """
    if progress is False or (progress is None and not _stderr_is_terminal()):
        return _NoBar()
    try:
        tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError as err:
        if progress:
            msg = "progress=True needs tqdm: pip install tqdm (or pip install 'slq[progress]')"
            raise ImportError(msg) from err
        return _NoBar()
    delay = 0.0 if progress else _BAR_DELAY_SECONDS
    return tqdm(total=total, desc=desc, unit=unit, delay=delay, leave=False)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def step_hook(bar: Any, callback: Callable[[LanczosStep], Any] | None, probes: range) -> StepHook:
    """Return the per-step hook of `lanczos._run`: advance the bar, call the callback."""
    return StepHook(bar, callback, probes)


class StepHook:
    """Advances a progress bar and calls a `density` callback after every step."""

    def __init__(
        self, bar: Any, callback: Callable[[LanczosStep], Any] | None, probes: range
    ) -> None:
        self.bar, self.callback, self.probes = bar, callback, probes

    @property
    def skippable(self) -> bool:
        """Whether a run traced into a user's program (`jax.jit`) may skip it: no callback."""
        return self.callback is None

    def __call__(self, step: int, alpha: np.ndarray, beta: np.ndarray, active: int) -> None:
        """Advance the bar by `active` products; call the callback with the step."""
        self.bar.update(active)
        if self.callback is not None:
            self.callback(LanczosStep(self.probes, step, alpha.copy(), beta.copy()))

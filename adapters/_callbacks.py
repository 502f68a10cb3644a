"""What the training callbacks share: when to record, and the checks of their arguments.

Framework-neutral: the Lightning, Keras and Hugging Face callbacks each ask a
`Schedule` whether the point they are at is a recording point, and hand the
step to an `slq.Tracker`, which skips a step it already holds.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from slq._validate import check_positive_int

__all__ = ["Schedule", "check_tracker", "density_arguments", "host_random_untouched"]


@contextlib.contextmanager
def host_random_untouched() -> Iterator[None]:
    """Restore Python's and numpy's global random number generators on exit.

    A training loop may draw from them next (shuffling, augmentation): a
    recording in between must not shift what it draws.

    Examples
    --------
    >>> import random
    >>> from slq.adapters._callbacks import host_random_untouched
    >>> state = random.getstate()
    >>> with host_random_untouched():
    ...     _ = random.random()
    >>> random.getstate() == state
    True
    """
    # The legacy global generator is what user code draws from with np.random.*.
    python, numpy = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)  # noqa: NPY002


class Schedule:
    """When a callback records: every n optimiser steps, every n epochs, or each step.

    Training's start (step 0, or the step a resumed run starts from) is always a
    recording point: the weights before any update. With neither count given,
    every step is one, and the tracker's own ``every`` decides.

    Examples
    --------
    >>> from slq.adapters._callbacks import Schedule
    >>> by_steps = Schedule(every_n_steps=2, every_n_epochs=None)
    >>> [s for s in range(1, 7) if by_steps.at_step(s)], by_steps.at_epoch_end(1)
    ([2, 4, 6], False)
    >>> by_epochs = Schedule(every_n_steps=None, every_n_epochs=2)
    >>> by_epochs.at_step(4), [e for e in range(1, 5) if by_epochs.at_epoch_end(e)]
    (False, [2, 4])
    >>> Schedule(every_n_steps=2, every_n_epochs=1)
    Traceback (most recent call last):
    ValueError: give every_n_steps or every_n_epochs, not both; got 2 and 1
    """

    def __init__(self, every_n_steps: Any, every_n_epochs: Any) -> None:
        if every_n_steps is not None and every_n_epochs is not None:
            msg = (
                "give every_n_steps or every_n_epochs, not both; "
                f"got {every_n_steps!r} and {every_n_epochs!r}"
            )
            raise ValueError(msg)
        self.every_n_steps = _optional_count("every_n_steps", every_n_steps)
        self.every_n_epochs = _optional_count("every_n_epochs", every_n_epochs)

    @property
    def given(self) -> bool:
        """Whether a count was given (else each step is offered to the tracker)."""
        return self.every_n_steps is not None or self.every_n_epochs is not None

    def at_step(self, steps_done: int) -> bool:
        """Say whether the end of an optimiser step, `steps_done` in all, is a recording point."""
        if self.every_n_epochs is not None:
            return False
        return self.every_n_steps is None or steps_done % self.every_n_steps == 0

    def at_epoch_end(self, epochs_done: int) -> bool:
        """Say whether the end of an epoch, `epochs_done` epochs in all, is a recording point."""
        return self.every_n_epochs is not None and epochs_done % self.every_n_epochs == 0


def _optional_count(name: str, value: Any) -> int | None:
    return None if value is None else check_positive_int(name, value)


def check_tracker(tracker: Any, schedule: Schedule) -> Any:
    """Return `tracker`, or raise unless it is an `slq.Tracker` the schedule can drive.

    A callback's own count and a tracker's ``every`` > 1 would both filter the
    steps, and an epoch's last step is rarely a multiple of ``every``: give the
    schedule in one place.

    Examples
    --------
    >>> from slq.adapters._callbacks import Schedule, check_tracker
    >>> check_tracker("track.slq", Schedule(None, None))
    Traceback (most recent call last):
    TypeError: tracker must be an slq.Tracker, got str
    """
    if not all(hasattr(tracker, name) for name in ("due", "record", "maybe_record")):
        msg = f"tracker must be an slq.Tracker, got {type(tracker).__name__}"
        raise TypeError(msg)
    every = getattr(tracker, "every", 1)
    if schedule.given and every != 1:
        msg = (
            f"the tracker records every {every} steps and the callback has its own "
            "every_n_steps / every_n_epochs: give the schedule once (slq.Tracker(..., every=1) "
            "with the callback's count, or the tracker's every without one)"
        )
        raise ValueError(msg)
    return tracker


def density_arguments(tracker: Any) -> dict[str, Any]:
    """Return the keyword arguments of `slq.density` that `tracker` records with.

    Examples
    --------
    >>> import tempfile
    >>> import slq
    >>> from slq.adapters._callbacks import density_arguments
    >>> density_arguments(slq.Tracker(tempfile.mkdtemp() + "/t", num_steps=20, num_probes=2))
    {'num_steps': 20, 'num_probes': 2, 'seed': 0}
    """
    settings = dict(tracker.settings)
    options = settings.pop("density_options")
    return {**settings, **options}

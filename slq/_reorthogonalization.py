"""Reorthogonalisation policies: how the Lanczos engine keeps its basis orthogonal.

A policy says whether the basis is stored, how a step's residual is formed, and
against how many stored vectors it is then projected. `slq._lanczos` runs a
policy, `slq.memory` counts its arrays, and `lanczos`' docstring describes it;
where the basis lives (device or host) is a separate choice, `slq._basis`. A new
policy is one more class here, registered in `POLICIES` (model: lineax's
solvers, an abstract ``init``/``compute`` pair; here `schedule` and
`Schedule.rows_to_project`).
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

from slq._orthogonality import OrthogonalityMonitor
from slq._validate import check_choice

__all__ = [
    "POLICIES",
    "REORTHOGONALIZE",
    "Full",
    "NoReorthogonalization",
    "Partial",
    "Policy",
    "Schedule",
    "policy",
]


class Schedule(Protocol):
    """A policy's state for one batch of probes: which steps project, and how far."""

    def rows_to_project(
        self, j: int, alpha: np.ndarray, beta: np.ndarray, image_norm: np.ndarray
    ) -> int:
        """Return how many stored vectors r_j is projected against after step j (0: none)."""

    def projected(self, j: int, beta: np.ndarray) -> None:
        """Take β_j = ‖r_j‖ after the projection the schedule asked for."""


class Policy:
    """A reorthogonalisation policy (abstract): its arrays, and a `Schedule` per batch."""

    name: ClassVar[str]
    stores_basis: ClassVar[bool] = True
    """Whether the Lanczos vectors are kept (they are also kept when returned)."""
    projects_every_step: ClassVar[bool] = False
    """Whether every step projects against the whole basis, which then subsumes the
    three-term recurrence in one projection when the basis is on the device."""
    local: ClassVar[bool] = False
    """Whether the recurrence is followed by a Gram–Schmidt pass against q_j, q_{j−1}."""
    update_temporaries: ClassVar[int]
    """(b, n) temporaries of a step's update at its peak (counted for `memory_estimate`)."""
    host_numbers_per_step: ClassVar[int] = 0
    """float64 numbers per probe and step the schedule keeps on the host."""

    def schedule(self, k: int, m: int, eps: float) -> Schedule:
        """Return the state of one batch: k probes, m steps, unit roundoff eps."""
        raise NotImplementedError


class _EveryStep:
    def rows_to_project(
        self, j: int, alpha: np.ndarray, beta: np.ndarray, image_norm: np.ndarray
    ) -> int:
        return j + 1

    def projected(self, j: int, beta: np.ndarray) -> None:
        pass


class _Never:
    def rows_to_project(
        self, j: int, alpha: np.ndarray, beta: np.ndarray, image_norm: np.ndarray
    ) -> int:
        return 0

    def projected(self, j: int, beta: np.ndarray) -> None:
        pass


class Full(Policy):
    """Every new vector projected against the whole basis (Gram–Schmidt, twice where needed).

    Memory k (m+1) n numbers, O(j n) work at step j, no ghost eigenvalues
    (Golub & Van Loan 2013, §10.3.1).

    Examples
    --------
    >>> import numpy as np
    >>> from slq._reorthogonalization import policy
    >>> none = np.zeros(1)
    >>> policy("full").schedule(1, 10, 2.0**-52).rows_to_project(3, none, none, none)
    4
    """

    name = "full"
    projects_every_step = True
    # Gram–Schmidt twice keeps A q_j, two successive projections and one product of
    # coefficients and basis alive.
    update_temporaries = 3

    def schedule(self, k: int, m: int, eps: float) -> Schedule:
        """Project at every step against every stored vector."""
        return _EveryStep()


class Partial(Policy):
    """Projection only when Simon's (1984) estimate of lost orthogonality reaches sqrt(ε).

    Every vector is also reorthogonalised against its two predecessors, and the
    basis stays semi-orthogonal, which keeps Ritz values and quadrature weights
    as accurate as full reorthogonalisation's (see `slq._orthogonality`).

    Examples
    --------
    >>> import numpy as np
    >>> from slq._reorthogonalization import policy
    >>> one = np.ones(1)
    >>> policy("partial").schedule(1, 10, 2.0**-52).rows_to_project(0, one, one, one)
    0
    """

    name = "partial"
    local = True
    # The local pass, and a projection when it comes, keep three temporaries alive.
    update_temporaries = 3
    # Simon's ω estimates: two rows and a copy of α and β per probe.
    host_numbers_per_step = 4

    def schedule(self, k: int, m: int, eps: float) -> Schedule:
        """Return Simon's ω-recurrence for k probes of m steps."""
        return OrthogonalityMonitor(k, m, eps=eps)


class NoReorthogonalization(Policy):
    """The bare three-term recurrence (Paige 1976): O(k n) memory, ghosts in floating point.

    Examples
    --------
    >>> from slq._reorthogonalization import policy
    >>> policy("none").stores_basis
    False
    """

    name = "none"
    stores_basis = False
    # The recurrence keeps two temporaries (numpy reuses a temporary's buffer for a third).
    update_temporaries = 2

    def schedule(self, k: int, m: int, eps: float) -> Schedule:
        """Never project."""
        return _Never()


POLICIES: dict[str, Policy] = {p.name: p for p in (Full(), Partial(), NoReorthogonalization())}
"""The policies by the name `reorthogonalize=` takes."""

REORTHOGONALIZE = tuple(POLICIES)


def policy(name: str) -> Policy:
    """Return the policy named `name`, or raise a ValueError naming `reorthogonalize`.

    Examples
    --------
    >>> from slq._reorthogonalization import policy
    >>> policy("partial").name
    'partial'
    """
    return POLICIES[check_choice("reorthogonalize", name, REORTHOGONALIZE)]

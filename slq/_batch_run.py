"""One batch of eager Lanczos recurrences, step by step, and its parts.

Probes are independent recurrences that a batch advances together, one
product a step. A batch can therefore be split at any step into parts that
continue on their own (`slq._batch_split` decides when): each part holds its
probes' rows of the vectors, and views of the batch's basis and coefficients,
so what a part computes lands where the batch keeps it, with the arithmetic of
the batch for each probe (the same coefficients, to the rounding of products
of another width). `merge` stacks the parts' vectors back into the batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["BatchRun"]

OnStep = Callable[[int, np.ndarray, np.ndarray, int], None]


class BatchRun:
    """The state of k Lanczos recurrences (a batch, or a part of one) over m steps.

    `keeper` is the engine's `_BasisKeeper` of these probes (basis, policy,
    scale), `state` its (q, q_prev, beta_prev) named tuple of (k, n) rows.
    `step(j)` runs step j, `report(j)` hands it to `on_step` once every probe
    has run it, and `split` / `merge` make and re-join parts.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> slq.density(np.diag([1.0, 2.0, 3.0]), num_steps=2, num_probes=2, seed=0).alpha.shape
    (2, 2)
    """

    def __init__(
        self,
        op: Any,
        keeper: Any,
        state: Any,
        m: int,
        *,
        tolerance: float,
        probe_offset: int,
        on_step: OnStep | None = None,
        keeps_basis: bool = False,
    ) -> None:
        k = int(state.q.shape[0])
        self.op, self.keeper, self.state, self.m = op, keeper, state, m
        self.keeps_basis = keeps_basis  # the basis is returned: parts never detach from it
        self.tolerance, self.probe_offset, self.on_step = tolerance, probe_offset, on_step
        self.alpha, self.beta = np.zeros((k, m)), np.zeros((k, m))
        self.lengths = np.full(k, m)
        self.active = np.ones(k, dtype=bool)
        self.columns = np.zeros(m, dtype=np.int64)  # products at each step, over all parts
        self.steps_run = 0

    @property
    def k(self) -> int:
        """The number of probes."""
        return int(self.active.shape[0])

    @property
    def splittable(self) -> bool:
        """Whether parts can share this run's basis (full reorthogonalisation, numpy, torch)."""
        return self.k > 1 and self.keeper.part(0, 1) is not None

    def step(self, j: int) -> bool:
        """Run step j for these probes; return whether any of them is still running."""
        keeper, active = self.keeper, self.active
        w, a, b, image_norm = keeper.step(self.state, j, active, self.tolerance, self.probe_offset)
        self.alpha[:, j] = np.where(active, a, 0.0)
        broke = active & (b <= self.tolerance * image_norm)
        self.lengths[broke] = j + 1
        active &= ~broke  # in place: a part's `active` is a view of its batch's
        self.beta[:, j] = np.where(active, b, 0.0)
        self.columns[j] += self.k
        self.steps_run = j + 1
        # Stopped probes continue as zero rows (a part's rows rejoin its batch's).
        xp, dtype, device = self.op.xp, self.op.dtype, self.op.device
        scale = np.where(active, 1.0 / np.where(active, self.beta[:, j], 1.0), 0.0)
        # Columns made on the host: indexing a device array is an op of its own (0.3 ms in TF).
        scale_dev = xp.asarray(scale[:, None], dtype=dtype, device=device)
        beta_dev = xp.asarray(self.beta[:, j, None], dtype=dtype, device=device)
        w *= scale_dev  # in place where the library allows: the step's own residual
        self.state = self.state._replace(q=w, q_prev=self.state.q, beta_prev=beta_dev)
        return bool(active.any())

    def report(self, j: int) -> None:
        """Hand step j of every probe to `on_step` (coefficients of A, not of A / scale)."""
        if self.on_step is not None:
            scale = self.keeper.scale
            self.on_step(j, self.alpha[:, j] * scale, self.beta[:, j] * scale, int(self.columns[j]))

    def split(self, sizes: Sequence[int]) -> list[BatchRun]:
        """Return consecutive parts of `sizes` probes that continue from this run's step."""
        if sum(sizes) != self.k or min(sizes) < 1:
            msg = f"parts of sizes {list(sizes)} do not split {self.k} probes (a bug in slq)"
            raise AssertionError(msg)
        bounds = np.cumsum([0, *sizes]).tolist()
        return [self._part(start, stop) for start, stop in itertools.pairwise(bounds)]

    def _part(self, start: int, stop: int) -> BatchRun:
        keeper = self.keeper.part(start, stop)
        if keeper is None:
            msg = "a batch was split where its basis cannot be shared (a bug in slq)"
            raise AssertionError(msg)
        part = object.__new__(BatchRun)
        part.__dict__.update(self.__dict__)
        part.keeper = keeper
        part.state = type(self.state)(*(rows[start:stop] for rows in self.state))
        part.probe_offset = self.probe_offset + start
        part.on_step = None  # the batch reports a step once all its probes have run it
        for name in ("alpha", "beta", "lengths", "active"):
            setattr(part, name, getattr(self, name)[start:stop])  # views: written through
        return part

    def detach(self) -> None:
        """Go on, as a part that runs to its end, with a basis of its own (see `release`)."""
        if not self.keeps_basis:
            self.keeper.basis.detach(self.steps_run)

    def release(self) -> None:
        """Free the basis of a part that has run to its end, having detached it."""
        if not self.keeps_basis:
            self.keeper.basis.release()

    def merge(self, parts: Sequence[BatchRun]) -> None:
        """Take back the vectors, counts and progress of the `parts` this run was split into."""
        xp = self.op.xp
        self.state = type(self.state)(
            *(xp.concat(rows, axis=0) for rows in zip(*(p.state for p in parts), strict=True))
        )
        self.keeper.absorb([p.keeper for p in parts])
        self.steps_run = max(self.steps_run, *(p.steps_run for p in parts))

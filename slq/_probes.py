"""Random probe vectors, drawn on the host so that every backend sees the same ones."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from slq._validate import check_seed

__all__ = ["PROBES", "draw_probes", "root_seed", "seed_sequence"]

PROBES = ("rademacher", "gaussian")


def root_seed(seed: Any) -> int:
    """Return the integer entropy from which every probe of a run is derived.

    An int is used as is; None draws fresh entropy (recorded, so the run can be
    repeated); a numpy Generator is consumed for it, as in SciPy (SPEC 7); a
    SeedSequence gives its entropy when it is a root sequence (so that
    ``SeedSequence(5)`` and ``5`` draw the same probes), else 128 bits of its state.
    """
    seed = check_seed("seed", seed)
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # an int here
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    if isinstance(seed, np.random.SeedSequence):
        if not seed.spawn_key and isinstance(seed.entropy, numbers.Integral):
            return int(seed.entropy)
        return int.from_bytes(seed.generate_state(4).tobytes(), "little")
    return int(seed)


def seed_sequence(entropy: int, *key: int) -> np.random.SeedSequence:
    """Return the seed of the random stream named by `key`: probe i is key (i,)."""
    return np.random.SeedSequence(entropy, spawn_key=key)


def draw_probes(kind: str, n: int, indices: range, entropy: int) -> np.ndarray:
    """Return unit-norm probes number `indices` as the columns of a float64 (n, k) array.

    Probe i depends only on (`entropy`, i), so the probes do not depend on the
    batch size or on the number of probes drawn (the estimates then agree to
    rounding: products of other shapes round differently).

    Rademacher entries are ±1/sqrt(n); Gaussian probes, once normalised, are
    uniform on the sphere. Both give unbiased Hutchinson-type estimates; the
    Rademacher one has the smaller variance (Hutchinson 1990).
    """
    columns = np.empty((n, len(indices)))
    for column, index in enumerate(indices):
        rng = np.random.default_rng(seed_sequence(entropy, index))
        if kind == "rademacher":
            columns[:, column] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        else:
            columns[:, column] = rng.standard_normal(n)
    return columns / np.linalg.norm(columns, axis=0)

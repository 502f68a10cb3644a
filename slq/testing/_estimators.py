"""SLQ and KPM as the estimators `compare` takes them: ``(operator, budget, seed) -> estimate``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slq._density import density
from slq._validate import check_choice, check_interval, check_positive_int
from slq.kpm import DAMPINGS, KPMDensity, kpm_density
from slq.spectral_density import SpectralDensity

__all__ = ["KPM_BOUND_PRODUCTS", "kpm_estimator", "slq_estimator"]

KPM_BOUND_PRODUCTS = 20
"""Products `kpm_density` spends on its spectral interval when no bounds are given (the
20 Lanczos steps its docstring names; `tests/test_testing_compare.py` checks the total)."""


def _check_budget(budget: Any, needed: int, what: str) -> int:
    budget = check_positive_int("budget", budget)
    if budget < needed:
        msg = f"budget must be >= {needed} products for {what}, got {budget}"
        raise ValueError(msg)
    return budget


def slq_estimator(
    *, num_probes: int = 10, **density_options: Any
) -> Callable[[Any, int, int], SpectralDensity]:
    """Return SLQ as an estimator: `slq.density` with ⌊budget / num_probes⌋ steps per probe.

    Parameters
    ----------
    num_probes : int, default 10
        k; the budget is split into num_steps × k products.
    **density_options
        Passed on to `slq.density` (``probe=``, ``reorthogonalize=``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.testing import slq_estimator
    >>> dos = slq_estimator(num_probes=2)(np.diag(np.arange(50.0)), 40, 0)
    >>> dos.num_steps, dos.num_matvecs
    (20, 40)
    """
    k = check_positive_int("num_probes", num_probes)
    for reserved in ("num_steps", "num_probes", "seed"):
        if reserved in density_options:
            msg = f"{reserved} is set by the comparison (budget and seeds), not by slq_estimator"
            raise TypeError(msg)

    def slq(operator: Any, budget: int, seed: int) -> SpectralDensity:
        steps = _check_budget(budget, k, f"{k} SLQ probes") // k
        return density(operator, num_steps=steps, num_probes=k, seed=seed, **density_options)

    return slq


def kpm_estimator(
    *, num_probes: int = 10, bounds: tuple[float, float] | None = None, damping: str = "jackson"
) -> Callable[[Any, int, int], KPMDensity]:
    """Return KPM as an estimator: `slq.kpm_density` of the highest degree the budget buys.

    Without `bounds`, 20 products go to estimating the interval; each probe
    then costs ⌈degree / 2⌉ products, so degree = 2⌊(budget − 20) / k⌋.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.testing import kpm_estimator
    >>> kpm = kpm_estimator(num_probes=2)(np.diag(np.arange(50.0)), 60, 0)
    >>> kpm.degree, kpm.num_matvecs
    (40, 60)
    """
    k = check_positive_int("num_probes", num_probes)
    check_choice("damping", damping, DAMPINGS)
    if bounds is not None:
        bounds = check_interval("bounds", bounds, closed=False)
    spent = KPM_BOUND_PRODUCTS if bounds is None else 0

    def kpm(operator: Any, budget: int, seed: int) -> KPMDensity:
        budget = _check_budget(budget, spent + k, f"KPM with {k} probes")
        degree = 2 * ((budget - spent) // k)
        return kpm_density(
            operator, degree=degree, num_probes=k, seed=seed, bounds=bounds, damping=damping
        )

    return kpm

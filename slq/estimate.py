"""`Estimate`: a Monte Carlo estimate over probes, with its standard error and interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from slq._validate import (
    check_non_negative_int,
    check_open_interval,
    check_positive_int,
    check_real,
    check_real_array,
)

__all__ = ["Estimate", "check_spread", "probe_stderr", "student_t_quantile"]


def _student_t_central(t: float, dof: int) -> float:
    """Return P(|T| ≤ t) for Student's t with an integer number of degrees of freedom.

    The finite series of Abramowitz & Stegun (1964), 26.7.3 (odd dof) and 26.7.4
    (even dof), in θ = arctan(t / sqrt(dof)): exact, and no special functions needed.
    """
    theta = math.atan(t / math.sqrt(dof))
    cos2 = math.cos(theta) ** 2
    if dof % 2 == 0:
        term, total = 1.0, 1.0
        for j in range(2, dof, 2):  # 1, (1/2)c², (1·3)/(2·4)c⁴, ...
            term *= cos2 * (j - 1) / j
            total += term
        return math.sin(theta) * total
    if dof == 1:
        return 2.0 * theta / math.pi
    term = total = math.cos(theta)
    for j in range(3, dof - 1, 2):  # c, (2/3)c³, (2·4)/(3·5)c⁵, ...
        term *= cos2 * (j - 1) / j
        total += term
    return 2.0 / math.pi * (theta + math.sin(theta) * total)


def student_t_quantile(confidence: float, dof: int) -> float:
    """Return t such that P(|T| ≤ t) = `confidence` for Student's t with `dof` ≥ 1.

    Bisection on the exact central probability; accurate to ~1e-12.

    Examples
    --------
    >>> from slq.estimate import student_t_quantile
    >>> round(student_t_quantile(0.95, 9), 4)
    2.2622
    """
    confidence = check_open_interval("confidence", confidence, 0.0, 1.0)
    if dof > 10_000:  # the normal limit, to 1e-4 relative; the series would be long
        dof = 10_000
    low, high = 0.0, 1.0
    while _student_t_central(high, dof) < confidence:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if _student_t_central(mid, dof) < confidence:
            low = mid
        else:
            high = mid
        if high - low <= 1e-13 * high:
            break
    return 0.5 * (low + high)


def check_spread(num_probes: int) -> None:
    """Raise unless there are at least two probes: one leaves the spread unknown."""
    if num_probes < 2:
        msg = f"stderr needs at least 2 probes, this density has {num_probes}"
        raise ValueError(msg)


def probe_stderr(curves: np.ndarray) -> np.ndarray:
    """Return the standard error of the probe mean of `curves` (one row per probe)."""
    return curves.std(axis=0, ddof=1) / np.sqrt(curves.shape[0])


@dataclass(frozen=True)
class Estimate:
    """A scalar estimated as the mean of independent per-probe samples.

    Attributes
    ----------
    value : float
        The estimate.
    stderr : float
        Its standard error, std / sqrt(samples) of the per-probe samples (NaN
        with a single sample). For Hutch++ only the stochastic part contributes.
    num_samples : int
        The number of independent samples behind `stderr`.
    num_matvecs : int
        Operator products spent.
    method : str
        How it was computed, e.g. ``"hutchinson"``, ``"hutch++"``, ``"slq"``.

    Examples
    --------
    >>> from slq import Estimate
    >>> e = Estimate(10.0, 0.5, num_samples=10, num_matvecs=900, method="slq")
    >>> [round(x, 3) for x in e.interval(0.95)]
    [8.869, 11.131]
    """

    value: float
    stderr: float
    num_samples: int
    num_matvecs: int = 0
    method: str = ""

    def __post_init__(self) -> None:
        check_real("value", self.value)
        if check_real("stderr", self.stderr) < 0.0:  # NaN (one sample) passes
            msg = f"stderr must be >= 0 (or NaN), got {self.stderr}"
            raise ValueError(msg)
        check_positive_int("num_samples", self.num_samples)
        check_non_negative_int("num_matvecs", self.num_matvecs)
        if not isinstance(self.method, str):
            msg = f"method must be a string, got {self.method!r}"
            raise TypeError(msg)

    @classmethod
    def from_samples(cls, samples: np.ndarray, *, num_matvecs: int, method: str) -> Estimate:
        """Return the mean of `samples` (1-D) and its standard error.

        Examples
        --------
        >>> import numpy as np
        >>> from slq import Estimate
        >>> e = Estimate.from_samples(np.array([1.0, 2.0, 3.0]), num_matvecs=30, method="slq")
        >>> e.value, round(e.stderr, 6)
        (2.0, 0.57735)
        """
        samples = check_real_array("samples", samples)
        if samples.ndim != 1 or samples.size == 0:
            msg = f"samples must be a non-empty 1-D array, got shape {samples.shape}"
            raise ValueError(msg)
        k = samples.size
        stderr = float(samples.std(ddof=1) / np.sqrt(k)) if k > 1 else math.nan
        return cls(float(samples.mean()), stderr, k, num_matvecs, method)

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Return the two-sided Student-t confidence interval value ± t·stderr.

        It assumes the per-probe samples are roughly normal, which holds for
        sums over many eigenvalues (n large); with few samples from a skewed
        distribution the coverage falls below `confidence`.

        Raises
        ------
        ValueError
            With fewer than two samples (the spread is unknown) or a
            confidence outside (0, 1).

        Examples
        --------
        >>> from slq import Estimate
        >>> low, high = Estimate(0.0, 1.0, num_samples=30).interval(0.9)
        >>> round(high, 4)
        1.6991
        """
        confidence = check_open_interval("confidence", confidence, 0.0, 1.0)
        if self.num_samples < 2:
            msg = f"an interval needs at least 2 samples, this estimate has {self.num_samples}"
            raise ValueError(msg)
        half = student_t_quantile(confidence, self.num_samples - 1) * self.stderr
        return self.value - half, self.value + half

    def __float__(self) -> float:
        return self.value

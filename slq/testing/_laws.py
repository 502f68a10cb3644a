"""Limiting spectral distributions with their density, CDF, quantiles and moments.

Each law lives on an interval [a, b]. Numerical work (a CDF without a closed
form, quantiles) runs in the angle θ of x = c − r cos θ (c, r the interval's
centre and half-width): the square-root edges of the semicircle, Marchenko–Pastur
and Kesten–McKay laws and the inverse square-root edges of the arcsine law all
become smooth integrands in θ, so Gauss–Legendre panels reach rounding.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from slq._validate import (
    check_interval,
    check_non_negative_int,
    check_points,
    check_positive_float,
    check_positive_int,
    check_real,
)

__all__ = [
    "SpectralLaw",
    "arcsine",
    "kesten_mckay",
    "marchenko_pastur",
    "power_law",
    "semicircle",
    "uniform",
]

# Gauss–Legendre panels over θ ∈ [0, π]: the integrands are analytic there, so
# 64 panels of 20 nodes reach rounding for every law below.
_PANELS = 64
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)
# Quantiles: interpolate θ on this many points, then polish with Newton steps.
_TABLE = 4097
_NEWTON_STEPS = 6
_CHUNK = 1 << 15


@dataclass(frozen=True)
class SpectralLaw:
    """A limiting spectral distribution (n → ∞) on the interval `support`.

    Made by `semicircle`, `marchenko_pastur`, `kesten_mckay`, `uniform`,
    `power_law` and `arcsine`; each has a closed-form density.

    Attributes
    ----------
    name : str
        The law and its parameters, e.g. ``"semicircle(radius=2)"``.
    support : tuple of float
        The interval (a, b) holding all of the law's mass.

    Examples
    --------
    >>> from slq import testing
    >>> law = testing.semicircle(2.0)
    >>> law.support, float(law.cdf(0.0)), law.moment(4)
    ((-2.0, 2.0), 0.5, 2.0)
    >>> law.quantiles(4).round(4)
    array([-1.2694, -0.3953,  0.3953,  1.2694])
    """

    name: str
    support: tuple[float, float]

    # Subclasses whose CDF has a closed form set this and override `_cdf_inside`.
    closed_form_cdf: ClassVar[bool] = False

    def pdf(self, x: Any) -> np.ndarray:
        """Return the density at the points `x` (float64), 0 outside the support.

        Examples
        --------
        >>> from slq import testing
        >>> testing.uniform(0.0, 2.0).pdf([-1.0, 1.0])
        array([0. , 0.5])
        """
        x = check_points("x", x, finite=False)
        out = np.zeros(x.shape)
        inside = (x > self.support[0]) & (x < self.support[1])
        out[inside] = self._density(x[inside])
        return out

    def cdf(self, x: Any) -> np.ndarray:
        """Return the mass at or below the points `x` (float64).

        Examples
        --------
        >>> from slq import testing
        >>> testing.uniform(0.0, 2.0).cdf([-1.0, 0.5, 3.0])
        array([0.  , 0.25, 1.  ])
        """
        x = check_points("x", x, finite=False)
        out = np.where(x >= self.support[1], 1.0, 0.0)
        inside = (x > self.support[0]) & (x < self.support[1])
        out[inside] = self._cdf_inside(x[inside])
        return out

    def quantiles(self, n: int) -> np.ndarray:
        """Return the n sorted points at the law's (i + 1/2)/n quantiles, i = 0, …, n − 1.

        A deterministic "eigenvalue list" whose empirical distribution is this
        law to within 1/(2n) in the Kolmogorov distance.

        Examples
        --------
        >>> from slq import testing
        >>> testing.uniform(0.0, 1.0).quantiles(4)
        array([0.125, 0.375, 0.625, 0.875])
        """
        n = check_positive_int("n", n)
        return self._quantile((np.arange(n) + 0.5) / n)

    def moment(self, p: int) -> float:
        """Return the p-th moment ∫ xᵖ dμ(x): a closed form, else Gauss–Legendre quadrature.

        Examples
        --------
        >>> from slq import testing
        >>> testing.marchenko_pastur(0.5).moment(2)
        1.5
        """
        p = check_non_negative_int("p", p)
        return self._moment(p)

    # The map x = c − r cos θ and the law's mass in θ.

    def _x(self, theta: np.ndarray) -> np.ndarray:
        low, high = self.support
        return (low + high) / 2 - (high - low) / 2 * np.cos(theta)

    def _theta(self, x: np.ndarray) -> np.ndarray:
        low, high = self.support
        return np.arccos(np.clip(((low + high) / 2 - x) / ((high - low) / 2), -1.0, 1.0))

    def _mass_rate(self, theta: np.ndarray) -> np.ndarray:
        """d(mass)/dθ = pdf(x(θ)) · r sin θ, for θ strictly inside (0, π)."""
        half_width = (self.support[1] - self.support[0]) / 2
        return self._density(self._x(theta)) * half_width * np.sin(theta)

    @functools.cached_property
    def _panel_masses(self) -> np.ndarray:
        edges = np.linspace(0.0, np.pi, _PANELS + 1)
        half = np.diff(edges)[:, None] / 2
        nodes = edges[:-1, None] + half * (_NODES + 1)
        return np.concatenate([[0.0], np.cumsum((self._mass_rate(nodes) * half) @ _WEIGHTS)])

    def _mass_below(self, theta: np.ndarray) -> np.ndarray:
        """Return the mass of x(0, θ): closed form where there is one, else the panels."""
        if self.closed_form_cdf:
            return self._cdf_inside(self._x(theta))
        h = np.pi / _PANELS
        out = np.empty(theta.shape)
        for start in range(0, theta.size, _CHUNK):
            t = theta[start : start + _CHUNK]
            panel = np.clip(np.floor(t / h).astype(np.int64), 0, _PANELS - 1)
            half = (t - panel * h)[:, None] / 2
            with np.errstate(divide="ignore", invalid="ignore"):  # θ at a panel's start: 0/0
                rate = self._mass_rate(panel[:, None] * h + half * (_NODES + 1))
            partial = np.where(half > 0, rate * half, 0.0) @ _WEIGHTS
            out[start : start + _CHUNK] = self._panel_masses[panel] + partial
        return np.clip(out, 0.0, 1.0)

    def _cdf_inside(self, x: np.ndarray) -> np.ndarray:
        return self._mass_below(self._theta(x))

    def _quantile(self, q: np.ndarray) -> np.ndarray:
        # Newton in θ from a tabulated start: the mass is smooth and increasing in θ.
        table = np.linspace(0.0, np.pi, _TABLE)
        theta = np.interp(q, self._mass_below(table), table)
        for _ in range(_NEWTON_STEPS):
            with np.errstate(divide="ignore", invalid="ignore"):  # at the ends: 0/0
                rate = self._mass_rate(theta)
            usable = np.isfinite(rate) & (rate > 0)
            step = np.divide(self._mass_below(theta) - q, rate, where=usable, out=np.zeros_like(q))
            theta = np.clip(theta - step, 0.0, np.pi)
        return self._x(theta)

    def _moment(self, p: int) -> float:
        edges = np.linspace(0.0, np.pi, _PANELS + 1)
        half = np.diff(edges)[:, None] / 2
        nodes = edges[:-1, None] + half * (_NODES + 1)
        values = self._x(nodes) ** p * self._mass_rate(nodes) * half
        return float(np.sum(values @ _WEIGHTS))

    def _density(self, x: np.ndarray) -> np.ndarray:
        msg = f"{type(self).__name__} defines no density: subclass SpectralLaw and define _density"
        raise NotImplementedError(msg)


@dataclass(frozen=True)
class _Semicircle(SpectralLaw):
    radius: float = 2.0
    closed_form_cdf: ClassVar[bool] = True

    def _density(self, x: np.ndarray) -> np.ndarray:
        r = self.radius
        return 2.0 / (np.pi * r**2) * np.sqrt(np.maximum(r**2 - x**2, 0.0))

    def _cdf_inside(self, x: np.ndarray) -> np.ndarray:
        t = np.clip(x / self.radius, -1.0, 1.0)
        return 0.5 + (t * np.sqrt(1.0 - t**2) + np.arcsin(t)) / np.pi

    def _moment(self, p: int) -> float:
        # Even moments: Catalan numbers times (r/2)^p (Wigner 1955).
        if p % 2:
            return 0.0
        k = p // 2
        return math.comb(2 * k, k) / (k + 1) * (self.radius / 2) ** p


def semicircle(radius: float = 2.0) -> SpectralLaw:
    """Wigner's semicircle law on [−radius, radius]: the limit of GOE matrices.

    Density 2 √(r² − x²) / (π r²); moments m₂ₖ = Cₖ (r/2)²ᵏ with Cₖ the Catalan numbers.
    ``radius=2`` is the law of a Wigner matrix with off-diagonal variance 1/n (`goe`).

    Examples
    --------
    >>> from slq import testing
    >>> law = testing.semicircle()
    >>> law.name, law.moment(2), law.moment(6)
    ('semicircle(radius=2)', 1.0, 5.0)
    """
    radius = check_positive_float("radius", radius)
    return _Semicircle(f"semicircle(radius={radius:g})", (-radius, radius), radius)


@dataclass(frozen=True)
class _MarchenkoPastur(SpectralLaw):
    ratio: float = 1.0
    variance: float = 1.0

    def _density(self, x: np.ndarray) -> np.ndarray:
        low, high = self.support
        root = np.sqrt(np.maximum((high - x) * (x - low), 0.0))
        return root / (2 * np.pi * self.variance * self.ratio * x)

    def _moment(self, p: int) -> float:
        # Narayana polynomials: E xᵖ = σ²ᵖ Σₖ yᵏ C(p, k) C(p − 1, k) / (k + 1)
        # (Bai and Silverstein 2010, §3.1).
        y = self.ratio
        total = sum(y**k * math.comb(p, k) * math.comb(p - 1, k) / (k + 1) for k in range(p))
        return (self.variance**p) * (total if p else 1.0)


def marchenko_pastur(ratio: float, variance: float = 1.0) -> SpectralLaw:
    """Return the Marchenko–Pastur law of ratio y = n/m ∈ (0, 1]: the limit of XᵀX/m.

    X has shape (m, n).

    X has independent entries of variance σ² (`variance`). Support
    [σ²(1 − √y)², σ²(1 + √y)²]; density √((b − x)(x − a)) / (2π σ² y x); moments the
    Narayana polynomials in y. A ratio above 1 (fewer samples than dimensions) adds
    an atom of mass 1 − 1/y at 0, which this continuous law does not hold: it is
    refused; the nonzero eigenvalues then follow ``marchenko_pastur(1 / ratio,
    variance * ratio)``.

    Examples
    --------
    >>> from slq import testing
    >>> law = testing.marchenko_pastur(0.25)
    >>> law.support, law.moment(1)
    ((0.25, 2.25), 1.0)
    """
    ratio = check_real("ratio", ratio)
    if not 0.0 < ratio <= 1.0:
        msg = (
            f"ratio must be in (0, 1], got {ratio}: for ratio > 1 the spectrum has an atom "
            "at 0; its nonzero part is marchenko_pastur(1 / ratio, variance * ratio)"
        )
        raise ValueError(msg)
    variance = check_positive_float("variance", variance)
    support = (variance * (1 - math.sqrt(ratio)) ** 2, variance * (1 + math.sqrt(ratio)) ** 2)
    name = f"marchenko_pastur(ratio={ratio:g}, variance={variance:g})"
    return _MarchenkoPastur(name, support, ratio, variance)


@dataclass(frozen=True)
class _KestenMcKay(SpectralLaw):
    degree: int = 3

    def _density(self, x: np.ndarray) -> np.ndarray:
        d = self.degree
        root = np.sqrt(np.maximum(4 * (d - 1) - x**2, 0.0))
        return d * root / (2 * np.pi * (d**2 - x**2))

    def _moment(self, p: int) -> float:
        # Closed walks of length 2k from the root of the d-regular tree (McKay 1981).
        if p % 2:
            return 0.0
        k, d = p // 2, self.degree
        walks = sum(
            j * math.comb(2 * k - j, k) * d**j * (d - 1) ** (k - j) // (2 * k - j)
            for j in range(1, k + 1)
        )
        return float(walks) if k else 1.0


def kesten_mckay(degree: int) -> SpectralLaw:
    """Return the Kesten–McKay law: the limit of the adjacency spectrum of random d-regular graphs.

    Density d √(4(d − 1) − x²) / (2π (d² − x²)) on [−2√(d − 1), 2√(d − 1)], d ≥ 3
    (McKay 1981); the even moments count closed walks on the d-regular tree.

    Examples
    --------
    >>> from slq import testing
    >>> law = testing.kesten_mckay(3)
    >>> round(law.support[1], 6), law.moment(2), law.moment(4)
    (2.828427, 3.0, 15.0)
    """
    degree = check_positive_int("degree", degree)
    if degree < 3:
        msg = f"degree must be >= 3, got {degree}: a 1- or 2-regular graph is a matching or cycles"
        raise ValueError(msg)
    edge = 2 * math.sqrt(degree - 1)
    return _KestenMcKay(f"kesten_mckay(degree={degree})", (-edge, edge), degree)


@dataclass(frozen=True)
class _Uniform(SpectralLaw):
    closed_form_cdf: ClassVar[bool] = True

    def _density(self, x: np.ndarray) -> np.ndarray:
        return np.full(x.shape, 1.0 / (self.support[1] - self.support[0]))

    def _cdf_inside(self, x: np.ndarray) -> np.ndarray:
        low, high = self.support
        return (x - low) / (high - low)

    def _quantile(self, q: np.ndarray) -> np.ndarray:
        low, high = self.support
        return low + q * (high - low)

    def _moment(self, p: int) -> float:
        low, high = self.support
        return (high ** (p + 1) - low ** (p + 1)) / ((p + 1) * (high - low))


def uniform(low: float, high: float) -> SpectralLaw:
    """Return the uniform law on [low, high].

    Examples
    --------
    >>> from slq import testing
    >>> testing.uniform(-1.0, 1.0).moment(2)
    0.3333333333333333
    """
    low, high = check_interval("(low, high)", (low, high), closed=False, ends=("low", "high"))
    return _Uniform(f"uniform({low:g}, {high:g})", (low, high))


@dataclass(frozen=True)
class _PowerLaw(SpectralLaw):
    exponent: float = 1.0
    closed_form_cdf: ClassVar[bool] = True

    def _antiderivative(self, x: Any, power: float) -> Any:
        """∫ x^(power − 1) dx: log x at power 0."""
        return np.log(x) if power == 0 else np.power(x, power) / power

    def _normaliser(self) -> float:
        low, high = self.support
        power = 1.0 - self.exponent
        return float(self._antiderivative(high, power) - self._antiderivative(low, power))

    def _density(self, x: np.ndarray) -> np.ndarray:
        return np.power(x, -self.exponent) / self._normaliser()

    def _cdf_inside(self, x: np.ndarray) -> np.ndarray:
        power = 1.0 - self.exponent
        low = self.support[0]
        return (self._antiderivative(x, power) - self._antiderivative(low, power)) / (
            self._normaliser()
        )

    def _quantile(self, q: np.ndarray) -> np.ndarray:
        low, high = self.support
        power = 1.0 - self.exponent
        if power == 0:
            return low * np.power(high / low, q)
        lo, hi = low**power, high**power
        return np.clip(np.power(lo + q * (hi - lo), 1.0 / power), low, high)

    def _moment(self, p: int) -> float:
        low, high = self.support
        power = p + 1.0 - self.exponent
        mass = self._antiderivative(high, power) - self._antiderivative(low, power)
        return float(mass) / self._normaliser()


def power_law(exponent: float, low: float, high: float) -> SpectralLaw:
    """Return the law with density ∝ x^(−exponent) on [low, high], 0 < low < high.

    Heavy-tailed spectra (network Hessians, covariance of natural data) are
    often modelled this way. Any real exponent; 0 is `uniform`.

    Examples
    --------
    >>> from slq import testing
    >>> law = testing.power_law(2.0, 1.0, 4.0)
    >>> round(float(law.cdf(2.0)), 6), round(law.moment(1), 6)
    (0.666667, 1.848392)
    """
    exponent = check_real("exponent", exponent)
    if not np.isfinite(exponent):
        msg = f"exponent must be finite, got {exponent}"
        raise ValueError(msg)
    low, high = check_interval("(low, high)", (low, high), closed=False, ends=("low", "high"))
    if low <= 0:
        msg = f"low must be > 0 (x^(-exponent) needs x > 0), got {low}"
        raise ValueError(msg)
    return _PowerLaw(f"power_law({exponent:g}, {low:g}, {high:g})", (low, high), exponent)


@dataclass(frozen=True)
class _Arcsine(SpectralLaw):
    closed_form_cdf: ClassVar[bool] = True

    def _density(self, x: np.ndarray) -> np.ndarray:
        low, high = self.support
        return 1.0 / (np.pi * np.sqrt(np.maximum((x - low) * (high - x), 0.0)))

    def _cdf_inside(self, x: np.ndarray) -> np.ndarray:
        return self._theta(x) / np.pi

    def _quantile(self, q: np.ndarray) -> np.ndarray:
        return self._x(np.pi * q)

    def _moment(self, p: int) -> float:
        # x = c − r cos θ with θ uniform on [0, π]; E cos²ʲ θ = C(2j, j) / 4ʲ.
        low, high = self.support
        c, r = (low + high) / 2, (high - low) / 2
        return float(
            sum(
                math.comb(p, 2 * j) * c ** (p - 2 * j) * r ** (2 * j) * math.comb(2 * j, j) / 4**j
                for j in range(p // 2 + 1)
            )
        )


def arcsine(low: float = 0.0, high: float = 4.0) -> SpectralLaw:
    """Return the arcsine law on [low, high]: the limit of path and cycle Laplacians.

    On [0, 4] for both.

    Density 1 / (π √((x − a)(b − x))); on [0, 4] its moments are C(2p, p).

    Examples
    --------
    >>> from slq import testing
    >>> law = testing.arcsine()
    >>> law.moment(3), float(law.cdf(2.0))
    (20.0, 0.5)
    """
    low, high = check_interval("(low, high)", (low, high), closed=False, ends=("low", "high"))
    return _Arcsine(f"arcsine({low:g}, {high:g})", (low, high))

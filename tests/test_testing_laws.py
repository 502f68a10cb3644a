"""slq.testing's laws against their formulas: mass, moments, CDF, quantiles, support edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slq import testing

LAWS = [
    testing.semicircle(2.0),
    testing.semicircle(0.5),
    testing.marchenko_pastur(0.3, variance=2.0),
    testing.marchenko_pastur(1.0),
    testing.kesten_mckay(3),
    testing.kesten_mckay(8),
    testing.uniform(-1.0, 3.0),
    testing.power_law(2.5, 0.1, 10.0),
    testing.power_law(1.0, 1.0, 5.0),
    testing.power_law(-1.0, 1.0, 2.0),
    testing.arcsine(),
]

NODES, WEIGHTS = np.polynomial.legendre.leggauss(400)


def _integral(law: testing.SpectralLaw, f: object, high: float | None = None) -> float:
    """∫ f dμ over the support (or up to `high`), by one 400-point Gauss–Legendre rule.

    In x = c − r cos θ, as the laws do, the integrands are smooth; the laws use
    64 panels of 20 points instead, so the two rules share no node.
    """
    low, top = law.support
    c, r = (low + top) / 2, (top - low) / 2
    end = np.pi if high is None else float(np.arccos(np.clip((c - high) / r, -1, 1)))
    t = (NODES + 1) * end / 2
    x = c - r * np.cos(t)
    values = f(x) * law.pdf(x) * r * np.sin(t)  # type: ignore[operator]
    return float(values @ WEIGHTS * end / 2)


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_each_law_has_unit_mass_and_its_moments_by_quadrature(law: testing.SpectralLaw) -> None:
    assert _integral(law, lambda x: np.ones_like(x)) == pytest.approx(1.0, abs=1e-10)
    for p in range(7):
        exact = _integral(law, lambda x, p=p: x**p)
        assert law.moment(p) == pytest.approx(exact, rel=1e-9, abs=1e-11), p


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_each_cdf_integrates_the_pdf_and_the_quantiles_invert_it(law: testing.SpectralLaw) -> None:
    low, high = law.support
    points = low + (high - low) * np.array([0.01, 0.2, 0.5, 0.77, 0.999])
    for x, value in zip(points, law.cdf(points), strict=True):
        assert value == pytest.approx(_integral(law, lambda x: np.ones_like(x), high=x), abs=1e-11)
    np.testing.assert_array_equal(law.cdf([low - 1.0, low, high, np.inf]), [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(law.pdf([low - 1.0, high + 1.0]), [0.0, 0.0])
    n = 1000
    q = law.quantiles(n)
    assert np.all(np.diff(q) >= 0) and low <= q[0] and q[-1] <= high
    np.testing.assert_allclose(law.cdf(q), (np.arange(n) + 0.5) / n, rtol=0, atol=1e-12)


def test_closed_form_moments_are_the_known_numbers() -> None:
    catalan = [1, 1, 2, 5, 14, 42]
    assert [testing.semicircle().moment(2 * k) for k in range(6)] == catalan
    assert testing.semicircle().moment(5) == 0.0
    y = 0.4
    mp = testing.marchenko_pastur(y)
    assert mp.moment(2) == pytest.approx(1 + y) and mp.moment(3) == pytest.approx(1 + 3 * y + y**2)
    assert [testing.kesten_mckay(3).moment(p) for p in (2, 4, 6)] == [3.0, 15.0, 87.0]
    assert [testing.arcsine().moment(p) for p in range(5)] == [
        math.comb(2 * p, p) for p in range(5)
    ]
    assert testing.marchenko_pastur(1.0).support == (0.0, 4.0)
    assert testing.kesten_mckay(5).support == (-4.0, 4.0)


def test_the_quantiles_of_a_law_are_deterministic_and_symmetric_where_it_is() -> None:
    law = testing.kesten_mckay(4)
    q = law.quantiles(501)
    np.testing.assert_array_equal(q, law.quantiles(501))
    np.testing.assert_allclose(q, -q[::-1], rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: testing.semicircle(-1.0), ValueError, "radius must be"),
        (lambda: testing.marchenko_pastur(1.5), ValueError, r"ratio must be in \(0, 1\]"),
        (lambda: testing.marchenko_pastur(0.0), ValueError, "ratio must be"),
        (lambda: testing.marchenko_pastur(0.5, variance=0.0), ValueError, "variance must be"),
        (lambda: testing.kesten_mckay(2), ValueError, "degree must be >= 3"),
        (lambda: testing.kesten_mckay(3.0), TypeError, "degree must be an integer"),
        (lambda: testing.uniform(1.0, 1.0), ValueError, "low < high"),
        (lambda: testing.power_law(2.0, 0.0, 1.0), ValueError, "low must be > 0"),
        (lambda: testing.power_law(np.nan, 1.0, 2.0), ValueError, "exponent must be finite"),
        (lambda: testing.arcsine(0.0, np.inf), ValueError, "finite"),
        (lambda: testing.semicircle().quantiles(0), ValueError, "n must be >= 1"),
        (lambda: testing.semicircle().moment(-1), ValueError, "p must be >= 0"),
        (lambda: testing.semicircle().pdf("x"), TypeError, "x must be real numbers"),
        (lambda: testing.semicircle().cdf([np.nan]), ValueError, "x must be"),
    ],
)
def test_a_bad_law_parameter_is_refused_by_name(make: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()  # type: ignore[operator]

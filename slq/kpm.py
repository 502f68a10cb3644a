"""The kernel polynomial method (KPM): spectral densities from Chebyshev moments.

For a unit probe v and the spectrum mapped into [−1, 1] by Ã = (A − c)/h, the
moments μ_j = vᵀ T_j(Ã) v are the Chebyshev moments of the probe's spectral
measure; a damped Chebyshev series of them approximates its density (Weiße,
Wellein, Alvermann & Fehske 2006, Rev. Mod. Phys. 78, 275; Lin, Saad & Yang
2016, SIAM Rev. 58, 34, §3.1). The moments come either from the three-term
recurrence on the operator (`kpm_density`) or, with no new products, from the
Gauss rules of a Lanczos run (`from_quadrature`; Chen, Trogdon & Ubaru 2023,
"Randomized matrix-free quadrature for spectrum and spectral sum approximation",
Lanczos-based KPM).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from slq._backends import accumulation_dtype, array_namespace, to_host
from slq._kernels import KERNELS
from slq._lanczos import apply_rows, lanczos, prepare_start
from slq._probes import PROBES, draw_probes, root_seed, seed_sequence
from slq._validate import (
    check_choice,
    check_interval,
    check_non_negative_float,
    check_non_negative_int,
    check_points,
    check_positive_int,
    check_real,
    check_real_array,
)
from slq.estimate import check_spread, probe_stderr
from slq.operator import as_operator
from slq.quadrature import tridiagonal

__all__ = ["DAMPINGS", "KPMDensity", "damping_coefficients", "from_quadrature", "kpm_density"]

logger = logging.getLogger("slq")

DAMPINGS = ("jackson", "lorentz", "none")

# Lanczos steps spent on estimating the spectral interval when no bounds are given:
# extreme Ritz values converge first, and 20 steps pin down well-separated outliers.
_BOUND_STEPS = 20

# Relative widening of the estimated interval, on top of the Ritz residual bounds.
_BOUND_MARGIN = 0.01

# Random stream of the bounds-estimation start vector; probe i uses key (i,) and the
# symmetry check of `density` uses (0, 0).
_BOUNDS_KEY = (0, 1)

# Moments of a probability measure on [−1, 1] satisfy |μ_j| ≤ 1. Beyond this, an
# eigenvalue outside the bounds has made the recurrence grow like cosh(j·acosh|x|).
_MOMENT_LIMIT = 1.01

# λ of the Lorentz kernel: Weiße et al. (2006) recommend 3 to 5.
_LORENTZ_LAMBDA = 4.0

# Bound on the (grid points x quadrature points) temporary of the kernel transform.
_EVALUATION_CHUNK = 1 << 22


def damping_coefficients(damping: str, degree: int) -> np.ndarray:
    r"""Return the kernel coefficients g_0, ..., g_degree that damp Gibbs oscillations.

    With N = degree + 1 moments, ``"jackson"`` is Weiße et al. (2006), eq. (71):
    g_j = [(N − j + 1) cos(πj/(N+1)) + sin(πj/(N+1)) cot(π/(N+1))] / (N + 1), a
    positive kernel of resolution about π/N in x; ``"lorentz"`` is their Table I
    entry sinh(λ(1 − j/N)) / sinh λ with λ = 4, also positive, and matches a
    Lorentzian broadening; ``"none"`` is the plain truncated series (g_j = 1).

    Examples
    --------
    >>> from slq.kpm import damping_coefficients
    >>> damping_coefficients("jackson", 3).round(4)
    array([1.    , 0.809 , 0.4472, 0.1382])
    """
    check_choice("damping", damping, DAMPINGS)
    j = np.arange(degree + 1, dtype=np.float64)
    big_n = degree + 1.0
    if damping == "jackson":
        angle = np.pi / (big_n + 1.0)
        return ((big_n - j + 1.0) * np.cos(angle * j) + np.sin(angle * j) / np.tan(angle)) / (
            big_n + 1.0
        )
    if damping == "lorentz":
        return np.sinh(_LORENTZ_LAMBDA * (1.0 - j / big_n)) / np.sinh(_LORENTZ_LAMBDA)
    return np.ones_like(j)


def _center_half_width(bounds: tuple[float, float]) -> tuple[float, float]:
    """Return c and h of the map x = (λ − c)/h from [a, b] onto [−1, 1]."""
    return 0.5 * (bounds[0] + bounds[1]), 0.5 * (bounds[1] - bounds[0])


def _check_bounds(bounds: Any) -> tuple[float, float]:
    return check_interval("bounds", bounds, closed=False)


def _check_grid(grid: Any) -> np.ndarray:
    t = check_points("grid", grid)
    if t.ndim != 1:
        msg = f"grid must be 1-D, got shape {t.shape}"
        raise ValueError(msg)
    return t


def _check_sigma(sigma: Any) -> float:
    sigma = check_real("sigma", sigma)
    if not (np.isfinite(sigma) and sigma > 0.0):
        msg = f"sigma must be a finite number > 0 (or None for the damped series), got {sigma}"
        raise ValueError(msg)
    return sigma


def _chebyshev_transform(values: np.ndarray, num: int) -> np.ndarray:
    """Return the first `num` Chebyshev coefficients of functions sampled at Gauss points.

    `values` (g, M), M even, holds f(x_l) at x_l = cos(π(l + ½)/M); the coefficients
    c_j = (2/M) Σ_l f(x_l) T_j(x_l) (halved for j = 0) are a DCT-II, computed by one
    real FFT of the even-odd reordered samples (Makhoul 1980, IEEE TASSP 28, 27).
    """
    m = values.shape[1]
    reordered = np.concatenate([values[:, ::2], values[:, 1::2][:, ::-1]], axis=1)
    spectrum = np.fft.rfft(reordered, axis=1)[:, :num]
    twiddle = np.exp(-0.5j * np.pi * np.arange(num) / m)
    coefficients = (spectrum * twiddle).real * (2.0 / m)
    coefficients[:, 0] *= 0.5
    return coefficients


def _smoothed(
    moments: np.ndarray, t: np.ndarray, f: Any, sigma: float, bounds: tuple[float, float]
) -> np.ndarray:
    """Return Σ_j c_j(t) μ_j, shape (k, g), with c_j(t) the coefficients of x ↦ f_σ(t − c − h x).

    The c_j are computed from M = 4(degree + 1) Chebyshev–Gauss samples, so that
    aliasing only folds in coefficients of index ≥ 7·degree, far below the
    truncation error; a chunk of the grid at a time bounds the temporaries.
    """
    center, half_width = _center_half_width(bounds)
    num = moments.shape[1]
    m = 4 * num
    eigen = center + half_width * np.cos(np.pi * (np.arange(m) + 0.5) / m)
    out = np.empty((moments.shape[0], t.size))
    step = max(1, _EVALUATION_CHUNK // m)
    for start in range(0, t.size, step):
        chunk = t[start : start + step]
        coefficients = _chebyshev_transform(f(chunk[:, None] - eigen, sigma), num)
        out[:, start : start + step] = moments @ coefficients.T
    return out


@dataclass(frozen=True, eq=False)
class KPMDensity:
    r"""Chebyshev moments of k probes on an interval [a, b], and the densities they give.

    Mirrors `SpectralDensity`: the same `grid`, `per_probe`, `evaluate` and
    `stderr`, so that both methods plot and compare alike. Everything is
    computed on the host from the moments, without new products.

    Parameters
    ----------
    moments : array_like, shape (k, degree+1)
        μ_j = vᵀ T_j(Ã) v for each unit probe v, with Ã = (A − c)/h,
        c = (a + b)/2, h = (b − a)/2.
    bounds : tuple of float
        (a, b), an interval containing the spectrum.
    dim : int
        n, the dimension of the operator.
    num_matvecs : int
        Operator products spent (bounds estimation included).
    seed : int, optional
        The entropy the probes were drawn from.
    damping : {"jackson", "lorentz", "none"}
        Kernel of the unsmoothed series (`damping_coefficients`); change it with
        ``dataclasses.replace(result, damping=...)``, at no cost.

    Examples
    --------
    >>> import numpy as np
    >>> from slq.kpm import KPMDensity
    >>> dos = KPMDensity(np.array([[1.0, 0.0, -0.5]]), bounds=(-1.0, 1.0), dim=2)
    >>> dos.degree, dos.num_probes, dos.lambda_max
    (2, 1, 1.0)
    """

    moments: np.ndarray
    bounds: tuple[float, float]
    dim: int
    num_matvecs: int = 0
    seed: int | None = None
    damping: str = "jackson"

    def __post_init__(self) -> None:
        moments = np.array(check_real_array("moments", self.moments), ndmin=2)
        if moments.ndim != 2 or moments.shape[1] < 2:
            msg = f"moments must have shape (k, degree+1) with degree >= 1, got {moments.shape}"
            raise ValueError(msg)
        if not np.isfinite(moments).all():
            msg = "moments must be finite"
            raise ValueError(msg)
        moments.flags.writeable = False
        object.__setattr__(self, "moments", moments)
        object.__setattr__(self, "bounds", _check_bounds(self.bounds))
        object.__setattr__(self, "dim", check_positive_int("dim", self.dim))
        check_non_negative_int("num_matvecs", self.num_matvecs)
        if self.seed is not None:
            check_non_negative_int("seed", self.seed)
        check_choice("damping", self.damping, DAMPINGS)

    @property
    def num_probes(self) -> int:
        """k, the number of probes."""
        return self.moments.shape[0]

    @property
    def degree(self) -> int:
        """The degree of the Chebyshev series: moments μ_0, ..., μ_degree."""
        return self.moments.shape[1] - 1

    @property
    def lambda_min(self) -> float:
        """a, the lower end of the interval: a lower bound on the smallest eigenvalue."""
        return self.bounds[0]

    @property
    def lambda_max(self) -> float:
        """b, the upper end of the interval: an upper bound on the largest eigenvalue."""
        return self.bounds[1]

    def grid(self, num: int = 1024, *, pad: float | None = None) -> np.ndarray:
        """Return `num` equispaced points over [a − pad, b + pad]; `pad` defaults to 0.

        The bounds already enclose the spectrum; pad only to show a smoothed
        density's tails.

        Examples
        --------
        >>> import numpy as np
        >>> from slq.kpm import KPMDensity
        >>> KPMDensity(np.ones((1, 3)), bounds=(0.0, 1.0), dim=2).grid(5)
        array([0.  , 0.25, 0.5 , 0.75, 1.  ])
        """
        num = check_positive_int("num", num)
        pad = 0.0 if pad is None else check_non_negative_float("pad", pad)
        return np.linspace(self.bounds[0] - pad, self.bounds[1] + pad, num)

    def per_probe(
        self, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
    ) -> np.ndarray:
        r"""Return each probe's density on `grid`, shape (k, g).

        Without `sigma`, the damped Chebyshev series mapped back to λ
        (Weiße et al. 2006, §II.B–C):

            φ_v(λ) = [g_0 μ_0 + 2 Σ_{j≥1} g_j μ_j T_j(x)] / (π h sqrt(1 − x²)),
            x = (λ − c)/h,

        zero outside the open interval (a, b), where 1/sqrt(1 − x²) is singular.

        With `sigma`, the probe's measure smoothed by the kernel f_σ exactly as
        `SpectralDensity.evaluate` does it: φ_v(t) = ∫ f_σ(t − λ) dμ_v(λ) ≈
        Σ_j c_j(t) μ_j, where c_j(t) are the (undamped) Chebyshev coefficients of
        x ↦ f_σ(t − c − h x) on [−1, 1]. The error is the tail Σ_{j>degree}
        c_j(t) μ_j, which falls geometrically once degree exceeds a few times
        h/σ (a Gaussian needs degree ≈ 6h/σ for 1e-8; a Lorentzian, whose poles
        sit at distance σ from the interval, converges like (1 + σ/h)^(−degree)).

        Parameters
        ----------
        grid : array_like, shape (g,)
            Points λ or t at which to evaluate.
        sigma : float, optional
            Kernel width; None for the damped series.
        kernel : {"gaussian", "lorentzian"}
            f_σ, as for `SpectralDensity.per_probe`.

        Returns
        -------
        numpy.ndarray, shape (k, g)

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> kpm = slq.kpm_density(np.diag(np.linspace(-1.0, 1.0, 200)), degree=20, seed=0)
        >>> kpm.per_probe(np.linspace(-0.5, 0.5, 3)).shape
        (10, 3)
        """
        t = _check_grid(grid)
        f = KERNELS[check_choice("kernel", kernel, tuple(KERNELS))]
        if sigma is None:
            return self._damped_series(t)
        return _smoothed(self.moments, t, f, _check_sigma(sigma), self.bounds)

    def _damped_series(self, t: np.ndarray) -> np.ndarray:
        center, half_width = _center_half_width(self.bounds)
        x = (t - center) / half_width
        inside = np.abs(x) < 1.0
        coefficients = self.moments * damping_coefficients(self.damping, self.degree)
        coefficients[:, 1:] *= 2.0
        out = np.zeros((self.num_probes, t.size))
        series = np.polynomial.chebyshev.chebval(x[inside], coefficients.T)
        out[:, inside] = series / (np.pi * half_width * np.sqrt(1.0 - x[inside] ** 2))
        return out

    def evaluate(
        self, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
    ) -> np.ndarray:
        r"""Return the density, the probe average of `per_probe`, on `grid`.

        Without `sigma` the damped series integrates to μ_0 = 1 over (a, b), and
        with Jackson or Lorentz damping it is non-negative. With `sigma` it
        estimates (1/n) Σ_j f_σ(t − λ_j), as `SpectralDensity.evaluate` does.

        Examples
        --------
        >>> import numpy as np
        >>> from slq.kpm import kpm_density
        >>> a = np.diag(np.linspace(0.0, 1.0, 50))
        >>> dos = kpm_density(a, degree=40, num_probes=3, seed=1, bounds=(-0.1, 1.1))
        >>> t = dos.grid(2000, pad=0.5)
        >>> round(float(np.trapezoid(dos.evaluate(t, sigma=0.05), t)), 6)
        1.0
        """
        return self.per_probe(grid, sigma, kernel).mean(axis=0)

    def stderr(self, grid: Any, sigma: float | None = None, kernel: str = "gaussian") -> np.ndarray:
        """Return the standard error of `evaluate` across probes: std / sqrt(k).

        Raises
        ------
        ValueError
            With fewer than two probes, which leave the spread unknown.

        Examples
        --------
        >>> import numpy as np
        >>> import slq
        >>> kpm = slq.kpm_density(np.diag(np.linspace(-1.0, 1.0, 200)), degree=20, seed=0)
        >>> kpm.stderr(np.linspace(-0.5, 0.5, 3), sigma=0.2).shape
        (3,)
        """
        check_spread(self.num_probes)
        return probe_stderr(self.per_probe(grid, sigma, kernel))

    def __repr__(self) -> str:
        return (
            f"KPMDensity(dim={self.dim}, num_probes={self.num_probes}, degree={self.degree}, "
            f"bounds=({self.bounds[0]:.6g}, {self.bounds[1]:.6g}), damping={self.damping!r})"
        )


def _lanczos_bounds(op: Any, entropy: int) -> tuple[tuple[float, float], int]:
    """Return an interval containing the spectrum, from a short Lanczos run, and its cost.

    The extreme Ritz values θ_1 ≤ θ_m of m = 20 steps from a Gaussian start are
    widened by their Ritz residual norms β_m |s_{m,i}| (Parlett 1998, §13.2;
    Zhou & Li 2011, Linear Algebra Appl. 435, 480, who find θ_m + β_m |s_{m,m}|
    an upper bound in practice), then by 1% of the width for safety.
    """
    n = op.shape[0]
    rng = np.random.default_rng(seed_sequence(entropy, *_BOUNDS_KEY))
    v0 = op.xp.asarray(rng.standard_normal(n), dtype=op.dtype, device=op.device)
    result = lanczos(op, v0, min(_BOUND_STEPS, n))
    theta, vectors = np.linalg.eigh(tridiagonal(result.alpha, result.beta)[0])
    residual = float(result.residual_norm[0]) * np.abs(vectors[-1, [0, -1]])
    low, high = float(theta[0] - residual[0]), float(theta[-1] + residual[1])
    width = high - low if high > low else max(abs(high), 1.0)
    return (low - _BOUND_MARGIN * width, high + _BOUND_MARGIN * width), result.num_matvecs


def _advance(w: Any, t: Any, t_prev: Any, shift: Any, scale: Any, acc: Any) -> tuple[Any, Any]:
    """Return t_{j+1} = scale·(A t_j − shift·t_j) − t_{j−1} and (t_{j+1}·t_j, t_{j+1}·t_{j+1}).

    With scale = 2/h this is the Chebyshev recurrence in Ã = (A − c)/h; the two
    inner products, accumulated in `acc`, give two moments (see `_chebyshev_moments`).
    """
    xp = array_namespace(w, t)
    t_next = (w - shift * t) * scale - t_prev
    new, old = xp.astype(t_next, acc, copy=False), xp.astype(t, acc, copy=False)
    return t_next, xp.stack([xp.vecdot(new, old, axis=-1), xp.vecdot(new, new, axis=-1)])


def _check_moments(
    moments: np.ndarray,
    first: int,
    bounds: tuple[float, float],
    estimated: bool,
    probe_offset: int,
) -> None:
    """Raise if a moment (columns `first`, `first` + 1, ...) is not in [−1.01, 1.01]."""
    bad = np.argwhere(~(np.abs(moments) <= _MOMENT_LIMIT))
    if not bad.size:
        return
    probe, column = int(bad[0, 0]), int(bad[0, 1])
    value = moments[probe, column]
    where = f"Chebyshev moment {first + column} of probe {probe + probe_offset} is {value:.6g}"
    interval = f"bounds=({bounds[0]:.6g}, {bounds[1]:.6g})"
    if not np.isfinite(value):
        msg = (
            f"{where}: the operator produced NaN or Inf, or its spectrum lies far outside "
            f"{interval}; check the operator's output, or pass wider `bounds`"
        )
        raise FloatingPointError(msg)
    source = f"estimated from {_BOUND_STEPS} Lanczos steps" if estimated else "as given"
    msg = (
        f"{where}, but a spectrum inside {interval} ({source}) has |moments| <= 1: the "
        "operator has eigenvalues outside the bounds; pass wider `bounds`"
    )
    raise ValueError(msg)


def _chebyshev_moments(
    op: Any, rows: Any, degree: int, bounds: tuple[float, float], estimated: bool, offset: int
) -> np.ndarray:
    """Return μ_0..μ_degree, shape (k, degree+1), of the unit probes `rows` (shape (k, n)).

    The doubling trick (Weiße et al. 2006, §II.D): from t_j = T_j(Ã) v,
    μ_{2j} = 2 t_jᵀt_j − μ_0 and μ_{2j+1} = 2 t_{j+1}ᵀt_j − μ_1, so ⌈degree/2⌉
    products per probe give all the moments.
    """
    xp = op.xp
    acc = accumulation_dtype(xp, op.device, op.dtype)
    center, half_width = _center_half_width(bounds)
    steps = -(-degree // 2)
    advance = op.backend.compiled(_advance, static_argnums=(5,))  # one compiled call a step
    moments = np.zeros((rows.shape[0], 2 * steps + 1))
    unit = xp.astype(rows, acc, copy=False)
    moments[:, 0] = to_host(xp.vecdot(unit, unit, axis=-1))
    t_prev, t = xp.zeros_like(rows), rows
    for j in range(steps):
        w = apply_rows(op, t, j)
        scale = (1.0 if j == 0 else 2.0) / half_width  # t_1 = Ã t_0 starts the recurrence
        t_next, products = advance(w, t, t_prev, center, scale, acc)
        inner = to_host(products)
        moments[:, 2 * j + 1] = inner[0] if j == 0 else 2.0 * inner[0] - moments[:, 1]
        moments[:, 2 * j + 2] = 2.0 * inner[1] - moments[:, 0]
        _check_moments(moments[:, 2 * j + 1 : 2 * j + 3], 2 * j + 1, bounds, estimated, offset)
        t_prev, t = t, t_next
    return moments[:, : degree + 1]


def kpm_density(
    op: Any,
    /,
    *,
    degree: int = 100,
    num_probes: int = 10,
    seed: int | np.random.Generator | None = None,
    probe: str = "rademacher",
    bounds: tuple[float, float] | None = None,
    probe_batch_size: int | None = None,
    damping: str = "jackson",
) -> KPMDensity:
    r"""Estimate the eigenvalue density of a symmetric operator by the kernel polynomial method.

    For each unit probe v, the Chebyshev moments μ_j = vᵀ T_j(Ã) v, j ≤ degree,
    of Ã = (A − c)/h, which maps [a, b] onto [−1, 1], by the three-term
    recurrence t_{j+1} = 2Ã t_j − t_{j−1} with two moments per product
    (Weiße, Wellein, Alvermann & Fehske 2006, §II; Lin, Saad & Yang 2016, §3.1).

    Parameters
    ----------
    op
        A symmetric operator: anything `aslinearoperator` accepts.
    degree : int, default 100
        The highest moment; costs ⌈degree/2⌉ products per probe. A density
        feature of width w needs degree ≳ (b − a)/w.
    num_probes : int, default 10
        k, the number of random unit probes.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None
        As for `density`: the same seed draws the same probes as SLQ does.
    probe : {"rademacher", "gaussian"}
        Distribution of the probe entries before normalisation.
    bounds : tuple of float, optional
        (a, b) containing the spectrum. Default: the extreme Ritz values of 20
        Lanczos steps from a random start, widened by their residual norms
        β_m|s_{m,i}| and by 1% of the width (Zhou & Li 2011); those products
        are counted in ``num_matvecs``. Too narrow bounds make the recurrence
        grow exponentially, which is detected (|μ_j| > 1.01) and raised.
    probe_batch_size : int, optional
        Run the probes b at a time (one ``matmat`` of b columns per step).
        Default: all at once.
    damping : {"jackson", "lorentz", "none"}
        Kernel of the unsmoothed series (see `KPMDensity`).

    Returns
    -------
    KPMDensity

    Raises
    ------
    ValueError
        For a bad count, option or interval, or when the spectrum leaves the
        bounds (the message says to pass wider ``bounds``).

    Examples
    --------
    >>> import numpy as np
    >>> from slq.kpm import kpm_density
    >>> eigenvalues = np.concatenate([np.linspace(-1.0, 1.0, 397), [10.0, 20.0, 50.0]])
    >>> dos = kpm_density(np.diag(eigenvalues), degree=60, num_probes=4, seed=0)
    >>> dos.num_matvecs  # 20 for the bounds, 30 for each of the 4 probes
    140
    >>> bool(dos.lambda_min < -1.0 and dos.lambda_max > 50.0)
    True
    >>> t = dos.grid(256)
    >>> curve, band = dos.evaluate(t, sigma=1.0), dos.stderr(t, sigma=1.0)
    """
    op = as_operator(op)
    n = op.shape[0]
    degree = check_positive_int("degree", degree)
    k = check_positive_int("num_probes", num_probes)
    b = k if probe_batch_size is None else check_positive_int("probe_batch_size", probe_batch_size)
    check_choice("probe", probe, PROBES)
    check_choice("damping", damping, DAMPINGS)
    given = None if bounds is None else _check_bounds(bounds)
    entropy = root_seed(seed)
    estimated = given is None
    interval, spent = _lanczos_bounds(op, entropy) if given is None else (given, 0)
    blocks = []
    for start in range(0, k, b):
        probes = draw_probes(probe, n, range(start, min(start + b, k)), entropy)
        rows = prepare_start(op.xp.asarray(probes, dtype=op.dtype, device=op.device), op)
        blocks.append(_chebyshev_moments(op, rows, degree, interval, estimated, start))
    spent += k * -(-degree // 2)
    logger.info("kpm_density: n=%d, %d probes, degree %d, seed=%d", n, k, degree, entropy)
    return KPMDensity(
        np.concatenate(blocks),
        bounds=interval,
        dim=n,
        num_matvecs=spent,
        seed=entropy,
        damping=damping,
    )


def _check_rule(nodes: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    nodes = check_real_array("nodes", nodes)
    weights = check_real_array("weights", weights)
    if nodes.ndim != 2 or nodes.shape != weights.shape or nodes.shape[1] < 1:
        msg = (
            "nodes and weights must have the same shape (k, m) with m >= 1, got "
            f"{nodes.shape} and {weights.shape}"
        )
        raise ValueError(msg)
    if not (np.isfinite(nodes).all() and np.isfinite(weights).all()):
        msg = "nodes and weights must be finite"
        raise ValueError(msg)
    return nodes, weights


def from_quadrature(
    nodes: Any,
    weights: Any,
    *,
    dim: int,
    degree: int,
    bounds: tuple[float, float],
    num_matvecs: int = 0,
    seed: int | None = None,
    damping: str = "jackson",
) -> KPMDensity:
    r"""Return the KPM density whose moments are those of each probe's Gauss rule.

    "Lanczos-based KPM" (Chen, Trogdon & Ubaru 2023): μ_j = Σ_i τ_i T_j(x_i),
    x_i = (θ_i − c)/h. An m-node Gauss rule integrates polynomials of degree
    ≤ 2m − 1 exactly, so for j ≤ 2m − 1 these are exactly the moments
    vᵀ T_j(Ã) v that `kpm_density` computes, with no new products.

    Parameters
    ----------
    nodes, weights : array_like, shape (k, m)
        Gauss rules, as `SpectralDensity.nodes` and `.weights` give them
        (weights zero on unused entries after a breakdown).
    dim : int
        n, the dimension of the operator.
    degree : int
        The highest moment; at most 2m − 1.
    bounds : tuple of float
        (a, b) containing the spectrum (and so the nodes).
    num_matvecs : int, default 0
        Products the Lanczos run spent, kept for the record.
    seed : int, optional
        The entropy of the probes, kept for the record.
    damping : {"jackson", "lorentz", "none"}
        Kernel of the unsmoothed series.

    Returns
    -------
    KPMDensity

    Raises
    ------
    ValueError
        If degree > 2m − 1 (the moments would no longer be exact), if a node
        with weight lies outside `bounds`, or for malformed input.

    Notes
    -----
    A rule that ended in a breakdown is exact for every degree, but nodes and
    weights do not show whether the longest rule broke down, so the limit
    2m − 1 stands.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.kpm import from_quadrature, kpm_density
    >>> a = np.diag(np.linspace(0.0, 1.0, 100))
    >>> dos = slq.density(a, num_steps=10, num_probes=2, seed=3)
    >>> ab = (-0.1, 1.1)
    >>> from_lanczos = from_quadrature(dos.nodes, dos.weights, dim=100, degree=19, bounds=ab)
    >>> direct = kpm_density(a, degree=19, num_probes=2, seed=3, bounds=ab)
    >>> bool(np.allclose(from_lanczos.moments, direct.moments, atol=1e-12))
    True
    """
    nodes, weights = _check_rule(nodes, weights)
    degree = check_positive_int("degree", degree)
    low, high = _check_bounds(bounds)
    check_positive_int("dim", dim)
    check_non_negative_int("num_matvecs", num_matvecs)
    if seed is not None:
        check_non_negative_int("seed", seed)
    check_choice("damping", damping, DAMPINGS)
    m = nodes.shape[1]
    if degree > 2 * m - 1:
        msg = (
            f"degree must be <= 2m - 1 = {2 * m - 1} for Gauss rules of m = {m} nodes, got "
            f"{degree}: higher moments of the rule differ from the operator's"
        )
        raise ValueError(msg)
    center, half_width = _center_half_width((low, high))
    x = (nodes - center) / half_width
    slack = 64.0 * np.finfo(np.float64).eps * max(abs(low), abs(high), high - low) / (high - low)
    outside = (weights > 0.0) & (np.abs(x) > 1.0 + slack)
    if outside.any():
        msg = (
            f"node {nodes[outside][0]:.6g} lies outside bounds=({low:.6g}, {high:.6g}): "
            "pass bounds that contain the spectrum"
        )
        raise ValueError(msg)
    # cos(j arccos x) is T_j(x) on [-1, 1]; the clip absorbs rounding at the ends.
    angles = np.arccos(np.clip(x, -1.0, 1.0))
    chebyshev = np.cos(angles[:, :, None] * np.arange(degree + 1))
    moments = np.einsum("km,kmj->kj", weights, chebyshev)
    return KPMDensity(
        moments,
        bounds=(low, high),
        dim=dim,
        num_matvecs=num_matvecs,
        seed=seed,
        damping=damping,
    )

r"""The kernel-smoothed density of an SLQ result, its error bars, and its bulk without outliers.

Each probe's Gauss rule (θ_i, τ_i) is smoothed into φ_v(t) = Σ_i τ_i f_σ(t − θ_i);
their average estimates (1/n) Σ_j f_σ(t − λ_j), the eigenvalue density smoothed
by the kernel f_σ, and their spread its standard error. The kernel width σ is
a documented choice (`default_sigma`, `bulk_sigma`), never a magic number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from slq import _kernels
from slq._kernels import grid_points, smooth
from slq._validate import (
    check_choice,
    check_non_negative_float,
    check_open_interval,
    check_positive_float,
    check_positive_int,
)
from slq.estimate import check_spread, probe_stderr, student_t_quantile
from slq.summaries import check_outliers

if TYPE_CHECKING:
    from slq.spectral_density import SpectralDensity
    from slq.summaries import Outliers

__all__ = ["band", "bulk", "bulk_sigma", "default_sigma", "evaluate", "grid", "per_probe", "stderr"]


def default_sigma(density: SpectralDensity) -> float:
    """Return the kernel width used when none is given: (λ_max − λ_min) / m.

    See ``slq._kernels.default_sigma`` for why. A spectrum of one point has
    no width; its scale max(|λ|, 1) stands in for it.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import default_sigma
    >>> dos = slq.density(np.diag(np.linspace(0.0, 9.0, 10)), num_steps=10, seed=0)
    >>> round(default_sigma(dos), 6)
    0.9
    """
    width = density.lambda_max - density.lambda_min
    width = width if width > 0.0 else max(abs(density.lambda_max), 1.0)
    return _kernels.default_sigma(width, density.num_steps)


def grid(
    density: SpectralDensity,
    num: int = 1024,
    *,
    pad: float | None = None,
    scale: str = "linear",
    linthresh: float | None = None,
) -> np.ndarray:
    """Return `num` points covering the Ritz values with `pad` on each side.

    `pad` defaults to 5 default kernel widths, where a Gaussian kernel has
    fallen below 4e-6 of its peak. With ``scale="symlog"`` the points are
    equispaced in asinh(t / linthresh): linear within about ±linthresh,
    logarithmic beyond, so that a narrow bulk near zero and outliers orders
    of magnitude away are both resolved. `linthresh` defaults to
    `bulk_sigma`, the kernel width that resolves the bulk.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import grid
    >>> dos = slq.density(np.diag([0.0, 1.0]), num_probes=1, seed=0)
    >>> bool(np.allclose(grid(dos, 5, pad=0.0), [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-12))
    True
    """
    num = check_positive_int("num", num)
    symlog = check_choice("scale", scale, ("linear", "symlog")) == "symlog"
    pad = 5.0 * default_sigma(density) if pad is None else check_non_negative_float("pad", pad)
    if linthresh is not None:
        linthresh = check_positive_float("linthresh", linthresh)
    low, high = density.lambda_min - pad, density.lambda_max + pad
    if not symlog:
        return grid_points(low, high, num)
    return grid_points(low, high, num, bulk_sigma(density) if linthresh is None else linthresh)


def per_probe(
    density: SpectralDensity, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
) -> np.ndarray:
    r"""Return each probe's smoothed density φ_v(t) = Σ_i τ_i f_σ(t − θ_i) on `grid`.

    Parameters
    ----------
    density : SpectralDensity
        The result whose Gauss rules are smoothed.
    grid : array_like, shape (g,)
        Points t at which to evaluate.
    sigma : float, optional
        Kernel width; default `default_sigma`.
    kernel : {"gaussian", "lorentzian"}
        f_σ: a normal density of standard deviation σ, or a Cauchy density
        of half-width σ.

    Returns
    -------
    numpy.ndarray, shape (k, g)

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import per_probe
    >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 50)), num_probes=3, seed=0)
    >>> per_probe(dos, np.linspace(0.0, 1.0, 7)).shape
    (3, 7)
    """
    sigma = default_sigma(density) if sigma is None else check_positive_float("sigma", sigma)
    return smooth(density.nodes, density.weights, grid, sigma, kernel)


def evaluate(
    density: SpectralDensity, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
) -> np.ndarray:
    r"""Return the smoothed density φ_σ(t), the probe average of `per_probe`, on `grid`.

    It integrates to 1 over the real line and estimates
    (1/n) Σ_j f_σ(t − λ_j), the eigenvalue density smoothed by the kernel.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import evaluate
    >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 50)), num_probes=3, seed=1)
    >>> t = dos.grid(2000)
    >>> round(float(np.trapezoid(evaluate(dos, t), t)), 6)
    1.0
    """
    return per_probe(density, grid, sigma, kernel).mean(axis=0)


def stderr(
    density: SpectralDensity, grid: Any, sigma: float | None = None, kernel: str = "gaussian"
) -> np.ndarray:
    """Return the standard error of `evaluate` across probes: std / sqrt(k).

    Raises
    ------
    ValueError
        With fewer than two probes, which leave the spread unknown.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import stderr
    >>> a = np.diag(np.linspace(0.0, 1.0, 50))
    >>> dos = slq.density(a, num_probes=3, seed=0, probe="gaussian")
    >>> bool((stderr(dos, np.linspace(0.0, 1.0, 7)) > 0).all())
    True
    """
    check_spread(density.num_probes)
    return probe_stderr(per_probe(density, grid, sigma, kernel))


def band(
    density: SpectralDensity,
    grid: Any,
    sigma: float | None = None,
    kernel: str = "gaussian",
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Return pointwise Student-t confidence limits of `evaluate` over the probes.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import band, evaluate
    >>> dos = slq.density(np.diag(np.linspace(0.0, 1.0, 300)), num_probes=5, seed=0)
    >>> t = dos.grid(64)
    >>> low, high = band(dos, t)
    >>> bool(np.all(low <= evaluate(dos, t)) and np.all(evaluate(dos, t) <= high))
    True
    """
    confidence = check_open_interval("confidence", confidence, 0.0, 1.0)
    check_spread(density.num_probes)
    curve = evaluate(density, grid, sigma, kernel)
    t = student_t_quantile(confidence, density.num_probes - 1)
    half = t * stderr(density, grid, sigma, kernel)
    return curve - half, curve + half


def bulk_sigma(density: SpectralDensity, outliers: Outliers | None = None) -> float:
    """Return the kernel width that resolves the bulk: its width / m (cf. `default_sigma`).

    The bulk is ``outliers.bulk``, by default that of ``density.outliers()``.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import bulk_sigma
    >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
    >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
    >>> bool(bulk_sigma(dos) < dos.default_sigma() / 40)
    True
    """
    found = density.outliers() if outliers is None else check_outliers(outliers, density)
    low, high = found.bulk
    scale = max(abs(density.lambda_min), abs(density.lambda_max), 1e-300)
    return _kernels.default_sigma(max(high - low, 1e-9 * scale), density.num_steps)


def bulk(
    density: SpectralDensity,
    grid: Any,
    sigma: float | None = None,
    kernel: str = "gaussian",
    *,
    outliers: Outliers | None = None,
) -> np.ndarray:
    """Return the smoothed density without the outliers' nodes: the bulk of the view.

    Together with `outliers` (point masses at their positions) this is the
    "bulk plus outliers" picture: the bulk keeps mass 1 − outliers.mass and
    is smoothed with `bulk_sigma` by default, a kernel matched to the bulk's
    own width rather than to the whole spectrum's.

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.smoothing import bulk
    >>> spectrum = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])
    >>> dos = slq.density(np.diag(spectrum), num_steps=40, num_probes=4, seed=0)
    >>> t = np.linspace(-2.0, 2.0, 4001)
    >>> round(float(np.trapezoid(bulk(dos, t), t)), 3)  # 997 of 1000 eigenvalues
    0.997
    """
    if sigma is not None:
        sigma = check_positive_float("sigma", sigma)
    outliers = density.outliers() if outliers is None else check_outliers(outliers, density)
    if sigma is None:
        sigma = bulk_sigma(density, outliers)
    weights = np.where(outliers.members, 0.0, density.weights)
    return smooth(density.nodes, weights, grid, sigma, kernel).mean(axis=0)

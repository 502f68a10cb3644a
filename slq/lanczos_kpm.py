"""Lanczos-based KPM: the kernel polynomial method's density from an SLQ result, no new products.

The Chebyshev moments of each probe's Gauss rule equal those of its spectral
measure up to degree 2m − 1 (Chen, Trogdon & Ubaru 2023, "Lanczos-based KPM"),
so KPM's damped series — or its kernel-smoothed curve — comes free with a
stored SLQ run (`slq.kpm.from_quadrature`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slq.kpm import KPMDensity, from_quadrature

if TYPE_CHECKING:
    from slq.spectral_density import SpectralDensity

__all__ = ["lanczos_kpm"]


def lanczos_kpm(
    density: SpectralDensity,
    degree: int | None = None,
    *,
    bounds: tuple[float, float] | None = None,
    damping: str = "jackson",
) -> KPMDensity:
    r"""Return the Lanczos-based KPM density of a result's probes: no new products.

    Parameters
    ----------
    density : SpectralDensity
        The SLQ result whose Gauss rules give the moments.
    degree : int, optional
        Default 2m − 1, the most the rules determine.
    bounds : (float, float), optional
        The interval mapped to [−1, 1]; it must hold every node. Default:
        the extreme Ritz values widened by 1% of their spread (any interval
        holding the nodes gives exact moments).
    damping : {"jackson", "lorentz", "none"}

    Examples
    --------
    >>> import numpy as np
    >>> import slq
    >>> from slq.lanczos_kpm import lanczos_kpm
    >>> dos = slq.density(np.diag(np.linspace(-1.0, 1.0, 500)), num_steps=30, seed=0)
    >>> kpm = lanczos_kpm(dos)
    >>> kpm.degree, kpm.num_probes
    (59, 10)
    >>> t = np.linspace(-1.0, 1.0, 5)
    >>> bool(np.allclose(kpm.evaluate(t, sigma=0.1), dos.evaluate(t, sigma=0.1), atol=0.05))
    True
    """
    if bounds is None:
        spread = density.lambda_max - density.lambda_min
        pad = 0.01 * max(spread, 1e-12 * abs(density.lambda_max), 1e-300)
        bounds = (density.lambda_min - pad, density.lambda_max + pad)
    return from_quadrature(
        density.nodes,
        density.weights,
        dim=density.dim,
        degree=2 * density.num_steps - 1 if degree is None else degree,
        bounds=bounds,
        num_matvecs=density.num_matvecs,
        seed=density.seed,
        damping=damping,
    )

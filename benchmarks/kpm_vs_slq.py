"""SLQ against the kernel polynomial method at an equal budget of operator products.

Spectra shaped like a network Hessian: a bulk near zero and a few outliers 10 to
100 times larger, in random orthogonal bases (n = 2000 by default):

- "MP + 5 outliers": a Marchenko–Pastur bulk (ratio 1/2, in [0.09, 2.9]) and
  outliers at 10, 20, 40, 70 and 100;
- "semicircle + 3 outliers": a Wigner bulk in [-1, 1] (negative curvature
  included) and outliers at 20, 50 and 100.

For budgets of B products per probe and k = 10 probes (the same probes, seed 0,
for every method):

- SLQ: ``slq.density`` with B Lanczos steps (10·B products);
- KPM: ``kpm_density`` with degree 2(B − 2), bounds estimated from 20 Lanczos
  steps: 10·(B − 2) + 20 = 10·B products;
- KPM from Lanczos: ``from_quadrature`` on the SLQ run, degree 2B − 1, bounds the
  extreme Ritz values widened by 1% of their spread: no products beyond SLQ's.

Error: the L1 distance of each method's Gaussian-smoothed density (same sigma,
same grid) to the exact smoothed density (1/n) Σ_j f_σ(t − λ_j). "floor" is the
error of the probes' exact spectral measures: what any method pays for using 10
probes. Two widths: a coarse sigma = W/40 (W the whole spectral width, outliers
included), and a fine sigma = bulk width/20, which resolves the bulk: a Chebyshev
series on [a, b] resolves features of width ~ 2h/degree evenly over the whole
interval, most of it empty, while Lanczos spends its first few nodes on the
outliers and the rest on the bulk.

Run:  python benchmarks/kpm_vs_slq.py [--n 2000] [--budgets 20 40 80] [--probes 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import l1

import slq
from slq import testing
from slq._kernels import KERNELS
from slq._probes import draw_probes
from slq.kpm import from_quadrature, kpm_density

_GRID_POINTS = 40_000


def spectra(n: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name -> (bulk eigenvalues, outliers): a Wishart matrix's (XᵀX/2n) and a GOE's, halved."""
    mp = testing.wishart(n - 5, 0.5, seed=seed).eigenvalues
    wigner = testing.goe(n - 3, seed=seed + 1).eigenvalues / 2  # the semicircle on [-1, 1]
    return {
        "MP + 5 outliers": (mp, np.array([10.0, 20, 40, 70, 100])),
        "semicircle + 3 outliers": (wigner, np.array([20.0, 50, 100])),
    }


def rotated(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    """A = Q diag(λ) Qᵀ with a Haar-random Q (slq.testing)."""
    return testing.matrix_with_spectrum(eigenvalues, seed=seed).matrix


def curve(
    eigenvalues: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float
) -> np.ndarray:
    """Σ_i w_i f_σ(t − λ_i), averaged over the rows of `weights`, in chunks of the grid."""
    out = np.empty(grid.size)
    for start in range(0, grid.size, 2000):
        chunk = grid[start : start + 2000]
        values = KERNELS["gaussian"](chunk[None, :] - eigenvalues[:, None], sigma)
        out[start : start + 2000] = (weights @ values).mean(axis=0)
    return out


def ritz_bounds(dos: slq.SpectralDensity) -> tuple[float, float]:
    """The extreme Ritz values widened by 1% of their spread: bounds for free."""
    margin = 0.01 * (dos.lambda_max - dos.lambda_min)
    return dos.lambda_min - margin, dos.lambda_max + margin


def compare(
    name: str,
    bulk: np.ndarray,
    outliers: np.ndarray,
    budgets: list[int],
    probes: int,
    seed: int,
) -> list[str]:
    """Markdown rows for one spectrum: each sigma and budget."""
    eigenvalues = np.sort(np.concatenate([bulk, outliers]))
    n = eigenvalues.size
    a = rotated(eigenvalues, seed)
    # The probes' exact spectral measures: weights (u_jᵀ v)² (unit probes) in the eigenbasis.
    _, u = np.linalg.eigh(a)
    probe_weights = ((u.T @ draw_probes("rademacher", n, range(probes), seed)) ** 2).T
    width = eigenvalues[-1] - eigenvalues[0]
    sigmas = {"W/40": width / 40, "bulk/20": np.ptp(bulk) / 20}
    runs = {}
    for budget in budgets:
        dos = slq.density(a, num_steps=budget, num_probes=probes, seed=seed)
        kpm = kpm_density(a, degree=2 * (budget - 2), num_probes=probes, seed=seed)
        quad = from_quadrature(
            dos.nodes, dos.weights, dim=n, degree=2 * budget - 1, bounds=ritz_bounds(dos)
        )
        assert dos.num_matvecs == kpm.num_matvecs == budget * probes
        runs[budget] = dos, kpm, quad
    rows = []
    for label, sigma in sigmas.items():
        grid = np.linspace(eigenvalues[0] - 5 * sigma, eigenvalues[-1] + 5 * sigma, _GRID_POINTS)
        exact = curve(eigenvalues, np.full((1, n), 1 / n), grid, sigma)
        floor = l1(curve(eigenvalues, probe_weights, grid, sigma), exact, grid)
        for budget, (dos, kpm, quad) in runs.items():
            errors = [l1(d.evaluate(grid, sigma), exact, grid) for d in (dos, kpm, quad)]
            cells = " | ".join(f"{e:.4f}" for e in errors)
            rows.append(f"| {name} | {label} = {sigma:.3g} | {budget} | {cells} | {floor:.4f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 40, 80])
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"n = {args.n}, k = {args.probes} probes, float64, numpy {np.__version__}\n")
    print("L1 distance to the exact smoothed density (lower is better)\n")
    print("| spectrum | sigma | products / probe | SLQ | KPM | KPM from Lanczos | floor |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (bulk, outliers) in spectra(args.n, args.seed).items():
        for row in compare(name, bulk, outliers, args.budgets, args.probes, args.seed):
            print(row)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

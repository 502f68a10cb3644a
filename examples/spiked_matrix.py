"""The main job: estimate the eigenvalue density of a spiked random matrix and check it.

A Wigner matrix W/sqrt(n) has a semicircle spectrum on [-2, 2]; adding rank-one
spikes theta u u^T with theta > 1 pushes outliers out to theta + 1/theta
(Baik, Ben Arous & Peche 2005) -- the shape of a network Hessian: a bulk and a
few large outliers. slq sees the matrix only through products with vectors;
the exact spectrum comes from a dense eigendecomposition.

Run:  python examples/spiked_matrix.py [--n 2000] [--steps 90] [--probes 10]
Exit status 1 if the estimate is not within its own error bars of the truth.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import slq


def spiked_wigner(n: int, spikes: list[float], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, n))
    a = (g + g.T) / np.sqrt(2.0 * n)
    u, _ = np.linalg.qr(rng.standard_normal((n, len(spikes))))
    return a + (u * spikes) @ u.T


def smoothed(eigenvalues: np.ndarray, t: np.ndarray, sigma: float) -> np.ndarray:
    x = (t[None, :] - eigenvalues[:, None]) / sigma
    return np.exp(-0.5 * x**2).mean(axis=0) / (sigma * np.sqrt(2.0 * np.pi))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    spikes = [3.0, 5.0, 10.0]
    a = spiked_wigner(args.n, spikes, args.seed)
    start = time.perf_counter()
    dos = slq.density(a, num_steps=args.steps, num_probes=args.probes, seed=args.seed)
    elapsed = time.perf_counter() - start
    exact = np.linalg.eigvalsh(a)

    t = dos.grid(2000)
    sigma = dos.default_sigma()
    error = np.trapezoid(np.abs(dos.evaluate(t) - smoothed(exact, t, sigma)), t)
    band = np.trapezoid(dos.stderr(t), t)
    top_ritz = dos.nodes[0, -3:]  # one probe's three largest Ritz values
    print(
        f"spiked Wigner matrix: n={args.n}, spikes {spikes} -> outliers at "
        f"{[round(s + 1 / s, 4) for s in spikes]}"
    )
    print(
        f"slq.density: {dos.num_probes} probes x {dos.num_steps} steps = "
        f"{dos.num_matvecs} matvecs in {elapsed:.2f} s"
    )
    print(f"lambda_min: estimate {dos.lambda_min:+.6f}   exact {exact[0]:+.6f}")
    print(f"lambda_max: estimate {dos.lambda_max:+.6f}   exact {exact[-1]:+.6f}")
    print(
        f"top 3 Ritz values of probe 0 {np.round(top_ritz, 6).tolist()}  exact "
        f"{np.round(exact[-3:], 6).tolist()}"
    )
    print(
        f"smoothed density (sigma={sigma:.4f}): L1 error {error:.4f}, "
        f"integrated standard error {band:.4f}"
    )
    agrees = error <= 3.0 * band
    print("estimate within 3 standard errors of the exact density:", "yes" if agrees else "NO")
    return 0 if agrees else 1


if __name__ == "__main__":
    sys.exit(main())

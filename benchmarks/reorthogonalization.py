"""Memory and accuracy of each reorthogonalisation option at n = 1e6, m = 90.

    python benchmarks/reorthogonalization.py              # n = 1e6, m = 90, 10 float32 probes
    python benchmarks/reorthogonalization.py --n 100000 --dtype float64

The operator is diagonal, with a Hessian-like spectrum: most of the mass near 0
(a narrow Gaussian), a bulk up to 1, and five outliers from 20 to 1000, so that
the top Ritz values converge within a few steps and plain Lanczos makes ghosts.
A diagonal operator costs n multiplications a product, so the run times show
what slq itself spends; Lanczos sees only the spectrum and the probe, so a dense
rotation of it would behave the same, at n² the cost.

For every option: the memory `slq.memory_estimate` predicts (device and host
bytes, for a GPU) and the peak `tracemalloc` traces in this numpy run, the
steps reorthogonalised, the wall time, and accuracy against full
reorthogonalisation (the top Ritz values, the outliers' ghost copies, and the
L1 distance of the smoothed density to full's and to the exact one).
"""

from __future__ import annotations

import argparse
import logging
import time
import tracemalloc

import numpy as np

import slq
from slq.memory import format_bytes, memory_estimate

OUTLIERS = (20.0, 50.0, 100.0, 300.0, 1000.0)
OPTIONS = (
    ("full", False),
    ("partial", False),
    ("none", False),
    ("full", True),
    ("partial", True),
)


class Diagonal:
    """diag(d): one multiplication per entry and product."""

    def __init__(self, d: np.ndarray, dtype: str = "float32") -> None:
        self.d = d.astype(dtype)
        self.shape, self.dtype = (d.size, d.size), self.d.dtype

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return self.d * v

    def matmat(self, v: np.ndarray) -> np.ndarray:
        return self.d[:, None] * v


def spectrum(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    near_zero = rng.normal(0.0, 1e-3, int(0.8 * n))
    bulk = rng.uniform(-0.05, 1.0, n - near_zero.size - len(OUTLIERS))
    return np.concatenate([near_zero, bulk, OUTLIERS])


def exact_smoothed(eigenvalues: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """The exact density smoothed by N(0, sigma²): eigenvalues binned at sigma/50 first."""
    width = sigma / 50
    edges = np.arange(eigenvalues.min() - width, eigenvalues.max() + 2 * width, width)
    counts, _ = np.histogram(eigenvalues, edges)
    centres = ((edges[:-1] + edges[1:]) / 2)[counts > 0]
    mass = counts[counts > 0] / eigenvalues.size
    curve = np.zeros_like(grid)
    for start in range(0, centres.size, 2000):
        x = (grid[None, :] - centres[start : start + 2000, None]) / sigma
        curve += (mass[start : start + 2000, None] * np.exp(-0.5 * x**2)).sum(axis=0)
    return curve / (sigma * np.sqrt(2 * np.pi))


def ghosts(dos: slq.SpectralDensity) -> float:
    """Ritz values per outlier and probe beyond the first (0 without ghosts)."""
    extra = []
    for nodes in dos.nodes:
        for outlier in OUTLIERS:
            found = int(np.sum(np.abs(nodes - outlier) < 1e-4 * outlier))
            extra.append(max(found - 1, 0))
    return float(np.mean(extra)) * len(OUTLIERS)


class StepsReorthogonalised(logging.Handler):
    """Reads the count from `slq.lanczos`'s debug line (one per batch of probes)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count, self.work = 0, []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("lanczos: %d probes"):  # the run's summary line
            self.count += int(record.args[4])  # type: ignore[index]
            self.work.append(float(record.args[5]))  # type: ignore[index]


def run(op: Diagonal, m: int, k: int, mode: str, offload: bool) -> tuple:
    counter = StepsReorthogonalised()
    logger = logging.getLogger("slq")
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        dos = slq.density(
            op, num_steps=m, num_probes=k, seed=0, reorthogonalize=mode, offload_basis=offload
        )
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        logger.removeHandler(counter)
    return dos, peak, seconds, counter.count, float(np.mean(counter.work))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**6)
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    lam = spectrum(args.n)
    op = Diagonal(lam, args.dtype)
    m, k = args.steps, args.probes
    slq.density(op, num_steps=3, num_probes=2, seed=0)  # first-call caches out of the count
    results = {}
    for mode, offload in OPTIONS:
        results[mode, offload] = run(op, m, k, mode, offload)
    full = results["full", False][0]
    sigma = full.bulk_sigma()
    grid = np.linspace(lam.min() - 5 * sigma, 1.0 + 5 * sigma, 4000)
    exact = exact_smoothed(lam, grid, sigma)
    print(f"n = {args.n}, m = {m}, {k} {args.dtype} probes; bulk kernel sigma = {sigma:.3g}")
    header = (
        "| option | device (est.) | host (est.) | traced peak | reorth. steps | time (s) "
        "| GS work | top Ritz − full | ghosts / probe | L1 to full | L1 to exact |"
    )
    print(header)
    print("| --- " + "| ---: " * 10 + "|")
    for (mode, offload), (dos, peak, seconds, counted, work) in results.items():
        e = memory_estimate(op, m, k, reorthogonalize=mode, offload_basis=offload)
        name = f"`{mode}`" + (", offloaded" if offload else "")
        top = float(np.max(np.abs(np.nanmax(dos.nodes, axis=1) - np.nanmax(full.nodes, axis=1))))
        to_full = np.trapezoid(np.abs(dos.bulk(grid) - full.bulk(grid)), grid)
        to_exact = np.trapezoid(np.abs(dos.bulk(grid) - exact), grid)
        print(
            f"| {name} | {format_bytes(e.device_bytes)} | {format_bytes(e.host_bytes)} "
            f"| {format_bytes(peak)} | {counted} / {m} | {seconds:.1f} | {work:.2f} | {top:.1e} "
            f"| {ghosts(dos):.1f} | {to_full:.1e} | {to_exact:.1e} |"
        )


if __name__ == "__main__":
    main()

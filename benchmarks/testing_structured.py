"""slq.testing's structured operators at n ≈ 10⁶: build time, one density run, its peak memory.

`matrix_with_spectrum(structure=...)` never stores an n × n matrix: Householder
keeps 8 reflections (any n, here 10⁶), Kronecker three sign vectors and Haar
factors of 250, 250 and 16 rows (n = 10⁶), Hadamard three sign vectors (n = 2²⁰).
For each: the time to build the operator, the time of
``slq.density(op, num_steps=30, num_probes=1)``, the peak of the memory numpy
allocates during that run (tracemalloc) against ``slq.memory_estimate``'s
total, and the largest Ritz value against the spectrum's largest eigenvalue.
A diagonal operator with no temporaries of its own is the reference row: what
`density` itself holds beyond the estimate.

Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/testing_structured.py
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import slq
from slq import testing

OUTLIERS = [(5.0, 1), (8.0, 2)]


class Diagonal:
    """diag(λ): the reference, a product with no temporaries of its own."""

    def __init__(self, eigenvalues: np.ndarray) -> None:
        self.column = eigenvalues[:, None]
        self.shape, self.dtype = (eigenvalues.size, eigenvalues.size), eigenvalues.dtype

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return self.column[:, 0] * v

    def matmat(self, v: np.ndarray) -> np.ndarray:
        return self.column * v


def run(structure: str, n: int, steps: int, probes: int) -> str:
    start = time.perf_counter()
    if structure == "diagonal":
        eigenvalues = testing.spiked_eigenvalues(n, testing.semicircle(1.0), OUTLIERS)
        problem = testing.Problem("diagonal", Diagonal(eigenvalues), eigenvalues)
    else:
        problem = testing.spiked_matrix(
            n, testing.semicircle(1.0), OUTLIERS, seed=0, structure=structure
        )
    built = time.perf_counter() - start
    op = slq.aslinearoperator(problem.matrix)
    estimate = slq.memory_estimate(op, steps, probes)
    tracemalloc.start()
    start = time.perf_counter()
    dos = slq.density(op, num_steps=steps, num_probes=probes, seed=0)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    error = abs(dos.lambda_max - problem.eigenvalues[-1])
    mib = 2**20
    return (
        f"| {structure} | {n} | {built:.2f} | {seconds:.1f} | {peak / mib:.0f} | "
        f"{estimate.total / mib:.0f} | {peak / estimate.total:.4f} | {error:.1e} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--n", type=int, default=10**6, help="n (Hadamard: the next power of 2)")
    parser.add_argument("--probes", type=int, default=1)
    args = parser.parse_args()
    print(f"numpy {np.__version__}, float64, {args.steps} steps, {args.probes} probe(s)\n")
    print(
        "| structure | n | build (s) | density (s) | peak (MiB) | estimate (MiB) "
        "| peak / estimate | abs. error of λ_max |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for structure in ("diagonal", "householder", "kronecker"):
        print(run(structure, args.n, args.steps, args.probes), flush=True)
    print(run("hadamard", 1 << (args.n - 1).bit_length(), args.steps, args.probes))


if __name__ == "__main__":
    main()

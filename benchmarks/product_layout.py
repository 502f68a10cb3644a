"""A dense matrix times k Lanczos vectors: which layout of the product its library runs fastest.

slq keeps a batch's vectors as rows, V (k, n). The product with a dense
symmetric A can be computed as ``A @ Vᵀ`` (columns, then transposed back) or
as ``V @ Aᵀ`` (the rows directly): the same numbers to rounding, but BLAS
kernels differ by layout. Reports CPU milliseconds a product (one thread,
`time.process_time`, robust to other processes on a shared machine), the
median of rounds that alternate the forms, for numpy (OpenBLAS) and torch.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python benchmarks/product_layout.py [--sizes 1000 4000] [--probes 1 4 16 64]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def forms(a: Any, rows: Any) -> dict[str, Callable[[], Any]]:
    return {"A @ Vᵀ": lambda: a @ rows.T, "V @ Aᵀ": lambda: rows @ a.T}


def cpu_ms(f: Callable[[], Any], reps: int) -> float:
    start = time.process_time()
    for _ in range(reps):
        f()
    return (time.process_time() - start) / reps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--probes", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("| library | n | k | A @ Vᵀ (ms) | V @ Aᵀ (ms) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in args.sizes:
        b = rng.standard_normal((n, n))
        a = (b + b.T) / 2
        for library, convert in (("numpy", np.asarray), ("torch", torch.from_numpy)):
            for k in args.probes:
                cases = forms(convert(a), convert(rng.standard_normal((k, n))))
                reps = max(2, int(2e8 / (n * n * max(k, 4) * 8)))
                found: dict[str, list[float]] = {name: [] for name in cases}
                for _ in range(args.rounds):
                    for name, f in cases.items():
                        found[name].append(cpu_ms(f, reps))
                cols, rows = (float(np.median(found[name])) for name in cases)
                print(f"| {library} | {n} | {k} | {cols:.2f} | {rows:.2f} | {rows / cols:.2f} |")


if __name__ == "__main__":
    main()

"""Lanczos batch size by measurement: the default against one batch and one probe at a time.

For k = 16 probes and m = 90 steps, `slq.density` on four operators, in rounds
that alternate three settings in one process:

- auto: the default (`probe_batch_size=None`): one batch, split into parts
  after a short timed trial where parts run faster (see `slq._batch_split`);
  the decision column gives each trial's step time per probe in a part over
  the whole batch's, and what followed.
  The process's remembered decisions are cleared before each auto run, so
  every auto time includes its trial;
- whole: ``probe_batch_size=16``, one batch of 16 advancing together;
- single: ``probe_batch_size=1``, one probe at a time.

Operators: a diagonal plus a rank-3 term (n = 2e4, `docs/matrices.md`'s
example: products far cheaper than the Gram–Schmidt passes), a 5-point stencil
as scipy CSR (n = 1e5), a dense matrix (n = 4000: the product is one GEMM,
and batching must stay), and a random scipy CSR matrix with 500 nonzeros a row
(n = 2e4).

Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/batch_split.py
      [--problems diagonal stencil dense sparse] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from lanczos_overhead import random_sparse

import slq
from slq._batch_split import clear_decisions


class DiagonalPlusLowRank:
    """D + U Uᵀ for a diagonal d of shape (n,) and U of shape (n, r) (docs/matrices.md)."""

    def __init__(self, d: np.ndarray, u: np.ndarray) -> None:
        self.d, self.u = d, u
        self.shape = (d.size, d.size)
        self.dtype = d.dtype

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return self.d * v + self.u @ (self.u.T @ v)

    def matmat(self, v: np.ndarray) -> np.ndarray:
        return self.d[:, None] * v + self.u @ (self.u.T @ v)


def stencil_2d(side: int) -> sp.csr_array:
    """The 5-point Laplacian on a side × side grid: n = side², 5 nonzeros a row."""
    line = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(side, side))
    eye = sp.eye_array(side)
    return (sp.kron(line, eye) + sp.kron(eye, line)).tocsr()


def problems() -> dict[str, Callable[[], tuple[str, Any]]]:
    rng = np.random.default_rng(0)

    def diagonal() -> tuple[str, Any]:
        d, u = rng.uniform(0.0, 1.0, 20_000), rng.standard_normal((20_000, 3))
        return "diagonal + rank 3, n = 2e4", DiagonalPlusLowRank(d, u)

    def stencil() -> tuple[str, Any]:
        return "5-point stencil (CSR), n = 1e5", stencil_2d(317)

    def dense() -> tuple[str, Any]:
        g = rng.standard_normal((4000, 4000))
        return "dense (GEMM), n = 4000", (g + g.T) / 2

    def sparse() -> tuple[str, Any]:
        return "CSR 500 a row, n = 2e4", random_sparse(20_000, 500)

    return {"diagonal": diagonal, "stencil": stencil, "dense": dense, "sparse": sparse}


class Decisions(logging.Handler):
    """Collects the decision lines that `slq` logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "a probe in a part" in message:  # "... (ratio): outcome": keep those
            self.lines.append(message[message.rindex("(") :].replace("):", ")"))


def timed(op: Any, batch: int | None, k: int, m: int) -> tuple[float, float]:
    """Wall and CPU seconds of one `density` call (CPU time: less hurt by a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    slq.density(op, num_steps=m, num_probes=k, probe_batch_size=batch, seed=0)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(problems()))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probes", type=int, default=16)
    parser.add_argument("--steps", type=int, default=90)
    args = parser.parse_args()
    k, m = args.probes, args.steps
    decisions = Decisions()
    logger = logging.getLogger("slq")
    logger.addHandler(decisions)
    logger.setLevel(logging.INFO)
    print(f"k = {k}, m = {m}, float64, numpy {np.__version__}; seconds as wall / CPU\n")
    print(
        "| operator | round | auto (s) | whole (s) | single (s) | auto ÷ best, wall | "
        "auto ÷ best, CPU | decision |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    summary = []
    for name in args.problems:
        label, op = problems()[name]()
        ratios: list[tuple[float, float]] = []
        for r in range(args.rounds):
            clear_decisions()
            decisions.lines.clear()
            auto = timed(op, None, k, m)
            decision = "; ".join(decisions.lines) or "not tried (basis fits)"
            whole, single = timed(op, k, k, m), timed(op, 1, k, m)
            ratios.append(tuple(a / min(w, s) for a, w, s in zip(auto, whole, single, strict=True)))
            cells = " | ".join(f"{t[0]:.2f} / {t[1]:.2f}" for t in (auto, whole, single))
            print(
                f"| {label} | {r + 1} | {cells} | {ratios[-1][0]:.2f} | {ratios[-1][1]:.2f} | "
                f"{decision} |",
                flush=True,
            )
        summary.append(
            (label, *(statistics.median(column) for column in zip(*ratios, strict=True)))
        )
    print("\n| operator | median auto ÷ best, wall | median auto ÷ best, CPU |")
    print("| --- | ---: | ---: |")
    for label, wall, cpu in summary:
        print(f"| {label} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()

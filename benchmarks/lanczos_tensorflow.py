"""Lanczos on TensorFlow tensors, step by step and as one graph, against the same run on numpy.

The time per step of `slq.lanczos` (m = 90 steps, full reorthogonalisation,
float64) for a diagonal operator, whose product costs one multiplication per
entry, so that slq's own per-step work (coefficients, Gram–Schmidt against the
stored basis, storing the new row) dominates. The same start vectors and
operator three ways: numpy arrays; TensorFlow tensors through an operator
without a traceable product (the eager engine: a few TensorFlow calls a step);
and TensorFlow tensors through the same operator offering its product for
tracing (`traceable_product`), which runs the batch's whole recurrence as one
`tf.function` call. The graph's first call, tracing included, is reported on
its own; the per-step times are of repeat calls.

Threads: with ``--threads N`` (default 1) both numpy's BLAS and TensorFlow's
thread pools are limited to N threads, so that the two libraries get the same
share of the machine; 0 leaves each library its default. ``--clock cpu``
times the process's CPU time instead of wall time: on a machine shared with
other work, it leaves out the time spent waiting for a core.

Run:  python benchmarks/lanczos_tensorflow.py [--sizes 10000 100000] [--probes 1 8]

``--rounds`` repeats each row, alternating the three ways within the round
(timings on a shared machine drift: compare within a round). With
``--baseline DIR`` (a checkout of another commit) each round also runs that
checkout's slq, loaded into the same process.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from _versions import activate, load
from threadpoolctl import threadpool_limits


class Diagonal:
    """diag(d) for a numpy array or TensorFlow tensor `d`: the cheapest operator there is."""

    def __init__(self, d: object) -> None:
        self.d, self.column = d, d[:, None]
        self.shape = (int(d.shape[0]),) * 2
        self.dtype = d.dtype

    def matvec(self, v: object) -> object:
        return self.d * v

    def matmat(self, v: object) -> object:
        return self.column * v


def diagonal_product(column: object, vectors: object) -> tuple[object, None]:
    """The product of `Diagonal.matmat` as a pure function of its tensor: traceable."""
    return column * vectors, None


class TraceableDiagonal(Diagonal):
    """The same operator, offering its product for tracing (one graph per run)."""

    def traceable_product(self) -> object:
        from slq._backends.traceable import TraceableProduct

        return TraceableProduct(diagonal_product, self.column)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def per_step(slq: object, op: object, v0: object, steps: int, repeat: int) -> float:
    """Best seconds per step of `repeat` `lanczos` runs, after a warm-up run."""
    slq.lanczos(op, v0, steps)  # type: ignore[attr-defined]
    return min(first_call(slq, op, v0, steps) for _ in range(repeat)) / steps


def first_call(slq: object, op: object, v0: object, steps: int) -> float:
    """Seconds of one run; of the first of these shapes, the graph's tracing included."""
    start = clock()
    slq.lanczos(op, v0, steps)  # type: ignore[attr-defined]
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--probes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", help="a checkout of slq to compare with, round by round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        limits = threadpool_limits(args.threads, user_api="blas")  # noqa: F841 (kept for the run)
    threads = args.threads or "default"
    print(
        f"m = {args.steps}, full reorthogonalisation, float64, diagonal operator, "
        f"threads = {threads}, {args.clock} time; numpy {np.__version__}, "
        f"tensorflow {tf.__version__}\n"
    )
    versions = {"": load(None)}
    if args.baseline:
        versions = {"before": load(args.baseline), "after": versions[""]}
    print(
        "| version | n | k | round | numpy ms/step | TF eager ms/step | TF graph ms/step "
        "| graph first call (s) | eager / numpy | graph / numpy |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        d = np.linspace(-1.0, 1.0, n)
        for k in args.probes:
            v0 = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0)
            d_tf, v0_tf = tf.constant(d), tf.constant(v0)
            first = {}
            for r in range(args.rounds):
                for name, modules in versions.items():
                    slq = activate(modules)
                    graph_op = TraceableDiagonal(d_tf)
                    if r == 0:
                        first[name] = first_call(slq, graph_op, v0_tf, args.steps)
                    numpy_s = per_step(slq, Diagonal(d), v0, args.steps, args.repeat)
                    eager_s = per_step(slq, Diagonal(d_tf), v0_tf, args.steps, args.repeat)
                    graph_s = per_step(slq, graph_op, v0_tf, args.steps, args.repeat)
                    print(
                        f"| {name} | {n:.0e} | {k} | {r + 1} | {numpy_s * 1e3:.2f} "
                        f"| {eager_s * 1e3:.2f} | {graph_s * 1e3:.2f} | {first[name]:.2f} "
                        f"| {eager_s / numpy_s:.2f} | {graph_s / numpy_s:.2f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()

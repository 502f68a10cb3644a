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

``--parts`` adds a table of what bounds the graph's step: the parts of a full
step timed alone at the run's mean basis length (m/2 rows), in numpy and in a
`tf.function` (one thread each): the coefficients V w, the subtraction
w − Vᵀ c, and storing a row: numpy writes it in place; the graph appends it to
its half-full block of `BLOCK_ROWS` (a copy of the block: a tensor cannot be
written in place), and, for comparison, writes it into a preallocated basis
carried by a `tf.while_loop` (which copies the whole basis).

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


def _seconds(f: object, *args: object, repeat: int = 50) -> float:
    """Best of three means over `repeat` calls of f(*args), after one warm-up call."""
    f(*args)  # type: ignore[operator]
    best = np.inf
    for _ in range(3):
        start = clock()
        for _ in range(repeat):
            f(*args)  # type: ignore[operator]
        best = min(best, (clock() - start) / repeat)
    return best


def _einsum(equation: str, a: object, b: object) -> object:
    return tf.raw_ops.Einsum(inputs=[a, b], equation=equation)  # the graph's own op


def _graph_loop_store(basis: object, rows: object, steps: int) -> float:
    """Seconds a step of writing one row a step into a preallocated basis, in a while_loop."""

    @tf.function(autograph=False)
    def loop(basis: object, rows: object) -> object:
        def body(j: object, basis: object) -> tuple[object, object]:
            k = tf.shape(rows)[0]
            index = tf.stack([tf.range(k), tf.fill([k], j)], axis=1)  # (p, j) for each probe p
            return j + 1, tf.tensor_scatter_nd_update(basis, index, rows)

        return tf.while_loop(lambda j, _: j < steps, body, (tf.constant(0), basis))[1]

    return _seconds(loop, basis, rows, repeat=1) / steps


def parts(n: int, k: int, m: int) -> dict[str, tuple[float, float]]:
    """Milliseconds of each part of a full step at j = m/2 stored rows: (numpy, graph)."""
    from slq._backends.tensorflow import BLOCK_ROWS

    rng = np.random.default_rng(1)
    j = m // 2
    basis = rng.standard_normal((k, j, n)) / n**0.5
    w = rng.standard_normal((k, n))
    c = np.einsum("kjn,kn->kj", basis, w)
    full = np.zeros((k, m + 1, n))
    block = tf.constant(basis[:, : BLOCK_ROWS // 2])
    basis_tf, w_tf, c_tf = tf.constant(basis), tf.constant(w), tf.constant(c)
    coefficients = tf.function(lambda v, w: _einsum("kjn,kn->kj", v, w))
    subtract = tf.function(lambda v, w, c: w - _einsum("kj,kjn->kn", c, v))
    append = tf.function(lambda b, w: tf.concat([b, tf.expand_dims(w, 1)], axis=1))
    # A tf.function call's own cost, which a step inside the run's graph does not pay.
    call = _seconds(tf.function(lambda v, w: w), basis_tf, w_tf)

    def write(full: np.ndarray, w: np.ndarray) -> None:
        full[:, j, :] = w

    ms = {
        "coefficients V w": (
            _seconds(lambda: basis @ w[:, :, None]),
            _seconds(coefficients, basis_tf, w_tf) - call,
        ),
        "subtraction w − Vᵀ c": (
            _seconds(lambda: w - (c[:, None, :] @ basis)[:, 0]),
            _seconds(subtract, basis_tf, w_tf, c_tf) - call,
        ),
        f"store a row (graph: append to {BLOCK_ROWS // 2} of {BLOCK_ROWS} rows)": (
            _seconds(write, full, w),
            _seconds(append, block, w_tf) - call,
        ),
        "store a row into a preallocated basis in a while_loop (graph)": (
            np.nan,
            _graph_loop_store(tf.constant(full), w_tf, m),
        ),
    }
    return {name: (1e3 * a, 1e3 * b) for name, (a, b) in ms.items()}


def print_parts(sizes: list[int], probes: list[int], m: int) -> None:
    """Print the parts of a full step, numpy against the graph, for every n and k."""
    print(
        "\n| n | k | part of a step (m/2 rows stored) | numpy ms | graph ms (call's own cost "
        "taken off) | graph / numpy |"
    )
    print("| ---: | ---: | --- | ---: | ---: | ---: |")
    for n in sizes:
        for k in probes:
            for name, (a, b) in parts(n, k, m).items():
                ratio = "" if np.isnan(a) else f"{b / a:.2f}"
                a_text = "" if np.isnan(a) else f"{a:.3f}"
                print(f"| {n:.0e} | {k} | {name} | {a_text} | {b:.3f} | {ratio} |", flush=True)


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
    parser.add_argument("--parts", action="store_true", help="also time a step's parts alone")
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
    if args.parts:
        print_parts(args.sizes, args.probes, args.steps)


if __name__ == "__main__":
    main()

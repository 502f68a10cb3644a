"""Lanczos on TensorFlow tensors against the same run on numpy arrays.

The time per step of `slq.lanczos` (m = 90 steps, full reorthogonalisation,
float64) for a diagonal operator, whose product costs one multiplication per
entry, so that slq's own per-step work (coefficients, Gram–Schmidt twice
against the stored basis, storing the new row) dominates. The same start
vectors and operator, once as numpy arrays and once as TensorFlow tensors.

Threads: with ``--threads N`` (default 1) both numpy's BLAS and TensorFlow's
thread pools are limited to N threads, so that the two libraries get the same
share of the machine; 0 leaves each library its default.

Run:  python benchmarks/lanczos_tensorflow.py [--sizes 10000 100000] [--probes 1 8]

With ``--baseline DIR`` (a checkout of another commit) each row gets a round
per version, alternating between that checkout's slq and this one in one
process; ``--rounds`` sets how many.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from _common import best
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


def per_step(lanczos: object, d: object, v0: object, steps: int, repeat: int) -> float:
    """Best seconds per step of one `lanczos` run."""
    op = Diagonal(d)
    return best(lambda: lanczos(op, v0, steps), repeat) / steps  # type: ignore[operator]


def both(
    lanczos: object, d: np.ndarray, v0: np.ndarray, steps: int, repeat: int
) -> tuple[float, float]:
    """Seconds per step on numpy arrays, then on TensorFlow tensors of the same values."""
    numpy_s = per_step(lanczos, d, v0, steps, repeat)
    return numpy_s, per_step(lanczos, tf.constant(d), tf.constant(v0), steps, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--probes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", help="a checkout of slq to compare with, round by round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        limits = threadpool_limits(args.threads, user_api="blas")  # noqa: F841 (kept for the run)
    threads = args.threads or "default"
    print(
        f"m = {args.steps}, full reorthogonalisation, float64, diagonal operator, "
        f"threads = {threads}; numpy {np.__version__}, tensorflow {tf.__version__}\n"
    )
    versions = {"": load(None)}
    if args.baseline:
        versions = {"before": load(args.baseline), "after": versions[""]}
    rounds = args.rounds if args.baseline else 1
    print("| version | n | k | numpy ms/step | TF ms/step | TF / numpy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        d = np.linspace(-1.0, 1.0, n)
        for k in args.probes:
            v0 = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0)
            for _ in range(rounds):
                for name, modules in versions.items():
                    numpy_s, tf_s = both(activate(modules).lanczos, d, v0, args.steps, args.repeat)
                    print(
                        f"| {name} | {n:.0e} | {k} | {numpy_s * 1e3:.2f} | {tf_s * 1e3:.2f} "
                        f"| {tf_s / numpy_s:.2f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()

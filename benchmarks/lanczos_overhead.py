"""Lanczos overhead: time outside the operator, reorthogonalisation speed, basis memory.

For sparse symmetric operators of size n, m = 90 steps and k = 1 or 8 probes:

- overhead: the fraction of a `slq.lanczos` run spent outside the operator;
- reorth speed: the bare products of one full reorthogonalisation (`V @ w` and
  `V.T @ c`, twice, on the same arrays, timed alone) over the backend's
  `project_twice` on those arrays (target >= 0.7);
- basis memory: peak memory traced during the run over (m+1)·n·k·itemsize;
- batched / sequential: one run with k = 8 probes over 8 runs of one probe.

Operators: a "stencil" (5 nonzeros per row: the cheapest possible operator,
which exposes the overhead); a "sparse" one with 500 nonzeros per row, as costly
per product as a network Hessian-vector product (built up to n = 1e5, whose 5e7
nonzeros take 600 MB); and at n = 1e4 a dense matrix, whose (n, 8) product is one
GEMM, as a vmapped HVP is one batched pass.

Run:  python benchmarks/lanczos_overhead.py [--sizes 10000 100000 1000000] [--steps 90]
      [--reorthogonalize full partial] [--probes 1 8]

With ``--baseline DIR`` (a checkout of another commit) it prints instead the
overhead of the sparse operator in rounds that alternate between that
checkout's slq and this one, in one process. With ``--hvp`` it prints the
overhead of runs on networks' Hessians instead (``--models mlp cnn``):
`adapters.torch_hessian` of a tanh MLP 64-W-10 on the 1797 digits, W chosen so
that n is at least each size, or of a small tanh CNN on 256 of them (torch
vectors: the torch backend's Lanczos). ``--reorthogonalize`` lists the policies
to run, alternating within each round. Its table also counts the minor page
faults a step (first writes to fresh pages: the basis's rows and whatever the
products allocate), which make runs on fresh memory slower on some VMs.
"""

from __future__ import annotations

import argparse
import functools
import resource
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
from _common import best
from _versions import activate, load

import slq


class Timed:
    """Wrap a matrix, accumulating the seconds spent inside its products.

    A sparse matrix is applied one column at a time: scipy's CSR times a dense
    (n, 8) block is up to 19x slower here than 8 CSR matvecs, and that is scipy's
    cost, not slq's. A dense matrix uses one GEMM for all columns.
    """

    def __init__(self, a: sp.csr_array | np.ndarray) -> None:
        self.a, self.shape, self.dtype, self.seconds = a, a.shape, a.dtype, 0.0

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return self.matmat(v[:, None])[:, 0]

    def matmat(self, v: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        if sp.issparse(self.a):
            out = np.stack([self.a @ v[:, i] for i in range(v.shape[1])], axis=1)
        else:
            out = self.a @ v
        self.seconds += time.perf_counter() - start
        return out


class TimedTorch:
    """Wrap a torch operator, accumulating the seconds spent inside its products."""

    def __init__(self, op: object) -> None:
        self.op, self.shape, self.dtype, self.seconds = op, op.shape, op.dtype, 0.0

    def matvec(self, v: object) -> object:
        return self.matmat(v[:, None])[:, 0]

    def matmat(self, v: object) -> object:
        start = time.perf_counter()
        out = slq.matmat(self.op, v)
        self.seconds += time.perf_counter() - start
        return out


def mlp_hessian(n: int) -> object:
    """`adapters.torch_hessian` of a tanh MLP 64-W-10 on the digits, with at least n parameters."""
    import torch
    from sklearn.datasets import load_digits

    from slq import adapters

    torch.manual_seed(0)
    width = -(-(n - 10) // 75)  # 64 W + W + 10 W + 10 parameters
    model = torch.nn.Sequential(
        torch.nn.Linear(64, width), torch.nn.Tanh(), torch.nn.Linear(width, 10)
    ).double()
    x, y = load_digits(return_X_y=True)
    data = (torch.from_numpy(x / 16.0), torch.from_numpy(y))
    return adapters.torch_hessian(model, data)


def cnn_hessian(n: int, examples: int = 256) -> object:
    """`adapters.torch_hessian` of a tanh CNN on 8x8 digits, with at least n parameters.

    conv 3x3 1→32, conv 3x3 32→C, 2x2 average pooling, linear 16 C→10, C chosen
    for n; the first `examples` digits. A convolution applies each weight at
    every position of every example: far more work per parameter than an MLP's.
    """
    import torch
    from sklearn.datasets import load_digits

    from slq import adapters

    torch.manual_seed(0)
    channels = -(-(n - 330) // 448)  # 288 C + C (conv 2) + 160 C (linear) + 330
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.Conv2d(32, channels, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * channels, 10),
    ).double()
    x, y = load_digits(return_X_y=True)
    images = torch.from_numpy(x[:examples] / 16.0).reshape(-1, 1, 8, 8)
    return adapters.torch_hessian(model, (images, torch.from_numpy(y[:examples])))


HESSIANS = {"mlp": ("MLP", mlp_hessian), "cnn": ("CNN", cnn_hessian)}


def hvp_overhead(
    sizes: list[int], m: int, rounds: int, models: list[str], policies: list[str], ks: list[int]
) -> None:
    """Print the share of runs on a network's Hessian spent outside its products."""
    import torch

    torch.set_num_threads(1)
    print(f"m = {m}, float64, torch {torch.__version__}, one thread\n")
    print(
        "| operator | reorthogonalize | n | k | round | run (s) | ms / product "
        "| outside operator | ms / step outside | page faults / step |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        for model in models:
            label, build = HESSIANS[model]
            hessian = build(n)
            dim = hessian.shape[0]
            for k in ks:
                v0 = torch.from_numpy(probes(dim, k))
                for r in range(rounds):
                    for policy in policies:  # alternating: both see the same drift
                        op = TimedTorch(hessian)
                        faults = minor_faults()
                        start = time.perf_counter()
                        slq.lanczos(op, v0, m, reorthogonalize=policy)
                        total = time.perf_counter() - start
                        faults = minor_faults() - faults
                        outside = total - op.seconds
                        share, per = outside / total, 1e3 * op.seconds / (m * k)
                        print(
                            f"| {label} Hessian ({hessian.hvp}) | {policy} | {dim} | {k} "
                            f"| {r + 1} | {total:.2f} | {per:.1f} | {share:.1%} "
                            f"| {1e3 * outside / m:.2f} | {faults / m:.0f} |",
                            flush=True,
                        )
    print("\n| n | k | two reads of the basis a step, alone (ms): `full`'s least |")
    print("| ---: | ---: | ---: |")
    for n in sizes:
        for k in ks:
            print(f"| {n} | {k} | {basis_passes(n, k, m):.2f} |", flush=True)


def minor_faults() -> int:
    """Page faults the process has taken so far that needed no disk (Linux, macOS).

    The first write to each page of fresh memory is one: the basis's rows, and
    whatever the products allocate. On a VM that hands freed memory back to its
    host they can cost several microseconds each (see benchmarks/README.md).
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def basis_passes(n: int, k: int, m: int) -> float:
    """Milliseconds a step that full reorthogonalisation's two reads of the basis take alone.

    At step j, one classical Gram–Schmidt pass reads the j+1 stored rows twice:
    for the coefficients V w and for w − Vᵀ c. Timed on their own, on rows
    already in memory, averaged over the m steps: a lower bound on what any
    `"full"` step spends outside the operator (the run's rows are colder).
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    basis = torch.randn((k, m, n), dtype=torch.float64, generator=generator) / n**0.5
    w = torch.randn((k, n), dtype=torch.float64, generator=generator)
    start = time.perf_counter()
    for j in range(m):
        rows = basis[:, : j + 1, :]
        c = w[:, None, :] @ rows.transpose(1, 2)
        w = w - (c @ rows)[:, 0, :]
    return 1e3 * (time.perf_counter() - start) / m


def stencil(n: int) -> sp.csr_array:
    """A symmetric pentadiagonal matrix: 5 nonzeros per row."""
    offsets = [-2, -1, 0, 1, 2]
    values = [
        np.full(n - abs(o), c) for o, c in zip(offsets, [-0.5, -1.0, 3.0, -1.0, -0.5], strict=True)
    ]
    return sp.diags_array(values, offsets=offsets, format="csr")


def random_sparse(n: int, per_row: int, seed: int = 0) -> sp.csr_array:
    """A symmetric matrix with about `per_row` random nonzeros per row."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n, dtype=np.int32), per_row // 2)
    cols = rng.integers(0, n, rows.size, dtype=np.int32)
    vals = rng.standard_normal(rows.size)
    half = sp.coo_array((vals, (rows, cols)), shape=(n, n)).tocsr()
    return (half + half.T).tocsr()


def probes(n: int, k: int) -> np.ndarray:
    return np.where(np.random.default_rng(1).random((n, k)) < 0.5, -1.0, 1.0)


def run_overhead(
    a: sp.csr_array, k: int, m: int, lanczos: object = None, policy: str = "full"
) -> tuple[float, float, float]:
    """Return (total seconds, fraction outside the operator, peak memory / basis size).

    The time and the memory come from two runs: tracing every allocation slows
    the run's own (measured 5.9% outside the operator traced, 2.4% not, for
    500 nonzeros a row at n = 1e5, k = 1, partial).
    """
    run = functools.partial(lanczos or slq.lanczos, reorthogonalize=policy)
    v0 = probes(a.shape[0], k)
    op = Timed(a)
    start = time.perf_counter()
    run(op, v0, m)
    total = time.perf_counter() - start
    tracemalloc.start()
    run(Timed(a), v0, m)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    basis_bytes = (m + 1) * a.shape[0] * k * 8
    return total, (total - op.seconds) / total, peak / basis_bytes


def run_reorth_speed(n: int, k: int, m: int, repeat: int) -> float:
    """Bare-product time over slq's reorthogonalisation time, on one full basis."""
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.standard_normal((n, m)))[0].T.copy()[None].repeat(k, axis=0)
    w = rng.standard_normal((k, n))
    backend = slq.aslinearoperator(np.eye(1)).backend
    ours = best(lambda: backend.project_twice(w, basis, m, w.dtype), repeat, warmup=False)
    basis_t = np.matrix_transpose(basis)
    c = w[:, None, :] @ basis_t

    def bare() -> None:
        for _ in range(2):
            w[:, None, :] @ basis_t
            c @ basis

    return best(bare, repeat, warmup=False) / ours


def run_batched(a: sp.csr_array | np.ndarray, k: int, m: int) -> float:
    """Time of k sequential one-probe runs over one batched run of k probes."""
    v0, op = probes(a.shape[0], k), Timed(a)
    batched = best(lambda: slq.lanczos(op, v0, m), 1, warmup=False)
    sequential = best(
        warmup=False, repeat=1, f=lambda: [slq.lanczos(op, v0[:, i], m) for i in range(k)]
    )
    return sequential / batched


def operators(n: int, max_hvp_n: int) -> dict[str, sp.csr_array | np.ndarray]:
    found: dict[str, sp.csr_array | np.ndarray] = {"stencil (5/row)": stencil(n)}
    if n <= max_hvp_n:
        found["sparse (500/row)"] = random_sparse(n, 500)
    if n <= 10_000:
        dense = np.random.default_rng(3).standard_normal((n, n))
        found["dense (n/row)"] = (dense + dense.T) / 2
    return found


def compare(baseline: str, sizes: list[int], m: int, rounds: int) -> None:
    """Print the sparse operator's overhead, alternating between `baseline`'s slq and this one."""
    versions = {"before": load(baseline), "after": load(None)}
    print(f"m = {m}, float64, sparse (500/row); before: {baseline}\n")
    print("| n | k | round | before: outside operator | after: outside operator |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        a = random_sparse(n, 500)
        for k in (1, 8):
            for r in range(rounds):
                shares = [
                    run_overhead(a, k, m, activate(modules).lanczos)[1]
                    for modules in versions.values()
                ]
                row = f"| {n:.0e} | {k} | {r + 1} | {shares[0]:.1%} | {shares[1]:.1%} |"
                print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-hvp-n", type=int, default=100_000)
    parser.add_argument("--baseline", help="a checkout of slq to compare with, round by round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hvp", action="store_true", help="networks' Hessians instead (torch)")
    parser.add_argument("--models", nargs="+", choices=sorted(HESSIANS), default=["mlp"])
    parser.add_argument(
        "--reorthogonalize", nargs="+", choices=["full", "partial", "none"], default=["full"]
    )
    parser.add_argument("--probes", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    m = args.steps
    if args.hvp:
        hvp_overhead(args.sizes, m, args.rounds, args.models, args.reorthogonalize, args.probes)
        return
    if args.baseline:
        compare(args.baseline, args.sizes, m, args.rounds)
        return
    print(f"m = {m}, float64, numpy {np.__version__}, scipy CSR operators\n")
    print(
        "| operator | reorthogonalize | n | k | run (s) | outside operator "
        "| basis peak / (m+1)nk·8 |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for n in args.sizes:
        for name, a in operators(n, args.max_hvp_n).items():
            for k in args.probes:
                for policy in args.reorthogonalize:
                    total, outside, memory = run_overhead(a, k, m, policy=policy)
                    print(
                        f"| {name} | {policy} | {n:.0e} | {k} | {total:.2f} | {outside:.1%} "
                        f"| {memory:.2f} |",
                        flush=True,
                    )
    print("\n| n | k | reorth speed: bare products / slq |")
    print("| ---: | ---: | ---: |")
    for n in args.sizes:
        for k in (1, 8):
            print(f"| {n:.0e} | {k} | {run_reorth_speed(n, k, m, args.repeat):.2f} |")
    print("\n| operator | n | 8 sequential runs / 1 batched run (k = 8) |")
    print("| --- | ---: | ---: |")
    for n in args.sizes:
        for name, a in operators(n, args.max_hvp_n).items():
            print(f"| {name} | {n:.0e} | {run_batched(a, 8, m):.2f} |")


if __name__ == "__main__":
    main()

"""slq against its peers: the same six problems, m, k and seed for every tool.

Problems (``--problems``): a dense n = 4000 spiked matrix, a matrix-free
n = 20000 sparse operator, a tanh MLP 64-200-10 (15,010 parameters) on all 1797
digits at initialisation and trained, and a small CNN without and with
(eval-mode) BatchNorm, all in float64. Tools (``--tools``): slq (numpy, and
``adapters.torch_hessian`` with its defaults), slq on JAX (a JAX array, or
``adapters.jax_hessian`` on a JAX twin of the network with the same weights),
PyHessian, hessian-eigenthings, curvlinops, matfree and a textbook numpy Lanczos.
A tool that is not installed, or cannot run a problem, is listed with the reason.

For each (problem, k, tool): wall time including set-up (operator, planning,
compilation), the median over ``--repeat`` rounds and the first round alone
(which pays every compile a process caches), for JAX tools also a repeat call;
operator products; the L1 distance of the Gaussian-smoothed density (one
σ = exact width / m for all tools, from each tool's per-probe Ritz nodes and
weights) to the exact one; and
|λ_max error| / |λ_max|. Exact network spectra are cached in
benchmarks/.peers-cache/. It is a benchmark, never a test.

Peers:  pip install -r benchmarks/requirements-peers.txt  (see that file)
Run:    python benchmarks/peers.py [--quick] [--markdown] [--json out.json]
"""

from __future__ import annotations

import os

THREADS = "1"  # one thread per library, set before any of them is imported
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = THREADS
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
# XLA's CPU client (jax 0.10) ignores those flags and ran a GEMM on both cores (CPU time
# 1.7x wall): the process is held to one core, so every library's thread has that core.
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _common import Reference, best  # noqa: E402
from _peer_problems import NAMES, Problem, build  # noqa: E402
from _peers import TOOLS, Outcome, Tool, native  # noqa: E402


class Exact:
    """The exact spectrum smoothed with σ = width / m on a grid 5σ past it (one σ for all)."""

    def __init__(self, eigenvalues: np.ndarray, steps: int) -> None:
        self.reference = Reference.of_spectrum(eigenvalues, steps)
        self.lambda_max, self.sigma = eigenvalues[-1], self.reference.sigma

    def errors(self, out: Outcome) -> tuple[float, float]:
        """(L1 of the smoothed densities, |λ_max error| / |λ_max|)."""
        top = float(np.max(np.nan_to_num(out.nodes)))
        error = self.reference.error(out.nodes, out.weights)
        return error, abs(top - self.lambda_max) / abs(self.lambda_max)


def unavailable(tool: Tool, problem: Problem) -> str | None:
    if tool.missing():
        return "not installed"
    if problem.kind not in tool.kinds:
        return "n/a: needs a model and a loss" if problem.kind == "matrix" else "n/a: matrices only"
    if tool.form == "jax" and problem.kind == "network" and native(problem, "jax") is None:
        return "n/a: no JAX twin of this network"
    return None


def measure(tool: Tool, problem: Problem, k: int, m: int, seed: int) -> dict[str, Any]:
    """One round of one tool: set-up and first run timed; a repeat for JAX tools."""
    native(problem, tool.form)
    if problem.kind == "network":
        problem = dataclasses.replace(problem, model=copy.deepcopy(problem.model))
    gc.collect()
    start = time.perf_counter()
    run = tool.prepare(problem, k, m, seed)
    out = run()
    record: dict[str, Any] = {"seconds": time.perf_counter() - start}
    if tool.form == "jax":
        start = time.perf_counter()
        run()
        record["repeat_seconds"] = time.perf_counter() - start
    record["outcome"] = out
    return record


def run_problem(
    problem: Problem, tools: list[Tool], probes: list[int], m: int, rounds: int, seed: int
) -> list[dict[str, Any]]:
    """Every tool on `problem` for each k, alternating tools within each round."""
    exact, rows = Exact(problem.eigenvalues, m), []
    for k in probes:
        found: dict[str, list[dict[str, Any]]] = {}
        skipped = {t.name: unavailable(t, problem) for t in tools}
        for _ in range(rounds):
            for tool in tools:
                if skipped[tool.name] is None:
                    found.setdefault(tool.name, []).append(measure(tool, problem, k, m, seed))
        for tool in tools:
            row = {"problem": problem.name, "n": problem.dim, "k": k, "m": m, "tool": tool.name}
            row.update(probes=tool.probes, reorthogonalization=tool.reorth)
            if skipped[tool.name] is not None:
                rows.append({**row, "status": skipped[tool.name]})
                continue
            runs = found[tool.name]
            error, top = exact.errors(runs[0]["outcome"])
            row.update(status="ok", seconds=float(np.median([r["seconds"] for r in runs])))
            row["first_seconds"] = runs[0]["seconds"]  # the process's first: every compile in it
            if "repeat_seconds" in runs[0]:
                row["repeat_seconds"] = float(np.median([r["repeat_seconds"] for r in runs]))
            row.update(products=runs[0]["outcome"].products, l1=error, lambda_max_error=top)
            row.update(sigma=exact.sigma, rounds=rounds)
            rows.append(row)
    return rows


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """slq's best wall time (set-up included) over the fastest peer's, per (problem, k)."""
    ok = [r for r in rows if r["status"] == "ok"]
    ours = [r for r in ok if r["tool"].startswith("slq")]
    peers = [r for r in ok if not r["tool"].startswith("slq")]
    if not ours or not peers:
        return {}
    best, fastest = min(ours, key=lambda r: r["seconds"]), min(peers, key=lambda r: r["seconds"])
    return {
        "problem": rows[0]["problem"],
        "k": rows[0]["k"],
        "slq": best["tool"],
        "peer": fastest["tool"],
        "ratio": best["seconds"] / fastest["seconds"],
    }


def gradient_seconds(problem: Problem) -> dict[str, float]:
    """One full-data gradient of the network, torch and (jitted) JAX twin, best of 5: the unit
    in which each tool's seconds per product read as HVP ÷ gradient."""
    import jax
    import torch

    model, (x, y) = problem.model, problem.data
    params = [p for p in model.parameters() if p.requires_grad]

    def torch_gradient() -> None:
        torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params)

    found = {"torch": best(torch_gradient, repeat=5)}
    twin = native(problem, "jax")
    if twin is not None:
        loss_fn, weights, batch = twin
        grad = jax.jit(jax.grad(loss_fn))
        found["jax"] = best(lambda: jax.block_until_ready(grad(weights, batch)), repeat=5)
    return found


def product_seconds(problem: Problem, k: int) -> dict[str, float]:
    """One bare product of k vectors, timed alone, best of 5: the bound of a run's m·k products.

    Networks: slq's torch operator (after its build), the retained-graph double backward
    that PyHessian runs, and ``jvp(grad)`` (matfree's product) and slq's operator on the JAX
    twin. Matrices: numpy's and XLA's dense or CSR product. With `gradient_seconds`, the
    HVP ÷ gradient ratio of each tool's product.
    """
    import jax
    import jax.numpy as jnp
    import torch
    from jax.flatten_util import ravel_pytree

    import slq
    from slq import adapters

    found: dict[str, float] = {}
    rng = np.random.default_rng(0)
    if problem.kind == "matrix":
        a = native(problem, "numpy")
        v = rng.standard_normal((problem.dim, k)) if k > 1 else rng.standard_normal(problem.dim)
        found["numpy"] = best(lambda: a @ v, repeat=5)
        b, w = native(problem, "jax"), jnp.asarray(v)
        product = jax.jit(lambda w: b @ w) if isinstance(b, jnp.ndarray) else jax.jit(b.__matmul__)
        found["jax"] = best(lambda: jax.block_until_ready(product(w)), repeat=5)
        return found
    model, (x, y) = problem.model, problem.data
    op = adapters.torch_hessian(model, problem.data, batchnorm="eval")
    block = torch.from_numpy(rng.standard_normal((op.shape[0], k)))
    found["slq (torch)"] = best(lambda: slq.matmat(op, block), repeat=5)
    params = [p for p in model.parameters() if p.requires_grad]
    gradient = torch.autograd.grad(
        torch.nn.functional.cross_entropy(model(x), y), params, create_graph=True
    )
    tangents = [torch.randn(k, *p.shape, dtype=p.dtype) for p in params]

    def retained() -> None:
        for i in range(k):
            torch.autograd.grad(gradient, params, [t[i] for t in tangents], retain_graph=True)

    found["retained graph (PyHessian)"] = best(retained, repeat=5)
    twin = native(problem, "jax")
    if twin is not None:
        loss_fn, weights, batch = twin
        flat, unravel = ravel_pytree(weights)
        tangent = jnp.asarray(block.numpy().T)

        def one(f: Any, t: Any) -> Any:
            return jax.jvp(jax.grad(lambda g: loss_fn(unravel(g), batch)), (f,), (t,))[1]

        fresh = jax.jit(jax.vmap(one, in_axes=(None, 0)))
        found["jvp(grad) (matfree)"] = best(
            lambda: jax.block_until_ready(fresh(flat, tangent)), repeat=5
        )
        ours = adapters.jax_hessian(loss_fn, weights, batch)
        columns = jnp.asarray(block.numpy())
        found["slq (JAX)"] = best(lambda: jax.block_until_ready(slq.matmat(ours, columns)), 5)
    return found


def fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| k | tool | wall incl. set-up (s) | round 1 (s) | repeat (s) | ÷ fastest peer "
        "| products | ms / product | L1 to exact | λ_max rel. error |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in sorted({r["k"] for r in rows}):
        group = [r for r in rows if r["k"] == k]
        peer_times = [r["seconds"] for r in group if r["status"] == "ok" and r["tool"][:3] != "slq"]
        fastest = min(peer_times) if peer_times else None
        for r in group:
            if r["status"] != "ok":
                lines.append(f"| {k} | {r['tool']} | {r['status']} | | | | | | | |")
                continue
            ratio = r["seconds"] / fastest if fastest else None
            # The repeat call where there is one: set-up and compilation are not per product.
            per = 1e3 * r.get("repeat_seconds", r["seconds"]) / r["products"]
            lines.append(
                f"| {k} | {r['tool']} | {r['seconds']:.2f} | {r['first_seconds']:.2f} "
                f"| {fmt(r.get('repeat_seconds'), '.2f')}"
                f" | {fmt(ratio, '.2f')} | {r['products']} | {per:.1f} | {r['l1']:.4f} "
                f"| {r['lambda_max_error']:.1e} |"
            )
    return lines


def summary(found: list[dict[str, Any]]) -> list[str]:
    lines = ["| problem | k | slq (best variant) | fastest peer | slq ÷ fastest peer |"]
    lines.append("| --- | ---: | --- | --- | ---: |")
    for r in found:
        lines.append(f"| {r['problem']} | {r['k']} | {r['slq']} | {r['peer']} | {r['ratio']:.2f} |")
    return lines


DISTRIBUTIONS = (
    "numpy",
    "scipy",
    "torch",
    "jax",
    "PyHessian",
    "hessian-eigenthings",
    "curvlinops-for-pytorch",
    "matfree",
)


def header(args: argparse.Namespace) -> str:
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for name in DISTRIBUTIONS:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} not installed")
    cpu = platform.processor() or platform.machine()
    return (
        f"m = {args.steps} steps, k in {args.probes}, seed {args.seed}, float64, {THREADS} thread "
        f"per library on one core, median of {args.repeat} round(s); {cpu}, "
        f"{os.cpu_count()} cores; " + ", ".join(versions)
    )


def warm_up(jax: Any, torch: Any) -> None:
    """Start each runtime once (JAX's backend, torch's autograd): no tool's cost.

    The first ``autograd.grad`` given ``grad_outputs`` imports sympy for torch's shape
    checks (0.35 s of CPU on the 2-core VM, torch 2.13); every torch tool here calls it,
    and whichever ran first in the process paid it.
    """
    jax.block_until_ready(jax.jit(lambda v: v @ v)(jax.numpy.ones(8)))
    w = torch.ones(8, requires_grad=True)
    torch.autograd.grad((w * w).sum(), w)
    torch.autograd.grad(w * w, w, torch.ones(8))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--probes", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--tools", nargs="+", choices=[t.name for t in TOOLS])
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is reported")
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--json", help="write machine-readable results to this path")
    parser.add_argument("--markdown", action="store_true", help="print the README tables")
    return parser.parse_args()


def main() -> None:
    args = parse()
    import jax
    import torch

    jax.config.update("jax_enable_x64", True)
    torch.set_num_threads(int(THREADS))
    # Third-party notes that say nothing about the results (torch's beta sparse CSR,
    # PyHessian's backward(create_graph=True)).
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    warm_up(jax, torch)
    tools = [t for t in TOOLS if args.tools is None or t.name in args.tools]
    print(header(args), flush=True)
    rows, found = [], []
    for name in args.problems:
        problem = build(name, args.quick)
        these = run_problem(problem, tools, args.probes, args.steps, args.repeat, args.seed)
        rows += these
        found += [ratios([r for r in these if r["k"] == k]) for k in args.probes]
        print(f"\n{problem.name} ({problem.note or problem.kind}), n = {problem.dim}", flush=True)
        if problem.kind == "network":
            gradients = gradient_seconds(problem)
            rows.append({"problem": problem.name, "status": "gradient", **gradients})
            times = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in gradients.items())
            print(f"one gradient: {times}")
        for k in args.probes:
            costs = product_seconds(problem, k)
            rows.append({"problem": problem.name, "status": f"product k={k}", **costs})
            times = ", ".join(f"{name} {v * 1e3:.2f} ms" for name, v in costs.items())
            print(f"one product of {k} vector{'s' * (k > 1)}: {times}")
        if args.markdown or not args.json:
            print("\n".join(table(these)), flush=True)
    print("\n" + "\n".join(summary([f for f in found if f])))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"setup": header(args), "rows": rows, "ratios": found}, file, indent=1)


if __name__ == "__main__":
    main()

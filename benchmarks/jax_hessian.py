"""The JAX adapter: HVP cost, batched products, Lanczos overhead, and slq against matfree.

On scikit-learn's bundled digits data (1797 images, no download), for tanh MLPs
trained briefly with Adam, in float32 (JAX's default):

1. HVP time / gradient time over the full data (both jitted): a fresh
   ``jvp(grad)`` per product, and the gradient linearized once
   (``jax.linearize``) so each product runs only the tangent part; through the
   operator's ``matvec`` as users call it.
2. One ``matmat`` of k = 8 vectors: time per vector over one matvec's.
3. Lanczos overhead at n > 1e5: the fraction of ``slq.density`` spent outside
   the operator (products blocked on, so their time is counted where it is spent).
4. ``slq.density`` against matfree 0.6.3 (its ``decomp.tridiag_sym`` with full
   reorthogonalisation, vmapped over probes and jitted, with ``jvp(grad)``
   products as in its docs; and again with linearized products) at an equal
   budget of 10 probes x 90 products: wall time (first call, which includes
   compiling, and a repeat call) and the L1 distance of each smoothed density to
   the exact one from a dense eigendecomposition of the float64 Hessian.

5. ``--float64``: the compiled run (issue 18) against matfree in float64, m = 90,
   k = 10, on the MLP 64-32-10 Hessian and a dense n = 4000 spiked matrix: the
   first call (operator built and everything compiled) and repeat calls (slq:
   a new operator each time, as at new parameters; matfree: its jitted
   function called again), each with its compile time apart.

Peers are installed only for this script:
    pip install -c constraints.txt scikit-learn matfree==0.6.3

Run:  python benchmarks/jax_hessian.py            (float32 sections 1-4)
      python benchmarks/jax_hessian.py --float64  (section 5)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import Reference, best, digits
from jax.flatten_util import ravel_pytree

import slq
from slq import adapters

STEPS, PROBES = 90, 10


def init_mlp(widths: tuple[int, ...], seed: int = 0) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(jax.random.key(seed), len(widths))
    return [
        {"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
        for k, a, b in zip(keys, widths[:-1], widths[1:], strict=False)
    ]


def loss_fn(params: Any, batch: Any) -> jax.Array:
    x, y = batch
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    logits = x @ params[-1]["w"] + params[-1]["b"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])


def trained(widths: tuple[int, ...], batch: Any, steps: int = 60) -> Any:
    """Adam (lr 1e-2) for `steps` full-batch steps, as the PyTorch benchmark trains."""
    params = init_mlp(widths)
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)

    @jax.jit
    def step(params: Any, m: Any, v: Any, t: int) -> Any:
        g = jax.grad(loss_fn)(params, batch)
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        scale = 1e-2 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree_util.tree_map(
            lambda p, a, b: p - scale * a / (jnp.sqrt(b) + 1e-8), params, m, v
        )
        return params, m, v

    for t in range(1, steps + 1):
        params, m, v = step(params, m, v, t)
    return params


def ready(f: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: jax.block_until_ready(f())


def hvp_costs(name: str, params: Any, batch: Any) -> None:
    n = ravel_pytree(params)[0].size
    rng = np.random.default_rng(0)
    vector = jnp.asarray(rng.standard_normal(n), jnp.float32)
    block = jnp.asarray(rng.standard_normal((n, 8)), jnp.float32)
    gradient = jax.jit(jax.grad(loss_fn))
    print(f"\n{name}: n = {n} parameters, {batch[0].shape[0]} examples, float32")
    print("| product | HVP / gradient | matvec (ms) | matmat k=8 (ms) | per vector / matvec |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for mode, reuse in {"fresh jvp(grad)": False, "linearized gradient": True}.items():
        op = adapters.jax_hessian(loss_fn, params, batch, reuse_primal=reuse)
        # Gradient and product timed alternately, each the best of 10 calls: the ratio
        # is what counts on a shared machine.
        grads, ones = [], []
        for _ in range(7):
            grads.append(best(ready(lambda: gradient(params, batch)), repeat=10))
            ones.append(best(ready(lambda op=op: op.matvec(vector)), repeat=10))
        batched = best(ready(lambda op=op: op.matmat(block)), repeat=10)
        one = min(ones)
        print(
            f"| {mode} | {one / min(grads):.2f} | {one * 1e3:.2f} | {batched * 1e3:.2f} | "
            f"{batched / 8 / one:.2f} |"
        )
    print(f"(one gradient: {min(grads) * 1e3:.2f} ms)")


class Timed:
    """An operator that blocks on each product and adds up the seconds spent in them."""

    def __init__(self, op: Any) -> None:
        self.op, self.shape, self.dtype, self.device = op, op.shape, op.dtype, op.device
        self.seconds = 0.0

    def matvec(self, v: jax.Array) -> jax.Array:
        return self.matmat(v[:, None])[:, 0]

    def matmat(self, v: jax.Array) -> jax.Array:
        start = time.perf_counter()
        out = jax.block_until_ready(self.op.matmat(v))
        self.seconds += time.perf_counter() - start
        return out


def lanczos_overhead(name: str, params: Any, batch: Any) -> None:
    op = adapters.jax_hessian(loss_fn, params, batch)
    print(f"\n{name}: n = {op.shape[0]}, {STEPS} steps, float32, {op.hvp}")
    print("| probes k | slq.density (s) | in products (s) | outside the operator |")
    print("| ---: | ---: | ---: | ---: |")
    for k in (1, PROBES):
        slq.density(Timed(op), num_steps=STEPS, num_probes=k, seed=0)  # compile
        timed = Timed(op)
        start = time.perf_counter()
        slq.density(timed, num_steps=STEPS, num_probes=k, seed=1)
        total = time.perf_counter() - start
        print(f"| {k} | {total:.2f} | {timed.seconds:.2f} | {1 - timed.seconds / total:.1%} |")


def run_slq(params: Any, batch: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    op = adapters.jax_hessian(loss_fn, params, batch)
    dos = slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=seed)
    return dos.nodes, dos.weights


def matfree_runner(linearized: bool) -> Callable[[Any, Any, int], tuple[np.ndarray, np.ndarray]]:
    from matfree import decomp, stochtrace

    def run(params: Any, batch: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
        flat, unravel = ravel_pytree(params)
        n = flat.size
        gradient = jax.grad(lambda f: loss_fn(unravel(f), batch))
        if linearized:
            matvec = jax.linearize(gradient, flat)[1]
        else:

            def matvec(v: jax.Array) -> jax.Array:
                return jax.jvp(gradient, (flat,), (v,))[1]

        tridiag = decomp.tridiag_sym(STEPS, reortho="full")

        @jax.jit
        def quadrature(key: jax.Array) -> tuple[jax.Array, jax.Array]:
            def one(v: jax.Array) -> tuple[jax.Array, jax.Array]:
                length = jnp.linalg.norm(v)
                _, t, *_ = tridiag(matvec, v / length)
                nodes, vectors = jnp.linalg.eigh(t)
                return nodes, length**2 * vectors[0] ** 2 / n

            return jax.vmap(one)(stochtrace.sampler_signs(flat, num=PROBES)(key))

        nodes, weights = quadrature(jax.random.key(seed))
        return np.asarray(nodes), np.asarray(weights)

    return run


def dense_hessian(params: Any, batch: Any) -> np.ndarray:
    wide = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    flat, unravel = ravel_pytree(wide)
    x, y = batch
    with jax.enable_x64(True):
        total = jax.jit(jax.hessian(lambda f: loss_fn(unravel(f), (x.astype(np.float64), y))))
        return np.asarray(total(jnp.asarray(flat, jnp.float64)))


def compare(name: str, params: Any, batch: Any, seeds: int = 3) -> None:
    reference = Reference(dense_hessian(params, batch), STEPS)
    exact = reference.eigenvalues
    print(
        f"\n{name}: n = {exact.size}, exact spectrum [{exact[0]:.4g}, {exact[-1]:.4g}], "
        f"{PROBES} probes x {STEPS} products, sigma = width / {STEPS} = {reference.sigma:.3g}, "
        f"{seeds} seeds per tool"
    )
    print("| tool | first call (s) | repeat (s), median | repeat / slq's | L1, mean ± sd |")
    print("| --- | ---: | ---: | ---: | ---: |")
    tools = {
        "slq (`jax_hessian`, default)": run_slq,
        "matfree 0.6.3, jvp(grad)": matfree_runner(linearized=False),
        "matfree 0.6.3, linearized": matfree_runner(linearized=True),
    }
    base = None
    for tool, run in tools.items():
        start = time.perf_counter()
        run(params, batch, 100)
        first = time.perf_counter() - start
        seconds, errors = [], []
        for seed in range(seeds):
            start = time.perf_counter()
            nodes, weights = run(params, batch, seed)
            seconds.append(time.perf_counter() - start)
            errors.append(reference.error(nodes, weights))
        median = float(np.median(seconds))
        base = base or median
        print(
            f"| {tool} | {first:.2f} | {median:.2f} | {median / base:.2f} | "
            f"{np.mean(errors):.4f} ± {np.std(errors):.4f} |"
        )


def matfree_prepared(matvec: Callable[[Any, jax.Array], jax.Array], n: int) -> Any:
    """matfree's SLQ of ``matvec(operand, v)``, jitted once: ``run(operand, seed)``."""
    from matfree import decomp, stochtrace

    tridiag = decomp.tridiag_sym(STEPS, reortho="full")

    @jax.jit
    def quadrature(operand: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        def one(v: jax.Array) -> tuple[jax.Array, jax.Array]:
            length = jnp.linalg.norm(v)
            _, t, *_ = tridiag(lambda u: matvec(operand, u), v / length)
            nodes, vectors = jnp.linalg.eigh(t)
            return nodes, length**2 * vectors[0] ** 2 / n

        like = jnp.zeros(n, jnp.float64)
        return jax.vmap(one)(stochtrace.sampler_signs(like, num=PROBES)(key))

    def run(operand: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
        nodes, weights = quadrature(operand, jax.random.key(seed))
        return np.asarray(nodes), np.asarray(weights)

    return run


def spiked(n: int = 4000, seed: int = 0) -> np.ndarray:
    """A Wigner matrix (semicircle on [-2, 2]) plus four outlying spikes θ u uᵀ."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, n))
    a = (g + g.T) / np.sqrt(2 * n)
    for theta in (4.0, 6.0, 8.0, 12.0):
        u = rng.standard_normal(n)
        a += theta * np.outer(u, u) / (u @ u)
    return a


def timed(f: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = f()
    return time.perf_counter() - start, out


def float64_rows(name: str, reference: Reference, tools: dict[str, Any], seeds: int) -> None:
    print(f"\n{name}: n = {reference.eigenvalues.size}, float64, {PROBES} probes x {STEPS} steps")
    print(
        "| tool | first call (s) | first − repeat: compiling (s) | repeat (s), median | "
        "repeat / matfree's | first / matfree's | L1, mean |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    firsts: dict[str, float] = {}
    medians: dict[str, float] = {}
    for tool, run in tools.items():
        first, _ = timed(lambda run=run: run(100))
        seconds, errors = [], []
        for seed in range(seeds):
            t, (nodes, weights) = timed(lambda run=run, seed=seed: run(seed))
            seconds.append(t)
            errors.append(reference.error(nodes, weights))
        medians[tool], firsts[tool] = float(np.median(seconds)), first
        base, base_first = medians.get("matfree 0.6.3", 1.0), firsts.get("matfree 0.6.3", 1.0)
        print(
            f"| {tool} | {first:.2f} | {first - medians[tool]:.2f} | {medians[tool]:.2f} | "
            f"{medians[tool] / base:.2f} | {first / base_first:.2f} | {np.mean(errors):.4f} |",
            flush=True,
        )


def compiled_versus_matfree(seeds: int = 3) -> None:
    """Section 5: float64 MLP Hessian and dense matrix, matfree first (the ratios' base)."""
    x, y = digits()
    batch = (jnp.asarray(x, jnp.float64), jnp.asarray(y))
    params = trained((64, 32, 10), (jnp.asarray(x), jnp.asarray(y)))
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
    flat, unravel = ravel_pytree(params)
    n = flat.size

    def hvp(theta: Any, v: jax.Array) -> jax.Array:
        gradient = jax.grad(lambda f: loss_fn(unravel(f), batch))
        return jax.jvp(gradient, (theta,), (v,))[1]

    def mlp_slq(seed: int) -> tuple[np.ndarray, np.ndarray]:
        op = adapters.jax_hessian(loss_fn, params, batch)
        dos = slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=seed)
        return dos.nodes, dos.weights

    mlp_matfree = matfree_prepared(hvp, n)
    float64_rows(
        "MLP 64-32-10 tanh",
        Reference(dense_hessian(params, batch), STEPS),
        {"matfree 0.6.3": lambda seed: mlp_matfree(flat, seed), "slq": mlp_slq},
        seeds,
    )
    dense = spiked()
    matrix = jnp.asarray(dense)

    def dense_slq(seed: int) -> tuple[np.ndarray, np.ndarray]:
        dos = slq.density(matrix, num_steps=STEPS, num_probes=PROBES, seed=seed)
        return dos.nodes, dos.weights

    dense_matfree = matfree_prepared(lambda a, v: a @ v, dense.shape[0])
    float64_rows(
        "Dense spiked Wigner",
        Reference(dense, STEPS),
        {"matfree 0.6.3": lambda seed: dense_matfree(matrix, seed), "slq": dense_slq},
        seeds,
    )


def main() -> None:
    if "--float64" in sys.argv:
        jax.config.update("jax_enable_x64", True)
        print(f"jax {jax.__version__}, slq from {slq.__file__}")
        compiled_versus_matfree()
        return
    x, y = digits()
    batch = (jnp.asarray(x), jnp.asarray(y))
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {len(jax.devices())} device(s)")
    hvp_costs("MLP 64-200-10 tanh", trained((64, 200, 10), batch), batch)
    lanczos_overhead("MLP 64-1500-10 tanh", trained((64, 1500, 10), batch), batch)
    compare("MLP 64-32-10 tanh", trained((64, 32, 10), batch), batch)


if __name__ == "__main__":
    main()

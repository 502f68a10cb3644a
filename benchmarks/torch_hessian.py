"""The PyTorch adapter: HVP cost, batched products, and slq.density against its peers.

On scikit-learn's bundled digits data (1797 images, no download), for a tanh MLP
and a small CNN with BatchNorm, trained briefly:

1. HVP time / gradient time over the full data, for each way of computing a
   product: fresh double backward, fresh forward-over-reverse (torch.func), and
   double backward through the retained gradient graph (the default when it fits).
2. One matmat of k = 8 vectors against 8 matvecs.
3. ``slq.density`` against PyHessian 0.1, hessian-eigenthings 1.0.0a5 and
   curvlinops 3.0.1 at an equal matvec budget (10 probes x 90 steps): wall time,
   and the L1 distance of each smoothed density to the exact one from a dense
   eigendecomposition of the float64 Hessian.
4. With ``--planning`` (no peers needed), only the cost of ``hvp="auto"``:
   building the operator, first for the model (plans forgotten before each of
   ``--builds`` builds) and again (the plan remembered), against a default
   ``slq.density(op, num_probes=10)`` on it, and the choices it made.

Peers are installed only for this script:
    pip install -c constraints.txt scikit-learn pyhessian curvlinops-for-pytorch
    pip install -c constraints.txt --pre hessian-eigenthings

Run:  python benchmarks/torch_hessian.py [--planning [--builds 5]]
"""

from __future__ import annotations

import argparse
import collections
import copy
import statistics
import time

import numpy as np
import torch
from _common import Reference, best, l1, smoothed
from _common import digits as bundled_digits
from torch import nn

import slq
from slq import adapters

STEPS, PROBES = 90, 10


def digits(image: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = bundled_digits()
    inputs = torch.tensor(x)
    return (inputs.reshape(-1, 1, 8, 8) if image else inputs), torch.tensor(y)


def mlp(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10))


def cnn_bn(width: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * width * 4 * 4, 10),
    )


def trained(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 60) -> nn.Module:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def gradient_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeat: int = 3) -> float:
    params = [p for p in model.parameters() if p.requires_grad]

    def gradient() -> None:
        torch.autograd.grad(nn.functional.cross_entropy(model(x), y), params)

    return best(gradient, repeat)


def hvp_costs(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    n = sum(p.numel() for p in model.parameters())
    v = torch.randn(n, generator=torch.Generator().manual_seed(0))
    block = torch.randn(n, 8, generator=torch.Generator().manual_seed(1))
    modes = {
        "fresh double backward": {"hvp": "double-backward", "reuse_primal": False},
        "fresh forward-over-reverse": {"hvp": "forward-over-reverse", "reuse_primal": False},
        "retained gradient graph": {"hvp": "double-backward", "reuse_primal": True},
        "linearized gradient": {"hvp": "forward-over-reverse", "reuse_primal": True},
        "auto (the default)": {},
    }
    print(f"\n{name}: n = {n} parameters, {len(x)} examples")
    print("| product | HVP / gradient | 8 matvecs (ms) | matmat k=8 (ms) | matmat / 8 matvecs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for mode, options in modes.items():
        op = adapters.torch_hessian(model, (x, y), **options)
        # Gradient and product timed alternately, best of 5 each: the ratio is what counts
        # on a shared machine.
        grads, ones = [], []
        for _ in range(5):
            grads.append(gradient_seconds(model.train(), x, y, repeat=1))
            model.eval()
            ones.append(best(lambda op=op: op.matvec(v), repeat=1))
        eight = best(lambda op=op: [op.matvec(block[:, i]) for i in range(8)], repeat=3)
        batched = best(lambda op=op: op.matmat(block), repeat=3)
        print(
            f"| {mode} | {min(ones) / min(grads):.2f} | {eight * 1e3:.0f} | "
            f"{batched * 1e3:.0f} | {batched / eight:.2f} |"
        )
    print(f"(one gradient: {min(grads) * 1e3:.1f} ms; auto chose: {op.hvp})")


def dense_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bn: str) -> np.ndarray:
    model64 = copy.deepcopy(model).double()
    op = adapters.torch_hessian(model64, (x.double(), y), batchnorm=bn)
    n = op.shape[0]
    eye = torch.eye(n, dtype=torch.float64)
    columns = [op.matmat(eye[:, i : i + 64]) for i in range(0, n, 64)]
    return torch.cat(columns, dim=1).numpy()


def run_slq(model, x, y, seed):
    op = adapters.torch_hessian(model, (x, y), batchnorm="train" if model.training else "eval")
    dos = slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=seed)
    return dos.nodes, dos.weights


def run_pyhessian(model, x, y, seed):
    from pyhessian import hessian

    # PyHessian 0.1 calls torch.eig, which torch removed; this stands in for that one
    # call with an eigh of its (symmetric tridiagonal) matrix.
    def eig(t: torch.Tensor, eigenvectors: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        values, vectors = torch.linalg.eigh(t)
        return torch.stack([values, torch.zeros_like(values)], dim=1), vectors

    torch.eig = eig
    h = hessian(model, nn.CrossEntropyLoss(), data=(x, y), cuda=False)
    nodes, weights = h.density(iter=STEPS, n_v=PROBES)
    return np.array(nodes), np.array(weights)


def run_eigenthings(model, x, y, seed):
    from hessian_eigenthings.algorithms.spectral_density import spectral_density
    from hessian_eigenthings.operators.hessian import HessianOperator

    def loss_fn(m, batch):
        return nn.functional.cross_entropy(m(batch[0]), batch[1])

    op = HessianOperator(model, [(x, y)], loss_fn)
    result = spectral_density(op, num_runs=PROBES, lanczos_steps=STEPS, seed=seed * PROBES)
    return result.raw_eigenvalues.numpy(), result.raw_weights.numpy()


def run_curvlinops(model, x, y, seed):
    from curvlinops import HessianLinearOperator
    from curvlinops.papyan2020traces.spectrum import lanczos_approximate_spectrum

    params = [p for p in model.parameters() if p.requires_grad]
    op = HessianLinearOperator(model, nn.CrossEntropyLoss(), params, [(x, y)])
    grid, density = lanczos_approximate_spectrum(op, STEPS, num_points=2048, num_repeats=PROBES)
    return grid.numpy(), density.numpy()


def compare(
    name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, bn: str, seeds: int = 3
) -> None:
    reference = Reference(dense_hessian(model, x, y, bn), STEPS)
    exact, sigma = reference.eigenvalues, reference.sigma
    uniform = np.full((1, exact.size), 1.0 / exact.size)
    print(
        f"\n{name}: n = {exact.size}, exact spectrum [{exact[0]:.4g}, {exact[-1]:.4g}], "
        f"{PROBES} probes x {STEPS} steps, sigma = width / {STEPS} = {sigma:.3g}, "
        f"{seeds} seeds per tool"
    )
    print("| tool | wall time (s), median | time / slq | L1 to exact density, mean ± sd |")
    print("| --- | ---: | ---: | ---: |")
    tools = {
        "slq": run_slq,
        "PyHessian 0.1": run_pyhessian,
        "hessian-eigenthings 1.0.0a5": run_eigenthings,
        "curvlinops 3.0.1": run_curvlinops,
    }
    base = None
    for tool, run in tools.items():
        seconds, errors = [], []
        for seed in range(seeds):
            torch.manual_seed(seed)  # the peers draw their probes from torch's global RNG
            np.random.seed(seed)  # noqa: NPY002 (a peer may draw from the legacy global RNG)
            start = time.perf_counter()
            a, b = run(copy.deepcopy(model).train(bn == "train"), x, y, seed)
            seconds.append(time.perf_counter() - start)
            if tool.startswith("curvlinops"):
                # Its own curve, against the exact spectrum smoothed with its own Gaussian width.
                own_sigma = (a[-1] - a[0]) / (STEPS - 1) / np.sqrt(8 * np.log(3.0))
                errors.append(l1(b, smoothed(exact[None, :], uniform, a, own_sigma), a))
            else:
                errors.append(reference.error(a, b))
        median = float(np.median(seconds))
        base = base or median
        note = " (its own sigma)" if tool.startswith("curvlinops") else ""
        print(
            f"| {tool} | {median:.2f} | {median / base:.2f} | "
            f"{np.mean(errors):.4f} ± {np.std(errors):.4f}{note} |"
        )


def _forget_plans() -> None:
    try:
        from slq.adapters._torch_plan_cache import clear_plans
    except ImportError:  # before issue 18 nothing was remembered
        return
    clear_plans()


def _seconds(f):
    start = time.perf_counter()
    out = f()
    return out, time.perf_counter() - start


def planning_cost(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, builds: int):
    """Build with hvp="auto" `builds` times from scratch and once remembered; then a density."""
    firsts, choices = [], collections.Counter()
    for _ in range(builds):
        _forget_plans()
        op, seconds = _seconds(lambda: adapters.torch_hessian(model, (x, y)))
        firsts.append(seconds)
        choices[op.hvp] += 1
    _, again = _seconds(lambda: adapters.torch_hessian(model, (x, y)))
    _, density = _seconds(lambda op=op: slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=0))
    first = statistics.median(firsts)
    chosen = "; ".join(f"{hvp} ({count}x)" for hvp, count in choices.items())
    print(
        f"| {name} | {first:.3f} | {again:.3f} | {density:.2f} | {first / density:.1%} | "
        f"{again / density:.1%} | {chosen} |",
        flush=True,
    )


def planning(builds: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = digits(image=False)
    xi, _ = digits(image=True)
    big_mlp, cnn = trained(mlp(200), x, y), trained(cnn_bn(), xi, y)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, float32, {builds} builds")
    print(
        "| model | build (s), median | build, remembered (s) | density k=10 m=90 (s) | "
        "build / density | remembered / density | choices |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    planning_cost("MLP 64-200-10 tanh, n = 15010", big_mlp, x, y, builds)
    planning_cost("CNN with BatchNorm (train mode), n = 3866", cnn, xi, y, builds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planning", action="store_true", help="only the cost of hvp='auto'")
    parser.add_argument("--builds", type=int, default=5, help="builds per model for --planning")
    args = parser.parse_args()
    if args.planning:
        planning(args.builds)
        return
    torch.manual_seed(0)
    x, y = digits(image=False)
    xi, _ = digits(image=True)
    big_mlp = trained(mlp(200), x, y)
    small_mlp = trained(mlp(32), x, y)
    cnn = trained(cnn_bn(), xi, y)
    small_cnn = trained(cnn_bn(width=4), xi, y)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    hvp_costs("MLP 64-200-10 tanh", big_mlp, x, y)
    hvp_costs("CNN with BatchNorm (train-mode BN)", cnn, xi, y)
    compare("MLP 64-32-10 tanh", small_mlp, x, y, "eval", seeds=6)
    # curvlinops cannot run train-mode BatchNorm (torch.func refuses its in-place
    # num_batches_tracked update), so every tool is compared in eval mode here.
    compare("CNN 4-8 channels with BatchNorm (eval-mode BN)", small_cnn, xi, y, "eval")


if __name__ == "__main__":
    main()

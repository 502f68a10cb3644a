"""The cost of checking fast product paths at build time, on a Hugging Face ResNet-18.

ResNet-18 (11.2 M parameters, in-place residual adds) from a `transformers`
config with random weights, 8 random 32x32 images. Reports: the time the
build-time check takes (a fresh double-backward reference on two seeded vectors,
and two products of each path checked) against the whole build and a density
run; and the density's extreme Ritz values with the default operator and with
fresh double-backward products only (which reuse nothing, hence need no check).

    python benchmarks/verification_cost.py [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from slq.adapters import _torch_plan

import slq
from slq import adapters


def timed_check() -> dict[str, float]:
    """Wrap the check's two functions in _torch_plan so that their seconds add up."""
    spent = {"check": 0.0}

    def wrap(f: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                spent["check"] += time.perf_counter() - start

        return timed

    _torch_plan.reference_check = wrap(_torch_plan.reference_check)
    _torch_plan.disagreement = wrap(_torch_plan.disagreement)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(
        layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], num_labels=10
    )
    model = ResNetForImageClassification(config).eval()
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    spent = timed_check()
    start = time.perf_counter()
    op = adapters.torch_hessian(model, (x, y))
    build = time.perf_counter() - start
    start = time.perf_counter()
    dos = slq.density(op, num_steps=args.steps, num_probes=1, seed=0)
    run = time.perf_counter() - start
    fresh = adapters.torch_hessian(model, (x, y), hvp="double-backward", reuse_primal=False)
    reference = slq.density(fresh, num_steps=args.steps, num_probes=1, seed=0)
    print(f"n={op.shape[0]}, {args.threads} thread(s), {op.hvp}")
    print(f"build {build:.2f} s, of which the check {spent['check']:.2f} s")
    print(f"density ({args.steps} steps, 1 probe) {run:.2f} s")
    print(f"check / (build + density) = {spent['check'] / (build + run):.1%}")
    print(f"default:         [{dos.lambda_min:.6g}, {dos.lambda_max:.6g}]")
    print(f"double backward: [{reference.lambda_min:.6g}, {reference.lambda_max:.6g}]")


if __name__ == "__main__":
    main()

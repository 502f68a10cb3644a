"""GPU check: a density run keeps every n-vector on the device; HVP cost and Lanczos overhead.

Run on a CUDA machine:  python benchmarks/gpu_check.py [--steps 30] [--probes 4] [--json out.json]
Smoke test of the script itself on a CPU:  python benchmarks/gpu_check.py --device cpu --batch 4

1. Residency. A density of a ResNet-18-sized model's loss Hessian (CIFAR-shaped random
   data, no download) runs under the CUDA profiler; the trace's device-to-host copies
   must all be far smaller than one parameter vector: only scalars (the Lanczos
   coefficients, a loss) may cross. Every core transfer also goes through
   `slq._backends.to_host`, which is wrapped to record its largest array.
2. Product cost: one Hessian-vector product (and a matmat of 4) as multiples of one
   gradient, each timed with CUDA synchronisation.
3. Lanczos overhead: the share of a density's wall time spent outside the operator.

Exit status 1 if a check fails, 2 without CUDA.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import slq
from slq import _backends as _backend
from slq import adapters


class Block(nn.Module):
    """The basic residual block of He et al. (2016)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18(classes: int = 10) -> nn.Module:
    """ResNet-18 for 32x32 inputs (11.2M parameters), as in Ghorbani et al. (2019) on CIFAR."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    width = 64
    for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(width, outputs, stride), Block(outputs, outputs, 1)]
        width = outputs
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]
    return nn.Sequential(*layers)


def sync() -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def synchronized(f: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time of `f` over `repeat` calls after a warm-up, with the device synchronised."""
    f()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


class Timed:
    """An operator wrapper that adds up the synchronised time spent in products."""

    def __init__(self, op: Any) -> None:
        self.op, self.shape, self.dtype, self.seconds = op, op.shape, op.dtype, 0.0

    def _timed(self, f: Callable[[Any], Any], v: Any) -> Any:
        sync()
        start = time.perf_counter()
        out = f(v)
        sync()
        self.seconds += time.perf_counter() - start
        return out

    def matvec(self, v: Any) -> Any:
        return self._timed(self.op.matvec, v)

    def matmat(self, v: Any) -> Any:
        return self._timed(self.op.matmat, v)


def largest_device_to_host_copy(run: Callable[[], Any]) -> tuple[int, int]:
    """Run under the CUDA profiler; return (number, largest bytes) of device-to-host copies."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        run()
        sync()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text()).get("traceEvents", [])
    copies = [
        int(e.get("args", {}).get("bytes", 0))
        for e in events
        if e.get("cat") == "gpu_memcpy" and "DtoH" in str(e.get("name", ""))
    ]
    return len(copies), max(copies, default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of the script")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; run this on a GPU machine", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(4 * args.batch, 3, 32, 32, generator=generator).to(device)
    y = torch.randint(0, 10, (4 * args.batch,), generator=generator).to(device)
    batches = [(x[i : i + args.batch], y[i : i + args.batch]) for i in range(0, len(x), args.batch)]
    model = resnet18().to(device)
    op = adapters.torch_hessian(model, batches, batchnorm="train")
    n = op.shape[0]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    results: dict[str, Any] = {"device": name, "n": n, "plan": op.hvp}

    largest_to_host = [0]
    to_host = _backend.to_host

    def recording_to_host(a: Any) -> Any:
        out = to_host(a)
        largest_to_host[0] = max(largest_to_host[0], int(np.asarray(out).size))
        return out

    patched = [
        module
        for name, module in sys.modules.items()
        if name.startswith("slq") and getattr(module, "to_host", None) is to_host
    ]
    for module in patched:
        module.to_host = recording_to_host
    try:
        run = lambda: slq.density(op, num_steps=args.steps, num_probes=args.probes, seed=0)  # noqa: E731
        count, largest = largest_device_to_host_copy(run)
    finally:
        for module in patched:
            module.to_host = to_host
    vector_bytes = n * 4
    results |= {
        "device_to_host_copies": count,
        "largest_copy_bytes": largest,
        "largest_to_host_elements": largest_to_host[0],
        "resident": largest < vector_bytes // 100 and largest_to_host[0] < n // 100,
    }

    params = [p for p in model.parameters() if p.requires_grad]
    v = torch.randn(n, generator=generator).to(device)
    block = torch.randn(n, 4, generator=generator).to(device)

    def gradient() -> None:
        for xb, yb in batches:
            loss = nn.functional.cross_entropy(model(xb), yb)
            torch.autograd.grad(loss, params)

    grad_seconds = synchronized(gradient)
    results["hvp_per_gradient"] = synchronized(lambda: op.matvec(v)) / grad_seconds
    results["matmat4_per_gradient_per_column"] = (
        synchronized(lambda: op.matmat(block)) / grad_seconds / 4
    )

    timed = Timed(op)
    start = time.perf_counter()
    slq.density(timed, num_steps=args.steps, num_probes=args.probes, seed=0)
    sync()
    total = time.perf_counter() - start
    results["density_seconds"] = total
    results["lanczos_overhead"] = 1.0 - timed.seconds / total

    for key, value in results.items():
        print(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["resident"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

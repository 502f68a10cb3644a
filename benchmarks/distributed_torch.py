"""Data-parallel ``torch_hessian(..., distributed=True)``: 1 against 2 gloo processes on CPU.

A tanh MLP 64-200-10 (15 010 parameters, float32) on 1797 random 64-dimensional
inputs with 10 classes; each rank takes every world_size-th example (the
DistributedSampler convention) in batches of 256, and ``slq.density`` runs
10 probes x 30 steps. Every process uses one thread, so that 2 processes use
2 cores; the 1-process run is also timed with 2 threads, the fair comparison on
the same cores. Prints the wall time of building the operator and of the
density (the slowest rank's).

Run:  python benchmarks/distributed_torch.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

import slq
from slq import adapters

EXAMPLES, STEPS, PROBES, BATCH = 1797, 30, 10, 256


def shard(rank: int, world_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(EXAMPLES, 64, generator=g), torch.randint(0, 10, (EXAMPLES,), generator=g)
    x, y = x[rank::world_size], y[rank::world_size]
    return [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)]


def slowest(seconds: float) -> float:
    t = torch.tensor([seconds], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def worker(rank: int, world_size: int, port: int, threads: int) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
        timeout=timedelta(seconds=600),
    )  # fmt: skip
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 200), nn.Tanh(), nn.Linear(200, 10))
    start = time.perf_counter()
    op = adapters.torch_hessian(model, shard(rank, world_size), distributed=True)
    build = slowest(time.perf_counter() - start)
    start = time.perf_counter()
    dos = slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=0)
    seconds = slowest(time.perf_counter() - start)
    if rank == 0:
        print(
            f"{world_size} process(es) x {threads} thread(s): build {build:.2f} s, "
            f"density {seconds:.2f} s ({op.hvp}; lambda_max {dos.lambda_max:.4f})",
            flush=True,
        )
    dist.destroy_process_group()


def launch(world_size: int, threads: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, __file__, "--worker", str(world_size), str(port), str(threads)]
    workers = [subprocess.Popen([*args, str(rank)]) for rank in range(world_size)]
    if any(w.wait() != 0 for w in workers):
        sys.exit("a worker failed")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        world, port_, threads_, rank_ = map(int, sys.argv[2:6])
        worker(rank_, world, port_, threads_)
    else:
        print(f"MLP 64-200-10, {EXAMPLES} examples, {PROBES} probes x {STEPS} steps")
        for world_size, threads in ((1, 1), (1, 2), (2, 1)):
            launch(world_size, threads)

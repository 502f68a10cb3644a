"""The torch callbacks under torch.distributed: 2 gloo ranks, each with a shard, rank 0 writes.

What Lightning's DDP and a ``torchrun``-launched Hugging Face Trainer do at a
recording point, without either framework: each rank's callback hands the step
to the same recorder (`slq.adapters._torch_callbacks.TorchRecorder`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from helpers import Backend, assert_close, need
from workers import launch_workers, rendezvous, run_worker

need(Backend.TORCH)

import torch  # noqa: E402
from slq.adapters._torch_callbacks import TorchRecorder  # noqa: E402
from torch_models import mlp  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

SETTINGS = {"num_steps": 10, "num_probes": 2, "seed": 0}
SHARDS = (slice(0, 25), slice(25, 40))  # of different sizes


def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 3, (40,), generator=g)


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return mlp((4, 6, 3)).double()


def worker(port: int, out: Path, rank: int) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=rendezvous(out), rank=rank, world_size=2, timeout=timedelta(seconds=60)
    )
    # Each rank's own directory, as on machines without a shared file system; rank 0's
    # already holds step 0, rank 1's does not: rank 0 must decide for both.
    tracker = slq.Tracker(out / f"track{rank}", **SETTINGS)
    if rank == 0:
        tracker.record(0, np.eye(3))
    x, y = dataset()
    recorder = TorchRecorder(tracker, (x[SHARDS[rank]], y[SHARDS[rank]]), None, {})
    skipped = recorder.record(0, model())
    dos = recorder.record(2, model(), loss=1.5)
    np.savez(out / f"rank{rank}.npz", skipped=skipped is None, alpha=dos.alpha, nodes=dos.nodes)
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, np.ndarray]]]:
    out = tmp_path_factory.mktemp("callbacks_distributed")
    launch_workers(__file__, out)
    return out, [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]


def test_rank_0_decides_every_rank_computes_and_only_rank_0_writes(
    ranks: tuple[Path, list[dict[str, np.ndarray]]],
) -> None:
    out, (first, second) = ranks
    assert first["skipped"] and second["skipped"]  # step 0: rank 0's track has it
    np.testing.assert_array_equal(first["alpha"], second["alpha"])
    track = slq.load_track(out / "track0")
    assert track.steps.tolist() == [0, 2]
    assert track.scalar("loss")[1] == 1.5
    assert slq.load_track(out / "track1").steps.tolist() == []

    single = slq.density(adapters.torch_hessian(model(), dataset()), **SETTINGS)
    assert_close(track[1].density.nodes, single.nodes)
    assert_close(track[1].density.weights, single.weights)


if __name__ == "__main__":
    run_worker(worker)

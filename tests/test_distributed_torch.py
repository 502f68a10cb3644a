"""Data-parallel torch curvature: 2 gloo processes on shards against 1 process on all the data.

The test launches this file as a worker script twice (ranks 0 and 1 of a gloo
group on localhost); each worker saves what it computed, and the test compares
the ranks with each other and with a single-process operator on the full data.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from helpers import Backend, need
from workers import error_message, launch_workers, rendezvous, run_worker

need(Backend.TORCH)

import slq.adapters.torch as torch_adapter  # noqa: E402
import torch  # noqa: E402
from slq.adapters import _torch_plan  # noqa: E402
from torch_models import mlp  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

# Rank 0's shard has two batches, rank 1's one: shards of different sizes.
SHARDS = ((slice(0, 20), slice(20, 35)), (slice(35, 60),))
STEPS, PROBES = 20, 3


def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 3, (60,), generator=g)


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return mlp((4, 6, 3)).double()


def vector(n: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def shard(rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = dataset()
    return [(x[s], y[s]) for s in SHARDS[rank]]


def _no_timing(*args: Any, **kwargs: Any) -> float:
    msg = "only rank 0 measures how to compute products"
    raise AssertionError(msg)


def _choice(op: adapters.TorchCurvature) -> np.ndarray:
    assert op.hvp_choice is not None
    return np.array([str(field) for field in op.hvp_choice])


def _layer_results(net: torch.nn.Module, data: Any) -> dict[str, np.ndarray]:
    """Every block's product and plan; rank 1 fails if it measures anything itself."""
    blocks = adapters.torch_layer_hessians(net, data, distributed=True)
    results = {}
    for name, op in blocks.items():
        results[f"block{name}_v"] = op.matvec(vector(op.shape[0])).numpy()
        results[f"block{name}_choice"] = _choice(op)
        results[f"block{name}_counts"] = np.array([op.num_examples, op.num_batches])
    return results


def _failures(rank: int, net: torch.nn.Module, data: Any, v: torch.Tensor) -> dict[str, np.ndarray]:
    """Errors every rank must see together, in each construction collective and in a product."""
    empty = [] if rank == 1 else data
    results = {
        "empty": np.array(error_message(lambda: adapters.torch_ggn(net, empty, distributed=True)))
    }
    # Rank 0 fails while it plans: the plan collective must still fail rank 1.
    empty = [] if rank == 0 else data
    results["empty_plan"] = np.array(
        error_message(lambda: adapters.torch_hessian(net, empty, distributed=True))
    )
    # Rank 1 fails after the plan collective, while it keeps state by rank 0's plan.
    with mock.patch.object(torch_adapter, "follow_plan", side_effect=MemoryError("kept state")):
        results["follow"] = np.array(
            error_message(lambda: adapters.torch_hessian(net, data, distributed=True))
        )
    x, y = dataset()
    nan = [*data, (torch.full_like(x[:3], torch.nan), y[:3])] if rank == 1 else data
    bad = adapters.torch_hessian(net, nan, distributed=True)
    results["nan"] = np.array(error_message(lambda: bad.matvec(v)))
    return results


def worker(port: int, out: Path, rank: int) -> None:
    """One rank: products, a density, and the errors every rank must see together."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo",
        init_method=rendezvous(out),  # a file: no port to race for
        rank=rank,
        world_size=2,
        timeout=timedelta(seconds=60),
    )
    if rank == 1:  # every plan comes from rank 0
        _torch_plan._timed = _no_timing  # type: ignore[assignment]
    net, data = model(), shard(rank)
    op = adapters.torch_hessian(net, data, distributed=True)
    ggn = adapters.torch_ggn(net, data, distributed=True)
    v = vector(op.shape[0])
    results = {
        "hv": op.matvec(v).numpy(),
        "hvv": op.matmat(torch.stack([v, 2 * v], dim=1)).numpy(),
        "gv": ggn.matvec(v).numpy(),
        "alpha": slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=0).alpha,
        "counts": np.array([op.num_examples, op.num_batches, op.rank, op.world_size]),
        "writes_files": np.array(op.writes_files),
        "choice": _choice(op),
        **_layer_results(net, data),
        **_failures(rank, net, data, v),
    }
    np.savez(out / f"rank{rank}.npz", **results)
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("distributed")
    launch_workers(__file__, out)
    return [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]


def test_products_equal_a_single_process_on_all_the_data(ranks: list[dict[str, Any]]) -> None:
    x, y = dataset()
    full = [(x[s], y[s]) for part in SHARDS for s in part]
    op, ggn = adapters.torch_hessian(model(), full), adapters.torch_ggn(model(), full)
    v = vector(op.shape[0])
    expected = {"hv": op.matvec(v).numpy(), "gv": ggn.matvec(v).numpy()}
    expected["hvv"] = np.stack([expected["hv"], 2 * expected["hv"]], axis=1)
    for result in ranks:
        for key, want in expected.items():
            np.testing.assert_allclose(result[key], want, rtol=1e-12, atol=1e-14 * abs(want).max())
    for key in ("hv", "hvv", "gv"):
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])  # bit-identical


def test_density_is_replicated_and_equals_a_single_process(ranks: list[dict[str, Any]]) -> None:
    x, y = dataset()
    op = adapters.torch_hessian(model(), (x, y))
    alpha = slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=0).alpha
    np.testing.assert_array_equal(ranks[0]["alpha"], ranks[1]["alpha"])
    np.testing.assert_allclose(ranks[0]["alpha"], alpha, rtol=1e-10, atol=1e-12)


def test_counts_are_global_and_only_rank_0_writes(ranks: list[dict[str, Any]]) -> None:
    assert ranks[0]["counts"].tolist() == [60, 3, 0, 2]
    assert ranks[1]["counts"].tolist() == [60, 3, 1, 2]
    assert bool(ranks[0]["writes_files"]) and not bool(ranks[1]["writes_files"])


def test_every_rank_follows_rank_0s_plan(ranks: list[dict[str, Any]]) -> None:
    # Rank 1 cannot measure (its timer raises), so its plan can only be rank 0's.
    assert ranks[0]["choice"].tolist() == ranks[1]["choice"].tolist()
    assert ranks[0]["choice"][0] in ("forward-over-reverse", "double-backward")
    for key in ("block0_choice", "block2_choice"):
        assert ranks[0][key].tolist() == ranks[1][key].tolist()


def test_layer_hessians_equal_a_single_process_on_all_the_data(
    ranks: list[dict[str, Any]],
) -> None:
    x, y = dataset()
    full = [(x[s], y[s]) for part in SHARDS for s in part]
    blocks = adapters.torch_layer_hessians(model(), full)
    assert list(blocks) == ["0", "2"]
    for name, op in blocks.items():
        want = op.matvec(vector(op.shape[0])).numpy()
        for result in ranks:
            got = result[f"block{name}_v"]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14 * abs(want).max())
            assert result[f"block{name}_counts"].tolist() == [60, 3]
        np.testing.assert_array_equal(ranks[0][f"block{name}_v"], ranks[1][f"block{name}_v"])


def test_a_failing_rank_fails_every_rank(ranks: list[dict[str, Any]]) -> None:
    assert str(ranks[1]["empty"]).startswith("ValueError: data is empty")
    assert str(ranks[0]["empty"]).startswith("RuntimeError: building the distributed operator")
    assert "rank(s) [1]" in str(ranks[0]["empty"])
    assert str(ranks[0]["empty_plan"]).startswith("ValueError: data is empty")
    assert str(ranks[1]["empty_plan"]).startswith("RuntimeError: building the distributed")
    assert "rank(s) [0]" in str(ranks[1]["empty_plan"])
    assert str(ranks[1]["follow"]) == "MemoryError: kept state"
    assert str(ranks[0]["follow"]).startswith("RuntimeError: building the distributed operator")
    assert "rank(s) [1]" in str(ranks[0]["follow"])
    assert str(ranks[1]["nan"]).startswith("FloatingPointError: the Hessian product is not finite")
    assert "on batch 1 of rank 1's shard" in str(ranks[1]["nan"])
    assert "on another rank" in str(ranks[0]["nan"])


def test_distributed_needs_a_process_group() -> None:
    x, y = dataset()
    with pytest.raises(ValueError, match=r"initialised torch\.distributed process group"):
        adapters.torch_hessian(model(), (x, y), distributed=True)
    with pytest.raises(ValueError, match=r"initialised torch\.distributed process group"):
        adapters.torch_ggn(model(), (x, y), distributed=True)
    with pytest.raises(ValueError, match=r"initialised torch\.distributed process group"):
        adapters.torch_layer_hessians(model(), (x, y), distributed=True)
    with pytest.raises(TypeError, match="distributed must be True or False"):
        adapters.torch_hessian(model(), (x, y), distributed="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="distributed must be True or False"):
        adapters.torch_layer_hessians(model(), (x, y), distributed=1)  # type: ignore[arg-type]


def test_not_distributed_is_rank_0_of_1() -> None:
    x, y = dataset()
    op = adapters.torch_hessian(model(), (x, y))
    assert (op.rank, op.world_size, op.writes_files) == (0, 1, True)
    assert "rank" not in repr(op)
    assert op.hvp_choice is not None
    assert op.hvp_choice.method in op.hvp


if __name__ == "__main__":
    run_worker(worker)

"""Multi-process JAX: 2 `jax.distributed` processes on parts of the data against 1 on all of it.

The test launches this file as a worker script twice (processes 0 and 1 of a
`jax.distributed` run on localhost, two forced CPU devices each: four global
devices, gloo collectives); each worker saves what it computed, and the test
compares the processes with each other and with one process on the full data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Backend, need
from threads import ONE_THREAD
from workers import error_message, launch_workers, run_worker

need(Backend.JAX)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

jax.config.update("jax_enable_x64", True)

# Global batch b joins process 0's part and process 1's part of it: two global
# batches of 24 and 16 examples, each split 12 + 12 and 8 + 8.
PARTS = ((slice(0, 12), slice(24, 32)), (slice(12, 24), slice(32, 40)))
STEPS, PROBES = 20, 3


def dataset() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.standard_normal((40, 4))), jnp.asarray(rng.integers(0, 3, 40))


def params() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {
        "w1": jnp.asarray(rng.standard_normal((4, 6)) / 2),
        "b1": jnp.zeros(6),
        "w2": jnp.asarray(rng.standard_normal((6, 3)) / 2),
    }


def loss_fn(p: dict[str, Any], batch: tuple[Any, Any]) -> Any:
    x, y = batch
    logits = jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])


def vectors(n: int) -> Any:
    return jnp.asarray(np.random.default_rng(2).standard_normal((n, PROBES)))


def part(process: int) -> list[tuple[Any, Any]]:
    x, y = dataset()
    return [(x[s], y[s]) for s in PARTS[process]]


def worker(port: int, out: Path, process: int) -> None:
    """One process: products, a density, and the errors every process must see together."""
    jax.config.update("jax_num_cpu_devices", 2)
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process)
    data = part(process)
    v = vectors(ravel_pytree(params())[0].size)
    # Each operator compiles its products once per shape: k = PROBES columns, as the density's.
    linear = adapters.jax_hessian(loss_fn, params(), data, shard=True, reuse_primal=True)
    op = adapters.jax_hessian(loss_fn, params(), data, shard=True, reuse_primal=False)
    results: dict[str, Any] = {
        "hvv_linear": np.asarray(linear.matmat(v)),
        "hvv": np.asarray(op.matmat(v)),
        "hv": np.asarray(op.matvec(v[:, 0])),
    }
    dos = slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=0)
    results |= {"alpha": dos.alpha, "beta": dos.beta, "repr": np.array(repr(op))}
    results["counts"] = np.array([op.num_examples, op.num_batches, op.process_index])
    results["local"] = np.array([op.process_count, op.writes_files, op.device.process_index])
    errors = [error_message(lambda d=d: _shard(d)) for d in _bad_data(process)]
    other = {**params(), "b1": jnp.full(6, float(process))}  # process 1's differ
    results["errors"] = np.array([*errors, error_message(lambda: _shard(data, other))])
    x, y = data[1]
    nan = [data[0], (x.at[0].set(jnp.nan) if process == 1 else x, y)]  # in global batch 1
    results["nan"] = np.array(error_message(lambda: _shard(nan).matvec(v[:, 0])))
    np.savez(out / f"process{process}.npz", **results)
    jax.distributed.shutdown()


def _shard(data: Any, p: Any = None) -> Any:
    return adapters.jax_hessian(loss_fn, params() if p is None else p, data, shard=True)


def _bad_data(process: int) -> list[Any]:
    """Data on which building fails: on one process, or disagreeing between them."""
    data = part(process)
    x, y = dataset()
    return [
        data if process == 0 else [],  # process 1 has no data
        data if process == 0 else data[:1],  # unequal numbers of batches
        data if process == 0 else [data[0], (x[:10], y[:10])],  # batch 1 of another shape
        data if process == 0 else [(x[:9], y[:9])],  # not a multiple of its devices
    ]


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("jax_distributed")
    # The device count is set in the worker; one thread per process, as in the tests.
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ONE_THREAD["XLA_FLAGS"]}
    launch_workers(__file__, out, env=env)
    return [dict(np.load(out / f"process{p}.npz")) for p in (0, 1)]


def full_data() -> list[tuple[Any, Any]]:
    """The global batches: each process's batch b, in process order."""
    x, y = dataset()
    joined = [np.r_[a, b] for a, b in zip(*PARTS, strict=True)]
    return [(x[i], y[i]) for i in joined]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """What one process computes on all the data, unsharded."""
    op = adapters.jax_hessian(loss_fn, params(), full_data())
    dos = slq.density(op, num_steps=STEPS, num_probes=PROBES, seed=0)
    return {
        "hvv": np.asarray(op.matmat(vectors(op.shape[0]))),
        "alpha": dos.alpha,
        "beta": dos.beta,
    }


def test_products_equal_a_single_process_on_all_the_data(
    processes: list[dict[str, Any]], reference: dict[str, np.ndarray]
) -> None:
    want = reference["hvv"]
    for result in processes:
        for key in ("hvv", "hvv_linear"):
            np.testing.assert_allclose(result[key], want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(result["hv"], want[:, 0], rtol=1e-12, atol=1e-14)
    for key in processes[0]:
        if key.startswith("hv"):
            np.testing.assert_array_equal(processes[0][key], processes[1][key])  # bit-identical


def test_density_is_identical_on_every_process_and_equals_one_process(
    processes: list[dict[str, Any]], reference: dict[str, np.ndarray]
) -> None:
    for key in ("alpha", "beta"):
        np.testing.assert_array_equal(processes[0][key], processes[1][key])
        np.testing.assert_allclose(processes[0][key], reference[key], rtol=1e-10, atol=1e-12)


def test_counts_are_global_and_only_process_0_writes(processes: list[dict[str, Any]]) -> None:
    assert processes[0]["counts"].tolist() == [40, 2, 0]
    assert processes[1]["counts"].tolist() == [40, 2, 1]
    # process_count, writes_files, and the vectors' device belongs to this process
    assert processes[0]["local"].tolist() == [2, 1, 0]
    assert processes[1]["local"].tolist() == [2, 0, 1]
    assert str(processes[1]["repr"]).endswith("40 examples in 2 batches, process 1 of 2>")


def test_data_that_cannot_be_sharded_fails_on_every_process(
    processes: list[dict[str, Any]],
) -> None:
    first, second = (p["errors"].tolist() for p in processes)
    assert second[0].startswith("ValueError: data is empty")
    assert first[0].startswith(
        "RuntimeError: building the sharded operator failed on process(es) [1]"
    )
    for errors in (first, second):
        assert errors[1] == (
            "ValueError: every process must pass the same number of batches (global batch b "
            "joins every process's batch b), got [2, 1] on processes 0 to 1"
        )
        assert errors[2].startswith("ValueError: batch 1 differs in shapes or dtypes")
    assert "shapes or dtypes between processes (here: PyTreeDef((*, *)) [((10, 4)" in second[2]
    assert second[3].startswith(
        "ValueError: batch 0 has a leading axis of (9,), not a multiple of the 2 devices of "
        "process 1"
    )
    assert first[3].startswith("RuntimeError: building the sharded operator failed")
    for result in processes:
        assert str(result["nan"]).startswith(
            "FloatingPointError: the Hessian product is not finite on batch 1 (the loss is nan)"
        )
    assert (
        first[4]
        == second[4]
        == (
            "ValueError: params differ between processes: every process must pass the same "
            "parameters (initialise them from the same seed)"
        )
    )


def test_one_process_is_process_0_of_1() -> None:
    op = adapters.jax_hessian(loss_fn, params(), full_data(), shard=True)
    assert (op.process_index, op.process_count, op.writes_files) == (0, 1, True)
    assert "process" not in repr(op)


if __name__ == "__main__":
    run_worker(worker)

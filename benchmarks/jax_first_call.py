"""One tool's first call and repeats on one peers.py problem, in a fresh process.

Prints wall and CPU seconds (``time.process_time``: far less inflated than
wall time on a shared machine) of the first call (operator, compilation, run)
and the median of three repeats. Run it once per tool, alternating:

    python benchmarks/jax_first_call.py slq dense 16
    python benchmarks/jax_first_call.py matfree dense 16

A fresh process per call: peers.py's later rounds find slq's program in the
process's cache, which hides its compile time.
"""

from __future__ import annotations

import os
import sys
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402
from _peer_problems import build  # noqa: E402
from _peers import native, prepare_matfree, prepare_slq_jax  # noqa: E402


def timed(run: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    tool, name, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    problem = build(name, False)
    native(problem, "jax")
    jnp.ones(1).block_until_ready()
    prepare = {"slq": prepare_slq_jax, "matfree": prepare_matfree}[tool]
    runs = []
    first = timed(lambda: runs.append(prepare(problem, k, 90, 0)) or runs[0]())
    # slq: `slq.density` again on the same operator; matfree: its jitted function again.
    repeats = sorted(timed(runs[0]) for _ in range(3))
    wall, cpu = repeats[1]
    print(
        f"{tool} {name} k={k}: first wall {first[0]:.2f} cpu {first[1]:.2f} | "
        f"repeat wall {wall:.2f} cpu {cpu:.2f} | load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()

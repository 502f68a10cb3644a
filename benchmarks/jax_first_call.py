"""One tool's first call and repeats on one peers.py problem, in a fresh process.

Tools: ``slq`` (on JAX), ``matfree``, and for comparison the torch tools
``slq-torch`` and ``pyhessian`` (whose first call compiles nothing).

Prints wall and CPU seconds (``time.process_time``: far less inflated than
wall time on a shared machine) of the first call (operator, compilation, run)
and the median of three repeats. Run it once per tool, alternating:

    python benchmarks/jax_first_call.py slq dense 16
    python benchmarks/jax_first_call.py matfree dense 16

A fresh process per call: peers.py's later rounds find slq's program in the
process's cache, which hides its compile time.

``--cache DIR`` turns on JAX's persistent compilation cache in DIR (every
program, however quick to compile): the first process fills it, and a later
one's first call loads the compiled programs instead of compiling them, which
is what a user gets from ``jax.config.update("jax_compilation_cache_dir", DIR)``.
Tracing is not cached: it is still paid.

    python benchmarks/jax_first_call.py slq mlp-init 1 --cache /tmp/jax-cache   # fills it
    python benchmarks/jax_first_call.py slq mlp-init 1 --cache /tmp/jax-cache   # uses it
"""

from __future__ import annotations

import argparse
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402
from _peer_problems import build  # noqa: E402
from _peers import (  # noqa: E402
    native,
    prepare_matfree,
    prepare_pyhessian,
    prepare_slq,
    prepare_slq_jax,
)

# tool: (how it is prepared and run, the problem's form it takes)
TOOLS = {
    "slq": (prepare_slq_jax, "jax"),
    "matfree": (prepare_matfree, "jax"),
    "slq-torch": (prepare_slq, "numpy"),
    "pyhessian": (prepare_pyhessian, "torch"),
}


def timed(run: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def use_persistent_cache(directory: str) -> None:
    """Keep every compiled program in `directory`, JAX's own cache across processes."""
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("problem")
    parser.add_argument("k", type=int)
    parser.add_argument("--cache", help="JAX's persistent compilation cache directory")
    args = parser.parse_args()
    tool, name, k = args.tool, args.problem, args.k
    if args.cache:
        use_persistent_cache(args.cache)
    torch.set_num_threads(1)
    problem = build(name, False)
    prepare, form = TOOLS[tool]
    native(problem, form)
    jnp.ones(1).block_until_ready()
    torch.ones(1).sum().item()
    runs = []

    def first_run() -> None:
        runs.append(prepare(problem, k, 90, 0))
        runs[0]()

    first = timed(first_run)
    # slq: `slq.density` again on the same operator; matfree: its jitted function again;
    # PyHessian: `density` again on the same `hessian`.
    repeats = sorted(timed(runs[0]) for _ in range(3))
    wall, cpu = repeats[1]
    print(
        f"{tool} {name} k={k}: first wall {first[0]:.2f} cpu {first[1]:.2f} | "
        f"repeat wall {wall:.2f} cpu {cpu:.2f} | load {os.getloadavg()[0]:.1f}"
        + (f" | cache {args.cache}" if args.cache else "")
    )


if __name__ == "__main__":
    main()

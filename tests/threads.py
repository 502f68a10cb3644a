"""The thread counts of the test session: one intra-op thread for every library."""

# One intra-op thread for every library, set before any of them is imported (conftest.py)
# and inherited by worker processes. On a 2-core machine shared with other jobs, a
# framework's default thread pool competes with them: a small HVP took 140 ms with two
# torch threads against 5.6 ms with one. A test about threads sets its own count.
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",  # torch's intra-op pool (and OpenMP BLAS builds)
    "OPENBLAS_NUM_THREADS": "1",  # numpy's and scipy's BLAS
    "MKL_NUM_THREADS": "1",  # torch's MKL
    "TF_NUM_INTRAOP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",  # JAX's CPU kernels
}

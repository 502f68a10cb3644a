"""Every argument of every public function is checked first, by type and range, naming itself.

One table holds a bad value for each parameter of each public function and
result method; a test walks the signatures of `slq.__all__` and fails when a
parameter has no row, so that a new parameter cannot arrive unchecked. The
functions that take an operator get a counting one: a bad argument costs no
product.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib
import numpy as np
import pytest
from helpers import CheckedOperator

matplotlib.use("Agg")

from matplotlib import pyplot

import slq

N = 10


class Bad(NamedTuple):
    """A call of `target` with `argument` set to `value`, and the error it must raise."""

    target: str
    argument: str
    value: Any
    error: type[Exception]
    match: str


# fmt: off
TABLE = [
    # Issue 16: each of these once ran the whole job, or failed in numpy's words.
    Bad("density", "check_symmetric", "no", TypeError, "check_symmetric must be True or False"),
    Bad("density", "tol", "0.1", TypeError, "tol must be a real number, got '0.1'"),
    Bad("density", "progress", "yes", TypeError, "progress must be True, False or None"),
    Bad("density", "op", "matrix.npy", TypeError, "cannot make a linear operator from str"),
    Bad("density", "num_steps", 0, ValueError, "num_steps must be >= 1, got 0"),
    Bad("density", "num_probes", "2", TypeError, "num_probes must be an integer >= 1"),
    Bad("density", "seed", -1, ValueError, "seed must be >= 0, got -1"),
    Bad("density", "seed", 1.5, TypeError, "seed must be a non-negative int"),
    Bad("density", "probe", 3, TypeError, "probe must be one of 'rademacher', 'gaussian'"),
    Bad("density", "reorthogonalize", "twice", ValueError, "reorthogonalize must be one of"),
    Bad("density", "offload_basis", "yes", TypeError, "offload_basis must be True or False"),
    Bad("density", "probe_batch_size", 0, ValueError, "probe_batch_size must be >= 1"),
    Bad("density", "tol", -1.0, ValueError, "tol must be a finite number > 0"),
    Bad("density", "tol", True, TypeError, "tol must be a real number"),
    Bad("density", "max_matvecs", 2.5, TypeError, "max_matvecs must be an integer"),
    Bad("density", "max_memory", "1GB", TypeError, "max_memory must be an integer"),
    Bad("density", "checkpoint", 3, TypeError, "checkpoint must be a path"),
    Bad("density", "callback", 3, TypeError, "callback must be callable or None, got int"),
    Bad("aslinearoperator", "obj", 3, TypeError, "cannot make a linear operator from int"),
    Bad("aslinearoperator", "shape", (3.0, 3.0), TypeError, "shape must be a pair"),
    Bad("aslinearoperator", "dtype", "float64", TypeError, "dtype must be a dtype object"),
    Bad("aslinearoperator", "like", 3, TypeError, "like must be an array"),
    Bad("aslinearoperator", "traceable", "yes", TypeError, "traceable must be True or False"),
    Bad("eigsh", "op", None, TypeError, "cannot make a linear operator from NoneType"),
    Bad("eigsh", "k", 1.5, TypeError, "k must be an integer"),
    Bad("eigsh", "which", 3, TypeError, "which must be one of"),
    Bad("eigsh", "num_vectors", "20", TypeError, "num_vectors must be an integer"),
    Bad("eigsh", "tol", "small", TypeError, "tol must be a real number"),
    Bad("eigsh", "max_restarts", -1, ValueError, "max_restarts must be >= 0"),
    Bad("eigsh", "v0", [1.0] * N, TypeError, "v0 must be a numpy array"),
    Bad("eigsh", "seed", "0", TypeError, "seed must be a non-negative int"),
    Bad("eigsh", "return_eigenvectors", "yes", TypeError, "return_eigenvectors must be True"),
    Bad("gauss_quadrature", "alpha", "abc", TypeError, "alpha must be real numbers"),
    Bad("gauss_quadrature", "beta", [1j], TypeError, "beta must be real numbers"),
    Bad("tridiagonal", "alpha", [True, False], TypeError, "alpha must be real numbers"),
    Bad("tridiagonal", "beta", [[0.5], [0.5]], ValueError, "beta must have shape"),
    Bad("kpm_density", "op", 3.0, TypeError, "cannot make a linear operator from float"),
    Bad("kpm_density", "degree", 2.5, TypeError, "degree must be an integer"),
    Bad("kpm_density", "num_probes", 0, ValueError, "num_probes must be >= 1"),
    Bad("kpm_density", "seed", True, TypeError, "seed must be a non-negative int"),
    Bad("kpm_density", "probe", "sobol", ValueError, "probe must be one of"),
    Bad("kpm_density", "bounds", ("a", "b"), TypeError, "bounds must be a real number"),
    Bad("kpm_density", "bounds", (2.0, 1.0), ValueError, "bounds must be finite with a < b"),
    Bad("kpm_density", "probe_batch_size", "2", TypeError, "probe_batch_size must be an integer"),
    Bad("kpm_density", "damping", "fejer", ValueError, "damping must be one of"),
    Bad("lanczos", "op", [[1.0]], TypeError, "cannot make a linear operator from list"),
    Bad("lanczos", "v0", "abc", TypeError, "v0 must be a numpy array"),
    Bad("lanczos", "num_steps", 2.5, TypeError, "num_steps must be an integer"),
    Bad("lanczos", "reorthogonalize", 1, TypeError, "reorthogonalize must be one of"),
    Bad("lanczos", "offload_basis", 1, TypeError, "offload_basis must be True or False"),
    Bad("lanczos", "return_basis", "yes", TypeError, "return_basis must be True or False"),
    Bad("load", "path", 3, TypeError, "path must be a path"),
    Bad("load", "path", "", ValueError, "path must not be empty"),
    Bad("matmat", "op", "op", TypeError, "cannot make a linear operator from str"),
    Bad("matmat", "vectors", np.ones(N), ValueError, r"vectors must have shape \(10, k\)"),
    Bad("matmat", "vectors", "abc", TypeError, "vectors must be a numpy array"),
    Bad("memory_estimate", "op", 1, TypeError, "cannot make a linear operator from int"),
    Bad("memory_estimate", "num_steps", 0, ValueError, "num_steps must be >= 1"),
    Bad("memory_estimate", "num_probes", 2.0, TypeError, "num_probes must be an integer"),
    Bad("memory_estimate", "reorthogonalize", "cgs", ValueError, "reorthogonalize must be one"),
    Bad("memory_estimate", "offload_basis", "no", TypeError, "offload_basis must be True"),
    Bad("memory_estimate", "probe_batch_size", 0, ValueError, "probe_batch_size must be >= 1"),
    Bad("plot_densities", "densities", [], ValueError, "at least one SpectralDensity"),
    Bad("plot_densities", "labels", "one", TypeError, "labels must be a sequence"),
    Bad("plot_densities", "labels", ["a", 3], TypeError, "each of labels must be a string"),
    Bad("plot_densities", "ax", "axes", TypeError, "ax must be a matplotlib Axes or None"),
    Bad("plot_densities", "log", "yes", TypeError, "log must be True or False"),
    Bad("plot_densities", "band", 1, TypeError, "band must be True or False"),
    Bad("plot_densities", "outliers", "yes", TypeError, "outliers must be True, False or an"),
    Bad("plot_densities", "sigma", "0.1", TypeError, "sigma must be a real number"),
    Bad("plot_densities", "num", 1, ValueError, "num must be >= 2"),
    Bad("plot_densities", "xscale", "log", ValueError, "xscale must be one of 'linear'"),
    Bad("plot_densities", "xscale", 3, TypeError, "xscale must be one of 'linear'"),
    Bad("plot_densities", "colors", ["k", "no"], ValueError, "each of colors must be a matplot"),
    Bad("plot_densities", "confidence", "0.9", TypeError, "confidence must be a real number"),
    Bad("slq_budget", "f", 3, TypeError, "f must be a callable or the name"),
    Bad("slq_budget", "spectrum", "ab", TypeError, "spectrum must be a real number"),
    Bad("slq_budget", "epsilon", "0.1", TypeError, "epsilon must be a real number"),
    Bad("slq_budget", "eta", 1.5, ValueError, r"eta must lie in \(0, 1\), got 1.5"),
    Bad("slq_budget", "rho", "2", TypeError, "rho must be a real number"),
    Bad("trace", "op", b"A", TypeError, "cannot make a linear operator from bytes"),
    Bad("trace", "num_matvecs", 2.0, TypeError, "num_matvecs must be an integer"),
    Bad("trace", "method", 3, TypeError, "method must be one of"),
    Bad("trace", "seed", "0", TypeError, "seed must be a non-negative int"),
    Bad("trace", "probe", "sphere", ValueError, "probe must be one of"),
    Bad("trace", "probe_batch_size", 0, ValueError, "probe_batch_size must be >= 1"),
    Bad("trace_function", "op", {}, TypeError, "cannot make a linear operator from dict"),
    Bad("trace_function", "f", 3.0, TypeError, "f must be a callable or the name"),
    Bad("trace_function", "num_steps", 0, ValueError, "num_steps must be >= 1"),
    Bad("trace_function", "num_probes", 0, ValueError, "num_probes must be >= 1"),
    Bad("trace_function", "seed", -1, ValueError, "seed must be >= 0"),
    Bad("trace_function", "probe", "x", ValueError, "probe must be one of"),
    Bad("trace_function", "shift", "1", TypeError, "shift must be a real number"),
    Bad("trace_function", "density_kwargs", {"check_symmetric": "no"}, TypeError,
        "check_symmetric must be True or False"),
    Bad("trace_function", "density_kwargs", {"bogus": 1}, TypeError, "unexpected keyword"),
    Bad("Budget.quadrature_error_bound", "num_steps", 1.5, TypeError, "num_steps must be an int"),
    Bad("Estimate", "value", "1", TypeError, "value must be a real number"),
    Bad("Estimate", "stderr", -1.0, ValueError, "stderr must be >= 0"),
    Bad("Estimate", "num_samples", 0, ValueError, "num_samples must be >= 1"),
    Bad("Estimate", "num_matvecs", -1, ValueError, "num_matvecs must be >= 0"),
    Bad("Estimate", "method", 3, TypeError, "method must be a string"),
    Bad("Estimate.from_samples", "samples", ["a"], TypeError, "samples must be real numbers"),
    Bad("Estimate.from_samples", "samples", [], ValueError, "samples must be a non-empty 1-D"),
    Bad("Estimate.from_samples", "num_matvecs", 1.5, TypeError, "num_matvecs must be an int"),
    Bad("Estimate.from_samples", "method", None, TypeError, "method must be a string"),
    Bad("Estimate.interval", "confidence", "0.9", TypeError, "confidence must be a real number"),
    Bad("Estimate.interval", "confidence", 1.5, ValueError, r"confidence must lie in \(0, 1\)"),
    Bad("KPMDensity", "moments", "abc", TypeError, "moments must be real numbers"),
    Bad("KPMDensity", "bounds", (1.0, 0.0), ValueError, "bounds must be finite with a < b"),
    Bad("KPMDensity", "dim", 0, ValueError, "dim must be >= 1"),
    Bad("KPMDensity", "num_matvecs", -1, ValueError, "num_matvecs must be >= 0"),
    Bad("KPMDensity", "seed", "x", TypeError, "seed must be an integer >= 0"),
    Bad("KPMDensity", "damping", "box", ValueError, "damping must be one of"),
    Bad("KPMDensity.grid", "num", 0, ValueError, "num must be >= 1"),
    Bad("KPMDensity.grid", "pad", "1", TypeError, "pad must be a real number"),
    *(
        row
        for method in ("per_probe", "evaluate", "stderr")
        for row in (
            Bad(f"KPMDensity.{method}", "grid", ["a"], TypeError, "grid must be real numbers"),
            Bad(f"KPMDensity.{method}", "grid", [np.nan], ValueError, "grid must be finite"),
            Bad(f"KPMDensity.{method}", "sigma", "0.1", TypeError, "sigma must be a real number"),
            Bad(f"KPMDensity.{method}", "kernel", "box", ValueError, "kernel must be one of"),
        )
    ),
    Bad("MemoryEstimate", "n", 0, ValueError, "n must be >= 1"),
    Bad("MemoryEstimate", "num_steps", 1.0, TypeError, "num_steps must be an integer"),
    Bad("MemoryEstimate", "num_probes", None, TypeError, "num_probes must be an integer"),
    Bad("MemoryEstimate", "batch", -2, ValueError, "batch must be >= 1"),
    Bad("MemoryEstimate", "itemsize", "8", TypeError, "itemsize must be an integer"),
    Bad("MemoryEstimate", "accumulation_itemsize", 0, ValueError, "accumulation_itemsize must"),
    Bad("MemoryEstimate", "reorthogonalize", "twice", ValueError, "reorthogonalize must be one"),
    Bad("MemoryEstimate", "basis", -1, ValueError, "basis must be >= 0"),
    Bad("MemoryEstimate", "vectors", 1.5, TypeError, "vectors must be an integer >= 0"),
    Bad("MemoryEstimate", "host", "0", TypeError, "host must be an integer >= 0"),
    Bad("MemoryEstimate", "offload_basis", "no", TypeError, "offload_basis must be True"),
    Bad("SpectralDensity", "alpha", "abc", TypeError, "alpha must be real numbers"),
    Bad("SpectralDensity", "beta", np.ones((2, 3)), ValueError, "beta must have shape"),
    Bad("SpectralDensity", "dim", 0, ValueError, "dim must be >= 1"),
    Bad("SpectralDensity", "num_matvecs", 1.5, TypeError, "num_matvecs must be an integer"),
    Bad("SpectralDensity", "seed", -1, ValueError, "seed must be >= 0"),
    Bad("SpectralDensity", "probe", 3, TypeError, "probe must be a string or None"),
    Bad("SpectralDensity", "reorthogonalize", True, TypeError, "reorthogonalize must be a str"),
    Bad("SpectralDensity", "residual_norm", ["x", "y"], TypeError, "residual_norm must be real"),
    Bad("SpectralDensity", "stop_reason", 1, TypeError, "stop_reason must be a string or None"),
    Bad("SpectralDensity.from_lanczos", "result", "x", TypeError, "result must be a LanczosRes"),
    Bad("SpectralDensity.from_lanczos", "dim", 0, ValueError, "dim must be >= 1"),
    Bad("SpectralDensity.from_lanczos", "metadata", {"probe": 3}, TypeError, "probe must be a"),
    Bad("SpectralDensity.grid", "num", 0, ValueError, "num must be >= 1"),
    Bad("SpectralDensity.grid", "pad", -1.0, ValueError, "pad must be a finite number >= 0"),
    Bad("SpectralDensity.grid", "scale", "log", ValueError, "scale must be one of"),
    Bad("SpectralDensity.grid", "linthresh", "x", TypeError, "linthresh must be a real number"),
    *(
        row
        for method in ("per_probe", "evaluate", "stderr", "band", "bulk")
        for row in (
            Bad(f"SpectralDensity.{method}", "grid", "abc", TypeError, "grid must be real numbers"),
            Bad(f"SpectralDensity.{method}", "grid", [np.inf], ValueError, "grid must be finite"),
            Bad(f"SpectralDensity.{method}", "sigma", "1", TypeError, "sigma must be a real"),
            Bad(f"SpectralDensity.{method}", "kernel", 0, TypeError, "kernel must be one of"),
        )
    ),
    Bad("TracedDensity.evaluate", "grid", "abc", TypeError, "grid must be real numbers"),
    Bad("TracedDensity.evaluate", "grid", np.ones((2, 2)), ValueError, "grid must be a 1-D array"),
    Bad("TracedDensity.evaluate", "sigma", "1", TypeError, "sigma must be a real number or None"),
    Bad("TracedDensity.evaluate", "sigma", 0.0, ValueError, "sigma must be a finite number > 0"),
    Bad("SpectralDensity.band", "confidence", 0.0, ValueError, r"confidence must lie in \(0, 1"),
    Bad("SpectralDensity.bulk", "outliers", True, TypeError, "outliers must be an Outliers"),
    Bad("SpectralDensity.bulk_sigma", "outliers", "x", TypeError, "outliers must be an Outliers"),
    Bad("SpectralDensity.cdf", "x", ["a"], TypeError, "x must be real numbers"),
    Bad("SpectralDensity.cdf", "x", [np.nan], ValueError, "x must be free of NaN"),
    Bad("SpectralDensity.count", "low", "a", TypeError, "low must be a real number"),
    Bad("SpectralDensity.count", "high", None, TypeError, "high must be a real number"),
    Bad("SpectralDensity.moment", "p", 1.5, TypeError, "p must be an integer >= 0"),
    Bad("SpectralDensity.moment", "p", -1, ValueError, "p must be >= 0"),
    Bad("SpectralDensity.trace_function", "f", 3, TypeError, "f must be a callable or the name"),
    Bad("SpectralDensity.trace_function", "shift", "1", TypeError, "shift must be a real number"),
    Bad("SpectralDensity.mass_below", "x", "0", TypeError, "x must be a real number"),
    Bad("SpectralDensity.mass_below", "x", np.nan, ValueError, "x must be a number, got nan"),
    Bad("SpectralDensity.negative_mass", "threshold", "0", TypeError, "threshold must be a real"),
    Bad("SpectralDensity.outliers", "tail", 0.7, ValueError, r"tail must lie in \(0, 0.5\)"),
    Bad("SpectralDensity.outliers", "separation", "1", TypeError, "separation must be a real"),
    Bad("SpectralDensity.outliers", "rtol", 0.0, ValueError, r"rtol must lie in \(0, inf\)"),
    Bad("SpectralDensity.wasserstein_bound", "confidence", "0.9", TypeError, "confidence must"),
    Bad("SpectralDensity.wasserstein_bound", "spectrum", (5.0, 1.0), ValueError,
        "spectrum must be finite with a <= b"),
    Bad("SpectralDensity.kpm", "degree", 0, ValueError, "degree must be >= 1"),
    Bad("SpectralDensity.kpm", "bounds", 3, TypeError, "bounds must be a pair"),
    Bad("SpectralDensity.kpm", "damping", "box", ValueError, "damping must be one of"),
    Bad("SpectralDensity.save", "path", None, TypeError, "path must be a path"),
    Bad("SpectralDensity.plot", "ax", "x", TypeError, "ax must be a matplotlib Axes or None"),
    Bad("SpectralDensity.plot", "options", {"log": "yes"}, TypeError, "log must be True or Fa"),
    Bad("SpectralDensity.plot", "options", {"label": 3}, TypeError, "label must be a string"),
    Bad("SpectralDensity.plot", "options", {"color": "nocolor"}, ValueError, "color must be a"),
    Bad("SpectralDensity.plot", "options", {"bogus": 1}, TypeError, "unexpected keyword"),
    # Issue 20: the spectrum over training.
    Bad("Tracker", "path", 3, TypeError, "path must be a path"),
    Bad("Tracker", "num_steps", 0, ValueError, "num_steps must be >= 1, got 0"),
    Bad("Tracker", "num_probes", 1.5, TypeError, "num_probes must be an integer"),
    Bad("Tracker", "seed", None, TypeError, "seed must be an integer >= 0"),
    Bad("Tracker", "every", 0, ValueError, "every must be >= 1, got 0"),
    Bad("Tracker", "density_options", {"probe": "sobol"}, ValueError, "probe must be one of"),
    Bad("Tracker", "density_options", {"checkpoint": "c.npz"}, TypeError,
        "unexpected keyword argument 'checkpoint'"),
    Bad("Tracker.due", "step", -1, ValueError, "step must be >= 0, got -1"),
    Bad("Tracker.record", "step", 1.5, TypeError, "step must be an integer >= 0"),
    Bad("Tracker.record", "operator", "x", TypeError, "cannot make a linear operator from str"),
    Bad("Tracker.record", "scalars", {"loss": "1"}, TypeError, "scalar loss must be an int or"),
    Bad("Tracker.maybe_record", "step", "0", TypeError, "step must be an integer >= 0"),
    Bad("Tracker.maybe_record", "build", 3, TypeError, "build must be a function of no argum"),
    Bad("Tracker.maybe_record", "scalars", {"lr": np.nan}, ValueError, "scalar lr must be a fin"),
    Bad("load_track", "path", 3, TypeError, "path must be a path"),
    Bad("load_track", "path", "", ValueError, "path must not be empty"),
    Bad("Track.scalar", "name", 3, TypeError, "name must be a string"),
    Bad("Track.plot_heatmap", "ax", "x", TypeError, "ax must be a matplotlib Axes or None"),
    Bad("Track.plot_heatmap", "options", {"scale": "log"}, ValueError, "scale must be one of"),
    Bad("Track.plot_heatmap", "options", {"num": 0}, ValueError, "num must be >= 1"),
    Bad("Track.plot_heatmap", "options", {"sigma": "1"}, TypeError, "sigma must be a real"),
    Bad("Track.plot_heatmap", "options", {"linthresh": -1.0}, ValueError, "linthresh must be"),
    Bad("Track.plot_heatmap", "options", {"colorbar": 1}, TypeError, "colorbar must be True or"),
    Bad("Track.plot_heatmap", "options", {"cmap": "nocmap"}, ValueError, "cmap must be a"),
    Bad("Track.plot_traces", "ax", "x", TypeError, "ax must be a sequence of three matplotlib"),
    Bad("Track.plot_traces", "options", {"confidence": 2.0}, ValueError, "confidence must lie"),
]
# fmt: on

# Classes in `slq.__all__` whose own public methods take no checked arguments, and why.
EXEMPT_CLASSES = {
    "LanczosResult": "a record the engine fills in; no methods",
    "EigshResult": "a record eigsh fills in; no methods",
    "LanczosStep": "a record density passes to a callback; no methods",
    "LinearOperator": "a protocol: its matvec is the user's",
    "TrackRecord": "a record load_track fills in; no methods",
}
# Constructors that are records made by the library (NamedTuples: no hook to check in).
EXEMPT_CONSTRUCTORS = {
    "Budget": "made by slq_budget",
    "TracedDensity": "made by slq.density inside jax.jit",
    "Track": "made by load_track",
}
# Classes that are not dataclasses and check their constructor's arguments themselves.
PLAIN_CLASSES = {"Tracker": "opens a directory: its arguments are checked before"}
EXEMPT_PARAMETERS = {("SpectralDensity.to_json", "dumps_options"): "json.dumps checks its own"}


@dataclasses.dataclass
class Results:
    """Valid objects to call methods on, made once for the module."""

    density: slq.SpectralDensity
    kpm: slq.KPMDensity
    estimate: slq.Estimate
    budget: slq.Budget
    lanczos: slq.LanczosResult
    saved: Path


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    a = np.diag(np.concatenate([np.linspace(-1.0, 1.0, 38), [5.0, 9.0]]))
    dos = slq.density(a, num_steps=8, num_probes=3, seed=0)
    return Results(
        dos,
        slq.kpm_density(a, degree=6, num_probes=2, seed=0, bounds=(-2.0, 10.0)),
        dos.moment(1),
        slq.slq_budget("log", (2.0, 4.0), epsilon=0.5, eta=0.5),
        slq.lanczos(a, np.ones((40, 2)), 4),
        dos.save(tmp_path_factory.mktemp("arguments") / "dos.npz"),
    )


def _traced(dos: slq.SpectralDensity) -> slq.TracedDensity:
    """A `TracedDensity` of numpy arrays: its methods follow the arrays' library."""
    fields = (dos.alpha, dos.beta, dos.residual_norm, dos.nodes, dos.weights)
    return slq.TracedDensity(*fields, dos.num_matvecs, dos.dim, dos.seed)


def _operator() -> CheckedOperator:
    return CheckedOperator(np.diag(np.linspace(1.0, 2.0, N)))


def _memory_fields() -> dict[str, Any]:
    sizes = {"n": 1000, "num_steps": 10, "num_probes": 2, "batch": 2, "itemsize": 8}
    parts = {"basis": 160_000, "vectors": 128_000, "host": 16_640}
    return {**sizes, "accumulation_itemsize": 8, "reorthogonalize": "full", **parts}


def _targets(r: Results, tmp_path: Path) -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """Each target: the callable and valid arguments for it (a fresh counting operator)."""
    op = _operator
    dos, kpm = r.density, r.kpm
    grid = {"grid": np.linspace(-1.0, 1.0, 5)}
    targets = {
        "aslinearoperator": (
            slq.aslinearoperator,
            {"obj": lambda v: v, "shape": (3, 3), "dtype": np.float64},
        ),
        "density": (slq.density, {"op": op(), "num_steps": 3, "num_probes": 2, "seed": 0}),
        "eigsh": (slq.eigsh, {"op": op(), "k": 2, "seed": 0}),
        "gauss_quadrature": (slq.gauss_quadrature, {"alpha": [1.0, 2.0], "beta": [0.5]}),
        "tridiagonal": (slq.tridiagonal, {"alpha": [1.0, 2.0], "beta": [0.5]}),
        "kpm_density": (
            slq.kpm_density,
            {"op": op(), "degree": 4, "num_probes": 2, "seed": 0, "bounds": (0.0, 3.0)},
        ),
        "lanczos": (slq.lanczos, {"op": op(), "v0": np.ones(N), "num_steps": 3}),
        "load": (slq.load, {"path": r.saved}),
        "matmat": (slq.matmat, {"op": op(), "vectors": np.ones((N, 2))}),
        "memory_estimate": (slq.memory_estimate, {"op": op()}),
        "plot_densities": (slq.plot_densities, {"densities": [dos, dos]}),
        "slq_budget": (
            slq.slq_budget,
            {"f": "log", "spectrum": (2.0, 4.0), "epsilon": 0.5, "eta": 0.5},
        ),
        "trace": (slq.trace, {"op": op(), "num_matvecs": 6, "seed": 0}),
        "trace_function": (
            slq.trace_function,
            {"op": op(), "f": "log", "num_steps": 3, "num_probes": 2, "seed": 0},
        ),
        "Budget.quadrature_error_bound": (r.budget.quadrature_error_bound, {"num_steps": 2}),
        "Estimate": (slq.Estimate, {"value": 1.0, "stderr": 0.1, "num_samples": 3}),
        "Estimate.from_samples": (
            slq.Estimate.from_samples,
            {"samples": [1.0, 2.0], "num_matvecs": 2, "method": "slq"},
        ),
        "Estimate.interval": (r.estimate.interval, {}),
        "KPMDensity": (slq.KPMDensity, {"moments": kpm.moments, "bounds": (-2, 10), "dim": 40}),
        "KPMDensity.grid": (kpm.grid, {"num": 5}),
        "MemoryEstimate": (slq.MemoryEstimate, _memory_fields()),
        "SpectralDensity": (
            slq.SpectralDensity,
            {"alpha": dos.alpha, "beta": dos.beta, "dim": 40, "residual_norm": dos.residual_norm},
        ),
        "SpectralDensity.from_lanczos": (
            slq.SpectralDensity.from_lanczos,
            {"result": r.lanczos, "dim": 40},
        ),
        "SpectralDensity.grid": (dos.grid, {"num": 5}),
        "TracedDensity.evaluate": (_traced(dos).evaluate, {"grid": np.linspace(-1.0, 1.0, 5)}),
        "SpectralDensity.cdf": (dos.cdf, {"x": [0.0, 1.0]}),
        "SpectralDensity.count": (dos.count, {"low": 0.0, "high": 1.0}),
        "SpectralDensity.moment": (dos.moment, {"p": 2}),
        "SpectralDensity.trace_function": (dos.trace_function, {"f": "exp"}),
        "SpectralDensity.mass_below": (dos.mass_below, {"x": 0.0}),
        "SpectralDensity.negative_mass": (dos.negative_mass, {}),
        "SpectralDensity.outliers": (dos.outliers, {}),
        "SpectralDensity.bulk_sigma": (dos.bulk_sigma, {}),
        "SpectralDensity.wasserstein_bound": (dos.wasserstein_bound, {}),
        "SpectralDensity.kpm": (dos.kpm, {}),
        "SpectralDensity.save": (dos.save, {"path": tmp_path / "again.npz"}),
        "SpectralDensity.plot": (dos.plot, {}),
        **_tracking_targets(tmp_path),
    }
    for method in ("per_probe", "evaluate", "stderr"):
        targets[f"KPMDensity.{method}"] = (getattr(kpm, method), {**grid, "sigma": 0.5})
    for method in ("per_probe", "evaluate", "stderr", "band", "bulk"):
        targets[f"SpectralDensity.{method}"] = (getattr(dos, method), dict(grid))
    return targets


def _tracking_targets(tmp_path: Path) -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """The Tracker's targets: a fresh track per test, and a recorded one to read."""
    tracker = slq.Tracker(tmp_path / "track", num_steps=3, num_probes=2)
    recorded = slq.Tracker(tmp_path / "recorded", num_steps=3, num_probes=2)
    recorded.record(0, np.diag(np.linspace(-1.0, 1.0, N)), loss=1.0)
    track = slq.load_track(recorded.path)
    step = {"step": 0}
    return {
        "Tracker": (slq.Tracker, {"path": tmp_path / "other", "num_steps": 3, "num_probes": 2}),
        "Tracker.due": (tracker.due, step),
        "Tracker.record": (tracker.record, {**step, "operator": _operator()}),
        "Tracker.maybe_record": (tracker.maybe_record, {**step, "build": _operator}),
        "load_track": (slq.load_track, {"path": recorded.path}),
        "Track.scalar": (track.scalar, {"name": "loss"}),
        "Track.plot_heatmap": (track.plot_heatmap, {}),
        "Track.plot_traces": (track.plot_traces, {}),
    }


def _call(function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Call with positional-only parameters in place and `**kwargs` parameters spread out."""
    arguments = dict(arguments)
    positional = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name not in arguments:
            continue
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append(arguments.pop(parameter.name))
        elif parameter.kind is parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(parameter.name))
    return function(*positional, **arguments)


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    pyplot.close("all")


@pytest.mark.parametrize("bad", TABLE, ids=lambda b: f"{b.target}-{b.argument}={b.value!r}")
def test_a_bad_argument_is_refused_by_name_before_any_product(
    bad: Bad, results: Results, tmp_path: Path
) -> None:
    function, arguments = _targets(results, tmp_path)[bad.target]
    arguments = {**arguments, bad.argument: bad.value}
    with pytest.raises(bad.error, match=bad.match):
        _call(function, arguments)
    operators = [a for a in arguments.values() if isinstance(a, CheckedOperator)]
    assert all(op.inputs == 0 for op in operators), "a product was spent before the check"


def test_the_valid_arguments_of_every_target_are_accepted(results: Results, tmp_path: Path) -> None:
    # So that each row of the table fails because of its own argument, not another.
    for name, (function, arguments) in _targets(results, tmp_path).items():
        _call(function, arguments)
        pyplot.close("all")
        assert name


def _public_parameters() -> set[tuple[str, str]]:
    """(target, parameter) for every function in `slq.__all__` and result class method."""
    found = set()
    for name in slq.__all__:
        obj = getattr(slq, name)
        if inspect.isfunction(obj):
            found |= {(name, p) for p in inspect.signature(obj).parameters}
            continue
        if not isinstance(obj, type):
            continue
        if name in EXEMPT_CLASSES:
            continue
        if name not in EXEMPT_CONSTRUCTORS:
            checked = dataclasses.is_dataclass(obj) or name in PLAIN_CLASSES
            assert checked, f"{name}: check its constructor's arguments"
            found |= {(name, p) for p in inspect.signature(obj).parameters}
        for member, value in vars(obj).items():
            function = value.__func__ if isinstance(value, classmethod) else value
            if member.startswith("_") or not inspect.isfunction(function):
                continue
            parameters = list(inspect.signature(function).parameters)[1:]  # self or cls
            found |= {(f"{name}.{member}", p) for p in parameters}
    return found


def test_every_parameter_of_every_public_function_has_a_bad_value_in_the_table() -> None:
    tested = {(bad.target, bad.argument) for bad in TABLE}
    missing = _public_parameters() - tested - set(EXEMPT_PARAMETERS)
    assert not missing, f"parameters with no row in TABLE (add one, or check them): {missing}"
    assert not tested - _public_parameters(), "rows for parameters that do not exist"


def test_every_public_class_is_checked_or_exempt() -> None:
    classes = {name for name in slq.__all__ if isinstance(getattr(slq, name), type)}
    result_classes = {"SpectralDensity", "KPMDensity", "Estimate", "Budget", "MemoryEstimate"}
    result_classes |= {"TracedDensity", "Track", "Tracker"}
    assert classes == result_classes | set(EXEMPT_CLASSES)


def test_a_seed_sequence_seeds_like_its_entropy() -> None:
    a = np.diag(np.linspace(0.0, 1.0, 30))
    plain = slq.density(a, num_steps=4, num_probes=2, seed=5)
    root = slq.density(a, num_steps=4, num_probes=2, seed=np.random.SeedSequence(5))
    assert root.seed == 5
    np.testing.assert_array_equal(root.alpha, plain.alpha)
    child = np.random.SeedSequence(5).spawn(1)[0]
    first = slq.density(a, num_steps=4, num_probes=2, seed=child)
    again = slq.density(a, num_steps=4, num_probes=2, seed=np.random.SeedSequence(5).spawn(1)[0])
    assert first.seed == again.seed != 5


def test_a_result_does_not_freeze_the_callers_arrays() -> None:
    alpha, beta = np.zeros((2, 3)), np.ones((2, 2))
    dos = slq.SpectralDensity(alpha, beta, dim=4)
    assert alpha.flags.writeable and beta.flags.writeable
    assert not dos.alpha.flags.writeable


def test_numpy_scalars_and_zero_d_arrays_are_numbers() -> None:
    dos = slq.density(np.diag(np.linspace(0.0, 1.0, 20)), num_steps=4, num_probes=2, seed=0)
    t = np.linspace(0.0, 1.0, 3)
    np.testing.assert_array_equal(dos.evaluate(t, np.float32(0.25)), dos.evaluate(t, 0.25))
    np.testing.assert_array_equal(dos.evaluate(t, np.array(0.25)), dos.evaluate(t, 0.25))
    assert dos.moment(np.int64(2)).value == dos.moment(2).value
    assert slq.density(np.eye(3), num_probes=np.int32(2), seed=np.uint8(1)).num_probes == 2

"""Matrices with known spectra, for testing spectral estimators (issue 19).

Not imported by ``import slq``: write ``from slq import testing``. numpy only at
import; scipy (graphs) is imported by the functions that need it.

- Matrices with a prescribed spectrum: `matrix_with_spectrum` (dense, or an
  operator through a fast orthogonal transform up to n = 10⁶), `spiked_matrix`.
- Limiting laws (`SpectralLaw`: pdf, cdf, quantiles, moments): `semicircle`,
  `marchenko_pastur`, `kesten_mckay`, `uniform`, `power_law`, `arcsine`.
- Random matrices with a law: `goe`, `wishart`, `random_regular_graph`.
- Graph Laplacians with closed-form spectra: `path_laplacian`,
  `cycle_laplacian`, `grid_laplacian`, `torus_laplacian`.

Each maker returns a `Problem`: the matrix, its exact eigenvalues where
computable, and its law.

- Reference densities and metrics: `smoothed_density`; `l1_distance`,
  `wasserstein1`, `ks_distance`, `extreme_error` between an estimate and the
  truth, each a `SpectralDensity`, `KPMDensity`, `Discrete`, `Curve`,
  `Problem`, `SpectralLaw` or eigenvalue array.
- A comparison harness: `compare` runs estimators (`slq_estimator`,
  `kpm_estimator` or your own) on problems with the same seeds and product
  budget and returns a `Comparison` of `Record`s.

>>> import numpy as np
>>> import slq
>>> from slq import testing
>>> problem = testing.spiked_matrix(300, testing.semicircle(), [(10.0, 1)], seed=0)
>>> dos = slq.density(problem.matrix, num_steps=30, num_probes=4, seed=0)
>>> bool(abs(dos.lambda_max - problem.eigenvalues[-1]) < 1e-8)
True
"""

from slq.testing._compare import compare
from slq.testing._estimators import kpm_estimator, slq_estimator
from slq.testing._graphs import cycle_laplacian, grid_laplacian, path_laplacian, torus_laplacian
from slq.testing._laws import (
    SpectralLaw,
    arcsine,
    kesten_mckay,
    marchenko_pastur,
    power_law,
    semicircle,
    uniform,
)
from slq.testing._measures import Curve, Discrete
from slq.testing._metrics import extreme_error, ks_distance, l1_distance, wasserstein1
from slq.testing._prescribed import matrix_with_spectrum, spiked_eigenvalues, spiked_matrix
from slq.testing._problem import Problem
from slq.testing._random_matrices import goe, random_regular_graph, wishart
from slq.testing._reference import smoothed_density
from slq.testing._table import Comparison, Record

__all__ = [
    "Comparison",
    "Curve",
    "Discrete",
    "Problem",
    "Record",
    "SpectralLaw",
    "arcsine",
    "compare",
    "cycle_laplacian",
    "extreme_error",
    "goe",
    "grid_laplacian",
    "kesten_mckay",
    "kpm_estimator",
    "ks_distance",
    "l1_distance",
    "marchenko_pastur",
    "matrix_with_spectrum",
    "path_laplacian",
    "power_law",
    "random_regular_graph",
    "semicircle",
    "slq_estimator",
    "smoothed_density",
    "spiked_eigenvalues",
    "spiked_matrix",
    "torus_laplacian",
    "uniform",
    "wasserstein1",
    "wishart",
]

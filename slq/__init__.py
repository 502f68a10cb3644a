"""slq: stochastic Lanczos quadrature on any array library.

Estimate the eigenvalue density of a huge symmetric operator from
matrix-vector products alone, with vectors that never leave their device.

>>> import numpy as np
>>> import slq
>>> dos = slq.density(np.diag(np.linspace(-1.0, 1.0, 200)), num_probes=2, seed=0)
>>> round(dos.lambda_min, 6), round(dos.lambda_max, 6)
(-1.0, 1.0)
"""

import logging

from slq._density import density
from slq._eigsh import EigshResult, eigsh
from slq._lanczos import LanczosResult, lanczos
from slq._progress import LanczosStep
from slq._traced_density import TracedDensity
from slq._version import __version__
from slq.budget import Budget, slq_budget
from slq.estimate import Estimate
from slq.kpm import KPMDensity, kpm_density
from slq.memory import MemoryEstimate, memory_estimate
from slq.operator import LinearOperator, aslinearoperator, matmat
from slq.plotting import plot_densities
from slq.quadrature import gauss_quadrature, tridiagonal
from slq.spectral_density import SpectralDensity, load
from slq.spectral_sums import trace, trace_function
from slq.track import Track, TrackRecord, load_track
from slq.tracking import Tracker

# A library never configures logging; this only silences "no handler" warnings.
logging.getLogger("slq").addHandler(logging.NullHandler())

__all__ = [
    "Budget",
    "EigshResult",
    "Estimate",
    "KPMDensity",
    "LanczosResult",
    "LanczosStep",
    "LinearOperator",
    "MemoryEstimate",
    "SpectralDensity",
    "TracedDensity",
    "Track",
    "TrackRecord",
    "Tracker",
    "__version__",
    "aslinearoperator",
    "density",
    "eigsh",
    "gauss_quadrature",
    "kpm_density",
    "lanczos",
    "load",
    "load_track",
    "matmat",
    "memory_estimate",
    "plot_densities",
    "slq_budget",
    "trace",
    "trace_function",
    "tridiagonal",
]

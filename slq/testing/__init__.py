"""Matrices with known spectra, reference densities and metrics, for testing spectral estimators.

Nothing here is imported by ``import slq``; numpy only at import, scipy and
matplotlib lazily.
"""

from slq.testing._compare import Comparison, Record, compare
from slq.testing._estimators import kpm_estimator, slq_estimator
from slq.testing._measures import Curve, Discrete
from slq.testing._metrics import extreme_error, ks_distance, l1_distance, wasserstein1
from slq.testing._reference import smoothed_density

__all__ = [
    "Comparison",
    "Curve",
    "Discrete",
    "Record",
    "compare",
    "extreme_error",
    "kpm_estimator",
    "ks_distance",
    "l1_distance",
    "slq_estimator",
    "smoothed_density",
    "wasserstein1",
]

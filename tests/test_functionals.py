"""`slq.functionals`: integrals against a result's Gauss rules (more in test_summaries.py)."""

from __future__ import annotations

import numpy as np
from helpers import assert_close

import slq
from slq import functionals

SPECTRUM = np.arange(1.0, 21.0)


def test_functionals_are_exact_with_n_steps_and_the_methods_delegate() -> None:
    dos = slq.density(np.diag(SPECTRUM), num_probes=3, seed=0)  # 20 steps: the rules are exact
    np.testing.assert_allclose(functionals.cdf(dos, [0.5, 10.5, 20.5]), [0.0, 0.5, 1.0])
    # Exact up to the rounding of a 20-step Lanczos run on numbers up to 20.
    assert_close(functionals.count(dos, 4.5, 9.5).value, 5.0, scale=20.0)
    assert_close(functionals.moment(dos, 2).value, np.mean(SPECTRUM**2), factor=10.0)
    logdet = functionals.trace_function(dos, "log", shift=1.0)
    assert_close(logdet.value, np.log(SPECTRUM + 1.0).sum(), scale=20.0 * 3.1)
    assert dos.count(4.5, 9.5) == functionals.count(dos, 4.5, 9.5)
    assert dos.trace_function("log", shift=1.0) == logdet

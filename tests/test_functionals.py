"""`slq.functionals`: integrals against a result's Gauss rules (more in test_summaries.py)."""

from __future__ import annotations

import numpy as np

import slq
from slq import functionals

SPECTRUM = np.arange(1.0, 21.0)


def test_functionals_are_exact_with_n_steps_and_the_methods_delegate() -> None:
    dos = slq.density(np.diag(SPECTRUM), num_probes=3, seed=0)  # 20 steps: the rules are exact
    np.testing.assert_allclose(functionals.cdf(dos, [0.5, 10.5, 20.5]), [0.0, 0.5, 1.0])
    assert round(functionals.count(dos, 4.5, 9.5).value, 9) == 5.0
    assert round(functionals.moment(dos, 2).value, 9) == round(float(np.mean(SPECTRUM**2)), 9)
    logdet = functionals.trace_function(dos, "log", shift=1.0)
    assert round(logdet.value, 9) == round(float(np.log(SPECTRUM + 1.0).sum()), 9)
    assert dos.count(4.5, 9.5) == functionals.count(dos, 4.5, 9.5)
    assert dos.trace_function("log", shift=1.0) == logdet

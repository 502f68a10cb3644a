"""Ghorbani, Krishnan & Xiao (2019) at laptop scale: Hessian spectra of a small CNN on digits.

`run` trains the same small convolutional network twice on scikit-learn's
bundled 8 × 8 digits, once with BatchNorm and once without, and follows the
eigenvalue density of the training-loss Hessian with `slq.density` through
training. It measures what the paper ("An investigation into neural net
optimization via Hessian eigenvalue density", ICML 2019) reports for
ImageNet-scale networks: how the negative eigenvalues fade early in
training, and the large isolated eigenvalues that appear without BatchNorm
and that BatchNorm suppresses. It writes figures, ``summary.json`` and
``summary.md``.

torch, scikit-learn and matplotlib are imported when `run` is called, never
by ``import slq.apps.demo``.

The package is split by job: ``arguments`` (the checks before any work),

``measuring`` (a density at one point), ``summary`` (plain numbers),
``report`` (``summary.md``), ``figures`` and ``outputs``; ``experiment``
holds `run`, which calls them in that order.
"""

from slq.apps.demo.experiment import run

__all__ = ["run"]

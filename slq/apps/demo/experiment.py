"""`run`: the whole study, from the arguments to the files it writes."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from slq._progress import progress_bar
from slq.apps.demo.arguments import check_arguments, require
from slq.apps.demo.outputs import write_outputs
from slq.apps.demo.summary import make_summary
from slq.apps.demo.training import num_stages, run_studies

__all__ = ["run"]

logger = logging.getLogger("slq")


def run(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Reproduce Ghorbani, Krishnan & Xiao (2019) on digits; write figures and a report to `out`.

    A small CNN, conv(1→8, 3×3) [BN] ReLU → conv(8→16, 3×3, stride 2) [BN]
    ReLU → linear(256→10), is trained for 8 epochs with SGD (momentum 0.9,
    batches of 128) on the standardised 8 × 8 digits of
    ``sklearn.datasets.load_digits`` (a fixed stratified 75/25 split), once
    with BatchNorm and once without, from the same initial convolution and
    linear weights. The BN network's convolutions have no bias: BN's shift
    replaces it, and a bias in front of train-mode BN would only add exact
    zero eigenvalues.

    The Hessian is that of the mean training loss, with BatchNorm in train
    mode over the training set cut into fixed batches of the training batch
    size (``batchnorm="train"`` of `slq.adapters.torch_hessian`): the loss
    the optimiser descends, and the setting in which the paper finds that BN
    removes the outliers (they return when BN uses population statistics).
    At initialisation, after epoch 1 and at the end, `slq.density` (full
    reorthogonalisation, 48 Lanczos steps × 4 probes) gives the densities
    that are plotted. At those and 8 more points (a quarter and half of
    epoch 1, every epoch) a run of 32 steps × 2 probes, the same at every
    point, tracks λ_max, |λ_min|/λ_max, the outliers and the negative mass;
    at the three checkpoints it is read off the longer run, whose first
    probes and steps it is. Every run uses the same probes (common random
    numbers), so that changes over training are not probe noise.

    The negative mass is reported twice, each with its probe standard error
    and its Chebyshev–Markov–Stieltjes bracket (`SpectralDensity.mass_below`):
    below 0, and below −λ_max/100. Most eigenvalues of a trained network lie
    in a cluster at zero that Lanczos represents by one heavy Gauss node
    within about 1e-3 λ_max of 0; which side of 0 that node falls on decides
    the mass below 0, and its bracket says so by spanning most of [0, 1].
    Below −λ_max/100 — negative curvature at least 1 % as strong as the
    strongest positive one — the bracket is narrow once the cluster has
    formed.

    Nothing of the caller's changes: the initialisation draws from a forked
    torch RNG (``torch.random.fork_rng``), the shuffling from a private
    ``torch.Generator``, the probes from `seed`. torch runs on one
    intra-op thread during the run (restored afterwards): its tensors are
    too small for threads to pay, and on busy cores oversubscribed threads
    made the products ten times slower.

    Parameters
    ----------
    out : str or os.PathLike
        Folder for the outputs, created if missing: ``densities_no_bn.png``,
        ``densities_bn.png``, ``final_overlay.png``, ``final_outliers.png``,
        ``negative_mass.png``, ``extremes.png``, ``summary.json`` and
        ``summary.md``. Existing files of those names are replaced.
    quick : bool, default False
        A much smaller configuration (256 training digits, 4 and 8 channels,
        3 epochs of batches of 64, 16 × 2 and 8 × 2 Lanczos runs) that
        finishes in seconds, for tests. The full run takes about 3.5 minutes
        on two CPU cores.
    seed : int, default 0
        Seeds the initial weights, the shuffling and the probes.
    progress : bool, optional
        Show a tqdm progress bar over the stages on stderr; default: when
        stderr is a terminal and tqdm is installed. Progress is also logged
        to the ``"slq"`` logger at INFO level.

    Returns
    -------
    dict
        What ``summary.json`` holds: the configuration, and per network
        (``"no_bn"``, ``"bn"``) the parameter count, the three checkpoints
        (``"init"``, ``"epoch_1"``, ``"end"``) and the tracked points, each
        with train loss and accuracy (train-mode BN, the Hessian's loss),
        test accuracy (eval mode), λ_min, λ_max, the negative masses
        (``"negative_mass"``, ``"negative_mass_below"``: value, stderr,
        lower, upper, resolution, x), |λ_min|/λ_max, the outliers, the bulk
        interval, the number of Hessian-vector products and the seconds SLQ
        took (None for tracked points read off a longer run);
        ``"comparison"``, what the report's sentences are made from;
        ``"wall_time_s"``; and ``"files"``, the paths written.

    Raises
    ------
    ImportError
        Without torch, scikit-learn or matplotlib, or with ``progress=True``
        and no tqdm.
    TypeError, ValueError
        For arguments of the wrong type or value.

    Examples
    --------
    >>> import tempfile
    >>> from slq.apps.demo import run
    >>> summary = run(tempfile.mkdtemp(), quick=True)  # doctest: +SKIP
    >>> sorted(summary["networks"])  # doctest: +SKIP
    ['bn', 'no_bn']
    >>> list(summary["networks"]["bn"]["checkpoints"])  # doctest: +SKIP
    ['init', 'epoch_1', 'end']
    """
    path, config, seed = check_arguments(out, quick, seed, progress)
    require()
    bar = progress_bar(progress, 2 * num_stages(config), "slq demo", unit="stage")
    started = time.perf_counter()
    path.mkdir(parents=True, exist_ok=True)
    try:
        studies = run_studies(config, seed, bar)
    finally:
        bar.close()
    summary = make_summary(config, seed, quick, studies)
    files = write_outputs(path, studies, summary, started)
    summary["files"] = [str(f) for f in files]
    logger.info(
        "demo: done in %.1f s; wrote %d files to %s", summary["wall_time_s"], len(files), path
    )
    return summary

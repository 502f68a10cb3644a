"""`run`: the whole study, from the arguments to the files it writes."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

from slq._progress import progress_bar
from slq.apps.demo.arguments import check_arguments, require
from slq.apps.demo.config import NETWORKS, Config
from slq.apps.demo.data import load_digits
from slq.apps.demo.exact import exact_check
from slq.apps.demo.findings import all_findings
from slq.apps.demo.networks import networks
from slq.apps.demo.outputs import fresh_tracks, write_outputs
from slq.apps.demo.training import Run, one_thread, train

__all__ = ["run"]

logger = logging.getLogger("slq")


def run(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Reproduce Ghorbani, Krishnan & Xiao (2019) on digits, finding by finding.

    Two MLPs, 64 → 24 → 24 → 10 with ReLU, with and without BatchNorm after
    each hidden layer, are trained by SGD (momentum 0.9, batches of 64,
    learning rate 0.05, divided by 10 after epoch 8) for 12 epochs on 1024
    standardised digits of ``sklearn.datasets.load_digits``, from 3 seeds
    each. The Hessian is that of the training loss over the data cut into
    the training batches, BN in train mode (``batchnorm="train"`` of
    `slq.adapters.torch_hessian`); an `slq.Tracker` records its density
    (48 steps × 4 probes, the same probes at every point) at
    initialisation, after 1, 2, 4 and 8 optimiser steps and after every
    epoch, with the loss, accuracy and learning rate, and for the trained BN
    network also with population statistics (``batchnorm="eval"``). The
    trained no-BN network of the first seed is checked against its exact
    spectrum (the Hessian applied to the identity, ``eigvalsh``), with 90
    Lanczos steps. See docs/batchnorm.md for why these sizes.

    Six findings are measured, each a statistic with its uncertainty (seed
    and probe standard errors), a verdict ("reproduced", "not reproduced",
    "inconclusive": decided beyond two standard errors) and a figure:
    ``quadrature-vs-exact``, ``negative-mass-vanishes-early``,
    ``bulk-stabilises``, ``learning-rate-drop``,
    ``batchnorm-suppresses-outliers`` and
    ``population-statistics-restore-outliers``.

    Nothing of the caller's changes: the initialisation draws from a forked
    torch RNG, the shuffling from a private ``torch.Generator``; torch runs
    on one intra-op thread during the run (restored afterwards).

    Parameters
    ----------
    out : str or os.PathLike
        Folder for the outputs, created if missing: one PNG per finding with
        the numbers it shows beside it (same name, ``.json``),
        ``summary.json``, ``summary.md`` and ``tracks/``: one `slq.Tracker`
        directory per network and seed (``no_bn-seed0``, ...), the densities
        the findings are computed from, which `slq.load_track` reads.
        Existing files are replaced.
    quick : bool, default False
        The same study at a tiny size (128 digits, width 8, 4 epochs, 12 × 2
        Lanczos steps), for tests: seconds instead of minutes.
    seed : int, default 0
        The first seed; the runs use `seed`, `seed` + 1, ….
    progress : bool, optional
        A tqdm progress bar over the stages on stderr; default: when stderr
        is a terminal and tqdm is installed. Each stage is also logged to the
        ``"slq"`` logger at INFO level.

    Returns
    -------
    dict
        What ``summary.json`` holds: the configuration, ``"findings"`` (one
        dict per finding: ``id``, ``claim``, ``statistic``, ``values``,
        ``uncertainty``, ``verdict``, ``figure``), ``"wall_time_s"`` and
        ``"files"``.

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
    >>> [f["id"] for f in summary["findings"]][:2]  # doctest: +SKIP
    ['quadrature-vs-exact', 'negative-mass-vanishes-early']
    """
    path, config, first_seed = check_arguments(out, quick, seed, progress)
    require()
    bar = progress_bar(progress, 2 * config.seeds + 2, "slq demo", unit="stage")
    started = time.perf_counter()
    path.mkdir(parents=True, exist_ok=True)
    tracks = fresh_tracks(path)
    try:
        runs, exact = _study(config, first_seed, bar, tracks)
    finally:
        bar.close()
    summary = _summary(config, first_seed, quick, all_findings(runs, exact, config))
    files = write_outputs(path, summary, runs, exact, started, tracks)
    bar.update()
    summary["files"] = [str(f) for f in files]
    logger.info(
        "demo: done in %.1f s; wrote %d files to %s", summary["wall_time_s"], len(files), path
    )
    return summary


def _study(
    config: Config, first_seed: int, bar: Any, tracks: Path
) -> tuple[dict[str, list[Run]], Any]:
    """Train both networks from every seed, each tracked; check the first no-BN one against eigh."""
    import torch

    data = load_digits(config)
    runs: dict[str, list[Run]] = {name: [] for name in NETWORKS}
    with torch.random.fork_rng(devices=[]), one_thread():
        for seed in range(first_seed, first_seed + config.seeds):
            models = networks(config.width, seed)
            for name, model in models.items():
                track = tracks / f"{name}-seed{seed}"
                runs[name].append(train(name, model, data, config, seed, bar, track))
            if seed == first_seed:
                checked = models["no_bn"]
        exact = exact_check(checked, data, config, first_seed)
    bar.update()
    logger.info(
        "demo: exact check on %d parameters: L1 %.3g, W1 %.3g",
        exact["num_params"],
        exact["l1"],
        exact["w1"],
    )
    return runs, exact


def _summary(config: Config, seed: int, quick: bool, findings: list[dict]) -> dict[str, Any]:
    import torch

    return {
        "paper": "Ghorbani, Krishnan & Xiao (2019), An investigation into neural net "
        "optimization via Hessian eigenvalue density, ICML",
        "quick": quick,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "data": "sklearn.datasets.load_digits (8x8), a fixed subset, standardised per pixel",
        "findings": findings,
        "wall_time_s": float("nan"),
        "torch_version": torch.__version__,
    }

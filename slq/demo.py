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
by ``import slq.demo``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slq.density import density
from slq.spectral_density import SpectralDensity

__all__ = ["run"]

logger = logging.getLogger("slq")

_HINT = (
    "slq.demo needs torch, scikit-learn and matplotlib: pip install 'slq[torch,plot]' scikit-learn"
)
_NETWORKS = {"no_bn": "without BN", "bn": "with BN"}
# The second negative mass counts eigenvalues below -_THRESHOLD * λ_max: the mass below 0
# itself hangs on the side of 0 a heavy Gauss node at the zero cluster falls on (see `run`).
_THRESHOLD = 0.01
# load_digits holds 1797 images; a stratified 25 % test split leaves 1347 for training.
_TRAIN_SIZE, _TEST_SIZE = 1347, 450
_CHECKPOINTS = {"init": "initialisation", "epoch_1": "after epoch 1", "end": "end of training"}


@dataclass(frozen=True)
class _Config:
    """One size of the experiment: data, network, optimiser and SLQ budgets."""

    train_size: int | None  # None: the whole training split (1347 digits)
    channels: tuple[int, int]
    epochs: int
    batch_size: int  # also the BatchNorm batches of the Hessian
    learning_rate: float
    num_steps: int  # Lanczos steps of the three full densities
    num_probes: int
    track_steps: int  # and of the cheaper tracking runs in between
    track_probes: int
    track_fractions: tuple[float, ...]  # tracking points inside epoch 1 (fractions of it)


_FULL = _Config(None, (8, 16), 8, 128, 0.05, 48, 4, 32, 2, (0.25, 0.5))
_QUICK = _Config(256, (4, 8), 3, 64, 0.05, 16, 2, 8, 2, (0.5,))


@dataclass
class _Point:
    """One measurement during training: metrics and a density of the Hessian."""

    epoch: float
    step: int
    metrics: dict[str, float]
    density: SpectralDensity
    seconds: float  # SLQ's wall time; nan for a run cut from a longer one


@dataclass
class _Study:
    """One network's run: its size and the measurements in order."""

    name: str
    num_params: int
    hvp: str = ""
    points: list[_Point] = field(default_factory=list)  # the tracking budget, every point
    checkpoints: dict[str, _Point] = field(default_factory=dict)  # the full budget


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
    >>> import slq.demo
    >>> summary = slq.demo.run(tempfile.mkdtemp(), quick=True)  # doctest: +SKIP
    >>> sorted(summary["networks"])  # doctest: +SKIP
    ['bn', 'no_bn']
    >>> list(summary["networks"]["bn"]["checkpoints"])  # doctest: +SKIP
    ['init', 'epoch_1', 'end']
    """
    path, config, seed = _check_arguments(out, quick, seed, progress)
    _require()
    bar = _progress_bar(progress, total=2 * _num_stages(config))
    started = time.perf_counter()
    path.mkdir(parents=True, exist_ok=True)
    try:
        studies = _run_studies(config, seed, bar)
    finally:
        bar.close()
    summary = _summary(config, seed, quick, studies)
    files = _write_outputs(path, studies, summary, started)
    summary["files"] = [str(f) for f in files]
    logger.info(
        "demo: done in %.1f s; wrote %d files to %s", summary["wall_time_s"], len(files), path
    )
    return summary


# ----------------------------------------------------------------------------- arguments


def _check_arguments(out: Any, quick: Any, seed: Any, progress: Any) -> tuple[Path, _Config, int]:
    if not isinstance(out, (str, os.PathLike)):
        msg = f"out must be a path (str or os.PathLike), got {type(out).__name__}"
        raise TypeError(msg)
    path = Path(out)
    if path.exists() and not path.is_dir():
        msg = f"out must be a folder, got the file {str(path)!r}"
        raise ValueError(msg)
    if not isinstance(quick, bool):
        msg = f"quick must be True or False, got {quick!r}"
        raise TypeError(msg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        msg = f"seed must be an integer, got {seed!r}"
        raise TypeError(msg)
    if seed < 0:
        msg = f"seed must be >= 0, got {seed}"
        raise ValueError(msg)
    if progress is not None and not isinstance(progress, bool):
        msg = f"progress must be True, False or None, got {progress!r}"
        raise TypeError(msg)
    return path, _QUICK if quick else _FULL, int(seed)


def _require() -> None:
    """Import the demo's dependencies, or raise an ImportError that says how to install them."""
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise ImportError(_HINT) from error


class _NoBar:
    """Stands in for a tqdm bar when none is shown."""

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix_str(self, s: str) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def _progress_bar(progress: bool | None, total: int) -> Any:
    """Return a tqdm bar on stderr when asked for (or, by default, on a terminal)."""
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError as error:
        if progress is None:
            return _NoBar()
        msg = "progress=True needs tqdm: pip install tqdm (or pass progress=False)"
        raise ImportError(msg) from error
    return tqdm(total=total, desc="slq demo", unit="stage", file=sys.stderr)


# ----------------------------------------------------------------------------- data and networks


@dataclass(frozen=True)
class _Data:
    """Standardised digits as torch tensors, and the fixed batches of the Hessian."""

    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any
    batches: list[tuple[Any, Any]]


def _load_digits(config: _Config) -> _Data:
    """Return the digits split 75/25 (stratified, fixed), standardised pixel by pixel."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    if config.train_size is not None:
        x_train, y_train = x_train[: config.train_size], y_train[: config.train_size]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0.0] = 1.0  # border pixels that are blank in every training image

    def images(a: np.ndarray) -> Any:
        return torch.tensor((a - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8)

    train_x, train_y = images(x_train), torch.tensor(y_train)
    batches = list(
        zip(train_x.split(config.batch_size), train_y.split(config.batch_size), strict=True)
    )
    return _Data(train_x, train_y, images(x_test), torch.tensor(y_test), batches)


def _network(channels: tuple[int, int], batchnorm: bool) -> Any:
    """Return conv [BN] ReLU → conv (stride 2) [BN] ReLU → linear, for 8 × 8 images."""
    from collections import OrderedDict

    from torch import nn

    c1, c2 = channels
    layers: OrderedDict[str, Any] = OrderedDict()
    layers["conv1"] = nn.Conv2d(1, c1, 3, padding=1, bias=not batchnorm)
    if batchnorm:
        layers["bn1"] = nn.BatchNorm2d(c1)
    layers["relu1"] = nn.ReLU()
    layers["conv2"] = nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=not batchnorm)
    if batchnorm:
        layers["bn2"] = nn.BatchNorm2d(c2)
    layers["relu2"] = nn.ReLU()
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(c2 * 16, 10)
    return nn.Sequential(layers)


def _networks(config: _Config, seed: int) -> dict[str, Any]:
    """Return both networks with the same convolution and linear weights.

    Called inside ``torch.random.fork_rng``: seeding the global generator there
    leaves the caller's state as it was.
    """
    import torch

    torch.manual_seed(seed)
    plain = _network(config.channels, batchnorm=False)
    normalised = _network(config.channels, batchnorm=True)
    shared = {k: v for k, v in plain.state_dict().items() if k in normalised.state_dict()}
    normalised.load_state_dict(shared, strict=False)
    return {"no_bn": plain, "bn": normalised}


# ----------------------------------------------------------------------------- training


def _schedule(config: _Config, steps_per_epoch: int) -> tuple[list[int], dict[int, str]]:
    """Return the optimiser steps after which to measure, and the named checkpoints among them."""
    inside = {max(1, round(f * steps_per_epoch)) for f in config.track_fractions}
    epochs = {e * steps_per_epoch for e in range(1, config.epochs + 1)}
    steps = sorted({0} | inside | epochs)
    return steps, {0: "init", steps_per_epoch: "epoch_1", config.epochs * steps_per_epoch: "end"}


def _num_stages(config: _Config) -> int:
    """Return the progress bar's stages of one network: its epochs and measurements."""
    size = _train_size(config)
    return config.epochs + len(_schedule(config, math.ceil(size / config.batch_size))[0])


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, restoring the caller's setting afterwards.

    The tensors are batches of 8 × 8 images: too small for threads to pay, and
    on busy cores oversubscribed threads made the products ten times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run_studies(config: _Config, seed: int, bar: Any) -> dict[str, _Study]:
    """Train and measure both networks, with the caller's torch RNG state forked away."""
    import torch

    data = _load_digits(config)
    with torch.random.fork_rng(devices=[]), _one_thread():
        networks = _networks(config, seed)
        return {
            name: _study(name, model, data, config, seed, bar) for name, model in networks.items()
        }


def _study(name: str, model: Any, data: _Data, config: _Config, seed: int, bar: Any) -> _Study:
    """Train one network for `config.epochs` epochs, measuring on the schedule."""
    import torch

    num_params = sum(p.numel() for p in model.parameters())
    study = _Study(name, num_params)
    steps, named = _schedule(config, len(data.batches))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    shuffle = torch.Generator().manual_seed(seed)
    step = 0
    _measure_into(study, model, data, config, seed, step, named, bar)
    for epoch in range(config.epochs):
        order = torch.randperm(data.train_x.shape[0], generator=shuffle)
        for indices in order.split(config.batch_size):
            _sgd_step(model, optimizer, data.train_x[indices], data.train_y[indices])
            step += 1
            if step in steps:
                _measure_into(study, model, data, config, seed, step, named, bar)
        bar.update()
        bar.set_postfix_str(f"{_NETWORKS[name]}: epoch {epoch + 1}")
    return study


def _sgd_step(model: Any, optimizer: Any, x: Any, y: Any) -> None:
    import torch

    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


# ----------------------------------------------------------------------------- measuring


def _measure_into(
    study: _Study,
    model: Any,
    data: _Data,
    config: _Config,
    seed: int,
    step: int,
    named: dict[int, str],
    bar: Any,
) -> None:
    """Measure the Hessian density at `step`: the tracking budget, and the full one if named."""
    # mypy sees slq/ alone; `adapters/` is installed as slq.adapters (pyproject package-dir).
    from slq import adapters  # type: ignore[attr-defined]

    # Double backward through a kept graph: "auto" and forward-over-reverse spend 10-20 s per
    # operator tracing torch.func.linearize, for products no faster on this small CNN.
    op = adapters.torch_hessian(model, data.batches, batchnorm="train", hvp="double-backward")
    study.hvp = op.hvp
    epoch, metrics = step / len(data.batches), _metrics(model, data)
    if step in named:
        full = _point(op, config.num_steps, config.num_probes, seed, epoch, step, metrics)
        study.checkpoints[named[step]] = full
        dos = _prefix(full.density, config.track_steps, config.track_probes)
        study.points.append(_Point(epoch, step, metrics, dos, math.nan))
        _log(study.name, full)
    else:
        study.points.append(
            _point(op, config.track_steps, config.track_probes, seed, epoch, step, metrics)
        )
        _log(study.name, study.points[-1])
    bar.update()
    bar.set_postfix_str(f"{_NETWORKS[study.name]}: step {step} measured")


def _point(
    op: Any,
    num_steps: int,
    num_probes: int,
    seed: int,
    epoch: float,
    step: int,
    metrics: dict[str, float],
) -> _Point:
    started = time.perf_counter()
    # The same probes at every step (common random numbers): changes are not probe noise.
    dos = density(op, num_steps=num_steps, num_probes=num_probes, seed=seed)
    return _Point(epoch, step, metrics, dos, time.perf_counter() - started)


def _prefix(dos: SpectralDensity, num_steps: int, num_probes: int) -> SpectralDensity:
    """Return the density of the first `num_probes` probes after their first `num_steps` steps.

    Lanczos' first m' steps do not depend on the later ones, and probe i of
    `slq.density` depends only on the seed and i: this is the tracking run,
    without its products.
    """
    num_steps, num_probes = min(num_steps, dos.num_steps), min(num_probes, dos.num_probes)
    alpha, beta = dos.alpha[:num_probes, :num_steps], dos.beta[:num_probes, : num_steps - 1]
    if num_steps < dos.num_steps:
        residual = dos.beta[:num_probes, num_steps - 1]
    elif dos.residual_norm is not None:
        residual = dos.residual_norm[:num_probes]
    else:
        residual = None
    return SpectralDensity(
        alpha,
        beta,
        dim=dos.dim,
        num_matvecs=num_steps * num_probes,
        seed=dos.seed,
        probe=dos.probe,
        reorthogonalize=dos.reorthogonalize,
        residual_norm=residual,
    )


def _log(name: str, point: _Point) -> None:
    dos = point.density
    logger.info(
        "demo: %s, step %d: λ in [%.3g, %.3g], %d products in %.1f s",
        _NETWORKS[name],
        point.step,
        dos.lambda_min,
        dos.lambda_max,
        dos.num_matvecs,
        point.seconds,
    )


def _metrics(model: Any, data: _Data) -> dict[str, float]:
    """Return the loss the Hessian is of (train-mode BN, fixed batches) and the accuracies."""
    import torch

    with torch.no_grad():
        # A copy in train mode: its BN running statistics may change, the model's do not.
        trained = copy.deepcopy(model).train()
        total, correct = 0.0, 0
        for x, y in data.batches:
            logits = trained(x)
            total += float(torch.nn.functional.cross_entropy(logits, y)) * x.shape[0]
            correct += int((logits.argmax(dim=1) == y).sum())
        size = data.train_x.shape[0]
        model.eval()
        test = float((model(data.test_x).argmax(dim=1) == data.test_y).float().mean())
        model.train()
    return {"train_loss": total / size, "train_accuracy": correct / size, "test_accuracy": test}


# ----------------------------------------------------------------------------- summary


def _record(point: _Point) -> dict[str, Any]:
    """Return one measurement as plain numbers (see `run` for the fields)."""
    dos = point.density
    outliers = dos.outliers()
    ratio = dos.extreme_ratio() if dos.lambda_max > 0.0 else None
    threshold = _THRESHOLD * max(dos.lambda_max, 0.0)
    return {
        "epoch": point.epoch,
        "step": point.step,
        **point.metrics,
        "lambda_min": dos.lambda_min,
        "lambda_max": dos.lambda_max,
        "negative_mass": dataclasses.asdict(dos.negative_mass()),
        "negative_mass_below": dataclasses.asdict(dos.negative_mass(threshold)),
        "extreme_ratio": None
        if ratio is None
        else {"value": ratio.value, "lower": ratio.lower, "upper": ratio.upper},
        "outliers": {
            "count": len(outliers),
            "positions": outliers.positions.tolist(),
            "counts": outliers.counts.tolist(),
            "masses": outliers.masses.tolist(),
            "total_mass": outliers.mass,
        },
        "bulk": list(outliers.bulk),
        "num_steps": dos.num_steps,
        "num_probes": dos.num_probes,
        "num_matvecs": dos.num_matvecs,
        "wall_time_s": point.seconds,
    }


def _network_summary(study: _Study) -> dict[str, Any]:
    return {
        "label": _NETWORKS[study.name],
        "num_params": study.num_params,
        "hessian_products": study.hvp,
        "checkpoints": {name: _record(study.checkpoints[name]) for name in _CHECKPOINTS},
        "track": [_record(point) for point in study.points],
    }


def _separation(record: dict[str, Any]) -> float:
    """λ_max over the bulk's upper edge: how far the top eigenvalue stands out (nan if no edge)."""
    edge = record["bulk"][1]
    return record["lambda_max"] / edge if edge > 0.0 else math.nan


def _comparison(networks: dict[str, Any]) -> dict[str, Any]:
    """Return the end-of-training comparisons the report's sentences are made from."""
    end = {name: networks[name]["checkpoints"]["end"] for name in _NETWORKS}
    return {
        "lambda_max_ratio": end["no_bn"]["lambda_max"] / end["bn"]["lambda_max"],
        "separation": {name: _separation(record) for name, record in end.items()},
        "num_outliers": {name: record["outliers"]["count"] for name, record in end.items()},
        "negative_mass": _per_checkpoint(networks, "negative_mass"),
        "negative_mass_below": _per_checkpoint(networks, "negative_mass_below"),
        "negative_mass_below_change": {
            name: {
                later: _change(c["init"]["negative_mass_below"], c[later]["negative_mass_below"])
                for later in ("epoch_1", "end")
            }
            for name, c in ((n, networks[n]["checkpoints"]) for n in _NETWORKS)
        },
    }


def _per_checkpoint(networks: dict[str, Any], key: str) -> dict[str, dict[str, float]]:
    return {
        name: {c: networks[name]["checkpoints"][c][key]["value"] for c in _CHECKPOINTS}
        for name in _NETWORKS
    }


def _interval(mass: dict[str, Any]) -> tuple[float, float]:
    """Return a mass' bracket widened by two standard errors: where it may lie."""
    stderr = mass["stderr"] if math.isfinite(mass["stderr"]) else 0.0
    return mass["lower"] - 2.0 * stderr, mass["upper"] + 2.0 * stderr


def _change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Return "falls", "rises" or "unresolved": whether the two masses' intervals separate."""
    (low_before, high_before), (low_after, high_after) = _interval(before), _interval(after)
    if high_after < low_before:
        return "falls"
    if low_after > high_before:
        return "rises"
    return "unresolved"


def _summary(config: _Config, seed: int, quick: bool, studies: dict[str, _Study]) -> dict[str, Any]:
    import torch

    networks = {name: _network_summary(study) for name, study in studies.items()}
    first = studies["no_bn"].points[0].density
    return {
        "paper": "Ghorbani, Krishnan & Xiao (2019), An investigation into neural net "
        "optimization via Hessian eigenvalue density, ICML",
        "quick": quick,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "data": {
            "dataset": "sklearn.datasets.load_digits (8x8), standardised per pixel",
            "train": _train_size(config),
            "test": _TEST_SIZE,
        },
        "hessian": {
            "loss": "mean cross-entropy over the training set",
            "batchnorm": "train (statistics of each batch)",
            "batch_size": config.batch_size,
            "reorthogonalize": first.reorthogonalize,
            "probe": first.probe,
        },
        "networks": networks,
        "comparison": _comparison(networks),
        "wall_time_s": math.nan,  # set once the figures are drawn
        "torch_version": torch.__version__,
    }


def _train_size(config: _Config) -> int:
    return _TRAIN_SIZE if config.train_size is None else config.train_size


def _json_ready(value: Any) -> Any:
    """Return `value` with numpy numbers as Python ones and non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# ----------------------------------------------------------------------------- outputs


def _write_outputs(
    path: Path, studies: dict[str, _Study], summary: dict[str, Any], started: float
) -> list[Path]:
    """Write the figures, ``summary.md`` and ``summary.json``; return their paths."""
    files = _write_figures(path, studies)
    summary["wall_time_s"] = time.perf_counter() - started
    report = path / "summary.md"
    report.write_text(_markdown(summary, [f.name for f in files]), encoding="utf-8")
    data = path / "summary.json"
    files += [report, data]
    summary_json = _json_ready({**summary, "files": [f.name for f in files]})
    data.write_text(json.dumps(summary_json, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return files


def _figure(width: float = 6.4, height: float = 4.4, **subplots: Any) -> tuple[Any, Any]:
    """Return a matplotlib Figure (no pyplot state) and its axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(**subplots)


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, dpi=120)
    return path


def _write_figures(path: Path, studies: dict[str, _Study]) -> list[Path]:
    files = [_densities_figure(path, study) for study in studies.values()]
    files += [_overlay_figure(path, studies), _outliers_figure(path, studies)]
    files += [_negative_mass_figure(path, studies), _extremes_figure(path, studies)]
    return files


def _densities_figure(path: Path, study: _Study) -> Path:
    """Figure: one network's density at the three checkpoints."""
    from slq.plotting import plot_densities

    figure, ax = _figure()
    points = [study.checkpoints[name] for name in _CHECKPOINTS]
    labels = [f"{_CHECKPOINTS[name]}" for name in _CHECKPOINTS]
    plot_densities([p.density for p in points], labels=labels, ax=ax)
    ax.set_title(f"Hessian eigenvalue density {_NETWORKS[study.name]} (n = {study.num_params})")
    return _save(figure, path / f"densities_{study.name}.png")


def _overlay_figure(path: Path, studies: dict[str, _Study]) -> Path:
    """Figure: the final densities with and without BN on one axes."""
    from slq.plotting import plot_densities

    figure, ax = _figure()
    ends = [studies[name].checkpoints["end"].density for name in _NETWORKS]
    plot_densities(ends, labels=list(_NETWORKS.values()), ax=ax, colors=["C3", "C0"])
    ax.set_title("Hessian eigenvalue density at the end of training")
    return _save(figure, path / "final_overlay.png")


def _outliers_figure(path: Path, studies: dict[str, _Study]) -> Path:
    """Figure: each final density on its own, outliers as annotated point masses."""
    figure, axes = _figure(11.0, 4.4, ncols=2)
    for ax, name, color in zip(axes, _NETWORKS, ["C3", "C0"], strict=True):
        studies[name].checkpoints["end"].density.plot(ax, label=_NETWORKS[name], color=color)
        end = studies[name].checkpoints["end"].density
        ax.set_title(f"end of training, {_NETWORKS[name]}: λ_max = {end.lambda_max:.3g}")
    _share_limits(axes)
    return _save(figure, path / "final_outliers.png")


def _share_limits(axes: Any) -> None:
    """Give the axes common limits, so that the spectra's extents compare at a glance."""
    for get, put in (("get_xlim", "set_xlim"), ("get_ylim", "set_ylim")):
        lows, highs = zip(*(getattr(ax, get)() for ax in axes), strict=True)
        for ax in axes:
            getattr(ax, put)(min(lows), max(highs))


def _track(study: _Study, key: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the epochs and one quantity of each tracked point."""
    epochs = np.array([p.epoch for p in study.points])
    return epochs, np.array([key(p.density) for p in study.points], dtype=np.float64)


def _negative_mass_figure(path: Path, studies: dict[str, _Study]) -> Path:
    """Figure: the mass below 0 and below -λ_max/100 over training, ± stderr, with brackets."""
    figure, axes = _figure(11.0, 4.4, ncols=2)
    for ax, scale in zip(axes, (0.0, _THRESHOLD), strict=True):
        for name, color in zip(_NETWORKS, ["C3", "C0"], strict=True):
            _negative_mass_curve(ax, studies[name], scale, color)
        ax.set_xlabel("epoch")
        ax.legend(frameon=False, fontsize="small")
    axes[0].set_ylim(bottom=0.0)
    # Late in training the resolved mass is a thousandth of the early one: log scale.
    axes[1].set_yscale("log")
    axes[1].set_ylim(bottom=_log_floor(axes[1]))
    axes[0].set_ylabel("fraction of eigenvalues < 0")
    axes[0].set_title("below 0 (band: quadrature bracket)")
    axes[1].set_ylabel(f"fraction of eigenvalues < -λ_max/{1 / _THRESHOLD:.0f}")
    axes[1].set_title(f"below -λ_max/{1 / _THRESHOLD:.0f} (band: quadrature bracket)")
    figure.suptitle("Negative-eigenvalue mass of the Hessian over training (± 1 stderr)")
    return _save(figure, path / "negative_mass.png")


def _log_floor(ax: Any) -> float:
    """Return a log axis' bottom: a third of the smallest positive value drawn, at least 1e-5."""
    values = [line.get_ydata() for line in ax.get_lines()]
    positive = np.concatenate([np.asarray(v, dtype=np.float64) for v in values])
    positive = positive[positive > 0.0]
    return max(1e-5, float(positive.min()) / 3.0) if positive.size else 1e-5


def _negative_mass_curve(ax: Any, study: _Study, scale: float, color: str) -> None:
    """Draw one network's negative mass below -scale·λ_max: value ± stderr, bracket as a band."""
    masses = [p.density.negative_mass(scale * max(p.density.lambda_max, 0.0)) for p in study.points]
    epochs = np.array([p.epoch for p in study.points])
    lower, upper = np.array([m.lower for m in masses]), np.array([m.upper for m in masses])
    ax.fill_between(epochs, lower, upper, color=color, alpha=0.15, lw=0)
    ax.errorbar(
        epochs,
        [m.value for m in masses],
        yerr=[m.stderr for m in masses],
        color=color,
        marker="o",
        ms=4,
        capsize=3,
        label=_NETWORKS[study.name],
    )


def _separation_of(dos: SpectralDensity) -> float:
    edge = dos.outliers().bulk[1]
    return dos.lambda_max / edge if edge > 0.0 else math.nan


def _extremes_figure(path: Path, studies: dict[str, _Study]) -> Path:
    """Figure: λ_max, |λ_min|/λ_max, λ_max over the bulk's edge and the outliers over training."""
    figure, axes = _figure(6.4, 8.8, nrows=4, sharex=True)
    quantities = [
        (lambda d: d.lambda_max, "λ_max", "log"),
        (lambda d: max(-d.lambda_min, 0.0) / d.lambda_max, "|λ_min| / λ_max", "log"),
        (_separation_of, "λ_max / bulk's upper edge", "linear"),
        (lambda d: len(d.outliers()), "outliers", "linear"),
    ]
    for ax, (key, label, scale) in zip(axes, quantities, strict=True):
        for name, color in zip(_NETWORKS, ["C3", "C0"], strict=True):
            epochs, values = _track(studies[name], key)
            ax.plot(epochs, values, "o-", color=color, ms=4, label=_NETWORKS[name])
        ax.set_yscale(scale)
        ax.set_ylabel(label)
    steps, probes = studies["no_bn"].points[0].density.alpha.shape[::-1]
    axes[0].set_title(
        f"Extreme eigenvalues and outliers over training\n(each point: {steps} Lanczos steps "
        f"x {probes} probes)"
    )
    axes[-1].yaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(frameon=False)
    axes[-1].set_xlabel("epoch")
    return _save(figure, path / "extremes.png")


# ----------------------------------------------------------------------------- report


def _markdown(summary: dict[str, Any], figures: list[str]) -> str:
    """Return ``summary.md``: what was measured, a table, and findings made from the numbers."""
    data, config = summary["data"], summary["config"]
    lines = [
        "# Hessian eigenvalue density of a small CNN on digits, with and without BatchNorm",
        "",
        f"A reproduction at laptop scale of {summary['paper']}.",
        "",
        f"Data: {data['dataset']}; {data['train']} training and {data['test']} test images. "
        f"Training: SGD (momentum 0.9, learning rate {config['learning_rate']}), batches of "
        f"{config['batch_size']}, {config['epochs']} epochs, the same initial weights for both "
        "networks. Hessian: of the mean training loss, with BatchNorm in train mode over fixed "
        f"batches of {config['batch_size']}; `slq.density` with full reorthogonalisation, "
        f"{config['num_steps']} Lanczos steps x {config['num_probes']} probes at the checkpoints "
        f"below, {config['track_steps']} x {config['track_probes']} at the points tracked in "
        "between (see the figures). Negative mass: the fraction of eigenvalues below 0, ± its "
        "probe standard error, [its Chebyshev-Markov-Stieltjes bracket]. Outliers: converged "
        "Ritz values more than one bulk width outside the bulk (`SpectralDensity.outliers`).",
        "",
        *_table(summary),
        "",
        "## Findings",
        "",
        *_findings(summary),
        "",
        f"Wall time: {summary['wall_time_s']:.1f} s (torch {summary['torch_version']}).",
        "",
        "## Figures",
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
    ]
    return "\n".join(lines)


def _table(summary: dict[str, Any]) -> list[str]:
    header = (
        "| network | checkpoint | train loss | train acc | test acc | λ_min | λ_max "
        "| \\|λ_min\\|/λ_max | mass below 0 | mass below -λ_max/100 | outliers | products "
        "| SLQ time |"
    )
    lines = [header, "|" + "---|" * 13]
    for network in summary["networks"].values():
        for checkpoint, r in network["checkpoints"].items():
            mass, below = r["negative_mass"], r["negative_mass_below"]
            ratio = r["extreme_ratio"]["value"] if r["extreme_ratio"] else math.nan
            cells = [
                f"{network['label']} (n = {network['num_params']})",
                _CHECKPOINTS[checkpoint],
                f"{r['train_loss']:.3f}",
                f"{r['train_accuracy']:.3f}",
                f"{r['test_accuracy']:.3f}",
                f"{r['lambda_min']:.3g}",
                f"{r['lambda_max']:.3g}",
                f"{ratio:.3g}",
                f"{mass['value']:.3f} ± {mass['stderr']:.3f} "
                f"[{mass['lower']:.3f}, {mass['upper']:.3f}]",
                f"{below['value']:.4f} ± {below['stderr']:.4f} "
                f"[{below['lower']:.4f}, {below['upper']:.4f}]",
                _outlier_cell(r["outliers"]),
                str(r["num_matvecs"]),
                f"{r['wall_time_s']:.1f} s",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _outlier_cell(outliers: dict[str, Any]) -> str:
    if not outliers["count"]:
        return "none"
    shown = ", ".join(f"{p:.3g}" for p in sorted(outliers["positions"], reverse=True)[:4])
    more = ", …" if outliers["count"] > 4 else ""
    return f"{outliers['count']} (at {shown}{more})"


def _findings(summary: dict[str, Any]) -> list[str]:
    return [_outlier_finding(summary), "", _negative_mass_finding(summary)]


def _outlier_finding(summary: dict[str, Any]) -> str:
    comparison = summary["comparison"]
    end = {name: summary["networks"][name]["checkpoints"]["end"] for name in _NETWORKS}
    sep, count = comparison["separation"], comparison["num_outliers"]
    text = (
        f"At the end of training the largest eigenvalue without BN is "
        f"{comparison['lambda_max_ratio']:.3g} times that with BN "
        f"({end['no_bn']['lambda_max']:.3g} vs {end['bn']['lambda_max']:.3g}); it stands "
        f"{sep['no_bn']:.3g} times the bulk's upper edge without BN and {sep['bn']:.3g} times "
        f"with BN, and {count['no_bn']} vs {count['bn']} converged outliers were found. "
    )
    if not (math.isfinite(sep["no_bn"]) and math.isfinite(sep["bn"])):
        return text + "(A bulk edge at or below zero leaves the separation undefined.)"
    apart = sep["no_bn"] > sep["bn"]
    return text + (
        "Ghorbani, Krishnan & Xiao find large isolated eigenvalues without BN that BN "
        f"suppresses: here the top eigenvalue stands further from the bulk "
        f"{'without' if apart else 'with'} BN, "
        f"{'in line with' if apart else 'unlike'} that finding."
    )


_CHANGES = {
    "falls": "falls",
    "rises": "rises",
    "unresolved": "no change beyond the bracket ± 2 stderr",
}


def _negative_mass_finding(summary: dict[str, Any]) -> str:
    comparison = summary["comparison"]
    parts = []
    for name, network in summary["networks"].items():
        masses = [network["checkpoints"][c]["negative_mass_below"] for c in _CHECKPOINTS]
        change = comparison["negative_mass_below_change"][name]
        parts.append(
            f"{network['label']} from {_mass(masses[0])} at initialisation to "
            f"{_mass(masses[1])} after epoch 1 ({_CHANGES[change['epoch_1']]}) and "
            f"{_mass(masses[2])} at the end ({_CHANGES[change['end']]})"
        )
    changes = comparison["negative_mass_below_change"]
    return (
        f"The fraction of eigenvalues below -λ_max/{1 / _THRESHOLD:.0f} (negative curvature at "
        f"least {_THRESHOLD:.0%} as strong as the largest positive one) goes {parts[0]}; "
        f"{parts[1]}. {_zero_cluster_sentence(summary)}Ghorbani, Krishnan & Xiao find that "
        "negative eigenvalues largely disappear early in training: here this mass falls beyond "
        f"its uncertainty {_where_falls(changes, 'epoch_1')} over the first epoch and "
        f"{_where_falls(changes, 'end')} by the end of training."
    )


def _where_falls(changes: dict[str, dict[str, str]], checkpoint: str) -> str:
    falls = [_NETWORKS[name] for name, c in changes.items() if c[checkpoint] == "falls"]
    if len(falls) == 1:
        return f"only {falls[0]}"
    return "in both networks" if falls else "in neither network"


def _mass(mass: dict[str, Any]) -> str:
    return f"{mass['value']:.4f} [{mass['lower']:.4f}, {mass['upper']:.4f}]"


def _zero_cluster_sentence(summary: dict[str, Any]) -> str:
    """Say whether the mass below 0 itself is resolved, from its brackets at the end."""
    end = {n: summary["networks"][n]["checkpoints"]["end"]["negative_mass"] for n in _NETWORKS}
    widest = max(m["upper"] - m["lower"] for m in end.values())
    brackets = " and ".join(
        f"[{m['lower']:.2f}, {m['upper']:.2f}] {_NETWORKS[n]}" for n, m in end.items()
    )
    if widest <= 0.25:
        return f"Below 0 itself, the brackets at the end are {brackets}. "
    return (
        f"The mass below 0 itself is not resolved: at the end its brackets are {brackets}, "
        "as most eigenvalues sit in a cluster at zero that the Gauss nodes cannot place on "
        "either side. "
    )

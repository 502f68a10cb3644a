"""Measuring: the Hessian density and the metrics of a network at one point of training."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from slq._density import density
from slq.apps.demo.config import NETWORKS, Config
from slq.apps.demo.data import Data
from slq.spectral_density import SpectralDensity

__all__ = ["Point", "Study", "measure_into", "metrics", "prefix"]

logger = logging.getLogger("slq")


@dataclass
class Point:
    """One measurement during training: metrics and a density of the Hessian."""

    epoch: float
    step: int
    metrics: dict[str, float]
    density: SpectralDensity
    seconds: float  # SLQ's wall time; nan for a run cut from a longer one


@dataclass
class Study:
    """One network's run: its size and the measurements in order."""

    name: str
    num_params: int
    hvp: str = ""
    points: list[Point] = field(default_factory=list)  # the tracking budget, every point
    checkpoints: dict[str, Point] = field(default_factory=dict)  # the full budget


def measure_into(
    study: Study,
    model: Any,
    data: Data,
    config: Config,
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
    epoch, measured = step / len(data.batches), metrics(model, data)
    if step in named:
        full = _point(op, config.num_steps, config.num_probes, seed, epoch, step, measured)
        study.checkpoints[named[step]] = full
        dos = prefix(full.density, config.track_steps, config.track_probes)
        study.points.append(Point(epoch, step, measured, dos, math.nan))
        _log(study.name, full)
    else:
        study.points.append(
            _point(op, config.track_steps, config.track_probes, seed, epoch, step, measured)
        )
        _log(study.name, study.points[-1])
    bar.update()
    bar.set_postfix_str(f"{NETWORKS[study.name]}: step {step} measured")


def _point(
    op: Any,
    num_steps: int,
    num_probes: int,
    seed: int,
    epoch: float,
    step: int,
    metrics: dict[str, float],
) -> Point:
    started = time.perf_counter()
    # The same probes at every step (common random numbers): changes are not probe noise.
    dos = density(op, num_steps=num_steps, num_probes=num_probes, seed=seed)
    return Point(epoch, step, metrics, dos, time.perf_counter() - started)


def prefix(dos: SpectralDensity, num_steps: int, num_probes: int) -> SpectralDensity:
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


def _log(name: str, point: Point) -> None:
    dos = point.density
    logger.info(
        "demo: %s, step %d: λ in [%.3g, %.3g], %d products in %.1f s",
        NETWORKS[name],
        point.step,
        dos.lambda_min,
        dos.lambda_max,
        dos.num_matvecs,
        point.seconds,
    )


def metrics(model: Any, data: Data) -> dict[str, float]:
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

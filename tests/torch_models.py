"""Small torch models and dense curvature oracles for the adapter tests."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mlp(
    widths: Sequence[int] = (4, 6, 3), activation: type[nn.Module] = nn.Tanh, bn: bool = False
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            if bn:
                layers.append(nn.BatchNorm1d(b))
            layers.append(activation())
    return nn.Sequential(*layers)


def cnn_bn(channels: int = 3, classes: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3),
        nn.BatchNorm2d(channels),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(channels * 4 * 4, classes),
    )


class Tied(nn.Module):
    """Two layers sharing one weight matrix."""

    def __init__(self, width: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, width)
        self.b.weight = self.a.weight
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.b(torch.tanh(self.a(x)))))


def warm_batchnorm(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """Give BatchNorm layers non-trivial running statistics (one train-mode pass)."""
    model.train()
    with torch.no_grad():
        model(inputs)
    model.eval()
    return model


def _flat_loss(
    model: nn.Module,
    names: list[str],
    batches: list[Any],
    batch_loss: Callable[[nn.Module, Any], tuple[torch.Tensor, int]],
    mode: str,
) -> Callable[[torch.Tensor], torch.Tensor]:
    reference = copy.deepcopy(model)
    reference.train(mode == "train")
    params = dict(reference.named_parameters())
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        theta = {n: p.reshape(s) for n, p, s in zip(names, flat.split(sizes), shapes, strict=True)}
        values, counts = [], []
        for batch in batches:
            with torch.nn.utils.stateless._reparametrize_module(reference, theta, tie_weights=True):
                value, count = batch_loss(reference, batch)
            values.append(value * count)
            counts.append(count)
        return sum(values) / sum(counts)

    return loss


def dense_hessian(
    model: nn.Module,
    batches: list[Any],
    batch_loss: Callable[[nn.Module, Any], tuple[torch.Tensor, int]],
    names: list[str] | None = None,
    mode: str = "eval",
) -> torch.Tensor:
    """The full Hessian of the size-weighted mean loss, by torch.autograd.functional.hessian."""
    params = dict(model.named_parameters())
    names = names or [n for n, p in params.items() if p.requires_grad]
    flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    return torch.autograd.functional.hessian(
        _flat_loss(model, names, batches, batch_loss, mode), flat
    )


def dense_ggn(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], loss_fn: Loss
) -> torch.Tensor:
    """Σ_b (N_b/N) J_bᵀ H_b J_b from dense Jacobians and output Hessians."""
    reference = copy.deepcopy(model).eval()
    params = dict(reference.named_parameters())
    names = list(params)
    flat = torch.cat([p.detach().reshape(-1) for p in params.values()])
    sizes, shapes = [params[n].numel() for n in names], [params[n].shape for n in names]
    total = sum(int(x.shape[0]) for x, _ in batches)
    g = torch.zeros(flat.numel(), flat.numel(), dtype=flat.dtype)
    for x, y in batches:

        def outputs(f: torch.Tensor, x: torch.Tensor = x) -> torch.Tensor:
            theta = {n: p.reshape(s) for n, p, s in zip(names, f.split(sizes), shapes, strict=True)}
            return torch.func.functional_call(reference, theta, (x,)).reshape(-1)

        z = outputs(flat).detach()
        j = torch.autograd.functional.jacobian(outputs, flat)
        h = torch.autograd.functional.hessian(lambda o, y=y: loss_fn(o.reshape(len(y), -1), y), z)
        g += (x.shape[0] / total) * j.T @ h @ j
    return g


def cross_entropy_batch_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y), int(x.shape[0])


def data(
    n: int, features: int = 4, classes: int = 3, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g, dtype=dtype), torch.randint(
        0, classes, (n,), generator=g
    )


def split(
    x: torch.Tensor, y: torch.Tensor, sizes: Sequence[int]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(zip(x.split(list(sizes)), y.split(list(sizes)), strict=True))


def state_of(model: nn.Module) -> dict[str, Any]:
    """Everything of the user's that the adapter must leave as it found it."""
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {
            n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()
        },
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "training": {n: m.training for n, m in model.named_modules()},
        "rng": torch.get_rng_state(),
    }


def assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    for key in ("params", "buffers"):
        assert before[key].keys() == after[key].keys()
        for name in before[key]:
            assert torch.equal(before[key][name], after[key][name]), (key, name)
    for name, g in before["grads"].items():
        other = after["grads"][name]
        assert (g is None and other is None) or torch.equal(g, other), ("grad", name)
    assert before["requires_grad"] == after["requires_grad"]
    assert before["training"] == after["training"]
    assert torch.equal(before["rng"], after["rng"])

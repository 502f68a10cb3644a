"""A JAX twin of a small torch ``nn.Sequential``: the same function of the same weights.

Supports Linear, Conv2d (no padding, stride 1), BatchNorm2d in eval mode (its
running statistics as constants), Tanh, ReLU and Flatten, and the mean
cross-entropy loss. The twin is checked against the torch loss when built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def layer_params(module: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.named_parameters(recurse=False)}


def twin(model: Any, data: Any) -> tuple[Callable[[Any, Any], Any], list[dict], tuple] | None:
    """(loss_fn(params, batch), params, batch) for JAX, or None for an unsupported layer."""
    import jax
    import jax.numpy as jnp
    import torch
    from torch import nn

    kinds, params, consts = [], [], []
    for module in model:
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.BatchNorm2d)):
            params.append({k: jnp.asarray(v) for k, v in layer_params(module).items()})
        else:
            params.append({})
        if isinstance(module, nn.BatchNorm2d):
            scale = 1 / np.sqrt(module.running_var.numpy() + module.eps)
            consts.append((jnp.asarray(module.running_mean.numpy()), jnp.asarray(scale)))
        else:
            consts.append(None)
        kind = type(module).__name__
        if kind not in ("Linear", "Conv2d", "BatchNorm2d", "Tanh", "ReLU", "Flatten"):
            return None
        kinds.append(kind)

    def forward(params: list[dict], x: Any) -> Any:
        for kind, p, c in zip(kinds, params, consts, strict=True):
            if kind == "Linear":
                x = x @ p["weight"].T + p["bias"]
            elif kind == "Conv2d":
                x = jax.lax.conv_general_dilated(x, p["weight"], (1, 1), "VALID")
                x = x + p["bias"][None, :, None, None]
            elif kind == "BatchNorm2d":
                mean, scale = (a[None, :, None, None] for a in c)
                x = (x - mean) * scale * p["weight"][None, :, None, None]
                x = x + p["bias"][None, :, None, None]
            elif kind == "Tanh":
                x = jnp.tanh(x)
            elif kind == "ReLU":
                x = jax.nn.relu(x)
            else:
                x = x.reshape(x.shape[0], -1)
        return x

    def loss_fn(params: list[dict], batch: Any) -> Any:
        x, y = batch
        logits = forward(params, x)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])

    batch = (jnp.asarray(data[0].numpy()), jnp.asarray(data[1].numpy()))
    with torch.no_grad():
        expected = float(nn.functional.cross_entropy(model(data[0]), data[1]))
    got = float(loss_fn(params, batch))
    if not np.isclose(got, expected, rtol=1e-10, atol=0):
        raise RuntimeError(f"JAX twin's loss {got!r} differs from torch's {expected!r}")
    return loss_fn, params, batch

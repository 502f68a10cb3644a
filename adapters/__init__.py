"""Framework adapters, installed as ``slq.adapters``: models and data as curvature operators.

Import it as ``from slq import adapters``. Each framework is imported only when
one of its adapters is first used; so are Lightning, Keras and `transformers`,
by their training callbacks.
"""

import importlib
from typing import Any

if __name__ != "slq.adapters":
    _msg = (
        f"this package is slq's adapters and must be imported as `slq.adapters`, not as "
        f"`{__name__}`: write `from slq import adapters` (and reinstall slq with a plain "
        "`pip install -e .` if this happened in a checkout)"
    )
    raise ImportError(_msg)

# Public name -> module that defines it; the module (and its framework) loads on first use.
_LAZY = {
    "HuggingFaceSpectrumCallback": "huggingface",
    "JaxCurvatureOperator": "jax",
    "JaxHessian": "jax",
    "jax_hessian": "jax",
    "KerasSpectrumCallback": "keras",
    "LightningSpectrumCallback": "lightning",
    "TensorFlowCurvatureOperator": "tensorflow",
    "TfHessian": "tensorflow",
    "tf_hessian": "tensorflow",
    "TorchCurvature": "torch",
    "TorchCurvatureOperator": "torch",
    "torch_ggn": "torch",
    "torch_hessian": "torch",
    "torch_layer_hessians": "torch",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

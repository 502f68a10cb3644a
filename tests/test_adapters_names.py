"""The adapters' operator classes: one naming scheme, one base, the former names as aliases."""

from __future__ import annotations

import pytest
from helpers import Backend, need

from slq import adapters

NAMES = [
    (Backend.TORCH, "TorchCurvatureOperator", "TorchCurvature"),
    (Backend.JAX, "JaxCurvatureOperator", "JaxHessian"),
    (Backend.TENSORFLOW, "TensorFlowCurvatureOperator", "TfHessian"),
]


@pytest.mark.parametrize(("backend", "name", "former"), NAMES)
def test_former_operator_names_are_aliases_of_one_base(
    backend: Backend, name: str, former: str
) -> None:
    need(backend)
    from slq.adapters._operator import CurvatureOperator

    cls = getattr(adapters, name)
    assert getattr(adapters, former) is cls
    assert issubclass(cls, CurvatureOperator)
    assert {name, former} <= set(adapters.__all__)

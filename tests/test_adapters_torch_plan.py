"""How torch products are planned: timed only on a first operator, remembered, and checked."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from helpers import Backend, need

torch = need(Backend.TORCH)

from slq.adapters import _torch_plan  # noqa: E402
from slq.adapters._torch_plan_cache import MAX_PLANS, clear_plans, recall, remember  # noqa: E402
from torch_models import cross_entropy_batch_loss, data, dense_hessian, mlp, split  # noqa: E402

from slq import adapters  # noqa: E402

nn = torch.nn


@pytest.fixture
def timings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every timing the planner takes, from a clean memory of plans."""
    clear_plans()
    taken: list[Any] = []
    timed = _torch_plan._timed

    def counted(device: Any, f: Any) -> Any:
        taken.append(f)
        return timed(device, f)

    monkeypatch.setattr(_torch_plan, "_timed", counted)
    yield taken
    clear_plans()


def _model(seed: int, widths: tuple[int, ...] = (4, 6, 3)) -> nn.Module:
    torch.manual_seed(seed)
    return mlp(widths).double()


def _exact(op: Any, model: nn.Module, batches: Any) -> None:
    dense = dense_hessian(model, batches, cross_entropy_batch_loss)
    v = torch.randn(op.shape[0], 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.matmat(v), dense @ v, rtol=1e-10, atol=1e-10 * dense.abs().max())


@pytest.mark.parametrize("reuse_primal", [None, False])
def test_a_second_operator_of_the_same_structure_times_nothing(
    timings: list[Any], caplog: pytest.LogCaptureFixture, reuse_primal: bool | None
) -> None:
    batches = split(*data(30), [10, 20])
    first = adapters.torch_hessian(_model(0), batches, reuse_primal=reuse_primal)
    assert timings, "the first operator measures"
    timings.clear()
    other = _model(1)  # other weights, the same structure
    with caplog.at_level(logging.INFO, logger="slq"):
        second = adapters.torch_hessian(other, batches, reuse_primal=reuse_primal)
    assert timings == []
    assert "measured before" in caplog.text
    assert second.hvp_choice == first.hvp_choice
    _exact(second, other, batches)  # its own state, built from its own weights


def test_the_default_choice_is_the_same_every_time(timings: list[Any]) -> None:
    batch = data(20)
    choices = set()
    for _ in range(5):
        clear_plans()
        choices.add(adapters.torch_hessian(_model(0), batch).hvp_choice)
    assert choices == {_torch_plan.Choice("double-backward", "graph", False)}


def _build(change: str) -> None:
    batch, model, options = data(20), _model(0), {}
    if change == "widths":
        model = _model(0, (4, 5, 3))
    elif change == "dtype":
        model, batch = model.float(), (batch[0].float(), batch[1])
    elif change == "batch shape":
        batch = data(21)
    elif change == "loss":
        options = {"loss_fn": partial(nn.functional.cross_entropy, label_smoothing=0.1)}
    elif change == "option":
        options = {"hvp": "double-backward"}
    adapters.torch_hessian(model, batch, **options)


@pytest.mark.parametrize("change", ["widths", "dtype", "batch shape", "loss", "option"])
def test_another_structure_is_measured_again(timings: list[Any], change: str) -> None:
    _build("none")
    timings.clear()
    _build("none")
    assert timings == []
    _build(change)
    assert timings, f"a change of {change} must be measured"


def _drifting_linearization(fm: Any, batch: Any) -> Any:
    """torch.func.linearize without functionalization: in-place ops replay on every call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Attempted to insert a get_attr Node", UserWarning)
        grad = torch.func.grad(partial(lambda fm, batch, theta: fm.loss(theta, batch), fm, batch))
        return torch.func.linearize(grad, fm.primal)[1]


class InPlaceResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.head = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        h += x
        return self.head(torch.tanh(h))


def test_a_remembered_fast_path_that_fails_its_check_is_discarded(
    timings: list[Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    model, batch = InPlaceResidual().double(), data(20)
    options = {"hvp": "forward-over-reverse", "reuse_primal": True}
    assert adapters.torch_hessian(model, batch, **options).hvp.startswith("linearized gradient")
    monkeypatch.setattr(_torch_plan, "linearized_hessian", _drifting_linearization)
    with caplog.at_level(logging.INFO, logger="slq"):
        op = adapters.torch_hessian(model, batch, **options)
    assert op.hvp == "forward-over-reverse"
    assert "measured before" not in caplog.text
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and all("linearized gradient" in r.getMessage() for r in warned)
    _exact(op, model, [batch])


@pytest.mark.parametrize(
    ("margin", "method"), [(0.0, "double-backward"), (1e9, "forward-over-reverse")]
)
def test_forward_over_reverse_replaces_double_backward_only_when_clearly_faster(
    timings: list[Any], monkeypatch: pytest.MonkeyPatch, margin: float, method: str
) -> None:
    monkeypatch.setattr(_torch_plan, "CLEARLY_FASTER", margin)
    op = adapters.torch_hessian(_model(0), data(20), reuse_primal=False)
    assert op.hvp == method


def test_the_memory_of_plans_is_bounded() -> None:
    clear_plans()
    for i in range(MAX_PLANS + 1):
        remember(i, "plan")
    assert recall(0) is None
    assert recall(MAX_PLANS) == "plan"
    clear_plans()

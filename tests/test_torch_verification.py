"""Fast torch product paths are checked against a fresh double backward before they are used."""

from __future__ import annotations

import logging
import warnings
from functools import partial

import pytest
from helpers import Backend, need

torch = need(Backend.TORCH)

from torch_models import (  # noqa: E402
    assert_same_state,
    cross_entropy_batch_loss,
    data,
    dense_hessian,
    state_of,
)

from slq import adapters  # noqa: E402

nn = torch.nn
METHODS = ("auto", "forward-over-reverse", "double-backward")


class InPlaceResidual(nn.Module):
    """The issue's reproducer: a residual added in place, as ResNets do (``out += identity``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.head = nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        h += x
        return self.head(torch.tanh(h))


def _setup() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    model = InPlaceResidual().double()
    x, y = data(10, features=6)
    return model, (x, y), dense_hessian(model, [(x, y)], cross_entropy_batch_loss)


def _assert_exact_and_repeatable(op, dense: torch.Tensor) -> None:
    v = torch.randn(op.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    first = op.matmat(v)
    for _ in range(3):  # later products must not drift
        again = op.matmat(v)
        assert torch.equal(first, again)
    scale = float(dense.abs().max())
    torch.testing.assert_close(first, dense @ v, rtol=1e-10, atol=1e-10 * scale)
    torch.testing.assert_close(op.matvec(v[:, 0]), dense @ v[:, 0], rtol=1e-10, atol=1e-10 * scale)


@pytest.mark.parametrize("reuse_primal", [None, False])
@pytest.mark.parametrize("hvp", METHODS)
def test_in_place_residual_is_exact_by_every_method(hvp: str, reuse_primal) -> None:
    model, batch, dense = _setup()
    before = state_of(model)
    op = adapters.torch_hessian(model, batch, hvp=hvp, reuse_primal=reuse_primal)
    if hvp != "auto":  # an explicit method is honoured
        assert hvp in op.hvp or (hvp == "double-backward" and "retained graph" in op.hvp)
        assert "linearized" not in op.hvp or hvp == "forward-over-reverse"
    _assert_exact_and_repeatable(op, dense)
    assert_same_state(before, state_of(model))


def _drifting_linearization(fm, batch):
    """torch.func.linearize without functionalization: in-place ops replay on every call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Attempted to insert a get_attr Node", UserWarning)
        grad = torch.func.grad(partial(lambda fm, batch, theta: fm.loss(theta, batch), fm, batch))
        return torch.func.linearize(grad, fm.primal)[1]


@pytest.mark.parametrize("hvp", ["auto", "forward-over-reverse"])
def test_a_drifting_linearization_is_caught_and_discarded(
    hvp: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from slq.adapters import _torch_plan

    monkeypatch.setattr(_torch_plan, "linearized_hessian", _drifting_linearization)
    model, batch, dense = _setup()
    with caplog.at_level(logging.INFO, logger="slq"):
        op = adapters.torch_hessian(model, batch, hvp=hvp, reuse_primal=True)
    assert "linearized" not in op.hvp
    discarded = [r for r in caplog.records if "discarded" in r.getMessage()]
    if hvp == "forward-over-reverse":  # still honoured: fresh forward-over-reverse products
        assert op.hvp == "forward-over-reverse"
        assert op.hvp_choice.kept == "none"
        assert len(discarded) >= 1, caplog.text
    # "auto" only checks the linearization if it timed faster than the retained graph.
    for record in discarded:
        assert record.levelno == logging.WARNING
        assert "linearized gradient" in record.getMessage()
        assert "differ" in record.getMessage()  # from each other, or from a fresh product
    _assert_exact_and_repeatable(op, dense)


def test_a_wrong_fresh_product_is_refused_for_an_explicit_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from slq.adapters import _torch_plan

    def wrong(fm, batch, tangents, chunk):
        return {name: 2 * t for name, t in tangents.items()}

    monkeypatch.setattr(_torch_plan, "forward_over_reverse", wrong)
    model, batch, _ = _setup()
    with pytest.raises(ValueError, match=r"hvp='forward-over-reverse' cannot .* hvp='auto'"):
        adapters.torch_hessian(model, batch, hvp="forward-over-reverse", reuse_primal=False)
    op = adapters.torch_hessian(model, batch, hvp="auto", reuse_primal=False)
    assert op.hvp == "double-backward"


def test_the_check_uses_the_dtypes_precision() -> None:
    from slq.adapters._torch_verify import tolerance

    assert tolerance(torch.float64) == pytest.approx(torch.finfo(torch.float64).eps ** 0.5)
    assert 1e-3 < tolerance(torch.float32) < 1e-2

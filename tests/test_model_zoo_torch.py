"""The default `torch_hessian` is exact on the models people train, and leaves them untouched.

Each model of `model_zoo` is compared in float64 with a dense Hessian from
``torch.autograd.functional.hessian`` (reverse over reverse, computed once per
model), to a relative error of 1e-10; two products of one vector must be
identical, and every parameter, buffer, flag and the RNG state of the user's
model must be as they were.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import Any

import pytest
from helpers import Backend, need

torch = need(Backend.TORCH)

import model_zoo  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch_models import assert_same_state, dense_hessian, state_of  # noqa: E402

from slq import adapters  # noqa: E402

nn = torch.nn
F = nn.functional
needs_transformers = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="transformers is not installed"
)


def relative_error(op: Any, dense: torch.Tensor, k: int = 3) -> float:
    """The largest relative error of k products; two products of one vector must be identical."""
    v = torch.randn(op.shape[0], k, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    first, second = op.matmat(v), op.matmat(v)
    assert torch.equal(first, second)
    assert torch.equal(op.matvec(v[:, 0]), op.matvec(v[:, 0]))
    exact = dense @ v
    return float(((first - exact).norm(dim=0) / exact.norm(dim=0)).max())


def check(
    model: nn.Module, data: Any, dense: torch.Tensor, build: Callable[[], Any] | None = None
) -> Any:
    before = state_of(model)
    op = build() if build is not None else adapters.torch_hessian(model, data)
    assert op.shape == dense.shape
    assert relative_error(op, dense) <= 1e-10
    assert_same_state(before, state_of(model))
    return op


def cross_entropy(model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
    x, y = batch
    return F.cross_entropy(model(x), y), len(x)


# ------------------------------------------------------------------ residual CNN


@pytest.fixture(scope="module")
def residual_cnn() -> tuple[nn.Module, list[Any]]:
    torch.manual_seed(0)
    model = model_zoo.ResidualCNN().double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 1, 5, 5, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (12,), generator=g)
    model.train()
    with torch.no_grad():  # non-trivial running statistics
        model(x + 0.3)
    model.eval()
    return model, [(x[:6], y[:6]), (x[6:], y[6:])]


@pytest.mark.parametrize("batchnorm", ["train", "eval"])
def test_residual_cnn_with_in_place_adds_and_batchnorm(residual_cnn, batchnorm: str) -> None:
    model, batches = residual_cnn
    dense = dense_hessian(model, batches, cross_entropy, mode=batchnorm)
    build = lambda: adapters.torch_hessian(model, batches, batchnorm=batchnorm)  # noqa: E731
    check(model, batches, dense, build)


@needs_transformers
@pytest.mark.parametrize("batchnorm", ["train", "eval"])
def test_hugging_face_resnet(batchnorm: str) -> None:
    torch.manual_seed(1)
    model = model_zoo.tiny_hf_resnet()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 1, 6, 6, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (6,), generator=g)

    def loss(m: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        return model_zoo.logits_loss(m(batch[0]), batch[1]), len(batch[0])

    dense = dense_hessian(model, [(x, y)], loss, mode=batchnorm)
    # The default loss takes a ModelOutput's logits.
    check(model, (x, y), dense, lambda: adapters.torch_hessian(model, (x, y), batchnorm=batchnorm))


# ------------------------------------------------------------------ attention


@pytest.fixture(scope="module")
def attention() -> dict[str, Any]:
    torch.manual_seed(2)
    model = model_zoo.AttentionBlock().double()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 4, 8, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (5,), generator=g)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    return {"model": model, "x": x, "y": y, "mask": mask}


def math_dense(model: nn.Module, batches: list[Any], loss: Any) -> torch.Tensor:
    with sdpa_kernel(SDPBackend.MATH):  # the reference's own double backward needs it
        return dense_hessian(model, batches, loss)


def test_attention_with_a_causal_mask_runs_by_the_math_kernel(
    attention, caplog: pytest.LogCaptureFixture
) -> None:
    model, x, y = attention["model"], attention["x"], attention["y"]
    dense = math_dense(model, [(x, y)], cross_entropy)
    with caplog.at_level(logging.INFO, logger="slq"):
        check(model, (x, y), dense)
    assert "math kernel" in caplog.text
    # The user's setting is restored: the fused kernel still runs outside slq.
    assert torch.backends.cuda.flash_sdp_enabled()


@pytest.mark.parametrize("hvp", ["forward-over-reverse", "double-backward"])
def test_attention_honours_an_explicit_method(attention, hvp: str) -> None:
    model, x, y = attention["model"], attention["x"], attention["y"]
    dense = math_dense(model, [(x, y)], cross_entropy)
    op = check(model, (x, y), dense, lambda: adapters.torch_hessian(model, (x, y), hvp=hvp))
    assert op.hvp_choice.method == hvp


def test_attention_with_a_padding_mask_in_dict_batches(attention) -> None:
    model, x, y, mask = attention["model"], attention["x"], attention["y"], attention["mask"]
    batches = [{"x": x[:3], "padding_mask": mask[:3], "labels": y[:3]}]
    batches.append({"x": x[3:], "padding_mask": mask[3:], "labels": y[3:]})

    def loss(m: nn.Module, b: dict[str, Any]) -> tuple[torch.Tensor, int]:
        return F.cross_entropy(m(b["x"], b["padding_mask"]), b["labels"]), len(b["x"])

    dense = math_dense(model, batches, loss)
    check(model, batches, dense, lambda: adapters.torch_hessian(model, batches, F.cross_entropy))


# ------------------------------------------------------------------ Hugging Face


@pytest.fixture(scope="module")
def gpt2() -> dict[str, Any]:
    torch.manual_seed(3)
    model = model_zoo.tiny_gpt2()
    ids = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(3))

    def loss(m: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        return model_zoo.lm_loss(m(batch[0]), batch[1]), len(batch[0])

    return {"model": model, "ids": ids, "dense": math_dense(model, [(ids, ids)], loss)}


@needs_transformers
def test_gpt2_with_tied_weights_counted_once(gpt2) -> None:
    model, ids = gpt2["model"], gpt2["ids"]
    assert model.lm_head.weight is model.transformer.wte.weight
    build = lambda: adapters.torch_hessian(model, (ids, ids), model_zoo.lm_loss)  # noqa: E731
    op = check(model, None, gpt2["dense"], build)
    assert op.shape[0] == sum(p.numel() for p in model.parameters())  # unique tensors
    assert "lm_head.weight" not in op.names


@needs_transformers
def test_gpt2_own_loss_warns_of_its_float32_logits(gpt2, caplog: pytest.LogCaptureFixture) -> None:
    model, ids = gpt2["model"], gpt2["ids"]
    with caplog.at_level(logging.WARNING, logger="slq"):
        op = adapters.torch_hessian(model, {"input_ids": ids, "labels": ids})
    assert "the loss is torch.float32 but the parameters are torch.float64" in caplog.text
    v = torch.randn(op.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = gpt2["dense"] @ v
    assert float((op.matvec(v) - exact).norm() / exact.norm()) < 1e-5  # float32's precision


@needs_transformers
def test_bert_with_dict_batches() -> None:
    torch.manual_seed(4)
    model = model_zoo.tiny_bert()
    g = torch.Generator().manual_seed(4)
    mask = torch.tensor([[1] * 5, [1] * 5, [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    batch = {
        "input_ids": torch.randint(0, 13, (4, 5), generator=g),
        "attention_mask": mask,
        "labels": torch.tensor([0, 1, 2, 1]),
    }

    def loss(m: nn.Module, b: dict[str, Any]) -> tuple[torch.Tensor, int]:
        inputs = {k: v for k, v in b.items() if k != "labels"}
        return model_zoo.logits_loss(m(**inputs), b["labels"]), 4

    dense = math_dense(model, [batch], loss)
    check(model, batch, dense, lambda: adapters.torch_hessian(model, batch, model_zoo.logits_loss))


# ------------------------------------------------------------------ recurrent, compiled


def test_lstm() -> None:
    torch.manual_seed(5)
    model = model_zoo.LSTMClassifier().double()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 4, 3, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (6,), generator=g)
    check(model, (x, y), dense_hessian(model, [(x, y)], cross_entropy))


@pytest.mark.parametrize("how", ["torch.compile(model)", "model.compile()"])
def test_a_model_the_user_compiled(how: str) -> None:
    torch.manual_seed(6)
    plain = model_zoo.ResidualCNN().double().eval()
    g = torch.Generator().manual_seed(6)
    x = torch.randn(6, 1, 5, 5, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (6,), generator=g)
    dense = dense_hessian(plain, [(x, y)], cross_entropy, mode="train")
    if how == "model.compile()":
        model = plain
        model.compile()
    else:
        model = torch.compile(plain)
    check(model, (x, y), dense)

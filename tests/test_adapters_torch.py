"""`adapters.torch_hessian`, `torch_ggn`, `torch_layer_hessians` against dense curvature."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import pytest
from helpers import Backend, need
from hypothesis import given
from hypothesis import strategies as st

torch = need(Backend.TORCH)

from torch_models import (  # noqa: E402
    Tied,
    assert_same_state,
    cnn_bn,
    cross_entropy_batch_loss,
    data,
    dense_ggn,
    dense_hessian,
    mlp,
    split,
    state_of,
    warm_batchnorm,
)

import slq  # noqa: E402
from slq import adapters  # noqa: E402

nn = torch.nn
METHODS = ("forward-over-reverse", "double-backward")


def check_products(op, dense: torch.Tensor, rtol: float = 1e-10, k: int = 3) -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.randn(op.shape[0], k, generator=g, dtype=dense.dtype)
    scale = dense.abs().max()
    torch.testing.assert_close(op.matmat(v), dense @ v, rtol=rtol, atol=rtol * scale)
    torch.testing.assert_close(op.matvec(v[:, 0]), dense @ v[:, 0], rtol=rtol, atol=rtol * scale)


def check_density(op, dense: torch.Tensor) -> None:
    exact = np.linalg.eigvalsh(dense.numpy())
    dos = slq.density(op, num_steps=op.shape[0], num_probes=3, seed=0)
    reference = slq.density(dense.numpy(), num_steps=op.shape[0], num_probes=3, seed=0)
    # The same probes give the same recurrence (compared before rounding can decide a
    # near-breakdown differently), and the full run reaches the extreme eigenvalues.
    m = min(20, dos.num_steps, reference.num_steps)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(
        dos.alpha[:, :m], reference.alpha[:, :m], rtol=1e-6, atol=1e-8 * scale
    )
    assert dos.lambda_max == pytest.approx(exact[-1], rel=1e-8, abs=1e-10)
    assert dos.lambda_min == pytest.approx(exact[0], rel=1e-8, abs=1e-8 * scale)


@pytest.mark.parametrize("hvp", METHODS)
@pytest.mark.parametrize("reuse_primal", [False, True])
def test_mlp_matches_the_dense_hessian(hvp: str, reuse_primal: bool) -> None:
    torch.manual_seed(0)
    model = mlp().double()
    x, y = data(40)
    op = adapters.torch_hessian(model, (x, y), hvp=hvp, reuse_primal=reuse_primal)
    dense = dense_hessian(model, [(x, y)], cross_entropy_batch_loss)
    check_products(op, dense)
    check_density(op, dense)


@pytest.mark.parametrize("batchnorm", ["train", "eval"])
@pytest.mark.parametrize("hvp", METHODS)
def test_cnn_with_batchnorm_in_both_modes(batchnorm: str, hvp: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(24, 1, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (24,))
    model = warm_batchnorm(cnn_bn().double(), x + 0.5)
    batches = split(x, y, [12, 12])
    op = adapters.torch_hessian(model, batches, batchnorm=batchnorm, hvp=hvp)
    dense = dense_hessian(model, batches, cross_entropy_batch_loss, mode=batchnorm)
    check_products(op, dense)
    check_density(op, dense)


def test_batchnorm_modes_differ_and_running_stats_never_change() -> None:
    torch.manual_seed(2)
    x, y = torch.randn(16, 1, 6, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    model = warm_batchnorm(cnn_bn().double(), x + 1.0)
    before = state_of(model)
    g = torch.Generator().manual_seed(0)  # the global RNG is part of the state checked
    v = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64, generator=g)
    train = adapters.torch_hessian(model, (x, y), batchnorm="train").matvec(v)
    evaluated = adapters.torch_hessian(model, (x, y), batchnorm="eval").matvec(v)
    assert not torch.allclose(train, evaluated)
    assert_same_state(before, state_of(model))


def test_tied_weights() -> None:
    torch.manual_seed(3)
    model = Tied().double()
    x, y = data(30)
    op = adapters.torch_hessian(model, (x, y))
    assert op.names == ("a.weight", "a.bias", "b.bias", "head.weight", "head.bias")
    check_products(op, dense_hessian(model, [(x, y)], cross_entropy_batch_loss))


@pytest.mark.parametrize("as_objects", [False, True])
def test_parameter_subset(as_objects: bool) -> None:
    torch.manual_seed(4)
    model = mlp((4, 5, 5, 3)).double()
    x, y = data(25)
    names = ["2.weight", "0.bias"]
    params = [dict(model.named_parameters())[n] for n in names] if as_objects else names
    op = adapters.torch_hessian(model, (x, y), params=params)
    assert op.names == ("0.bias", "2.weight")  # named_parameters() order
    dense = dense_hessian(model, [(x, y)], cross_entropy_batch_loss, names=["0.bias", "2.weight"])
    check_products(op, dense)


def test_mse_loss_never_reaches_a_crashing_linearize() -> None:
    # torch 2.13's linearize(grad(mse_loss)) segfaults; eager jvp(grad) raises instead, and
    # the adapter must not trace what it cannot run eagerly (a crash here kills pytest).
    torch.manual_seed(6)
    model = mlp((4, 6, 1)).double()
    x, _ = data(30)
    target = torch.sin(x.sum(dim=1, keepdim=True))
    op = adapters.torch_hessian(model, (x, target), torch.nn.functional.mse_loss)

    def batch_loss(m, batch):
        return torch.nn.functional.mse_loss(m(batch[0]), batch[1]), batch[0].shape[0]

    check_products(op, dense_hessian(model, [(x, target)], batch_loss))


def test_custom_batch_loss_with_dict_batches() -> None:
    torch.manual_seed(5)
    model = mlp((4, 6, 1)).double()
    x, _ = data(30)
    target = torch.sin(x.sum(dim=1, keepdim=True))
    batches = [{"x": x[:10], "t": target[:10]}, {"x": x[10:], "t": target[10:]}]

    def batch_loss(m, batch):
        return ((m(batch["x"]) - batch["t"]) ** 2).mean(), batch["x"].shape[0]

    op = adapters.torch_hessian(model, batches, batch_loss=batch_loss)
    assert op.num_examples == 30 and op.num_batches == 2
    check_products(op, dense_hessian(model, batches, batch_loss))


@pytest.mark.parametrize("hvp", METHODS)
def test_float32(hvp: str) -> None:
    torch.manual_seed(6)
    model = mlp()
    x, y = data(40, dtype=torch.float32)
    op = adapters.torch_hessian(model, (x, y), hvp=hvp)
    assert op.dtype == torch.float32
    dense = dense_hessian(model.double(), [(x.double(), y)], cross_entropy_batch_loss).float()
    check_products(op, dense, rtol=1e-4)
    dos = slq.density(op, num_steps=op.shape[0], num_probes=2, seed=0)
    exact = np.linalg.eigvalsh(dense.double().numpy())
    assert dos.lambda_max == pytest.approx(exact[-1], rel=1e-4)


ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus}


@given(
    widths=st.lists(st.integers(2, 5), min_size=1, max_size=2),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    bn=st.sampled_from(["none", "train", "eval"]),
    n=st.integers(6, 24),
    pieces=st.integers(1, 3),
    hvp=st.sampled_from(["auto", *METHODS]),
    seed=st.integers(0, 1000),
)
def test_drawn_networks_match_their_dense_hessian(
    widths, activation, bn, n, pieces, hvp, seed
) -> None:
    torch.manual_seed(seed)
    model = mlp((3, *widths, 2), ACTIVATIONS[activation], bn=bn != "none").double()
    x, y = data(n, features=3, classes=2, seed=seed)
    if bn != "none":
        warm_batchnorm(model, x)
    cuts = np.linspace(0, n, pieces + 1).astype(int)
    sizes = [int(b - a) for a, b in itertools.pairwise(cuts) if b - a > 1]
    batches = split(x, y, sizes) if sum(sizes) == n else [(x, y)]
    mode = "eval" if bn == "none" else bn
    op = adapters.torch_hessian(model, batches, batchnorm=mode, hvp=hvp)
    dense = dense_hessian(model, batches, cross_entropy_batch_loss, mode=mode)
    check_products(op, dense, rtol=1e-9)
    exact = np.linalg.eigvalsh(dense.numpy())
    dos = slq.density(op, num_steps=op.shape[0], num_probes=2, seed=seed)
    scale = max(np.abs(exact).max(), 1e-12)
    assert dos.lambda_max == pytest.approx(exact[-1], abs=1e-7 * scale)
    assert dos.lambda_min == pytest.approx(exact[0], abs=1e-7 * scale)


@pytest.mark.parametrize("sizes", [[40], [10, 30], [7, 13, 20], [1] * 40])
def test_operator_does_not_depend_on_the_batch_split(sizes: list[int]) -> None:
    torch.manual_seed(7)
    model = mlp().double()
    x, y = data(40)
    whole = adapters.torch_hessian(model, (x, y))
    parts = adapters.torch_hessian(model, split(x, y, sizes))
    v = torch.randn(whole.shape[0], 2, dtype=torch.float64)
    torch.testing.assert_close(parts.matmat(v), whole.matmat(v), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dropout", [False, True])
def test_state_is_preserved_and_products_are_deterministic(dropout: bool) -> None:
    torch.manual_seed(8)
    model = nn.Sequential(
        nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.3), nn.Tanh(), nn.Linear(6, 3)
    )
    model.double().train()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    model[4].bias.requires_grad_(False)
    x, y = data(32)
    before = state_of(model)
    op = adapters.torch_hessian(model, split(x, y, [16, 16]), dropout=dropout)
    v = torch.randn(op.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    first, second = op.matvec(v), op.matvec(v)
    assert torch.equal(first, second)
    slq.density(op, num_steps=8, num_probes=2, seed=0)
    assert_same_state(before, state_of(model))
    assert op.names == ("0.weight", "0.bias", "1.weight", "1.bias", "4.weight")


def test_dropout_on_changes_the_operator_but_keeps_it_symmetric() -> None:
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Tanh(), nn.Linear(8, 3)).double()
    x, y = data(20)
    off = adapters.torch_hessian(model, (x, y))
    on = adapters.torch_hessian(model, (x, y), dropout=True, seed=3)
    u, v = torch.randn(2, off.shape[0], dtype=torch.float64)
    assert not torch.allclose(on.matvec(v), off.matvec(v))
    assert float(u @ on.matvec(v)) == pytest.approx(float(v @ on.matvec(u)), rel=1e-10)


def test_flatten_and_unflatten_round_trip() -> None:
    model = mlp().double()
    x, y = data(10)
    op = adapters.torch_hessian(model, (x, y))
    v = torch.arange(op.shape[0], dtype=torch.float64)
    parts = op.unflatten(v)
    assert list(parts) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert parts["0.weight"].shape == (6, 4)
    assert torch.equal(op.flatten(parts), v)
    with pytest.raises(ValueError, match=r"missing \['2.bias'\]"):
        op.flatten({k: t for k, t in parts.items() if k != "2.bias"})


@pytest.mark.parametrize("reuse_primal", [None, False])
def test_auto_logs_its_choice(caplog: pytest.LogCaptureFixture, reuse_primal) -> None:
    from slq.adapters._torch_plan_cache import clear_plans

    clear_plans()  # measured here, not remembered from another test
    model = mlp().double()
    with caplog.at_level(logging.INFO, logger="slq"):
        op = adapters.torch_hessian(model, data(20), hvp="auto", reuse_primal=reuse_primal)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert op.hvp in message
    assert "time per product / gradient" in message
    if reuse_primal is False:  # fresh products only: both methods were timed
        assert "forward-over-reverse " in message
        assert "double-backward " in message
        assert op.hvp in ("forward-over-reverse", "double-backward")
    else:  # the only batch is kept, by the retained graph: nothing else is timed
        assert "graph " in message
        assert "linearized " not in message and "double-backward " not in message
        assert op.hvp.startswith("retained graph")


def test_chunked_matmat_equals_unchunked() -> None:
    model = mlp().double()
    x, y = data(20)
    v = torch.randn(sum(p.numel() for p in model.parameters()), 5, dtype=torch.float64)
    whole = adapters.torch_hessian(model, (x, y), hvp="forward-over-reverse", reuse_primal=False)
    chunked = adapters.torch_hessian(
        model, (x, y), hvp="forward-over-reverse", reuse_primal=False, chunk_size=2
    )
    torch.testing.assert_close(chunked.matmat(v), whole.matmat(v), rtol=1e-12, atol=1e-13)


def test_streamed_data_equals_cached_data() -> None:
    model = mlp().double()
    x, y = data(30)
    batches = split(x, y, [10, 10, 10])
    cached = adapters.torch_hessian(model, batches, cache_data=True)
    streamed = adapters.torch_hessian(model, batches, cache_data=False, reuse_primal=False)
    v = torch.randn(cached.shape[0], dtype=torch.float64)
    torch.testing.assert_close(streamed.matvec(v), cached.matvec(v), rtol=1e-12, atol=1e-13)


def test_compiled_products_match() -> None:
    model = mlp().double()
    x, y = data(16)
    plain = adapters.torch_hessian(model, (x, y), hvp="forward-over-reverse", reuse_primal=False)
    compiled = adapters.torch_hessian(
        model, (x, y), hvp="forward-over-reverse", reuse_primal=False, compile=True
    )
    v = torch.randn(plain.shape[0], dtype=torch.float64)
    torch.testing.assert_close(compiled.matvec(v), plain.matvec(v), rtol=1e-10, atol=1e-12)


def test_layer_hessians_are_the_diagonal_blocks() -> None:
    torch.manual_seed(10)
    model = mlp((4, 5, 3)).double()
    x, y = data(20)
    dense = dense_hessian(model, [(x, y)], cross_entropy_batch_loss)
    blocks = adapters.torch_layer_hessians(model, (x, y))
    assert list(blocks) == ["0", "2"]
    start = 0
    for op in blocks.values():
        n = op.shape[0]
        check_products(op, dense[start : start + n, start : start + n])
        start += n
    per_parameter = adapters.torch_layer_hessians(model, (x, y), by="parameter")
    assert list(per_parameter) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_ggn_matches_dense_and_is_positive_semidefinite() -> None:
    torch.manual_seed(11)
    model = mlp((4, 6, 3)).double()
    x, y = data(30)
    batches = split(x, y, [12, 18])
    op = adapters.torch_ggn(model, batches)
    dense = dense_ggn(model, batches, nn.functional.cross_entropy)
    check_products(op, dense)
    assert np.linalg.eigvalsh(dense.numpy()).min() > -1e-12
    dos = slq.density(op, num_steps=op.shape[0], num_probes=2, seed=0)
    assert dos.lambda_min > -1e-10


def test_random_data_pipeline_is_refused() -> None:
    model = mlp().double()

    class Shuffled:
        def __init__(self) -> None:
            self.calls = 0

        def __iter__(self):
            self.calls += 1
            yield data(10, seed=self.calls)

    with pytest.raises(
        ValueError, match=r"batch 0 of the data changed between passes \(its element"
    ):
        adapters.torch_hessian(model, Shuffled(), cache_data=False)
    assert adapters.torch_hessian(model, Shuffled(), cache_data=True).num_examples == 10


class Augmented:
    """Re-iterable batches, batch 2 with new random noise on every pass (random augmentation)."""

    def __init__(self) -> None:
        self.batches = split(*data(30), [10, 10, 10])
        self.rng = np.random.default_rng(0)

    def __iter__(self):
        for i, (x, y) in enumerate(self.batches):
            noise = torch.as_tensor(self.rng.normal(0, 0.1, x.shape)) if i == 2 else 0
            yield x + noise, y


def test_data_that_changes_between_passes_is_refused_naming_the_batch() -> None:
    op = adapters.torch_hessian(mlp().double(), Augmented(), cache_data=False, reuse_primal=False)
    v = torch.ones(op.shape[0], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"batch 2 of the data changed between passes \(its elem"):
        op.matvec(v)
    for build in (adapters.torch_hessian, adapters.torch_ggn):
        with pytest.raises(ValueError, match=r"data must be re-iterable .* a generator is used up"):
            build(mlp().double(), (b for b in split(*data(20), [10, 10])), cache_data=False)


@pytest.mark.parametrize("seeded", [False, True])
def test_a_shuffling_dataloader_reads_one_order_and_leaves_every_generator_alone(
    seeded: bool,
) -> None:
    # A DataLoader draws its order (and its workers' seeds) from torch's generators:
    # every pass replays the first pass's draws, and the caller's states never move.
    model = mlp().double()
    x, y = data(40)
    generator = torch.Generator().manual_seed(3) if seeded else None
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True, generator=generator
    )
    states = lambda: [torch.get_rng_state(), *([generator.get_state()] if seeded else [])]  # noqa: E731
    before = states()
    op = adapters.torch_hessian(model, loader, cache_data=False, reuse_primal=False)
    v = torch.randn(op.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    first = op.matvec(v)
    assert all(torch.equal(a, b) for a, b in zip(before, states(), strict=True))
    torch.rand(3, generator=generator)  # the caller draws between products
    assert torch.equal(op.matvec(v), first)
    whole = adapters.torch_hessian(model, (x, y))
    torch.testing.assert_close(first, whole.matvec(v), rtol=1e-12, atol=1e-13)


class Unread:
    """Data that fails the test if it is read: every argument is checked before."""

    def __iter__(self):
        raise AssertionError("data was read before the arguments were checked")


COMMON_BAD_ARGUMENTS = [
    ("model", "mlp", TypeError, "model must be a torch.nn.Module, got str"),
    ("data", None, TypeError, "data must be one batch or an iterable of batches"),
    ("data", torch.utils.data.TensorDataset(torch.ones(2)), TypeError, "got TensorDataset"),
    ("loss_fn", "cross_entropy", TypeError, r"loss_fn must be callable as loss_fn\(outputs"),
    ("batchnorm", "yes", ValueError, "batchnorm must be one of 'train', 'eval', got 'yes'"),
    ("chunk_size", 2.5, TypeError, "chunk_size must be an integer >= 1, got 2.5"),
    ("cache_data", "yes", TypeError, "cache_data must be True, False or None, got 'yes'"),
    ("dropout", "yes", TypeError, "dropout must be True or False, got 'yes'"),
    ("seed", -1, ValueError, r"seed must be in \[0, 2\*\*64\), got -1"),
    ("seed", "0", TypeError, "seed must be an integer, got '0'"),
    ("distributed", "yes", TypeError, "distributed must be True or False, got 'yes'"),
]
HESSIAN_BAD_ARGUMENTS = [
    ("batch_loss", 3, TypeError, r"batch_loss must be callable as batch_loss\(model, batch\)"),
    ("hvp", "yes", ValueError, "hvp must be one of 'auto'"),
    ("reuse_primal", "yes", TypeError, "reuse_primal must be True, False or None, got 'yes'"),
    ("compile", "yes", TypeError, "compile must be True or False, got 'yes'"),
]
PARAMS_BAD_ARGUMENTS = [
    ("params", "0.weight", TypeError, r"params must be a list of parameter names .*, got str"),
    ("params", nn.Parameter(torch.ones(2)), TypeError, r"\(wrap one in a list\), got Parameter"),
]


@pytest.mark.parametrize(
    ("build", "name", "value", "error", "message"),
    [
        *[("torch_hessian", *case) for case in COMMON_BAD_ARGUMENTS],
        *[("torch_hessian", *case) for case in HESSIAN_BAD_ARGUMENTS + PARAMS_BAD_ARGUMENTS],
        *[("torch_ggn", *case) for case in COMMON_BAD_ARGUMENTS + PARAMS_BAD_ARGUMENTS],
        *[("torch_layer_hessians", *case) for case in COMMON_BAD_ARGUMENTS],
        *[("torch_layer_hessians", *case) for case in HESSIAN_BAD_ARGUMENTS],
        ("torch_layer_hessians", "by", "layer", ValueError, "by must be one of 'module'"),
        ("torch_layer_hessians", "params", ["0.weight"], TypeError, r"unknown options .*params"),
    ],
)
def test_every_argument_is_checked_before_the_data_is_read(
    build: str, name: str, value: Any, error: type, message: str
) -> None:
    arguments = {"model": mlp().double(), "data": Unread(), name: value}
    with pytest.raises(error, match=message):
        getattr(adapters, build)(arguments.pop("model"), arguments.pop("data"), **arguments)


@pytest.mark.parametrize("hvp", METHODS)
def test_tensors_and_contexts_a_real_program_leaves(hvp: str) -> None:
    model = mlp().double()
    x, y = data(20)
    expected_op = adapters.torch_hessian(model, (x, y), hvp=hvp)
    v = torch.randn(expected_op.shape[0], dtype=torch.float64)
    expected = expected_op.matvec(v)

    def product(batch=(x, y), of=model):
        return adapters.torch_hessian(of, batch, hvp=hvp).matvec(v)

    with torch.inference_mode():
        made_in_inference = (x.clone(), y.clone())
        inference_model = mlp().double()
        inference_model.load_state_dict(model.state_dict())
    products = {
        "inputs that require grad": product((x.clone().requires_grad_(), y)),
        "inputs with a graph": product((x * torch.ones((), requires_grad=True), y)),
        "inputs made under inference_mode": product(made_in_inference),
        "a model made under inference_mode": product(of=inference_model),
    }
    with torch.no_grad():
        products["built and used under no_grad"] = product()
    with torch.inference_mode():
        products["built and used under inference_mode"] = product()
        products["used under inference_mode"] = expected_op.matvec(v.clone())
    for what, out in products.items():
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-13, msg=what)
        assert not out.requires_grad and not out.is_inference(), what


def test_autocast_around_the_operator_is_left_out_of_its_products(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = mlp()  # float32: what autocast would run in bfloat16
    x, y = data(20, dtype=torch.float32)
    op = adapters.torch_hessian(model, (x, y))
    v = torch.randn(op.shape[0])
    expected = op.matvec(v)
    with torch.autocast("cpu", dtype=torch.bfloat16), caplog.at_level(logging.WARNING, "slq"):
        inside = op.matvec(v)
        built_inside = adapters.torch_hessian(model, (x, y), reuse_primal=True)
    torch.testing.assert_close(inside, expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(built_inside.matvec(v), expected, rtol=1e-6, atol=1e-7)
    assert "torch_hessian: called inside torch.autocast('cpu'): slq's products leave it" in (
        caplog.text
    )


class HalfHead(nn.Module):
    """A float32 body and a float16 head: outputs in another dtype than the body's parameters."""

    def __init__(self, frozen_body: bool = False) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(4, 6), nn.Linear(6, 3)
        if frozen_body:  # then the head is float32 and trained, the body float16 and fixed
            self.body.half().requires_grad_(False)
        else:
            self.head.half().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.body(x.to(self.body.weight.dtype)))
        return self.head(hidden.to(self.head.weight.dtype)).float()


@pytest.mark.parametrize("frozen_body", [False, True])
def test_a_model_computing_in_less_precision_than_its_parameters_warns(
    caplog: pytest.LogCaptureFixture, frozen_body: bool
) -> None:
    x, y = data(8, dtype=torch.float32)
    with caplog.at_level(logging.WARNING, "slq"):
        adapters.torch_hessian(HalfHead(frozen_body), (x, y))
    warned = "the model computes in torch.float16 where it depends on the parameters" in (
        caplog.text
    )
    assert warned is not frozen_body  # a fixed float16 layer before θ costs θ no precision


def test_nan_on_a_later_batch_names_it() -> None:
    model = mlp().double()
    x, y = data(30)
    x[25, 0] = float("nan")
    op = adapters.torch_hessian(model, split(x, y, [10, 10, 10]), reuse_primal=False)
    with pytest.raises(FloatingPointError, match=r"not finite on batch 2 \(the loss is nan\)"):
        op.matvec(torch.ones(op.shape[0], dtype=torch.float64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None])
def test_a_product_is_finite_only_if_every_entry_of_every_tensor_is(bad: float | None) -> None:
    from slq.adapters._torch_func import all_finite

    tensors = [
        torch.zeros(0),
        torch.ones(3, 4),
        torch.linspace(-1e300, 1e300, 5000, dtype=torch.float64),
    ]
    if bad is not None:
        tensors[2][4321] = bad
    assert bool(all_finite(tensors)) is (bad is None)


def test_nan_loss_on_the_first_batch() -> None:
    x, y = data(10)
    x[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="the loss is nan on batch 0"):
        adapters.torch_hessian(mlp().double(), (x, y))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": []}, ValueError, "data is empty"),
        (
            {"params": ["nope.weight"]},
            ValueError,
            "params names 'nope.weight', which is not a parameter of the model; "
            "its parameters are: 0.weight",
        ),
        (
            {"params": [torch.nn.Parameter(torch.ones(2))]},
            ValueError,
            "params contains a Parameter that is not a parameter of the model",
        ),
        ({"params": []}, ValueError, "the model has no trainable parameters"),
        (
            {"loss_fn": lambda out, t: nn.functional.cross_entropy(out, t, reduction="none")},
            ValueError,
            r"the loss must be a scalar tensor \(the batch mean\), got \(10,\)",
        ),
        (
            {"batchnorm": "population"},
            ValueError,
            "batchnorm must be one of 'train', 'eval', got 'population'",
        ),
        ({"hvp": "finite-differences"}, ValueError, "hvp must be one of 'auto'"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1, got 0"),
        ({"data": [torch.ones(3)]}, TypeError, r"a batch must be an \(inputs, targets\) pair"),
        (
            {"batch_loss": cross_entropy_batch_loss, "loss_fn": nn.functional.cross_entropy},
            TypeError,
            "pass loss_fn or batch_loss, not both",
        ),
    ],
)
def test_bad_construction(kwargs: dict, error: type, message: str) -> None:
    kwargs = {"data": data(10), **kwargs}
    with pytest.raises(error, match=message):
        adapters.torch_hessian(mlp().double(), **kwargs)


def test_no_trainable_parameters() -> None:
    model = mlp().double().requires_grad_(False)
    with pytest.raises(ValueError, match="the model has no trainable parameters"):
        adapters.torch_hessian(model, data(10))


def test_not_a_module() -> None:
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, got function"):
        adapters.torch_hessian(lambda x: x, data(10))


@pytest.mark.parametrize(
    ("vector", "error", "message"),
    [
        (np.ones(51), TypeError, "expected a torch.Tensor, got ndarray"),
        (
            torch.ones(50, dtype=torch.float64),
            ValueError,
            r"expected a vector of shape \(51,\), got \(50,\)",
        ),
        (
            torch.ones(51, dtype=torch.float32),
            TypeError,
            "expected dtype torch.float64 .the parameters'., got torch.float32",
        ),
        (
            torch.ones(51, dtype=torch.float64, device="meta"),
            ValueError,
            "expected a vector on cpu .the parameters'., got one on meta",
        ),
    ],
)
def test_bad_vectors(vector, error: type, message: str) -> None:
    op = adapters.torch_hessian(mlp().double(), data(10))
    assert op.shape == (51, 51)
    with pytest.raises(error, match=message):
        op.matvec(vector)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_stays_on_the_gpu() -> None:
    model = mlp().double().cuda()
    x, y = data(40)
    op = adapters.torch_hessian(model, (x, y))  # inputs on the CPU are moved once
    assert op.device.type == "cuda"
    result = slq.lanczos(
        op, torch.ones(op.shape[0], 2, dtype=torch.float64, device="cuda"), 10, return_basis=True
    )
    assert result.basis.device.type == "cuda"
    dense = dense_hessian(model.cpu(), [(x, y)], cross_entropy_batch_loss)
    check_products_on = op.matvec(torch.ones(op.shape[0], dtype=torch.float64, device="cuda")).cpu()
    torch.testing.assert_close(
        check_products_on, dense @ torch.ones(op.shape[0], dtype=torch.float64)
    )


@pytest.mark.parametrize("batched", [False, True])
def test_linearized_products_match_the_dense_hessian(batched: bool) -> None:
    from slq.adapters._torch_func import linearized_hessian, linearized_products

    torch.manual_seed(12)
    model = mlp().double()
    x, y = data(30)
    op = adapters.torch_hessian(model, (x, y), hvp="forward-over-reverse", reuse_primal=True)
    assert op.hvp.startswith("linearized gradient")
    fm = op._fm
    dense = dense_hessian(model, [(x, y)], cross_entropy_batch_loss)
    v = torch.randn(op.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rows = v.T
    tangents = {
        name: part.reshape(3, *op.shapes[name])
        for name, part in zip(op.names, rows.split(op._sizes, dim=1), strict=True)
    }
    out = linearized_products(linearized_hessian(fm, (x, y)), tangents, batched, chunk=None)
    flat = torch.cat([out[name].reshape(3, -1) for name in op.names], dim=1).T
    torch.testing.assert_close(flat, dense @ v, rtol=1e-10, atol=1e-12)


class LegacyTanh(torch.autograd.Function):
    """An autograd.Function without setup_context: autograd can differentiate it twice,
    torch.func transforms refuse it."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class LegacyActivation(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body[2](LegacyTanh.apply(self.body[0](x)))


def test_auto_falls_back_to_double_backward_when_torch_func_cannot_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    torch.manual_seed(13)
    model = LegacyActivation().double()
    x, y = data(20)
    with caplog.at_level(logging.INFO, logger="slq"):
        op = adapters.torch_hessian(model, split(x, y, [10, 10]), reuse_primal=False)
        kept = adapters.torch_hessian(model, (x, y))
    assert op.hvp == "double-backward"
    assert kept.hvp.startswith("retained graph")
    assert "forward-over-reverse unavailable" in caplog.text
    dense = dense_hessian(model, split(x, y, [10, 10]), cross_entropy_batch_loss)
    check_products(op, dense)
    check_products(kept, dense)
    # An explicit method is honoured or refused, naming the option and the fix.
    with pytest.raises(ValueError, match=r"hvp='forward-over-reverse' cannot .* hvp='auto'"):
        adapters.torch_hessian(model, (x, y), hvp="forward-over-reverse", reuse_primal=False)
    with pytest.raises(ValueError, match=r"hvp='forward-over-reverse' cannot .* hvp='auto'"):
        adapters.torch_hessian(model, (x, y), hvp="forward-over-reverse")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_with_the_basis_offloaded_to_the_host() -> None:
    model = mlp().double().cuda()
    op = adapters.torch_hessian(model, data(40))
    v0 = torch.ones(op.shape[0], 2, dtype=torch.float64, device="cuda")
    on_device = slq.lanczos(op, v0, 20, reorthogonalize="partial")
    offloaded = slq.lanczos(
        op, v0, 20, reorthogonalize="partial", offload_basis=True, return_basis=True
    )
    assert isinstance(offloaded.basis, np.ndarray)  # the basis is host memory
    np.testing.assert_allclose(offloaded.alpha, on_device.alpha, rtol=1e-10, atol=1e-12)

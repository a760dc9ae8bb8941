"""vecgrad.loss_jacobian and vecgrad.per_sample_grads against per-sample loops."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from conftest import DTYPE
from torch import nn
from torch.nn import functional as F
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")


def logistic_data(
    n: int = 6, d: int = 3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    w = torch.randn(d, dtype=DTYPE, requires_grad=True)
    b = torch.randn((), dtype=DTYPE, requires_grad=True)
    x = torch.randn(n, d, dtype=DTYPE)
    y = torch.randint(0, 2, (n,)).to(DTYPE)
    return w, b, x, y


def logistic_losses(
    w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    return F.binary_cross_entropy(torch.sigmoid(x @ w + b), y, reduction="none")


# --- loss_jacobian ------------------------------------------------------------------------


def test_logistic_regression_closed_form() -> None:
    # d BCE(sigmoid(z_i), y_i) / dz_i = sigmoid(z_i) - y_i, with z_i = x_i . w + b
    w, b, x, y = logistic_data()
    grads = vg.loss_jacobian(logistic_losses(w, b, x, y), {"w": w, "b": b})
    grad_w, grad_b = grads["w"], grads["b"]
    residual = torch.sigmoid(x @ w + b).detach() - y
    assert_close(grad_w, residual[:, None] * x)
    assert_close(grad_b, residual)


def test_matches_loop_of_backward_passes() -> None:
    w, b, x, y = logistic_data(n=5)
    grad_w, grad_b = vg.loss_jacobian(logistic_losses(w, b, x, y), [("w", w), ("b", b)]).values()
    for i in range(5):
        loss_i = logistic_losses(w, b, x[i : i + 1], y[i : i + 1])[0]
        gw, gb = torch.autograd.grad(loss_i, (w, b))
        assert_close(grad_w[i], gw)
        assert_close(grad_b[i], gb)


def test_rows_sum_to_n_times_gradient_of_mean() -> None:
    w, b, x, y = logistic_data(n=8)
    losses = logistic_losses(w, b, x, y)
    mean_grads = torch.autograd.grad(losses.mean(), (w, b), retain_graph=True)
    rows = vg.loss_jacobian(losses, {"w": w, "b": b})
    for r, g in zip(rows.values(), mean_grads, strict=True):
        assert_close(r.sum(0), 8 * g)


def test_module_and_named_parameters_and_grads_untouched() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(DTYPE)
    model[0].weight.grad = torch.full_like(model[0].weight, 7.0)
    before = model[0].weight.grad.clone()
    x = torch.randn(5, 3, dtype=DTYPE)
    target = torch.randn(5, 1, dtype=DTYPE)
    losses = ((model(x) - target) ** 2).squeeze(1)
    grads = vg.loss_jacobian(losses, model, retain_graph=True)
    assert_close(vg.loss_jacobian(losses, model.named_parameters()), grads)
    assert {n: g.shape for n, g in grads.items()} == {
        n: (5, *p.shape) for n, p in model.named_parameters()
    }
    assert_close(model[0].weight.grad, before)
    assert all(p.grad is None for p in list(model.parameters())[1:])
    for i in range(5):
        model.zero_grad(set_to_none=True)
        ((model(x[i : i + 1]) - target[i : i + 1]) ** 2).sum().backward()
        for name, p in model.named_parameters():
            assert_close(grads[name][i], p.grad)


def test_unused_parameter_gets_zeros() -> None:
    w, b, x, y = logistic_data()
    unused = torch.randn(2, 2, dtype=DTYPE, requires_grad=True)
    grads = vg.loss_jacobian(logistic_losses(w, b, x, y), {"w": w, "unused": unused})
    assert grads["w"].shape == (6, 3)
    assert_close(grads["unused"], torch.zeros(6, 2, 2, dtype=DTYPE))


def test_frozen_module_parameters_are_left_out() -> None:
    model = nn.Linear(3, 2).to(DTYPE)
    model.bias.requires_grad_(False)
    losses = model(torch.randn(4, 3, dtype=DTYPE)).sum(1)
    grads = vg.loss_jacobian(losses, model)
    assert list(grads) == ["weight"]
    assert not grads["weight"].requires_grad


def test_create_graph_makes_the_rows_differentiable() -> None:
    w, b, x, y = logistic_data()
    params = {"w": w, "b": b}
    rows = vg.loss_jacobian(logistic_losses(w, b, x, y), params, create_graph=True)
    assert all(r.requires_grad for r in rows.values())
    # The reference: one autograd.grad per loss, each with create_graph.
    losses = logistic_losses(w, b, x, y)
    ref = [torch.autograd.grad(loss, (w, b), create_graph=True) for loss in losses]
    penalty = sum(r.square().sum() for r in rows.values())
    ref_penalty = sum(g.square().sum() for grads in ref for g in grads)
    assert_close(torch.autograd.grad(penalty, (w, b)), torch.autograd.grad(ref_penalty, (w, b)))
    plain = vg.loss_jacobian(logistic_losses(w, b, x, y), params)
    assert not any(r.requires_grad for r in plain.values())


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 6, 100])
def test_chunk_size_does_not_change_result(chunk_size: int) -> None:
    w, b, x, y = logistic_data()
    params = {"w": w, "b": b}
    expected = vg.loss_jacobian(logistic_losses(w, b, x, y), params)
    result = vg.loss_jacobian(logistic_losses(w, b, x, y), params, chunk_size=chunk_size)
    assert_close(result, expected)


def test_graph_freed_unless_retained() -> None:
    w, b, x, y = logistic_data()
    losses = logistic_losses(w, b, x, y)
    vg.loss_jacobian(losses, {"w": w, "b": b}, chunk_size=2, retain_graph=True)
    losses.sum().backward()  # graph still usable
    assert w.grad is not None
    losses = logistic_losses(w, b, x, y)
    vg.loss_jacobian(losses, {"w": w, "b": b}, chunk_size=2)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        losses.sum().backward()


@pytest.mark.parametrize(
    ("losses", "error", "match"),
    [
        ([1.0, 2.0], TypeError, r"`losses` must be a Tensor; got list"),
        ("loss", TypeError, r"`losses` must be a Tensor; got str"),
    ],
)
def test_losses_type_errors(losses: object, error: type[Exception], match: str) -> None:
    w = torch.randn(2, requires_grad=True)
    with pytest.raises(error, match=r"vecgrad\.loss_jacobian: " + match):
        vg.loss_jacobian(losses, {"w": w})  # type: ignore[arg-type]


def test_losses_value_errors() -> None:
    w = torch.randn(3, requires_grad=True)
    x = torch.randn(4, 3)
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.loss_jacobian: `losses` must be a non-empty 1-D Tensor, one loss per "
        r"sample; got shape \(4, 1\)",
    ):
        vg.loss_jacobian((x @ w)[:, None], {"w": w})
    with pytest.raises(
        ValueError, match=r"`losses` must be a non-empty 1-D Tensor.*got shape \(\)"
    ):
        vg.loss_jacobian((x @ w).sum(), {"w": w})
    with pytest.raises(
        ValueError, match=r"`losses` must be a non-empty 1-D Tensor.*got shape \(0,\)"
    ):
        vg.loss_jacobian((x @ w)[:0], {"w": w})
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.loss_jacobian: `losses` must be attached to an autograd graph .*"
        r"requires_grad=False",
    ):
        vg.loss_jacobian((x @ w).detach(), {"w": w})
    with torch.no_grad():
        no_graph = x @ w
    with pytest.raises(ValueError, match=r"`losses` must be attached to an autograd graph"):
        vg.loss_jacobian(no_graph, {"w": w})
    with pytest.raises(
        TypeError, match=r"`losses` must have a real floating-point dtype \(.*\); got torch\.int64"
    ):
        vg.loss_jacobian(torch.arange(3), {"w": w})


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ([], ValueError, r"`params` must contain at least one Tensor; got none"),
        (iter(()), ValueError, r"`params` must contain at least one Tensor; got none"),
        (nn.Linear(2, 1).requires_grad_(False), ValueError, r"`params` must contain at least one"),
        (
            3,
            TypeError,
            r"`params` must be an nn\.Module, a mapping name -> Tensor or an iterable of "
            r"\(name, Tensor\) pairs such as model\.named_parameters\(\); got int\.",
        ),
        (
            torch.ones(2, requires_grad=True),
            TypeError,
            r"`params` must be an nn\.Module, .* got Tensor\.",
        ),
        (
            {0: torch.ones(2, requires_grad=True)},
            TypeError,
            r"`params` must be an nn\.Module, .* got the key 0 of type int\.",
        ),
        (
            torch.ones(2).to_sparse().requires_grad_(),
            TypeError,
            r"`params` must be an nn\.Module",
        ),
        (
            {"w": torch.ones(2).to_sparse().requires_grad_()},
            TypeError,
            r"`params\['w'\]` must be a dense \(strided\) Tensor; got layout torch\.sparse_coo\.",
        ),
        ({"w": None}, TypeError, r"`params\['w'\]` must be a Tensor; got NoneType"),
        ([("w", 1.0)], TypeError, r"`params\['w'\]` must be a Tensor; got float"),
        (
            {"w": torch.ones(2)},
            ValueError,
            r"`params\['w'\]` must require grad; got a Tensor of shape \(2,\) "
            r"with requires_grad=False",
        ),
        ([None], TypeError, r"`params` must be an nn\.Module, .* holding NoneType\."),
        (
            [torch.ones(2, requires_grad=True), torch.ones(2)],
            TypeError,
            r"`params` must be an nn\.Module, .* holding Tensor\.",
        ),
    ],
)
def test_params_errors(params: object, error: type[Exception], match: str) -> None:
    w = torch.randn(2, requires_grad=True)
    with pytest.raises(error, match=r"vecgrad\.loss_jacobian: " + match):
        vg.loss_jacobian(torch.stack([w.sum(), w.prod()]), params)  # type: ignore[arg-type]


def test_loss_jacobian_chunk_size_errors() -> None:
    w = torch.randn(2, requires_grad=True)
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.loss_jacobian: `chunk_size` must be None or a positive int; got 0",
    ):
        vg.loss_jacobian(w * 2, {"w": w}, chunk_size=0)
    with pytest.raises(
        TypeError,
        match=r"vecgrad\.loss_jacobian: `chunk_size` must be None or a positive int; got str",
    ):
        vg.loss_jacobian(w * 2, {"w": w}, chunk_size="2")  # type: ignore[arg-type]


def test_loss_jacobian_retain_graph_must_be_bool() -> None:
    w = torch.randn(2, requires_grad=True)
    with pytest.raises(
        TypeError, match=r"vecgrad\.loss_jacobian: `retain_graph` must be a bool; got str\."
    ):
        vg.loss_jacobian(w * 2, {"w": w}, retain_graph="no")  # type: ignore[arg-type]


# --- per_sample_grads ---------------------------------------------------------------------


def loop_reference(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """One backward pass per sample, each on a batch of one."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(x)):
        loss = loss_fn(model(x[i : i + 1]), y[i : i + 1])
        rows.append(torch.autograd.grad(loss, params))
    return {n: torch.stack(g) for n, g in zip(names, zip(*rows, strict=True), strict=True)}


def mlp(n_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, n_out)).to(DTYPE)


def test_mlp_mse_matches_loop() -> None:
    model = mlp(2)
    x = torch.randn(7, 4, dtype=DTYPE)
    y = torch.randn(7, 2, dtype=DTYPE)
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)
    expected = loop_reference(model, F.mse_loss, x, y)
    assert list(grads) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert_close(grads, expected)
    assert grads["0.weight"].shape == (7, 8, 4)
    assert all(p.grad is None for p in model.parameters())
    assert not any(g.requires_grad for g in grads.values())


def test_mlp_cross_entropy_matches_loop() -> None:
    model = mlp(3)
    x = torch.randn(6, 4, dtype=DTYPE)
    y = torch.randint(0, 3, (6,))
    assert_close(
        vg.per_sample_grads(model, F.cross_entropy, x, y),
        loop_reference(model, F.cross_entropy, x, y),
    )


def test_rows_average_to_batch_gradient() -> None:
    model = mlp(3)
    x = torch.randn(5, 4, dtype=DTYPE)
    y = torch.randint(0, 3, (5,))
    grads = vg.per_sample_grads(model, F.cross_entropy, x, y)
    batch = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    for g, ref in zip(grads.values(), batch, strict=True):
        assert_close(g.mean(0), ref)


def test_frozen_parameters_are_left_out_and_held_fixed() -> None:
    model = mlp(2)
    model[0].weight.requires_grad_(False)
    x = torch.randn(4, 4, dtype=DTYPE)
    y = torch.randn(4, 2, dtype=DTYPE)
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)
    assert list(grads) == ["0.bias", "2.weight", "2.bias"]
    assert_close(grads, loop_reference(model, F.mse_loss, x, y))


def test_unused_model_parameter_gets_zeros() -> None:
    model = mlp(2)
    model.register_parameter("unused", nn.Parameter(torch.ones(3, dtype=DTYPE)))
    x = torch.randn(4, 4, dtype=DTYPE)
    y = torch.randn(4, 2, dtype=DTYPE)
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)
    assert_close(grads["unused"], torch.zeros(4, 3, dtype=DTYPE))
    del grads["unused"]
    model_params = {n: p for n, p in model.named_parameters() if n != "unused"}
    assert list(grads) == list(model_params)


def test_batchnorm_in_eval_mode_matches_loop() -> None:
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 1)).to(DTYPE)
    model.train()
    model(torch.randn(16, 4, dtype=DTYPE))  # give the running statistics non-trivial values
    model.eval()
    x = torch.randn(6, 4, dtype=DTYPE)
    y = torch.randn(6, 1, dtype=DTYPE)
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)
    assert_close(grads, loop_reference(model, F.mse_loss, x, y))
    assert "1.weight" in grads


@pytest.mark.parametrize(
    ("norm", "state"),
    [
        (nn.BatchNorm1d(5), "in training mode"),
        (nn.SyncBatchNorm(5), "in training mode"),
        (nn.BatchNorm1d(5, track_running_stats=False).eval(), "without running statistics"),
    ],
)
def test_batch_statistics_are_refused(norm: nn.Module, state: str) -> None:
    model = nn.Sequential(nn.Linear(4, 5), norm, nn.Linear(5, 1))
    x, y = torch.randn(3, 4), torch.randn(3, 1)
    with pytest.raises(
        ValueError,
        match=rf"vecgrad\.per_sample_grads: `model` must not normalise with batch statistics.* "
        rf"{state} at '1'\. Call model\.eval\(\)",
    ):
        vg.per_sample_grads(model, F.mse_loss, x, y)


def test_dropout_draws_a_mask_per_sample() -> None:
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1)).to(DTYPE)
    x = torch.randn(1, 4, dtype=DTYPE).expand(6, 4)  # six identical samples
    y = torch.zeros(6, 1, dtype=DTYPE)
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)["2.weight"]
    masks = grads.squeeze(1) != 0
    assert not all(torch.equal(masks[0], m) for m in masks[1:])
    model.eval()  # without dropout, identical samples give identical gradients
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)["2.weight"]
    assert_close(grads, grads[:1].expand_as(grads))


def test_integer_inputs_for_embeddings() -> None:
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(6, 2)).to(DTYPE)
    tokens = torch.randint(0, 10, (5, 2))
    y = torch.randint(0, 2, (5,))
    assert_close(
        vg.per_sample_grads(model, F.cross_entropy, tokens, y),
        loop_reference(model, F.cross_entropy, tokens, y),
    )


X, Y = torch.randn(4, 4, dtype=DTYPE), torch.randn(4, 2, dtype=DTYPE)
FROZEN = mlp(2).requires_grad_(False)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (
            (lambda t: t, F.mse_loss, X, Y),
            TypeError,
            r"`model` must be a torch\.nn\.Module; got function",
        ),
        ((None, "mse", X, Y), TypeError, r"`loss_fn` must be callable; got str"),
        ((None, F.mse_loss, [X], Y), TypeError, r"`inputs` must be a Tensor; got list"),
        ((None, F.mse_loss, X, 1.0), TypeError, r"`targets` must be a Tensor; got float"),
        (
            (None, F.mse_loss, torch.tensor(1.0), Y),
            ValueError,
            r"`inputs` must have a leading batch dimension; got a 0-dim",
        ),
        (
            (None, F.mse_loss, torch.zeros(0, 4, dtype=DTYPE), torch.zeros(0, 2)),
            ValueError,
            r"`inputs` must have at least one sample; got shape \(0, 4\)\.",
        ),
        (
            (None, F.mse_loss, X[:1], torch.zeros(0, 2)),
            ValueError,
            r"`targets` must have at least one sample; got shape \(0, 2\)\.",
        ),
        (
            (None, F.mse_loss, X, Y[:3]),
            ValueError,
            r"`inputs` and `targets` must have the same batch size \(first dimension\); "
            r"got shapes \(4, 4\) and \(3, 2\)",
        ),
        (
            (None, lambda p, t: F.mse_loss(p, t, reduction="none"), X, Y),
            ValueError,
            r"`loss_fn` must return a one-element Tensor \(a scalar\); got shape \(1, 2\)",
        ),
        ((None, lambda p, t: 0.0, X, Y), TypeError, r"`loss_fn` must return a Tensor; got float"),
        (
            (FROZEN, F.mse_loss, X, Y),
            ValueError,
            r"`model` must have at least one parameter that requires grad",
        ),
    ],
)
def test_per_sample_grads_errors(
    args: tuple[object, ...], error: type[Exception], match: str
) -> None:
    model, *rest = args
    with pytest.raises(error, match=r"vecgrad\.per_sample_grads: " + match):
        vg.per_sample_grads(mlp(2) if model is None else model, *rest)  # type: ignore[arg-type]

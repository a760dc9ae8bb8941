"""vecgrad.param_jacobian against loops of backward passes, closed forms and per_sample_grads."""

from __future__ import annotations

import pytest
import torch
from conftest import DTYPE
from torch import nn
from torch.nn import functional as F
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")


def mlp(d_in: int = 3, hidden: int = 5, d_out: int = 2) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out)).to(DTYPE)


def loop_jacobian(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One backward pass per sample and output element, each sample on its own."""
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    rows: dict[str, list[torch.Tensor]] = {n: [] for n in named}
    for i in range(x.shape[0]):
        out = model(x[i : i + 1])[0]
        per_sample: dict[str, list[torch.Tensor]] = {n: [] for n in named}
        for k in range(out.numel()):
            grads = torch.autograd.grad(
                out.reshape(-1)[k], tuple(named.values()), retain_graph=True
            )
            for n, g in zip(named, grads, strict=True):
                per_sample[n].append(g)
        for n, p in named.items():
            rows[n].append(torch.stack(per_sample[n]).reshape(*out.shape, *p.shape))
    return {n: torch.stack(r) for n, r in rows.items()}


def test_matches_loop_of_backward_passes() -> None:
    model, x = mlp(), torch.randn(6, 3, dtype=DTYPE)
    jac = vg.param_jacobian(model, x)
    assert list(jac) == [n for n, _ in model.named_parameters()]
    assert {n: j.shape for n, j in jac.items()} == {
        n: (6, 2, *p.shape) for n, p in model.named_parameters()
    }
    assert_close(jac, loop_jacobian(model, x))


def test_linear_model_closed_form_and_own_memory() -> None:
    # out_k = sum_j W_kj x_j + b_k: d out_k / d W_lj = delta_kl x_j and d out_k / d b_l = delta_kl
    model, x = nn.Linear(3, 2).to(DTYPE), torch.randn(4, 3, dtype=DTYPE)
    jac = vg.param_jacobian(model, x)
    eye = torch.eye(2, dtype=DTYPE)
    assert_close(jac["weight"], torch.einsum("kl,ij->iklj", eye, x))
    assert_close(jac["bias"], eye.expand(4, 2, 2))
    # The bias block is the same for every sample; each entry still has its own memory.
    jac["bias"][0, 0, 0] = 7.0
    assert_close(jac["bias"][1:], eye.expand(3, 2, 2))


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_chunk_size_gives_the_same_result(chunk_size: int) -> None:
    model, x = mlp(d_out=4), torch.randn(3, 3, dtype=DTYPE)
    assert_close(vg.param_jacobian(model, x, chunk_size=chunk_size), vg.param_jacobian(model, x))


def test_output_rows_of_several_dimensions() -> None:
    model = nn.Sequential(nn.Conv1d(2, 3, kernel_size=2), nn.Softplus()).to(DTYPE)
    x = torch.randn(4, 2, 5, dtype=DTYPE)  # each output row has shape (3, 4)
    jac = vg.param_jacobian(model, x)
    assert jac["0.weight"].shape == (4, 3, 4, 3, 2, 2)
    assert_close(jac, loop_jacobian(model, x))


def test_frozen_parameters_and_buffers_are_held_fixed() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    model = model.to(DTYPE)
    model[1].running_mean.uniform_(-1.0, 1.0)
    model[1].running_var.uniform_(0.5, 2.0)
    model.eval()  # running statistics: samples do not interact
    model[0].requires_grad_(False)
    x = torch.randn(5, 3, dtype=DTYPE)
    jac = vg.param_jacobian(model, x)
    assert list(jac) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert_close(jac, loop_jacobian(model, x))


def test_integer_inputs_and_grads_untouched() -> None:
    model = nn.Sequential(nn.Embedding(7, 3), nn.Flatten(), nn.Linear(6, 2)).to(DTYPE)
    model[2].weight.grad = torch.full_like(model[2].weight, 3.0)
    tokens = torch.randint(0, 7, (5, 2))
    jac = vg.param_jacobian(model, tokens)
    assert_close(jac, loop_jacobian(model, tokens))
    assert_close(model[2].weight.grad, torch.full_like(model[2].weight, 3.0))
    assert model[0].weight.grad is None
    assert not any(j.requires_grad for j in jac.values())


def test_contracting_with_residuals_gives_per_sample_grads() -> None:
    # For loss_i = 0.5 ||out_i - y_i||^2 / m (mse_loss / 2), grad_i = J_i^T (out_i - y_i) / m.
    model, x, y = mlp(d_out=3), torch.randn(5, 3, dtype=DTYPE), torch.randn(5, 3, dtype=DTYPE)
    jac = vg.param_jacobian(model, x)
    residual = (model(x) - y).detach() / 3
    grads = vg.per_sample_grads(model, lambda p, t: 0.5 * F.mse_loss(p, t), x, y)
    for name, j in jac.items():
        assert_close(torch.einsum("ik,ik...->i...", residual, j), grads[name])


def test_output_without_elements_gives_empty_blocks() -> None:
    model, x = nn.Linear(3, 2).to(DTYPE), torch.randn(4, 3, dtype=DTYPE)
    jac = vg.param_jacobian(Composed(model, lambda out: out[:, :0]), x)
    assert {n: j.shape for n, j in jac.items()} == {
        "inner.weight": (4, 0, 2, 3),
        "inner.bias": (4, 0, 2),
    }


class Composed(nn.Module):
    """``post(inner(x))``: a module whose output is whatever ``post`` makes of ``inner``'s."""

    def __init__(self, inner: nn.Module, post: object) -> None:
        super().__init__()
        self.inner, self.post = inner, post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.inner(x))  # type: ignore[operator, no-any-return]


# --- errors -------------------------------------------------------------------------------


X = torch.randn(4, 3)


@pytest.mark.parametrize(
    ("model", "inputs", "kwargs", "error", "match"),
    [
        (torch.tanh, X, {}, TypeError, r"`model` must be a torch.nn.Module; got builtin_function"),
        (
            Composed(nn.Linear(3, 2), lambda out: out.argmax(1, keepdim=True)),
            X,
            {},
            TypeError,
            r"`model` must return a real floating-point Tensor .*got dtype torch.int64",
        ),
        (
            Composed(nn.Linear(3, 2), lambda out: (out,)),
            X,
            {},
            TypeError,
            r"`model` must return a Tensor; got tuple",
        ),
        (nn.Linear(3, 2), [X], {}, TypeError, r"`inputs` must be a Tensor; got list"),
        (nn.Linear(3, 2), X, {"chunk_size": 1.5}, TypeError, r"`chunk_size` must be None or"),
        (
            nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)),
            X,
            {},
            ValueError,
            r"`model` must not normalise with batch statistics.*BatchNorm1d in training mode",
        ),
        (
            nn.Linear(3, 2).requires_grad_(False),
            X,
            {},
            ValueError,
            r"`model` must have at least one parameter that requires grad; got none",
        ),
        (
            Composed(nn.Linear(3, 2), lambda out: out.sum()),
            X,
            {},
            ValueError,
            r"`model` must return a Tensor whose first dimension is .* got shape \(\)",
        ),
        (
            Composed(nn.Linear(3, 2), lambda out: out.expand(2, 2)),
            X,
            {},
            ValueError,
            r"`model` must .* the batch size, 1 for one sample; got shape \(2, 2\)",
        ),
        (nn.Linear(3, 2), X[0, 0], {}, ValueError, r"`inputs` must have a leading batch dim"),
        (nn.Linear(3, 2), X[:0], {}, ValueError, r"`inputs` must have at least one sample"),
        (nn.Linear(3, 2), X, {"chunk_size": 0}, ValueError, r"`chunk_size` must be None or .*0"),
    ],
)
def test_errors(
    model: object, inputs: object, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=r"^vecgrad\.param_jacobian: " + match):
        vg.param_jacobian(model, inputs, **kwargs)  # type: ignore[arg-type]

"""Per-sample gradients of the squared error of a linear model: vg.per_sample_grads and
vg.loss_jacobian against torch's ways."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import vecgrad as vg

from .harness import Case, Method, RatioGoal
from .problems import VMAP_GRAD, vmap_grad_of

MASKED = "masked backward (one grad per loss)"
PSG = "vg.per_sample_grads"


@dataclass(frozen=True)
class Sizes:
    batch: int
    features: int
    masked_rows: int  # masked backward runs on this many losses and is scaled


SIZES = {  # True: --quick
    False: Sizes(batch=4096, features=512, masked_rows=64),
    True: Sizes(batch=64, features=32, masked_rows=8),
}


def per_sample_losses(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return F.mse_loss(model(x), y, reduction="none").squeeze(1)


def vmap_grad(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    params = {name: p.detach() for name, p in model.named_parameters()}
    return tuple(vmap_grad_of(model, params, x, y).values())


def masked_backward(model: nn.Module, x: Tensor, y: Tensor, rows: int) -> tuple[Tensor, ...]:
    """Gradients of the first `rows` losses: one backward pass per loss, the others masked."""
    losses = per_sample_losses(model, x, y)
    params = tuple(model.parameters())
    grads = []
    for i in range(rows):
        mask = torch.zeros_like(losses)
        mask[i] = 1
        grads.append(torch.autograd.grad(losses, params, mask, retain_graph=True))
    return tuple(torch.stack(g) for g in zip(*grads, strict=True))


def batched_grads(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    """All N masked backward passes as one vmapped call (grad_outputs = identity)."""
    losses = per_sample_losses(model, x, y)
    eye = torch.eye(losses.shape[0], dtype=losses.dtype, device=losses.device)
    return torch.autograd.grad(losses, tuple(model.parameters()), eye, is_grads_batched=True)


def vg_per_sample_grads(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    return tuple(vg.per_sample_grads(model, F.mse_loss, x, y).values())


def vg_loss_jacobian(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    return tuple(vg.loss_jacobian(per_sample_losses(model, x, y), model).values())


def cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = SIZES[quick]
    n, d = sizes.batch, sizes.features
    torch.manual_seed(0)
    model = nn.Linear(d, 1).to(device)
    x = torch.randn(n, d).to(device)
    y = torch.randn(n, 1).to(device)
    # loss_i = (w . x_i + b - y_i)^2, so grad_w = 2 r_i x_i and grad_b = 2 r_i
    w, b = model.weight.detach().double(), model.bias.detach().double()
    residual = 2 * (x.double() @ w.T + b - y.double())  # (N, 1)
    expected = ((residual[:, :, None] * x.double()[:, None, :]).float(), residual.float())
    rows = min(sizes.masked_rows, n)
    methods = (
        Method(VMAP_GRAD, functools.partial(vmap_grad, model, x, y), expected),
        Method(
            MASKED,
            functools.partial(masked_backward, model, x, y, rows),
            tuple(e[:rows] for e in expected),
            scale=n / rows,
            note=f"extrapolated from {rows} of {n} rows" if rows < n else "",
        ),
        Method(
            "autograd.grad(is_grads_batched)",
            functools.partial(batched_grads, model, x, y),
            expected,
        ),
        Method(
            PSG,
            functools.partial(vg_per_sample_grads, model, x, y),
            expected,
            graph=False,  # the parameters require grad, but create_graph=False: constants
        ),
        Method("vg.loss_jacobian", functools.partial(vg_loss_jacobian, model, x, y), expected),
    )
    goals = (
        RatioGoal("per_sample_grads / vmap(grad)", PSG, (VMAP_GRAD,), 1.2),
        RatioGoal("masked backward / per_sample_grads", MASKED, (PSG,), 100, most=False),
    )
    name = f"per-sample gradients, N={n}"
    return [Case(name, f"Linear({d}, 1) + MSE, float32", methods, PSG, goals)]

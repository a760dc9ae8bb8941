"""Per-sample Jacobians of a row-wise function R^2 -> R^3 on a batch: vg.batch_jacobian
against torch's ways."""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.func import jacfwd, jacrev, vmap

import vecgrad as vg

from .harness import Case, Func, Method, RatioGoal

BATCH_AUTO = "vg.batch_jacobian(auto)"
SAMPLES = {False: 100_000, True: 1000}  # samples; True: --quick


def sample_fn(x: Tensor) -> Tensor:
    """(x1 x2, sin(x1 + x2^2), x1^2 - 3 x2) along the last dimension."""
    x1, x2 = x[..., 0], x[..., 1]
    return torch.stack((x1 * x2, torch.sin(x1 + x2**2), x1**2 - 3 * x2), dim=-1)


def sample_jacobian(x: Tensor) -> Tensor:
    """Analytic per-sample Jacobians of `sample_fn`, shape (N, 3, 2)."""
    x1, x2 = x[:, 0], x[:, 1]
    c = torch.cos(x1 + x2**2)
    rows = ((x2, x1), (c, 2 * x2 * c), (2 * x1, torch.full_like(x1, -3.0)))
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=1)


def summed_jacrev(f: Func, x: Tensor) -> Tensor:
    """Jacobian of x -> f(x).sum(0): entry (k, b, j) is d f(x)[b, k] / d x[b, j]."""
    return jacrev(lambda x: f(x).sum(0))(x).movedim(1, 0)


def one_hot_vjps(f: Func, x: Tensor) -> Tensor:
    """One backward pass per output component k, with e_k in every row of grad_outputs."""
    leaf = x.detach().requires_grad_(True)
    y = f(leaf)
    eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
    rows = [
        torch.autograd.grad(y, leaf, eye[k].expand_as(y), retain_graph=True)[0]
        for k in range(y.shape[1])
    ]
    return torch.stack(rows, dim=1)


def cases(quick: bool, device: torch.device) -> list[Case]:
    n = SAMPLES[quick]
    torch.manual_seed(0)
    x = torch.randn(n, 2).to(device)
    jac = sample_jacobian(x.double()).float()
    others = (
        Method("jacrev of f(x).sum(0)", functools.partial(summed_jacrev, sample_fn, x), jac),
        Method("vmap(jacrev)", lambda: vmap(jacrev(sample_fn))(x), jac),
        Method("vmap(jacfwd)", lambda: vmap(jacfwd(sample_fn))(x), jac),
        Method(
            "one-hot VJP per output (3 grads)", functools.partial(one_hot_vjps, sample_fn, x), jac
        ),
    )
    vecgrad = tuple(
        Method(
            f"vg.batch_jacobian({s})",
            functools.partial(vg.batch_jacobian, sample_fn, x, strategy=s),
            jac,
        )
        for s in ("auto", "reverse", "forward")
    )
    # at most 1.2x the fastest of the other ways
    others_names = tuple(m.name for m in others)
    goal = RatioGoal("batch_jacobian(auto) / best other", BATCH_AUTO, others_names, 1.2)
    name = f"batched Jacobian, N={n}"
    details = "R^2->R^3 per sample, float32"
    return [Case(name, details, (*others, *vecgrad), BATCH_AUTO, (goal,))]

"""What several families of cases share: the names of methods that goals refer to, a tanh MLP
with its analytic Jacobian, Rademacher probes, a softplus sum with its Hessian, and the torch
and vecgrad routes to per-sample gradients and to Hutchinson's ``||J||_F^2``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

import vecgrad as vg

from .harness import Func

JACREV, JACFWD = "torch.func.jacrev", "torch.func.jacfwd"
AUTO = "vg.jacobian(auto)"
VMAP_GRAD = "vmap(grad) + functional_call"
FUNC_VJP, HUTCH_F = "vmap(vjp)", "vg.hutchinson(frobenius)"


def mlp(n_in: int, n_out: int, hidden: int, device: torch.device) -> tuple[Func, Tensor, Tensor]:
    """Return f, a point x and the analytic Jacobian J = W2 diag(1 - tanh(W1 x + b1)^2) W1."""
    torch.manual_seed(0)
    w1 = (torch.randn(hidden, n_in) / n_in**0.5).to(device)
    b1 = torch.randn(hidden).to(device)
    w2 = (torch.randn(n_out, hidden) / hidden**0.5).to(device)
    x = torch.randn(n_in).to(device)

    def f(x: Tensor) -> Tensor:
        return w2 @ torch.tanh(w1 @ x + b1)

    slope = 1 - torch.tanh(w1.double() @ x.double() + b1.double()) ** 2
    jac = (w2.double() * slope) @ w1.double()
    return f, x, jac.float()


def rademacher(k: int, shape: Sequence[int], device: torch.device) -> Tensor:
    """The `k` probes shaped `shape` that vg.hutchinson draws from a generator seeded 0."""
    generator = torch.Generator(device).manual_seed(0)
    return 2 * torch.randint(0, 2, (k, *shape), generator=generator, device=device).float() - 1


def softplus_problem(
    n: int, x: Tensor, device: torch.device
) -> tuple[Func, Tensor, Tensor, Tensor]:
    """x -> softplus(W x + b).sum() (W of 2n x n), W in float64, sigmoid'(W x + b) at `x` and
    the value at `x` (float32). The Hessian is W^T diag(sigmoid'(W x + b)) W.
    """
    torch.manual_seed(1)
    w, b = (torch.randn(2 * n, n) / n**0.5).to(device), torch.randn(2 * n).to(device)

    def softplus_sum(x: Tensor) -> Tensor:
        return F.softplus(w @ x + b).sum()

    u = w.double() @ x.double() + b.double()
    slope = torch.sigmoid(u) * (1 - torch.sigmoid(u))
    return softplus_sum, w.double(), slope, F.softplus(u).sum().float()


def vmap_grad_of(
    model: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor
) -> dict[str, Tensor]:
    """Per-sample gradients of the squared error at `params`, by torch.func."""

    def loss(params: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        return F.mse_loss(functional_call(model, params, (xi[None],)), yi[None])

    return cast(dict[str, Tensor], vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y))


def torch_frobenius(f: Func, x: Tensor, k: int) -> Tensor:
    output, vjp_fn = torch.func.vjp(f, x)
    probes = rademacher(k, output.shape, x.device).to(output.dtype)
    return cast(Tensor, vmap(vjp_fn)(probes)[0].square().flatten(1).sum(1))


def vg_frobenius(f: Func, x: Tensor, k: int) -> Tensor:
    generator = torch.Generator(x.device).manual_seed(0)
    return vg.hutchinson(f, x, num_samples=k, quantity="frobenius", generator=generator)

"""Jacobians with respect to parameters, and Hutchinson estimates: vg.param_jacobian and
vg.hutchinson, each at most 1.1 times its plain torch.func route."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap

import vecgrad as vg

from .harness import Case, Func, Method, versus_case
from .problems import (
    FUNC_VJP,
    HUTCH_F,
    mlp,
    rademacher,
    softplus_problem,
    torch_frobenius,
    vg_frobenius,
)

FUNC_JACREV = "vmap(jacrev) + functional_call"
FUNC_HVP = "vmap(jvp(grad))"
PARAM_JAC = "vg.param_jacobian"
HUTCH_T = "vg.hutchinson(trace)"
LIMIT = 1.1  # each vecgrad method at most 1.1 times the plain torch.func route


@dataclass(frozen=True)
class Sizes:
    """Sizes of the parameter-Jacobian and Hutchinson cases.

    param_jacobian: `batch` samples through Linear(features, hidden) Tanh Linear(hidden, outputs).
    """

    batch: int
    features: int
    hidden: int
    outputs: int
    size: int  # inputs and outputs of the Hutchinson functions
    probes: int


SIZES = {  # True: --quick
    False: Sizes(batch=512, features=16, hidden=128, outputs=10, size=512, probes=1024),
    True: Sizes(batch=16, features=4, hidden=8, outputs=3, size=16, probes=32),
}


def torch_param_jacobian(model: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """Per-sample Jacobians of the outputs with respect to the parameters, by torch.func."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def output(params: dict[str, Tensor], xi: Tensor) -> Tensor:
        return functional_call(model, params, (xi[None],))[0]

    return tuple(vmap(jacrev(output), in_dims=(None, 0))(params, x).values())


def param_jacobian_case(sizes: Sizes, device: torch.device) -> Case:
    n, d, h, m = sizes.batch, sizes.features, sizes.hidden, sizes.outputs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, m)).to(device)
    x = torch.randn(n, d).to(device)
    # out = W2 a + b2 with a = tanh(W1 x + b1): d out_k / d W2_lh = delta_kl a_h,
    # d out_k / d b2_l = delta_kl, d out_k / d W1_hj = W2_kh s_h x_j, d out_k / d b1_h = W2_kh s_h
    w1, b1, w2 = (p.detach().double() for p in (model[0].weight, model[0].bias, model[2].weight))
    pre = x.double() @ w1.T + b1
    a, s = torch.tanh(pre), 1 - torch.tanh(pre) ** 2
    eye = torch.eye(m, dtype=torch.float64, device=device)
    ws = w2[None] * s[:, None, :]  # (N, m, h)
    expected = tuple(
        e.float()
        for e in (
            ws[..., None] * x.double()[:, None, None, :],
            ws,
            eye[None, :, :, None] * a[:, None, None, :],
            eye.expand(n, m, m),
        )
    )
    methods = (
        Method(FUNC_JACREV, functools.partial(torch_param_jacobian, model, x), expected),
        Method(PARAM_JAC, lambda: tuple(vg.param_jacobian(model, x).values()), expected),
    )
    name = f"parameter Jacobians, N={n}"
    details = f"Linear({d}, {h}) Tanh Linear({h}, {m}), float32"
    return versus_case(name, details, methods, PARAM_JAC, LIMIT)


def torch_hessian_trace(f: Func, x: Tensor, k: int) -> Tensor:
    def quadratic_form(z: Tensor) -> Tensor:
        return (z * torch.func.jvp(grad(f), (x,), (z,))[1]).sum()

    return vmap(quadratic_form)(rademacher(k, x.shape, x.device))


def hutchinson_cases(sizes: Sizes, device: torch.device) -> list[Case]:
    n, k = sizes.size, sizes.probes
    f, x, jac = mlp(n, n, n // 2, device)
    z = rademacher(k, (n,), device).double()
    frobenius = (z @ jac.double()).square().sum(1).float()  # ||J^T z||^2 per probe
    softplus_sum, w, slope, _ = softplus_problem(n, x, device)
    # H = W^T diag(sigmoid'(W x + b)) W, so z^T H z = sum_h sigmoid'(u_h) (W z)_h^2
    traces = ((z @ w.T).square() * slope).sum(1).float()

    def vg_trace(func: Func) -> Tensor:
        generator = torch.Generator(device).manual_seed(0)
        return vg.hutchinson(func, x, num_samples=k, quantity="hessian_trace", generator=generator)

    frobenius_methods = (
        Method(FUNC_VJP, functools.partial(torch_frobenius, f, x, k), frobenius),
        Method(HUTCH_F, functools.partial(vg_frobenius, f, x, k), frobenius),
    )
    trace_methods = (
        Method(FUNC_HVP, functools.partial(torch_hessian_trace, softplus_sum, x, k), traces),
        Method(HUTCH_T, functools.partial(vg_trace, softplus_sum), traces),
    )
    details = f"{k} probes, float32"
    frobenius_name = f"Hutchinson ||J||_F^2, MLP {n}->{n}"
    trace_name = f"Hutchinson tr H, softplus(W x + b).sum(), {n}"
    return [
        versus_case(frobenius_name, details, frobenius_methods, HUTCH_F, LIMIT),
        versus_case(trace_name, details, trace_methods, HUTCH_T, LIMIT),
    ]


def cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = SIZES[quick]
    return [param_jacobian_case(sizes, device), *hutchinson_cases(sizes, device)]

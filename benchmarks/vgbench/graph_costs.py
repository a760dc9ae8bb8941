"""The two costs of vecgrad's differentiability contract (issue 16): results that carry no graph
when nothing requires grad, against the same call under torch.no_grad(), and results that carry
the graph, backpropagated in a training step, against torch's own route to the same gradients.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jacfwd, jacrev

import vecgrad as vg

from .harness import Case, Func, Method, Result, versus_case
from .problems import (
    AUTO,
    FUNC_VJP,
    HUTCH_F,
    JACFWD,
    JACREV,
    VMAP_GRAD,
    mlp,
    rademacher,
    softplus_problem,
    torch_frobenius,
    vg_frobenius,
    vmap_grad_of,
)

NO_GRAPH_LIMIT = 1.05  # nothing requires grad / the same call under torch.no_grad()
GRAPH_LIMIT = 1.1  # a vecgrad result + backward through it / torch's route + the same backward
NOTHING_REQUIRES_GRAD = "nothing requires grad"


@dataclass(frozen=True)
class Sizes:
    """Sizes of the no-graph and graph-carrying cases.

    Square Jacobians and the samples of the batched cases have `size` elements; every MLP has
    one hidden layer of `hidden`; the tall Jacobian penalty maps `narrow` inputs to `size`.
    The per-sample gradient penalty's model is Linear(`features`, 2 `features`) Tanh
    Linear(2 `features`, 1), so that N per-sample gradients stay small.
    """

    size: int
    hidden: int
    narrow: int
    batch: int
    probes: int  # of the no-graph Hutchinson case
    features: int


SIZES = {  # True: --quick
    False: Sizes(size=256, hidden=256, narrow=16, batch=512, probes=128, features=32),
    True: Sizes(size=16, hidden=16, narrow=4, batch=32, probes=8, features=4),
}


# --------------------------------------------------------------------------------------------
# No graph when nothing requires grad


def batch_mlp(
    n: int, d: int, hidden: int, device: torch.device
) -> tuple[Func, Tensor, Tensor, tuple[Tensor, Tensor]]:
    """X -> tanh(X W1^T + b1) W2^T on `n` rows of `d`, a point X, a cotangent V and the
    analytic (f(X), V^T J), which is ((V W2) * (1 - tanh(X W1^T + b1)^2)) W1 row by row."""
    torch.manual_seed(0)
    w1 = (torch.randn(hidden, d) / d**0.5).to(device)
    b1 = torch.randn(hidden).to(device)
    w2 = (torch.randn(d, hidden) / hidden**0.5).to(device)
    x, v = torch.randn(n, d).to(device), torch.randn(n, d).to(device)

    def f(x: Tensor) -> Tensor:
        return torch.tanh(x @ w1.T + b1) @ w2.T

    a = torch.tanh(x.double() @ w1.double().T + b1.double())
    vjp = ((v.double() @ w2.double()) * (1 - a**2)) @ w1.double()
    return f, x, v, ((a @ w2.double().T).float(), vjp.float())


def no_graph_case(name: str, details: str, call: Callable[[], Result], expected: Result) -> Case:
    """`call()` with nothing requiring grad, against the same call under torch.no_grad()."""

    def opted_out() -> Result:
        with torch.no_grad():
            return call()

    methods = (
        Method(NOTHING_REQUIRES_GRAD, call, expected, graph=False),
        Method("under torch.no_grad()", opted_out, expected, graph=False),
    )
    return versus_case(f"no graph: {name}", details, methods, NOTHING_REQUIRES_GRAD, NO_GRAPH_LIMIT)


def no_graph_cases(sizes: Sizes, device: torch.device) -> list[Case]:
    n, h, k = sizes.size, sizes.hidden, sizes.probes
    f, x, jac = mlp(n, n, h, device)
    batched, xs, vs, vjp = batch_mlp(sizes.batch, n, h, device)
    softplus_sum, w, slope, value = softplus_problem(n, x, device)
    torch.manual_seed(2)
    v = torch.randn(n).to(device)
    hvp = (w.T @ (slope * (w @ v.double()))).float()  # H v = W^T diag(sigmoid'(W x + b)) W v
    z = rademacher(k, (n,), device).double()
    frobenius = (z @ jac.double()).square().sum(1).float()
    mlp_details = f"MLP {n}->{n}, hidden {h}, float32"
    return [
        no_graph_case("vg.jacobian", mlp_details, functools.partial(vg.jacobian, f, x), jac),
        no_graph_case(
            "vg.vjp",
            f"{sizes.batch} samples, {mlp_details}",
            functools.partial(vg.vjp, batched, xs, vs),
            vjp,
        ),
        no_graph_case(
            "vg.hvp",
            f"softplus(W x + b).sum(), {n}, float32",
            functools.partial(vg.hvp, softplus_sum, x, v),
            (value, hvp),
        ),
        no_graph_case(
            "vg.hutchinson",
            f"||J||_F^2, {k} probes, {mlp_details}",
            functools.partial(vg_frobenius, f, x, k),
            frobenius,
        ),
    ]


# --------------------------------------------------------------------------------------------
# A graph to backpropagate through in a training step


def tanh_mlp(widths: Sequence[int], device: torch.device, seed: int = 0) -> nn.Sequential:
    """Linear layers of the given widths with Tanh between them; parameters require grad."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers[:-1]).to(device)


def backward_to(penalty: Tensor, leaves: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """Backpropagate `penalty`; return the gradients it leaves on `leaves` (cleared first).

    A leaf that the penalty does not depend on (the last bias, under a Jacobian penalty) gets
    zeros, which the check then compares with the reference's.
    """
    for leaf in leaves:
        leaf.grad = None
    penalty.backward()
    return tuple(torch.zeros_like(leaf) if leaf.grad is None else leaf.grad for leaf in leaves)


JacobianOf = Callable[[nn.Module, Tensor], Tensor]
InputGrad = Callable[[nn.Module, Tensor, Tensor], Tensor]  # (critic, x, v) -> v^T J, with graph
Estimate = Callable[[nn.Module, Tensor], Tensor]
PerSample = Callable[[nn.Module, Tensor, Tensor], dict[str, Tensor]]


def jacobian_penalty(jacobian: JacobianOf, model: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """Gradients of ||J||_F^2, J the Jacobian of `model` at `x`, for `x` and the parameters."""
    leaf = x.detach().requires_grad_(True)
    return backward_to(jacobian(model, leaf).square().sum(), (leaf, *model.parameters()))


def gradient_penalty(input_grad: InputGrad, critic: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """WGAN-GP: gradients for the critic's parameters of mean_i (||d critic(x)_i / d x_i|| - 1)^2.

    With v = ones, v^T J stacks the per-sample input gradients: sample i's score depends on
    x_i alone.
    """
    v = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    g = input_grad(critic, x, v)
    return backward_to((g.norm(dim=1) - 1).square().mean(), tuple(critic.parameters()))


def autograd_input_grad(critic: nn.Module, x: Tensor, v: Tensor) -> Tensor:
    leaf = x.detach().requires_grad_(True)
    return torch.autograd.grad(critic(leaf), leaf, v, create_graph=True)[0]


def func_input_grad(critic: nn.Module, x: Tensor, v: Tensor) -> Tensor:
    _, vjp_fn = torch.func.vjp(critic, x)
    return cast(Tensor, vjp_fn(v)[0])


def vg_input_grad(critic: nn.Module, x: Tensor, v: Tensor) -> Tensor:
    return vg.vjp(critic, x, v)[1]


def hutchinson_penalty(estimate: Estimate, model: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """Gradients for the parameters of a one-probe estimate of the mean over the batch of
    ||d model(x_i) / d x_i||_F^2 (the samples' Jacobians are the blocks of the batch's)."""
    penalty = estimate(model, x).mean() / x.shape[0]
    return backward_to(penalty, tuple(model.parameters()))


def per_sample_penalty(
    per_sample: PerSample, model: nn.Module, x: Tensor, y: Tensor
) -> tuple[Tensor, ...]:
    """Gradients for the parameters of the mean squared norm of the per-sample gradients."""
    grads = per_sample(model, x, y)
    penalty = torch.stack([g.square().sum() for g in grads.values()]).sum() / x.shape[0]
    return backward_to(penalty, tuple(model.parameters()))


def graph_case(
    name: str,
    details: str,
    route: Callable[..., tuple[Tensor, ...]],
    model: nn.Module,
    inputs: tuple[Tensor, ...],
    ways: Mapping[str, object],
    baseline: str,
    reference: str,
) -> Case:
    """One method per way of `route(way, model, *inputs)`, each checked against the gradients
    of `route` with the `reference` way in float64 (on a float64 copy of the model)."""
    model64 = copy.deepcopy(model).double()
    expected = route(ways[reference], model64, *(t.double() for t in inputs))
    expected = tuple(g.float() for g in expected)
    methods = tuple(
        Method(label, functools.partial(route, way, model, *inputs), expected)
        for label, way in ways.items()
    )
    return versus_case(name, details, methods, baseline, GRAPH_LIMIT)


def graph_cases(sizes: Sizes, device: torch.device) -> list[Case]:
    n, h, m, narrow, d = sizes.batch, sizes.hidden, sizes.size, sizes.narrow, sizes.features
    torch.manual_seed(3)
    x, x_narrow, xs = (torch.randn(shape).to(device) for shape in ((m,), (narrow,), (n, m)))
    samples, targets = torch.randn(n, d).to(device), torch.randn(n, 1).to(device)
    per_sample = {
        VMAP_GRAD: lambda model, x, y: vmap_grad_of(model, dict(model.named_parameters()), x, y),
        "vg.per_sample_grads(create_graph)": lambda model, x, y: vg.per_sample_grads(
            model, F.mse_loss, x, y, create_graph=True
        ),
    }
    jacobian_details = f"||J||_F^2 + backward to x and parameters, hidden {h}, float32"
    jacobian_penalties = (  # (kind, point, torch's way: reverse mode square, forward mode tall)
        ("square", x, JACREV, lambda model, x: jacrev(model)(x)),
        ("tall", x_narrow, JACFWD, lambda model, x: jacfwd(model)(x)),
    )
    return [
        *(
            graph_case(
                f"graph: Jacobian penalty, {kind} {len(point)}->{m}",
                jacobian_details,
                jacobian_penalty,
                tanh_mlp((len(point), h, m), device),
                (point,),
                {label: torch_way, AUTO: vg.jacobian},
                AUTO,
                label,
            )
            for kind, point, label, torch_way in jacobian_penalties
        ),
        graph_case(
            f"graph: WGAN-GP gradient penalty, N={n}",
            f"critic Linear({m}, {h}) Tanh Linear({h}, 1) + backward, float32",
            gradient_penalty,
            tanh_mlp((m, h, 1), device),
            (xs,),
            {
                "autograd.grad(create_graph)": autograd_input_grad,
                "torch.func.vjp": func_input_grad,
                "vg.vjp": vg_input_grad,
            },
            "vg.vjp",
            "torch.func.vjp",
        ),
        graph_case(
            f"graph: Hutchinson Jacobian penalty, N={n}",
            f"1 probe, MLP {m}->{m}, hidden {h} + backward, float32",
            hutchinson_penalty,
            tanh_mlp((m, h, m), device),
            (xs,),
            {
                FUNC_VJP: lambda model, x: torch_frobenius(model, x, 1),
                HUTCH_F: lambda model, x: vg_frobenius(model, x, 1),
            },
            HUTCH_F,
            FUNC_VJP,
        ),
        graph_case(
            f"graph: per-sample gradient penalty, N={n}",
            f"Linear({d}, {2 * d}) Tanh Linear({2 * d}, 1) + MSE, + backward, float32",
            per_sample_penalty,
            tanh_mlp((d, 2 * d, 1), device),
            (samples, targets),
            per_sample,
            "vg.per_sample_grads(create_graph)",
            VMAP_GRAD,
        ),
    ]


def cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = SIZES[quick]
    return [*no_graph_cases(sizes, device), *graph_cases(sizes, device)]

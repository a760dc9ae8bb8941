"""Curvature of a model's loss with respect to its parameters: vg.param_hessian, vg.param_hvp and
vg.param_ggnvp, each at most 1.05 times its plain torch.func route over functional_call."""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, hessian, jvp, vjp

import vecgrad as vg

from .harness import Case, Method, Result, versus_case

LIMIT = 1.05  # each vecgrad method at most 1.05 times the plain torch.func route
Params = dict[str, Tensor]


@dataclass(frozen=True)
class Sizes:
    """`batch` samples of `features` through an MLP with tanh between its widths, to 10 classes.

    The Hessian case uses the narrow MLP (`hessian_hidden`), whose Hessian is formed; the
    products use the wide one (`hidden`).
    """

    batch: int
    features: int
    hessian_hidden: tuple[int, ...]
    hidden: tuple[int, ...]


SIZES = {  # True: --quick
    False: Sizes(batch=256, features=8, hessian_hidden=(8,), hidden=(128, 128)),
    True: Sizes(batch=16, features=4, hessian_hidden=(4,), hidden=(8,)),
}
CLASSES = 10


def classifier(features: int, hidden: tuple[int, ...], device: torch.device) -> nn.Module:
    widths = (features, *hidden)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], CLASSES)).to(device)


class Problem:
    """A classifier, a batch and a direction, and the torch.func routes to the curvature."""

    def __init__(self, sizes: Sizes, hidden: tuple[int, ...], device: torch.device) -> None:
        torch.manual_seed(0)
        self.model = classifier(sizes.features, hidden, device)
        self.x = torch.randn(sizes.batch, sizes.features, device=device)
        self.y = torch.randint(0, CLASSES, (sizes.batch,), device=device)
        self.params = {n: p.detach() for n, p in self.model.named_parameters()}
        self.v = {n: torch.randn_like(p) for n, p in self.params.items()}
        self.size = sum(p.numel() for p in self.params.values())

    def outputs(self, params: Params) -> Tensor:
        return functional_call(self.model, params, (self.x,))  # type: ignore[no-any-return]

    def loss(self, params: Params) -> Tensor:
        return F.cross_entropy(self.outputs(params), self.y)

    def torch_hessian(self) -> Result:
        return flat(hessian(self.loss)(self.params))

    def torch_hvp(self) -> Result:
        return tuple(jvp(grad(self.loss), (self.params,), (self.v,))[1].values())

    def torch_ggnvp(self) -> Result:
        """J^T H_L J v as curvlinops' GGNLinearOperator computes it."""
        out, jv = jvp(self.outputs, (self.params,), (self.v,))
        _, hjv = jvp(grad(lambda o: F.cross_entropy(o, self.y)), (out,), (jv,))
        return tuple(vjp(self.outputs, self.params)[1](hjv)[0].values())

    def in_float64(self, route: Callable[[Problem], Result]) -> Result:
        """The result of `route` on a float64 copy, in float32: the reference."""
        wide = copy.copy(self)
        wide.model = copy.deepcopy(self.model).double()
        wide.x = self.x.double()
        wide.params = {n: p.double() for n, p in self.params.items()}
        wide.v = {n: t.double() for n, t in self.v.items()}
        return tuple(t.float() for t in route(wide))


def flat(blocks: dict[str, dict[str, Tensor]]) -> tuple[Tensor, ...]:
    return tuple(block for row in blocks.values() for block in row.values())


def vg_hessian(p: Problem) -> Result:
    return flat(vg.param_hessian(p.model, F.cross_entropy, p.x, p.y))


def vg_hvp(p: Problem) -> Result:
    return tuple(vg.param_hvp(p.model, F.cross_entropy, p.x, p.y, p.v)[1].values())


def vg_ggnvp(p: Problem) -> Result:
    return tuple(vg.param_ggnvp(p.model, F.cross_entropy, p.x, p.y, p.v)[1].values())


def cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = SIZES[quick]
    narrow = Problem(sizes, sizes.hessian_hidden, device)
    wide = Problem(sizes, sizes.hidden, device)
    hessian_ref = narrow.in_float64(Problem.torch_hessian)
    hvp_ref, ggn_ref = wide.in_float64(Problem.torch_hvp), wide.in_float64(Problem.torch_ggnvp)
    hessian_methods = (
        Method("torch.func.hessian + functional_call", narrow.torch_hessian, hessian_ref),
        Method("vg.param_hessian", functools.partial(vg_hessian, narrow), hessian_ref, graph=False),
    )
    hvp_methods = (
        Method("jvp(grad) + functional_call", wide.torch_hvp, hvp_ref),
        Method("vg.param_hvp", functools.partial(vg_hvp, wide), hvp_ref, graph=False),
    )
    ggn_methods = (
        Method("jvp, loss hvp, vjp + functional_call", wide.torch_ggnvp, ggn_ref),
        Method("vg.param_ggnvp", functools.partial(vg_ggnvp, wide), ggn_ref, graph=False),
    )
    n = sizes.batch

    def details(problem: Problem, hidden: tuple[int, ...]) -> str:
        widths = "-".join(map(str, (sizes.features, *hidden, CLASSES)))
        return f"MLP {widths}, {problem.size} parameters, cross-entropy, float32"

    return [
        versus_case(
            f"parameter Hessian, N={n}",
            details(narrow, sizes.hessian_hidden),
            hessian_methods,
            "vg.param_hessian",
            LIMIT,
        ),
        versus_case(
            f"parameter Hessian-vector product, N={n}",
            details(wide, sizes.hidden),
            hvp_methods,
            "vg.param_hvp",
            LIMIT,
        ),
        versus_case(
            f"Gauss-Newton-vector product, N={n}",
            details(wide, sizes.hidden),
            ggn_methods,
            "vg.param_ggnvp",
            LIMIT,
        ),
    ]

"""Full Jacobians of x -> W2 tanh(W1 x + b1): vg.jacobian's strategies against torch's ways."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jacfwd, jacrev

import vecgrad as vg

from .harness import Case, Func, Method, RatioGoal
from .problems import AUTO, JACFWD, JACREV, mlp

LOOP = "one-hot loop (autograd.grad per row)"


@dataclass(frozen=True)
class Sizes:
    shapes: tuple[tuple[str, int, int], ...]  # (kind, inputs, outputs)
    hidden: int
    loop_max_rows: int  # a one-hot loop over more output rows runs on `loop_rows` and is scaled
    loop_rows: int


SIZES = {  # True: --quick
    False: Sizes(
        shapes=(
            ("square", 256, 256),
            ("tall", 16, 1024),
            ("wide", 1024, 16),
            ("square", 1024, 1024),
        ),
        hidden=256,
        loop_max_rows=256,
        loop_rows=64,
    ),
    True: Sizes(
        shapes=(("square", 16, 16), ("tall", 4, 64), ("wide", 64, 4), ("square", 64, 64)),
        hidden=16,
        loop_max_rows=16,
        loop_rows=8,
    ),
}


def one_hot_rows(f: Func, x: Tensor, rows: int) -> Tensor:
    """First `rows` rows of the Jacobian, one backward pass each with a one-hot grad_outputs."""
    leaf = x.detach().requires_grad_(True)
    y = f(leaf)
    grads = []
    for k in range(rows):
        e_k = torch.zeros_like(y)
        e_k[k] = 1
        grads.append(torch.autograd.grad(y, leaf, e_k, retain_graph=True)[0])
    return torch.stack(grads)


def jacobian_case(
    kind: str, n_in: int, n_out: int, sizes: Sizes, device: torch.device, first: bool
) -> Case:
    """The Jacobian case of one shape; `first`: the one where the loop's goal is set."""
    f, x, jac = mlp(n_in, n_out, sizes.hidden, device)
    rows = n_out if n_out <= sizes.loop_max_rows else sizes.loop_rows
    loop_note = f"extrapolated from {rows} of {n_out} rows" if rows < n_out else ""
    autograd_jacobian = torch.autograd.functional.jacobian
    methods = (
        Method(
            LOOP,
            functools.partial(one_hot_rows, f, x, rows),
            jac[:rows],
            scale=n_out / rows,
            note=loop_note,
        ),
        Method("autograd.functional.jacobian", lambda: autograd_jacobian(f, x), jac),
        Method(
            "autograd.functional.jacobian(vectorize)",
            lambda: autograd_jacobian(f, x, vectorize=True),
            jac,
        ),
        Method(JACREV, lambda: jacrev(f)(x), jac),
        Method(JACFWD, lambda: jacfwd(f)(x), jac),
        *(
            Method(f"vg.jacobian({s})", functools.partial(vg.jacobian, f, x, strategy=s), jac)
            for s in ("auto", "reverse", "forward")
        ),
    )
    name = f"Jacobian, {kind} {n_in}->{n_out}"
    # auto without a tax: at most 1.05x the faster of jacrev and jacfwd
    goals = [RatioGoal(f"{name}: auto / best of jacrev, jacfwd", AUTO, (JACREV, JACFWD), 1.05)]
    if first:  # and at least 10x faster than one backward pass per row
        goals.append(RatioGoal(f"{name}: one-hot loop / auto", LOOP, (AUTO,), 10, most=False))
    return Case(name, f"hidden {sizes.hidden}, float32", methods, AUTO, tuple(goals))


def cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = SIZES[quick]
    return [
        jacobian_case(kind, n_in, n_out, sizes, device, first=i == 0)
        for i, (kind, n_in, n_out) in enumerate(sizes.shapes)
    ]

"""Per-sample Jacobians on a batch: a row-wise function R^2 -> R^3, vg.batch_jacobian against
torch's ways; and a grid of MLP shapes, forward against reverse mode, that sets the threshold
of batch_jacobian's 'auto' rule."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor
from torch.func import jacfwd, jacrev, vmap

import vecgrad as vg
from vecgrad.jacobians import _forward_wins  # the rule of 'auto', to print what it picks

from .harness import Case, Func, Method, RatioGoal, Timing, paired_ratio

BATCH_AUTO = "vg.batch_jacobian(auto)"
SAMPLES = {False: 100_000, True: 1000}  # samples; True: --quick
# The grid of per-sample MLP shapes (batch, n_in, n_out) of hidden width GRID_HIDDEN: n_out is
# 1, 2, 3 and 4 times n_in, around the threshold of batch_jacobian's 'auto' rule (n_out > 2 n_in).
GRID_BATCHES = {False: (256, 4096), True: (64,)}
GRID_INPUTS = {False: (2, 4, 8, 32), True: (2,)}
GRID_FACTORS = (1, 2, 3, 4)
GRID_HIDDEN = 64
FORWARD, REVERSE = "vg.batch_jacobian(forward)", "vg.batch_jacobian(reverse)"
GRID_SHAPES: dict[str, tuple[int, int, int]] = {}  # case title -> (batch, n_in, n_out)


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


def strategies(f: Func, x: Tensor, jac: Tensor) -> tuple[Method, ...]:
    """vg.batch_jacobian of f at x with each strategy: 'auto', 'reverse' and 'forward'."""
    return tuple(
        Method(
            f"vg.batch_jacobian({s})", functools.partial(vg.batch_jacobian, f, x, strategy=s), jac
        )
        for s in ("auto", "reverse", "forward")
    )


def row_mlp(n_in: int, n_out: int, x: Tensor) -> tuple[Func, Tensor]:
    """f(x)_b = W2 tanh(W1 x_b + b1) on the rows of x, and its analytic per-sample Jacobians."""
    torch.manual_seed(0)
    w1 = (torch.randn(GRID_HIDDEN, n_in) / n_in**0.5).to(x.device)
    b1 = torch.randn(GRID_HIDDEN).to(x.device)
    w2 = (torch.randn(n_out, GRID_HIDDEN) / GRID_HIDDEN**0.5).to(x.device)

    def f(x: Tensor) -> Tensor:
        return torch.tanh(x @ w1.T + b1) @ w2.T

    slope = 1 - torch.tanh(x.double() @ w1.double().T + b1.double()) ** 2  # (N, hidden)
    jac = torch.einsum("oh,bh,hi->boi", w2.double(), slope, w1.double())
    return f, jac.float()


def grid_case(batch: int, n_in: int, n_out: int, device: torch.device) -> Case:
    """Forward and reverse mode (and 'auto') of vg.batch_jacobian at one shape of the grid: no
    goal, the figures are printed by `print_grid`."""
    torch.manual_seed(0)
    x = torch.randn(batch, n_in).to(device)
    f, jac = row_mlp(n_in, n_out, x)
    methods = strategies(f, x, jac)
    details = f"{n_in}->{n_out} per sample, tanh MLP of hidden width {GRID_HIDDEN}, float32"
    case = Case(f"batch_jacobian grid, N={batch}", details, methods, BATCH_AUTO)
    GRID_SHAPES[case.title] = (batch, n_in, n_out)
    return case


def grid_cases(quick: bool, device: torch.device) -> list[Case]:
    return [
        grid_case(batch, n_in, factor * n_in, device)
        for batch in GRID_BATCHES[quick]
        for n_in in GRID_INPUTS[quick]
        for factor in GRID_FACTORS
    ]


def print_grid(cases: Sequence[Case], timings: Sequence[Timing]) -> None:
    """One line per shape of the grid: the paired ratio forward / reverse (below 1: forward
    mode is faster), the mode that 'auto' picks there, and the paired ratio of 'auto' to the
    mode with the smaller median (what choosing and its evaluation of func cost)."""
    shapes = {case.title: GRID_SHAPES[case.title] for case in cases if case.title in GRID_SHAPES}
    if not shapes:
        return
    found = {(t.case, t.method): t for t in timings}
    print("\nbatch_jacobian grid: paired ratios (forward / reverse below 1: forward is faster)")
    header = f"{'N':>7}{'n_in':>6}{'n_out':>7}{'forward / reverse':>20}{'auto picks':>12}"
    print(f"  {header}{'auto / faster':>15}")
    for title, (batch, n_in, n_out) in shapes.items():
        forward, reverse, auto = (found[title, m] for m in (FORWARD, REVERSE, BATCH_AUTO))
        ratio = paired_ratio(forward, reverse)
        modes = [t for t in (forward, reverse) if t.median_s is not None]
        faster = min(modes, key=lambda t: cast(float, t.median_s)) if modes else None
        tax = None if faster is None else paired_ratio(auto, faster)
        picks = "forward" if _forward_wins((n_out,), [(n_in,)], batch) else "reverse"
        row = f"{batch:>7}{n_in:>6}{n_out:>7}{fmt_ratio(ratio):>20}{picks:>12}"
        print(f"  {row}{fmt_ratio(tax):>15}")


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


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
    vecgrad = strategies(sample_fn, x, jac)
    # at most 1.2x the fastest of the other ways
    others_names = tuple(m.name for m in others)
    goal = RatioGoal("batch_jacobian(auto) / best other", BATCH_AUTO, others_names, 1.2)
    name = f"batched Jacobian, N={n}"
    details = "R^2->R^3 per sample, float32"
    return [
        Case(name, details, (*others, *vecgrad), BATCH_AUTO, (goal,)),
        *grid_cases(quick, device),
    ]

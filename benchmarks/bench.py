"""Speed and memory of vecgrad against the plain PyTorch ways of computing the same derivatives.

Run ``python benchmarks/bench.py`` for the full run, ``--quick`` for a smoke run on tiny sizes
and ``--json PATH`` to also write the results. Every method is first checked against an
analytic reference (gradients through vecgrad's results against torch's route in float64);
then each case prints medians, the ratio of every method to the vecgrad method of that case,
and whether the speed and memory goals are met. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jacfwd, jacrev, vmap

import vecgrad as vg

Func = Callable[[Tensor], Tensor]
Result = Tensor | tuple[Tensor, ...]
MIB = 2**20

# names of the methods that goals refer to
LOOP = "one-hot loop (autograd.grad per row)"
JACREV, JACFWD = "torch.func.jacrev", "torch.func.jacfwd"
VMAP_GRAD = "vmap(grad) + functional_call"
MASKED = "masked backward (one grad per loss)"
AUTO, BATCH_AUTO, PSG = "vg.jacobian(auto)", "vg.batch_jacobian(auto)", "vg.per_sample_grads"


@dataclass(frozen=True)
class Config:
    """Problem sizes and timing rules of one run."""

    jacobian_shapes: tuple[tuple[str, int, int], ...]  # (kind, inputs, outputs)
    hidden: int
    loop_max_rows: int  # a one-hot loop over more output rows runs on `loop_rows` and is scaled
    loop_rows: int
    batch: int
    psg_batch: int
    psg_features: int
    masked_rows: int
    memory_size: int
    memory_hidden: int
    chunk_sizes: tuple[int | None, ...]
    min_run_time: float  # seconds of timed blocks of calls per method (see measure_case)


FULL = Config(
    jacobian_shapes=(
        ("square", 256, 256),
        ("tall", 16, 1024),
        ("wide", 1024, 16),
        ("square", 1024, 1024),
    ),
    hidden=256,
    loop_max_rows=256,
    loop_rows=64,
    batch=100_000,
    psg_batch=4096,
    psg_features=512,
    masked_rows=64,
    memory_size=512,
    memory_hidden=2048,
    chunk_sizes=(None, 256, 64, 16),
    min_run_time=0.5,
)
QUICK = Config(
    jacobian_shapes=(("square", 16, 16), ("tall", 4, 64), ("wide", 64, 4), ("square", 64, 64)),
    hidden=16,
    loop_max_rows=16,
    loop_rows=8,
    batch=1000,
    psg_batch=64,
    psg_features=32,
    masked_rows=8,
    memory_size=64,
    memory_hidden=256,
    chunk_sizes=(None, 64, 16, 4),
    min_run_time=0.01,
)


@dataclass(frozen=True)
class Method:
    """One way of computing a case's derivative; `run()` must return `expected`.

    A method that computes only part of the result (some rows of a Jacobian, some samples)
    has `expected` cut to that part and `scale` set to undo the cut in its reported time.
    `graph`, when set, is whether every tensor of the result must carry the autograd graph
    (`requires_grad`); it is checked with the values.
    """

    name: str
    run: Callable[[], Result]
    expected: Result
    scale: float = 1.0
    note: str = ""
    graph: bool | None = None


@dataclass(frozen=True)
class Case:
    name: str
    details: str
    methods: tuple[Method, ...]
    baseline: str  # the vecgrad method every ratio is taken against

    @property
    def title(self) -> str:
        return f"{self.name} ({self.details})"


@dataclass
class Timing:
    device: str
    case: str
    method: str
    median_s: float | None  # None when the method failed its check (not timed)
    min_s: float | None
    reps: int
    ratio: float | None  # paired ratio to the case's vecgrad baseline (see `paired_ratio`)
    note: str
    blocks: list[float]  # time per call of each timed block, in the order of the rounds


def pairs(timing: Timing, reference: Timing) -> list[float]:
    """`timing`'s block / `reference`'s block, round by round.

    Blocks of one round run one after the other, so the ratio of a pair sees one load of the
    machine; rounds are paired from the first while both methods have blocks.
    """
    return [a / b for a, b in zip(timing.blocks, reference.blocks, strict=False)]


def paired_ratio(timing: Timing, reference: Timing) -> float | None:
    """Median over rounds of `timing`'s block / `reference`'s block of the same round."""
    ratios = pairs(timing, reference)
    return statistics.median(ratios) if ratios else None


@dataclass(frozen=True)
class Goal:
    device: str
    text: str
    measured: str
    passed: bool


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------------
# Full Jacobians of x -> W2 tanh(W1 x + b1)


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


def jacobian_case(kind: str, n_in: int, n_out: int, cfg: Config, device: torch.device) -> Case:
    f, x, jac = mlp(n_in, n_out, cfg.hidden, device)
    rows = n_out if n_out <= cfg.loop_max_rows else cfg.loop_rows
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
    return Case(name, f"hidden {cfg.hidden}, float32", methods, baseline=AUTO)


# --------------------------------------------------------------------------------------------
# Per-sample Jacobians of a row-wise function R^2 -> R^3 on a batch


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


def batched_case(cfg: Config, device: torch.device) -> Case:
    torch.manual_seed(0)
    x = torch.randn(cfg.batch, 2).to(device)
    jac = sample_jacobian(x.double()).float()
    methods = (
        Method("jacrev of f(x).sum(0)", functools.partial(summed_jacrev, sample_fn, x), jac),
        Method("vmap(jacrev)", lambda: vmap(jacrev(sample_fn))(x), jac),
        Method("vmap(jacfwd)", lambda: vmap(jacfwd(sample_fn))(x), jac),
        Method(
            "one-hot VJP per output (3 grads)", functools.partial(one_hot_vjps, sample_fn, x), jac
        ),
        *(
            Method(
                f"vg.batch_jacobian({s})",
                functools.partial(vg.batch_jacobian, sample_fn, x, strategy=s),
                jac,
            )
            for s in ("auto", "reverse", "forward")
        ),
    )
    name = f"batched Jacobian, N={cfg.batch}"
    details = "R^2->R^3 per sample, float32"
    return Case(name, details, methods, baseline=BATCH_AUTO)


# --------------------------------------------------------------------------------------------
# Per-sample gradients of the squared error of a linear model


def per_sample_losses(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return F.mse_loss(model(x), y, reduction="none").squeeze(1)


def vmap_grad_of(
    model: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor
) -> dict[str, Tensor]:
    """Per-sample gradients of the squared error at `params`, by torch.func."""

    def loss(params: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        return F.mse_loss(functional_call(model, params, (xi[None],)), yi[None])

    return cast(dict[str, Tensor], vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y))


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


def per_sample_case(cfg: Config, device: torch.device) -> Case:
    n, d = cfg.psg_batch, cfg.psg_features
    torch.manual_seed(0)
    model = nn.Linear(d, 1).to(device)
    x = torch.randn(n, d).to(device)
    y = torch.randn(n, 1).to(device)
    # loss_i = (w . x_i + b - y_i)^2, so grad_w = 2 r_i x_i and grad_b = 2 r_i
    w, b = model.weight.detach().double(), model.bias.detach().double()
    residual = 2 * (x.double() @ w.T + b - y.double())  # (N, 1)
    expected = ((residual[:, :, None] * x.double()[:, None, :]).float(), residual.float())
    rows = min(cfg.masked_rows, n)
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
    name = f"per-sample gradients, N={n}"
    return Case(name, f"Linear({d}, 1) + MSE, float32", methods, baseline=PSG)


# --------------------------------------------------------------------------------------------
# Jacobians with respect to parameters, and Hutchinson estimates (each against torch.func)

FUNC_JACREV = "vmap(jacrev) + functional_call"
FUNC_VJP, FUNC_HVP = "vmap(vjp)", "vmap(jvp(grad))"
PARAM_JAC = "vg.param_jacobian"
HUTCH_F, HUTCH_T = "vg.hutchinson(frobenius)", "vg.hutchinson(trace)"
ESTIMATOR_LIMIT = 1.1  # each vecgrad method at most 1.1 times the plain torch.func route


@dataclass(frozen=True)
class EstimatorSizes:
    """Sizes of the parameter-Jacobian and Hutchinson cases.

    param_jacobian: `batch` samples through Linear(features, hidden) Tanh Linear(hidden, outputs).
    """

    batch: int
    features: int
    hidden: int
    outputs: int
    size: int  # inputs and outputs of the Hutchinson functions
    probes: int


ESTIMATOR_SIZES = {
    False: EstimatorSizes(batch=512, features=16, hidden=128, outputs=10, size=512, probes=1024),
    True: EstimatorSizes(batch=16, features=4, hidden=8, outputs=3, size=16, probes=32),
}


def torch_param_jacobian(model: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """Per-sample Jacobians of the outputs with respect to the parameters, by torch.func."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def output(params: dict[str, Tensor], xi: Tensor) -> Tensor:
        return functional_call(model, params, (xi[None],))[0]

    return tuple(vmap(jacrev(output), in_dims=(None, 0))(params, x).values())


def param_jacobian_case(sizes: EstimatorSizes, device: torch.device) -> Case:
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
    return Case(name, f"Linear({d}, {h}) Tanh Linear({h}, {m}), float32", methods, PARAM_JAC)


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


def torch_frobenius(f: Func, x: Tensor, k: int) -> Tensor:
    output, vjp_fn = torch.func.vjp(f, x)
    probes = rademacher(k, output.shape, x.device).to(output.dtype)
    return cast(Tensor, vmap(vjp_fn)(probes)[0].square().flatten(1).sum(1))


def vg_frobenius(f: Func, x: Tensor, k: int) -> Tensor:
    generator = torch.Generator(x.device).manual_seed(0)
    return vg.hutchinson(f, x, num_samples=k, quantity="frobenius", generator=generator)


def torch_hessian_trace(f: Func, x: Tensor, k: int) -> Tensor:
    def quadratic_form(z: Tensor) -> Tensor:
        return (z * torch.func.jvp(grad(f), (x,), (z,))[1]).sum()

    return vmap(quadratic_form)(rademacher(k, x.shape, x.device))


def hutchinson_cases(sizes: EstimatorSizes, device: torch.device) -> list[Case]:
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
    return [
        Case(f"Hutchinson ||J||_F^2, MLP {n}->{n}", details, frobenius_methods, HUTCH_F),
        Case(f"Hutchinson tr H, softplus(W x + b).sum(), {n}", details, trace_methods, HUTCH_T),
    ]


def estimator_cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = ESTIMATOR_SIZES[quick]
    return [param_jacobian_case(sizes, device), *hutchinson_cases(sizes, device)]


def versus_goals(
    device: str, cases: Sequence[Case], timings: Sequence[Timing], limit: float
) -> list[Goal]:
    """Each case's vecgrad method at most `limit` times each other method of the case."""
    goals = []
    for case in cases:
        by_method = {t.method: t for t in timings if t.case == case.title}
        for reference in (m.name for m in case.methods if m.name != case.baseline):
            text = f"{case.name}: {case.baseline} / {reference}"
            goals.append(
                ratio_goal(device, text, by_method, case.baseline, (reference,), limit, True)
            )
    return goals


# --------------------------------------------------------------------------------------------
# Results without a graph when nothing requires grad, and with one for training (issue 16)

NO_GRAPH_LIMIT = 1.05  # nothing requires grad / the same call under torch.no_grad()
GRAPH_LIMIT = 1.1  # a vecgrad result + backward through it / torch's route + the same backward
NOTHING_REQUIRES_GRAD = "nothing requires grad"


@dataclass(frozen=True)
class GraphSizes:
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


GRAPH_SIZES = {
    False: GraphSizes(size=256, hidden=256, narrow=16, batch=512, probes=128, features=32),
    True: GraphSizes(size=16, hidden=16, narrow=4, batch=32, probes=8, features=4),
}


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
    return Case(f"no graph: {name}", details, methods, baseline=NOTHING_REQUIRES_GRAD)


def no_graph_cases(sizes: GraphSizes, device: torch.device) -> list[Case]:
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
    return Case(name, details, methods, baseline)


def graph_cases(sizes: GraphSizes, device: torch.device) -> list[Case]:
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
    return [
        graph_case(
            f"graph: Jacobian penalty, square {m}->{m}",
            f"||J||_F^2 + backward to x and parameters, hidden {h}, float32",
            jacobian_penalty,
            tanh_mlp((m, h, m), device),
            (x,),
            {JACREV: lambda model, x: jacrev(model)(x), AUTO: vg.jacobian},
            AUTO,
            JACREV,
        ),
        graph_case(
            f"graph: Jacobian penalty, tall {narrow}->{m}",
            f"||J||_F^2 + backward to x and parameters, hidden {h}, float32",
            jacobian_penalty,
            tanh_mlp((narrow, h, m), device),
            (x_narrow,),
            {JACFWD: lambda model, x: jacfwd(model)(x), AUTO: vg.jacobian},
            AUTO,
            JACFWD,
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


# --------------------------------------------------------------------------------------------
# Timing


def wrong(exc: Exception) -> str:
    return f"WRONG: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"


def tensors(result: Result) -> tuple[Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


def check(method: Method, device: torch.device) -> tuple[str | None, float]:
    """Run the method once (this is also its warm-up): why it is wrong, or None, and how long
    the call took."""
    started = clock(device)()
    try:
        result = method.run()
        took = clock(device)() - started
        torch.testing.assert_close(result, method.expected)
        if method.graph is not None:
            carried = [t.requires_grad for t in tensors(result)]
            if carried != [method.graph] * len(carried):
                raise AssertionError(f"requires_grad of the results: {carried}")
    except Exception as exc:  # a method that raises is reported like one that is wrong
        return wrong(exc), 0.0
    return None, took


ROUNDS = 10  # a case's methods are timed in this many interleaved rounds of blocks


def clock(device: torch.device) -> Callable[[], float]:
    """time.perf_counter, after waiting for the work queued on a CUDA device."""
    if device.type != "cuda":
        return time.perf_counter

    def synchronized() -> float:
        synchronize(device)
        return time.perf_counter()

    return synchronized


def block_size(timer: timeit.Timer, first_call: float, target: float, limit: float) -> int:
    """Calls per block, so that a block takes about ``target`` seconds.

    ``first_call`` is the duration of the checking call: a method that took ``limit`` seconds
    or more gets one call per block without another call to calibrate it.
    """
    if first_call >= limit:
        return 1
    number = 1
    while (took := timer.timeit(number)) < target / 10:
        number *= 10
    return max(1, round(number * target / took))


def measure_case(
    methods: Sequence[tuple[Method, float]], cfg: Config, device: torch.device
) -> dict[str, tuple[list[float], int]]:
    """Time per call of every block (scaled by ``method.scale``) and the calls per block.

    ``methods`` pairs each method with the duration of its checking call. The methods of a
    case are timed in turn, one block of calls each per round, until each has had
    ``cfg.min_run_time`` seconds of blocks: about ``ROUNDS`` rounds, fewer for methods whose
    single call outlasts a block. Interleaving makes every method of a case see the same
    load on a shared machine, and lets ratios be taken round by round (`paired_ratio`). A
    block is timed by ``timeit`` (garbage collection off) and, on CUDA, synchronized at both
    ends.
    """
    target = cfg.min_run_time / ROUNDS
    timers = {
        m.name: timeit.Timer("run()", timer=clock(device), globals={"run": m.run})
        for m, _ in methods
    }
    numbers = {
        m.name: block_size(timers[m.name], first, target, cfg.min_run_time) for m, first in methods
    }
    blocks: dict[str, list[float]] = {m.name: [] for m, _ in methods}
    spent = dict.fromkeys(blocks, 0.0)
    while pending := [m for m, _ in methods if spent[m.name] < cfg.min_run_time]:
        for m in pending:
            took = timers[m.name].timeit(numbers[m.name])
            spent[m.name] += took
            blocks[m.name].append(took / numbers[m.name] * m.scale)
    return {name: (times, numbers[name]) for name, times in blocks.items()}


def time_case(case: Case, cfg: Config, device: torch.device) -> list[Timing]:
    """Check every method against its reference, then time the correct ones together."""
    checked = {m.name: check(m, device) for m in case.methods}
    correct = [(m, checked[m.name][1]) for m in case.methods if checked[m.name][0] is None]
    measured = measure_case(correct, cfg, device)
    timings = []
    for m in case.methods:
        blocks, number = measured.get(m.name, ([], 0))
        timings.append(
            Timing(
                device=str(device),
                case=case.title,
                method=m.name,
                median_s=statistics.median(blocks) if blocks else None,
                min_s=min(blocks) if blocks else None,
                reps=number * len(blocks),
                ratio=None,
                note=checked[m.name][0] or m.note,
                blocks=blocks,
            )
        )
    (base,) = (t for t in timings if t.method == case.baseline)
    for t in timings:
        t.ratio = paired_ratio(t, base)
    return timings


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3g}"


def print_case(case: Case, timings: Sequence[Timing], elapsed: float) -> None:
    print(f"\n{case.title}   [{elapsed:.1f} s; ratio: paired with {case.baseline}]")
    print(f"  {'method':<42}{'median ms':>11}{'min ms':>10}{'reps':>6}{'ratio':>8}  note")
    for t in timings:
        ratio = "-" if t.ratio is None else f"{t.ratio:.2f}"
        print(
            f"  {t.method:<42}{fmt_ms(t.median_s):>11}{fmt_ms(t.min_s):>10}{t.reps:>6}"
            f"{ratio:>8}  {t.note}"
        )


# --------------------------------------------------------------------------------------------
# Peak memory of chunked Jacobians

MEMORY_METHODS: dict[str, Callable[[Func, Tensor, int | None], Result]] = {
    "vg.jacobian(reverse)": lambda f, x, k: vg.jacobian(f, x, strategy="reverse", chunk_size=k),
    "vg.jacobian(forward)": lambda f, x, k: vg.jacobian(f, x, strategy="forward", chunk_size=k),
    JACREV: lambda f, x, k: jacrev(f, chunk_size=k)(x),
}


def _proc_status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise KeyError(key)


def peak_bytes(fn: Callable[[], Result], device: torch.device) -> tuple[int, Result]:
    """Peak memory of `fn()` above what was in use when it started, and its result.

    CUDA: torch's allocator statistics. CPU: the resident-set high-water mark (VmHWM), reset
    just before the call through /proc/self/clear_refs (Linux); see `memory_rows_cpu`.
    """
    gc.collect()  # or garbage of earlier calls may be freed during this one
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base, result
    Path("/proc/self/clear_refs").write_text("5")  # "5" resets the high-water mark to the RSS
    base = _proc_status_bytes("VmRSS")
    result = fn()
    return _proc_status_bytes("VmHWM") - base, result


@dataclass
class MemoryRow:
    method: str
    chunk_size: int | None
    peak_bytes: int | None  # None when the method failed its check (not measured)
    note: str = ""


def memory_rows(cfg: Config, device: torch.device) -> list[MemoryRow]:
    """Peak memory of each chunked Jacobian method for every chunk size, checking each result."""
    f, x, jac = mlp(cfg.memory_size, cfg.memory_size, cfg.memory_hidden, device)
    rows = []
    for name, method in MEMORY_METHODS.items():
        method(f, x, None)  # warm-up: what a first call sets up once is not counted
        for k in cfg.chunk_sizes:
            try:
                peak, result = peak_bytes(functools.partial(method, f, x, k), device)
                torch.testing.assert_close(result, jac)
            except Exception as exc:
                rows.append(MemoryRow(name, k, None, wrong(exc)))
            else:
                rows.append(MemoryRow(name, k, peak))
    return rows


def memory_rows_cpu(quick: bool) -> list[MemoryRow]:
    """Run `memory_rows` on the CPU in a fresh process, where nothing else has touched memory.

    glibc's malloc is told to map every block of 64 KiB or more on its own and unmap it when
    freed, so memory released by the warm-up call leaves the resident set and the measured
    call's peak shows up in the high-water mark.
    """
    if not Path("/proc/self/clear_refs").exists():
        return []
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    probe = [sys.executable, __file__, "--memory-probe", *(["--quick"] if quick else [])]
    done = subprocess.run(probe, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe ({' '.join(probe)}) failed:\n{done.stderr}")
    return [MemoryRow(**row) for row in json.loads(done.stdout.splitlines()[-1])]


def peaks_mib(rows: Sequence[MemoryRow], method: str) -> list[float | None]:
    return [
        None if r.peak_bytes is None else r.peak_bytes / MIB for r in rows if r.method == method
    ]


def print_memory(device: torch.device, cfg: Config, rows: Sequence[MemoryRow]) -> None:
    n, h = cfg.memory_size, cfg.memory_hidden
    how = "max_memory_allocated" if device.type == "cuda" else "peak RSS, fresh process"
    print(
        f"\nmemory: Jacobian {n}->{n} (hidden {h}, float32; J itself is {n * n * 4 / MIB:.3g} MiB)"
    )
    print(f"  peak MiB above the memory in use before the call ({how})")
    if not rows:
        print("  not measured: needs CUDA or Linux /proc/self/clear_refs")
        return
    print(f"  {'method':<24}" + "".join(f"{'chunk ' + str(k):>12}" for k in cfg.chunk_sizes))
    for name in MEMORY_METHODS:
        cells = ("WRONG" if p is None else f"{p:.1f}" for p in peaks_mib(rows, name))
        print(f"  {name:<24}" + "".join(f"{c:>12}" for c in cells))
    for r in rows:
        if r.note:
            print(f"  {r.method}, chunk {r.chunk_size}: {r.note}")


# --------------------------------------------------------------------------------------------
# Goals


NOISY = 3.0  # a median this many times the fastest call means the machine was busy


def ratio_goal(
    device: str,
    text: str,
    timings: Mapping[str, Timing],
    numerator: str,
    denominators: Sequence[str],
    limit: float,
    most: bool,
) -> Goal:
    """Goal on the paired ratio of `numerator` to the denominator of the smallest median:
    `<= limit` if most, else `>=`."""
    used = [timings.get(name) for name in (numerator, *denominators)]
    measured_used = [t for t in used if t is not None and t.median_s is not None]
    if len(measured_used) < len(used):
        return Goal(device, text, "not measured", False)
    top, *others = measured_used
    ratios = pairs(top, min(others, key=lambda t: cast(float, t.median_s)))
    if not ratios:
        return Goal(device, text, "not measured", False)
    value = statistics.median(ratios)
    passed = value <= limit if most else value >= limit
    rounds = f"{len(ratios)} round{'' if len(ratios) == 1 else 's'}"
    measured = f"{value:.3f}x ({'<=' if most else '>='} {limit:g}x; {rounds})"
    if any(t.median_s > NOISY * t.min_s for t in used if t and t.median_s and t.min_s):
        measured += f"  [noisy: a median is over {NOISY:g}x its fastest call]"
    return Goal(device, text, measured, passed)


def goals_for(
    device: str,
    cases: Sequence[Case],
    timings: Sequence[Timing],
    memory: Sequence[MemoryRow],
) -> list[Goal]:
    by_case = {c.title: {t.method: t for t in timings if t.case == c.title} for c in cases}
    *jac_cases, batch_case, psg_case = cases
    batch_others = tuple(m.name for m in batch_case.methods if not m.name.startswith("vg."))
    first = jac_cases[0]
    # (text, case, numerator, denominators (the fastest counts), limit, numerator at most limit)
    specs = [
        *(
            (f"{c.name}: auto / best of jacrev, jacfwd", c, AUTO, (JACREV, JACFWD), 1.05, True)
            for c in jac_cases
        ),
        (f"{first.name}: one-hot loop / auto", first, LOOP, (AUTO,), 10, False),
        ("batch_jacobian(auto) / best other", batch_case, BATCH_AUTO, batch_others, 1.2, True),
        ("per_sample_grads / vmap(grad)", psg_case, PSG, (VMAP_GRAD,), 1.2, True),
        ("masked backward / per_sample_grads", psg_case, MASKED, (PSG,), 100, False),
    ]
    goals = [
        ratio_goal(device, text, by_case[case.title], num, den, limit, most)
        for text, case, num, den, limit, most in specs
    ]
    for name in (n for n in MEMORY_METHODS if n.startswith("vg.")):
        measured_peaks = peaks_mib(memory, name)
        peaks = [p for p in measured_peaks if p is not None]
        # allow 1 MiB of allocator noise per step; the smallest chunk must beat no chunking
        falls = len(peaks) == len(measured_peaks) > 0 and peaks[-1] < peaks[0]
        falls = falls and all(b <= a + 1 for a, b in itertools.pairwise(peaks))
        chunks = ", ".join(str(r.chunk_size) for r in memory if r.method == name)
        measured = ", ".join(f"{p:.1f}" for p in peaks) + f" MiB at chunk_size {chunks}"
        goals.append(
            Goal(
                device,
                f"{name}: peak falls as chunk_size falls",
                measured if peaks else "not measured",
                falls,
            )
        )
    return goals


def print_goals(goals: Sequence[Goal], quick: bool) -> None:
    print("\ngoals" + ("  (tiny sizes: meaningful only for the full run)" if quick else ""))
    for g in goals:
        print(f"  {'PASS' if g.passed else 'MISS'}  [{g.device}] {g.text}: {g.measured}")


# --------------------------------------------------------------------------------------------


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one rep: a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.memory_probe:  # child process of memory_rows_cpu
        print(json.dumps([asdict(r) for r in memory_rows(cfg, torch.device("cpu"))]))
        return 0

    started = time.perf_counter()
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(
        f"vecgrad {vg.__version__}, torch {torch.__version__}, python {platform.python_version()}"
    )
    print(f"threads: {torch.get_num_threads()} (cpu: {cpu_name()}, {os.cpu_count()} logical cores)")
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "not available"
    print(f"devices: {', '.join(map(str, devices))} (cuda: {cuda})")

    timings: list[Timing] = []
    goals: list[Goal] = []
    memory: dict[str, list[MemoryRow]] = {}
    for device in devices:
        print(f"\n===== {device} =====")
        cases = [
            *(jacobian_case(kind, n, m, cfg, device) for kind, n, m in cfg.jacobian_shapes),
            batched_case(cfg, device),
            per_sample_case(cfg, device),
        ]
        estimators = estimator_cases(args.quick, device)
        no_graph = no_graph_cases(GRAPH_SIZES[args.quick], device)
        graph = graph_cases(GRAPH_SIZES[args.quick], device)
        device_timings = []
        for case in [*cases, *estimators, *no_graph, *graph]:
            case_started = time.perf_counter()
            case_timings = time_case(case, cfg, device)
            print_case(case, case_timings, time.perf_counter() - case_started)
            device_timings += case_timings
        rows = memory_rows_cpu(args.quick) if device.type == "cpu" else memory_rows(cfg, device)
        print_memory(device, cfg, rows)
        timings += device_timings
        memory[str(device)] = rows
        goals += goals_for(str(device), cases, device_timings, rows)
        goals += versus_goals(str(device), estimators, device_timings, ESTIMATOR_LIMIT)
        goals += versus_goals(str(device), no_graph, device_timings, NO_GRAPH_LIMIT)
        goals += versus_goals(str(device), graph, device_timings, GRAPH_LIMIT)
    print_goals(goals, args.quick)
    total = time.perf_counter() - started
    print(f"\ntotal time: {total:.1f} s")

    if args.json:
        results = {
            "torch": torch.__version__,
            "vecgrad": vg.__version__,
            "threads": torch.get_num_threads(),
            "devices": [str(d) for d in devices],
            "quick": args.quick,
            "timings": [asdict(t) for t in timings],
            "memory": {d: [asdict(r) for r in rows] for d, rows in memory.items()},
            "goals": [asdict(g) for g in goals],
            "total_seconds": total,
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any(t.note.startswith("WRONG") for t in timings) else 0


if __name__ == "__main__":
    sys.exit(main())

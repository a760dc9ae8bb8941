"""Speed and memory of vecgrad against the plain PyTorch ways of computing the same derivatives.

Run ``python benchmarks/bench.py`` for the full run, ``--quick`` for a smoke run on tiny sizes
and ``--json PATH`` to also write the results. Every method is first checked against an
analytic reference; then each case prints medians, the ratio of every method to the vecgrad
method of that case, and whether the speed and memory goals are met. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jacfwd, jacrev, vmap
from torch.utils.benchmark import Timer

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
    min_run_time: float  # seconds of timed blocks of calls per method (Timer.blocked_autorange)


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
    """

    name: str
    run: Callable[[], Result]
    expected: Result
    scale: float = 1.0
    note: str = ""


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
    ratio: float | None  # median_s / median_s of the case's vecgrad baseline
    note: str


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


def vmap_grad(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss(params: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        return F.mse_loss(functional_call(model, params, (xi[None],)), yi[None])

    return tuple(vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y).values())


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
            "vg.per_sample_grads", functools.partial(vg_per_sample_grads, model, x, y), expected
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


def rademacher(k: int, n: int, device: torch.device) -> Tensor:
    """The probes vg.hutchinson draws from a generator seeded 0 on `device`."""
    generator = torch.Generator(device).manual_seed(0)
    return 2 * torch.randint(0, 2, (k, n), generator=generator, device=device).float() - 1


def torch_frobenius(f: Func, x: Tensor, k: int) -> Tensor:
    _, vjp_fn = torch.func.vjp(f, x)
    return vmap(vjp_fn)(rademacher(k, x.shape[0], x.device))[0].square().sum(1)


def torch_hessian_trace(f: Func, x: Tensor, k: int) -> Tensor:
    def quadratic_form(z: Tensor) -> Tensor:
        return (z * torch.func.jvp(grad(f), (x,), (z,))[1]).sum()

    return vmap(quadratic_form)(rademacher(k, x.shape[0], x.device))


def hutchinson_cases(sizes: EstimatorSizes, device: torch.device) -> list[Case]:
    n, k = sizes.size, sizes.probes
    f, x, jac = mlp(n, n, n // 2, device)
    z = rademacher(k, n, device).double()
    frobenius = (z @ jac.double()).square().sum(1).float()  # ||J^T z||^2 per probe
    torch.manual_seed(1)
    w, b = (torch.randn(2 * n, n) / n**0.5).to(device), torch.randn(2 * n).to(device)

    def softplus_sum(x: Tensor) -> Tensor:
        return F.softplus(w @ x + b).sum()

    # H = W^T diag(sigmoid'(W x + b)) W, so z^T H z = sum_h sigmoid'(u_h) (W z)_h^2
    u = w.double() @ x.double() + b.double()
    slope = torch.sigmoid(u) * (1 - torch.sigmoid(u))
    traces = ((z @ w.double().T).square() * slope).sum(1).float()

    def vg_hutchinson(func: Func, quantity: str) -> Tensor:
        generator = torch.Generator(device).manual_seed(0)
        return vg.hutchinson(func, x, num_samples=k, quantity=quantity, generator=generator)

    frobenius_methods = (
        Method(FUNC_VJP, functools.partial(torch_frobenius, f, x, k), frobenius),
        Method(HUTCH_F, functools.partial(vg_hutchinson, f, "frobenius"), frobenius),
    )
    trace_methods = (
        Method(FUNC_HVP, functools.partial(torch_hessian_trace, softplus_sum, x, k), traces),
        Method(HUTCH_T, functools.partial(vg_hutchinson, softplus_sum, "hessian_trace"), traces),
    )
    details = f"{k} probes, float32"
    return [
        Case(f"Hutchinson ||J||_F^2, MLP {n}->{n}", details, frobenius_methods, HUTCH_F),
        Case(f"Hutchinson tr H, softplus(W x + b).sum(), {n}", details, trace_methods, HUTCH_T),
    ]


def estimator_cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = ESTIMATOR_SIZES[quick]
    return [param_jacobian_case(sizes, device), *hutchinson_cases(sizes, device)]


def estimator_goals(device: str, cases: Sequence[Case], timings: Sequence[Timing]) -> list[Goal]:
    """Each vecgrad method at most 1.1 times the plain torch.func route in the same run."""
    goals = []
    for case in cases:
        by_method = {t.method: t for t in timings if t.case == case.title}
        (reference,) = (m.name for m in case.methods if m.name != case.baseline)
        text = f"{case.baseline} / {reference}"
        goals.append(ratio_goal(device, text, by_method, case.baseline, (reference,), 1.1, True))
    return goals


# --------------------------------------------------------------------------------------------
# Timing


def wrong(exc: Exception) -> str:
    return f"WRONG: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"


def check(method: Method) -> str | None:
    """Run the method once (this is also its warm-up); return why it is wrong, or None."""
    try:
        torch.testing.assert_close(method.run(), method.expected)
    except Exception as exc:  # a method that raises is reported like one that is wrong
        return wrong(exc)
    return None


def measure(method: Method, cfg: Config) -> tuple[float, float, int]:
    """Median and fastest time per call (scaled by ``method.scale``) and the calls timed.

    torch's Timer picks how many calls make one block (so the clock's resolution does not
    matter), times blocks for ``cfg.min_run_time`` seconds and synchronizes CUDA around each;
    the median is over blocks. It runs with the threads torch uses in this process.
    """
    timer = Timer(stmt="run()", globals={"run": method.run}, num_threads=torch.get_num_threads())
    result = timer.blocked_autorange(min_run_time=cfg.min_run_time)
    calls = result.number_per_run * len(result.times)
    return result.median * method.scale, min(result.times) * method.scale, calls


def time_case(case: Case, cfg: Config, device: torch.device) -> list[Timing]:
    """Check every method against its reference, then time the correct ones."""
    errors = {m.name: check(m) for m in case.methods}
    measured = {m.name: measure(m, cfg) for m in case.methods if errors[m.name] is None}
    base = measured[case.baseline][0] if case.baseline in measured else None
    timings = []
    for m in case.methods:
        median, fastest, calls = measured.get(m.name, (None, None, 0))
        timings.append(
            Timing(
                device=str(device),
                case=case.title,
                method=m.name,
                median_s=median,
                min_s=fastest,
                reps=calls,
                ratio=median / base if base and median is not None else None,
                note=errors[m.name] or m.note,
            )
        )
    return timings


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3g}"


def print_case(case: Case, timings: Sequence[Timing], elapsed: float) -> None:
    print(f"\n{case.title}   [{elapsed:.1f} s; ratio = median / median of {case.baseline}]")
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
    """Goal on median(numerator) / min of median(denominators): `<= limit` if most, else `>=`."""
    used = [timings.get(name) for name in (numerator, *denominators)]
    medians = [t.median_s for t in used if t is not None and t.median_s is not None]
    if len(medians) < len(used):
        return Goal(device, text, "not measured", False)
    value = medians[0] / min(medians[1:])
    passed = value <= limit if most else value >= limit
    measured = f"{value:.3f}x ({'<=' if most else '>='} {limit:g}x)"
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
            (f"{c.name}: auto / best of jacrev, jacfwd", c, AUTO, (JACREV, JACFWD), 1.2, True)
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
        device_timings = []
        for case in [*cases, *estimators]:
            case_started = time.perf_counter()
            case_timings = time_case(case, cfg, device)
            print_case(case, case_timings, time.perf_counter() - case_started)
            device_timings += case_timings
        rows = memory_rows_cpu(args.quick) if device.type == "cpu" else memory_rows(cfg, device)
        print_memory(device, cfg, rows)
        timings += device_timings
        memory[str(device)] = rows
        goals += goals_for(str(device), cases, device_timings, rows)
        goals += estimator_goals(str(device), estimators, device_timings)
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

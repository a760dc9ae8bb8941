"""A seeded fuzz test of every public function over bad and odd arguments.

The calls are generated once, from ``random.Random(SEED)`` and torch generators seeded from it,
so the same calls run on every run, in the same order. A call fails the test when it raises
anything but a TypeError or ValueError whose message starts with ``vecgrad.<function>: ``, when
it returns although the contract says it must refuse (sparse and meta tensors, non-float
dtypes, outputs that are not a real floating-point Tensor, unknown choices), when a result
disagrees with the ``torch.func`` reference (where one is defined and runs; in float64, or with
tolerances for half types), when it changes the caller's tensors, or, for the model functions,
when the model's parameters, buffers, training flags or hooks are not exactly as before.

``test_fuzz_counts`` prints how many calls were made, how many returned and how many were
refused (shown even though pytest captures output). ``test_sparse_and_meta_are_refused`` adds a
systematic sweep (no randomness) of sparse and meta arguments and outputs over every
input-space function and strategy, which one seeded draw cannot all reach.
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import torch
from curvature_reference import Reference
from torch import Tensor, nn
from torch.nn import functional as F

import vecgrad as vg

SEED = 0
CALLS_PER_FUNCTION = {
    "jacobian": 150,
    "batch_jacobian": 70,
    "vjp": 80,
    "jvp": 80,
    "hessian": 70,
    "hvp": 70,
    "hutchinson": 60,
    "numerical_jacobian": 60,
    "param_jacobian": 45,
    "per_sample_grads": 45,
    "loss_jacobian": 45,
    "time_call": 12,
    # Last, so that the calls drawn for the functions above stay those they were.
    "diagonal": 120,
    "color_jacobian": 60,
    "sparse_jacobian": 90,
    "jacobian_sparsity": 45,
    "param_hessian": 30,
    "param_hvp": 40,
    "param_ggnvp": 40,
    "sparse_hessian": 100,
}
TOTAL_CALLS = sum(CALLS_PER_FUNCTION.values())

FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
OTHERS = (torch.int64, torch.bool, torch.complex64)
DTYPES = FLOATS + OTHERS
# About one argument in six is of a layout or dtype the contract refuses.
LAYOUTS = ("dense",) * 8 + ("expanded", "noncontig") * 2 + ("sparse_coo", "sparse_csr", "meta")
SHAPES: tuple[tuple[int, ...], ...] = ((3,), (2, 3), (), (4,), (0,), (2, 0))


# ---------------------------------------------------------------------------------------------
# Arguments: tensors of every dtype and layout, described for the report.
# ---------------------------------------------------------------------------------------------


@dataclass
class Arg:
    """A generated argument, how it was made (for reproducers), and whether it must be refused."""

    value: Any
    text: str
    bad: bool = False

    def __repr__(self) -> str:
        return self.text


def _cast(base: Tensor, dtype: torch.dtype) -> Tensor:
    if dtype == torch.bool:
        return base > 0
    if dtype == torch.int64:
        return (base * 3).round().to(dtype)
    return base.to(dtype)


def make_tensor(
    gen: torch.Generator, layout: str, dtype: torch.dtype, shape: tuple[int, ...]
) -> Arg:
    """A tensor of ``shape``; layout 'expanded' and 'noncontig' keep the shape, strided."""
    text = f"{layout} {str(dtype).removeprefix('torch.')} {shape}"
    bad = dtype in OTHERS or layout in ("sparse_coo", "sparse_csr", "meta")
    if layout == "meta":
        return Arg(torch.empty(shape, dtype=dtype, device="meta"), text, True)
    if layout == "expanded" and len(shape) >= 1 and shape[0] > 1:
        base = torch.randn((1, *shape[1:]), generator=gen, dtype=torch.float64)
        return Arg(_cast(base, dtype).expand(shape), text, bad)
    if layout == "noncontig" and len(shape) == 2:
        base = torch.randn(shape[::-1], generator=gen, dtype=torch.float64)
        return Arg(_cast(base, dtype).t(), text, bad)
    if layout == "noncontig" and len(shape) == 1:
        base = torch.randn((2 * shape[0],), generator=gen, dtype=torch.float64)
        return Arg(_cast(base, dtype)[::2], text, bad)
    dense = _cast(torch.randn(shape, generator=gen, dtype=torch.float64), dtype)
    if layout == "sparse_coo":
        return Arg(dense.to_sparse(), text, True)
    if layout == "sparse_csr":
        if len(shape) == 2:
            with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                return Arg(dense.to_sparse_csr(), text, True)
        return Arg(dense.to_sparse(), text.replace("csr", "coo"), True)
    return Arg(dense, text, bad)


def like(gen: torch.Generator, x: Tensor, layout: str = "dense") -> Arg:
    """A tensor shaped and typed like ``x`` (a tangent or a probe)."""
    dtype = x.dtype if x.dtype.is_floating_point else torch.float64
    return make_tensor(gen, layout, dtype, tuple(x.shape))


# ---------------------------------------------------------------------------------------------
# Functions of the inputs: each takes *xs, some return what vecgrad must refuse.
# ---------------------------------------------------------------------------------------------


def _rest(y: Tensor, xs: tuple[Tensor, ...]) -> Tensor:
    """Make ``y`` depend on every input after the first, through its sum."""
    for x in xs[1:]:
        y = y * (1 + 0.1 * x.sum())
    return y


@dataclass
class Func:
    """A test function: ``call(*xs)``, whether its output must be refused, and what it is."""

    name: str
    call: Callable[..., Any]
    bad_output: bool = False  # a non-Tensor, a tuple, a non-float, sparse or meta output
    several: bool = False  # a tuple of Tensors: valid for jacobian, batch_jacobian, vjp, jvp
    scalar: bool = False  # returns one element (for hessian, hvp, hessian_trace)
    random: bool = False  # draws random numbers: no reference to compare with
    rowwise: bool = True  # row b of the output depends only on row b of the inputs
    grad_inside: bool = False  # calls requires_grad_() (refused under the transforms)
    smooth: bool = True

    def __repr__(self) -> str:
        return self.name


def _requires_grad_inside(*xs: Tensor) -> Tensor:
    return _rest(xs[0].detach().requires_grad_() * xs[0], xs)


# A parameter the next func closes over: results depend on it (and carry a graph to it).
WEIGHT = nn.Parameter(torch.linspace(-1.0, 1.0, 4, dtype=torch.float64))


def _closure(*xs: Tensor) -> Tensor:
    return _rest(torch.tanh(xs[0].unsqueeze(-1) * WEIGHT.to(xs[0].dtype)).sum(-1), xs)


def _item(*xs: Tensor) -> Tensor:
    return _rest(xs[0] * float(xs[0].sum().item()), xs)


FUNCS = [
    Func("sin", lambda *xs: _rest(torch.sin(xs[0]), xs)),
    Func("square", lambda *xs: _rest(xs[0] * xs[0], xs)),
    Func("tanh_times_sum", lambda *xs: _rest(xs[0].tanh() * xs[0].sum(), xs), rowwise=False),
    Func(
        "flip_cat",
        lambda *xs: _rest(torch.cat([xs[0].reshape(-1), 2 * xs[0].reshape(-1).flip(0)]), xs),
        rowwise=False,
    ),
    Func("row_sum", lambda *xs: _rest(xs[0].sum(-1, keepdim=True) ** 2, xs)),
    Func("sum_sq", lambda *xs: _rest((xs[0] ** 2).sum(), xs), scalar=True, rowwise=False),
    Func("exp_mean", lambda *xs: _rest(xs[0].exp().sum() / 3, xs), scalar=True, rowwise=False),
    Func("cube_sum_1", lambda *xs: _rest((xs[0] ** 3).sum().reshape(1), xs), scalar=True),
    Func("first_only", lambda *xs: torch.sin(xs[0])),
    Func("const", lambda *xs: torch.ones(2, dtype=xs[0].dtype), rowwise=False),
    Func("const_scalar", lambda *xs: torch.tensor(1.5, dtype=xs[0].dtype), scalar=True),
    Func("detached", lambda *xs: _rest(xs[0].detach() * 2, xs)),
    Func("clone_inplace", lambda *xs: _rest(xs[0].clone().mul_(2).sin_(), xs)),
    Func("to_double", lambda *xs: _rest(xs[0].double() * 2, xs)),
    Func("to_half", lambda *xs: _rest(xs[0].half().sin(), xs)),
    Func("dropout", lambda *xs: _rest(F.dropout(xs[0], 0.5, training=True), xs), random=True),
    Func("item", _item, rowwise=False, smooth=False),
    Func("closure_param", _closure),
    Func("requires_grad_", _requires_grad_inside, grad_inside=True),
    Func("abs", lambda *xs: _rest(xs[0].abs(), xs), smooth=False),
    Func("float_out", lambda *xs: 3.0, bad_output=True),
    Func("none_out", lambda *xs: None, bad_output=True),
    Func(
        "tuple_out",
        lambda *xs: (_rest(torch.sin(xs[0]), xs), 2 * xs[0]),
        bad_output=True,
        several=True,
    ),
    Func("list_out", lambda *xs: [xs[0]], bad_output=True),
    Func("int_out", lambda *xs: (xs[0] * 3).long(), bad_output=True),
    Func("bool_out", lambda *xs: xs[0] > 0, bad_output=True),
    Func("complex_out", lambda *xs: xs[0].to(torch.complex64) * 1j, bad_output=True),
    Func("sparse_out", lambda *xs: xs[0].to_sparse(), bad_output=True),
    Func("meta_out", lambda *xs: torch.empty_like(xs[0], device="meta"), bad_output=True),
]


# ---------------------------------------------------------------------------------------------
# Models for the model functions (and as funcs of the inputs).
# ---------------------------------------------------------------------------------------------


@dataclass
class Model:
    """A model, what it is, and whether the model functions must refuse it."""

    name: str
    module: nn.Module
    bad: bool = False  # batch statistics, or no trainable parameter
    random: bool = False
    embedding: bool = False  # takes integer token ids
    out: int = 2  # output features of one sample

    def __repr__(self) -> str:
        return self.name


def make_model(rng: random.Random, dtype: torch.dtype) -> Model:
    """One of the models of the fuzz (initialised from torch's global generator, seeded)."""
    kind = rng.choice(
        [
            "linear",
            "mlp",
            "reused",
            "frozen",
            "all_frozen",
            "dropout_train",
            "dropout_eval",
            "bn_train",
            "bn_eval",
            "bn_no_stats",
            "embedding",
        ]
    )
    if kind == "linear":
        return Model(kind, nn.Linear(3, 2).to(dtype))
    if kind == "mlp":
        return Model(kind, nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(dtype))
    if kind == "reused":
        lin = nn.Linear(3, 3)
        return Model(kind, nn.Sequential(lin, nn.Tanh(), lin).to(dtype), out=3)
    if kind in ("frozen", "all_frozen"):
        module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(dtype)
        frozen = module.parameters() if kind == "all_frozen" else module[0].parameters()
        for p in frozen:
            p.requires_grad_(False)
        return Model(kind, module, bad=kind == "all_frozen")
    if kind.startswith("dropout"):
        module = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)).to(dtype)
        module.train(kind == "dropout_train")
        return Model(kind, module, random=kind == "dropout_train")
    if kind.startswith("bn"):
        norm = nn.BatchNorm1d(4, track_running_stats=kind != "bn_no_stats")
        module = nn.Sequential(nn.Linear(3, 4), norm, nn.Linear(4, 2)).to(dtype)
        if norm.running_mean is not None:
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 1.5)
        module.train(kind == "bn_train")
        return Model(kind, module, bad=kind != "bn_eval")
    module = nn.Sequential(nn.Embedding(7, 3), nn.Flatten(), nn.Linear(6, 2)).to(dtype)
    return Model(kind, module, embedding=True)


@dataclass
class Snapshot:
    """Everything of a model that no vecgrad function may change."""

    params: list[tuple[str, int, Tensor, bool, Tensor | None]]
    buffers: list[tuple[str, int, Tensor]]
    training: list[bool]
    hooks: list[tuple[int, int, int, int]]

    @classmethod
    def of(cls, model: nn.Module) -> Snapshot:
        return cls(
            [
                (n, id(p), p.detach().clone(), p.requires_grad, p.grad)
                for n, p in model.named_parameters(remove_duplicate=False)
            ],
            [(n, id(b), b.clone()) for n, b in model.named_buffers(remove_duplicate=False)],
            [m.training for m in model.modules()],
            [
                (
                    len(m._forward_hooks),
                    len(m._forward_pre_hooks),
                    len(m._backward_hooks),
                    len(m._state_dict_hooks),
                )
                for m in model.modules()
            ],
        )

    def changes(self, model: nn.Module) -> str | None:
        now = Snapshot.of(model)
        for (n, i, v, rg, g), (n2, i2, v2, rg2, g2) in zip(self.params, now.params, strict=True):
            if n != n2 or i != i2:
                return f"parameter {n} replaced (now {n2}, same object: {i == i2})"
            if rg != rg2:
                return f"parameter {n}: requires_grad {rg} -> {rg2}"
            if g is not g2:
                return f"parameter {n}: .grad changed from {g!r:.40} to {g2!r:.40}"
            if not torch.equal(v, v2):
                return f"parameter {n} changed value"
        if [(n, i) for n, i, _ in self.buffers] != [(n, i) for n, i, _ in now.buffers]:
            return "buffers replaced"
        for (n, _, v), (_, _, v2) in zip(self.buffers, now.buffers, strict=True):
            if not torch.equal(v, v2):
                return f"buffer {n} changed value"
        if self.training != now.training:
            return "training flags changed"
        if self.hooks != now.hooks:
            return "hooks changed"
        return None


# ---------------------------------------------------------------------------------------------
# One call: how to run it, and how to check what it returned.
# ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One generated call of ``vecgrad.<name>``."""

    name: str
    text: str
    run: Callable[[], Any]
    must_refuse: bool = False
    check: Callable[[Any], str | None] | None = None
    guarded: list[Tensor] = field(default_factory=list)  # caller's tensors, unchanged after
    model: nn.Module | None = None
    prepare: Callable[[], None] | None = None  # runs before the model's snapshot


@dataclass
class Outcome:
    name: str
    text: str
    kind: str  # 'returned', 'refused' or 'failed'
    detail: str = ""
    compared: bool = False  # a result was compared with a torch.func reference


TOL = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (3e-2, 3e-2),
    torch.bfloat16: (1e-1, 1e-1),
}


def tolerance(*dtypes: torch.dtype) -> tuple[float, float]:
    """The loosest tolerance among ``dtypes`` (rtol, atol)."""
    pairs = [TOL.get(d, TOL[torch.float64]) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def flat(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in flat(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in flat(item)]
    return [value]


COMPARED = [0]  # how many results were compared with a reference (for the summary)


def compare(got: Any, want: Any, dtypes: tuple[torch.dtype, ...], what: str) -> str | None:
    """Compare nested results value by value (in float64), with the tolerance of ``dtypes``."""
    COMPARED[0] += 1
    got_items, want_items = flat(got), flat(want)
    if len(got_items) != len(want_items):
        return f"{what}: {len(got_items)} tensors, reference has {len(want_items)}"
    rtol, atol = tolerance(*dtypes)
    for k, (g, w) in enumerate(zip(got_items, want_items, strict=True)):
        if not isinstance(g, Tensor):
            return f"{what}[{k}]: got {type(g).__name__}, not a Tensor"
        if g.layout != torch.strided or g.device.type != "cpu":
            return f"{what}[{k}]: got layout {g.layout} on {g.device}"
        if g.shape != w.shape:
            return f"{what}[{k}]: shape {tuple(g.shape)}, reference {tuple(w.shape)}"
        g64, w64 = g.detach().double(), w.detach().double()
        scale = 1.0 + (w64.abs().max().item() if w64.numel() else 0.0)
        if not torch.allclose(g64, w64, rtol=rtol, atol=atol * scale, equal_nan=True):
            diff = (g64 - w64).abs().max().item()
            return f"{what}[{k}]: values differ from the reference by up to {diff:.3g}"
    return None


def check_dtypes(got: Any, want: list[torch.dtype], what: str) -> str | None:
    items = flat(got)
    dtypes = [t.dtype for t in items if isinstance(t, Tensor)]
    if dtypes != want:
        return f"{what}: dtypes {dtypes}, expected {want}"
    return None


def reference(fn: Callable[[], Any]) -> Any:
    """The torch.func reference, or None where it does not run (then nothing is compared)."""
    try:
        return fn()
    except Exception:
        return None


def as64(xs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return tuple(x.detach().to(torch.float64).contiguous() for x in xs)


# ---------------------------------------------------------------------------------------------
# Generators, one per public function.
# ---------------------------------------------------------------------------------------------


class Gen:
    """Draws the arguments of the calls, from one random.Random and one torch.Generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)

    def choice(self, options: Any, weights: list[float] | None = None) -> Any:
        return self.rng.choices(list(options), weights=weights)[0]

    def dtype(self) -> torch.dtype:
        return self.choice(DTYPES, weights=[6, 5, 2, 2, 1, 1, 1])

    def layout(self) -> str:
        return self.choice(LAYOUTS)

    def tensor(self, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None) -> Arg:
        shape = self.choice(SHAPES) if shape is None else shape
        return make_tensor(self.gen, self.layout(), dtype or self.dtype(), shape)

    def inputs(self, batch: bool = False) -> tuple[Arg, tuple[Tensor, ...] | None]:
        """``inputs`` as passed (Tensor, tuple, or something bad), and the tuple of tensors."""
        form = self.choice(["tensor", "tuple", "bad"], weights=[7, 2, 1])
        shapes = ((2, 3), (3, 3), (1, 4), (0, 3), (3,), ()) if batch else SHAPES
        if form == "bad":
            bad = self.choice(["list", "empty", "float", "none", "with_int"])
            x = self.tensor(self.choice(shapes), torch.float64)
            value = {
                "list": [x.value],
                "empty": (),
                "float": 1.5,
                "none": None,
                "with_int": (x.value, 2),
            }[bad]
            return Arg(value, f"{bad} inputs", True), None
        first = self.tensor(self.choice(shapes))
        if form == "tensor":
            return first, (first.value,)
        if batch and first.value.dim() > 0:
            second_shape = self.choice([(first.value.shape[0], 2), (first.value.shape[0],), (5,)])
        else:
            second_shape = self.choice(SHAPES)
        second = self.tensor(second_shape, self.choice([first.value.dtype, torch.float64]))
        text = f"({first.text}, {second.text})"
        return Arg((first.value, second.value), text, first.bad or second.bad), (
            first.value,
            second.value,
        )

    def func(self, scalar: bool = False) -> Func:
        if self.rng.random() < 0.15:
            return self.choice([f for f in FUNCS if f.bad_output])
        good = [f for f in FUNCS if not f.bad_output]
        pool = [f for f in good if f.scalar] if scalar and self.rng.random() < 0.8 else good
        return self.choice(pool)

    def strategy(self, allowed: tuple[str, ...]) -> Arg:
        if self.rng.random() < 0.9:
            s = self.choice(allowed)
            return Arg(s, repr(s))
        bad = self.choice(["fast", 3, None, "loop" if "loop" not in allowed else "Forward"])
        return Arg(bad, repr(bad), True)

    def chunk_size(self) -> Arg:
        value = self.choice([None] * 10 + [1, 2, 3] * 2 + [0, -1, 1.5, True, "2"])
        bad = value is not None and (isinstance(value, bool) or not isinstance(value, int))
        return Arg(value, repr(value), bad or (isinstance(value, int) and value < 1))


def _valid_output(func: Func, xs: tuple[Tensor, ...] | None) -> Tensor | None:
    """func's output at float64 copies of xs (its shape and dtype for checks), or None."""
    if xs is None or func.bad_output:
        return None
    try:
        with torch.no_grad():
            out = func.call(*xs)
    except Exception:
        return None
    return out if isinstance(out, Tensor) else None


def _refused(func: Func) -> bool:
    """Whether jacobian, batch_jacobian, vjp and jvp must refuse ``func``'s output."""
    return func.bad_output and not func.several


def _several_outputs(func: Func, xs: tuple[Tensor, ...] | None) -> tuple[Tensor, ...] | None:
    """The outputs of a func of several outputs at float inputs, for references; else None."""
    if not func.several or not _float_inputs(xs):
        return None
    assert xs is not None
    with torch.no_grad():
        return tuple(func.call(*xs))


def _checkable(func: Func, xs: tuple[Tensor, ...] | None) -> Tensor | None:
    """func's output where a result can be checked (float inputs, no randomness), else None."""
    if not _float_inputs(xs) or func.random:
        return None
    return _valid_output(func, xs)


def _float_inputs(xs: tuple[Tensor, ...] | None) -> bool:
    return xs is not None and all(
        x.dtype.is_floating_point and x.layout == torch.strided and x.device.type == "cpu"
        for x in xs
    )


def _pack(arg: Arg, values: tuple[Tensor, ...]) -> Any:
    return values if isinstance(arg.value, tuple) else values[0]


def gen_jacobian(g: Gen, name: str) -> Case:
    batch = name == "batch_jacobian"
    inputs, xs = g.inputs(batch=batch)
    func = g.func()
    strategies = ("auto", "reverse", "forward") if batch else ("auto", "reverse", "forward", "loop")
    strategy = g.strategy(strategies)
    chunk = g.chunk_size()
    fn = getattr(vg, name)
    must = inputs.bad or _refused(func) or strategy.bad or chunk.bad
    if strategy.value == "loop" and chunk.value is not None:
        must = True
    if func.grad_inside:
        must = True
    if batch and _float_inputs(xs):
        assert xs is not None
        out = _valid_output(func, xs)
        unbatched = any(x.dim() == 0 for x in xs) or len({x.shape[0] for x in xs}) > 1
        wrong_rows = out is not None and (out.dim() == 0 or out.shape[0] != xs[0].shape[0])
        must = must or unbatched or wrong_rows
    text = f"{name}({func!r}, {inputs!r}, strategy={strategy!r}, chunk_size={chunk!r})"

    def run() -> Any:
        return fn(func.call, inputs.value, strategy=strategy.value, chunk_size=chunk.value)

    def check(result: Any) -> str | None:
        outs = _several_outputs(func, xs)
        out = outs[0] if outs is not None else _checkable(func, xs)
        if out is None:
            return None
        tup = xs
        if not batch and outs is None:  # the contract's dtype rule (item 3) is for jacobian
            want_dtypes = [torch.promote_types(out.dtype, x.dtype) for x in tup]
            problem = check_dtypes(result, want_dtypes, name)
            if problem:
                return problem
        x64 = as64(tup)
        argnums = tuple(range(len(tup)))
        if batch:
            if not func.rowwise or (len(tup) > 1 and func.name != "first_only"):
                return None  # _rest mixes the rows of the later inputs

            def row(*rows: Tensor) -> Any:
                output = func.call(*(r.unsqueeze(0) for r in rows))
                return tuple(o[0] for o in output) if func.several else output[0]

            want = reference(lambda: torch.func.vmap(torch.func.jacrev(row, argnums))(*x64))
        else:
            want = reference(lambda: torch.func.jacrev(func.call, argnums)(*x64))
        if want is None:
            return None
        return compare(result, want, (*tuple(x.dtype for x in tup), out.dtype), name)

    return Case(name, text, run, must, check, guarded=list(xs or ()))


def gen_vjp(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func()
    out = _valid_output(func, xs) if _float_inputs(xs) else None
    form = g.choice(["good"] * 10 + ["shape", "dtype", "tuple", "none", "layout"])
    outs = _several_outputs(func, xs)
    v: Arg
    if outs is not None and form == "good":  # one cotangent per output
        vs = [like(g.gen, o) for o in outs]
        v = Arg(tuple(t.value for t in vs), "(" + ", ".join(t.text for t in vs) + ")", False)
    elif out is None or form == "none":
        v = Arg(None, "None", True) if form == "none" else g.tensor((3,), torch.float64)
    elif form == "good":
        v = like(g.gen, out, g.choice(["dense", "dense", "expanded", "noncontig"]))
    elif form == "shape":
        v = g.tensor((*out.shape, 2), out.dtype)
        v.bad = True
    elif form == "dtype":
        other = g.choice([d for d in DTYPES if d != out.dtype])
        v = make_tensor(g.gen, "dense", other, tuple(out.shape))
        v.bad = True
    elif form == "tuple":
        t = like(g.gen, out)
        v = Arg((t.value,), f"({t.text},)", True)
    else:
        v = like(g.gen, out, g.choice(["sparse_coo", "meta"]))
    must = inputs.bad or _refused(func) or v.bad or func.grad_inside
    if func.several and not isinstance(v.value, tuple):
        must = True  # a Tensor cotangent for a tuple of outputs
    text = f"vjp({func!r}, {inputs!r}, v={v!r})"

    def run() -> Any:
        return vg.vjp(func.call, inputs.value, v.value)

    def check(result: Any) -> str | None:
        if outs is not None and isinstance(v.value, tuple):
            out_dtype, cotangents = outs[0].dtype, tuple(t.detach().double() for t in v.value)
        elif out is not None and not func.random and isinstance(v.value, Tensor):
            out_dtype, cotangents = out.dtype, v.value.detach().double()
        else:
            return None
        tup = xs
        x64 = as64(tup)
        want_out, vjp_fn = torch.func.vjp(func.call, *x64)
        want = reference(lambda: vjp_fn(cotangents))
        if want is None:
            return None
        problem = compare(result[0], want_out, (out_dtype,), "vjp output")
        return problem or compare(
            result[1], _pack(inputs, want), (*tuple(x.dtype for x in tup), out_dtype), "vjp"
        )

    guarded = list(xs or ()) + [t for t in flat(v.value) if isinstance(t, Tensor)]
    return Case(name, text, run, must, check, guarded)


def _tangents(g: Gen, inputs: Arg, xs: tuple[Tensor, ...] | None) -> Arg:
    """A ``v`` like ``inputs`` (good most of the time), for jvp and hvp."""
    if xs is None:
        t = g.tensor((3,), torch.float64)
        return Arg(t.value, t.text, False)
    form = g.choice(["good"] * 10 + ["shape", "dtype", "structure", "layout"])
    if form == "good":
        ts = [like(g.gen, x, g.choice(["dense", "dense", "expanded", "noncontig"])) for x in xs]
    elif form == "shape":
        ts = [g.tensor((*x.shape, 2), x.dtype) for x in xs]
    elif form == "dtype":
        ts = [make_tensor(g.gen, "dense", torch.int64, tuple(x.shape)) for x in xs]
    elif form == "layout":
        ts = [like(g.gen, x, g.choice(["sparse_coo", "meta"])) for x in xs]
    else:
        ts = [like(g.gen, x) for x in xs]
        wrong = tuple(t.value for t in ts) if not isinstance(inputs.value, tuple) else ts[0].value
        return Arg(wrong, "v of the wrong structure", True)
    bad = form != "good" or any(t.bad for t in ts)
    if isinstance(inputs.value, tuple):
        return Arg(tuple(t.value for t in ts), "(" + ", ".join(t.text for t in ts) + ")", bad)
    return Arg(ts[0].value, ts[0].text, bad)


def gen_jvp(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func()
    v = _tangents(g, inputs, xs)
    must = inputs.bad or _refused(func) or v.bad or func.grad_inside
    text = f"jvp({func!r}, {inputs!r}, v={v!r})"

    def run() -> Any:
        return vg.jvp(func.call, inputs.value, v.value)

    def check(result: Any) -> str | None:
        outs = _several_outputs(func, xs)
        out = outs[0] if outs is not None else _checkable(func, xs)
        if out is None:
            return None
        tup = xs
        vs = v.value if isinstance(v.value, tuple) else (v.value,)
        want = reference(
            lambda: torch.func.jvp(func.call, as64(tup), tuple(t.double() for t in vs))
        )
        if want is None:
            return None
        return compare(result, want, (*tuple(x.dtype for x in tup), out.dtype), "jvp")

    guarded = list(xs or ()) + [t for t in flat(v.value) if isinstance(t, Tensor)]
    return Case(name, text, run, must, check, guarded)


def _scalar_output_bad(func: Func, xs: tuple[Tensor, ...] | None) -> bool:
    out = _valid_output(func, xs) if _float_inputs(xs) else None
    return out is not None and out.numel() != 1


def gen_hessian(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func(scalar=True)
    must = inputs.bad or func.bad_output or func.grad_inside or _scalar_output_bad(func, xs)
    text = f"hessian({func!r}, {inputs!r})"

    def run() -> Any:
        return vg.hessian(func.call, inputs.value)

    def check(result: Any) -> str | None:
        out = _checkable(func, xs)
        if out is None:
            return None
        tup = xs
        argnums = tuple(range(len(tup)))
        shapes = [tuple(a.shape) + tuple(b.shape) for a in tup for b in tup]
        got_shapes = [tuple(t.shape) for t in flat(result)]
        if got_shapes != shapes:
            return f"hessian: shapes {got_shapes}, expected {shapes}"
        want = reference(
            lambda: torch.func.hessian(lambda *a: func.call(*a).reshape(()), argnums)(*as64(tup))
        )
        if want is None:
            return None
        want = want if isinstance(inputs.value, tuple) else want[0][0]
        return compare(result, want, (*tuple(x.dtype for x in tup), out.dtype), "hessian")

    return Case(name, text, run, must, check, guarded=list(xs or ()))


def gen_hvp(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func(scalar=True)
    v = _tangents(g, inputs, xs)
    must = (
        inputs.bad or func.bad_output or v.bad or func.grad_inside or _scalar_output_bad(func, xs)
    )
    text = f"hvp({func!r}, {inputs!r}, v={v!r})"

    def run() -> Any:
        return vg.hvp(func.call, inputs.value, v.value)

    def check(result: Any) -> str | None:
        out = _checkable(func, xs)
        if out is None:
            return None
        tup = xs
        vs = tuple(t.double() for t in (v.value if isinstance(v.value, tuple) else (v.value,)))
        argnums = tuple(range(len(tup)))
        grad_fn = torch.func.grad(lambda *a: func.call(*a).reshape(()), argnums)
        want = reference(lambda: torch.func.jvp(grad_fn, as64(tup), vs)[1])
        if want is None:
            return None
        problem = compare(result[0], func.call(*as64(tup)), (out.dtype,), "hvp output")
        return problem or compare(
            result[1], _pack(inputs, want), (*tuple(x.dtype for x in tup), out.dtype), "hvp"
        )

    guarded = list(xs or ()) + [t for t in flat(v.value) if isinstance(t, Tensor)]
    return Case(name, text, run, must, check, guarded)


def _probes(gen: torch.Generator, num: int, shape: tuple[int, ...]) -> Tensor:
    bits = torch.randint(0, 2, (num, *shape), generator=gen)
    return bits.to(torch.float64) * 2 - 1


def gen_hutchinson(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    quantity = g.choice(["frobenius"] * 5 + ["hessian_trace"] * 4 + ["trace", 1])
    scalar = quantity == "hessian_trace"
    func = g.func(scalar=scalar)
    num = g.choice([1, 3, 4] * 3 + [0, -2, 2.0, True])
    chunk = g.chunk_size()
    seed = g.rng.randrange(1000)
    use_gen = g.choice([True] * 5 + [False] * 3 + ["gen"])
    must = (
        inputs.bad
        or func.bad_output
        or func.grad_inside
        or chunk.bad
        or quantity not in ("frobenius", "hessian_trace")
        or isinstance(num, bool)
        or not isinstance(num, int)
        or num < 1
        or use_gen == "gen"
        or (scalar and _scalar_output_bad(func, xs))
    )
    gen_text = {True: f"Generator().manual_seed({seed})", False: "None", "gen": "'gen'"}[use_gen]
    text = (
        f"hutchinson({func!r}, {inputs!r}, num_samples={num!r}, quantity={quantity!r}, "
        f"chunk_size={chunk!r}, generator={gen_text}) after torch.manual_seed({seed})"
    )

    def generator() -> Any:
        if use_gen is True:
            return torch.Generator().manual_seed(seed)
        return "gen" if use_gen == "gen" else None

    def run() -> Any:
        torch.manual_seed(seed)
        return vg.hutchinson(
            func.call,
            inputs.value,
            num_samples=num,
            quantity=quantity,
            chunk_size=chunk.value,
            generator=generator(),
        )

    def check(result: Any) -> str | None:
        if not _float_inputs(xs) or func.random or not isinstance(num, int):
            return None
        tup = xs
        out = _valid_output(func, tup)
        if out is None:
            return None
        gen = generator() if use_gen is True else torch.Generator().manual_seed(seed)
        if use_gen is not True:
            gen.set_state(_global_state(seed))
        x64 = as64(tup)
        if quantity == "frobenius":
            want_dtype = torch.promote_types(out.dtype, tup[0].dtype)
            for x in tup[1:]:
                want_dtype = torch.promote_types(want_dtype, x.dtype)
            z = _probes(gen, num, tuple(out.shape))
            _, vjp_fn = torch.func.vjp(func.call, *x64)
            want = reference(
                lambda: torch.stack(
                    [sum((t**2).sum() for t in vjp_fn(zk)) for zk in z] if num else []
                )
            )
        else:
            want_dtype = tup[0].dtype
            for x in tup[1:]:
                want_dtype = torch.promote_types(want_dtype, x.dtype)
            zs = [_probes(gen, num, tuple(x.shape)) for x in tup]
            argnums = tuple(range(len(tup)))
            grad_fn = torch.func.grad(lambda *a: func.call(*a).reshape(()), argnums)

            def one(k: int) -> Tensor:
                zk = tuple(z[k] for z in zs)
                hz = torch.func.jvp(grad_fn, x64, zk)[1]
                return sum((a * b).sum() for a, b in zip(zk, hz, strict=True))

            want = reference(lambda: torch.stack([one(k) for k in range(num)]))
        if want is None:
            return None
        problem = check_dtypes(result, [want_dtype], "hutchinson")
        return problem or compare(
            result, want, (*tuple(x.dtype for x in tup), out.dtype), "hutchinson"
        )

    return Case(name, text, run, bool(must), check, guarded=list(xs or ()))


def _global_state(seed: int) -> Tensor:
    """The global CPU generator's state right after ``torch.manual_seed(seed)``."""
    return torch.Generator().manual_seed(seed).get_state()


def _colors(g: Gen, xs: tuple[Tensor, ...] | None) -> Arg:
    """``colors`` for vecgrad.diagonal: None, good (shaped like the input, or flat), or bad."""
    form = g.choice(["none"] * 6 + ["good"] * 4 + ["flat"] * 2 + ["float", "shape", "list", "meta"])
    shape = tuple(xs[0].shape) if xs else (3,)
    numel = math.prod(shape)
    if form == "none":
        return Arg(None, "None")
    if form in ("good", "flat"):
        colors = torch.randint(0, 3, shape if form == "good" else (numel,), generator=g.gen)
        return Arg(colors, f"{form} colors {colors.tolist()}")
    bad = {
        "float": lambda: torch.zeros(shape),
        "shape": lambda: torch.zeros(numel + 1, dtype=torch.long),
        "list": lambda: [0] * numel,
        "meta": lambda: torch.zeros(shape, dtype=torch.long, device="meta"),
    }[form]()
    return Arg(bad, f"{form} colors", True)


def gen_diagonal(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    of = g.choice(["jacobian"] * 6 + ["hessian"] * 5 + ["laplacian"])
    func = g.func(scalar=of == "hessian")
    elementwise = g.choice([False] * 8 + [True] * 4 + [1])
    colors = _colors(g, xs)
    chunk = g.chunk_size()
    must = (
        inputs.bad
        or isinstance(inputs.value, tuple)  # one Tensor only
        or func.bad_output
        or func.grad_inside
        or of not in ("jacobian", "hessian")
        or not isinstance(elementwise, bool)
        or colors.bad
        or (elementwise is True and colors.value is not None)
        or chunk.bad
    )
    if of == "hessian":
        must = must or _scalar_output_bad(func, xs)
    elif of == "jacobian" and _float_inputs(xs):
        assert xs is not None
        out = _valid_output(func, xs)
        must = must or (out is not None and out.shape != xs[0].shape)
    text = (
        f"diagonal({func!r}, {inputs!r}, of={of!r}, elementwise={elementwise!r}, "
        f"colors={colors!r}, chunk_size={chunk!r})"
    )

    def run() -> Any:
        return vg.diagonal(
            func.call,
            inputs.value,
            of=of,
            elementwise=elementwise,
            colors=colors.value,
            chunk_size=chunk.value,
        )

    def check(result: Any) -> str | None:
        if not _float_inputs(xs) or func.random:
            return None
        assert xs is not None
        x = xs[0]
        out = _valid_output(func, xs)
        if out is None:
            return None
        want_dtype = torch.promote_types(out.dtype, x.dtype) if of == "jacobian" else x.dtype
        problem = check_dtypes(result, [want_dtype], name)
        if problem:
            return problem
        # Whatever the colours, element i is the sum of row i over the columns of i's colour.
        n = x.numel()
        if colors.value is not None:
            groups = colors.value.reshape(-1)
        elif elementwise:
            groups = torch.zeros(n, dtype=torch.long)
        else:
            groups = torch.arange(n)
        same = (groups[:, None] == groups[None, :]).to(torch.float64)
        x64 = as64(xs)[0]
        if of == "jacobian":
            full = reference(lambda: torch.func.jacfwd(func.call)(x64))
        else:
            full = reference(lambda: torch.func.hessian(lambda t: func.call(t).reshape(()))(x64))
        if full is None:
            return None
        want = (full.double().reshape(n, n) * same).sum(1).reshape(x.shape)
        return compare(result, want, (x.dtype, out.dtype), name)

    return Case(name, text, run, bool(must), check, guarded=list(xs or ()))


def gen_numerical(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func()
    eps = g.choice([None] * 8 + [1e-3] * 3 + [1e-300, 0.0, -1.0, math.nan, "1e-3", True])
    bad_eps = eps is not None and (type(eps) is not float or not 0 < eps < math.inf)
    must = inputs.bad or func.bad_output or bad_eps
    text = f"numerical_jacobian({func!r}, {inputs!r}, eps={eps!r})"

    def run() -> Any:
        return vg.numerical_jacobian(func.call, inputs.value, eps=eps)

    def check(result: Any) -> str | None:
        if not _float_inputs(xs) or func.random or not func.smooth or eps == 1e-300:
            return None
        tup = xs
        out = _valid_output(func, tup)
        if out is None:
            return None
        dtypes = (*tuple(x.dtype for x in tup), out.dtype)
        want_dtypes = [torch.promote_types(out.dtype, x.dtype) for x in tup]
        problem = check_dtypes(result, want_dtypes, name)
        if problem or any(d not in (torch.float64,) for d in dtypes):
            return problem  # only float64 is accurate enough to compare values with
        argnums = tuple(range(len(tup)))
        want = reference(lambda: torch.func.jacrev(func.call, argnums)(*as64(tup)))
        if want is None:
            return None
        want = want if isinstance(inputs.value, tuple) else want[0]
        got = result if isinstance(result, tuple) else (result,)
        wants = want if isinstance(want, tuple) else (want,)
        for k, (a, b) in enumerate(zip(got, wants, strict=True)):
            if a.shape != b.shape:
                return f"numerical_jacobian[{k}]: shape {tuple(a.shape)} vs {tuple(b.shape)}"
            step = 1e-3 if eps == 1e-3 else 1e-5
            if not torch.allclose(a.detach(), b, rtol=step, atol=step):
                return f"numerical_jacobian[{k}]: differs from jacrev beyond {step}"
        return None

    return Case(name, text, run, bool(must), check, guarded=list(xs or ()))


def _batch(g: Gen, model: Model, dtype: torch.dtype) -> tuple[Arg, Tensor | None]:
    """A batch for ``model``: good most of the time, else 0-d, empty, sparse, meta, a list."""
    form = g.choice(["good"] * 12 + ["zero_dim", "empty", "sparse", "meta", "list"])
    n = g.choice([1, 3, 4])
    if model.embedding:
        good = torch.randint(0, 7, (n, 2), generator=g.gen)
    else:
        good = torch.randn((n, 3), generator=g.gen, dtype=torch.float64).to(dtype)
        if g.rng.random() < 0.3:
            good = torch.randn((3, n), generator=g.gen, dtype=torch.float64).to(dtype).t()
    text = f"{str(good.dtype).removeprefix('torch.')} {tuple(good.shape)}"
    if form == "good":
        return Arg(good, text), good
    if form == "zero_dim":
        return Arg(good[0, 0], "0-d tensor", True), None
    if form == "empty":
        return Arg(good[:0], f"empty batch {tuple(good[:0].shape)}", True), None
    if form == "sparse":
        return Arg(good.to_sparse(), f"sparse {text}", True), None
    if form == "meta":
        return Arg(good.to("meta"), f"meta {text}", True), None
    return Arg(good.tolist(), "a list", True), None


def _model_case(
    name: str, text: str, run: Callable[[], Any], must: bool, check: Any, model: Model
) -> Case:
    return Case(name, text, run, must, check, model=model.module)


def gen_param_jacobian(g: Gen, name: str) -> Case:
    dtype = g.choice([torch.float64, torch.float32])
    model = make_model(g.rng, dtype)
    inputs, xb = _batch(g, model, dtype)
    chunk = g.chunk_size()
    graph = g.choice([False, False, True])
    must = model.bad or inputs.bad or chunk.bad
    text = (
        f"param_jacobian({model!r} {dtype}, {inputs!r}, chunk_size={chunk!r}, create_graph={graph})"
    )

    def run() -> Any:
        kwargs = {"create_graph": True} if graph else {}
        return vg.param_jacobian(model.module, inputs.value, chunk_size=chunk.value, **kwargs)

    def check(result: Any) -> str | None:
        if xb is None or model.random:
            return None
        # A copy: torch.func.functional_call replaces the parameters of a reused submodule.
        module = copy.deepcopy(model.module)
        params = {n: p.detach() for n, p in module.named_parameters() if p.requires_grad}
        fixed = {n: p.detach() for n, p in module.named_parameters() if not p.requires_grad}
        fixed.update(dict(module.named_buffers()))

        def sample(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return torch.func.functional_call(module, (p, fixed), (x.unsqueeze(0),))[0]

        want = reference(
            lambda: torch.func.vmap(torch.func.jacrev(sample), in_dims=(None, 0))(params, xb)
        )
        if want is None:
            return None
        if not isinstance(result, dict) or list(result) != list(want):
            return f"param_jacobian: keys {list(result)}, expected {list(want)}"
        if graph is False and any(t.requires_grad for t in result.values()):
            return "param_jacobian: result requires grad without create_graph"
        return compare(result, want, (dtype,), "param_jacobian")

    return _model_case(name, text, run, must, check, model)


def _loss_fn(g: Gen) -> tuple[str, Callable[..., Any], bool]:
    kind = g.choice(["mse"] * 4 + ["sum_sq"] * 3 + ["vector", "tuple", "int"])
    if kind == "mse":
        return kind, F.mse_loss, False
    if kind == "sum_sq":
        return kind, lambda p, y: ((p - y) ** 2).sum(), False
    if kind == "vector":
        return kind, lambda p, y: (p - y) ** 2, True
    if kind == "tuple":
        return kind, lambda p, y: (F.mse_loss(p, y), p), True
    return kind, lambda p, y: (p > y).sum(), True


def gen_per_sample(g: Gen, name: str) -> Case:
    dtype = g.choice([torch.float64, torch.float32])
    model = make_model(g.rng, dtype)
    inputs, xb = _batch(g, model, dtype)
    n = xb.shape[0] if xb is not None else 3
    targets_form = g.choice(["good"] * 10 + ["mismatch", "zero_dim", "meta"])
    targets = torch.randn((n, model.out), generator=g.gen, dtype=torch.float64).to(dtype)
    target_arg = Arg(targets, f"targets {tuple(targets.shape)}")
    if targets_form == "mismatch":
        target_arg = Arg(targets[:0] if n > 1 else targets.repeat(2, 1), "mismatched targets", True)
    elif targets_form == "zero_dim":
        target_arg = Arg(targets[0, 0], "0-d targets", True)
    elif targets_form == "meta":
        target_arg = Arg(targets.to("meta"), "meta targets", True)
    loss_name, loss_fn, bad_loss = _loss_fn(g)
    graph = g.choice([False, False, True])
    must = model.bad or inputs.bad or target_arg.bad or bad_loss
    text = (
        f"per_sample_grads({model!r} {dtype}, {loss_name}, {inputs!r}, {target_arg!r}, "
        f"create_graph={graph})"
    )

    def run() -> Any:
        kwargs = {"create_graph": True} if graph else {}
        return vg.per_sample_grads(model.module, loss_fn, inputs.value, target_arg.value, **kwargs)

    def check(result: Any) -> str | None:
        if xb is None or model.random or target_arg.bad:
            return None
        # A copy: torch.func.functional_call replaces the parameters of a reused submodule.
        module = copy.deepcopy(model.module)
        params = {n: p.detach() for n, p in module.named_parameters() if p.requires_grad}
        fixed = {n: p.detach() for n, p in module.named_parameters() if not p.requires_grad}
        fixed.update(dict(module.named_buffers()))

        def sample(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            pred = torch.func.functional_call(module, (p, fixed), (x.unsqueeze(0),))
            return loss_fn(pred, y.unsqueeze(0))

        want = reference(
            lambda: torch.func.vmap(torch.func.grad(sample), in_dims=(None, 0, 0))(
                params, xb, targets
            )
        )
        if want is None:
            return None
        if not isinstance(result, dict) or list(result) != list(want):
            return f"per_sample_grads: keys {list(result)}, expected {list(want)}"
        if graph is False and any(t.requires_grad for t in result.values()):
            return "per_sample_grads: result requires grad without create_graph"
        return compare(result, want, (dtype,), "per_sample_grads")

    return _model_case(name, text, run, must, check, model)


def gen_loss_jacobian(g: Gen, name: str) -> Case:
    dtype = g.choice([torch.float64, torch.float32])
    model = make_model(g.rng, dtype)
    batch_stats = model.name in ("bn_train", "bn_no_stats")
    n = 3 if batch_stats else g.choice([1, 3])  # batch statistics need 2 samples or more
    if model.embedding:
        xb = torch.randint(0, 7, (n, 2), generator=g.gen)
    else:
        xb = torch.randn((n, 3), generator=g.gen, dtype=torch.float64).to(dtype)
    params_form = g.choice(
        ["module"] * 5
        + ["dict"] * 4
        + ["named"] * 3
        + ["tensor", "list", "empty", "frozen_tensor", 3]
    )
    losses_form = g.choice(["good"] * 12 + ["two_d", "no_grad", "int", "meta", "empty"])
    retain = g.choice([False] * 4 + [True] * 4 + ["yes"])
    chunk = g.chunk_size()
    graph = g.choice([False, False, True])
    bad_params = params_form in ("tensor", "list", "empty", "frozen_tensor", 3)
    trainable = [p for p in model.module.parameters() if p.requires_grad]
    must = (
        bad_params
        or losses_form != "good"
        or retain == "yes"
        or chunk.bad
        or (not trainable and params_form in ("module", "dict", "named"))
    )
    text = (
        f"loss_jacobian(losses of {model!r} {dtype} on batch {n} [{losses_form}], "
        f"params={params_form!r}, chunk_size={chunk!r}, retain_graph={retain!r}, "
        f"create_graph={graph})"
    )
    state: dict[str, Any] = {}

    def prepare() -> None:
        """The losses (a forward pass, which may update BatchNorm's statistics) and params."""
        with torch.no_grad() if losses_form == "no_grad" else torch.enable_grad():
            out = model.module(xb)
            losses = (out**2).sum(-1)
        if losses_form == "two_d":
            losses = losses.unsqueeze(1)
        elif losses_form == "int":
            losses = losses.detach().long()
        elif losses_form == "meta":
            losses = torch.empty(n, dtype=dtype, device="meta")
        elif losses_form == "empty":
            losses = losses[:0]
        named = dict(model.module.named_parameters())
        params: Any = {
            "module": model.module,
            "dict": {k: p for k, p in named.items() if p.requires_grad},
            "named": ((k, p) for k, p in named.items() if p.requires_grad),
            "tensor": next(iter(named.values())),
            "list": list(named.values()),
            "empty": {},
            "frozen_tensor": {"w": torch.zeros(2, dtype=dtype)},
            3: 3,
        }[params_form]
        state["losses"], state["params"] = losses, params
        if losses_form == "good" and trainable:
            rows = []
            for i in range(n):
                grads = torch.autograd.grad(
                    losses[i], trainable, retain_graph=True, allow_unused=True
                )
                rows.append(
                    [
                        torch.zeros_like(p) if gr is None else gr
                        for gr, p in zip(grads, trainable, strict=True)
                    ]
                )
            keys = [k for k, p in named.items() if p.requires_grad]
            state["want"] = {k: torch.stack([r[j] for r in rows]) for j, k in enumerate(keys)}

    def run() -> Any:
        kwargs = {"create_graph": True} if graph else {}
        return vg.loss_jacobian(
            state["losses"], state["params"], chunk_size=chunk.value, retain_graph=retain, **kwargs
        )

    def check(result: Any) -> str | None:
        want = state.get("want")
        if want is None or params_form not in ("module", "dict", "named"):
            return None
        if not isinstance(result, dict) or list(result) != list(want):
            got = list(result) if isinstance(result, dict) else type(result).__name__
            return f"loss_jacobian: keys {got}, expected {list(want)}"
        if graph is False and any(t.requires_grad for t in result.values()):
            return "loss_jacobian: result requires grad without create_graph"
        return compare(result, want, (dtype,), "loss_jacobian")

    case = _model_case(name, text, run, must, check, model)
    case.prepare = prepare
    return case


def _param_vector(g: Gen, model: Model, dtype: torch.dtype) -> Arg:
    """A vector keyed like the trainable parameters: good most of the time, else refused."""
    params = {n: p for n, p in model.module.named_parameters() if p.requires_grad}
    good = {
        n: torch.randn(p.shape, generator=g.gen, dtype=torch.float64).to(dtype)
        for n, p in params.items()
    }
    form = g.choice(["good"] * 10 + ["list", "missing", "extra", "shape", "dtype", "int", "meta"])
    if form == "good" or not params:  # without trainable parameters the model is refused
        return Arg(good, "v like the parameters")
    first = next(iter(params))
    if form == "list":
        return Arg(list(good.values()), "v as a list", True)
    if form == "missing":
        return Arg({n: t for n, t in good.items() if n != first}, f"v without {first}", True)
    if form == "extra":
        return Arg({**good, "extra": good[first]}, "v with an unknown name", True)
    changed = {
        "shape": good[first].reshape(-1, 1),
        "dtype": good[first].to(torch.float16),
        "int": good[first].long(),
        "meta": good[first].to("meta"),
    }[form]
    return Arg({**good, first: changed}, f"v with a {form} {first}", True)


def gen_curvature(g: Gen, name: str) -> Case:
    """param_hessian, param_hvp and param_ggnvp: the loss of the batch, ``loss_fn(model(x), y)``."""
    dtype = g.choice([torch.float64, torch.float32])
    model = make_model(g.rng, dtype)
    inputs, xb = _batch(g, model, dtype)
    n = xb.shape[0] if xb is not None else 3
    targets = torch.randn((n, model.out), generator=g.gen, dtype=torch.float64).to(dtype)
    target_arg = Arg(targets, f"targets {tuple(targets.shape)}")
    if g.choice(["good"] * 10 + ["mismatch"]) == "mismatch":
        target_arg = Arg(targets.repeat(2, 1), "mismatched targets", True)
    loss_name, loss_fn, bad_loss = _loss_fn(g)
    if loss_name == "vector":  # a loss of the batch must return one element, not one per row
        loss_fn = F.mse_loss if g.rng.random() < 0.5 else loss_fn
        loss_name, bad_loss = ("mse", False) if loss_fn is F.mse_loss else (loss_name, True)
    v = _param_vector(g, model, dtype) if name != "param_hessian" else Arg(None, "")
    graph = g.choice([False, False, True])
    must = model.bad or inputs.bad or target_arg.bad or bad_loss or v.bad
    extra = () if name == "param_hessian" else (v.value,)
    text = (
        f"{name}({model!r} {dtype}, {loss_name}, {inputs!r}, {target_arg!r}"
        f"{', ' + v.text if extra else ''}, create_graph={graph})"
    )

    def run() -> Any:
        kwargs = {"create_graph": True} if graph else {}
        call = getattr(vg, name)
        return call(model.module, loss_fn, inputs.value, target_arg.value, *extra, **kwargs)

    def check(result: Any) -> str | None:
        if xb is None or model.random or target_arg.bad:
            return None
        ref = Reference(model.module, loss_fn, xb, targets)
        if name == "param_hessian":
            want: Any = reference(ref.hessian)
            blocks = result
        else:
            want = reference(
                lambda: ref.hvp(v.value) if name == "param_hvp" else ref.ggnvp(v.value)
            )
            if not isinstance(result, tuple) or len(result) != 2:
                return f"{name}: returned {type(result).__name__}, not (loss, product)"
            loss, blocks = result
            problem = compare(loss, ref.loss(ref.params), (dtype,), f"{name} loss")
            if problem:
                return problem
        if want is None:
            return None
        if not isinstance(blocks, dict) or list(blocks) != list(want):
            return f"{name}: keys {list(blocks)}, expected {list(want)}"
        if graph is False and any(t.requires_grad for t in flat(blocks)):
            return f"{name}: result requires grad without create_graph"
        return compare(blocks, want, (dtype,), name)

    return _model_case(name, text, run, must, check, model)


def gen_time_call(g: Gen, name: str) -> Case:
    fn_form = g.choice(["ok"] * 6 + ["needs_args", "not_callable"])
    fn: Any = {
        "ok": lambda: None,
        "needs_args": lambda a: a,
        "not_callable": 3,
    }[fn_form]
    run_time = g.choice([1e-3] * 8 + [0.0, -1.0, math.inf, "0.1", True])
    threads = g.choice([1] * 6 + [2] * 2 + [0, 1.5, True])
    must = (
        fn_form != "ok"
        or not isinstance(run_time, float)
        or not 0 < run_time < math.inf
        or type(threads) is not int
        or threads < 1
    )
    text = f"time_call({fn_form}, min_run_time={run_time!r}, num_threads={threads!r})"

    def run() -> Any:
        return vg.time_call(fn, min_run_time=run_time, num_threads=threads)

    def check(result: Any) -> str | None:
        if not isinstance(result, float) or not (0 < result < 1):
            return f"time_call returned {result!r}, not a float in (0, 1)"
        return None

    return Case(name, text, run, bool(must), check)


def _pattern(g: Gen, shape: tuple[int, ...], truth: Tensor | None) -> Arg:
    """A sparsity pattern of ``shape``: the true one, all True, random, in a random layout, or bad.

    ``truth`` is where the Jacobian is nonzero (None when unknown: then a random pattern).
    """
    form = g.choice(["true"] * 5 + ["full"] * 2 + ["random"] * 3 + ["float", "shape", "meta"])
    if form == "float":
        return Arg(torch.ones(shape), "float pattern", True)
    if form == "shape":
        return Arg(torch.ones((*shape, 2), dtype=torch.bool), "pattern of the wrong shape", True)
    if form == "meta":
        return Arg(torch.ones(shape, dtype=torch.bool, device="meta"), "meta pattern", True)
    if form == "true" and truth is not None:
        pattern = truth.clone()
    elif form == "full":
        pattern = torch.ones(shape, dtype=torch.bool)
    else:
        # Extra entries on top of the true ones: a pattern that misses a structural nonzero
        # gives wrong values by design (sparse_jacobian's docstring), so none is drawn.
        pattern = torch.rand(shape, generator=g.gen) < 0.4
        if truth is not None:
            pattern |= truth
    layout = g.choice(["dense"] * 3 + ["coo"] + (["csr"] if len(shape) == 2 else []))
    convert = {"dense": Tensor.clone, "coo": Tensor.to_sparse, "csr": Tensor.to_sparse_csr}
    return Arg(convert[layout](pattern), f"{form} {layout} pattern {tuple(shape)}")


def _true_pattern(func: Func, xs: tuple[Tensor, ...] | None) -> Tensor | None:
    """Where ``func``'s Jacobian is nonzero at float64 copies of ``xs`` (one input), or None."""
    if not _float_inputs(xs) or xs is None or len(xs) != 1 or func.bad_output or func.random:
        return None
    jac = reference(lambda: torch.func.jacrev(func.call)(as64(xs)[0]))
    return None if not isinstance(jac, Tensor) else jac != 0


def _valid_coloring(coloring: Any) -> str | None:
    """No two rows (reverse) or columns (forward) of one colour share a nonzero of the pattern."""
    pattern = coloring.sparsity.to_dense()
    n_in = math.prod(coloring.input_shape)
    matrix = pattern.reshape(math.prod(coloring.output_shape), n_in)
    colors = coloring.colors.reshape(-1)
    if coloring.mode == "reverse":
        matrix = matrix.T
    for c in range(coloring.num_colors):
        chosen = matrix[:, colors == c]
        if bool((chosen.sum(1) > 1).any()):
            return f"color_jacobian: colour {c} holds two {coloring.mode} neighbours"
    if bool((colors[matrix.any(0)] < 0).any()):
        return "color_jacobian: a nonempty column or row has no colour"
    return None


def gen_color_jacobian(g: Gen, name: str) -> Case:
    shape = g.choice([(3, 4), (5, 5), (2, 3, 4), (4,), (0, 3), (6, 2)])
    sparsity = _pattern(g, shape, None)
    if sparsity.text == "pattern of the wrong shape":  # any shape is some Jacobian's pattern
        sparsity.bad = False
    strategy = g.strategy(("auto", "forward", "reverse"))
    input_ndim = g.choice([1] * 6 + [2] + [0, 5, -1, 1.0])
    ndim = sparsity.value.dim()
    bad_ndim = type(input_ndim) is not int or not 0 <= input_ndim <= ndim
    must = sparsity.bad or strategy.bad or bad_ndim
    text = f"color_jacobian({sparsity!r}, strategy={strategy!r}, input_ndim={input_ndim!r})"

    def run() -> Any:
        return vg.color_jacobian(sparsity.value, strategy=strategy.value, input_ndim=input_ndim)

    return Case(name, text, run, bool(must), _valid_coloring)


def gen_sparse_jacobian(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func()
    out = _valid_output(func, xs) if _float_inputs(xs) else None
    truth = _true_pattern(func, xs)
    if xs is not None and out is not None:
        sparsity = _pattern(g, tuple(out.shape) + tuple(xs[0].shape), truth)
    else:
        sparsity = _pattern(g, (3, 3), None)
    reuse = g.choice([False] * 3 + [True]) and not sparsity.bad
    strategy = g.strategy(("auto", "forward", "reverse"))
    chunk = g.chunk_size()
    must = (
        inputs.bad
        or isinstance(inputs.value, tuple)  # one Tensor only
        or func.bad_output
        or func.grad_inside
        or sparsity.bad
        or strategy.bad
        or chunk.bad
        or (xs is not None and out is not None and truth is None and not func.random)
    )
    if xs is not None and out is None and _float_inputs(xs) and not func.bad_output:
        must = must or not func.random
    text = (
        f"sparse_jacobian({func!r}, {inputs!r}, sparsity={sparsity!r}"
        f"{' as a colouring' if reuse else ''}, strategy={strategy!r}, chunk_size={chunk!r})"
    )

    def run() -> Any:
        pattern = sparsity.value
        if reuse:
            x = inputs.value if isinstance(inputs.value, Tensor) else None
            pattern = vg.color_jacobian(pattern, input_ndim=max(x.dim(), 1) if x is not None else 1)
        return vg.sparse_jacobian(
            func.call,
            inputs.value,
            sparsity=pattern,
            strategy=strategy.value,
            chunk_size=chunk.value,
        )

    def check(result: Any) -> str | None:
        if truth is None or xs is None or out is None or not isinstance(result, Tensor):
            return None
        if result.layout != torch.sparse_coo:
            return f"sparse_jacobian returned layout {result.layout}"
        want_dtype = torch.promote_types(out.dtype, xs[0].dtype)
        problem = check_dtypes(result.to_dense(), [want_dtype], name)
        if problem:
            return problem
        mask = sparsity.value.to_dense().to(torch.float64)
        want = reference(lambda: torch.func.jacrev(func.call)(as64(xs)[0]))
        if want is None:
            return None
        return compare(result.to_dense(), want * mask, (xs[0].dtype, out.dtype), name)

    return Case(name, text, run, bool(must), check, guarded=list(xs or ()))


def gen_jacobian_sparsity(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func()
    num_points = g.choice([3] * 5 + [1, 2] + [0, -1, 2.0, None])
    chunk = g.chunk_size()
    bad_points = type(num_points) is not int or num_points < 1
    must = (
        inputs.bad
        or isinstance(inputs.value, tuple)
        or func.bad_output
        or func.grad_inside
        or bad_points
        or chunk.bad
    )
    text = (
        f"jacobian_sparsity({func!r}, {inputs!r}, num_points={num_points!r}, chunk_size={chunk!r})"
    )

    def run() -> Any:
        return vg.jacobian_sparsity(
            func.call, inputs.value, num_points=num_points, chunk_size=chunk.value
        )

    def check(result: Any) -> str | None:
        truth = _true_pattern(func, xs)
        if truth is None or not isinstance(result, Tensor):
            return None
        found = result.to_dense()
        if found.shape != truth.shape or found.dtype != torch.bool:
            return f"jacobian_sparsity: {found.dtype} {tuple(found.shape)}, want bool {truth.shape}"
        COMPARED[0] += 1
        # The probes include the point itself: every nonzero there is in the pattern.
        return None if bool((truth <= found).all()) else "jacobian_sparsity missed a nonzero"

    return Case(name, text, run, bool(must), check, guarded=list(xs or ()))


def _symmetric(pattern: Tensor) -> Tensor:
    """``pattern`` or its transpose: the halves of its dimensions swapped, as for a Hessian."""
    half = pattern.dim() // 2
    order = [*range(half, pattern.dim()), *range(half)]
    return pattern | pattern.permute(order)


def _true_hessian_pattern(func: Func, xs: tuple[Tensor, ...] | None) -> Tensor | None:
    """Where ``func``'s Hessian is nonzero at float64 copies of ``xs`` (one input), or None."""
    if not _float_inputs(xs) or xs is None or len(xs) != 1 or func.bad_output or func.random:
        return None
    x = as64(xs)[0]
    if x.numel() == 0:  # torch.func.hessian fails there; the Hessian has no entries
        return torch.zeros(x.shape * 2, dtype=torch.bool)
    hess = reference(lambda: torch.func.hessian(lambda t: func.call(t).reshape(()))(x))
    return None if not isinstance(hess, Tensor) else _symmetric(hess != 0)


def gen_sparse_hessian(g: Gen, name: str) -> Case:
    inputs, xs = g.inputs()
    func = g.func(scalar=True)
    out = _valid_output(func, xs) if _float_inputs(xs) else None
    truth = _true_hessian_pattern(func, xs)
    one = xs is not None and len(xs) == 1
    shape = tuple(xs[0].shape) * 2 if xs is not None and one else (3, 3)
    sparsity = _pattern(g, shape, truth)
    if not sparsity.bad:  # a Hessian's pattern is symmetric: extra entries are drawn in pairs
        value = sparsity.value
        dense = _symmetric(value.to_dense() if value.layout != torch.strided else value)
        sparsity = Arg(dense if value.layout == torch.strided else dense.to_sparse(), sparsity.text)
    reuse = g.choice([False] * 3 + [True]) and not sparsity.bad
    chunk = g.chunk_size()
    must = (
        inputs.bad
        or not one  # one Tensor only
        or func.bad_output
        or func.grad_inside
        or _scalar_output_bad(func, xs)
        or sparsity.bad
        or chunk.bad
        or (xs is not None and out is not None and truth is None and not func.random)
    )
    if xs is not None and out is None and _float_inputs(xs) and not func.bad_output:
        must = must or not func.random
    text = (
        f"sparse_hessian({func!r}, {inputs!r}, sparsity={sparsity!r}"
        f"{' as a colouring' if reuse else ''}, chunk_size={chunk!r})"
    )

    def run() -> Any:
        pattern = sparsity.value
        if reuse:
            x = inputs.value if isinstance(inputs.value, Tensor) else None
            ndim = x.dim() if x is not None and x.dim() * 2 == pattern.dim() else 1
            pattern = vg.color_jacobian(pattern, strategy="symmetric", input_ndim=ndim)
        return vg.sparse_hessian(func.call, inputs.value, sparsity=pattern, chunk_size=chunk.value)

    def check(result: Any) -> str | None:
        if truth is None or xs is None or out is None or not isinstance(result, Tensor):
            return None
        if result.layout != torch.sparse_coo:
            return f"sparse_hessian returned layout {result.layout}"
        problem = check_dtypes(result.to_dense(), [xs[0].dtype], name)
        if problem:
            return problem
        mask = sparsity.value.to_dense().to(torch.float64)
        x = as64(xs)[0]
        if x.numel() == 0:
            return None
        want = reference(lambda: torch.func.hessian(lambda t: func.call(t).reshape(()))(x))
        if want is None:
            return None
        return compare(result.to_dense(), want * mask, (xs[0].dtype, out.dtype), name)

    return Case(name, text, run, bool(must), check, guarded=list(xs or ()))


GENERATORS: dict[str, Callable[[Gen, str], Case]] = {
    "jacobian": gen_jacobian,
    "batch_jacobian": gen_jacobian,
    "vjp": gen_vjp,
    "jvp": gen_jvp,
    "hessian": gen_hessian,
    "hvp": gen_hvp,
    "hutchinson": gen_hutchinson,
    "numerical_jacobian": gen_numerical,
    "param_jacobian": gen_param_jacobian,
    "per_sample_grads": gen_per_sample,
    "loss_jacobian": gen_loss_jacobian,
    "time_call": gen_time_call,
    "diagonal": gen_diagonal,
    "color_jacobian": gen_color_jacobian,
    "sparse_jacobian": gen_sparse_jacobian,
    "jacobian_sparsity": gen_jacobian_sparsity,
    "param_hessian": gen_curvature,
    "param_hvp": gen_curvature,
    "param_ggnvp": gen_curvature,
    "sparse_hessian": gen_sparse_hessian,
}


def build_cases(seed: int = SEED) -> Iterator[tuple[int, Case]]:
    """The calls, in a fixed order; models are built from torch's global generator, seeded."""
    g = Gen(seed)
    index = 0
    for name, count in CALLS_PER_FUNCTION.items():
        for _ in range(count):
            torch.manual_seed(seed * 100_003 + index)
            yield index, GENERATORS[name](g, name)
            index += 1


# ---------------------------------------------------------------------------------------------
# Running the calls.
# ---------------------------------------------------------------------------------------------


def _snapshot(tensors: list[Tensor]) -> list[Tensor | None]:
    return [
        t.detach().clone() if t.layout == torch.strided and t.device.type == "cpu" else None
        for t in tensors
    ]


def run_case(index: int, case: Case) -> Outcome:
    """Run one call and judge it."""
    prefix = f"vecgrad.{case.name}: "
    torch.manual_seed(index)
    if case.prepare is not None:
        case.prepare()
    before = case.model and Snapshot.of(case.model)
    guarded = _snapshot(case.guarded)
    torch.manual_seed(index)
    try:
        result = case.run()
    except (TypeError, ValueError) as err:
        kind, detail = "refused", ""
        if not str(err).startswith(prefix):
            kind, detail = "failed", f"{type(err).__name__}: {_first_line(err)}"
    except Exception as err:  # anything else is a failure, reported with its type
        kind, detail = "failed", f"{type(err).__name__}: {_first_line(err)}"
    else:
        kind, detail = "returned", ""
    # The caller's objects first: the reference below calls the model itself.
    changed = []
    for t, old in zip(case.guarded, guarded, strict=True):
        if old is not None and not torch.equal(t, old):
            changed.append("changed an argument")
    if case.model is not None and before is not None:
        change = before.changes(case.model)
        if change:
            changed.append(f"model: {change}")
    compared = COMPARED[0]
    if kind == "returned":
        if case.must_refuse:
            kind, detail = "failed", "returned, but the contract says it must be refused"
        elif case.check is not None:
            try:
                problem = case.check(result)
            except Exception as err:
                problem = f"checking the result raised {type(err).__name__}: {_first_line(err)}"
            if problem:
                kind, detail = "failed", problem
    if changed:
        kind, detail = "failed", "; ".join([detail, *changed] if detail else changed)
    return Outcome(case.name, case.text, kind, detail, COMPARED[0] > compared)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    """Every call's outcome, in the order of build_cases (run once for the module)."""
    state = torch.get_rng_state()
    try:
        return [run_case(index, case) for index, case in build_cases()]
    finally:
        torch.set_rng_state(state)


@pytest.mark.parametrize("name", list(CALLS_PER_FUNCTION))
def test_fuzz(name: str, outcomes: list[Outcome]) -> None:
    """No call of ``vecgrad.<name>`` crashes, returns what it must refuse, or returns wrong."""
    mine = [o for o in outcomes if o.name == name]
    assert len(mine) == CALLS_PER_FUNCTION[name]
    failures = [o for o in mine if o.kind == "failed"]
    report = "\n".join(f"{o.text}\n    -> {o.detail}" for o in failures)
    assert not failures, f"{len(failures)} of {len(mine)} calls failed:\n{report}"


def test_every_public_function_is_fuzzed() -> None:
    """Every public function; the one public class, JacobianColoring, comes from color_jacobian."""
    functions = [name for name in vg.__all__ if not isinstance(getattr(vg, name), type)]
    assert sorted(CALLS_PER_FUNCTION) == sorted(functions)


def test_cases_are_deterministic() -> None:
    """The same seed generates the same calls (so the counts below are reproducible)."""
    first = [case.text for _, case in build_cases()]
    second = [case.text for _, case in build_cases()]
    assert first == second
    assert len(first) == TOTAL_CALLS


def test_fuzz_counts(outcomes: list[Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    """How many calls were made, returned, refused (and failed), per function and in all."""
    lines = []
    totals = {"returned": 0, "refused": 0, "failed": 0}
    compared = sum(o.compared for o in outcomes)
    for name in CALLS_PER_FUNCTION:
        mine = [o for o in outcomes if o.name == name]
        counts = {k: sum(o.kind == k for o in mine) for k in totals}
        for k in totals:
            totals[k] += counts[k]
        lines.append(
            f"  {name:20s} calls={len(mine):4d} returned={counts['returned']:4d} "
            f"refused={counts['refused']:4d} failed={counts['failed']:4d}"
        )
    summary = (
        f"fuzz (seed {SEED}): calls={len(outcomes)} returned={totals['returned']} "
        f"refused={totals['refused']} failed={totals['failed']} "
        f"(results compared with a torch.func reference: {compared})"
    )
    with capsys.disabled():  # shown even when pytest captures output
        print("\n" + "\n".join([summary, *lines]))
    assert len(outcomes) == TOTAL_CALLS
    assert sum(totals.values()) == TOTAL_CALLS
    # The references must be exercised, or a wrong result could pass unseen.
    assert compared >= 100


# ---------------------------------------------------------------------------------------------
# A sweep, not random: every input-space function and strategy against each sparse or meta
# argument and output (contract item 5), since one seeded draw cannot reach them all.
# ---------------------------------------------------------------------------------------------


def _dense(t: Tensor) -> Tensor:
    return t


LAYOUT_OF: dict[str, Callable[[Tensor], Tensor]] = {
    "sparse_coo": lambda t: t.to_sparse(),
    "sparse_csr": lambda t: t.to_sparse_csr(),
    "meta": lambda t: t.to("meta"),
}

SWEEP: dict[str, tuple[bool, Callable[..., Any]]] = {
    # name: (func must return one element, call(func, x, v))
    **{
        f"jacobian-{s}": (False, partial(lambda s, f, x, v: vg.jacobian(f, x, strategy=s), s))
        for s in ("auto", "reverse", "forward", "loop")
    },
    **{
        f"batch_jacobian-{s}": (
            False,
            partial(lambda s, f, x, v: vg.batch_jacobian(f, x, strategy=s), s),
        )
        for s in ("auto", "reverse", "forward")
    },
    "vjp": (False, lambda f, x, v: vg.vjp(f, x, v)),
    "jvp": (False, lambda f, x, v: vg.jvp(f, x, v)),
    "hessian": (True, lambda f, x, v: vg.hessian(f, x)),
    "hvp": (True, lambda f, x, v: vg.hvp(f, x, v)),
    "hutchinson-frobenius": (False, lambda f, x, v: vg.hutchinson(f, x, num_samples=2)),
    "hutchinson-trace": (
        True,
        lambda f, x, v: vg.hutchinson(f, x, num_samples=2, quantity="hessian_trace"),
    ),
    "numerical_jacobian": (False, lambda f, x, v: vg.numerical_jacobian(f, x)),
    **{
        f"hutchinson-{q}": (
            q.startswith("hessian"),
            partial(lambda q, f, x, v: vg.hutchinson(f, x, num_samples=2, quantity=q), q),
        )
        for q in ("jacobian_trace", "jacobian_diagonal", "hessian_diagonal")
    },
    **{
        f"diagonal-{of}-{route}": (
            of == "hessian",
            partial(lambda of, kw, f, x, v: vg.diagonal(f, x, of=of, **kw), of, kwargs),
        )
        for of in ("jacobian", "hessian")
        for route, kwargs in (
            ("default", {}),
            ("elementwise", {"elementwise": True}),
            ("colors", {"colors": torch.tensor([[0, 1, 0], [1, 0, 1]])}),
        )
    },
}
WHERE = ("output", "inputs", "v")


def _sweep_cases() -> Iterator[Any]:
    for name in SWEEP:
        for where in WHERE:
            if where == "v" and name.split("-")[0] not in ("vjp", "jvp", "hvp"):
                continue
            for layout in LAYOUT_OF:
                yield pytest.param(name, where, layout, id=f"{name}-{where}-{layout}")


# torch warns that CSR support is in beta when one is made; that warning is not under test.
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning")
@pytest.mark.parametrize(("name", "where", "layout"), list(_sweep_cases()))
def test_sparse_and_meta_are_refused(name: str, where: str, layout: str) -> None:
    """A sparse or meta ``inputs``, ``v`` or output gets a vecgrad TypeError/ValueError."""
    scalar, call = SWEEP[name]
    x = torch.linspace(0.5, 1.5, 6, dtype=torch.float64).reshape(2, 3)
    convert = LAYOUT_OF[layout]
    out_layout = convert if where == "output" else _dense
    if scalar:

        def func(t: Tensor) -> Tensor:
            return out_layout((t**3).sum().reshape(1, 1))

    else:

        def func(t: Tensor) -> Tensor:
            return out_layout(t**3)

    v = torch.ones(2, 3, dtype=torch.float64)
    if where == "inputs":
        x = convert(x)
    if where == "v":
        v = convert(v)
    function = name.split("-")[0]
    with pytest.raises((TypeError, ValueError), match=rf"^vecgrad\.{function}: "):
        call(func, x, v)

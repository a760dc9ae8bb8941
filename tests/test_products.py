"""vecgrad.vjp and vecgrad.jvp against analytic Jacobians and torch.func."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import DTYPE, Case
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")


def as_tuple(value: Any) -> tuple[torch.Tensor, ...]:
    return value if isinstance(value, tuple) else (value,)


def test_vjp_is_v_transpose_j(case: Case) -> None:
    inputs = as_tuple(case.inputs)
    output = case.func(*inputs)
    v = torch.randn(output.shape, dtype=DTYPE)
    out, result = vg.vjp(case.func, case.inputs, v)
    assert_close(out, output)
    assert isinstance(result, tuple) == isinstance(case.inputs, tuple)
    for block, jac in zip(as_tuple(result), as_tuple(case.expected), strict=True):
        assert_close(block, torch.tensordot(v, jac, dims=output.dim()))


def test_jvp_is_j_u(case: Case) -> None:
    inputs = as_tuple(case.inputs)
    output = case.func(*inputs)
    tangents = tuple(torch.randn(x.shape, dtype=DTYPE) for x in inputs)
    out, result = vg.jvp(
        case.func, case.inputs, tangents if isinstance(case.inputs, tuple) else tangents[0]
    )
    assert_close(out, output)
    expected = sum(
        torch.tensordot(jac, u, dims=u.dim())
        for jac, u in zip(as_tuple(case.expected), tangents, strict=True)
    )
    assert_close(result, expected)


def test_vjp_and_jvp_match_torch_func() -> None:
    a = torch.randn(3, 2, dtype=DTYPE)
    b = torch.randn(2, 4, dtype=DTYPE)

    def func(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x @ y, dim=-1) * x.sum()

    v = torch.randn(3, 4, dtype=DTYPE)
    out, grads = vg.vjp(func, (a, b), v)
    ref_out, ref_fn = torch.func.vjp(func, a, b)
    assert_close(out, ref_out)
    assert_close(grads, ref_fn(v))

    tangents = (torch.randn_like(a), torch.randn_like(b))
    out, ju = vg.jvp(func, (a, b), tangents)
    ref_out, ref_ju = torch.func.jvp(func, (a, b), tangents)
    assert_close(out, ref_out)
    assert_close(ju, ref_ju)


# Gradients of results that need not depend on every tensor, from graphs used more than once.
GRAD_OPTIONS: dict[str, Any] = {
    "allow_unused": True,
    "materialize_grads": True,
    "retain_graph": True,
}


def test_outputs_are_differentiable_and_grads_untouched() -> None:
    w = torch.randn(3, dtype=DTYPE, requires_grad=True)
    x = torch.randn(3, dtype=DTYPE, requires_grad=True)
    v = torch.randn(3, dtype=DTYPE, requires_grad=True)

    def func(t: torch.Tensor) -> torch.Tensor:
        return torch.sin(w * t)

    out, g = vg.vjp(func, x, v)
    out2, ju = vg.jvp(func, x, v)
    assert w.grad is None
    assert x.grad is None
    assert_close(g, v.detach() * w.detach() * torch.cos(w.detach() * x.detach()))
    assert_close(ju, g)  # J is diagonal, so J v == v^T J
    # Differentiable with respect to the input, the vector and what func closes over.
    ref_out, ref_vjp = torch.func.vjp(func, x)
    (ref_g,) = ref_vjp(v)
    ref_ju = torch.func.jvp(func, (x,), (v,))[1]
    for got, ref in ((out, ref_out), (g, ref_g), (ju, ref_ju), (out2, ref_out)):
        assert isinstance(got, torch.Tensor)
        expected = torch.autograd.grad(ref.sum(), (w, x, v), **GRAD_OPTIONS)
        got_grads = torch.autograd.grad(got.sum(), (w, x, v), **GRAD_OPTIONS)
        assert_close(got_grads, expected)
    with torch.no_grad():
        assert not any(t.requires_grad for t in (*vg.vjp(func, x, v), *vg.jvp(func, x, v)))


class _SquareForwardOnly(torch.autograd.Function):
    """y = x**2 with a forward-mode rule and a backward pass that refuses to run."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x**2

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        (ctx.x,) = inputs

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor) -> torch.Tensor:
        return 2 * ctx.x * tangent

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("reverse mode was used")


def test_jvp_is_true_forward_mode() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], dtype=DTYPE)
    u = torch.tensor([1.0, 1.0, 0.5], dtype=DTYPE)
    out, ju = vg.jvp(_SquareForwardOnly.apply, x, u)
    assert_close(out, x**2)
    assert_close(ju, 2 * x * u)
    with pytest.raises(RuntimeError, match="reverse mode was used"):
        vg.vjp(_SquareForwardOnly.apply, x, u)


def test_zero_dim_input_and_output() -> None:
    x = torch.tensor(0.5, dtype=DTYPE)
    out, g = vg.vjp(torch.exp, x, torch.tensor(2.0, dtype=DTYPE))
    assert out.shape == ()
    assert_close(g, 2 * torch.exp(x))
    out, ju = vg.jvp(torch.exp, x, torch.tensor(3.0, dtype=DTYPE))
    assert out.shape == ()
    assert_close(ju, 3 * torch.exp(x))


def test_vjp_never_fills_in_ones() -> None:
    x = torch.randn(3)
    with pytest.raises(TypeError, match=r"vecgrad\.vjp: `v` must be a Tensor .*got NoneType"):
        vg.vjp(lambda t: t.sum(), x, None)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.vjp: `v` must have the shape of `func\(inputs\)`, \(3,\); got \(\)",
    ):
        vg.vjp(torch.sin, x, torch.tensor(1.0))


@pytest.mark.parametrize(
    ("v", "error", "match"),
    [
        (
            torch.ones(4),
            ValueError,
            r"`v` must have the shape of `func\(inputs\)`, \(3,\); got \(4,\)",
        ),
        (torch.ones(3, 1), ValueError, r"`v` must have the shape .*got \(3, 1\)"),
        ((torch.ones(3),), TypeError, r"`v` must be a Tensor, like `func\(inputs\)`; got tuple"),
        (torch.ones(3, dtype=torch.int64), TypeError, r"`v` must have a real floating-point dtype"),
        ([1.0, 1.0, 1.0], TypeError, r"`v` must be a Tensor or a tuple of Tensors; got list"),
    ],
)
def test_vjp_cotangent_errors(v: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=r"vecgrad\.vjp: " + match):
        vg.vjp(torch.sin, torch.randn(3), v)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("inputs", "v", "error", "match"),
    [
        (
            torch.randn(3),
            torch.ones(2),
            ValueError,
            r"`v` must have the shape of `inputs`, \(3,\); got \(2,\)",
        ),
        (
            torch.randn(3),
            (torch.ones(3),),
            TypeError,
            r"`v` must be a Tensor, like `inputs`; got tuple",
        ),
        (
            (torch.randn(3), torch.randn(2)),
            torch.ones(3),
            TypeError,
            r"`v` must be a tuple of 2 Tensors, like `inputs`; got Tensor",
        ),
        (
            (torch.randn(3), torch.randn(2)),
            (torch.ones(3),),
            ValueError,
            r"`v` must have one Tensor per element of `inputs` \(2\); got 1",
        ),
        (
            (torch.randn(3), torch.randn(2)),
            (torch.ones(3), torch.ones(3)),
            ValueError,
            r"`v\[1\]` must have the shape of `inputs\[1\]`, \(2,\); got \(3,\)",
        ),
        (
            (torch.randn(3), torch.randn(3)),
            (torch.ones(3),) * 3,
            ValueError,
            r"`v` must have one Tensor per element of `inputs` \(2\); got 3",
        ),
        (
            (torch.randn(3), torch.randn(2)),
            (torch.ones(3), None),
            TypeError,
            r"`v\[1\]` must be a Tensor; got NoneType",
        ),
        (
            [torch.randn(3)],
            torch.ones(3),
            TypeError,
            r"`inputs` must be a Tensor or a tuple of Tensors; got list \(pass tuple",
        ),
        (
            torch.arange(3),
            torch.ones(3),
            TypeError,
            r"`inputs` must have a real floating-point dtype",
        ),
    ],
)
@pytest.mark.parametrize("name", ["jvp", "hvp"])
def test_vector_must_match_inputs(
    name: str, inputs: object, v: object, error: type[Exception], match: str
) -> None:
    # jvp and hvp take a vector v shaped like the inputs, checked alike.
    with pytest.raises(error, match=rf"vecgrad\.{name}: " + match):
        getattr(vg, name)(lambda *a: sum(t.sum() for t in a), inputs, v)


@pytest.mark.parametrize("name", ["vjp", "jvp"])
def test_func_errors(name: str) -> None:
    fn = getattr(vg, name)
    x = torch.randn(3)
    with pytest.raises(TypeError, match=rf"vecgrad\.{name}: `func` must be callable; got str"):
        fn("sin", x, x)
    with pytest.raises(
        TypeError,
        match=rf"vecgrad\.{name}: `func` must return a Tensor or a tuple of Tensors; got list",
    ):
        fn(lambda t: [t], x, x)
    with pytest.raises(
        TypeError, match=rf"vecgrad\.{name}: `func` must return a real floating-point Tensor"
    ):
        fn(lambda t: (t > 0).to(torch.int32), x, x)


@pytest.mark.parametrize(
    ("v", "error", "match"),
    [
        (
            torch.ones(3),
            TypeError,
            r"`v` must have dtype torch\.float64 like `inputs`; got torch\.float32\.",
        ),
        (
            torch.ones(3, dtype=DTYPE, device="meta"),
            ValueError,
            r"`v` must hold values; got a Tensor on the meta device\.",
        ),
    ],
)
@pytest.mark.parametrize("name", ["jvp", "hvp"])
def test_vector_dtype_and_device_must_match(
    name: str, v: torch.Tensor, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=rf"vecgrad\.{name}: " + match):
        getattr(vg, name)(torch.sum, torch.randn(3, dtype=DTYPE), v)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda x: vg.vjp(torch.sin, x, torch.ones(3, dtype=torch.float16)),
            TypeError,
            r"vecgrad\.vjp: `v` must have dtype torch\.float64 like `func\(inputs\)`; "
            r"got torch\.float16\.",
        ),
        (
            lambda x: vg.vjp(torch.sin, x, torch.ones(3, dtype=DTYPE, device="meta")),
            ValueError,
            r"vecgrad\.vjp: `v` must hold values; got a Tensor on the meta device\.",
        ),
        (
            lambda x: vg.jvp(torch.add, (x, x.float()), (torch.ones(3, dtype=DTYPE),) * 2),
            TypeError,
            r"vecgrad\.jvp: `v\[1\]` must have dtype torch\.float32 like `inputs\[1\]`; "
            r"got torch\.float64\.",
        ),
    ],
)
def test_vjp_and_tuple_vector_dtype_and_device_must_match(
    call: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(torch.randn(3, dtype=DTYPE))

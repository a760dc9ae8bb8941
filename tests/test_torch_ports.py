"""Behavioural cases ported from PyTorch's own tests of its functional autodiff APIs.

Each test names the upstream test it follows: ``test/autograd/test_functional.py`` (the
``torch.autograd.functional`` API: vjp, jvp, jacobian, hessian, hvp) or
``test/functorch/test_eager_transforms.py`` (``torch.func``: TestGradTransform, TestJac,
TestHessian, TestJvp, TestVmapOfGrad). They are adapted to vecgrad's API and to its contract of
issue 16: results carry the autograd graph when what they depend on requires grad (and not under
``torch.no_grad()``), vecgrad functions compose with ``torch.func`` transforms and with each
other, strategies agree in value and dtype, and refusals are TypeError/ValueError named
``vecgrad.<function>: ``. vecgrad's jacobian, batch_jacobian, vjp and jvp take a Tensor or a
tuple of Tensors as output (tests/test_outputs.py ports the upstream cases with several
outputs); they and the other functions refuse lists, dicts and other pytrees, so those upstream
cases become checks of the refusals. References are computed with ``torch.func`` or
``torch.autograd.functional`` in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from conftest import DTYPE
from torch import Tensor, nn
from torch.autograd import gradcheck, gradgradcheck
from torch.nn import functional as F
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

STRATEGIES = ("auto", "reverse", "forward", "loop")
VECTORISED = ("auto", "reverse", "forward")

# vecgrad's documented difference from torch.func (docs/concepts/composing.md).
LOOP_REFUSED = r"^vecgrad\.jacobian: `strategy` must not be 'loop' inside torch\.func transforms"


def rand(*shape: int, requires_grad: bool = False) -> Tensor:
    return torch.rand(shape, dtype=DTYPE, requires_grad=requires_grad)


def randn(*shape: int, requires_grad: bool = False) -> Tensor:
    return torch.randn(shape, dtype=DTYPE, requires_grad=requires_grad)


def flatten(value: Any) -> tuple[Tensor, ...]:
    """Every Tensor of a nested tuple, depth first (for gradcheck, which wants a flat tuple)."""
    if isinstance(value, Tensor):
        return (value,)
    return tuple(t for item in value for t in flatten(item))


def no_graph(value: Any) -> bool:
    return all(t.grad_fn is None and not t.requires_grad for t in flatten(value))


def has_graph(value: Any) -> bool:
    return all(t.grad_fn is not None and t.requires_grad for t in flatten(value))


def reducer(x: Tensor) -> Tensor:
    return x.sum(dim=1)


def exp_reducer(x: Tensor) -> Tensor:
    return x.exp().sum(dim=1)


def narrow_exp(a: Tensor) -> Tensor:
    return 3 * a.narrow(0, 0, 3).exp().sum()


def pow_reducer(x: Tensor) -> Tensor:
    return x.pow(3).sum()


def add_pow_reducer(x: Tensor, y: Tensor) -> Tensor:
    return (x + y).pow(3).sum()


def add_exp_reducer(x: Tensor, y: Tensor) -> Tensor:
    return (x + y).exp().sum(dim=1)


def narrow_pair(a: Tensor, b: Tensor) -> Tensor:
    return (a + 3 * b.narrow(0, 0, 3)).exp().sum()


def adder(x: Tensor, y: Tensor) -> Tensor:
    """Upstream's two-output ``adder`` (2x + 3y, x y) as one output: vecgrad takes one Tensor."""
    return torch.cat([2 * x + 3 * y, x * y])


# ---------------------------------------------------------------------------------------------
# Argument errors (the *_err_check tests): vecgrad's own TypeError / ValueError.
# ---------------------------------------------------------------------------------------------


def foo_narrow(a: Tensor) -> Tensor:
    return 3 * a.narrow(0, 0, 3)


def bar_tuple(a: Tensor) -> tuple[Tensor, str]:
    return 3 * a.narrow(0, 0, 3), "bar"


def bar_two(a: Tensor) -> tuple[Tensor, Tensor]:
    return 3 * a.narrow(0, 0, 3), 3 * a.narrow(0, 0, 3)


INP = torch.linspace(0.1, 0.9, 4, dtype=DTYPE)
V3 = torch.ones(3, dtype=DTYPE)
V4 = torch.linspace(0.2, 0.5, 4, dtype=DTYPE)

ERR_CASES: list[Any] = [
    # test_vjp_err_check
    pytest.param(
        lambda: vg.vjp(foo_narrow, (INP, 2), V3),
        TypeError,
        r"^vecgrad\.vjp: `inputs\[1\]` must be a Tensor",
        id="vjp-input-not-tensor",
    ),
    pytest.param(
        lambda: vg.vjp(bar_tuple, INP, (V3, V3)),
        TypeError,
        r"^vecgrad\.vjp: `func` must return a Tensor; got str \(output \[1\]\)",
        id="vjp-output-tuple",
    ),
    pytest.param(
        lambda: vg.vjp(foo_narrow, INP, (V3, V3)),
        TypeError,
        r"^vecgrad\.vjp: `v` must be a Tensor",
        id="vjp-v-tuple",
    ),
    pytest.param(
        lambda: vg.vjp(foo_narrow, INP, V3[:2]),
        ValueError,
        r"^vecgrad\.vjp: `v` must have the shape",
        id="vjp-v-size",
    ),
    # test_jvp_err_check
    pytest.param(
        lambda: vg.jvp(foo_narrow, (INP, 2), (V4, V4)),
        TypeError,
        r"^vecgrad\.jvp: `inputs\[1\]` must be a Tensor",
        id="jvp-input-not-tensor",
    ),
    pytest.param(
        lambda: vg.jvp(bar_tuple, INP, V4),
        TypeError,
        r"^vecgrad\.jvp: `func` must return a Tensor; got str \(output \[1\]\)",
        id="jvp-output-tuple",
    ),
    pytest.param(
        lambda: vg.jvp(foo_narrow, INP, (V4, V4)),
        TypeError,
        r"^vecgrad\.jvp: `v` must be a Tensor",
        id="jvp-v-tuple",
    ),
    pytest.param(
        lambda: vg.jvp(foo_narrow, INP, V4[:2]),
        ValueError,
        r"^vecgrad\.jvp: `v` must have the shape",
        id="jvp-v-size",
    ),
    # test_jacobian_err_check
    pytest.param(
        lambda: vg.jacobian(foo_narrow, (INP, 2)),
        TypeError,
        r"^vecgrad\.jacobian: `inputs\[1\]` must be a Tensor",
        id="jacobian-input-not-tensor",
    ),
    pytest.param(
        lambda: vg.jacobian(bar_tuple, INP),
        TypeError,
        r"^vecgrad\.jacobian: `func` must return a Tensor; got str \(output \[1\]\)",
        id="jacobian-output-tuple",
    ),
    # test_hessian_err_check
    pytest.param(
        lambda: vg.hessian(narrow_exp, (INP, 2)),
        TypeError,
        r"^vecgrad\.hessian: `inputs\[1\]` must be a Tensor",
        id="hessian-input-not-tensor",
    ),
    pytest.param(
        lambda: vg.hessian(bar_tuple, INP),
        TypeError,
        r"^vecgrad\.hessian: `func` must return a Tensor; got tuple",
        id="hessian-output-tuple",
    ),
    pytest.param(
        lambda: vg.hessian(foo_narrow, INP),
        ValueError,
        r"^vecgrad\.hessian: `func` must return a one-element Tensor",
        id="hessian-output-not-scalar",
    ),
    pytest.param(
        lambda: vg.hessian(bar_two, INP),
        TypeError,
        r"^vecgrad\.hessian: `func` must return a Tensor; got tuple",
        id="hessian-two-outputs",
    ),
    # test_hvp_err_check (and test_vhp_err_check: vecgrad's hvp is both, H being symmetric)
    pytest.param(
        lambda: vg.hvp(narrow_exp, (INP, 2), (V4, V4)),
        TypeError,
        r"^vecgrad\.hvp: `inputs\[1\]` must be a Tensor",
        id="hvp-input-not-tensor",
    ),
    pytest.param(
        lambda: vg.hvp(bar_tuple, INP, V4),
        TypeError,
        r"^vecgrad\.hvp: `func` must return a Tensor; got tuple",
        id="hvp-output-tuple",
    ),
    pytest.param(
        lambda: vg.hvp(foo_narrow, INP, V4),
        ValueError,
        r"^vecgrad\.hvp: `func` must return a one-element Tensor",
        id="hvp-output-not-scalar",
    ),
    pytest.param(
        lambda: vg.hvp(narrow_exp, INP, torch.rand(5, dtype=DTYPE)),
        ValueError,
        r"^vecgrad\.hvp: `v` must have the shape",
        id="hvp-v-size",
    ),
    pytest.param(
        lambda: vg.hvp(narrow_exp, INP, (V4, 2)),
        TypeError,
        r"^vecgrad\.hvp: `v\[1\]` must be a Tensor",
        id="hvp-v-not-tensor",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), ERR_CASES)
def test_err_check(call: Callable[[], object], error: type[Exception], match: str) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_err_check,
    test_jvp_err_check, test_jacobian_err_check, test_hessian_err_check, test_hvp_err_check
    and test_vhp_err_check: bad inputs, tuple outputs, non-scalar outputs and bad ``v``.
    """
    with pytest.raises(error, match=match):
        call()


def test_err_check_good_calls_keep_structure() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_err_check and the
    other *_err_check tests: the valid call after the refusals has the documented structure.
    """
    assert vg.vjp(foo_narrow, INP, V3)[1].shape == INP.shape
    assert vg.jvp(foo_narrow, INP, V4)[1].shape == (3,)
    assert vg.jacobian(foo_narrow, INP).shape == (3, 4)
    assert vg.hessian(narrow_exp, INP).shape == (4, 4)
    assert vg.hvp(narrow_exp, INP, V4)[1].shape == INP.shape
    b = torch.rand(5, dtype=DTYPE)
    blocks = vg.hessian(lambda a, c: (3 * c.narrow(0, 0, 3) * a.narrow(0, 0, 3)).sum(), (INP, b))
    assert [[blk.shape for blk in row] for row in blocks] == [
        [(4, 4), (4, 5)],
        [(5, 4), (5, 5)],
    ]


# ---------------------------------------------------------------------------------------------
# The *_err_check_strict tests, strict=False half: outputs independent of the inputs give zeros.
# ---------------------------------------------------------------------------------------------

DETACHED: list[Any] = [
    pytest.param(lambda f, x: vg.vjp(f, x, torch.rand_like(x))[1], id="vjp"),
    pytest.param(lambda f, x: vg.jvp(f, x, torch.rand_like(x))[1], id="jvp"),
    *(
        pytest.param(partial(lambda s, f, x: vg.jacobian(f, x, strategy=s), s), id=f"jac-{s}")
        for s in STRATEGIES
    ),
]


@pytest.mark.parametrize("api", DETACHED)
def test_detached_output_gives_zeros(
    api: Callable[[Callable[..., Tensor], Tensor], Tensor],
) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_err_check_strict,
    test_jvp_err_check_strict and test_jacobian_err_check_strict (strict=False): a function
    returning ``a.detach()`` has a zero derivative.
    """
    x = rand(4)
    result = api(lambda a: a.detach(), x)
    assert_close(result, torch.zeros_like(result))
    assert result.abs().sum() == 0


@pytest.mark.parametrize(
    "func",
    [lambda a: a.detach().sum(), lambda a: (3 * a).sum()],
    ids=["detached", "linear"],
)
def test_hessian_of_detached_or_linear_is_zero(func: Callable[[Tensor], Tensor]) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_hessian_err_check_strict,
    test_hvp_err_check_strict and test_vhp_err_check_strict (strict=False): zero Hessians.
    """
    x = rand(4)
    assert_close(vg.hessian(func, x), torch.zeros(4, 4, dtype=DTYPE))
    assert_close(vg.hvp(func, x, rand(4))[1], torch.zeros(4, dtype=DTYPE))


def _requires_grad_inside(a: Tensor) -> Tensor:
    # A non-leaf that requires grad but is not connected to the input (upstream's ``bar``).
    return a.long().to(a.dtype).requires_grad_().clone()


REQUIRES_GRAD_CALLS: list[Any] = [
    pytest.param("vjp", lambda f, x: vg.vjp(f, x, torch.ones_like(x)), id="vjp"),
    pytest.param("jvp", lambda f, x: vg.jvp(f, x, torch.ones_like(x)), id="jvp"),
    *(
        pytest.param("jacobian", partial(lambda s, f, x: vg.jacobian(f, x, strategy=s), s), id=s)
        for s in VECTORISED
    ),
    pytest.param("hessian", lambda f, x: vg.hessian(lambda t: f(t).sum(), x), id="hessian"),
    pytest.param("hvp", lambda f, x: vg.hvp(lambda t: f(t).sum(), x, torch.ones_like(x)), id="hvp"),
]


@pytest.mark.parametrize(("name", "call"), REQUIRES_GRAD_CALLS)
def test_requires_grad_inside_func_is_refused(
    name: str, call: Callable[[Callable[..., Tensor], Tensor], object]
) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_err_check_strict
    (``bar``, which calls ``requires_grad_()``): under vecgrad's transforms such a func gets a
    vecgrad TypeError naming the problem (contract item 5), not torch's internal RuntimeError.
    """
    with pytest.raises(TypeError, match=rf"^vecgrad\.{name}: (?s:.*)requires_grad_"):
        call(_requires_grad_inside, rand(4))


# ---------------------------------------------------------------------------------------------
# no_grad, outputs without a graph, and create_graph (differentiable results).
# ---------------------------------------------------------------------------------------------

APIS: dict[str, Callable[[Tensor], Any]] = {
    "vjp": lambda x: vg.vjp(exp_reducer, x, torch.ones(4, dtype=DTYPE)),
    "jvp": lambda x: vg.jvp(exp_reducer, x, torch.ones(4, 4, dtype=DTYPE)),
    **{
        f"jacobian-{s}": partial(lambda s, x: vg.jacobian(exp_reducer, x, strategy=s), s)
        for s in STRATEGIES
    },
    "batch_jacobian": lambda x: vg.batch_jacobian(torch.tanh, x),
    "hessian": lambda x: vg.hessian(pow_reducer, x),
    "hvp": lambda x: vg.hvp(lambda t: t.exp().sum(), x, torch.ones(4, 4, dtype=DTYPE)),
    "numerical_jacobian": lambda x: vg.numerical_jacobian(exp_reducer, x),
    "hutchinson": lambda x: vg.hutchinson(
        exp_reducer, x, num_samples=3, generator=torch.Generator().manual_seed(0)
    ),
    "hutchinson-trace": lambda x: vg.hutchinson(
        pow_reducer,
        x,
        num_samples=3,
        quantity="hessian_trace",
        generator=torch.Generator().manual_seed(0),
    ),
}


@pytest.mark.parametrize("name", list(APIS))
def test_no_grad_gives_no_graph(name: str) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_no_grad,
    test_jvp_no_grad, test_jacobian_no_grad, test_hessian_no_grad, test_hvp_no_grad and
    test_eager_transforms.py::TestGradTransform::test_no_grad_outside: under
    ``torch.no_grad()`` no graph is built even for inputs that require grad, and the values are
    those of the call outside.
    """
    x = rand(4, 4, requires_grad=True)
    with torch.no_grad():
        res = APIS[name](x)
    assert no_graph(res)
    assert any(t.abs().sum() > 0 for t in flatten(res))
    reference = APIS[name](x.detach())
    for got, want in zip(flatten(res), flatten(reference), strict=True):
        assert_close(got, want)


@pytest.mark.parametrize("name", list(APIS))
def test_inputs_without_grad_give_no_graph(name: str) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_output,
    test_jvp_output, test_jacobian_output, test_hessian_output and test_hvp_output: inputs that
    do not require grad give results without a graph.
    """
    assert no_graph(APIS[name](rand(4, 4)))


@pytest.mark.parametrize("name", list(APIS))
def test_inputs_with_grad_give_a_graph(name: str) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_create_graph,
    test_jvp_create_graph, test_jacobian_create_graph, test_hessian_create_graph and
    test_hvp_create_graph (the ``assertIsNotNone(res.grad_fn)`` part): with grad mode on and
    inputs that require grad, every result carries the graph (contract item 1).
    """
    assert has_graph(APIS[name](rand(4, 4, requires_grad=True)))


def test_output_structures() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_output,
    test_jvp_output, test_jacobian_output, test_hessian_output and test_hvp_output: tuple
    inputs give tuples (vecgrad's Hessian: a tuple of tuples), the identity's Jacobian is I.
    """
    inputs = (rand(2), rand(2))
    out, vjp_val = vg.vjp(lambda x, y: 2 * x + 3 * y, inputs, torch.ones(2, dtype=DTYPE))
    assert isinstance(vjp_val, tuple)
    assert [t.shape for t in vjp_val] == [(2,), (2,)]
    assert_close(vjp_val, (torch.full((2,), 2.0, dtype=DTYPE), torch.full((2,), 3.0, dtype=DTYPE)))
    out, jvp_val = vg.jvp(lambda x, y: 2 * x + 3 * y, inputs, (rand(2), rand(2)))
    assert isinstance(jvp_val, Tensor)
    assert jvp_val.shape == out.shape
    for strategy in STRATEGIES:
        assert_close(
            vg.jacobian(lambda x: x.clone(), rand(4), strategy=strategy), torch.eye(4, dtype=DTYPE)
        )
    jac = vg.jacobian(add_exp_reducer, (rand(4, 4), rand(4, 4)))
    assert [t.shape for t in jac] == [(4, 4, 4), (4, 4, 4)]
    hess = vg.hessian(add_pow_reducer, (rand(2, 2), rand(2, 2)))
    assert [[h.shape for h in row] for row in hess] == [[(2, 2, 2, 2)] * 2] * 2
    _, hvp_val = vg.hvp(narrow_pair, (rand(3), rand(4)), (rand(3), rand(4)))
    assert [t.shape for t in hvp_val] == [(3,), (4,)]


def test_vjp_create_graph() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_create_graph:
    gradcheck and gradgradcheck of vjp in the inputs and ``v``, also nested in a function.
    """
    inputs = rand(2, 2, requires_grad=True)
    v = torch.ones(2, dtype=DTYPE, requires_grad=True)
    res = vg.vjp(reducer, inputs, v)
    assert has_graph(res)
    assert gradcheck(lambda inp, w: vg.vjp(reducer, inp, w), (inputs, v))
    assert gradgradcheck(lambda inp, w: vg.vjp(reducer, inp, w), (inputs, v))

    xy = (rand(2, requires_grad=True), rand(2, requires_grad=True))
    w = torch.tensor([1.0, 0.0, 0.5, 2.0], dtype=DTYPE, requires_grad=True)
    assert gradcheck(lambda x, y, u: vg.vjp(adder, (x, y), u)[1], (*xy, w))
    assert gradgradcheck(lambda x, y, u: vg.vjp(adder, (x, y), u)[1], (*xy, w))

    def foo(x: Tensor, y: Tensor, u: Tensor) -> Tensor:
        x = x.cos()
        val, grad = vg.vjp(adder, (x, y), u)
        return val.exp().sum() + grad[0].exp().sum() + grad[1].exp().sum() + (x + y).exp().sum()

    assert gradcheck(foo, (*xy, w))
    assert gradgradcheck(foo, (*xy, w))


def test_jvp_create_graph() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_jvp_create_graph."""
    inputs = rand(2, 2, requires_grad=True)
    v = torch.ones(2, 2, dtype=DTYPE, requires_grad=True)
    assert has_graph(vg.jvp(reducer, inputs, v))
    assert gradcheck(lambda inp, u: vg.jvp(reducer, inp, u), (inputs, v))
    assert gradgradcheck(lambda inp, u: vg.jvp(reducer, inp, u), (inputs, v))

    xy = (rand(2, requires_grad=True), rand(2, requires_grad=True))
    uv = (rand(2, requires_grad=True), rand(2, requires_grad=True))
    assert gradcheck(lambda x, y, a, b: vg.jvp(adder, (x, y), (a, b))[1], (*xy, *uv))
    assert gradgradcheck(lambda x, y, a, b: vg.jvp(adder, (x, y), (a, b))[1], (*xy, *uv))

    def foo(x: Tensor, y: Tensor, a: Tensor, b: Tensor) -> Tensor:
        x = x.cos()
        val, grad = vg.jvp(adder, (x, y), (a, b))
        return val.exp().sum() + grad.exp().sum() + (x + y).exp().sum()

    assert gradcheck(foo, (*xy, *uv))
    assert gradgradcheck(foo, (*xy, *uv))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jacobian_create_graph(strategy: str) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_jacobian_create_graph
    (vectorize=True/False become vecgrad's strategies).
    """
    inputs = rand(3, 3, requires_grad=True)
    res = vg.jacobian(exp_reducer, inputs, strategy=strategy)
    assert res.shape == (3, 3, 3)
    assert has_graph(res)
    assert gradcheck(lambda inp: vg.jacobian(exp_reducer, inp, strategy=strategy), inputs)
    assert gradgradcheck(lambda inp: vg.jacobian(exp_reducer, inp, strategy=strategy), inputs)

    pair = (rand(2, 2, requires_grad=True), rand(2, 2, requires_grad=True))
    res2 = vg.jacobian(add_exp_reducer, pair, strategy=strategy)
    assert has_graph(res2)
    assert gradcheck(lambda *inp: vg.jacobian(add_exp_reducer, inp, strategy=strategy), pair)
    assert gradgradcheck(lambda *inp: vg.jacobian(add_exp_reducer, inp, strategy=strategy), pair)

    def foo(x: Tensor, y: Tensor) -> Tensor:
        x = x.cos()
        jac = vg.jacobian(add_exp_reducer, (x, y), strategy=strategy)
        return jac[0].exp().sum() + jac[1].exp().sum() + x.exp().sum() + y.exp().sum()

    assert gradcheck(foo, pair)
    assert gradgradcheck(foo, pair)


def test_hessian_create_graph() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_hessian_create_graph."""
    inputs = rand(2, 2, requires_grad=True)
    assert has_graph(vg.hessian(pow_reducer, inputs))
    assert gradcheck(lambda inp: vg.hessian(pow_reducer, inp), inputs)
    assert gradgradcheck(lambda inp: vg.hessian(pow_reducer, inp), inputs)

    pair = (rand(2, 2, requires_grad=True), rand(2, 2, requires_grad=True))
    assert has_graph(vg.hessian(add_pow_reducer, pair))
    assert gradcheck(lambda *inp: flatten(vg.hessian(add_pow_reducer, inp)), pair)
    assert gradgradcheck(lambda *inp: flatten(vg.hessian(add_pow_reducer, inp)), pair)

    def foo(x: Tensor, y: Tensor) -> Tensor:
        x = x.cos()
        hess = flatten(vg.hessian(add_pow_reducer, (x, y)))
        return sum(h.cos().sum() for h in hess) + x.cos().sum() + y.cos().sum()

    assert gradcheck(foo, pair)
    assert gradgradcheck(foo, pair)


def test_hvp_create_graph() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_hvp_create_graph and
    test_vhp_create_graph.
    """
    inputs = rand(4, 4, requires_grad=True)
    v = torch.ones(4, 4, dtype=DTYPE, requires_grad=True)
    assert has_graph(vg.hvp(narrow_exp, inputs, v))
    assert gradcheck(lambda inp, u: vg.hvp(narrow_exp, inp, u), (inputs, v))
    assert gradgradcheck(lambda inp, u: vg.hvp(narrow_exp, inp, u), (inputs, v))

    xy = (rand(3, requires_grad=True), rand(4, requires_grad=True))
    uv = (rand(3, requires_grad=True), rand(4, requires_grad=True))
    out, hvp_val = vg.hvp(narrow_pair, xy, uv)
    assert has_graph((out, hvp_val))
    assert gradcheck(lambda x, y, a, b: vg.hvp(narrow_pair, (x, y), (a, b))[1], (*xy, *uv))
    assert gradgradcheck(lambda x, y, a, b: vg.hvp(narrow_pair, (x, y), (a, b))[1], (*xy, *uv))

    def foo(x: Tensor, y: Tensor, a: Tensor, b: Tensor) -> Tensor:
        x = x.cos()
        val, grad = vg.hvp(narrow_pair, (x, y), (a, b))
        return val.cos() + grad[0].cos().sum() + grad[1].cos().sum() + x.cos().sum() + y.cos().sum()

    assert gradcheck(foo, (*xy, *uv))
    assert gradgradcheck(foo, (*xy, *uv))


# ---------------------------------------------------------------------------------------------
# Scalars (0-d inputs and outputs) and the agreement of the products with the full matrices.
# ---------------------------------------------------------------------------------------------


def test_scalar_inputs_and_outputs() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_vjp_scalar,
    test_jvp_scalar, test_jacobian_scalar, test_hessian_scalar and test_hvp_scalar.
    """

    def expander(x: Tensor) -> Tensor:
        return x.unsqueeze(0).repeat(4)

    x2, x0 = rand(4, 4), rand()
    out, g = vg.vjp(lambda x: x.sum(), x2, torch.ones((), dtype=DTYPE))
    assert (out.shape, g.shape) == ((), (4, 4))
    assert_close(g, torch.ones(4, 4, dtype=DTYPE))
    out, g = vg.vjp(expander, x0, torch.ones(4, dtype=DTYPE))
    assert (out.shape, g.shape) == ((4,), ())
    assert_close(g, torch.tensor(4.0, dtype=DTYPE))
    out, t = vg.jvp(lambda x: x.sum(), x2, torch.ones(4, 4, dtype=DTYPE))
    assert (out.shape, t.shape) == ((), ())
    out, t = vg.jvp(expander, x0, torch.ones((), dtype=DTYPE))
    assert_close(t, torch.ones(4, dtype=DTYPE))
    for strategy in STRATEGIES:
        assert vg.jacobian(lambda x: x.sum(), x2, strategy=strategy).shape == (4, 4)
        assert_close(vg.jacobian(expander, x0, strategy=strategy), torch.ones(4, dtype=DTYPE))
    assert vg.hessian(lambda x: x.sum(), x2).shape == (4, 4, 4, 4)
    assert_close(vg.hessian(lambda x: x**3, x0), 6 * x0)
    bad = vg.hessian(lambda x: x.exp().sum().view(1, 1, 1), x2)
    assert_close(bad, torch.func.hessian(lambda x: x.exp().sum())(x2))
    out, hv = vg.hvp(lambda x: x.exp().sum(), x0, torch.ones((), dtype=DTYPE))
    assert (out.shape, hv.shape) == ((), ())
    assert_close(hv, x0.exp())
    _, hv = vg.hvp(lambda x: x.exp().sum().view(1, 1, 1), x2, torch.ones(4, 4, dtype=DTYPE))
    assert_close(hv, x2.exp())


def test_jacobian_matches_vjp_jvp_and_hessian_matches_hvp() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_jacobian_match_vjp_jvp and
    test_hessian_match_vhp_hvp.
    """
    inputs, v = rand(4), rand(4)
    jac = vg.jacobian(lambda x: x**3 + x.sum(), inputs)
    assert_close(vg.jvp(lambda x: x**3 + x.sum(), inputs, v)[1], jac @ v)
    assert_close(vg.vjp(lambda x: x**3 + x.sum(), inputs, v)[1], v @ jac)
    hes = vg.hessian(narrow_exp, inputs)
    assert_close(vg.hvp(narrow_exp, inputs, v)[1], hes @ v)
    assert_close(vg.hvp(narrow_exp, inputs, v)[1], v @ hes)


# ---------------------------------------------------------------------------------------------
# Strategies agree with each other and with torch.autograd.functional (vectorize tests).
# ---------------------------------------------------------------------------------------------


def _multi_input(x: Tensor, y: Tensor) -> Tensor:
    return (x.cos() * x) @ y.sin()


def _cubic(x: Tensor) -> Tensor:
    return 3 * x**2


def _stack0(x: Tensor) -> Tensor:
    return torch.stack([x, x, x])


def _mixed0(x: Tensor, y: Tensor) -> Tensor:
    return torch.cat([y.sum().reshape(1), x * y])


REFERENCE_CASES: list[Any] = [
    pytest.param(_cubic, ((2, 3, 5),), id="simple"),
    pytest.param(_multi_input, ((2, 3), (3, 5)), id="multi_input"),
    pytest.param(lambda x, y: x * y, ((3,), (3,)), id="product"),
    pytest.param(_stack0, ((),), id="zero_dim_input"),
    pytest.param(lambda x, y: (x * y).sum(), ((3,), (3,)), id="zero_dim_output"),
    pytest.param(_mixed0, ((), (1,)), id="mixed_zero_dim"),
    pytest.param(lambda x, y, z=3.0: x * y * z, ((3,), (3,)), id="default_arg"),
]


@pytest.mark.parametrize(("func", "shapes"), REFERENCE_CASES)
def test_jacobian_against_reference(
    func: Callable[..., Tensor], shapes: tuple[tuple[int, ...], ...]
) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::
    test_jacobian_vectorize_correctness_simple, _multi_input and _zero_dim, and
    test_eager_transforms.py::TestJac::test_against_reference_simple, _multi_input, _zero_dim
    and _default_arg.
    """
    inputs = tuple(randn(*shape) for shape in shapes)
    expected = torch.autograd.functional.jacobian(func, inputs)
    for strategy in STRATEGIES:
        assert_close(vg.jacobian(func, inputs, strategy=strategy), expected, msg=strategy)
        if len(inputs) == 1:
            result = vg.jacobian(func, inputs[0], strategy=strategy)
            assert_close(result, expected[0], msg=strategy)


@pytest.mark.parametrize(
    ("out_dtype", "in_dtype"),
    [
        (torch.float32, torch.float64),
        (torch.float64, torch.float32),
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float64),
    ],
    ids=["f32-of-f64", "f64-of-f32", "f16-of-f32", "bf16-of-f64"],
)
def test_strategies_agree_on_dtype(out_dtype: torch.dtype, in_dtype: torch.dtype) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::
    test_jacobian_vectorize_correctness_different_dtype, where upstream notes that forward mode
    gives the output's dtype and reverse mode the input's: vecgrad's strategies all give
    ``torch.promote_types(output dtype, input dtype)`` (contract item 3), and equal values.
    """
    x = torch.linspace(-1.0, 1.0, 3, dtype=in_dtype)
    y = torch.linspace(0.5, 2.0, 3, dtype=in_dtype)

    def f(a: Tensor, b: Tensor) -> Tensor:
        return (a * b).to(out_dtype)

    want = torch.promote_types(out_dtype, in_dtype)
    results = {s: vg.jacobian(f, (x, y), strategy=s) for s in STRATEGIES}
    for strategy, blocks in results.items():
        assert [b.dtype for b in blocks] == [want, want], strategy
    expected = (torch.diag(y), torch.diag(x))
    for strategy, blocks in results.items():
        for block, ref in zip(blocks, expected, strict=True):
            assert_close(block, ref.to(want), atol=1e-2, rtol=1e-2, msg=strategy)


HESSIAN_CASES: list[Any] = [
    pytest.param(lambda x: (3 * x**2).sum(), ((2, 3, 5),), id="simple"),
    pytest.param(
        lambda x, y, z: ((x.relu() * x) @ y.sin() @ z).sum(),
        ((2, 3), (3, 5), (5, 5)),
        id="multi_input",
    ),
    pytest.param(lambda x, y: (x**2).sum(), ((2,), (3,)), id="unrelated_one_input"),
    pytest.param(lambda x, y: torch.ones((), dtype=DTYPE), ((2,), (3,)), id="unrelated_all_inputs"),
]


@pytest.mark.parametrize(("func", "shapes"), HESSIAN_CASES)
def test_hessian_against_reference(
    func: Callable[..., Tensor], shapes: tuple[tuple[int, ...], ...]
) -> None:
    """Ported from test_functional.py::TestAutogradFunctional::
    test_hessian_vectorize_correctness_simple, _multi_input and _unrelated_outputs, and
    test_eager_transforms.py::TestHessian::test_hessian_vectorize_correctness_simple,
    _multi_input and _unrelated_outputs (unrelated inputs give zero blocks).
    """
    inputs = tuple(randn(*shape) for shape in shapes)
    expected = torch.autograd.functional.hessian(func, inputs)
    assert_close(vg.hessian(func, inputs), expected)


# ---------------------------------------------------------------------------------------------
# test_eager_transforms.py: TestGradTransform.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_composed_with_autograd(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_composed_with_autograd:
    ``torch.autograd.grad`` of a derivative computed by vecgrad gives the second derivative.
    """
    x = randn(requires_grad=True)
    y = vg.jacobian(torch.sin, x, strategy=strategy)
    (result,) = torch.autograd.grad(y, x)
    assert_close(result, -x.detach().sin())


@pytest.mark.parametrize("inner", STRATEGIES)
def test_nesting_simple(inner: str) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_nesting_simple and
    TestJac::test_nested_jac_simple: a vecgrad Jacobian (each strategy) of a vecgrad Jacobian.
    """
    x = randn()
    v = randn(3)
    for outer in STRATEGIES:
        if inner == "loop" and outer != "loop":
            # Documented difference: the loop is plain autograd, refused inside torch.func.
            with pytest.raises(ValueError, match=LOOP_REFUSED):
                vg.jacobian(lambda t: vg.jacobian(torch.sin, t, strategy=inner), x, strategy=outer)
            continue
        result = vg.jacobian(lambda t: vg.jacobian(torch.sin, t, strategy=inner), x, strategy=outer)
        assert_close(result, -x.sin(), msg=f"outer={outer}")
        result = vg.jacobian(
            lambda t: vg.jacobian(lambda u: u.sin().sum(), t, strategy=inner), v, strategy=outer
        )
        assert_close(result, torch.diagflat(-v.sin()), msg=f"outer={outer}")


def test_grad_of_vjp_and_vjp_of_grad() -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_grad_of_vjp_composition,
    test_vjp_of_grad_composition and test_grad_of_vjp_of_grad_composition.
    """
    x, y = randn(), randn()
    assert_close(torch.func.grad(lambda w: vg.vjp(torch.sin, x, w)[1])(y), x.cos())
    assert_close(vg.vjp(torch.func.grad(torch.sin), x, y)[1], -y * x.sin())
    assert_close(
        torch.func.grad(lambda w: vg.vjp(torch.func.grad(lambda t: -torch.cos(t)), x, w)[1])(y),
        x.cos(),
    )


def _shifted_square(x: Tensor) -> Tensor:
    with torch.no_grad():
        shift = x**2
    return x**2 - shift


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_grad_inside(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_no_grad_inside: reverse
    mode respects ``torch.no_grad()`` inside func; forward mode ignores it (contract item 6), so
    each strategy equals torch.func's transform of the same mode.
    """
    x = randn(3)
    result = vg.jacobian(_shifted_square, x, strategy=strategy)
    reverse = torch.func.jacrev(_shifted_square)(x)
    forward = torch.func.jacfwd(_shifted_square)(x)
    assert_close(reverse, torch.diag(2 * x))
    assert_close(result, forward if strategy == "forward" else reverse)
    assert_close(vg.vjp(_shifted_square, x, torch.ones(3, dtype=DTYPE))[1], 2 * x)
    assert_close(
        vg.jvp(_shifted_square, x, torch.ones(3, dtype=DTYPE))[1],
        torch.func.jvp(_shifted_square, (x,), (torch.ones(3, dtype=DTYPE),))[1],
    )


def test_no_grad_inside_nested() -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_no_grad_inside (second
    half) and test_no_grad_nested_simple: second derivatives through vecgrad calls.
    """
    x = randn(requires_grad=True)
    one = torch.ones((), dtype=DTYPE)
    y = vg.vjp(_shifted_square, x, one)[1]
    (z,) = torch.autograd.grad(y, x)
    assert_close(z, torch.tensor(2.0, dtype=DTYPE))
    second = vg.jacobian(
        lambda t: vg.vjp(_shifted_square, t, one)[1], x.detach(), strategy="reverse"
    )
    assert_close(second, torch.tensor(2.0, dtype=DTYPE))

    def h(t: Tensor) -> Tensor:
        with torch.no_grad():
            shift = vg.vjp(lambda u: 0.25 * u**4, t, one)[1]
        return t**3 - shift

    x = torch.tensor(1.5, dtype=DTYPE, requires_grad=True)
    y = vg.vjp(h, x, one)[1]
    assert_close(y, 3 * x.detach() ** 2)
    (z,) = torch.autograd.grad(y, x)
    assert_close(z, 6 * x.detach())


INFERENCE_CALLS: list[Any] = [
    pytest.param(
        lambda x: vg.vjp(lambda t: (t**2).sum(), x, torch.tensor(1.0, dtype=DTYPE))[1], id="vjp"
    ),
    pytest.param(lambda x: vg.jvp(lambda t: t**2, x, torch.ones_like(x))[1], id="jvp"),
    *(
        pytest.param(
            partial(lambda s, x: vg.jacobian(lambda t: t**2, x, strategy=s).diagonal(), s),
            id=f"jacobian-{s}",
        )
        for s in STRATEGIES
    ),
    pytest.param(lambda x: vg.hessian(lambda t: (t**3).sum(), x).diagonal() / 3, id="hessian"),
    pytest.param(lambda x: vg.hvp(lambda t: (t**3).sum(), x, torch.ones_like(x))[1] / 3, id="hvp"),
    pytest.param(
        lambda x: vg.batch_jacobian(lambda t: t**2, x.unsqueeze(1))[:, 0, 0], id="batch_jacobian"
    ),
    pytest.param(
        lambda x: torch.func.vmap(lambda t: vg.vjp(lambda u: u**2, t, torch.ones_like(t))[1])(x),
        id="vmap-vjp",
    ),
    pytest.param(
        lambda x: vg.jacobian(torch.func.grad(lambda t: (t**3).sum()), x).diagonal() / 3,
        id="jacobian-of-grad",
    ),
]


@pytest.mark.parametrize("call", INFERENCE_CALLS)
def test_inference_mode_outside(call: Callable[[Tensor], Tensor]) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_inference_mode_outside_grad,
    test_inference_mode_nograd_outside_grad, test_inference_mode_outside_vjp,
    test_inference_mode_outside_jvp, test_inference_mode_outside_jacrev,
    test_inference_mode_outside_vmap_grad and test_inference_mode_jacrev_grad: every call
    works under ``torch.inference_mode()`` (with or without no_grad) and gives 2 x.
    """
    x = randn(3)
    with torch.inference_mode():
        y = call(x)
        assert torch.is_inference_mode_enabled()
        with torch.no_grad():
            z = call(x)
    assert not torch.is_inference_mode_enabled()
    assert_close(y, 2 * x)
    assert_close(z, 2 * x)


def test_inference_mode_inside() -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_inference_mode_inside_grad."""

    def f(x: Tensor) -> Tensor:
        with torch.inference_mode():
            c = x**2
        return x - c

    x = randn(3)
    with torch.inference_mode():
        y = vg.vjp(lambda t: f(t).sum(), x, torch.tensor(1.0, dtype=DTYPE))[1]
    assert_close(y, torch.ones_like(x))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_unrelated_output(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_unrelated_grad,
    test_unrelated_vjp and TestJac::test_unrelated_output: a func returning a captured tensor.
    """
    y = randn(2, 3)
    x = randn(2, 3)
    assert_close(
        vg.jacobian(lambda t: y, x, strategy=strategy), torch.zeros(2, 3, 2, 3, dtype=DTYPE)
    )
    assert_close(vg.vjp(lambda t: y, x, randn(2, 3))[1], torch.zeros_like(x))
    out, tangent = vg.jvp(lambda t: y, x, randn(2, 3))
    assert_close(out, y)
    assert_close(tangent, torch.zeros_like(y))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_unrelated_input(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestJac::test_unrelated_input,
    TestJvp::test_unrelated_input and TestGradTransform::test_unrelated_vjp_multiple_inputs_outputs:
    an input the output does not depend on gets zeros.
    """
    x, y = randn(2, 3), randn(2, 3)
    jx, jy = vg.jacobian(lambda a, b: a, (x, y), strategy=strategy)
    assert_close(jx, torch.eye(6, dtype=DTYPE).view(2, 3, 2, 3))
    assert_close(jy, torch.zeros(2, 3, 2, 3, dtype=DTYPE))
    tx, ty = randn(2, 3), randn(2, 3)
    out, tangent = vg.jvp(lambda a, b: a, (x, y), (tx, ty))
    assert_close((out, tangent), (x, tx))
    gx, gy = vg.vjp(lambda a, b: a * 2, (x, y), tx)[1]
    assert_close((gx, gy), (2 * tx, torch.zeros_like(y)))
    hess = vg.hessian(lambda a, b: (a**3).sum(), (x, y))
    assert_close(hess[1][1], torch.zeros(2, 3, 2, 3, dtype=DTYPE))
    assert_close(hess[0][1], torch.zeros(2, 3, 2, 3, dtype=DTYPE))
    _, (hx, hy) = vg.hvp(lambda a, b: (a**3).sum(), (x, y), (tx, ty))
    assert_close((hx, hy), (6 * x * tx, torch.zeros_like(y)))


def test_unrelated_hessian() -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_unrelated_hessian: the
    Jacobian of the Jacobian of a linear map is zero (nested vecgrad calls).
    """
    w = randn(5, 3)
    x = randn(3)
    assert_close(
        vg.jacobian(lambda t: vg.jacobian(lambda u: w @ u, t), x), torch.zeros(5, 3, 3, dtype=DTYPE)
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_inplace_inside_func(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_inplace,
    test_inplace_on_view and test_inplace_on_view_base.
    """
    x = randn(3)

    def on_view(t: Tensor) -> Tensor:
        y = t.clone()
        y[0].sin_()
        return y

    def on_base(t: Tensor) -> Tensor:
        y = t.clone()
        y0 = y[:1]
        y.sin_()
        return y0

    assert_close(vg.jacobian(lambda t: t.clone().sin_(), x, strategy=strategy), torch.diag(x.cos()))
    assert_close(vg.jacobian(on_view, x, strategy=strategy), torch.func.jacrev(on_view)(x))
    assert_close(vg.jacobian(on_base, x, strategy=strategy), torch.func.jacrev(on_base)(x))


# ---------------------------------------------------------------------------------------------
# TestJac, TestHessian, TestJvp.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jac_simple_shapes(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestJac::test_simple, test_simple_not_flat,
    test_diff_numel and test_dimensionality.
    """
    x = randn(3)
    assert_close(vg.jacobian(torch.sin, x, strategy=strategy), torch.diagflat(x.cos()))
    x2 = randn(2, 3)
    expected = torch.diagflat(x2.reshape(-1).cos()).view(2, 3, 2, 3)
    assert_close(vg.jacobian(torch.sin, x2, strategy=strategy), expected)
    x24 = randn(2, 4)
    y = vg.jacobian(lambda t: t[0, 1:].unsqueeze(-1), x24, strategy=strategy)
    want = torch.zeros(3, 1, 2, 4, dtype=DTYPE)
    want[0, 0, 0, 1] = want[1, 0, 0, 2] = want[2, 0, 0, 3] = 1
    assert_close(y, want)
    result = vg.jacobian(lambda t: t.clone(), randn(), strategy=strategy)
    assert result.dim() == 0
    assert_close(result, torch.tensor(1.0, dtype=DTYPE))
    assert_close(
        vg.jacobian(lambda t: t.clone(), randn(1), strategy=strategy), torch.ones(1, 1, dtype=DTYPE)
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_vmap_on_jac(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestJac::test_vmap_on_jac_simple: vecgrad's
    Jacobian called inside torch.func.vmap.
    """
    x = randn(2, 3)
    if strategy == "loop":  # documented: plain autograd does not run inside transforms
        with pytest.raises(ValueError, match=LOOP_REFUSED):
            torch.func.vmap(lambda t: vg.jacobian(torch.sin, t, strategy=strategy))(x)
        return
    y = torch.func.vmap(lambda t: vg.jacobian(torch.sin, t, strategy=strategy))(x)
    assert_close(y, torch.stack([torch.diagflat(x[i].cos()) for i in range(2)]))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jac_inside_jacrev_jacfwd(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestJac::test_nested_jac_simple with the inner
    Jacobian vecgrad's: the Hessian of sum(sin x) is diag(-sin x).
    """
    x = randn(3)
    for transform in (torch.func.jacrev, torch.func.jacfwd):
        inner = transform(lambda t: vg.jacobian(lambda u: u.sin().sum(), t, strategy=strategy))
        if strategy == "loop":  # documented: plain autograd does not run inside transforms
            with pytest.raises(ValueError, match=LOOP_REFUSED):
                inner(x)
            continue
        assert_close(inner(x), torch.diagflat(-x.sin()), msg=transform.__name__)


NOT_A_TENSOR: list[Any] = [None, 1, True, 12.2, "abc"]


@pytest.mark.parametrize("output", NOT_A_TENSOR, ids=repr)
def test_outputs_must_be_tensors(output: object) -> None:
    """Ported from test_eager_transforms.py::TestJac::test_outputs_can_any_pytree,
    test_empty_output and TestJvp::test_outputs_can_any_pytree: vecgrad takes a Tensor or a
    tuple of Tensors and refuses anything else with its own TypeError; an empty tuple with a
    ValueError.
    """
    x = randn(2, 3)
    expected = r"`func` must return a Tensor or a tuple of Tensors; got "
    with pytest.raises(TypeError, match=r"^vecgrad\.jacobian: " + expected):
        vg.jacobian(lambda _: output, x)
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: " + expected):
        vg.jvp(lambda _: output, x, x)
    with pytest.raises(TypeError, match=r"^vecgrad\.vjp: " + expected):
        vg.vjp(lambda _: output, x, x)
    empty = r"`func` must return a Tensor or a non-empty tuple of Tensors; got \(\)\."
    with pytest.raises(ValueError, match=r"^vecgrad\.jacobian: " + empty):
        vg.jacobian(lambda _: (), x)
    with pytest.raises(ValueError, match=r"^vecgrad\.jvp: " + empty):
        vg.jvp(lambda _: (), x, x)


@pytest.mark.parametrize(
    "output",
    [lambda x: [x, x.sum()], lambda x: {"x": x, "xsum": x.sum()}, lambda x: (x.sum(), x)],
    ids=["list", "dict", "tuple"],
)
def test_pytree_outputs_are_refused(output: Callable[[Tensor], object]) -> None:
    """Ported from test_eager_transforms.py::TestJac::test_outputs_can_any_pytree (list and
    dict outputs): jacobian takes a tuple but no other pytree; hessian one Tensor only.
    """
    x = randn(2, 3)
    if output(x).__class__ is tuple:
        jac = vg.jacobian(output, x)
        assert_close(jac, torch.func.jacrev(output)(x))
    else:
        with pytest.raises(
            TypeError, match=r"^vecgrad\.jacobian: `func` must return a Tensor or a tuple"
        ):
            vg.jacobian(output, x)
    with pytest.raises(TypeError, match=r"^vecgrad\.hessian: `func` must return a Tensor; got"):
        vg.hessian(output, x)


def test_complex_error() -> None:
    """Ported from test_eager_transforms.py::TestJac::test_complex_error: complex inputs and
    outputs are refused with vecgrad's TypeError (jacrev's 'Expected all inputs/outputs').
    """
    z = torch.randn(1, dtype=torch.cfloat)
    with pytest.raises(TypeError, match=r"^vecgrad\.jacobian: `inputs` must have a real"):
        vg.jacobian(lambda t: t.conj(), z)
    x = torch.randn(1)
    with pytest.raises(TypeError, match=r"^vecgrad\.jacobian: `func` must return a real"):
        vg.jacobian(lambda t: torch.conj(t * 0.5j), x)


def test_jac_with_non_tensor_args() -> None:
    """Ported from test_eager_transforms.py::TestJac::test_jac_with_non_tensor_args: extra
    arguments go in a partial; in ``inputs`` they are refused.
    """
    t = randn(3, 3)
    expected = torch.autograd.functional.jacobian(lambda a: a + 3, t)
    assert_close(vg.jacobian(partial(lambda a, k: a + k, k=3), t), expected)
    with pytest.raises(TypeError, match=r"^vecgrad\.jacobian: `inputs\[1\]` must be a Tensor"):
        vg.jacobian(lambda a, k: a + k, (t, 3))
    with pytest.raises(
        TypeError, match=r"^vecgrad\.jacobian: `inputs` must be a Tensor or a tuple"
    ):
        vg.jacobian(torch.sin, [t])


# torch has no batching rule for take's backward (put) and says so; that is not vecgrad's doing.
@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
def test_jac_take() -> None:
    """Ported from test_eager_transforms.py::TestJac::test_take."""
    x = rand(5)

    def func(t: Tensor) -> Tensor:
        return torch.take(t, torch.ones(3, dtype=torch.long))

    expected = torch.autograd.functional.jacobian(func, x)
    for strategy in STRATEGIES:
        assert_close(vg.jacobian(func, x, strategy=strategy), expected)


def test_jacfwd_different_levels() -> None:
    """Ported from test_eager_transforms.py::TestHessian::test_jacfwd_different_levels:
    vecgrad's Hessian vmapped over a batch of problems equals jacrev of jacrev.
    """
    b, n, d = 4, 10, 2
    x1 = randn(b, n, d)
    x2 = x1
    a = 0.1 * randn(b, d, d)

    def loss(am: Tensor, u: Tensor, w: Tensor) -> Tensor:
        w_hat = (am @ u.T).T
        return ((w - w_hat) ** 2).sum()

    hess1 = torch.func.vmap(torch.func.jacrev(torch.func.jacrev(loss)))(a, x1, x2)
    hess2 = torch.func.vmap(lambda am, u, w: vg.hessian(lambda m: loss(m, u, w), am))(a, x1, x2)
    assert_close(hess2, hess1)


def test_jvp_simple_and_multiple_inputs() -> None:
    """Ported from test_eager_transforms.py::TestJvp::test_simple, test_multiple_inputs and
    test_jvp_new_tensor.
    """
    x, t = randn(2, 3), randn(2, 3)
    assert_close(vg.jvp(torch.sin, x, t), (x.sin(), x.cos() * t))
    y, ty = randn(2, 3), randn(2, 3)
    assert_close(vg.jvp(lambda a, b: a * b, (x, y), (t, ty)), (x * y, y * t + x * ty))
    z = rand(10, 10)
    out = vg.jvp(lambda a: a + a.new_tensor(0.5), z, torch.zeros_like(z))
    assert_close(out, (z + 0.5, torch.zeros_like(z)))


def test_jvp_structure_errors() -> None:
    """Ported from test_eager_transforms.py::TestJvp::test_multiple_outputs,
    test_primals_tangents_length_mismatch, test_nonempty_primals_and_tangents,
    test_inputs_are_tuples_of_tensors and test_pytree_inputs_error_cases.
    """
    x, t = randn(2, 3), randn(2, 3)
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: `func` must return a Tensor or a tuple"):
        vg.jvp(lambda a: [a.sin(), a.cos()], x, t)
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: `v` must be a Tensor"):
        vg.jvp(torch.sin, x, (t, t))
    with pytest.raises(ValueError, match=r"^vecgrad\.jvp: `v` must have one Tensor per element"):
        vg.jvp(lambda a, b: a * b, (x, x), (t, t, t))
    with pytest.raises(
        ValueError, match=r"^vecgrad\.jvp: `inputs` must be a Tensor or a non-empty"
    ):
        vg.jvp(torch.sin, (), ())
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: `v` must be a tuple of 1 Tensors"):
        vg.jvp(torch.sin, (x,), t)
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: `v` must be a Tensor or a tuple"):
        vg.jvp(torch.sin, (x,), [t])
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: `inputs\[0\]` must be a Tensor"):
        vg.jvp(torch.sin, (1.0,), (t,))
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: `v\[0\]` must be a Tensor"):
        vg.jvp(torch.sin, (x,), (1.0,))


def test_jvp_of_jvp() -> None:
    """Ported from test_eager_transforms.py::TestJvp::test_disable_fwd_grad_inside (its nested
    ``jvp(lambda x: jvp(f, ...)[1], ...)``): a vecgrad JVP inside a vecgrad JVP.
    """
    x, t = randn(), torch.ones((), dtype=DTYPE)
    _, y = vg.jvp(lambda a: a**2, x, t)
    assert_close(y, 2 * x)
    _, y = vg.jvp(lambda a: vg.jvp(lambda b: b**2, a, t)[1], x, t)
    assert_close(y, torch.tensor(2.0, dtype=DTYPE))


# ---------------------------------------------------------------------------------------------
# TestVmapOfGrad and the model functions.
# ---------------------------------------------------------------------------------------------


def test_per_sample_grads_simple() -> None:
    """Ported from test_eager_transforms.py::TestVmapOfGrad::test_per_sample_grads_simple and
    test_per_sample_grads_inplace_view: vecgrad's per-sample gradients equal vmap of grad.
    """
    model = nn.Linear(16, 2, bias=False).to(DTYPE)
    x, t = randn(8, 16), randn(8, 2)

    def compute_loss(weight: Tensor, xi: Tensor, ti: Tensor) -> Tensor:
        y = xi @ weight.T
        return ((y - ti) ** 2).sum()

    weight = model.weight.detach()
    expected = torch.func.vmap(partial(torch.func.grad(compute_loss), weight))(x, t)
    result = vg.per_sample_grads(model, lambda p, y: ((p - y) ** 2).sum(), x, t)
    assert list(result) == ["weight"]
    assert_close(result["weight"], expected)
    assert not result["weight"].requires_grad


def test_log_softmax_vjp_under_vmap() -> None:
    """Ported from test_eager_transforms.py::TestVmapOfGrad::test_log_softmax: vecgrad's vjp
    inside torch.func.vmap with an unbatched cotangent.
    """
    x, v = randn(3, 5), randn(5)
    result = torch.func.vmap(
        lambda a, w: vg.vjp(partial(torch.log_softmax, dim=-1), a, w)[1], (0, None)
    )(x, v)
    leaf = x.clone().requires_grad_()
    torch.log_softmax(leaf, dim=-1).backward(v.expand_as(x))
    assert_close(result, leaf.grad)


def test_per_sample_grads_embeddingnet() -> None:
    """Ported from test_eager_transforms.py::TestVmapOfGrad::test_per_sample_grads_embeddingnet
    (functional_call mechanism), with create_graph: a loss of the per-sample gradients
    backpropagates to the parameters as the torch.func composition does (contract item 2).
    """

    class SampleNet(nn.Module):
        def __init__(self, vocab_size: int) -> None:
            super().__init__()
            self.emb = nn.Embedding(vocab_size, 4)
            self.fc1 = nn.Linear(4, 4)
            self.fc2 = nn.Linear(4, 2)

        def forward(self, x: Tensor) -> Tensor:
            h = torch.transpose(self.emb(x), -1, -2).mean(-1)
            return self.fc2(F.relu(self.fc1(h)))

    net = SampleNet(20).to(DTYPE)
    data = torch.randint(0, 20, (6, 5))
    targets = torch.randint(0, 2, (6,))
    params = {k: v.detach() for k, v in net.named_parameters()}

    def compute_loss(p: dict[str, Tensor], xi: Tensor, ti: Tensor) -> Tensor:
        out = torch.func.functional_call(net, p, (xi.unsqueeze(0),))
        return F.cross_entropy(out, ti.unsqueeze(0))

    expected = torch.func.vmap(torch.func.grad(compute_loss), in_dims=(None, 0, 0))(
        params, data, targets
    )
    result = vg.per_sample_grads(net, F.cross_entropy, data, targets)
    assert list(result) == list(expected)
    assert_close(result, expected)
    assert not any(r.requires_grad for r in result.values())

    def penalty(p: dict[str, Tensor]) -> Tensor:
        grads = torch.func.vmap(torch.func.grad(compute_loss), in_dims=(None, 0, 0))(
            p, data, targets
        )
        return sum(g.square().sum() for g in grads.values())

    want = torch.func.grad(penalty)(params)
    graphed = vg.per_sample_grads(net, F.cross_entropy, data, targets, create_graph=True)
    assert all(r.requires_grad for r in graphed.values())
    total = sum(g.square().sum() for g in graphed.values())
    got = torch.autograd.grad(total, list(net.parameters()), materialize_grads=True)
    assert_close(dict(zip(params, got, strict=True)), want)


def test_param_jacobian_create_graph() -> None:
    """Ported from test_eager_transforms.py::TestVmapOfGrad::test_per_sample_grads_simple, for
    per-sample Jacobians: default results are constants, create_graph=True keeps the graph.
    """
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(DTYPE)
    x = randn(5, 3)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def sample_out(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        return torch.func.functional_call(model, p, (xi.unsqueeze(0),))[0]

    expected = torch.func.vmap(torch.func.jacrev(sample_out), in_dims=(None, 0))(params, x)
    result = vg.param_jacobian(model, x)
    assert_close(result, expected)
    assert not any(r.requires_grad for r in result.values())

    def ntk_trace(p: dict[str, Tensor]) -> Tensor:
        jac = torch.func.vmap(torch.func.jacrev(sample_out), in_dims=(None, 0))(p, x)
        return sum(j.square().sum() for j in jac.values())

    want = torch.func.grad(ntk_trace)(params)
    graphed = vg.param_jacobian(model, x, create_graph=True)
    total = sum(j.square().sum() for j in graphed.values())
    got = torch.autograd.grad(total, list(model.parameters()), materialize_grads=True)
    assert_close(dict(zip(params, got, strict=True)), want)


def test_loss_jacobian_create_graph_and_removed_forms() -> None:
    """Ported from test_functional.py::TestAutogradFunctional::test_jacobian_create_graph for
    loss_jacobian: create_graph=True keeps the graph; the Tensor/iterable ``params`` form is
    gone (contract item 2).
    """
    w = randn(3, requires_grad=True)
    x = randn(4, 3)
    losses = (x @ w).exp()
    grads = vg.loss_jacobian(losses, {"w": w}, retain_graph=True)
    assert_close(grads["w"], (x @ w).exp().detach().unsqueeze(1) * x)
    assert not grads["w"].requires_grad
    graphed = vg.loss_jacobian(losses, {"w": w}, retain_graph=True, create_graph=True)
    assert graphed["w"].requires_grad
    (g,) = torch.autograd.grad(graphed["w"].sum(), w)
    want = torch.func.grad(lambda u: torch.func.jacrev(lambda a: (x @ a).exp())(u).sum())(
        w.detach()
    )
    assert_close(g, want)
    with pytest.raises(TypeError, match=r"^vecgrad\.loss_jacobian: `params`"):
        vg.loss_jacobian(losses, w, retain_graph=True)
    with pytest.raises(TypeError, match=r"^vecgrad\.loss_jacobian: `params`"):
        vg.loss_jacobian(losses, [w], retain_graph=True)


# ---------------------------------------------------------------------------------------------
# The composition contract: nested vecgrad calls, torch.func around vecgrad, closures.
# ---------------------------------------------------------------------------------------------


def _quartic(x: Tensor) -> Tensor:
    return (x**4).sum() + x.prod() + (x[0] * x[1] ** 2 * x[2] ** 3)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jacobian_of_jvp_is_hessian_times_v(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestJvp::test_disable_fwd_grad_inside and
    TestJac::test_nested_jac_simple, composed as the contract states: vg.jacobian of a function
    that calls vg.jvp of a gradient gives the Hessian (columns ``H e_j``).
    """
    x = randn(3)
    grad_fn = torch.func.grad(_quartic)
    eye = torch.eye(3, dtype=DTYPE)
    # The jvp of f along e_k, as a function of x, has the gradient's k-th row as its Jacobian.
    rows = [
        vg.jacobian(lambda t, k=k: vg.jvp(_quartic, t, eye[k])[1], x, strategy=strategy)
        for k in range(3)
    ]
    expected = torch.func.hessian(_quartic)(x)
    assert_close(torch.stack(rows), expected)
    assert_close(vg.jacobian(lambda t: grad_fn(t), x, strategy=strategy), expected)


def test_grad_of_hessian_trace_is_third_derivative() -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_nesting_simple and
    TestHessian (the contract's example): torch.func.grad of vg.hessian(f, x).trace().
    """
    x = randn(3)
    expected = torch.func.grad(lambda t: torch.func.hessian(_quartic)(t).trace())(x)
    result = torch.func.grad(lambda t: vg.hessian(_quartic, t).trace())(x)
    assert_close(result, expected)
    leaf = x.clone().requires_grad_()
    (autograd_result,) = torch.autograd.grad(vg.hessian(_quartic, leaf).trace(), leaf)
    assert_close(autograd_result, expected)


@pytest.mark.parametrize(
    ("name", "call"),
    [
        pytest.param("vjp", lambda f, x: vg.vjp(f, x, torch.ones(3, dtype=DTYPE))[1], id="vjp"),
        pytest.param("jvp", lambda f, x: vg.jvp(f, x, torch.ones_like(x))[1], id="jvp"),
        pytest.param("jacobian", lambda f, x: vg.jacobian(f, x), id="jacobian"),
        pytest.param(
            "hvp", lambda f, x: vg.hvp(lambda t: f(t).sum(), x, torch.ones_like(x))[1], id="hvp"
        ),
        pytest.param("hessian", lambda f, x: vg.hessian(lambda t: f(t).sum(), x), id="hessian"),
    ],
)
def test_closure_over_parameters_carries_graph(
    name: str, call: Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]
) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_composed_with_autograd with
    the dependence through a module's parameters: results of a func closing over parameters
    that require grad carry the graph to them, matching torch.func through functional_call.
    """
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh()).to(DTYPE)
    x = randn(4)
    result = call(model, x)
    assert result.requires_grad, name
    got = torch.autograd.grad(result.sum(), list(model.parameters()))
    params = {k: v.detach() for k, v in model.named_parameters()}

    def reference(p: dict[str, Tensor]) -> Tensor:
        def f(t: Tensor) -> Tensor:
            return torch.func.functional_call(model, p, (t,))

        if name == "vjp":
            return torch.func.vjp(f, x)[1](torch.ones(3, dtype=DTYPE))[0].sum()
        if name == "jvp":
            return torch.func.jvp(f, (x,), (torch.ones_like(x),))[1].sum()
        if name == "jacobian":
            return torch.func.jacrev(f)(x).sum()
        hess = torch.func.hessian(lambda t: f(t).sum())(x)
        return (hess @ torch.ones_like(x)).sum() if name == "hvp" else hess.sum()

    want = torch.func.grad(reference)(params)
    assert_close(dict(zip(params, got, strict=True)), want)


def test_vecgrad_inside_functional_call_and_grad_over_params() -> None:
    """Ported from test_eager_transforms.py::TestVmapOfGrad::test_per_sample_grads_embeddingnet
    (functional_call mechanism): torch.func.grad over parameters through vecgrad's jacobian.
    """
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)).to(DTYPE)
    x = randn(3)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def with_vg(p: dict[str, Tensor]) -> Tensor:
        return vg.jacobian(lambda t: torch.func.functional_call(model, p, (t,)), x).square().sum()

    def with_func(p: dict[str, Tensor]) -> Tensor:
        return (
            torch.func.jacrev(lambda t: torch.func.functional_call(model, p, (t,)))(x)
            .square()
            .sum()
        )

    assert_close(torch.func.grad(with_vg)(params), torch.func.grad(with_func)(params))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_dropout_drawn_once_per_call(strategy: str) -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_manual_seed_inside_grad:
    random operations are drawn once per call and shared by every row and column (contract
    item 3), so each strategy gives ``diag(2 mask)`` for the same seed.
    """
    x = randn(16)

    def f(t: Tensor) -> Tensor:
        return F.dropout(t, p=0.5, training=True)

    torch.manual_seed(1)
    reference = vg.jacobian(f, x, strategy="reverse")
    mask = reference.diagonal()
    assert_close(reference, torch.diag(mask))
    assert set(mask.tolist()) == {0.0, 2.0}
    torch.manual_seed(1)
    assert_close(vg.jacobian(f, x, strategy=strategy), reference)


def test_auto_does_not_change_the_random_state() -> None:
    """Ported from test_eager_transforms.py::TestGradTransform::test_manual_seed_inside_grad:
    'auto' learns the output's shape without advancing the generator (contract item 3).
    """
    x = randn(4)

    def f(t: Tensor) -> Tensor:
        return F.dropout(torch.cat([t, t, t]), p=0.5, training=True)

    torch.manual_seed(2)
    forward = vg.jacobian(f, x, strategy="forward")
    after_forward = torch.rand(3)
    torch.manual_seed(2)
    auto = vg.jacobian(f, x, strategy="auto")
    after_auto = torch.rand(3)
    assert_close(auto, forward)
    assert_close(after_auto, after_forward)


# ---------------------------------------------------------------------------------------------
# Layouts: non-contiguous and expanded inputs.
# ---------------------------------------------------------------------------------------------

LAYOUTS: list[Any] = [
    pytest.param(lambda: randn(4, 3).t(), id="transposed"),
    pytest.param(lambda: randn(3, 8)[:, ::2], id="strided"),
    pytest.param(lambda: randn(3, 1).expand(3, 4), id="expanded"),
    pytest.param(lambda: randn(4).expand(3, 4), id="broadcast-row"),
]


def _mix(t: Tensor) -> Tensor:
    return (t.sin() * t.sum(0, keepdim=True)).reshape(-1)[:5]


@pytest.mark.parametrize("make", LAYOUTS)
def test_non_contiguous_inputs(make: Callable[[], Tensor]) -> None:
    """Ported from test_eager_transforms.py::TestJac::test_simple_not_flat and
    TestVmapOfGrad::test_per_sample_grads_inplace_view, with non-contiguous and expanded
    inputs: results equal those at a contiguous copy, and the caller's tensor is unchanged.
    """
    x = make()
    before = x.clone()
    dense = x.contiguous()
    for strategy in STRATEGIES:
        assert_close(vg.jacobian(_mix, x, strategy=strategy), torch.func.jacrev(_mix)(dense))
    v = randn(5)
    assert_close(vg.vjp(_mix, x, v)[1], torch.func.vjp(_mix, dense)[1](v)[0])
    t = randn(*x.shape)
    assert_close(vg.jvp(_mix, x, t)[1], torch.func.jvp(_mix, (dense,), (t,))[1])
    assert_close(
        vg.hessian(lambda a: _mix(a).sum(), x), torch.func.hessian(lambda a: _mix(a).sum())(dense)
    )
    assert_close(
        vg.hvp(lambda a: _mix(a).sum(), x, t)[1],
        torch.func.hessian(lambda a: _mix(a).sum())(dense)
        .reshape(x.numel(), -1)
        .mv(t.reshape(-1))
        .reshape(x.shape),
    )
    assert_close(x, before)

"""Functions of several outputs, and ``has_aux``, in jacobian, batch_jacobian, vjp and jvp.

References are torch.func's jacrev, jacfwd, vjp and jvp in float64, whose nesting vecgrad
follows: output first, then input (``J[i][j]``).
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import DTYPE
from torch import Tensor
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

STRATEGIES = ("auto", "reverse", "forward", "loop")
CHUNKS = (None, 1, 2)
# The loop strategy takes no chunk_size (one backward pass per row already).
STRATEGY_CHUNKS = [(s, c) for s in STRATEGIES for c in CHUNKS if s != "loop" or c is None]


def two_outputs(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Three outputs of three shapes (a matrix, a scalar, a vector) of two inputs."""
    return torch.outer(a.sin(), b), (a**2).sum() * b.prod(), torch.cat([a * b[0], b.exp()])


def x_and_y() -> tuple[Tensor, Tensor]:
    return torch.randn(3, dtype=DTYPE), torch.randn(2, dtype=DTYPE)


def shapes(value: Any) -> Any:
    """The nesting of a result, with each Tensor replaced by its shape."""
    if isinstance(value, Tensor):
        return tuple(value.shape)
    return tuple(shapes(item) for item in value)


@pytest.mark.parametrize(("strategy", "chunk_size"), STRATEGY_CHUNKS)
def test_jacobian_of_several_outputs_and_inputs_matches_jacrev(
    strategy: str, chunk_size: int | None
) -> None:
    x, y = x_and_y()
    jac = vg.jacobian(two_outputs, (x, y), strategy=strategy, chunk_size=chunk_size)  # type: ignore[arg-type]
    assert_close(jac, torch.func.jacrev(two_outputs, argnums=(0, 1))(x, y))
    assert_close(jac, torch.func.jacfwd(two_outputs, argnums=(0, 1))(x, y))
    # J[i][j].shape == output i's shape + input j's shape.
    assert shapes(jac) == (((3, 2, 3), (3, 2, 2)), ((3,), (2,)), ((5, 3), (5, 2)))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jacobian_nesting_follows_jacrev_for_every_structure(strategy: str) -> None:
    """A tuple level for the outputs where func returns a tuple, and for the inputs where
    inputs is a tuple."""
    x, y = x_and_y()

    def one(a: Tensor) -> Tensor:
        return a.sin() * 2

    def pair(a: Tensor) -> tuple[Tensor, Tensor]:
        return a.sin(), a.sum().reshape(1, 1)

    assert_close(vg.jacobian(one, x, strategy=strategy), torch.func.jacrev(one)(x))
    jac = vg.jacobian(pair, x, strategy=strategy)
    assert shapes(jac) == ((3, 3), (1, 1, 3))
    assert_close(jac, torch.func.jacrev(pair)(x))
    jac = vg.jacobian(pair, (x,), strategy=strategy)
    assert shapes(jac) == (((3, 3),), ((1, 1, 3),))
    assert_close(jac, torch.func.jacrev(pair, argnums=(0,))(x))
    one_of_two = vg.jacobian(lambda a, b: (a * b.sum(),), (x, y), strategy=strategy)
    assert shapes(one_of_two) == (((3, 3), (3, 2)),)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_block_has_the_dtype_of_its_output_and_input(strategy: str) -> None:
    x, y = torch.randn(3, dtype=torch.float32), torch.randn(2, dtype=DTYPE)

    def mixed(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return a * 2, (a.sum() * b).float()

    jac = vg.jacobian(mixed, (x, y), strategy=strategy)
    assert [[block.dtype for block in row] for row in jac] == [
        [torch.float32, torch.float64],
        [torch.float32, torch.float64],
    ]
    ref = torch.func.jacrev(mixed, argnums=(0, 1))(x.double(), y)
    assert_close(jac, ref, check_dtype=False, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_outputs_without_elements_or_without_dependence_give_zero_blocks(strategy: str) -> None:
    x = torch.randn(3, dtype=DTYPE)

    def func(a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return a[:0] * 2, torch.ones(2, dtype=DTYPE), a.cos()

    jac = vg.jacobian(func, x, strategy=strategy)
    assert shapes(jac) == ((0, 3), (2, 3), (3, 3))
    assert_close(jac[1], torch.zeros(2, 3, dtype=DTYPE))
    assert_close(jac[2], torch.diag(-x.sin()))


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize("strategy", ["auto", "reverse", "forward"])
def test_batch_jacobian_of_several_outputs_matches_per_sample_jacrev(
    strategy: str, chunk_size: int | None
) -> None:
    x, y = torch.randn(4, 3, dtype=DTYPE), torch.randn(4, 2, dtype=DTYPE)

    def rows(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return a.sin() * b[..., :1], (a.sum(-1, keepdim=True) * b).unsqueeze(-2)

    jac = vg.batch_jacobian(rows, (x, y), strategy=strategy, chunk_size=chunk_size)  # type: ignore[arg-type]
    ref = torch.func.vmap(torch.func.jacrev(rows, argnums=(0, 1)))(x, y)
    # The batch is first, then output row, then input row: (N, *out_row_i, *in_row_j).
    assert shapes(jac) == (((4, 3, 3), (4, 3, 2)), ((4, 1, 2, 3), (4, 1, 2, 2)))
    assert_close(jac, ref)
    single = vg.batch_jacobian(lambda a: (a.sin(), a.sum(-1)), x, strategy=strategy)
    assert_close(single, torch.func.vmap(torch.func.jacrev(lambda a: (a.sin(), a.sum(-1))))(x))


def test_vjp_of_several_outputs_matches_torch_func() -> None:
    x, y = x_and_y()
    out, vjp_fn = torch.func.vjp(two_outputs, x, y)
    v = tuple(torch.randn_like(o) for o in out)
    got_out, got = vg.vjp(two_outputs, (x, y), v)  # type: ignore[arg-type]
    assert_close(got_out, out)
    assert_close(got, vjp_fn(v))
    single_out, single = vg.vjp(lambda a: (a.sin(), a.sum()), x, (v[2][:3], v[1]))
    assert isinstance(single, Tensor)
    assert_close(single, v[2][:3] * x.cos() + v[1])
    assert_close(single_out, (x.sin(), x.sum()))


def test_jvp_of_several_outputs_matches_torch_func() -> None:
    x, y = x_and_y()
    t = (torch.randn_like(x), torch.randn_like(y))
    got = vg.jvp(two_outputs, (x, y), t)  # type: ignore[arg-type]
    assert_close(got, torch.func.jvp(two_outputs, (x, y), t))
    assert shapes(got) == (((3, 2), (), (5,)), ((3, 2), (), (5,)))
    single = vg.jvp(lambda a: (a.sin(), a.sum()), x, t[0])
    assert_close(single, torch.func.jvp(lambda a: (a.sin(), a.sum()), (x,), (t[0],)))


Pair = namedtuple("Pair", ["value", "name"])


def aux_func(a: Tensor, b: Tensor) -> tuple[tuple[Tensor, Tensor], dict[str, Any]]:
    """Two outputs and an aux holding tensors (derived from the inputs) and other objects."""
    norm = a.norm()
    aux = {"norm": norm, "pair": Pair(b * 2, "b"), "list": [a.detach(), 3], "tag": "aux"}
    return (a / norm, (a * b.sum()).sum()), OrderedDict(aux)


def check_aux(aux: Any, a: Tensor, b: Tensor) -> None:
    assert isinstance(aux, OrderedDict)
    assert list(aux) == ["norm", "pair", "list", "tag"]
    assert_close(aux["norm"], a.norm())
    assert isinstance(aux["pair"], Pair)
    assert_close(aux["pair"].value, b * 2)
    assert aux["pair"].name == "b"
    assert isinstance(aux["list"], list)
    assert_close(aux["list"][0], a)
    assert aux["list"][1] == 3
    assert aux["tag"] == "aux"


@pytest.mark.parametrize(("strategy", "chunk_size"), STRATEGY_CHUNKS)
def test_has_aux_returns_aux_untouched_beside_the_jacobian(
    strategy: str, chunk_size: int | None
) -> None:
    x, y = x_and_y()
    jac, aux = vg.jacobian(
        aux_func,  # type: ignore[arg-type]
        (x, y),
        strategy=strategy,  # type: ignore[arg-type]
        chunk_size=chunk_size,
        has_aux=True,
    )
    check_aux(aux, x, y)
    ref, _ = torch.func.jacrev(lambda a, b: (aux_func(a, b)[0], a), argnums=(0, 1), has_aux=True)(
        x, y
    )
    assert_close(jac, ref)
    for tensor in (aux["norm"], aux["pair"].value):
        assert not tensor.requires_grad


@pytest.mark.parametrize("strategy", ["auto", "reverse", "forward"])
def test_batch_jacobian_has_aux(strategy: str) -> None:
    x = torch.randn(4, 3, dtype=DTYPE)

    def func(a: Tensor) -> tuple[Tensor, Tensor]:
        return a.tanh(), a.mean(1)

    jac, aux = vg.batch_jacobian(func, x, strategy=strategy, has_aux=True)  # type: ignore[arg-type]
    assert_close(aux, x.mean(1))
    assert_close(jac, torch.func.vmap(torch.func.jacrev(torch.tanh))(x))


def test_vjp_and_jvp_has_aux_match_torch_func() -> None:
    x, y = x_and_y()

    def func(a: Tensor, b: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        return (a * b.sum(), a.sum() * b), a.norm()

    out, vjp_fn, aux = torch.func.vjp(func, x, y, has_aux=True)
    v = tuple(torch.randn_like(o) for o in out)
    got = vg.vjp(func, (x, y), v, has_aux=True)  # type: ignore[arg-type]
    assert len(got) == 3
    assert_close(got, (out, vjp_fn(v), aux))
    t = (torch.randn_like(x), torch.randn_like(y))
    got_jvp = vg.jvp(func, (x, y), t, has_aux=True)  # type: ignore[arg-type]
    assert_close(got_jvp, torch.func.jvp(func, (x, y), t, has_aux=True))
    plain = vg.vjp(lambda a: (a.sin(), "tag"), x, x, has_aux=True)
    assert plain[2] == "tag"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_several_outputs_are_differentiable(strategy: str) -> None:
    """The blocks carry the graph: their gradients match jacrev of jacrev."""
    x = torch.randn(3, dtype=DTYPE, requires_grad=True)
    y = torch.randn(2, dtype=DTYPE)

    def func(a: Tensor) -> tuple[Tensor, Tensor]:
        return a.sin() * y.sum(), (a**3).sum() * y

    jac, aux = vg.jacobian(lambda a: (func(a), a.square()), x, strategy=strategy, has_aux=True)
    (got,) = torch.autograd.grad(jac[0].sum() + jac[1].square().sum(), x)

    def scalar(a: Tensor) -> Tensor:
        blocks = torch.func.jacrev(func)(a)
        return blocks[0].sum() + blocks[1].square().sum()

    assert_close(got, torch.func.grad(scalar)(x.detach()))
    # aux computed from x carries x's graph, as torch.func's would.
    (aux_grad,) = torch.autograd.grad(aux.sum(), x)
    assert_close(aux_grad, 2 * x.detach())


@pytest.mark.parametrize("strategy", ["auto", "reverse", "forward"])
def test_several_outputs_and_aux_under_vmap(strategy: str) -> None:
    """vecgrad inside torch.func.vmap: blocks and aux are batched like jacrev's."""
    xs = torch.randn(5, 3, dtype=DTYPE)

    def func(a: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        return (a.sin(), a.prod().reshape(1)), a.sum()

    jac, aux = torch.func.vmap(
        lambda a: vg.jacobian(func, a, strategy=strategy, has_aux=True)  # type: ignore[arg-type]
    )(xs)
    ref, ref_aux = torch.func.vmap(torch.func.jacrev(func, has_aux=True))(xs)
    assert_close(jac, ref)
    assert_close(aux, ref_aux)


def test_the_loop_detaches_aux_only_when_nothing_requires_grad() -> None:
    x = torch.randn(3, dtype=DTYPE)
    _, aux = vg.jacobian(lambda a: (a.sin(), a * 2), x, strategy="loop", has_aux=True)
    assert not aux.requires_grad
    assert_close(aux, x * 2)
    w = torch.ones(3, dtype=DTYPE, requires_grad=True)
    _, aux = vg.jacobian(lambda a: (a * w, a * w), x, strategy="loop", has_aux=True)
    assert aux.requires_grad  # it depends on w, as jacrev's aux would


@pytest.mark.parametrize("strategy", ["auto", "reverse", "forward"])
def test_random_outputs_agree_across_strategies(strategy: str) -> None:
    """Dropout draws one mask for all outputs: each strategy gives what reverse mode gives."""
    x = torch.randn(3, dtype=DTYPE)
    drop = torch.nn.Dropout(0.5)

    def func(a: Tensor) -> tuple[Tensor, Tensor]:
        d = drop(a)
        return d * 2, d.sum()

    torch.manual_seed(3)
    expected = vg.jacobian(func, x, strategy="reverse")
    torch.manual_seed(3)
    assert_close(vg.jacobian(func, x, strategy=strategy), expected)


def test_multiple_outputs_multiple_argnums() -> None:
    """Ported from test_eager_transforms.py::TestJac::test_multiple_outputs_multiple_argnums
    and test_multiple_outputs_single_argnums.
    """

    def f(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return 2 * x + 3 * y, 4 * x + 5 * y

    x, y = torch.randn(3, dtype=DTYPE), torch.randn(3, dtype=DTYPE)
    eye = torch.eye(3, dtype=DTYPE)
    expected = ((2 * eye, 3 * eye), (4 * eye, 5 * eye))
    for strategy in STRATEGIES:
        assert_close(vg.jacobian(f, (x, y), strategy=strategy), expected)  # type: ignore[arg-type]
        assert_close(vg.jacobian(lambda a: f(a, y), x, strategy=strategy), (2 * eye, 4 * eye))


def call_with(func: Callable[..., Any]) -> list[Callable[[], object]]:
    """The four functions called on ``func`` at one point."""
    x = torch.randn(4, 3, dtype=DTYPE)
    return [
        lambda: vg.jacobian(func, x, has_aux=True),
        lambda: vg.batch_jacobian(func, x, has_aux=True),
        lambda: vg.vjp(func, x, x, has_aux=True),
        lambda: vg.jvp(func, x, x, has_aux=True),
    ]


@pytest.mark.parametrize(
    ("func", "match"),
    [
        (lambda a: a, r"got Tensor\."),
        (lambda a: (a, a, a), r"got a tuple of length 3\."),
        (lambda a: [a, a], r"got list\."),
    ],
    ids=["tensor", "triple", "list"],
)
def test_has_aux_needs_a_pair(func: Callable[..., Any], match: str) -> None:
    for name, call in zip(
        ("jacobian", "batch_jacobian", "vjp", "jvp"), call_with(func), strict=True
    ):
        with pytest.raises(
            TypeError,
            match=rf"^vecgrad\.{name}: `func` must return a pair \(output, aux\) with "
            rf"has_aux=True; {match}",
        ):
            call()


@pytest.mark.parametrize("has_aux", [1, "yes", None])
def test_has_aux_must_be_a_bool(has_aux: object) -> None:
    x = torch.randn(3, dtype=DTYPE)
    with pytest.raises(
        TypeError,
        match=rf"^vecgrad\.jacobian: `has_aux` must be a bool; got {type(has_aux).__name__}\.",
    ):
        vg.jacobian(torch.sin, x, has_aux=has_aux)  # type: ignore[call-overload]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_output_is_checked_and_named(strategy: str) -> None:
    x = torch.randn(3, dtype=DTYPE)
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.jacobian: `func` must return a real floating-point Tensor \(.*\); "
        r"got dtype torch\.int64 \(output \[1\]\)\.",
    ):
        vg.jacobian(lambda a: (a, a.long()), x, strategy=strategy)
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.jacobian: `func` must return a Tensor; got float \(output \[0\]\)",
    ):
        vg.jacobian(lambda a: (1.0, a), x, strategy=strategy)
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.jacobian: `func` must return a Tensor or a non-empty tuple of Tensors; "
        r"got \(\)\.",
    ):
        vg.jacobian(lambda a: (), x, strategy=strategy)


def test_batch_jacobian_checks_every_output_for_the_batch() -> None:
    x = torch.randn(4, 3, dtype=DTYPE)
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.batch_jacobian: `func` must return a Tensor whose first dimension is the "
        r"batch size N = 4; got shape \(3,\) \(output \[1\]\)\.",
    ):
        vg.batch_jacobian(lambda a: (a, a.sum(0)), x)


def test_vjp_cotangents_must_be_shaped_like_the_outputs() -> None:
    x = torch.randn(3, dtype=DTYPE)

    def pair(a: Tensor) -> tuple[Tensor, Tensor]:
        return a * 2, a.sum()

    one = torch.tensor(1.0, dtype=DTYPE)
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.vjp: `v` must be a tuple of 2 Tensors, like `func\(inputs\)`; "
        r"got Tensor\.",
    ):
        vg.vjp(pair, x, x)  # type: ignore[call-overload]
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.vjp: `v` must have one Tensor per element of `func\(inputs\)` \(2\); "
        r"got 3\.",
    ):
        vg.vjp(pair, x, (x, one, one))
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.vjp: `v\[1\]` must have the shape of `func\(inputs\)\[1\]`, \(\); "
        r"got \(3,\)\.",
    ):
        vg.vjp(pair, x, (x, x))
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.vjp: `v\[1\]` must have dtype torch\.float64 like `func\(inputs\)\[1\]`; "
        r"got torch\.float32\.",
    ):
        vg.vjp(pair, x, (x, one.float()))
    with pytest.raises(
        TypeError, match=r"^vecgrad\.vjp: `v` must be a Tensor, like `func\(inputs\)`; got tuple\."
    ):
        vg.vjp(torch.sin, x, (x,))  # type: ignore[call-overload]

"""Property-based tests: random shapes and random compositions of differentiable operations."""

from __future__ import annotations

from collections.abc import Callable

import torch
from conftest import DTYPE
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

import vecgrad as vg

Op = Callable[[torch.Tensor], torch.Tensor]
MAX_NUMEL = 32


ELEMENTWISE: dict[str, Op] = {
    "sin": torch.sin,
    "tanh": torch.tanh,
    "exp": lambda x: torch.exp(0.3 * x),
    "square": lambda x: x * x,
    "softplus": torch.nn.functional.softplus,
    "cumsum": lambda x: torch.cumsum(x, dim=-1),
    "flip": lambda x: torch.flip(x, dims=(-1,)),
}


@st.composite
def shapes(draw: st.DrawFn, min_dims: int = 1, max_numel: int = MAX_NUMEL) -> tuple[int, ...]:
    """``min_dims`` to 5 dimensions of sizes 1 to 4, with at most ``max_numel`` elements."""
    ndim = draw(st.integers(min_dims, 5))
    shape: list[int] = []
    for _ in range(ndim):
        room = max_numel // torch.Size(shape).numel()
        shape.append(draw(st.integers(1, max(1, min(4, room)))))
    return tuple(shape)


@st.composite
def compositions(draw: st.DrawFn, last: int) -> Op:
    """A chain of 1 to 4 operations on inputs whose last dimension has size ``last``.

    Every operation acts along the last dimension only; matmul multiplies it by a random
    (k, last) matrix, changing its size to k.
    """
    names = draw(st.lists(st.sampled_from([*ELEMENTWISE, "matmul"]), min_size=1, max_size=4))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    ops: list[Op] = []
    for name in names:
        if name == "matmul":
            k = draw(st.integers(1, 4))
            matrix = torch.randn(k, last, generator=g, dtype=DTYPE) / last**0.5
            ops.append(lambda x, m=matrix: x @ m.T)
            last = k
        else:
            ops.append(ELEMENTWISE[name])

    def func(x: torch.Tensor) -> torch.Tensor:
        for op in ops:
            x = op(x)
        return x

    return func


def random_tensor(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


SEEDS = st.integers(0, 2**16)
Problem = tuple[Op, torch.Tensor]


@st.composite
def problems(draw: st.DrawFn, min_dims: int = 1) -> Problem:
    """A random composition and a random point of a random shape it acts on."""
    shape = draw(shapes(min_dims))
    return draw(compositions(shape[-1])), random_tensor(shape, draw(SEEDS))


@given(problem=problems())
def test_every_strategy_matches_jacrev(problem: Problem) -> None:
    func, x = problem
    reference = torch.func.jacrev(func)(x)
    for strategy in ("auto", "reverse", "forward", "loop"):
        assert_close(vg.jacobian(func, x, strategy=strategy), reference)
    for strategy in ("reverse", "forward"):
        assert_close(vg.jacobian(func, x, strategy=strategy, chunk_size=3), reference)


@given(problem=problems(), seed=SEEDS)
def test_vjp_and_jvp_are_products_with_the_jacobian(problem: Problem, seed: int) -> None:
    func, x = problem
    jac = vg.jacobian(func, x)
    assert isinstance(jac, torch.Tensor)
    out = func(x)
    v = random_tensor(out.shape, seed)
    u = random_tensor(x.shape, seed + 1)
    value, vj = vg.vjp(func, x, v)
    assert_close(value, out)
    assert_close(vj, torch.tensordot(v, jac, dims=out.dim()))
    value, ju = vg.jvp(func, x, u)
    assert_close(value, out)
    assert_close(ju, torch.tensordot(jac, u, dims=x.dim()))


@given(problem=problems())
def test_numerical_jacobian_agrees(problem: Problem) -> None:
    func, x = problem
    assert_close(vg.numerical_jacobian(func, x), vg.jacobian(func, x), rtol=1e-6, atol=1e-7)


@given(problem=problems(min_dims=2))
def test_batch_jacobian_matches_per_sample_jacobians(problem: Problem) -> None:
    # Every operation acts along the last dimension, so rows of dimension 0 do not interact.
    func, x = problem
    expected = torch.stack([torch.func.jacrev(func)(row) for row in x])
    for strategy in ("auto", "reverse", "forward"):
        assert_close(vg.batch_jacobian(func, x, strategy=strategy), expected)
    assert_close(vg.batch_jacobian(func, x, strategy="reverse", chunk_size=2), expected)


@given(in_shapes=st.lists(shapes(max_numel=12), min_size=1, max_size=3), data=st.data(), seed=SEEDS)
def test_tuple_inputs_agree_across_strategies(
    in_shapes: list[tuple[int, ...]], data: st.DataObject, seed: int
) -> None:
    # f(x_1, ..., x_k) = g(concatenation of the flattened inputs)
    xs = tuple(random_tensor(s, seed + i) for i, s in enumerate(in_shapes))
    g = data.draw(compositions(sum(x.numel() for x in xs)))

    def func(*args: torch.Tensor) -> torch.Tensor:
        return g(torch.cat([a.reshape(-1) for a in args]))

    reference = torch.func.jacrev(func, argnums=tuple(range(len(xs))))(*xs)
    for strategy in ("auto", "reverse", "forward", "loop"):
        assert_close(vg.jacobian(func, xs, strategy=strategy), reference)
    assert_close(vg.jacobian(func, xs, strategy="forward", chunk_size=5), reference)

"""Sparse Hessians: star colourings of symmetric patterns, and Hessians against dense ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch
from conftest import DTYPE
from hypothesis import given
from hypothesis import strategies as st
from test_sparse import (
    LAYOUTS,
    REFUSED_FUNC,
    arrow,
    as_layout,
    banded,
    block_diagonal,
    point,
    random_per_row,
    stencil,
)
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

Func = Callable[[torch.Tensor], torch.Tensor]


@st.composite
def symmetric_patterns(draw: st.DrawFn) -> torch.Tensor:
    """Banded, block-diagonal, random, arrow, empty and dense symmetric patterns."""
    kind = draw(st.sampled_from(["banded", "blocks", "random", "arrow", "empty", "dense"]))
    n = draw(st.integers(1, 12))
    if kind == "banded":
        width = draw(st.integers(0, 3))
        pattern = banded(n, n, width, width)
    elif kind == "blocks":
        pattern = block_diagonal(n, n, draw(st.integers(1, 4)))
    elif kind == "random":
        pattern = random_per_row(n, n, draw(st.integers(1, n)), draw(st.integers(0, 2**16)))
        pattern = pattern | pattern.T
    elif kind == "arrow":
        pattern = arrow(n)
    else:
        pattern = torch.full((n, n), kind == "dense")
    if draw(st.booleans()):  # some of the diagonal left out
        keep = torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.5
        pattern = pattern & ~torch.diag(keep)
    return pattern


def assert_star(coloring: vg.JacobianColoring, pattern: torch.Tensor) -> None:
    """The definition: distance-1, and no path on four vertices takes only two colours."""
    n = pattern.shape[0]
    assert coloring.mode == "symmetric"
    assert coloring.output_shape == coloring.input_shape == pattern.shape[:1]
    colors = coloring.colors
    assert colors.dtype == torch.long
    used = pattern.any(dim=0)
    assert bool((colors[~used] == -1).all())
    assert bool(((colors[used] >= 0) & (colors[used] < coloring.num_colors)).all())
    edges = pattern & ~torch.eye(n, dtype=torch.bool)
    assert not bool((edges & (colors[:, None] == colors[None, :])).any())
    # paths[a, b, c, d]: a - b - c - d is a path on four distinct vertices.
    distinct = torch.ones(n, n, dtype=torch.bool).fill_diagonal_(False)
    paths = (
        edges[:, :, None, None]
        & edges[None, :, :, None]
        & edges[None, None, :, :]
        & distinct[:, None, :, None]
        & distinct[None, :, None, :]
        & distinct[:, None, None, :]
    )
    same = colors[:, None] == colors[None, :]
    two_colours = same[:, None, :, None] & same[None, :, None, :]  # c(a) = c(c), c(b) = c(d)
    assert not bool((paths & two_colours).any())
    assert 0 <= coloring.lower_bound <= coloring.num_colors
    if not bool(pattern.any()):
        assert coloring.num_colors == coloring.lower_bound == 0


def hessian_function(pattern: torch.Tensor, seed: int) -> Func:
    """A scalar function whose Hessian's nonzeros are the pattern's.

    An edge ``(i, j)`` adds ``w sin(x_i + b x_j + c)`` when both diagonal entries are in the
    pattern, else ``w x_i x_j``, which leaves them zero; a diagonal entry adds ``w sin(b x_i)``.
    """
    g = torch.Generator().manual_seed(seed)
    n = pattern.shape[0]
    w, b, c = (torch.rand(n, n, generator=g, dtype=DTYPE) + 0.5 for _ in range(3))
    diagonal = pattern.diagonal()
    upper = pattern.triu(1)
    smooth = upper & diagonal[:, None] & diagonal[None, :]
    bilinear = upper & ~smooth
    wd, bd = w.diagonal(), b.diagonal()

    def f(x: torch.Tensor) -> torch.Tensor:
        pairs = torch.sin(x[:, None] + b * x[None, :] + c)
        return (
            (w * smooth * pairs).sum()
            + (w * bilinear * x[:, None] * x[None, :]).sum()
            + (wd * diagonal * torch.sin(bd * x)).sum()
        )

    return f


# -- Colourings ---------------------------------------------------------------------------------


@given(pattern=symmetric_patterns(), layout=st.sampled_from(LAYOUTS))
def test_star_colorings_of_symmetric_patterns_are_valid(pattern: torch.Tensor, layout: str) -> None:
    coloring = vg.color_jacobian(as_layout(pattern, layout), strategy="symmetric")
    forward = vg.color_jacobian(pattern, strategy="forward")
    assert coloring.num_colors <= forward.num_colors  # the fewer of the two is kept
    if coloring.mode == "forward":  # fewer colours than the star colouring, which it is not
        assert torch.equal(coloring.colors, forward.colors)
        assert not bool(pattern.diagonal()[pattern.any(dim=0)].all())
    else:
        assert_star(coloring, pattern)


@pytest.mark.parametrize(
    ("pattern", "star", "column"),
    [
        (arrow(40), 2, 40),
        (banded(40, 40, 1, 1), 3, 3),
        (block_diagonal(40, 40, 4), 4, 4),
        (stencil(30, 37, 5), 5, 5),
        (torch.ones(7, 7, dtype=torch.bool), 7, 7),
        (torch.eye(9, dtype=torch.bool), 1, 1),
    ],
    ids=["arrow", "tridiagonal", "block-diagonal", "5-point", "dense", "diagonal"],
)
def test_colour_counts(pattern: torch.Tensor, star: int, column: int) -> None:
    coloring = vg.color_jacobian(pattern, strategy="symmetric")
    if pattern.shape[0] <= 40:
        assert_star(coloring, pattern)
    assert coloring.num_colors == star
    assert vg.color_jacobian(pattern, strategy="forward").num_colors == column


@pytest.mark.parametrize(
    ("pattern", "bound"),
    [
        (arrow(40), 2),  # 39 edges on 40 vertices: (k - 1)(40 - k / 2) >= 39 from k = 2
        (torch.ones(7, 7, dtype=torch.bool), 7),  # 21 edges on 7 vertices: 6 * 3.5 = 21
        (torch.eye(5, dtype=torch.bool), 1),
        (torch.zeros(5, 5, dtype=torch.bool), 0),
        (stencil(30, 37, 5), 3),  # 2157 edges on 1110 vertices: 2 * 1108.5 >= 2157 > 1109.5
    ],
    ids=["arrow", "dense", "diagonal", "empty", "5-point"],
)
def test_lower_bound_counts_edges(pattern: torch.Tensor, bound: int) -> None:
    assert vg.color_jacobian(pattern, strategy="symmetric").lower_bound == bound


def test_without_the_diagonal_a_column_colouring_with_fewer_colours_is_kept() -> None:
    # x0 x1 + x2 x3 + ...: no diagonal entry, no two columns share a row, so one colour serves
    # every column, where a star colouring (distance-1) needs two.
    pairs = torch.arange(8).reshape(4, 2)
    pattern = torch.zeros(8, 8, dtype=torch.bool)
    pattern[pairs[:, 0], pairs[:, 1]] = pattern[pairs[:, 1], pairs[:, 0]] = True
    coloring = vg.color_jacobian(pattern, strategy="symmetric")
    assert (coloring.mode, coloring.num_colors, coloring.lower_bound) == ("forward", 1, 1)

    weights = torch.randn(4, dtype=DTYPE)

    def func(t: torch.Tensor) -> torch.Tensor:  # bilinear: a nonlinear g(x0 x1) has H_00 != 0
        return (weights * t[0::2] * t[1::2]).sum()

    x = torch.randn(8, dtype=DTYPE)
    hess = vg.sparse_hessian(func, x, sparsity=coloring).to_dense()
    assert_close(hess, torch.func.hessian(func)(x))
    assert torch.equal(hess != 0, pattern)


def test_multi_dimensional_patterns_use_input_ndim() -> None:
    pattern = banded(6, 6, 1, 1).reshape(2, 3, 2, 3)
    coloring = vg.color_jacobian(pattern, strategy="symmetric", input_ndim=2)
    assert coloring.colors.shape == (2, 3)
    assert coloring.num_colors == 3


# -- sparse_hessian against dense Hessians -------------------------------------------------------


@given(
    pattern=symmetric_patterns(),
    layout=st.sampled_from(LAYOUTS),
    chunk_size=st.sampled_from([None, 1, 2]),
    seed=st.integers(0, 2**16),
)
def test_matches_the_dense_hessian(
    pattern: torch.Tensor, layout: str, chunk_size: int | None, seed: int
) -> None:
    func, x = hessian_function(pattern, seed), point(pattern.shape[0], seed)
    hess = vg.sparse_hessian(func, x, sparsity=as_layout(pattern, layout), chunk_size=chunk_size)
    assert hess.layout == torch.sparse_coo
    assert hess.is_coalesced()
    assert hess.dtype == DTYPE
    assert torch.equal(hess.indices(), pattern.nonzero().T)
    dense = torch.func.hessian(func)(x)
    assert torch.equal(dense != 0, pattern)  # the function has exactly this pattern
    assert_close(hess.to_dense(), dense)
    assert_close(hess.to_dense(), vg.hessian(func, x))


@pytest.mark.parametrize("strategy", ["symmetric", "forward", "reverse", "auto"])
def test_a_coloring_is_reused_at_other_points(strategy: str) -> None:
    pattern = arrow(9) | banded(9, 9, 1, 1)
    func = hessian_function(pattern, 3)
    coloring = vg.color_jacobian(pattern, strategy=strategy)
    for seed in range(3):
        x = point(9, seed)
        for chunk_size in (None, 1, 3):
            hess = vg.sparse_hessian(func, x, sparsity=coloring, chunk_size=chunk_size)
            assert_close(hess.to_dense(), torch.func.hessian(func)(x))


def test_multi_dimensional_and_zero_dimensional_inputs() -> None:
    pattern = (banded(6, 6, 1, 1) | arrow(6)).reshape(2, 3, 2, 3)
    func = hessian_function(pattern.reshape(6, 6), 4)

    def f(x: torch.Tensor) -> torch.Tensor:
        return func(x.reshape(6))

    x = point(6, 5).reshape(2, 3)
    hess = vg.sparse_hessian(f, x, sparsity=pattern)
    assert hess.shape == (2, 3, 2, 3)
    assert_close(hess.to_dense(), vg.hessian(f, x))
    scalar = torch.tensor(0.3, dtype=DTYPE)
    hess = vg.sparse_hessian(torch.sin, scalar, sparsity=torch.tensor(True))
    assert_close(hess.to_dense(), -torch.sin(scalar))


def test_an_empty_pattern_gives_zeros_and_still_checks_func() -> None:
    x = point(4, 0)
    empty = torch.zeros(4, 4, dtype=torch.bool)
    hess = vg.sparse_hessian(lambda t: (t**3).sum(), x, sparsity=empty)
    assert hess.values().numel() == 0
    assert hess.dtype == DTYPE
    with pytest.raises(ValueError, match=r"^vecgrad\.sparse_hessian: `func` must return a one-"):
        vg.sparse_hessian(torch.sin, x, sparsity=empty)


def test_dtype_is_the_inputs_like_hessian() -> None:
    x = point(4, 1)

    def f(t: torch.Tensor) -> torch.Tensor:  # a float32 output of a float64 input
        return (t**3).sum().float()

    hess = vg.sparse_hessian(f, x, sparsity=torch.eye(4, dtype=torch.bool))
    assert hess.dtype == vg.hessian(f, x).dtype == torch.float64
    assert_close(hess.to_dense(), vg.hessian(f, x))


def test_a_valid_coloring_made_by_hand_is_accepted() -> None:
    pattern = arrow(5)
    made = vg.color_jacobian(pattern, strategy="symmetric")
    swapped = dataclasses.replace(made, colors=1 - made.colors)
    func, x = hessian_function(pattern, 6), point(5, 7)
    assert_close(vg.sparse_hessian(func, x, sparsity=swapped).to_dense(), vg.hessian(func, x))


# -- Differentiability -------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 1])
def test_differentiable_with_respect_to_inputs_like_torch_func(chunk_size: int | None) -> None:
    pattern = arrow(7) | banded(7, 7, 1, 1)
    func, x = hessian_function(pattern, 8), point(7, 9).requires_grad_(True)
    weights = torch.randn(7, 7, dtype=DTYPE)
    hess = vg.sparse_hessian(func, x, sparsity=pattern, chunk_size=chunk_size)
    assert hess.requires_grad
    (grad,) = torch.autograd.grad((hess.to_dense() * weights).sum(), x)
    expected = torch.func.grad(lambda t: (torch.func.hessian(func)(t) * weights).sum())(x)
    assert_close(grad, expected)


def test_differentiable_with_respect_to_closed_over_tensors() -> None:
    # A chain: the tridiagonal pattern holds for every value of a.
    a = torch.randn(5, dtype=DTYPE).requires_grad_(True)
    x = point(6, 10)

    def energy(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (a * torch.cos(t[1:] - t[:-1])).sum() + (t**4).sum()

    pattern = banded(6, 6, 1, 1)
    hess = vg.sparse_hessian(lambda t: energy(a, t), x, sparsity=pattern)
    (grad,) = torch.autograd.grad(hess.values().square().sum(), a)
    expected = torch.func.grad(
        lambda a: torch.func.hessian(lambda t: energy(a, t))(x)[pattern].square().sum()
    )(a.detach())
    assert_close(grad, expected)


def test_no_graph_under_no_grad_or_when_nothing_requires_grad() -> None:
    x = point(5, 0)
    eye = torch.eye(5, dtype=torch.bool)
    hess = vg.sparse_hessian(lambda t: t.sin().sum(), x, sparsity=eye)
    assert not hess.requires_grad
    with torch.no_grad():
        hess = vg.sparse_hessian(lambda t: t.sin().sum(), x.requires_grad_(True), sparsity=eye)
    assert not hess.requires_grad
    assert_close(hess.to_dense(), torch.diag(-x.detach().sin()))


# -- Inside torch.func transforms ----------------------------------------------------------------

REFUSED_INPUTS = r"`inputs` must not be transformed by torch\.func .* use vecgrad\.hessian"


@pytest.mark.parametrize(
    "transform",
    [torch.func.vmap, torch.func.grad, torch.func.jacrev, torch.func.jacfwd],
    ids=["vmap", "grad", "jacrev", "jacfwd"],
)
def test_refused_inside_transforms(transform: Callable[..., Func]) -> None:
    eye = torch.eye(3, dtype=torch.bool)

    def inner(t: torch.Tensor) -> torch.Tensor:
        return vg.sparse_hessian(lambda s: s.sin().sum(), t, sparsity=eye).values().sum()

    x = point(3, 0)
    with pytest.raises(ValueError, match=rf"^vecgrad\.sparse_hessian: {REFUSED_INPUTS}"):
        transform(inner)(x if transform is not torch.func.vmap else x.expand(2, 3))


def test_refused_when_func_closes_over_transformed_tensors() -> None:
    x, eye = point(3, 0), torch.eye(3, dtype=torch.bool)

    def inner(scale: torch.Tensor) -> torch.Tensor:
        return vg.sparse_hessian(lambda t: (scale * t.sin()).sum(), x, sparsity=eye).values()

    match = rf"^vecgrad\.sparse_hessian: {REFUSED_FUNC}.* use vecgrad\.hessian"
    with pytest.raises(ValueError, match=match):
        torch.func.vmap(inner)(torch.ones(2, dtype=DTYPE))


# -- Errors --------------------------------------------------------------------------------------

X = point(3, 0)
EYE = torch.eye(3, dtype=torch.bool)
LOWER = torch.ones(3, 3, dtype=torch.bool).tril()


def cube(t: torch.Tensor) -> torch.Tensor:
    return (t**3).sum()


ERRORS: list[tuple[Callable[[], object], type[Exception], str]] = [
    (
        lambda: vg.color_jacobian(torch.ones(2, 3, dtype=torch.bool), strategy="symmetric"),
        ValueError,
        r"^vecgrad\.color_jacobian: `sparsity` must be square for strategy='symmetric', its "
        r"last input_ndim dimensions repeating the others as in a Hessian's pattern; got shape "
        r"\(2, 3\), read as output \(2,\) and input \(3,\) \(the last input_ndim dimensions\)\.$",
    ),
    (
        lambda: vg.color_jacobian(LOWER, strategy="symmetric"),
        ValueError,
        r"^vecgrad\.color_jacobian: `sparsity` must be symmetric, as a Hessian's pattern is: "
        r"True at \(j, i\) wherever True at \(i, j\); got True at \(1, 0\) "
        r"but not at \(0, 1\)\. Pass `pattern \| pattern\.mT` for a 2-D pattern\.$",
    ),
    (
        lambda: vg.color_jacobian(EYE, strategy="star"),
        ValueError,
        r"^vecgrad\.color_jacobian: `strategy` must be one of 'auto', 'forward', 'reverse', "
        r"'symmetric'; got 'star'\.$",
    ),
    (
        lambda: vg.sparse_jacobian(
            torch.sin, X, sparsity=vg.color_jacobian(EYE, strategy="symmetric")
        ),
        ValueError,
        r"^vecgrad\.sparse_jacobian: `sparsity` must be a colouring of mode 'forward' or "
        r"'reverse'; got a 'symmetric' one, whose products give the entries of a symmetric "
        r"matrix only\. Pass it to vecgrad\.sparse_hessian",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=EYE, strategy="symmetric"),  # type: ignore[arg-type]
        ValueError,
        r"^vecgrad\.sparse_jacobian: `strategy` must be one of 'auto', 'forward', 'reverse'; "
        r"got 'symmetric'\.$",
    ),
    (
        lambda: vg.sparse_hessian(cube, (X, X), sparsity=EYE),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.sparse_hessian: `inputs` must be one Tensor; got a tuple of 2\.",
    ),
    (
        lambda: vg.sparse_hessian(3, X, sparsity=EYE),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.sparse_hessian: `func` must be callable; got int\.$",
    ),
    (
        lambda: vg.sparse_hessian(cube, X, sparsity=None),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.sparse_hessian: `sparsity` must be a bool Tensor or a JacobianColoring; "
        r"got NoneType\.$",
    ),
    (
        lambda: vg.sparse_hessian(cube, X, sparsity=EYE.double()),
        TypeError,
        r"^vecgrad\.sparse_hessian: `sparsity` must have dtype torch\.bool",
    ),
    (
        lambda: vg.sparse_hessian(cube, X, sparsity=EYE[:2]),
        ValueError,
        r"^vecgrad\.sparse_hessian: `sparsity` must have shape inputs\.shape \+ inputs\.shape "
        r"= \(3, 3\); got \(2, 3\)\.$",
    ),
    (
        lambda: vg.sparse_hessian(cube, X, sparsity=LOWER),
        ValueError,
        r"^vecgrad\.sparse_hessian: `sparsity` must be symmetric, as a Hessian's pattern is",
    ),
    (
        lambda: vg.sparse_hessian(cube, X[:2], sparsity=vg.color_jacobian(EYE)),
        ValueError,
        r"^vecgrad\.sparse_hessian: `sparsity` must be a colouring of a pattern of shape "
        r"inputs\.shape \+ inputs\.shape = \(2, 2\); got one of shape \(3, 3\)\.$",
    ),
    (
        lambda: vg.sparse_hessian(
            cube, X, sparsity=vg.color_jacobian(torch.ones(2, 3, dtype=torch.bool))
        ),
        ValueError,
        r"`sparsity` must be a colouring of a pattern of shape inputs\.shape \+ inputs\.shape "
        r"= \(3, 3\); got one of shape \(2, 3\)\.$",
    ),
    (
        lambda: vg.sparse_hessian(
            cube,
            X,
            sparsity=dataclasses.replace(
                vg.color_jacobian(LOWER | LOWER.T, strategy="symmetric"),
                colors=torch.tensor([0, 1, 1]),
            ),
        ),
        ValueError,
        r"JacobianColoring built or changed otherwise, whose colours are not a valid colouring of "
        r"its "
        r"pattern\.$",
    ),
    (
        lambda: vg.sparse_hessian(
            cube,
            X,
            sparsity=dataclasses.replace(
                vg.color_jacobian(EYE, strategy="symmetric"), sparsity=LOWER.to_sparse()
            ),
        ),
        ValueError,
        r"JacobianColoring built or changed otherwise, whose pattern is not symmetric\.$",
    ),
    (
        lambda: vg.sparse_hessian(
            cube,
            X,
            sparsity=dataclasses.replace(
                vg.color_jacobian(EYE, strategy="symmetric"),
                output_shape=torch.Size([1, 3]),
            ),
        ),
        ValueError,
        r"JacobianColoring built or changed otherwise, whose mode, shapes, pattern or colours have "
        r"the wrong type or shape\.$",
    ),
    (
        lambda: vg.sparse_hessian(torch.sin, X, sparsity=EYE),
        ValueError,
        r"^vecgrad\.sparse_hessian: `func` must return a one-element Tensor \(a scalar\); got "
        r"shape \(3,\)\.$",
    ),
    (
        lambda: vg.sparse_hessian(cube, X, sparsity=EYE, chunk_size=0),
        ValueError,
        r"^vecgrad\.sparse_hessian: `chunk_size` must be None or a positive int; got 0\.$",
    ),
    (
        lambda: vg.sparse_hessian(cube, X, sparsity=EYE, chunk_size=1.0),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.sparse_hessian: `chunk_size` must be None or a positive int; got float\.$",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), ERRORS)
def test_errors(call: Callable[[], object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        call()
    assert type(info.value) is error

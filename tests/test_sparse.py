"""Sparse Jacobians: colourings, compressed products against dense Jacobians, probed patterns."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from conftest import DTYPE
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

import vecgrad as vg
from vecgrad import sparse as sparse_module

pytestmark = pytest.mark.usefixtures("seeded")

Func = Callable[[torch.Tensor], torch.Tensor]
MODES = ("forward", "reverse")
STRATEGIES = ("auto", "forward", "reverse")
LAYOUTS = ("strided", "coo", "csr")


# -- Patterns (dense bool matrices, small enough to check densely) ------------------------------


def banded(m: int, n: int, lower: int, upper: int) -> torch.Tensor:
    offset = torch.arange(n)[None, :] - torch.arange(m)[:, None]
    return (offset >= -lower) & (offset <= upper)


def block_diagonal(m: int, n: int, block: int) -> torch.Tensor:
    return (torch.arange(m)[:, None] // block) == (torch.arange(n)[None, :] // block)


def random_per_row(m: int, n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pattern = torch.zeros(m, n, dtype=torch.bool)
    for i in range(m):
        pattern[i, torch.randperm(n, generator=g)[:k]] = True
    return pattern


def arrow(n: int) -> torch.Tensor:
    pattern = torch.eye(n, dtype=torch.bool)
    pattern[0] = pattern[:, 0] = True
    return pattern


def stencil(width: int, height: int, points: int) -> torch.Tensor:
    """The Jacobian pattern of a 5- or 9-point stencil on a grid flattened row by row."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    y, x = y.reshape(-1), x.reshape(-1)
    dy, dx = (y[None, :] - y[:, None]).abs(), (x[None, :] - x[:, None]).abs()
    return (dx + dy <= 1) if points == 5 else ((dx <= 1) & (dy <= 1))


def as_layout(pattern: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "coo":
        return pattern.to_sparse()
    if layout == "csr":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            return pattern.to_sparse_csr()
    return pattern


def masked_function(pattern: torch.Tensor, seed: int) -> Func:
    """f(x)_i = sum_j W_ij sin(B_ij x_j + C_ij): its Jacobian's nonzeros are the pattern's."""
    g = torch.Generator().manual_seed(seed)
    m, n = pattern.shape
    w = (torch.rand(m, n, generator=g, dtype=DTYPE) + 0.5) * pattern
    b = torch.rand(m, n, generator=g, dtype=DTYPE) + 0.5
    c = torch.rand(m, n, generator=g, dtype=DTYPE)
    return lambda x: (w * torch.sin(b * x + c)).sum(-1)


def point(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def assert_valid(coloring: vg.JacobianColoring, pattern: torch.Tensor) -> None:
    """No row (column) holds two columns (rows) of one colour; empty ones have colour -1."""
    dense = pattern.reshape(coloring.sparsity.shape).reshape(
        coloring.output_shape.numel(), coloring.input_shape.numel()
    )
    if coloring.mode == "reverse":
        dense = dense.T
    colors = coloring.colors.reshape(-1)
    assert colors.dtype == torch.long
    assert colors.numel() == dense.shape[1]
    used = dense.any(dim=0)
    assert bool((colors[~used] == -1).all())
    assert bool(((colors[used] >= 0) & (colors[used] < coloring.num_colors)).all())
    one_hot = torch.zeros(dense.shape[1], coloring.num_colors + 1, dtype=DTYPE)
    one_hot[torch.arange(dense.shape[1]), colors] = 1  # column -1: the empty ones
    per_group = dense.to(DTYPE) @ one_hot[:, :-1]
    assert bool((per_group <= 1).all())
    assert coloring.lower_bound == int(dense.sum(dim=1).max()) if dense.numel() else 0


# -- Colourings ---------------------------------------------------------------------------------

NEAR_OPTIMAL = {
    "tridiagonal": banded(60, 60, 1, 1),
    "pentadiagonal-rectangular": banded(40, 70, 2, 2),
    "5-point-30x37": stencil(30, 37, 5),
    "5-point-210x6": stencil(210, 6, 5),  # the width is a multiple of 5, 6 and 7
    "9-point-30x37": stencil(30, 37, 9),
    "9-point-36x20": stencil(36, 20, 9),
    "block-diagonal": block_diagonal(96, 96, 6),
    "block-diagonal-rectangular": block_diagonal(45, 60, 5),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NEAR_OPTIMAL)
def test_structured_colorings_are_valid_and_near_the_lower_bound(name: str, mode: str) -> None:
    pattern = NEAR_OPTIMAL[name]
    coloring = vg.color_jacobian(pattern.to_sparse(), strategy=mode)
    assert coloring.mode == mode
    assert_valid(coloring, pattern)
    assert coloring.num_colors <= 1.5 * coloring.lower_bound


@pytest.mark.parametrize(
    ("name", "bound"),
    [("tridiagonal", 3), ("5-point-30x37", 5), ("9-point-30x37", 9), ("block-diagonal", 6)],
)
def test_stencils_bands_and_blocks_reach_the_lower_bound(name: str, bound: int) -> None:
    coloring = vg.color_jacobian(NEAR_OPTIMAL[name], strategy="forward")
    assert (coloring.num_colors, coloring.lower_bound) == (bound, bound)


IRREGULAR = {
    "random-4-per-row": random_per_row(80, 120, 4, seed=1),
    "random-9-per-row-tall": random_per_row(150, 40, 9, seed=2),
    "arrow": arrow(30),
    "dense": torch.ones(7, 11, dtype=torch.bool),
    "empty": torch.zeros(6, 4, dtype=torch.bool),
    "one-empty-column": block_diagonal(8, 9, 4),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", IRREGULAR)
def test_irregular_colorings_are_valid(name: str, mode: str) -> None:
    pattern = IRREGULAR[name]
    coloring = vg.color_jacobian(pattern, strategy=mode)
    assert_valid(coloring, pattern)
    assert coloring.num_colors >= coloring.lower_bound


def test_a_dense_row_or_column_needs_as_many_colours_as_it_has_entries() -> None:
    coloring = vg.color_jacobian(arrow(30), strategy="forward")
    assert (coloring.num_colors, coloring.lower_bound) == (30, 30)
    assert vg.color_jacobian(IRREGULAR["empty"]).num_colors == 0


def test_coloring_is_deterministic() -> None:
    pattern = random_per_row(200, 300, 5, seed=3)
    first = vg.color_jacobian(pattern, strategy="forward")
    state = torch.get_rng_state()
    second = vg.color_jacobian(pattern.to_sparse(), strategy="forward")
    assert torch.equal(torch.get_rng_state(), state)  # the tie-breaking seed is its own
    assert torch.equal(first.colors, second.colors)


def test_auto_keeps_the_mode_with_fewer_colours_and_breaks_ties_like_jacobian() -> None:
    # A dense row: forward mode needs a colour per column, reverse mode two colours.
    wide = arrow(20)[:5]
    assert vg.color_jacobian(wide).mode == "reverse"
    assert vg.color_jacobian(wide.T.contiguous()).mode == "forward"
    # Ties: reverse when m <= n, forward when m > n, as vg.jacobian's 'auto'.
    assert vg.color_jacobian(torch.eye(4, dtype=torch.bool)).mode == "reverse"
    tall = block_diagonal(6, 4, 2)  # two colours either way; its last two rows are empty
    both = (vg.color_jacobian(tall, strategy=s).num_colors for s in MODES)
    assert len(set(both)) == 1
    assert vg.color_jacobian(tall).mode == "forward"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_gives_the_same_coloring(layout: str) -> None:
    pattern = stencil(9, 7, 9)
    expected = vg.color_jacobian(pattern, strategy="reverse")
    coloring = vg.color_jacobian(as_layout(pattern, layout), strategy="reverse")
    assert torch.equal(coloring.colors, expected.colors)
    assert torch.equal(coloring.sparsity.indices(), pattern.nonzero().T)
    assert coloring.sparsity.is_coalesced()


def test_stored_false_entries_and_repeated_indices_are_read_as_a_pattern() -> None:
    indices = torch.tensor([[0, 2, 1, 0, 2], [1, 0, 2, 1, 2]])
    values = torch.tensor([True, True, False, True, False])
    # Not coalesced: (0, 1) is there twice.
    coo = torch.sparse_coo_tensor(indices, values, (3, 3), check_invariants=True)
    pattern = torch.zeros(3, 3, dtype=torch.bool)
    pattern[0, 1] = pattern[2, 0] = True
    coloring = vg.color_jacobian(coo)
    assert torch.equal(coloring.sparsity.to_dense(), pattern)
    assert_valid(coloring, pattern)


def test_csr_with_unsorted_columns() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        csr = torch.sparse_csr_tensor(
            torch.tensor([0, 2, 3]),
            torch.tensor([2, 0, 1]),
            torch.tensor([True, True, True]),
            (2, 3),
            check_invariants=False,
        )
    expected = torch.tensor([[True, False, True], [False, True, False]])
    assert torch.equal(vg.color_jacobian(csr).sparsity.to_dense(), expected)


def test_input_ndim_splits_the_pattern() -> None:
    pattern = torch.rand(2, 3, 4, 5) < 0.3
    coloring = vg.color_jacobian(pattern.to_sparse(), input_ndim=2, strategy="forward")
    assert (coloring.output_shape, coloring.input_shape) == ((2, 3), (4, 5))
    assert coloring.colors.shape == (4, 5)
    assert_valid(coloring, pattern)
    assert vg.color_jacobian(pattern, input_ndim=0).input_shape == ()


def sparse_stencil(width: int, height: int) -> torch.Tensor:
    """The 5-point stencil's pattern as a coalesced COO tensor, built from indices."""
    n = width * height
    j = torch.arange(n)
    x = j % width
    steps = [(0, 0), (-1, x > 0), (1, x < width - 1), (-width, j >= width), (width, j < n - width)]
    rows = torch.cat([j if isinstance(ok, int) else j[ok] for _, ok in steps])
    cols = torch.cat([j + d if isinstance(ok, int) else (j + d)[ok] for d, ok in steps])
    return coo_pattern(rows, cols, n, n)


def coo_pattern(rows: torch.Tensor, cols: torch.Tensor, m: int, n: int) -> torch.Tensor:
    """The m x n pattern with the entries (rows, cols) (distinct), a coalesced COO tensor."""
    values = torch.ones_like(rows).bool()
    indices = torch.stack([rows, cols])
    return torch.sparse_coo_tensor(indices, values, (m, n), check_invariants=True).coalesce()


def assert_valid_sparse(coloring: vg.JacobianColoring) -> None:
    """assert_valid for a pattern too large to make dense: no (group, colour) pair twice, every
    colour up to num_colors used, and the lower bound the size of the fullest group."""
    rows, cols = coloring.sparsity.indices()
    groups, members = (rows, cols) if coloring.mode == "forward" else (cols, rows)
    colors = coloring.colors.reshape(-1)[members]
    assert bool((colors >= 0).all())
    assert int(colors.max()) + 1 == coloring.num_colors
    pairs = groups * coloring.num_colors + colors
    assert torch.unique(pairs).numel() == pairs.numel()
    assert coloring.lower_bound == int(torch.bincount(groups).max())


def test_a_large_sparse_pattern_is_never_made_dense() -> None:
    # Dense, this pattern would take 4e10 bytes.
    coloring = vg.color_jacobian(sparse_stencil(400, 500), strategy="forward")
    assert (coloring.num_colors, coloring.lower_bound) == (5, 5)
    assert_valid_sparse(coloring)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_entry_that_breaks_a_large_stencil_is_coloured_validly(mode: str, where: str) -> None:
    # The stencil's modular colouring fits every group but the one given an entry 5 places away
    # (same colour): the first, one in the middle or the last, so that it is found on the whole
    # pattern and not only where candidates are sampled.
    pattern = sparse_stencil(300, 250)
    n = pattern.shape[0]
    i = {"first": 0, "middle": n // 2 + 7, "last": n - 1}[where]
    j = i + 5 if i + 5 < n else i - 5
    extra = torch.tensor([[i], [j]] if mode == "forward" else [[j], [i]])
    indices = torch.cat([pattern.indices(), extra], dim=1)
    values = torch.ones(indices.shape[1], dtype=torch.bool)
    broken = torch.sparse_coo_tensor(indices, values, pattern.shape, check_invariants=True)
    broken = broken.coalesce()
    coloring = vg.color_jacobian(broken, strategy=mode)
    assert_valid_sparse(coloring)
    assert coloring.num_colors <= 1.5 * coloring.lower_bound


@pytest.mark.parametrize("mode", MODES)
def test_a_stencil_with_one_extra_entry_matches_the_dense_jacobian(mode: str) -> None:
    pattern = stencil(13, 11, 5)
    # Points 40 and 45 lie on one row of the grid, 5 apart: the stencil's colouring
    # (x + 2 y) mod 5 gives them one colour, and the row and column of this entry refuse it.
    pattern[40, 45] = True
    coloring = vg.color_jacobian(pattern.to_sparse(), strategy=mode)
    assert_valid(coloring, pattern)
    assert coloring.num_colors <= 1.5 * coloring.lower_bound
    func, x = masked_function(pattern, 19), point(pattern.shape[1], 20)
    assert_close(vg.sparse_jacobian(func, x, sparsity=coloring).to_dense(), vg.jacobian(func, x))


@pytest.mark.parametrize("keep_seeds", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_a_reused_coloring_serves_other_dtypes_and_chunk_sizes(
    mode: str, keep_seeds: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a colouring derives for its products is kept per device and dtype; seeds too large
    # to keep are made a chunk at a time.
    if not keep_seeds:
        monkeypatch.setattr(sparse_module, "_PLAN_SEEDS", 0)
    pattern = stencil(7, 6, 9)
    func = masked_function(pattern, seed=21)
    coloring = vg.color_jacobian(pattern, strategy=mode)
    x = point(42, 22)
    expected = vg.jacobian(func, x)
    for dtype in (DTYPE, torch.float32, DTYPE):
        in_dtype = functools.partial(lambda t, d: func(t.to(DTYPE)).to(d), d=dtype)
        for chunk_size in (None, 2, coloring.num_colors, None):
            jac = vg.sparse_jacobian(
                in_dtype, x.to(dtype), sparsity=coloring, chunk_size=chunk_size
            )
            assert jac.dtype == dtype
            tolerance = {} if dtype == DTYPE else {"atol": 1e-5, "rtol": 1e-5}
            assert_close(jac.to_dense(), expected.to(dtype), **tolerance)


# -- sparse_jacobian against vg.jacobian ---------------------------------------------------------


@st.composite
def patterns(draw: st.DrawFn) -> torch.Tensor:
    """Banded, block-diagonal, random k-per-row, arrow, empty and dense patterns."""
    kind = draw(st.sampled_from(["banded", "blocks", "random", "arrow", "empty", "dense"]))
    m, n = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if kind == "banded":
        return banded(m, n, draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    if kind == "blocks":
        return block_diagonal(m, n, draw(st.integers(1, 4)))
    if kind == "random":
        return random_per_row(m, n, draw(st.integers(1, n)), draw(st.integers(0, 2**16)))
    if kind == "arrow":
        return arrow(n)
    return torch.full((m, n), kind == "dense")


@given(
    pattern=patterns(),
    layout=st.sampled_from(LAYOUTS),
    strategy=st.sampled_from(STRATEGIES),
    chunk_size=st.sampled_from([None, 1, 2]),
    seed=st.integers(0, 2**16),
)
def test_matches_the_dense_jacobian(
    pattern: torch.Tensor, layout: str, strategy: str, chunk_size: int | None, seed: int
) -> None:
    func, x = masked_function(pattern, seed), point(pattern.shape[1], seed)
    jac = vg.sparse_jacobian(
        func, x, sparsity=as_layout(pattern, layout), strategy=strategy, chunk_size=chunk_size
    )
    assert jac.layout == torch.sparse_coo
    assert jac.is_coalesced()
    assert jac.dtype == DTYPE
    assert torch.equal(jac.indices(), pattern.nonzero().T)
    assert_close(jac.to_dense(), vg.jacobian(func, x))


@given(pattern=patterns())
def test_colorings_of_random_patterns_are_valid(pattern: torch.Tensor) -> None:
    for strategy in STRATEGIES:
        assert_valid(vg.color_jacobian(pattern, strategy=strategy), pattern)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_multi_dimensional_shapes(strategy: str) -> None:
    # Output (2, 2) from input (2, 3): the pattern has shape (2, 2, 2, 3).
    flat = random_per_row(4, 6, 2, seed=4)
    g = masked_function(flat, seed=5)

    def func(x: torch.Tensor) -> torch.Tensor:
        return g(x.reshape(-1)).reshape(2, 2)

    x = point(6, seed=6).reshape(2, 3)
    pattern = flat.reshape(2, 2, 2, 3)
    for sparsity in (pattern, pattern.to_sparse()):
        jac = vg.sparse_jacobian(func, x, sparsity=sparsity, strategy=strategy)
        assert jac.shape == (2, 2, 2, 3)
        assert_close(jac.to_dense(), vg.jacobian(func, x))


def test_zero_dimensional_input_and_output() -> None:
    x = torch.tensor(0.5, dtype=DTYPE)
    jac = vg.sparse_jacobian(torch.sin, x, sparsity=torch.tensor(True))
    assert jac.shape == ()
    assert_close(jac.to_dense(), torch.cos(x))
    vector = vg.sparse_jacobian(torch.sum, point(3, 0), sparsity=torch.ones(3, dtype=torch.bool))
    assert_close(vector.to_dense(), torch.ones(3, dtype=DTYPE))


def test_an_empty_pattern_gives_an_empty_jacobian_of_the_promoted_dtype() -> None:
    x = point(4, 0).float()
    jac = vg.sparse_jacobian(
        lambda t: t[:3].double() * 0, x, sparsity=torch.zeros(3, 4, dtype=torch.bool)
    )
    assert (jac.shape, jac.dtype, jac._nnz()) == ((3, 4), torch.float64, 0)


@pytest.mark.parametrize("mode", MODES)
def test_dtype_is_promoted_like_jacobian(mode: str) -> None:
    x = point(5, 0).float()
    pattern = banded(5, 5, 1, 0)
    func = masked_function(pattern, 1)
    jac = vg.sparse_jacobian(lambda t: func(t.double()), x, sparsity=pattern, strategy=mode)
    dense = vg.jacobian(lambda t: func(t.double()), x)
    assert jac.dtype == dense.dtype == torch.float64
    assert_close(jac.to_dense(), dense)


@pytest.mark.parametrize("mode", MODES)
def test_a_coloring_is_reused_at_other_points(mode: str) -> None:
    pattern = stencil(6, 5, 5)
    func = masked_function(pattern, seed=7)
    coloring = vg.color_jacobian(pattern, strategy=mode)
    for seed in (8, 9):
        x = point(30, seed)
        jac = vg.sparse_jacobian(func, x, sparsity=coloring)
        assert_close(jac.to_dense(), vg.jacobian(func, x))
        same = vg.sparse_jacobian(func, x, sparsity=pattern, strategy=mode)
        assert torch.equal(jac.values(), same.values())


def test_strategies_agree() -> None:
    pattern = random_per_row(15, 10, 3, seed=10)
    func, x = masked_function(pattern, 11), point(10, 12)
    results = [vg.sparse_jacobian(func, x, sparsity=pattern, strategy=s) for s in STRATEGIES]
    for jac in results[1:]:
        assert torch.equal(jac.indices(), results[0].indices())
        assert_close(jac.values(), results[0].values())


def test_a_valid_coloring_made_by_hand_is_accepted() -> None:
    pattern = banded(6, 6, 1, 1)
    made = vg.color_jacobian(pattern, strategy="forward")
    by_hand = dataclasses.replace(made, colors=torch.tensor([2, 0, 1, 2, 0, 1]))
    func, x = masked_function(pattern, 13), point(6, 14)
    assert_close(vg.sparse_jacobian(func, x, sparsity=by_hand).to_dense(), vg.jacobian(func, x))


def test_a_coloring_made_by_hand_may_hold_inference_tensors() -> None:
    pattern = banded(6, 6, 1, 1)
    with torch.inference_mode():
        colors = torch.tensor([2, 0, 1, 2, 0, 1])
    by_hand = dataclasses.replace(vg.color_jacobian(pattern, strategy="forward"), colors=colors)
    func, x = masked_function(pattern, 13), point(6, 14)
    assert_close(vg.sparse_jacobian(func, x, sparsity=by_hand).to_dense(), vg.jacobian(func, x))


def test_result_shares_no_memory_with_the_coloring() -> None:
    coloring = vg.color_jacobian(banded(4, 4, 1, 1))
    jac = vg.sparse_jacobian(torch.sin, point(4, 0), sparsity=coloring)
    indices = coloring.sparsity.indices()
    assert jac.indices().data_ptr() != indices.data_ptr()


def test_random_operations_draw_once_for_all_colours() -> None:
    # Every product sees the same draw, as one evaluation does, so the entries belong together.
    x = point(6, 0)

    def func(t: torch.Tensor) -> torch.Tensor:
        return t * torch.rand(6, dtype=DTYPE)

    torch.manual_seed(1)
    expected = torch.rand(6, dtype=DTYPE)
    for mode in MODES:
        torch.manual_seed(1)
        jac = vg.sparse_jacobian(func, x, sparsity=torch.eye(6, dtype=torch.bool), strategy=mode)
        assert_close(jac.to_dense(), torch.diag(expected))


# -- Differentiability -------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 1])
@pytest.mark.parametrize("mode", MODES)
def test_differentiable_with_respect_to_inputs_like_torch_func(
    mode: str, chunk_size: int | None
) -> None:
    pattern = random_per_row(7, 9, 3, seed=15)
    func, x = masked_function(pattern, 16), point(9, 17)
    weights = torch.randn(7, 9, dtype=DTYPE)
    coloring = vg.color_jacobian(pattern, strategy=mode)
    x = x.requires_grad_(True)
    jac = vg.sparse_jacobian(func, x, sparsity=coloring, chunk_size=chunk_size)
    assert jac.requires_grad
    (grad,) = torch.autograd.grad((jac.to_dense() * weights).sum(), x)
    expected = torch.func.grad(lambda t: (torch.func.jacrev(func)(t) * weights).sum())(x)
    assert_close(grad, expected)


@pytest.mark.parametrize("mode", MODES)
def test_differentiable_with_respect_to_closed_over_tensors(mode: str) -> None:
    # The pattern (lower bidiagonal) holds for every value of the parameters a and b.
    a, b = (torch.randn(8, dtype=DTYPE).requires_grad_(True) for _ in range(2))
    x = point(8, 18)

    def model(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a * t + b * F.pad(t[:-1], (1, 0)))

    pattern = banded(8, 8, 1, 0)
    jac = vg.sparse_jacobian(lambda t: model(a, b, t), x, sparsity=pattern, strategy=mode)
    grads = torch.autograd.grad(jac.values().square().sum(), (a, b))
    expected = torch.func.grad(
        lambda a, b: torch.func.jacfwd(lambda t: model(a, b, t))(x)[pattern].square().sum(),
        argnums=(0, 1),
    )(a.detach(), b.detach())
    assert_close(grads, expected)


@pytest.mark.parametrize("mode", MODES)
def test_differentiable_with_respect_to_tensors_computed_from_parameters(mode: str) -> None:
    # The closed-over scale is not a leaf: the graph reaches the parameter through it.
    log_scale = torch.randn(6, dtype=DTYPE).requires_grad_(True)
    scale, x = log_scale.exp(), point(6, 19)
    jac = vg.sparse_jacobian(
        lambda t: torch.sin(scale * t), x, sparsity=torch.eye(6, dtype=torch.bool), strategy=mode
    )
    (grad,) = torch.autograd.grad(jac.values().sum(), log_scale)
    # d/dl of e^l cos(e^l x) is e^l cos(e^l x) - e^(2l) x sin(e^l x)
    s = log_scale.detach().exp()
    assert_close(grad, s * torch.cos(s * x) - s**2 * x * torch.sin(s * x))


@pytest.mark.parametrize("mode", MODES)
def test_no_graph_when_nothing_requires_grad(mode: str) -> None:
    weight = torch.randn(6, dtype=DTYPE)  # closed over, does not require grad
    jac = vg.sparse_jacobian(
        lambda t: weight * t.sin(),
        point(6, 0),
        sparsity=torch.eye(6, dtype=torch.bool),
        strategy=mode,
    )
    assert not jac.requires_grad
    assert jac.values().grad_fn is None


@pytest.mark.parametrize("mode", MODES)
def test_runs_inside_a_transform_that_does_not_reach_func(mode: str) -> None:
    # Under vmap over another tensor the products go through torch.func, with the same values.
    x, eye = point(4, 20), torch.eye(4, dtype=torch.bool)

    def scaled(s: torch.Tensor) -> torch.Tensor:
        return s * vg.sparse_jacobian(torch.sin, x, sparsity=eye, strategy=mode).values()

    assert_close(torch.func.vmap(scaled)(torch.arange(3.0, dtype=DTYPE))[2], 2 * torch.cos(x))


def test_reverse_mode_in_inference_mode_and_with_inference_tensors() -> None:
    # enable_grad records no graph in inference mode: the products go through torch.func.
    func, x = (lambda t: t.sin() * t.roll(1)), point(6, 21)
    full, expected = torch.ones(6, 6, dtype=torch.bool), torch.func.jacrev(func)(x)
    with torch.inference_mode():
        jac = vg.sparse_jacobian(func, x, sparsity=full, strategy="reverse")
        frozen = x.clone()
    assert_close(jac.to_dense(), expected)
    jac = vg.sparse_jacobian(func, frozen, sparsity=full, strategy="reverse")
    assert_close(jac.to_dense(), expected)


@pytest.mark.parametrize("mode", MODES)
def test_hooks_on_inputs_do_not_run(mode: str) -> None:
    x = point(4, 22).requires_grad_(True)
    seen = []
    x.register_hook(seen.append)  # a hook on the caller's input: run by the caller's grad only
    eye = torch.eye(4, dtype=torch.bool)
    jac = vg.sparse_jacobian(lambda t: t**2, x, sparsity=eye, strategy=mode)
    assert seen == []
    assert_close(jac.values(), 2 * x.detach())
    (grad,) = torch.autograd.grad(jac.values().sum(), x)  # the graph still reaches x
    assert len(seen) == 1
    assert_close(grad, torch.full_like(x, 2.0))


@pytest.mark.parametrize("chunk_size", [None, 1])
def test_func_that_ignores_its_input_gives_zeros_with_several_colours(
    chunk_size: int | None,
) -> None:
    weight = torch.randn(6, dtype=DTYPE, requires_grad=True)  # the output requires grad
    jac = vg.sparse_jacobian(
        lambda t: weight[:3] * 2,
        point(6, 23),
        sparsity=torch.ones(3, 6, dtype=torch.bool),
        strategy="reverse",
        chunk_size=chunk_size,
    )
    assert torch.equal(jac.to_dense(), torch.zeros(3, 6, dtype=DTYPE))


def test_no_graph_under_no_grad() -> None:
    x = point(5, 0).requires_grad_(True)
    with torch.no_grad():
        jac = vg.sparse_jacobian(torch.sin, x, sparsity=torch.eye(5, dtype=torch.bool))
    assert not jac.requires_grad


# -- Inside torch.func transforms ----------------------------------------------------------------

REFUSED_INPUTS = r"`inputs` must not be transformed by torch\.func .*got inputs under a transform"
REFUSED_FUNC = r"`func` must not be transformed by torch\.func .*tensors it closes over"
# What each function's refusal says of calling it outside the transform, and of the alternative.
OUTSIDE = {
    "sparse_jacobian": r"\(its results carry the autograd graph\), or use vecgrad\.jacobian, "
    r"which gives a dense Jacobian inside one\.$",
    "jacobian_sparsity": r"\(a pattern is a constant, found once for every point\), or use "
    r"vecgrad\.jacobian, whose entries != 0 give a pattern inside one\.$",
}


@pytest.mark.parametrize(
    "transform",
    [torch.func.vmap, torch.func.grad, torch.func.jacrev, torch.func.jacfwd],
    ids=["vmap", "grad", "jacrev", "jacfwd"],
)
@pytest.mark.parametrize("name", ["sparse_jacobian", "jacobian_sparsity"])
def test_refused_inside_transforms(transform: Callable[..., Func], name: str) -> None:
    eye = torch.eye(3, dtype=torch.bool)

    def inner(t: torch.Tensor) -> torch.Tensor:
        if name == "sparse_jacobian":
            return vg.sparse_jacobian(torch.sin, t, sparsity=eye).values().sum()
        return vg.jacobian_sparsity(torch.sin, t).values().sum().to(t.dtype)

    x = point(3, 0)
    with pytest.raises(ValueError, match=rf"^vecgrad\.{name}: {REFUSED_INPUTS}.*{OUTSIDE[name]}"):
        transform(inner)(x if transform is not torch.func.vmap else x.expand(2, 3))


@pytest.mark.parametrize("name", ["sparse_jacobian", "jacobian_sparsity"])
def test_refused_when_func_closes_over_transformed_tensors(name: str) -> None:
    x = point(3, 0)
    eye = torch.eye(3, dtype=torch.bool)

    def inner(scale: torch.Tensor) -> torch.Tensor:
        if name == "sparse_jacobian":
            return vg.sparse_jacobian(lambda t: scale * t, x, sparsity=eye).values()
        return vg.jacobian_sparsity(lambda t: scale * t, x).values().to(x.dtype)

    with pytest.raises(ValueError, match=rf"^vecgrad\.{name}: {REFUSED_FUNC}.*{OUTSIDE[name]}"):
        torch.func.vmap(inner)(torch.ones(2, dtype=DTYPE))


BATCHED_PATTERN = (
    r"`sparsity` must be a plain Tensor, fixed for the whole call; got a Tensor batched or "
    r"differentiated by a torch\.func transform\. Close over the pattern instead\.$"
)


@pytest.mark.parametrize("name", ["color_jacobian", "sparse_jacobian", "sparse_hessian"])
def test_a_pattern_batched_by_vmap_is_refused(name: str) -> None:
    x = point(3, 0)

    def inner(pattern: torch.Tensor) -> torch.Tensor:
        if name == "color_jacobian":
            return vg.color_jacobian(pattern).colors
        if name == "sparse_hessian":
            return vg.sparse_hessian(lambda t: (t**3).sum(), x, sparsity=pattern).values()
        return vg.sparse_jacobian(torch.sin, x, sparsity=pattern).values()

    patterns = torch.eye(3, dtype=torch.bool).expand(2, 3, 3)
    with pytest.raises(ValueError, match=rf"^vecgrad\.{name}: {BATCHED_PATTERN}"):
        torch.func.vmap(inner)(patterns)


def test_a_coloring_changed_in_place_is_checked_again() -> None:
    pattern = banded(6, 6, 1, 1)
    coloring = vg.color_jacobian(pattern, strategy="forward")
    func, x = masked_function(pattern, 15), point(6, 16)
    vg.sparse_jacobian(func, x, sparsity=coloring)  # its plan for float64 is kept
    # Another valid colouring: the products are made from the new colours.
    coloring.colors.copy_(coloring.colors.flip(0))
    for t in (x, x.float()):
        jac = vg.sparse_jacobian(func, t, sparsity=coloring)
        assert_close(jac.to_dense(), vg.jacobian(func, t))
    coloring.colors.zero_()  # one colour for neighbours: refused, whatever dtype had a plan
    for t in (x, x.float()):
        with pytest.raises(ValueError, match=r"built or changed otherwise, whose colours are not"):
            vg.sparse_jacobian(func, t, sparsity=coloring)
    coloring.colors.copy_(torch.arange(6) % 3)
    vg.sparse_jacobian(func, x, sparsity=coloring)  # valid again
    # A pattern changed in place is checked too: row 0 now holds columns 0 and 3, one colour.
    assert coloring.sparsity.indices()[:, 1].tolist() == [0, 1]
    coloring.sparsity.indices()[1, 1] = 3
    with pytest.raises(ValueError, match=r"built or changed otherwise, whose colours are not"):
        vg.sparse_jacobian(func, x, sparsity=coloring)


# -- jacobian_sparsity -------------------------------------------------------------------------


@given(pattern=patterns(), chunk_size=st.sampled_from([None, 1, 3]), seed=st.integers(0, 2**16))
def test_probing_finds_the_pattern(
    pattern: torch.Tensor, chunk_size: int | None, seed: int
) -> None:
    func, x = masked_function(pattern, seed), point(pattern.shape[1], seed)
    found = vg.jacobian_sparsity(func, x, chunk_size=chunk_size)
    assert found.layout == torch.sparse_coo
    assert found.dtype == torch.bool
    assert found.is_coalesced()
    assert not found.requires_grad
    assert torch.equal(found.to_dense(), pattern)


@pytest.mark.parametrize("shape", [(3,), (40,)], ids=["reverse", "forward"])
def test_probing_sees_entries_that_vanish_at_the_point(shape: tuple[int, ...]) -> None:
    # d(x^2)/dx is zero at x = 0; nearby points see it. More outputs than inputs: forward mode.
    x = torch.zeros(3, dtype=DTYPE)

    def func(t: torch.Tensor) -> torch.Tensor:
        return (t**2).repeat(shape[0] // 3 + 1)[: shape[0]]

    found = vg.jacobian_sparsity(func, x)
    assert torch.equal(found.to_dense(), vg.jacobian(func, x + 1) != 0)
    assert vg.jacobian_sparsity(func, x, num_points=1)._nnz() == 0


def test_probing_misses_entries_that_are_zero_at_every_point() -> None:
    # The documented failure mode: relu(x - 10) is flat near 0, so its column looks empty.
    x = torch.zeros(2, dtype=DTYPE)

    def func(t: torch.Tensor) -> torch.Tensor:
        return torch.stack([t[0], torch.relu(t[1] - 10)])

    found = vg.jacobian_sparsity(func, x, num_points=5)
    assert torch.equal(found.to_dense(), torch.tensor([[True, False], [False, False]]))


def test_probing_is_deterministic_and_leaves_the_global_random_state() -> None:
    pattern = random_per_row(9, 7, 2, seed=19)
    func, x = masked_function(pattern, 20), point(7, 21)
    state = torch.get_rng_state()
    first = vg.jacobian_sparsity(func, x, num_points=4)
    assert torch.equal(torch.get_rng_state(), state)
    second = vg.jacobian_sparsity(func, x, num_points=4)
    assert torch.equal(first.indices(), second.indices())


def test_probed_pattern_feeds_sparse_jacobian_with_multi_dimensional_shapes() -> None:
    x = point(6, 22).reshape(2, 3)

    def func(t: torch.Tensor) -> torch.Tensor:
        return torch.sin(t).cumsum(dim=1).T

    pattern = vg.jacobian_sparsity(func, x, chunk_size=2)
    assert pattern.shape == (3, 2, 2, 3)
    jac = vg.sparse_jacobian(func, x, sparsity=pattern)
    assert_close(jac.to_dense(), vg.jacobian(func, x))


# -- Errors ------------------------------------------------------------------------------------

X = point(3, 0)
EYE = torch.eye(3, dtype=torch.bool)


def csr3d() -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.ones(2, 3, 3, dtype=torch.bool).to_sparse_csr()


def hybrid() -> torch.Tensor:
    return torch.ones(3, 3, dtype=torch.bool).to_sparse(sparse_dim=1)


ERRORS: list[tuple[Callable[[], object], type[Exception], str]] = [
    (
        lambda: vg.color_jacobian([[True]]),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.color_jacobian: `sparsity` must be a bool Tensor; got list\.$",
    ),
    (
        lambda: vg.color_jacobian(EYE.to_sparse_csc()),
        TypeError,
        r"`sparsity` must be a strided, sparse COO or sparse CSR Tensor; got layout "
        r"torch\.sparse_csc\. Convert it with \.to_sparse\(\)\.$",
    ),
    (
        lambda: vg.color_jacobian(EYE.float()),
        TypeError,
        r"`sparsity` must have dtype torch\.bool, True where the derivative may be nonzero; got "
        r"torch\.float32\. Pass `pattern != 0`\.$",
    ),
    (
        lambda: vg.color_jacobian(torch.ones(3, 3, dtype=torch.bool, device="meta")),
        ValueError,
        r"`sparsity` must hold values; got a Tensor on the meta device\.$",
    ),
    (
        lambda: vg.color_jacobian(hybrid()),
        ValueError,
        r"`sparsity` must have sparse dimensions only; got a hybrid sparse Tensor with "
        r"dense_dim\(\) = 1\.$",
    ),
    (
        lambda: vg.color_jacobian(csr3d()),
        ValueError,
        r"`sparsity` must be 2-D when sparse CSR; got 3 dimensions\.",
    ),
    (
        lambda: vg.color_jacobian(EYE, input_ndim=True),
        TypeError,
        r"`input_ndim` must be an int from 0 to sparsity\.dim\(\) = 2; got bool\.$",
    ),
    (
        lambda: vg.color_jacobian(EYE, input_ndim=-1),
        ValueError,
        r"`input_ndim` must be an int from 0 to sparsity\.dim\(\) = 2; got -1\.$",
    ),
    (
        lambda: vg.color_jacobian(EYE, strategy="loop"),
        ValueError,
        r"^vecgrad\.color_jacobian: `strategy` must be one of 'auto', 'forward', 'reverse', "
        r"'symmetric'; "
        r"got 'loop'\.$",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, (X, X), sparsity=EYE),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.sparse_jacobian: `inputs` must be one Tensor; got a tuple of 2\. "
        r"Concatenate them, e\.g\. torch\.cat",
    ),
    (
        lambda: vg.jacobian_sparsity(torch.sin, [X]),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.jacobian_sparsity: `inputs` must be one Tensor; got a list of 1\.",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=X),
        TypeError,
        r"`sparsity` must have dtype torch\.bool",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=None),  # type: ignore[arg-type]
        TypeError,
        r"`sparsity` must be a bool Tensor or a JacobianColoring; got NoneType\.$",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=torch.eye(4, dtype=torch.bool)),
        ValueError,
        r"`sparsity` must have shape func\(inputs\)\.shape \+ inputs\.shape, ending in \(3,\); "
        r"got \(4, 4\)\.$",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=EYE[:2], strategy="forward"),
        ValueError,
        r"`sparsity` must have shape func\(inputs\)\.shape \+ inputs\.shape = \(3, 3\); got "
        r"\(2, 3\)\.$",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=EYE[:2], strategy="reverse"),
        ValueError,
        r"`sparsity` must have shape func\(inputs\)\.shape \+ inputs\.shape = \(3, 3\); got "
        r"\(2, 3\)\.$",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=torch.zeros(2, 3, dtype=torch.bool)),
        ValueError,
        r"`sparsity` must have shape func\(inputs\)\.shape \+ inputs\.shape = \(3, 3\); got "
        r"\(2, 3\)\.$",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X[:2], sparsity=vg.color_jacobian(EYE)),
        ValueError,
        r"`sparsity` must be a colouring for inputs of shape \(2,\); got one for shape "
        r"\(3,\)\.$",
    ),
    (
        lambda: vg.sparse_jacobian(
            torch.sin, X, sparsity=vg.color_jacobian(EYE, strategy="reverse"), strategy="forward"
        ),
        ValueError,
        r"`strategy` must be 'auto' or the colouring's mode 'reverse' when `sparsity` is a "
        r"colouring; got 'forward'\.$",
    ),
    (
        lambda: vg.sparse_jacobian(
            torch.sin,
            X,
            sparsity=dataclasses.replace(vg.color_jacobian(EYE), colors=torch.zeros(2).long()),
        ),
        ValueError,
        r"`sparsity` must be a colouring made by vecgrad\.color_jacobian and left unchanged; "
        r"got a JacobianColoring built or changed otherwise, whose mode, shapes, pattern or "
        r"colours have the wrong type or shape\.$",
    ),
    *[
        (
            lambda shape=shape: vg.sparse_jacobian(
                torch.sin, X, sparsity=dataclasses.replace(vg.color_jacobian(EYE), **shape)
            ),
            ValueError,
            r"`sparsity` must be a colouring made by vecgrad\.color_jacobian and left "
            r"unchanged; got a JacobianColoring built or changed otherwise, whose mode, shapes, "
            r"pattern or colours have the wrong type or shape\.$",
        )
        for shape in (
            {"output_shape": None},
            {"output_shape": "ab"},
            {"input_shape": 3},
            {"input_shape": (3.0,)},
        )
    ],
    (
        lambda: vg.sparse_jacobian(
            torch.sin,
            X,
            sparsity=dataclasses.replace(
                vg.color_jacobian(torch.ones(3, 3, dtype=torch.bool), strategy="forward"),
                colors=torch.tensor([0, 1, 1]),
            ),
        ),
        ValueError,
        r"JacobianColoring built or changed otherwise, whose colours are not a valid colouring of "
        r"its "
        r"pattern\.$",
    ),
    (
        lambda: vg.sparse_jacobian(torch.sin, X, sparsity=EYE, chunk_size=0),
        ValueError,
        r"^vecgrad\.sparse_jacobian: `chunk_size` must be None or a positive int; got 0\.$",
    ),
    (
        lambda: vg.jacobian_sparsity(torch.sin, X, num_points=1.0),  # type: ignore[arg-type]
        TypeError,
        r"^vecgrad\.jacobian_sparsity: `num_points` must be a positive int; got float\.$",
    ),
    (
        lambda: vg.jacobian_sparsity(torch.sin, X, num_points=0),
        ValueError,
        r"^vecgrad\.jacobian_sparsity: `num_points` must be a positive int; got 0\.$",
    ),
    (
        lambda: vg.jacobian_sparsity(lambda t: t.long(), X),
        TypeError,
        r"^vecgrad\.jacobian_sparsity: `func` must return a real floating-point Tensor",
    ),
]


# torch warns once per process that CSC support is in beta, in whichever test first makes one.
@pytest.mark.filterwarnings("ignore:Sparse CSC tensor support is in beta:UserWarning")
@pytest.mark.parametrize(("call", "error", "match"), ERRORS)
def test_errors(call: Callable[[], object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        call()
    assert type(info.value) is error
    assert str(info.value).startswith("vecgrad.")

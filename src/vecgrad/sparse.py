r"""Sparse Jacobians: colour a sparsity pattern once, then compress the products at every point.

When most entries of a Jacobian are known to be zero, columns that share no row can be found
together: one Jacobian-vector product with the sum of their one-hot directions gives each of
their nonzeros, as no two of them land in one row. A colouring of the columns (or, in reverse
mode, of the rows) with ``k`` colours gives the whole Jacobian from ``k`` products instead of
``n`` (or ``m``). The colouring depends on the pattern alone: :func:`color_jacobian` makes it
once, and :func:`sparse_jacobian` reuses it at every point.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast, get_args

import torch
from torch import Tensor

from vecgrad import _coloring
from vecgrad._api import Call, ColoringStrategy, Func, SparseStrategy, public
from vecgrad._basis import cat, one_hots, spans
from vecgrad._checks import (
    WRONG_FIELDS,
    check_choice,
    check_chunk_size,
    check_input_ndim,
    coloring_fields,
    coloring_for,
    coloring_shape,
    hessian_coloring,
    hessian_pattern,
    jacobian_coloring,
    not_transformed,
    pattern_for_input,
    pattern_for_output,
    positive_int,
    scalar_output,
    single_input,
    sparsity_pattern,
    square_pattern,
    symmetric_pattern,
)
from vecgrad._compat import (
    batched_grad,
    ensure_forward_ad,
    forward_over_reverse,
    outside_transforms,
)
from vecgrad._memory import in_transform

# The rule of vg.jacobian's 'auto' (reverse mode when m <= n) and its shape-only evaluation,
# shared so that the sparse functions choose as it does.
from vecgrad.jacobians import VjpFn, _forward_wins, _probe

_STRATEGIES = get_args(SparseStrategy)
_COLORING_STRATEGIES = get_args(ColoringStrategy)
# jacobian_sparsity: probe points inputs + _PROBE_SCALE * (1 + |inputs|) * z, z ~ N(0, 1) drawn
# from a generator seeded _PROBE_SEED; by default about _PROBE_ENTRIES entries per chunk.
_PROBE_SCALE = 1e-3
_PROBE_SEED = 0
_PROBE_ENTRIES = 2**20
# What jacobian_sparsity's refusal inside a transform offers: the dense route, and why the
# pattern is best found outside.
_PATTERN_ELSEWHERE = (
    "jacobian, whose entries != 0 give a pattern",
    "a pattern is a constant, found once for every point",
)


@dataclass(frozen=True, eq=False, repr=False)
class JacobianColoring:
    """A colouring of a Jacobian's sparsity pattern, made by :func:`color_jacobian`.

    It depends on the pattern alone, so one colouring serves every point at which
    :func:`sparse_jacobian` computes a Jacobian with that pattern. Make it with
    :func:`color_jacobian`, not by calling the class: :func:`sparse_jacobian` checks a colouring
    made any other way before using it.

    Attributes
    ----------
    mode : str
        ``'forward'``: the columns are coloured, and each colour costs one Jacobian-vector
        product; ``'reverse'``: the rows are coloured, one vector-Jacobian product per colour;
        ``'symmetric'``: the columns of a symmetric pattern (a Hessian's) are star-coloured,
        for :func:`sparse_hessian`, one Hessian-vector product per colour.
    colors : Tensor
        Colour of each column (``'forward'`` and ``'symmetric'``, shape ``input_shape``) or
        row (``'reverse'``, shape ``output_shape``), an int64 in ``range(num_colors)``.
        Columns (rows) of one colour share no row (column) of the pattern; in a symmetric
        colouring they may, but adjacent columns differ and every path on four vertices of the
        pattern's graph takes at least three colours. A column (row) without a nonzero needs
        no product and has colour -1.
    num_colors : int
        Number of colours: products per call of :func:`sparse_jacobian` or
        :func:`sparse_hessian`.
    lower_bound : int
        No colouring of this mode has fewer colours. ``'forward'`` (``'reverse'``): the most
        nonzeros in one row (column), whose columns (rows) need different colours.
        ``'symmetric'``: a bound from counting the pattern's off-diagonal pairs (see
        :func:`color_jacobian`), as a star colouring may give one colour to all the
        neighbours of a column: an arrow pattern, with a dense row, needs two colours only.
    output_shape : torch.Size
        Shape of the function's output.
    input_shape : torch.Size
        Shape of its input.
    sparsity : Tensor
        The pattern: a coalesced sparse COO bool Tensor of shape
        ``output_shape + input_shape``, True at each entry that may be nonzero.

    Notes
    -----
    The class is frozen, and two colourings are equal only when they are the same object. Its
    tensors can still be changed in place; :func:`sparse_jacobian` and :func:`sparse_hessian`
    then check the colouring again before using it, as one made otherwise.

    See Also
    --------
    color_jacobian : Makes a colouring.
    sparse_jacobian : Uses one.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> coloring = vg.color_jacobian(torch.eye(4, dtype=torch.bool))  # a diagonal
    >>> coloring.mode, coloring.num_colors, coloring.colors
    ('reverse', 1, tensor([0, 0, 0, 0]))
    """

    mode: str
    colors: Tensor
    num_colors: int
    lower_bound: int
    output_shape: torch.Size
    input_shape: torch.Size
    sparsity: Tensor

    def __repr__(self) -> str:
        return (
            f"JacobianColoring(mode={self.mode!r}, num_colors={self.num_colors}, "
            f"lower_bound={self.lower_bound}, output_shape={tuple(self.output_shape)}, "
            f"input_shape={tuple(self.input_shape)}, nnz={self.sparsity._nnz()})"
        )


# The colourings color_jacobian made, with the versions of their tensors then: sparse_jacobian
# trusts these while unchanged, and checks any other (one changed in place included).
_MADE: weakref.WeakKeyDictionary[JacobianColoring, tuple[int, int]] = weakref.WeakKeyDictionary()
# Seeds are kept with a plan while they hold at most this many elements (64 MiB in float32).
_PLAN_SEEDS = 2**24


@dataclass(frozen=True)
class _Plan:
    """What :func:`sparse_jacobian` derives from a colouring, once per device and dtype.

    ``indices`` are the pattern's, ``take`` the place of each nonzero's value in the compressed
    matrix (``(num_colors, m)`` forward, ``(num_colors, n)`` reverse and symmetric,
    flattened), ``seeds``
    the one-hot colours, ``(num_colors, n)`` forward or ``(num_colors, m)`` reverse, in the
    dtype of the products (None when too large to keep: then made a chunk at a time).
    """

    indices: Tensor
    take: Tensor
    colors: Tensor
    seeds: Tensor | None


# The plans of colourings color_jacobian made, by (device, dtype): a reused colouring pays for
# them once. A colouring made elsewhere may change between calls and gets a new plan each time.
_PLANS: weakref.WeakKeyDictionary[
    JacobianColoring, dict[tuple[torch.device, torch.dtype], _Plan]
] = weakref.WeakKeyDictionary()


def _versions(coloring: JacobianColoring) -> tuple[int, int]:
    """Versions of a colouring's tensors, which every in-place change increments.

    A sparse Tensor shares its version with its indices and values.
    """
    return coloring.colors._version, coloring.sparsity._version


def _trusted(coloring: JacobianColoring) -> bool:
    """Whether :func:`color_jacobian` made ``coloring`` and nothing changed it since."""
    made = _MADE.get(coloring)  # first: a colouring made otherwise may hold inference tensors
    return made is not None and made == _versions(coloring)


def _plan(coloring: JacobianColoring, device: torch.device, dtype: torch.dtype) -> _Plan:
    """The plan of ``coloring`` for products of ``dtype`` on ``device``, made once if trusted."""
    trusted = _trusted(coloring)
    plans = _PLANS.setdefault(coloring, {}) if trusted else {}
    plan = plans.get((device, dtype))
    if plan is not None:
        return plan
    indices = coloring.sparsity.indices().to(device)
    out_ndim = len(coloring.output_shape)
    rows = _ravel(indices[:out_ndim], coloring.output_shape)
    cols = _ravel(indices[out_ndim:], coloring.input_shape)
    colors = coloring.colors.reshape(-1).to(device)
    k = coloring.num_colors
    if coloring.mode == "forward":
        take = colors.index_select(0, cols) * math.prod(coloring.output_shape) + rows
    elif coloring.mode == "symmetric":
        take = _coloring.star_take(rows, cols, colors, math.prod(coloring.input_shape), k)
    else:
        take = colors.index_select(0, rows) * math.prod(coloring.input_shape) + cols
    seeds = None
    if k * colors.numel() <= _PLAN_SEEDS:
        seeds = _seeds(colors, 0, k, dtype)
    plan = _Plan(indices, take, colors, seeds)
    plans[(device, dtype)] = plan
    return plan


def _seeds(colors: Tensor, start: int, stop: int, dtype: torch.dtype) -> Tensor:
    """The sums of one-hot directions of colours ``start`` to ``stop - 1``, one per row."""
    return (colors == torch.arange(start, stop, device=colors.device)[:, None]).to(dtype)


def _flat_pattern(
    sparsity: Tensor, ndim: int
) -> tuple[Tensor, Tensor, Tensor, torch.Size, torch.Size]:
    """The nonzeros of ``sparsity``: their indices, and their rows and columns as a matrix.

    The last ``ndim`` dimensions are the input's. The indices (one row per dimension) are
    sorted and distinct, as a coalesced sparse Tensor's. A sparse pattern is read from its
    indices, never made dense; entries stored as False are not nonzeros.
    """
    shape = sparsity.shape
    out_shape, in_shape = shape[: len(shape) - ndim], shape[len(shape) - ndim :]
    if sparsity.layout == torch.strided:
        indices = sparsity.nonzero().T
    elif sparsity.layout == torch.sparse_csr:
        crow, col = sparsity.crow_indices(), sparsity.col_indices()
        row = torch.repeat_interleave(
            torch.arange(shape[0], device=col.device), crow[1:] - crow[:-1]
        )
        keep = sparsity.values()
        indices = torch.stack([row[keep], col[keep]])
        flat = indices[0] * shape[1] + indices[1]
        # Columns within a row of a CSR tensor need not be sorted.
        if flat.numel() > 1 and not bool((flat[1:] > flat[:-1]).all()):
            flat = torch.unique(flat)
            indices = torch.stack([flat // shape[1], flat % shape[1]])
    else:
        coo = sparsity if sparsity.is_coalesced() else sparsity.coalesce()
        indices, keep = coo.indices(), coo.values()
        # A copy either way: the colouring's pattern shares no memory with the caller's.
        indices = indices.clone() if bool(keep.all()) else indices[:, keep]
    rows = _ravel(indices[: len(out_shape)], out_shape)
    cols = _ravel(indices[len(out_shape) :], in_shape)
    return indices, rows, cols, out_shape, in_shape


def _ravel(indices: Tensor, shape: Sequence[int]) -> Tensor:
    """Flat (row-major) positions of the multi-indices ``indices`` (one row per dimension)."""
    if len(shape) == 1:
        return indices[0]
    flat = torch.zeros(indices.shape[1], dtype=torch.long, device=indices.device)
    for index, size in zip(indices, shape, strict=True):
        flat = flat * size + index
    return flat


def _unravel(flat: Tensor, shape: Sequence[int]) -> list[Tensor]:
    """Multi-indices (one Tensor per dimension) of the flat positions ``flat``."""
    coords = []
    for size in reversed(shape):
        coords.append(flat % size)
        flat = flat // size
    return coords[::-1]


def _bool_coo(indices: Tensor, shape: torch.Size) -> Tensor:
    """The coalesced sparse COO bool Tensor of ``shape``, True at ``indices`` (sorted, distinct)."""
    values = torch.ones(indices.shape[1], dtype=torch.bool, device=indices.device)
    return torch.sparse_coo_tensor(
        indices,
        values,
        shape,
        is_coalesced=True,
        check_invariants=False,  # they hold by construction; checking costs a pass
    )


def _indices(rows: Tensor, cols: Tensor, out_shape: torch.Size, in_shape: torch.Size) -> Tensor:
    """Indices (a row per dimension of ``out_shape + in_shape``) of the entries ``(rows, cols)``."""
    coords = [*_unravel(rows, out_shape), *_unravel(cols, in_shape)]
    if coords:
        return torch.stack(coords)
    return torch.zeros(0, rows.numel(), dtype=torch.long, device=rows.device)


def _make_coloring(
    indices: Tensor,
    rows: Tensor,
    cols: Tensor,
    out_shape: torch.Size,
    in_shape: torch.Size,
    strategy: str,
) -> JacobianColoring:
    """Colour the columns, the rows, or both and keep the one with fewer colours.

    ``'symmetric'``: a star colouring of a pattern checked to be square and symmetric, or the
    column colouring when it has fewer colours: in mode ``'symmetric'`` when it is a star
    colouring too, else in mode ``'forward'`` (a pattern without some diagonal entries), which
    :func:`sparse_hessian` reads as well.
    """
    m, n = math.prod(out_shape), math.prod(in_shape)
    found: dict[str, tuple[Tensor, int, int]] = {}
    # Nonzeros per row and per column: the group sizes of one mode are the other's counts.
    per_row, per_col = torch.bincount(rows, minlength=m), torch.bincount(cols, minlength=n)
    if strategy == "symmetric":
        square_pattern(out_shape, in_shape)
        _check_symmetric(indices, rows, cols, n)
        colors, count, bound = _coloring.star(rows, cols, n)
        # Distance-1 too when each used column has its diagonal entry (it shares that row).
        column, fewer, column_bound = _coloring.color(rows, cols, per_row, per_col)
        if fewer < count and not _coloring.is_star(rows, cols, column, n, fewer):
            found["forward"] = column.reshape(in_shape), fewer, column_bound
        else:
            if fewer < count:
                colors, count = column, fewer
            found["symmetric"] = colors.reshape(in_shape), count, bound
    if strategy in ("auto", "forward"):
        colors, count, bound = _coloring.color(rows, cols, per_row, per_col)
        found["forward"] = colors.reshape(in_shape), count, bound
    if strategy in ("auto", "reverse"):
        colors, count, bound = _coloring.color(cols, rows, per_col, per_row)
        found["reverse"] = colors.reshape(out_shape), count, bound
    if len(found) == 2:
        # Ties go as vg.jacobian's 'auto' goes: reverse mode unless m > n.
        forward, reverse = found["forward"][1], found["reverse"][1]
        wins = forward < reverse or (
            forward == reverse and _forward_wins(out_shape, [in_shape], None)
        )
        strategy = "forward" if wins else "reverse"
    if strategy == "symmetric":
        (strategy,) = found
    colors, count, bound = found[strategy]
    pattern = _bool_coo(indices, out_shape + in_shape)
    if colors.is_inference():
        # Inference tensors keep no version (see _versions): normal copies, made outside
        # inference mode, do.
        with torch.inference_mode(False):
            colors, pattern = colors.clone(), pattern.clone()
    coloring = JacobianColoring(strategy, colors, count, bound, out_shape, in_shape, pattern)
    _MADE[coloring] = _versions(coloring)
    return coloring


def _first_unmirrored(rows: Tensor, cols: Tensor, n: int) -> int | None:
    """Index of the first entry ``(i, j)`` of a coalesced square pattern without ``(j, i)``."""
    flat = rows * n + cols  # sorted: the entries are sorted row by row
    transposed = cols * n + rows
    found = torch.searchsorted(flat, transposed).clamp(max=max(flat.numel() - 1, 0))
    missing = (flat.index_select(0, found) != transposed).nonzero().flatten()
    return int(missing[0]) if missing.numel() > 0 else None


def _check_symmetric(indices: Tensor, rows: Tensor, cols: Tensor, n: int) -> None:
    """Refuse a pattern with an entry ``(i, j)`` but not ``(j, i)``, naming the first one."""
    first = _first_unmirrored(rows, cols, n)
    if first is not None:
        entry = indices[:, first].tolist()
        half = len(entry) // 2
        symmetric_pattern(tuple(entry), tuple(entry[half:] + entry[:half]))


def _check_made_elsewhere(coloring: JacobianColoring) -> None:
    """Check every field of a colouring that :func:`color_jacobian` did not make."""
    out_shape = coloring_shape(coloring.output_shape)
    in_shape = coloring_shape(coloring.input_shape)
    pattern, colors = coloring.sparsity, coloring.colors
    forward = coloring.mode in ("forward", "symmetric")
    symmetric = coloring.mode == "symmetric"
    fits = (
        coloring.mode in ("forward", "reverse", "symmetric")
        and (not symmetric or out_shape == in_shape)
        and isinstance(coloring.num_colors, int)
        and isinstance(pattern, Tensor)
        and pattern.layout == torch.sparse_coo
        and pattern.dtype == torch.bool
        and pattern.shape == out_shape + in_shape
        and pattern.is_coalesced()
        and isinstance(colors, Tensor)
        and colors.dtype == torch.long
        and colors.shape == (in_shape if forward else out_shape)
    )
    coloring_fields(fits, WRONG_FIELDS)
    # Every stored entry is computed, so every one must be coloured validly.
    indices = pattern.indices()
    rows = _ravel(indices[: len(out_shape)], out_shape)
    cols = _ravel(indices[len(out_shape) :], in_shape)
    groups, members = (rows, cols) if forward else (cols, rows)
    num_groups = math.prod(out_shape if forward else in_shape)
    flat = colors.reshape(-1).to(members.device)
    in_range = bool((flat < coloring.num_colors).all()) and bool((flat >= -1).all())
    if symmetric:
        n = math.prod(in_shape)
        symmetric_ok = _first_unmirrored(rows, cols, n) is None
        coloring_fields(symmetric_ok, "whose pattern is not symmetric")
        valid = in_range and _coloring.is_star(rows, cols, flat, n, coloring.num_colors)
    else:
        valid = in_range and _coloring.is_valid(groups, members, flat, num_groups)
    coloring_fields(valid, "whose colours are not a valid colouring of its pattern")


@public
def color_jacobian(
    sparsity: Tensor, *, strategy: ColoringStrategy = "auto", input_ndim: int = 1
) -> JacobianColoring:
    r"""Colour a Jacobian's (or Hessian's) sparsity pattern once, for many sparse derivatives.

    Parameters
    ----------
    sparsity : Tensor
        Where the Jacobian may be nonzero: a bool Tensor of shape
        ``output.shape + input.shape``, True at those entries. Strided, sparse COO (without
        dense dimensions) or, when 2-D, sparse CSR. A sparse pattern is read from its indices
        and never made dense; entries stored as False count as zeros.
    strategy : {'auto', 'forward', 'reverse', 'symmetric'}, optional
        ``'forward'`` colours the columns (one Jacobian-vector product per colour),
        ``'reverse'`` the rows (one vector-Jacobian product per colour). ``'auto'`` (default)
        colours both and keeps the one with fewer colours; on a tie it follows
        :func:`jacobian`'s rule, reverse mode when the output has no more elements than the
        input. ``'symmetric'`` star-colours the columns of a symmetric pattern, of shape
        ``inputs.shape + inputs.shape``, for :func:`sparse_hessian` (one Hessian-vector
        product per colour): often far fewer colours than ``'forward'``. On a pattern without
        some of its diagonal entries a column colouring can need fewer; it is then returned
        instead, in mode ``'forward'``, which :func:`sparse_hessian` reads too.
    input_ndim : int, optional
        How many trailing dimensions of ``sparsity`` are the input's (default 1: a
        matrix-shaped pattern for a vector input).

    Returns
    -------
    JacobianColoring
        The mode, the colour of each column or row, their number, the lower bound, the shapes
        and the pattern as a coalesced sparse COO bool Tensor.

    Raises
    ------
    TypeError
        If ``sparsity`` is not a bool Tensor of a strided, sparse COO or sparse CSR layout,
        ``strategy`` is not a string or ``input_ndim`` not an int.
    ValueError
        If ``sparsity`` is on the meta device, batched or differentiated by a torch.func
        transform, has dense dimensions or is a sparse CSR Tensor of more than two
        dimensions, or, with ``strategy='symmetric'``, is not square (the
        input's dimensions, the last ``input_ndim``, do not repeat the others) or not
        symmetric; if ``strategy`` is unknown, or ``input_ndim`` is negative or above
        ``sparsity.dim()``.

    Notes
    -----
    Columns :math:`j` and :math:`j'` may share a colour when no row holds a nonzero in both
    (a distance-2 colouring of the column intersection graph); then the product
    :math:`J s_c` with :math:`s_c = \sum_{c(j) = c} e_j` holds :math:`J_{ij}` in row
    :math:`i` for every nonzero :math:`(i, j)` with :math:`c(j) = c`. The columns of one row
    need different colours, so the most nonzeros in a row, ``lower_bound``, is the fewest
    colours possible; rows in reverse mode likewise.

    The colouring is vectorised and deterministic. It tries modular colourings first,
    :math:`c(j) = j \bmod k` and, for patterns of grids flattened row by row,
    :math:`c(j) = (j \bmod s + t \lfloor j / s \rfloor) \bmod k` with the grid width :math:`s` read
    from the pattern, for the smallest valid :math:`k` from the lower bound up: they reach the lower
    bound on bands, block diagonals and 5-point and 9-point stencils. A band that wraps around (a
    periodic tridiagonal pattern), whose length the bound need not divide, gets blocks of :math:`k`
    and :math:`k + 1` colours: one above the bound. Otherwise a Jones-Plassmann greedy colouring
    with largest-first priorities (ties broken by a permutation from a fixed seed) is tried as well,
    unless the lower bound is above 256, and the colouring with fewer colours is kept. Modular
    candidates are found on a sample of the pattern and each is checked on the whole of it; those
    with exactly ``lower_bound`` colours are read off a few of the fullest rows (columns) first, and
    when one is valid nothing else is tried. The work is a few passes over the nonzeros per
    candidate (after one sort, for a sparse COO pattern that is not coalesced); the greedy colouring
    takes a pass per round, and at least ``lower_bound`` rounds. When a round colours only a few
    columns (a dense column intersection graph) and at most 16,384 are left, it colours those one at
    a time instead, with the same result, from a dense matrix of which of them share a row; a
    pattern like that needs many colours, and :func:`jacobian` may cost less. On a grid that wraps
    around in both directions, with sides the bound does not divide, it stays further from the
    bound: 9 or 10 colours for periodic 5-point stencils, whose bound is 5. ``'auto'`` colours both
    ways.

    A symmetric pattern is the graph with an edge between :math:`i` and :math:`j` for each
    off-diagonal nonzero. Its star colouring (Gebremedhin, Manne and Pothen, SIAM Review
    47(4), 2005) gives adjacent columns different colours and every path on four vertices at
    least three colours, so every two colours span stars: each off-diagonal :math:`H_{ij}` is
    read directly from the product of :math:`i`'s colour or of :math:`j`'s (see
    :func:`sparse_hessian`). Columns :math:`i` and :math:`j` that share a row :math:`l` may
    then share a colour, unlike in ``'forward'`` mode: all the leaves of an arrow pattern (a
    dense row and column) take one colour, and its centre another, where ``'forward'`` needs
    as many colours as columns. The colouring is greedy, each column in turn, those with most
    nonzeros first, taking the smallest colour that leaves no path on four vertices with two
    colours; a Python loop over the columns that keeps, for each, the colours that it forbids
    its neighbours, in under 0.1 s for a 2-D 5-point stencil of :math:`10^4` columns and 5 s
    for :math:`10^6`. The ``'forward'`` colouring, a star colouring too when the diagonal is
    in the pattern, is kept instead when it has fewer colours. ``lower_bound`` counts edges:
    two colour classes of sizes :math:`n_a, n_b` span a forest of stars with at most
    :math:`n_a + n_b - 1` edges, so :math:`k` colours on :math:`n'` vertices with an edge
    allow at most :math:`(k - 1)(n' - k / 2)` edges.

    See Also
    --------
    sparse_jacobian : Computes a sparse Jacobian with the colouring.
    jacobian_sparsity : Finds a pattern by probing a function.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> tridiagonal = torch.ones(5, 5).tril(1).triu(-1).bool()
    >>> coloring = vg.color_jacobian(tridiagonal, strategy="forward")
    >>> coloring.num_colors, coloring.lower_bound
    (3, 3)
    >>> coloring.colors
    tensor([0, 1, 2, 0, 1])
    """
    pattern = sparsity_pattern(sparsity)
    strategy = check_choice("strategy", strategy, _COLORING_STRATEGIES)
    ndim = check_input_ndim(input_ndim, pattern.dim())
    return _make_coloring(*_flat_pattern(pattern, ndim), strategy)


def _products(
    call: Call, x: Tensor, coloring: JacobianColoring, chunk_size: int | None
) -> tuple[Tensor, torch.dtype, _Plan]:
    """The compressed Jacobian, one product per colour, as a ``(num_colors, m or n)`` matrix.

    Forward mode: ``J s_c`` for the sum ``s_c`` of the one-hot columns of colour ``c``; reverse
    mode: ``s_c^T J`` for the rows. Also the output's dtype and the plan of the colouring.
    """
    k = coloring.num_colors
    if k == 0:
        output = _probe(call.func, (x,))
        not_transformed("func", in_transform(output), "sparse_jacobian")
        pattern_for_output(coloring.output_shape, output.shape, x.shape)
        plan = _plan(coloring, x.device, output.dtype)
        return output.new_zeros(0, output.numel()), output.dtype, plan
    # Not in inference mode either, where enable_grad records no graph.
    plain = outside_transforms() and not (torch.is_inference_mode_enabled() or x.is_inference())
    if coloring.mode == "reverse" and plain:
        return _autograd_products(call, x, coloring, chunk_size)
    pieces = []
    if coloring.mode == "forward":
        ensure_forward_ad()
        plan = _plan(coloring, x.device, x.dtype)

        def column(seed: Tensor) -> Tensor:
            return cast(Tensor, torch.func.jvp(call.func, (x,), (seed,))[1])

        for start, stop, seeds in _chunks(plan, k, chunk_size, x.dtype):
            # Random operations draw once for all colours, as one evaluation in reverse mode.
            piece = torch.func.vmap(column, randomness="same")(seeds.view(stop - start, *x.shape))
            pattern_for_output(coloring.output_shape, piece.shape[1:], x.shape)
            pieces.append(piece.reshape(stop - start, -1))
        out_dtype = pieces[0].dtype
    else:
        output, vjp_fn = cast("tuple[Tensor, VjpFn]", torch.func.vjp(call.func, x))
        pattern_for_output(coloring.output_shape, output.shape, x.shape)
        plan = _plan(coloring, x.device, output.dtype)
        for start, stop, seeds in _chunks(plan, k, chunk_size, output.dtype):
            (piece,) = torch.func.vmap(vjp_fn)(seeds.view(stop - start, *output.shape))
            pieces.append(piece.reshape(stop - start, -1))
        out_dtype = output.dtype
    compressed = cat(pieces)
    not_transformed("func", in_transform(compressed), "sparse_jacobian")
    return compressed, out_dtype, plan


def _autograd_products(
    call: Call, x: Tensor, coloring: JacobianColoring, chunk_size: int | None
) -> tuple[Tensor, torch.dtype, _Plan]:
    """:func:`_products` in reverse mode outside transforms, by batched :func:`torch.autograd.grad`.

    A third faster than :func:`torch.func.vjp` under :func:`torch.func.vmap` for a few
    colours, with the same products and graph. The backward pass builds a graph
    (``create_graph``) only when the values must carry one: grad mode is on and ``inputs`` or
    a tensor ``func`` closes over requires grad.
    """
    graph = torch.is_grad_enabled()
    tracked = graph and x.requires_grad
    with torch.enable_grad():
        # An alias of a tracked input, so that hooks registered on it do not run.
        leaf = x.view_as(x) if tracked else x.detach().requires_grad_()
        output = call.func(leaf)
    not_transformed("func", in_transform(output), "sparse_jacobian")
    pattern_for_output(coloring.output_shape, output.shape, x.shape)
    plan = _plan(coloring, x.device, output.dtype)
    create_graph = tracked or (graph and _reaches_other_leaf(output, leaf))
    chunks = _chunks(plan, coloring.num_colors, chunk_size, output.dtype)
    pieces = []
    for c, (start, stop, seeds) in enumerate(chunks):
        piece = None
        if output.requires_grad:
            (piece,) = batched_grad(
                output,
                (leaf,),
                seeds.view(stop - start, *output.shape),
                retain_graph=create_graph or c < len(chunks) - 1,
                create_graph=create_graph,
            )
        if piece is None:  # the output does not depend on the input
            piece = x.new_zeros(stop - start, *x.shape)
        pieces.append(piece.reshape(stop - start, -1))
    return cat(pieces), output.dtype, plan


def _reaches_other_leaf(output: Tensor, leaf: Tensor) -> bool:
    """Whether ``output``'s graph reaches a tensor that requires grad other than ``leaf``."""
    seen: set[object] = set()
    stack = [] if output.grad_fn is None else [output.grad_fn]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        parents = node.next_functions
        if parents:
            stack.extend([parent for parent, _ in parents if parent is not None])
        # A node without parents is a leaf's AccumulateGrad (any other counts as foreign).
        elif getattr(node, "variable", None) is not leaf:
            return True
    return False


def _chunks(
    plan: _Plan, k: int, chunk_size: int | None, dtype: torch.dtype
) -> list[tuple[int, int, Tensor]]:
    """The spans of at most ``chunk_size`` colours, each with its seeds."""
    if plan.seeds is not None and (chunk_size is None or chunk_size >= k):
        return [(0, k, plan.seeds)]
    return [
        (start, stop, _seeds(plan.colors, start, stop, dtype))
        for start, stop in spans(k, chunk_size)
    ]


@public
def sparse_jacobian(
    func: Func,
    inputs: Tensor,
    *,
    sparsity: Tensor | JacobianColoring,
    strategy: SparseStrategy = "auto",
    chunk_size: int | None = None,
) -> Tensor:
    r"""Jacobian of ``func`` at ``inputs`` with a known sparsity pattern, as a sparse Tensor.

    Parameters
    ----------
    func : callable
        Function of one Tensor returning a Tensor, called as ``func(inputs)``. It must not
        modify its input in place.
    inputs : Tensor
        Point at which ``func`` is differentiated: one dense Tensor of a real floating-point
        dtype. Several inputs are refused: concatenate them into one (for example
        ``torch.cat([a.flatten(), b.flatten()])``) and split it inside ``func``, as the pattern
        and its colouring cover one input.
    sparsity : Tensor or JacobianColoring
        Where the Jacobian may be nonzero, as for :func:`color_jacobian`, with shape
        ``func(inputs).shape + inputs.shape``; or a colouring from :func:`color_jacobian`,
        then no colouring is done (the way to compute Jacobians of one pattern at many points).
        Entries outside the pattern must be zero: they are neither computed nor checked, and
        a nonzero there makes entries inside it wrong.
    strategy : {'auto', 'forward', 'reverse'}, optional
        Mode of the colouring made from a pattern, as for :func:`color_jacobian`. With a
        colouring, ``'auto'`` (default) or the colouring's own mode.
    chunk_size : int, optional
        Largest number of products (colours) computed at once, to bound memory; by default
        all at once.

    Returns
    -------
    Tensor
        ``J``, a coalesced sparse COO Tensor of shape ``func(inputs).shape + inputs.shape``
        with one stored entry per nonzero of the pattern, in the pattern's order (its indices
        are the colouring's ``sparsity.indices()``), also where the value is zero.
        ``J.to_dense()`` gives the dense Jacobian, ``J.values()`` the values. Its dtype is the
        promotion of the output's and the input's, as for :func:`jacobian`. The values carry
        the autograd graph to ``inputs`` and the tensors ``func`` closes over (see
        :ref:`differentiable`; under :class:`torch.no_grad` they do not), and their derivatives
        are those of the Jacobian's entries when the pattern holds near the point, for nearby
        inputs and closed-over values alike (see Notes).

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a dense real floating-point Tensor,
        ``inputs`` is not one dense Tensor of a real floating-point dtype (a tuple or list is
        refused), ``sparsity`` is neither a JacobianColoring nor a bool Tensor of a strided,
        sparse COO or sparse CSR layout, ``strategy`` is not a string or ``chunk_size`` not an
        int; or if ``func`` calls a custom :class:`torch.autograd.Function` that lacks what
        the mode needs: in forward mode a ``jvp``, a vmap rule and ``setup_context``; in
        reverse mode the last two, only where reverse mode runs through torch.func: inside a
        torch.func transform, under :class:`torch.inference_mode` or for an inference Tensor
        ``inputs``.
    ValueError
        If ``inputs`` is on the meta device or ``func`` returns such a Tensor, ``sparsity``'s
        shape is not ``func(inputs).shape + inputs.shape`` (or a colouring's shapes differ), a
        pattern is batched or differentiated by a torch.func transform or has dense
        dimensions, a colouring was not made by :func:`color_jacobian` (or was changed in place
        since) and is not valid or is symmetric (for :func:`sparse_hessian`, as its values hold for
        symmetric matrices only), ``strategy`` is unknown or differs from a colouring's mode, or
        ``chunk_size < 1``; or if called inside a torch.func transform (``inputs`` or a tensor
        ``func`` closes over is transformed), where a sparse Tensor cannot be built.

    Notes
    -----
    With a column colouring :math:`c`, forward mode computes one Jacobian-vector product
    :math:`b_k = J s_k` per colour, :math:`s_k = \sum_{c(j) = k} e_j`, vectorised with
    :func:`torch.func.vmap`, and reads :math:`J_{ij} = (b_{c(j)})_i` for every nonzero
    :math:`(i, j)` of the pattern; reverse mode does the same with vector-Jacobian products and
    a row colouring, batched by :func:`torch.autograd.grad` (``is_grads_batched=True``), which
    costs less than :func:`torch.func.vmap` for a few colours. A colouring with :math:`k`
    colours costs :math:`k` products instead of the :math:`n` (or :math:`m`) of
    :func:`jacobian`: 5 for a 2-D 5-point stencil of any size. Random operations in ``func``
    draw once for all colours.

    A value is the sum of the entries of its row over the columns of its colour, all but one of
    which the pattern says are zero. Its derivative is therefore the entry's derivative only
    when those entries stay zero as the inputs and closed-over tensors vary: true of a
    structural pattern (``x[i] * x[i + 1]`` has no entry at ``(i, i + 2)`` for any ``x``), not
    of entries that merely happen to be zero (a weight of a dense layer that is zero now, but
    receives a gradient).

    Sparse Tensors cannot be batched by :func:`torch.func.vmap` nor wrapped by the other
    torch.func transforms, so this function refuses to run inside one. Call it outside the
    transform and differentiate its values with ordinary autograd, or use :func:`jacobian`,
    which gives the dense Jacobian inside transforms.

    See Also
    --------
    color_jacobian : Colours a pattern once, for many calls.
    jacobian_sparsity : Finds a pattern by probing ``func``.
    jacobian : The dense Jacobian.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> import vecgrad as vg
    >>> def f(x):  # each output depends on its own input and its two neighbours
    ...     return x**2 + F.pad(x[:-1], (1, 0)) - F.pad(x[1:], (0, 1))
    >>> x = torch.arange(5.0)
    >>> tridiagonal = torch.ones(5, 5).tril(1).triu(-1).bool()
    >>> J = vg.sparse_jacobian(f, x, sparsity=tridiagonal)
    >>> J.layout, J.values().numel()
    (torch.sparse_coo, 13)
    >>> torch.equal(J.to_dense(), vg.jacobian(f, x))
    True
    """
    single_input(inputs)
    call = Call(func, inputs)
    (x,) = call.xs
    strategy = check_choice("strategy", strategy, _STRATEGIES)
    chunk_size = check_chunk_size(chunk_size)
    if isinstance(sparsity, JacobianColoring):
        coloring = sparsity
        jacobian_coloring(coloring.mode)
        if not _trusted(coloring):
            _check_made_elsewhere(coloring)
        coloring_for(coloring.mode, coloring.input_shape, x.shape, strategy)
    else:
        pattern = sparsity_pattern(sparsity, JacobianColoring)
        pattern_for_input(pattern.shape, x.shape)
        coloring = _make_coloring(*_flat_pattern(pattern, x.dim()), strategy)
    not_transformed("inputs", in_transform(x), "sparse_jacobian")
    compressed, out_dtype, plan = _products(call, x, coloring, chunk_size)
    return _decompressed(compressed, plan, coloring, torch.promote_types(out_dtype, x.dtype))


def _decompressed(
    compressed: Tensor, plan: _Plan, coloring: JacobianColoring, dtype: torch.dtype
) -> Tensor:
    """The sparse matrix whose values the plan reads off the products ``compressed``."""
    # index_select, not indexing: torch runs the latter on several threads from a few
    # thousand elements on, which a busy machine makes slow.
    values = compressed.reshape(-1).index_select(0, plan.take).to(dtype)
    return torch.sparse_coo_tensor(
        plan.indices.clone(),  # the result owns its memory: none shared with the colouring
        values,
        coloring.output_shape + coloring.input_shape,
        is_coalesced=True,
        check_invariants=False,
    )


@public
def sparse_hessian(
    func: Func,
    inputs: Tensor,
    *,
    sparsity: Tensor | JacobianColoring,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Hessian of a scalar ``func`` with a known sparsity pattern, as a sparse Tensor.

    Parameters
    ----------
    func : callable
        Function of one Tensor returning a one-element real floating-point Tensor, called as
        ``func(inputs)``. It must not modify its input in place.
    inputs : Tensor
        Point at which ``func`` is differentiated: one dense Tensor of a real floating-point
        dtype (concatenate several inputs into one, as for :func:`sparse_jacobian`).
    sparsity : Tensor or JacobianColoring
        Where the Hessian may be nonzero: a symmetric bool Tensor of shape
        ``inputs.shape + inputs.shape``, strided, sparse COO or (2-D) sparse CSR, which is
        star-coloured as by :func:`color_jacobian` with ``strategy='symmetric'``; or a
        colouring from :func:`color_jacobian` of such a pattern, then no colouring is done (the
        way to compute Hessians of one pattern at many points). ``strategy='symmetric'`` keeps
        the fewer colours of a star and a column colouring; a ``'forward'`` or ``'reverse'``
        colouring serves too. Entries outside the pattern must be zero: they are neither
        computed nor checked, and a nonzero there makes entries inside it wrong.
    chunk_size : int, optional
        Largest number of Hessian-vector products (colours) computed at once, to bound memory;
        by default all at once.

    Returns
    -------
    Tensor
        ``H``, a coalesced sparse COO Tensor of shape ``inputs.shape + inputs.shape`` with one
        stored entry per nonzero of the pattern, in the pattern's order (its indices are the
        colouring's ``sparsity.indices()``), also where the value is zero. ``H.to_dense()``
        gives the dense Hessian, as :func:`hessian` does, in the dtype of ``inputs``. The
        values carry the autograd graph to ``inputs`` and the tensors ``func`` closes over
        (see :ref:`differentiable`; under :class:`torch.no_grad` they do not), with the
        derivatives of the Hessian's entries when the pattern holds near the point (see
        :func:`sparse_jacobian`).

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a dense real floating-point Tensor,
        ``inputs`` is not one dense Tensor of a real floating-point dtype (a tuple or list is
        refused), ``sparsity`` is neither a JacobianColoring nor a bool Tensor of a strided,
        sparse COO or sparse CSR layout, or ``chunk_size`` is not an int; or if ``func`` calls
        a custom :class:`torch.autograd.Function` without a ``jvp``, a vmap rule or
        ``setup_context`` (forward-over-reverse needs all three).
    ValueError
        If ``func`` returns more than one element, ``inputs`` is on the meta device or
        ``func`` returns such a Tensor, ``sparsity``'s shape is not
        ``inputs.shape + inputs.shape`` (or a colouring's shapes differ), a pattern is batched
        or differentiated by a torch.func transform, has dense dimensions or is not
        symmetric, a colouring was not made by :func:`color_jacobian` (or was changed in place
        since) and is not valid, or ``chunk_size < 1``; or if called inside a torch.func transform
        (``inputs`` or a tensor ``func`` closes over is transformed), where a sparse Tensor
        cannot be built.

    Notes
    -----
    With a colouring :math:`c` of :math:`k` colours it computes one Hessian-vector product
    :math:`b_k = H s_k` per colour, :math:`s_k = \sum_{c(j) = k} e_j`, by forward mode over
    reverse mode (as :func:`hvp`), vectorised with :func:`torch.func.vmap`: :math:`k`
    products instead of the :math:`n` of :func:`hessian`. Random operations in ``func`` draw
    once for all colours.

    A star colouring (``'symmetric'``) reads each entry directly: :math:`H_{ii} = (b_{c(i)})_i`,
    and for :math:`i \ne j`, :math:`H_{ij} = (b_{c(j)})_i` when :math:`j` is the only neighbour
    of :math:`i` of colour :math:`c(j)`, else :math:`H_{ij} = H_{ji} = (b_{c(i)})_j`, as then
    :math:`i` is the only neighbour of :math:`j` of colour :math:`c(i)` (the two colours span
    a star centred at :math:`i`). Which of the two holds depends on the colouring alone, so
    the places are found once per colouring. With the symmetry of :math:`H` this needs fewer
    colours than a column colouring: 2 for an arrow pattern instead of :math:`n`. A
    ``'forward'`` colouring reads :math:`H_{ij} = (b_{c(j)})_i` and a ``'reverse'`` one
    :math:`H_{ij} = (b_{c(i)})_j`, as for :func:`sparse_jacobian`.

    As with :func:`sparse_jacobian`, the function refuses to run inside a torch.func
    transform, which cannot batch a sparse Tensor: call it outside, or use :func:`hessian`,
    which gives the dense Hessian inside one. :func:`sparse_jacobian` refuses a
    ``'symmetric'`` colouring, whose values hold for symmetric matrices only.

    See Also
    --------
    color_jacobian : Colours a pattern once, for many calls (``strategy='symmetric'``).
    hessian : The dense Hessian.
    hvp : One Hessian-vector product.
    sparse_jacobian : A sparse Jacobian.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> def f(x):  # x[0] couples to every other element: an arrow-shaped Hessian
    ...     return (x[0] * x[1:]).sum() + (x**3).sum()
    >>> x = torch.arange(5.0)
    >>> arrow = torch.eye(5, dtype=torch.bool)
    >>> arrow[0] = arrow[:, 0] = True
    >>> coloring = vg.color_jacobian(arrow, strategy="symmetric")
    >>> coloring.num_colors, vg.color_jacobian(arrow, strategy="forward").num_colors
    (2, 5)
    >>> H = vg.sparse_hessian(f, x, sparsity=coloring)
    >>> H.layout, H.values().numel()
    (torch.sparse_coo, 13)
    >>> torch.equal(H.to_dense(), vg.hessian(f, x))
    True
    """
    single_input(inputs)
    call = Call(func, inputs)
    (x,) = call.xs
    chunk_size = check_chunk_size(chunk_size)
    if isinstance(sparsity, JacobianColoring):
        coloring = sparsity
        if not _trusted(coloring):
            _check_made_elsewhere(coloring)
        hessian_coloring(coloring.output_shape, coloring.input_shape, x.shape)
    else:
        pattern = sparsity_pattern(sparsity, JacobianColoring)
        hessian_pattern(pattern.shape, x.shape)
        coloring = _make_coloring(*_flat_pattern(pattern, x.dim()), "symmetric")
    dense = "hessian, which gives a dense Hessian"
    not_transformed("inputs", in_transform(x), "sparse_hessian", dense)
    plan = _plan(coloring, x.device, x.dtype)
    k = coloring.num_colors

    def scalar(t: Tensor) -> Tensor:
        return scalar_output(call.func(t))

    if k == 0:
        output = _probe(scalar, (x,))  # still check what func returns
        not_transformed("func", in_transform(output), "sparse_hessian", dense)
        return _decompressed(x.new_zeros(0, x.numel()), plan, coloring, x.dtype)
    grad_fn = torch.func.grad(scalar)

    def column(seed: Tensor) -> Tensor:
        return cast(Tensor, forward_over_reverse(grad_fn, (x,), (seed,), has_aux=False)[1])

    pieces = []
    for start, stop, seeds in _chunks(plan, k, chunk_size, x.dtype):
        # Random operations draw once for all colours, as in one evaluation.
        piece = torch.func.vmap(column, randomness="same")(seeds.view(stop - start, *x.shape))
        pieces.append(piece.reshape(stop - start, -1))
    compressed = cat(pieces)
    not_transformed("func", in_transform(compressed), "sparse_hessian", dense)
    return _decompressed(compressed, plan, coloring, x.dtype)


@public
def jacobian_sparsity(
    func: Func, inputs: Tensor, *, num_points: int = 3, chunk_size: int | None = None
) -> Tensor:
    r"""Sparsity pattern of ``func``'s Jacobian near ``inputs``, found by probing.

    Parameters
    ----------
    func : callable
        Function of one Tensor returning a Tensor, called as ``func(inputs)``. It must not
        modify its input in place.
    inputs : Tensor
        Point near which the pattern is found: one dense Tensor of a real floating-point dtype
        (concatenate several inputs into one, as for :func:`sparse_jacobian`).
    num_points : int, optional
        Number of points at which the Jacobian is computed (default 3): ``inputs`` itself and
        ``num_points - 1`` random points near it.
    chunk_size : int, optional
        Largest number of columns (or rows) of a Jacobian computed at once. By default as many
        as hold about :math:`2^{20}` entries, so that the dense Jacobian is never formed whole.

    Returns
    -------
    Tensor
        A coalesced sparse COO bool Tensor of shape ``func(inputs).shape + inputs.shape``,
        True where the Jacobian is nonzero at one of the points at least: a ``sparsity`` for
        :func:`color_jacobian` and :func:`sparse_jacobian`. It is a constant (no graph).

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a dense real floating-point Tensor,
        ``inputs`` is not one dense Tensor of a real floating-point dtype (a tuple or list is
        refused), ``num_points`` is not an int or ``chunk_size`` not an int; or if ``func``
        calls a custom :class:`torch.autograd.Function` that lacks what the mode needs.
    ValueError
        If ``inputs`` is on the meta device or ``func`` returns such a Tensor, ``num_points``
        or ``chunk_size`` is below 1; or if called inside a torch.func transform (``inputs`` or
        a tensor ``func`` closes over is transformed), where nonzeros cannot be read.

    Notes
    -----
    The points are ``inputs`` and :math:`x + 10^{-3} (1 + |x|) z` with :math:`z` standard
    normal, drawn from a :class:`torch.Generator` seeded 0 (the global random state is left
    alone), so a call gives the same pattern every time. At each point the exact Jacobian is
    computed a chunk at a time, with vectorised Jacobian-vector products (one per input element)
    when the output has more elements than the input and vector-Jacobian products (one per
    output element) otherwise, as :func:`jacobian` chooses; only its nonzero positions are kept.

    The cost is one evaluation of ``func`` plus ``num_points`` times
    :math:`\min(m, n)` products, the price of ``num_points`` dense Jacobians, in time but not in
    memory: a chunk of ``chunk_size`` columns (rows) at a time, and the pattern.

    The pattern is what the probes saw, not a proof: an entry that happens to be zero at every
    point is missed (a term multiplied by something that vanishes near ``inputs``, a branch
    that the points do not take, a ReLU that is off at all of them), and
    :func:`sparse_jacobian` with such a pattern gives wrong values for the entries of the rows
    (or columns) that share its colour. Probe at representative points, add entries you know
    of, or check one sparse Jacobian against :func:`jacobian` on a small problem.

    See Also
    --------
    color_jacobian : Colours the pattern.
    sparse_jacobian : Computes sparse Jacobians with it.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> import vecgrad as vg
    >>> def f(x):
    ...     return x**2 + F.pad(x[:-1], (1, 0)) - F.pad(x[1:], (0, 1))
    >>> x = torch.arange(5.0)  # the derivative of x**2 vanishes at x[0] = 0
    >>> pattern = vg.jacobian_sparsity(f, x)
    >>> torch.equal(pattern.to_dense(), torch.ones(5, 5).tril(1).triu(-1).bool())
    True
    """
    single_input(inputs)
    call = Call(func, inputs)
    (x,) = call.xs
    num_points = positive_int("num_points", num_points)
    chunk_size = check_chunk_size(chunk_size)
    not_transformed("inputs", in_transform(x), "jacobian_sparsity", *_PATTERN_ELSEWHERE)
    with torch.no_grad():
        x = x.detach()
        output = _probe(call.func, (x,))
        not_transformed("func", in_transform(output), "jacobian_sparsity", *_PATTERN_ELSEWHERE)
        out_shape, in_shape = output.shape, x.shape
        m, n = output.numel(), x.numel()
        generator = torch.Generator(device=x.device).manual_seed(_PROBE_SEED)
        points = [x] + [
            x
            + _PROBE_SCALE
            * (1 + x.abs())
            * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            for _ in range(num_points - 1)
        ]
        forward = _forward_wins(out_shape, [in_shape], None)
        count, other = (n, m) if forward else (m, n)
        step = chunk_size or max(1, _PROBE_ENTRIES // max(other, 1))
        found = [
            _nonzeros(call, point, start, stop, forward)
            for point in points
            for start, stop in spans(count, step)
        ]
    flat = torch.unique(torch.cat(found)) if found else torch.zeros(0, dtype=torch.long)
    flat = flat.to(x.device)
    rows, cols = (flat // n, flat % n) if n else (flat, flat)
    return _bool_coo(_indices(rows, cols, out_shape, in_shape), out_shape + in_shape)


def _nonzeros(call: Call, x: Tensor, start: int, stop: int, forward: bool) -> Tensor:
    """Flat positions ``row * n + col`` of the nonzeros of columns (or rows) ``start:stop``."""
    n = x.numel()
    if forward:
        ensure_forward_ad()

        def column(seed: Tensor) -> Tensor:
            return cast(Tensor, torch.func.jvp(call.func, (x,), (seed,))[1])

        block = torch.func.vmap(column, randomness="same")(one_hots(start, stop, 0, x.shape, x))
        not_transformed("func", in_transform(block), "jacobian_sparsity", *_PATTERN_ELSEWHERE)
        col, row = (block.reshape(stop - start, -1) != 0).nonzero().unbind(1)
        return row * n + col + start
    output, vjp_fn = cast("tuple[Tensor, VjpFn]", torch.func.vjp(call.func, x))
    (block,) = torch.func.vmap(vjp_fn)(one_hots(start, stop, 0, output.shape, output))
    not_transformed("func", in_transform(block), "jacobian_sparsity", *_PATTERN_ELSEWHERE)
    row, col = (block.reshape(stop - start, -1) != 0).nonzero().unbind(1)
    return (row + start) * n + col

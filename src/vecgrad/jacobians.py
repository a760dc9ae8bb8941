"""Full Jacobians, and per-sample Jacobians of functions that act row by row on a batch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, cast, get_args, overload

import torch
from torch import Tensor

from vecgrad._api import (
    AnyFunc,
    AuxFunc,
    AuxFuncs,
    BatchStrategy,
    Call,
    Func,
    Funcs,
    Strategy,
    public,
)
from vecgrad._basis import cat, offsets, one_hots, spans, zeros
from vecgrad._checks import (
    BadValue,
    Outputs,
    check_choice,
    check_chunk_size,
    common_batch_size,
    rowwise,
)
from vecgrad._compat import ensure_forward_ad
from vecgrad._memory import in_transform

_STRATEGIES = get_args(Strategy)
# batch_jacobian's 'auto' takes forward mode only when an output row has more than this many times
# the elements of an input row (see its Notes).
_BATCH_FORWARD_RATIO = 2
# From this many input elements, jacobian's 'auto' learns the output's shape from an evaluation
# that reverse mode reuses; below it, from a plain one (see _jacobian).
_REUSED_PROBE_INPUTS = 64

VjpFn = Callable[[Tensor], tuple[Tensor, ...]]
# The VJP of a function of several outputs: a tuple of cotangents, one per output.
VjpFns = Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]
# func as the Jacobian code calls it (Call.outputs): its outputs as a tuple, and its aux.
OutputsFn = Callable[..., Outputs]
# Jacobian blocks [i][j]: output i, input j.
Blocks = tuple[tuple[Tensor, ...], ...]
T = TypeVar("T")


def _rows(x: Tensor, batch: int | None) -> torch.Size:
    """Shape of what one Jacobian block is taken of: all of ``x``, or one row of a batch."""
    return x.shape if batch is None else x.shape[1:]


def _forward_wins(
    out_shape: Sequence[int], in_shapes: Sequence[Sequence[int]], batch: int | None
) -> bool:
    """The rule of ``strategy='auto'``: whether forward mode beats reverse mode.

    A pure function of shapes, so every call with the same shapes makes the same choice.
    Reverse mode costs one VJP per output element ``m``, forward mode one JVP per input element
    ``n``: forward mode wins when ``m > n``. For per-sample Jacobians (``batch``), ``m`` and
    ``n`` count one row, and forward mode needs ``m > 2 n`` as a vectorised JVP on a batch costs
    up to about twice a vectorised VJP (measured by the batch Jacobian grid of
    ``benchmarks/vgbench/batched.py``; figures in :func:`batch_jacobian`'s Notes).
    """
    ratio = 1 if batch is None else _BATCH_FORWARD_RATIO
    return math.prod(out_shape) > ratio * sum(math.prod(s) for s in in_shapes)


def _promoted(block: Tensor, out_dtype: torch.dtype, x: Tensor) -> Tensor:
    """``block`` in the dtype every strategy returns: the promotion of the output's and input's.

    Reverse mode computes in the input's dtype and forward mode in the output's; promoting
    both makes the strategies agree and loses nothing of either.
    """
    return block.to(torch.promote_types(out_dtype, x.dtype))


def _reverse(
    outputs: tuple[Tensor, ...],
    vjp_fn: VjpFns,
    xs: tuple[Tensor, ...],
    chunk_size: int | None,
    batch: int | None,
) -> Blocks:
    """Rows of the Jacobian: vectorised VJPs with one-hot cotangents (what jacrev does).

    The rows run over the elements of all outputs, flattened and concatenated, so that one
    vectorised VJP serves every output; block ``[i][j]`` is the rows of output ``i``, cut to
    input ``j``. With ``batch``, the rows of per-sample Jacobians: cotangent ``k`` is the one-hot
    ``e_k`` of an output row repeated in every row; as row ``b`` of the output depends only on
    row ``b`` of the inputs, row ``b`` of its VJP is row ``k`` of sample ``b``'s Jacobian.
    """
    rows, shapes = [_rows(o, batch) for o in outputs], [_rows(x, batch) for x in xs]
    sizes = [math.prod(row) for row in rows]
    if sum(sizes) == 0:
        return _zero_blocks(outputs, xs, batch)
    starts = offsets(sizes)
    pieces = [
        torch.func.vmap(vjp_fn)(
            tuple(
                one_hots(start, stop, off, row, o, batch)
                for off, row, o in zip(starts, rows, outputs, strict=True)
            )
        )
        for start, stop in spans(sum(sizes), chunk_size)
    ]
    # pieces[c][j] has shape (rows in chunk c, [batch,] *shapes[j]).
    per_input = [cat(chunks) for chunks in zip(*pieces, strict=True)]
    return tuple(
        tuple(
            _promoted(_batch_first(r[off : off + size], batch).reshape(o.shape + shape), o.dtype, x)
            for r, shape, x in zip(per_input, shapes, xs, strict=True)
        )
        for o, off, size in zip(outputs, starts, sizes, strict=True)
    )


def _batch_first(rows: Tensor, batch: int | None) -> Tensor:
    """Rows ``(k, batch, ...)`` of per-sample Jacobians as ``(batch, k, ...)`` (a view)."""
    return rows if batch is None else rows.movedim(0, 1)


def _zero_blocks(outputs: tuple[Tensor, ...], xs: tuple[Tensor, ...], batch: int | None) -> Blocks:
    """The Jacobian where there is nothing to differentiate: zeros of the result's shapes."""
    return tuple(
        tuple(_promoted(zeros(o, o.shape, _rows(x, batch)), o.dtype, x) for x in xs)
        for o in outputs
    )


def _forward(
    func: OutputsFn, xs: tuple[Tensor, ...], chunk_size: int | None, batch: int | None
) -> tuple[Blocks, tuple[Tensor, ...]]:
    """Columns of the Jacobian: vectorised JVPs with one-hot tangents (what jacfwd does).

    The columns run over the elements of all inputs, flattened and concatenated; block
    ``[i][j]`` is the columns of input ``j`` in output ``i``. With ``batch``, the columns of
    per-sample Jacobians: tangent ``j`` is the one-hot ``e_j`` of an input row repeated in every
    row, so one JVP gives column ``j`` for all samples. Random operations in ``func`` draw once
    for all columns (``randomness='same'``), as reverse mode's single evaluation does for all
    rows. ``func``'s aux is taken from its first evaluation: it cannot depend on the tangents,
    which alone are batched, so it is an ordinary tensor outside the vmap.
    """
    ensure_forward_ad()
    shapes = [_rows(x, batch) for x in xs]
    sizes = [math.prod(shape) for shape in shapes]
    n = sum(sizes)
    if n == 0:
        outputs, aux = func(*xs)
        return _zero_blocks(outputs, xs, batch), aux
    starts = offsets(sizes)
    auxes: list[tuple[Tensor, ...]] = []

    def column(*tangents: Tensor) -> tuple[Tensor, ...]:
        _, tangents_out, aux = cast(
            "tuple[object, tuple[Tensor, ...], tuple[Tensor, ...]]",
            torch.func.jvp(func, xs, tangents, has_aux=True),
        )
        auxes.append(aux)
        return tangents_out

    pieces = [
        torch.func.vmap(column, randomness="same")(
            *(
                one_hots(start, stop, off, shape, x, batch)
                for off, shape, x in zip(starts, shapes, xs, strict=True)
            )
        )
        for start, stop in spans(n, chunk_size)
    ]
    # pieces[c][i] has shape (columns in chunk c, *outputs[i].shape), in output i's dtype.
    blocks = tuple(
        tuple(
            _promoted(
                columns[off : off + size].movedim(0, -1).reshape(columns.shape[1:] + shape),
                columns.dtype,
                x,
            )
            for shape, off, size, x in zip(shapes, starts, sizes, xs, strict=True)
        )
        for columns in (cat(chunks) for chunks in zip(*pieces, strict=True))
    )
    return blocks, auxes[0]


def _loop(func: OutputsFn, xs: tuple[Tensor, ...]) -> tuple[Blocks, tuple[Tensor, ...]]:
    """Rows of the Jacobian one at a time: one :func:`torch.autograd.grad` per output element.

    Plain autograd, for functions that torch.func cannot transform. Under
    :func:`torch.inference_mode` it still records a graph, on normal copies of inference
    tensors. When grad mode is on and the inputs or what ``func`` closes over require grad,
    the rows are built with ``create_graph=True``, so that they carry the graph as the other
    strategies' results do; otherwise the tensors of ``func``'s aux are detached from the
    private leaves, as torch.func gives them (``aux`` holds the tensors of the caller's aux).
    """
    outer_grad = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    with torch.inference_mode(False), torch.enable_grad():
        # The caller's tensors themselves where they require grad (the rows' graph then
        # reaches them), else private leaves.
        leaves = tuple(
            x
            if x.requires_grad and outer_grad
            else (x.clone() if x.is_inference() else x.detach()).requires_grad_(True)
            for x in xs
        )
        outputs, aux = func(*leaves)
        # A graph for the caller: some input requires grad, or a tensor func closes over does
        # (an output then depends on more than the private leaves).
        create_graph = outer_grad and (
            any(x.requires_grad for x in xs) or any(_depends_on_more(o, leaves) for o in outputs)
        )
        if not create_graph:
            aux = tuple(t.detach() for t in aux)
        todo = [(i, k) for i, o in enumerate(outputs) if o.requires_grad for k in range(o.numel())]
        rows: list[list[list[Tensor]]] = [[[] for _ in xs] for _ in outputs]
        for i, k in todo:
            one_hot = one_hots(k, k + 1, 0, outputs[i].shape, outputs[i])[0]
            grads = torch.autograd.grad(
                outputs[i],
                leaves,
                one_hot,
                retain_graph=create_graph or (i, k) != todo[-1],
                create_graph=create_graph,
                allow_unused=True,
            )
            for acc, g, x in zip(rows[i], grads, xs, strict=True):
                acc.append(zeros(x, x.shape) if g is None else g)
    blocks = tuple(
        tuple(
            _promoted(
                torch.stack(r).reshape(o.shape + x.shape) if r else zeros(o, o.shape, x.shape),
                o.dtype,
                x,
            )
            for r, x in zip(row, xs, strict=True)
        )
        for row, o in zip(rows, outputs, strict=True)
    )
    return blocks, aux


def _depends_on_more(output: Tensor, leaves: tuple[Tensor, ...]) -> bool:
    """Whether ``output``'s graph reaches a tensor that requires grad other than ``leaves``."""
    mine = {id(leaf) for leaf in leaves}
    seen, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # an AccumulateGrad node holds its leaf
        if variable is not None and id(variable) not in mine:
            return True
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False


def _random_state(xs: tuple[Tensor, ...]) -> Callable[[], None]:
    """Save the generators ``func`` may draw from (the CPU's, and each CUDA device's of ``xs``).

    The returned function puts them back, so that an evaluation made only to learn a shape
    leaves random operations (dropout) to draw what the chosen strategy alone would draw.
    """
    cpu = torch.get_rng_state()
    cuda = {x.device: torch.cuda.get_rng_state(x.device) for x in xs if x.device.type == "cuda"}

    def restore() -> None:
        torch.set_rng_state(cpu)
        for device, state in cuda.items():
            torch.cuda.set_rng_state(state, device)

    return restore


def _probe(func: Callable[..., T], xs: tuple[Tensor, ...]) -> T:
    """``func(*xs)`` for its shape alone: a plain evaluation, no graph, the random state kept."""
    restore = _random_state(xs)
    with torch.no_grad():
        output = func(*xs)
    restore()
    return output


def _vjp(
    func: OutputsFn, xs: tuple[Tensor, ...]
) -> tuple[tuple[Tensor, ...], VjpFns, tuple[Tensor, ...]]:
    """:func:`torch.func.vjp` of ``func``: its outputs, their VJP and the tensors of its aux."""
    return cast(
        "tuple[tuple[Tensor, ...], VjpFns, tuple[Tensor, ...]]",
        torch.func.vjp(func, *xs, has_aux=True),
    )


def _jacobian(
    func: OutputsFn,
    xs: tuple[Tensor, ...],
    strategy: str,
    chunk_size: int | None,
    batch: int | None,
) -> tuple[Blocks, tuple[Tensor, ...]]:
    """The vectorised strategies of :func:`jacobian` and :func:`batch_jacobian`.

    ``'auto'`` must evaluate ``func`` to learn the outputs' shapes before :func:`_forward_wins`
    can decide. With many input elements, or a batch (whose whole evaluation dwarfs the
    transform's fixed cost), the evaluation is made under :func:`torch.func.vjp`, so that
    reverse mode reuses it. With few input elements forward mode (a handful of JVPs) is cheap,
    and a plain evaluation under ``no_grad``, several times cheaper than one under the
    transform, costs it less. Either way the random state is restored before another
    evaluation. The outputs count together: their elements are the rows of one Jacobian.
    """
    in_shapes = [_rows(x, batch) for x in xs]

    def forward_wins(outputs: tuple[Tensor, ...]) -> bool:
        rows = sum(math.prod(_rows(o, batch)) for o in outputs)
        return _forward_wins((rows,), in_shapes, batch)

    if strategy == "auto":
        if batch is not None or sum(math.prod(s) for s in in_shapes) >= _REUSED_PROBE_INPUTS:
            restore = _random_state(xs)
            outputs, vjp_fn, aux = _vjp(func, xs)
            if not forward_wins(outputs):
                return _reverse(outputs, vjp_fn, xs, chunk_size, batch), aux
            restore()
            return _forward(func, xs, chunk_size, batch)
        strategy = "forward" if forward_wins(_probe(func, xs)[0]) else "reverse"
    if strategy == "forward":
        return _forward(func, xs, chunk_size, batch)
    outputs, vjp_fn, aux = _vjp(func, xs)
    return _reverse(outputs, vjp_fn, xs, chunk_size, batch), aux


@overload
def jacobian(
    func: Func,
    inputs: Tensor,
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> Tensor: ...
@overload
def jacobian(
    func: Func,
    inputs: tuple[Tensor, ...],
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> tuple[Tensor, ...]: ...
@overload
def jacobian(
    func: Funcs,
    inputs: Tensor,
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> tuple[Tensor, ...]: ...
@overload
def jacobian(
    func: Funcs,
    inputs: tuple[Tensor, ...],
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> tuple[tuple[Tensor, ...], ...]: ...
@overload
def jacobian(
    func: AuxFunc,
    inputs: Tensor,
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[Tensor, Any]: ...
@overload
def jacobian(
    func: AuxFunc,
    inputs: tuple[Tensor, ...],
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[tuple[Tensor, ...], Any]: ...
@overload
def jacobian(
    func: AuxFuncs,
    inputs: Tensor,
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[tuple[Tensor, ...], Any]: ...
@overload
def jacobian(
    func: AuxFuncs,
    inputs: tuple[Tensor, ...],
    *,
    strategy: Strategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[tuple[tuple[Tensor, ...], ...], Any]: ...


@public
def jacobian(
    func: AnyFunc,
    inputs: Tensor | tuple[Tensor, ...],
    *,
    strategy: Strategy = "auto",
    chunk_size: int | None = None,
    has_aux: bool = False,
) -> Tensor | tuple[Any, ...]:
    r"""Full Jacobian of ``func`` at ``inputs``.

    Parameters
    ----------
    %(func_outputs)s
    %(inputs)s
    strategy : {'auto', 'reverse', 'forward', 'loop'}, optional
        ``'reverse'`` builds the Jacobian row by row from vectorised vector-Jacobian
        products (one per output element, like :func:`torch.func.jacrev`); ``'forward'``
        column by column from vectorised Jacobian-vector products (one per input element, like
        :func:`torch.func.jacfwd`); ``'loop'`` calls :func:`torch.autograd.grad` once per
        output element with a one-hot ``grad_outputs`` (slow, kept as the reference method and
        for functions that torch.func cannot transform; for that reason it cannot run inside a
        torch.func transform). ``'auto'`` (default) uses ``'reverse'`` when the outputs have no
        more elements than the inputs together, else ``'forward'``. All give the same values,
        structure and dtype.
    chunk_size : int, optional
        Largest number of rows (``'reverse'``) or columns (``'forward'``) computed at once, to
        bound memory; by default all at once. Not accepted with ``'loop'``, which computes one
        row at a time anyway.
    %(has_aux)s

    Returns
    -------
    Tensor, tuple of Tensor or tuple of tuple of Tensor
        ``J`` with ``J.shape == output.shape + input.shape``. Nested like
        :func:`torch.func.jacrev`'s result, output first, then input: for tuple inputs a tuple
        with one such Tensor per input; for a tuple of outputs a tuple with one entry per output;
        for both, ``J[i][j]`` is the block of output ``i`` and input ``j``. Each block's dtype is
        the promotion of its output's and its input's (:func:`torch.promote_types`).
        Differentiable with respect to ``inputs`` and the tensors ``func`` closes over, like
        :func:`torch.func.jacrev`'s (see :ref:`differentiable`). With ``has_aux=True``, the
        pair ``(J, aux)``.

    Raises
    ------
    TypeError
        %(bad_outputs)s, if
        ``strategy`` is not a string or ``chunk_size`` not an int; or if ``func`` calls a
        custom :class:`torch.autograd.Function` that lacks what the strategy needs (a ``jvp``
        for forward mode, a vmap rule, or ``setup_context`` for any vectorised strategy).
    ValueError
        If ``inputs`` is an empty tuple or ``func`` returns one, %(meta)s, ``strategy`` is
        unknown, ``chunk_size < 1``, or ``chunk_size`` is given with ``strategy='loop'``; or
        if ``strategy`` is ``'loop'`` inside a torch.func transform (or another vecgrad
        function), where :func:`torch.autograd.grad` cannot run.

    Notes
    -----
    For :math:`f:\mathbb{R}^n\to\mathbb{R}^m`, :math:`J_{ij} = \partial f_i/\partial x_j`.
    Row :math:`i` is the VJP :math:`e_i^\top J` and column :math:`j` the JVP :math:`J e_j`, so
    reverse mode needs :math:`m` VJPs and forward mode :math:`n` JVPs, each vectorised with
    :func:`torch.func.vmap`. ``'auto'`` picks reverse mode when :math:`m \le n` and forward
    mode otherwise, where :math:`n` counts the elements of all inputs: a rule on shapes alone,
    so the choice is the same on every call with the same shapes, whatever ``func`` is. As
    :math:`m` is only known once ``func`` has run, ``'auto'`` first evaluates ``func``: with 64
    or more input elements under :func:`torch.func.vjp`, an evaluation that reverse mode then
    reuses; with fewer, where forward mode is cheap, as a plain evaluation under
    :class:`torch.no_grad`. It restores the random-number state before evaluating again, so it
    gives exactly what the strategy it picks gives. Random operations draw once for all rows or
    columns.
    Forward mode ignores :class:`torch.no_grad` inside ``func``, as PyTorch's forward-mode AD
    does, where reverse mode holds what it computes constant; use ``.detach()`` there to hold a
    value constant in every mode (see :ref:`differentiable`).
    With several outputs, :math:`m` counts the elements of all outputs: they are the rows of
    one Jacobian, computed by one vectorised call and cut into the blocks ``J[i][j]``.

    See Also
    --------
    batch_jacobian : Per-sample Jacobians of a function applied row-wise to a batch.
    numerical_jacobian : Central finite differences, to check a Jacobian.
    torch.func.jacrev, torch.func.jacfwd : The transforms this mirrors.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([0.0, 1.0, 2.0])
    >>> J = vg.jacobian(torch.sin, x)
    >>> torch.allclose(J, torch.diag(torch.cos(x)))
    True

    Two outputs and two inputs give the blocks ``J[i][j]``:

    >>> J = vg.jacobian(lambda a, b: (a * b, a.sum()), (x, torch.ones(3)))
    >>> [[tuple(block.shape) for block in row] for row in J]
    [[(3, 3), (3, 3)], [(3,), (3,)]]
    """
    call = Call(func, inputs, has_aux)
    strategy = check_choice("strategy", strategy, _STRATEGIES)
    chunk_size = check_chunk_size(chunk_size)
    if strategy == "loop" and chunk_size is not None:
        raise BadValue(
            "`chunk_size` must be None with strategy='loop', which computes one row at a "
            f"time; got {chunk_size}."
        )
    if strategy == "loop":
        if any(in_transform(x) for x in call.xs):
            raise BadValue(
                "`strategy` must not be 'loop' inside torch.func transforms (vmap, grad, "
                "jacrev, ...) or another vecgrad function: the loop calls "
                "torch.autograd.grad, which does not run there; got 'loop' on transformed "
                "inputs. Use strategy='reverse' or 'forward'."
            )
        blocks, aux = _loop(call.outputs, call.xs)
    else:
        blocks, aux = _jacobian(call.outputs, call.xs, strategy, chunk_size, None)
    jac = call.restore_blocks(blocks)
    return (jac, call.aux(aux)) if call.has_aux else jac


@overload
def batch_jacobian(
    func: Func,
    inputs: Tensor,
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> Tensor: ...
@overload
def batch_jacobian(
    func: Func,
    inputs: tuple[Tensor, ...],
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> tuple[Tensor, ...]: ...
@overload
def batch_jacobian(
    func: Funcs,
    inputs: Tensor,
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> tuple[Tensor, ...]: ...
@overload
def batch_jacobian(
    func: Funcs,
    inputs: tuple[Tensor, ...],
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[False] = ...,
) -> tuple[tuple[Tensor, ...], ...]: ...
@overload
def batch_jacobian(
    func: AuxFunc,
    inputs: Tensor,
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[Tensor, Any]: ...
@overload
def batch_jacobian(
    func: AuxFunc,
    inputs: tuple[Tensor, ...],
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[tuple[Tensor, ...], Any]: ...
@overload
def batch_jacobian(
    func: AuxFuncs,
    inputs: Tensor,
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[tuple[Tensor, ...], Any]: ...
@overload
def batch_jacobian(
    func: AuxFuncs,
    inputs: tuple[Tensor, ...],
    *,
    strategy: BatchStrategy = ...,
    chunk_size: int | None = ...,
    has_aux: Literal[True],
) -> tuple[tuple[tuple[Tensor, ...], ...], Any]: ...


@public
def batch_jacobian(
    func: AnyFunc,
    inputs: Tensor | tuple[Tensor, ...],
    *,
    strategy: BatchStrategy = "auto",
    chunk_size: int | None = None,
    has_aux: bool = False,
) -> Tensor | tuple[Any, ...]:
    r"""Per-sample Jacobians of a function that maps a batch row by row.

    Parameters
    ----------
    func : callable
        Function of a batch: row ``b`` of its output must depend only on row ``b`` of every
        input (an ``nn.Module`` without batch normalisation in training mode, for example).
        It returns a Tensor, or a tuple of Tensors each with the batch as first dimension (with
        ``has_aux=True``, a pair ``(output, aux)``). Called as ``func(inputs)`` for a Tensor
        and ``func(*inputs)`` for a tuple. The
        row-wise assumption is not checked; if rows interact, the result is wrong.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Batch of points, each with the same leading batch size ``N``; real floating-point.
        A tuple, not a list, for several inputs.
    strategy : {'auto', 'reverse', 'forward'}, optional
        ``'reverse'`` uses one vectorised VJP per element of an output row, ``'forward'`` one
        vectorised JVP per element of an input row (all inputs together); ``'auto'`` (default)
        uses ``'forward'`` only when an output row has more than twice as many elements as an
        input row (summed over the inputs), else ``'reverse'``.
    chunk_size : int, optional
        Largest number of VJPs (``'reverse'``) or JVPs (``'forward'``) computed at once, to
        bound memory; by default all at once.
    %(has_aux)s

    Returns
    -------
    Tensor, tuple of Tensor or tuple of tuple of Tensor
        Shape ``(N, *out_row, *in_row)`` where ``output.shape == (N, *out_row)`` and
        ``input.shape == (N, *in_row)``; ``J[b]`` is the Jacobian of row ``b``. Nested as
        :func:`jacobian`'s result for tuple inputs and several outputs (``J[i][j]``: output
        ``i``, input ``j``). The dtype and the differentiability are those of
        :func:`jacobian`'s result (see :ref:`differentiable`). With ``has_aux=True``, the pair
        ``(J, aux)``.

    Raises
    ------
    TypeError
        %(bad_outputs)s, if
        ``strategy`` is not a string or ``chunk_size`` not an int; or if ``func`` calls a
        custom :class:`torch.autograd.Function` that lacks what the strategy needs (a ``jvp``
        for forward mode, a vmap rule, ``setup_context``).
    ValueError
        If ``inputs`` is an empty tuple or holds a 0-dim Tensor or Tensors of different batch
        sizes, ``func`` returns an empty tuple, %(meta)s, the first dimension of an output of
        ``func`` is not the batch size,
        ``strategy`` is unknown or ``chunk_size < 1``.

    Notes
    -----
    Because output row :math:`b` depends only on input row :math:`b`, the Jacobian of
    :math:`x \mapsto \sum_b f(x)_b` with respect to the batch holds every per-sample Jacobian:
    its block for sample :math:`b` is :math:`\partial f(x)_b / \partial x_b`. Reverse mode
    therefore needs one VJP per element of an output row (cotangent :math:`e_k` repeated in
    every row) and forward mode one JVP per element of an input row (tangent :math:`e_j`
    repeated in every row). The work is that of ``out_row`` backward passes (or ``in_row``
    forward passes) through the batch, vectorised into one call, rather than ``N`` times as
    many for a loop over samples. ``'auto'`` learns the output row's size from an evaluation of
    ``func`` under :func:`torch.func.vjp` that reverse mode reuses (so ``func`` runs once more
    only when forward mode wins), and so makes the same choice on every call with the same
    shapes. Its threshold is twice, not once, the input row's size because on batches a
    vectorised JVP costs up to about twice a vectorised VJP. The batch Jacobian grid of
    ``benchmarks/vgbench/batched.py`` (rows of a tanh MLP of hidden width 64, ``n_in`` = 2, 4, 8,
    32 and ``n_out`` = 1 to 4 times ``n_in``, float32, one thread of a busy two-core CPU, two
    runs) measured forward / reverse times of 1.35 to 2.46 at ``n_out = n_in`` (13 of 16 rows);
    at ``n_out = 2 n_in``, 0.46 to 1.19 for ``N = 4096`` (about even) and 1.05 to 1.61 for
    ``N = 256`` (reverse faster); at ``n_out = 3 n_in``, 0.44 to 0.83 for ``N = 4096`` (forward
    faster) and 0.64 to 1.78 for ``N = 256``. Where forward mode is picked, the extra evaluation
    made ``'auto'`` slower than ``'forward'``: up to about 1.5 times for ``N = 4096`` and 2 times
    for ``N = 256``.
    Forward mode ignores :class:`torch.no_grad` inside ``func``, as PyTorch's forward-mode AD
    does, where reverse mode holds what it computes constant; use ``.detach()`` there to hold a
    value constant in every mode (see :ref:`differentiable`).

    See Also
    --------
    jacobian : Jacobian of an arbitrary function.
    per_sample_grads : Per-sample gradients of a model's loss with respect to its parameters.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> vg.batch_jacobian(lambda t: t**2, x)
    tensor([[[2., 0.],
             [0., 4.]],
    <BLANKLINE>
            [[6., 0.],
             [0., 8.]]])
    """
    call = Call(func, inputs, has_aux)
    strategy = check_choice("strategy", strategy, get_args(BatchStrategy))
    chunk_size = check_chunk_size(chunk_size)
    batch = common_batch_size([(call.name("inputs", i), x) for i, x in enumerate(call.xs)])
    blocks, aux = _jacobian(rowwise(call.outputs, batch), call.xs, strategy, chunk_size, batch)
    jac = call.restore_blocks(blocks)
    return (jac, call.aux(aux)) if call.has_aux else jac

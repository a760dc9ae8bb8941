"""Full Jacobians, and per-sample Jacobians of functions that act row by row on a batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast, overload

import torch
from torch import Tensor

from vecgrad._auto import known_size, remember_size
from vecgrad._basis import basis_block, cat, offsets, spans, zero_blocks
from vecgrad._checks import (
    Func,
    TensorOrTensors,
    check_callable,
    check_chunk_size,
    check_output,
    check_strategy,
    checked,
    error,
    fmt_shape,
    item_name,
    numel,
    prepare_inputs,
    restore,
    unshared,
)
from vecgrad._compat import ensure_forward_ad

_STRATEGIES = ("auto", "reverse", "forward", "loop")
_BATCH_STRATEGIES = ("auto", "reverse", "forward")
# batch_jacobian's 'auto' takes forward mode only when an output row has more than this many times
# the elements of an input row (see its Notes).
_FORWARD_RATIO = 2

VjpFn = Callable[[Tensor], tuple[Tensor, ...]]


def _reverse(
    output: Tensor, vjp_fn: VjpFn, xs: tuple[Tensor, ...], chunk_size: int | None
) -> tuple[Tensor, ...]:
    """Rows of the Jacobian: vectorised VJPs with one-hot cotangents (what jacrev does)."""
    m = output.numel()
    if m == 0:
        return zero_blocks(output.shape, [x.shape for x in xs], output)
    pieces = []
    for start, stop in spans(m, chunk_size):
        basis = basis_block(start, stop, 0, m, output).view(stop - start, *output.shape)
        pieces.append(torch.func.vmap(vjp_fn)(basis))
    # pieces[c][i] has shape (rows in chunk c, *xs[i].shape)
    # unshared(): the reshape can return a view with stride 0 (e.g. of the identity's VJPs).
    return tuple(
        unshared(cat(rows).reshape(output.shape + x.shape))
        for rows, x in zip(zip(*pieces, strict=True), xs, strict=True)
    )


def _forward(
    func: Func, xs: tuple[Tensor, ...], chunk_size: int | None, batch: int | None = None
) -> tuple[Tensor, ...]:
    """Columns of the Jacobian: vectorised JVPs with one-hot tangents (what jacfwd does).

    With ``batch``, the columns of per-sample Jacobians: tangent ``j`` is the one-hot ``e_j``
    of an input row repeated in every row, so one JVP gives column ``j`` for all samples.
    """
    ensure_forward_ad()
    shapes = [x.shape if batch is None else x.shape[1:] for x in xs]
    sizes = [numel(shape) for shape in shapes]
    n = sum(sizes)
    if n == 0:
        output = func(*xs)
        return zero_blocks(output.shape, shapes, output)
    starts = offsets(sizes)

    def column(*tangents: Tensor) -> Tensor:
        return cast(Tensor, torch.func.jvp(func, xs, tangents)[1])

    def tangent(start: int, stop: int, i: int) -> Tensor:
        block = basis_block(start, stop, starts[i], sizes[i], xs[i]).view(stop - start, *shapes[i])
        return (
            block if batch is None else block.unsqueeze(1).expand(stop - start, batch, *shapes[i])
        )

    pieces = [
        torch.func.vmap(column)(*(tangent(start, stop, i) for i in range(len(xs))))
        for start, stop in spans(n, chunk_size)
    ]
    columns = cat(pieces)  # (n, *output.shape)
    out_shape = columns.shape[1:]
    # unshared(): the reshape can return a view with stride 0 (e.g. of an expanded output).
    return tuple(
        unshared(columns[off : off + size].movedim(0, -1).reshape(out_shape + shape))
        for shape, off, size in zip(shapes, starts, sizes, strict=True)
    )


def _loop(func: Func, xs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Rows of the Jacobian one at a time: one backward pass per output element."""
    with torch.enable_grad():
        leaves = tuple(x.detach().requires_grad_(True) for x in xs)
        output = func(*leaves)
    m = output.numel()
    if m == 0 or not output.requires_grad:
        return zero_blocks(output.shape, [x.shape for x in xs], output)
    rows: list[list[Tensor]] = [[] for _ in xs]
    for k in range(m):
        one_hot = torch.zeros(m, dtype=output.dtype, device=output.device)
        one_hot[k] = 1
        grads = torch.autograd.grad(
            output, leaves, one_hot.view(output.shape), retain_graph=k < m - 1, allow_unused=True
        )
        for acc, g, x in zip(rows, grads, xs, strict=True):
            acc.append(torch.zeros_like(x) if g is None else g)
    return tuple(
        torch.stack(r).reshape(output.shape + x.shape) for r, x in zip(rows, xs, strict=True)
    )


def _known_wide(func: Func, kind: str, xs: tuple[Tensor, ...], in_size: int) -> bool:
    """Whether ``func`` is remembered to have more outputs than inputs: forward mode wins."""
    out_size = known_size(func, kind, xs)
    return out_size is not None and out_size > in_size


@overload
def jacobian(
    func: Func, inputs: Tensor, *, strategy: str = ..., chunk_size: int | None = ...
) -> Tensor: ...
@overload
def jacobian(
    func: Func, inputs: tuple[Tensor, ...], *, strategy: str = ..., chunk_size: int | None = ...
) -> tuple[Tensor, ...]: ...


def jacobian(
    func: Func,
    inputs: TensorOrTensors,
    *,
    strategy: str = "auto",
    chunk_size: int | None = None,
) -> TensorOrTensors:
    r"""Full Jacobian of ``func`` at ``inputs``.

    Parameters
    ----------
    func : callable
        Function returning a Tensor; called as ``func(inputs)`` for a Tensor and
        ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the Jacobian is taken; real floating-point dtypes. A
        tuple, not a list, for several inputs.
    strategy : {'auto', 'reverse', 'forward', 'loop'}, optional
        ``'reverse'`` builds the Jacobian row by row from vectorised vector-Jacobian
        products (one per output element, like :func:`torch.func.jacrev`); ``'forward'``
        column by column from vectorised Jacobian-vector products (one per input element, like
        :func:`torch.func.jacfwd`); ``'loop'`` calls :func:`torch.autograd.grad` once per
        output element with a one-hot ``grad_outputs`` (slow, kept as the reference method).
        ``'auto'`` (default) uses ``'reverse'`` when the output has no more elements than the
        inputs together, else ``'forward'``.
    chunk_size : int, optional
        Largest number of rows (``'reverse'``) or columns (``'forward'``) computed at once, to
        bound memory; by default all at once. Not accepted with ``'loop'``, which computes one
        row at a time anyway.

    Returns
    -------
    Tensor or tuple of Tensor
        ``J`` with ``J.shape == output.shape + input.shape``; for tuple inputs a tuple with one
        such Tensor per input. Detached from any graph.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, if
        ``inputs`` is not a Tensor or a tuple of Tensors of real floating-point dtype, if
        ``strategy`` is not a string or ``chunk_size`` not an int.
    ValueError
        If ``strategy`` is unknown, ``chunk_size < 1``, or ``chunk_size`` is given with
        ``strategy='loop'``.

    Notes
    -----
    For :math:`f:\mathbb{R}^n\to\mathbb{R}^m`, :math:`J_{ij} = \partial f_i/\partial x_j`.
    Row :math:`i` is the VJP :math:`e_i^\top J` and column :math:`j` the JVP :math:`J e_j`, so
    reverse mode needs :math:`m` VJPs and forward mode :math:`n` JVPs, each vectorised with
    :func:`torch.func.vmap`. ``'auto'`` picks reverse mode when :math:`m \le n` and forward
    mode otherwise, where :math:`n` counts the elements of all inputs. As :math:`m` is only
    known once ``func`` has run, ``'auto'`` (like ``'reverse'``) first evaluates ``func`` under
    :func:`torch.func.vjp` and reuses that evaluation for reverse mode. When forward mode wins,
    that evaluation is extra, so :math:`m` is remembered for this ``func`` object and these
    input shapes (without keeping ``func`` alive) and later calls go straight to forward mode.
    The memory only steers the choice, never the result.

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
    """
    check_callable("jacobian", "func", func)
    xs, is_tuple = prepare_inputs("jacobian", inputs)
    strategy = check_strategy("jacobian", strategy, _STRATEGIES)
    chunk_size = check_chunk_size("jacobian", chunk_size)
    if strategy == "loop" and chunk_size is not None:
        raise ValueError(
            error(
                "jacobian",
                "`chunk_size` must be None with strategy='loop', which computes one row at a "
                f"time; got {chunk_size}.",
            )
        )
    f = checked("jacobian", func)
    n = sum(x.numel() for x in xs)
    with torch.no_grad():
        if strategy == "loop":
            jac = _loop(f, xs)
        elif strategy == "forward" or (strategy == "auto" and _known_wide(func, "jacobian", xs, n)):
            jac = _forward(f, xs, chunk_size)
        else:
            output, vjp_fn = cast("tuple[Tensor, VjpFn]", torch.func.vjp(f, *xs))
            remember_size(func, "jacobian", xs, output.numel())
            if strategy == "auto" and output.numel() > n:
                jac = _forward(f, xs, chunk_size)
            else:
                jac = _reverse(output, vjp_fn, xs, chunk_size)
    return restore(jac, is_tuple)


def _check_batch(xs: tuple[Tensor, ...], is_tuple: bool) -> int:
    """Check that every input has a leading batch dimension of one common size; return it."""
    for i, x in enumerate(xs):
        if x.dim() == 0:
            raise ValueError(
                error(
                    "batch_jacobian",
                    f"`{item_name('inputs', i, is_tuple)}` must have a leading batch dimension; "
                    "got a 0-dim Tensor.",
                )
            )
    if any(x.shape[0] != xs[0].shape[0] for x in xs):
        shapes = ", ".join(fmt_shape(x.shape) for x in xs)
        raise ValueError(
            error(
                "batch_jacobian",
                f"every Tensor in `inputs` must have the same batch size (first dimension); "
                f"got shapes {shapes}.",
            )
        )
    return xs[0].shape[0]


def _batch_checked(func: Func, batch: int) -> Func:
    def wrapped(*args: Tensor) -> Tensor:
        output = check_output("batch_jacobian", func(*args))
        if output.dim() == 0 or output.shape[0] != batch:
            raise ValueError(
                error(
                    "batch_jacobian",
                    "`func` must return a Tensor whose first dimension is the batch size "
                    f"N = {batch}; got shape {fmt_shape(output.shape)}.",
                )
            )
        return output

    return wrapped


def _batch_reverse(
    output: Tensor, vjp_fn: VjpFn, xs: tuple[Tensor, ...], batch: int
) -> tuple[Tensor, ...]:
    row_shape = output.shape[1:]
    m = numel(row_shape)
    if m == 0:
        return zero_blocks(output.shape, [x.shape[1:] for x in xs], output)
    # Cotangent k is the one-hot e_k in every row at once: since row b of the output depends
    # only on row b of the inputs, row b of the VJP is row k of sample b's Jacobian.
    basis = torch.eye(m, dtype=output.dtype, device=output.device)
    basis = basis.view(m, 1, *row_shape).expand(m, batch, *row_shape)
    grads = torch.func.vmap(vjp_fn)(basis)  # each (m, N, *x.shape[1:])
    # unshared(): the VJPs of e.g. t + 1 are the expanded basis itself, with stride 0. The
    # movedim is a view: like jacrev, the blocks are returned without a copy when possible.
    return tuple(
        unshared(g.movedim(0, 1).reshape(output.shape + x.shape[1:]))
        for g, x in zip(grads, xs, strict=True)
    )


@overload
def batch_jacobian(func: Func, inputs: Tensor, *, strategy: str = ...) -> Tensor: ...
@overload
def batch_jacobian(
    func: Func, inputs: tuple[Tensor, ...], *, strategy: str = ...
) -> tuple[Tensor, ...]: ...


def batch_jacobian(
    func: Func, inputs: TensorOrTensors, *, strategy: str = "auto"
) -> TensorOrTensors:
    r"""Per-sample Jacobians of a function that maps a batch row by row.

    Parameters
    ----------
    func : callable
        Function of a batch: row ``b`` of its output must depend only on row ``b`` of every
        input (an ``nn.Module`` without batch normalisation in training mode, for example).
        Called as ``func(inputs)`` for a Tensor and ``func(*inputs)`` for a tuple. The
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

    Returns
    -------
    Tensor or tuple of Tensor
        Shape ``(N, *out_row, *in_row)`` where ``output.shape == (N, *out_row)`` and
        ``input.shape == (N, *in_row)``; ``J[b]`` is the Jacobian of row ``b``. A tuple with one
        Tensor per input for tuple inputs. Detached from any graph.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, if
        ``inputs`` is not a Tensor or a tuple of Tensors of real floating-point dtype, or if
        ``strategy`` is not a string.
    ValueError
        If ``strategy`` is unknown, an input is 0-dim, the inputs' batch sizes differ, or the
        output's first dimension is not the batch size.

    Notes
    -----
    Because output row :math:`b` depends only on input row :math:`b`, the Jacobian of
    :math:`x \mapsto \sum_b f(x)_b` with respect to the batch holds every per-sample Jacobian:
    its block for sample :math:`b` is :math:`\partial f(x)_b / \partial x_b`. Reverse mode
    therefore needs one VJP per element of an output row (cotangent :math:`e_k` repeated in
    every row) and forward mode one JVP per element of an input row (tangent :math:`e_j`
    repeated in every row). The work is that of ``out_row`` backward passes (or ``in_row``
    forward passes) through the batch, vectorised into one call, rather than ``N`` times as
    many for a loop over samples. ``'auto'`` learns the output size as
    :func:`jacobian` does: from an evaluation under :func:`torch.func.vjp` that reverse mode
    reuses, remembered per ``func`` object and input shapes. Its threshold is twice, not once,
    the input row's size because on batches a vectorised JVP was measured to cost up to about
    twice a vectorised VJP (``benchmarks/bench.py``: for MLP rows of 4 -> 5 and 8 -> 9 elements
    reverse mode was 1.4 and 1.9 times faster, and the two were even at 2 -> 4).

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
    check_callable("batch_jacobian", "func", func)
    xs, is_tuple = prepare_inputs("batch_jacobian", inputs)
    strategy = check_strategy("batch_jacobian", strategy, _BATCH_STRATEGIES)
    batch = _check_batch(xs, is_tuple)
    f = _batch_checked(func, batch)
    in_row = sum(numel(x.shape[1:]) for x in xs)
    with torch.no_grad():
        if strategy == "forward" or (
            strategy == "auto" and _known_wide(func, "batch_jacobian", xs, _FORWARD_RATIO * in_row)
        ):
            jac = _forward(f, xs, None, batch)
        else:
            output, vjp_fn = cast("tuple[Tensor, VjpFn]", torch.func.vjp(f, *xs))
            out_row = numel(output.shape[1:])
            remember_size(func, "batch_jacobian", xs, out_row)
            if strategy == "auto" and out_row > _FORWARD_RATIO * in_row:
                jac = _forward(f, xs, None, batch)
            else:
                jac = _batch_reverse(output, vjp_fn, xs, batch)
    return restore(jac, is_tuple)

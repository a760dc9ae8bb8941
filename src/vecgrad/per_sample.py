"""Per-sample gradients: of a vector of losses already computed, or of a model's loss."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import cast, overload

import torch
from torch import Tensor, nn

from vecgrad._api import NamedParams, public
from vecgrad._arguments import (
    BadType,
    BadValue,
    check_bool,
    check_callable,
    check_chunk_size,
    check_real_floating,
    check_tensor,
    fmt_shape,
    scalar_output,
)
from vecgrad._basis import cat, one_hots, spans, zeros
from vecgrad._models import check_model, samples, split, trainable_params


def _losses(losses: object) -> Tensor:
    """Check that ``losses`` is a non-empty 1-D floating-point Tensor attached to a graph."""
    losses = check_tensor("losses", losses)
    if losses.dim() != 1 or losses.numel() == 0:
        raise BadValue(
            "`losses` must be a non-empty 1-D Tensor, one loss per sample; "
            f"got shape {fmt_shape(losses.shape)}."
        )
    check_real_floating("losses", losses)
    if not losses.requires_grad:
        raise BadValue(
            "`losses` must be attached to an autograd graph (computed from tensors that "
            "require grad, outside torch.no_grad()); got a Tensor with requires_grad=False."
        )
    return losses


def _params(params: object) -> tuple[dict[str, Tensor], bool]:
    """The tensors to differentiate by name, and whether ``params`` has the deprecated form.

    The deprecated form, a Tensor or an iterable of Tensors, is keyed ``'0'``, ``'1'``, ...
    """
    if isinstance(params, nn.Module):
        items: list[tuple[object, object]] = list(trainable_params(params).items())
    elif isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, Tensor):
        items = [(0, params)]
    elif isinstance(params, Iterable):
        items = list(params)
        pairs = all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in items)
        items = items if pairs and items else list(enumerate(items))
    else:
        raise BadType(
            "`params` must be an nn.Module, a mapping name -> Tensor or an iterable of "
            f"(name, Tensor) pairs; got {type(params).__name__}."
        )
    if not items:
        raise BadValue("`params` must contain at least one Tensor; got none.")
    named = {}
    for key, value in items:
        label = f"params[{key!r}]"
        tensor = named[str(key)] = check_tensor(label, value)
        if not tensor.requires_grad:
            raise BadValue(
                f"`{label}` must require grad; got a Tensor of shape {fmt_shape(tensor.shape)} "
                "with requires_grad=False."
            )
    return named, isinstance(items[0][0], int)


@overload
def loss_jacobian(
    losses: Tensor,
    params: NamedParams,
    *,
    chunk_size: int | None = ...,
    retain_graph: bool = ...,
) -> dict[str, Tensor]: ...
@overload
def loss_jacobian(
    losses: Tensor,
    params: Tensor | Iterable[Tensor],
    *,
    chunk_size: int | None = ...,
    retain_graph: bool = ...,
) -> tuple[Tensor, ...]: ...


@public
def loss_jacobian(
    losses: Tensor,
    params: NamedParams | Tensor | Iterable[Tensor],
    *,
    chunk_size: int | None = None,
    retain_graph: bool = False,
) -> dict[str, Tensor] | tuple[Tensor, ...]:
    r"""Jacobian of a vector of losses with respect to parameters: per-sample gradients.

    Parameters
    ----------
    losses : Tensor
        Non-empty 1-D Tensor of ``N`` losses (e.g. a loss with ``reduction='none'``), already
        computed and attached to the autograd graph.
    params : torch.nn.Module, mapping or iterable
        The tensors to differentiate, by name: a module (its parameters that require grad), a
        mapping such as ``dict(model.named_parameters())``, or pairs such as
        ``model.named_parameters()`` (a generator is consumed once). Each must require grad.
        Deprecated: a Tensor or an iterable of Tensors, which gives a tuple and a
        DeprecationWarning.
    chunk_size : int, optional
        Largest number of losses differentiated at once; by default all ``N``. Memory grows
        with ``chunk_size`` times the memory of one backward pass.
    retain_graph : bool, optional
        Keep the graph behind ``losses`` so that it can be differentiated again (e.g. by a
        later ``losses.mean().backward()``). Default ``False``, like
        :func:`torch.autograd.grad`: the graph is freed.

    Returns
    -------
    dict of str to Tensor
        For each name of ``params``, in its order (for a module, the names of
        ``named_parameters()``, as :func:`per_sample_grads`), a Tensor of shape
        ``(N, *p.shape)``; row ``i`` is :math:`\partial\,\mathrm{losses}_i / \partial p`. A
        parameter the losses do not depend on gets zeros. Not attached to any graph.

    Raises
    ------
    TypeError
        If ``losses`` is not a floating-point Tensor, ``params`` is none of the forms above or
        holds something other than a Tensor, ``chunk_size`` is not an int, or ``retain_graph``
        is not a bool.
    ValueError
        If ``losses`` is not a non-empty 1-D Tensor or does not require grad, ``params`` is
        empty or holds a Tensor that does not require grad, or ``chunk_size < 1``.

    Notes
    -----
    Row :math:`i` is the vector-Jacobian product :math:`e_i^\top J` of the one-hot cotangent
    :math:`e_i`: a "masked" backward pass in which only loss :math:`i` is kept. All ``N``
    backward passes run as one vectorised call,
    ``torch.autograd.grad(..., is_grads_batched=True)``. Each pass goes through the whole
    batch's graph, so the work grows like :math:`N^2` (as with a Python loop of backward
    passes); when the model can be called on one sample at a time, :func:`per_sample_grads`
    is far cheaper. The ``.grad`` attributes of ``params`` are left untouched. Summing the
    rows gives the gradient of ``losses.sum()``.

    See Also
    --------
    per_sample_grads : Per-sample gradients of a model's loss at the cost of one backward pass.
    vjp : One vector-Jacobian product of a function.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> x = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    >>> losses = x @ w
    >>> grads = vg.loss_jacobian(losses, {"w": w})
    >>> torch.equal(grads["w"], x)
    True
    """
    losses = _losses(losses)
    named, deprecated = _params(params)
    chunk_size = check_chunk_size(chunk_size)
    retain_graph = check_bool("retain_graph", retain_graph)
    if deprecated:
        warnings.warn(
            "vecgrad.loss_jacobian: `params` as a Tensor or an iterable of Tensors is deprecated "
            "and gives a tuple; pass the module, a mapping name -> Tensor or "
            "model.named_parameters() for a dict keyed by name.",
            DeprecationWarning,
            stacklevel=3,  # the caller of the public boundary
        )
    n, tensors = losses.shape[0], tuple(named.values())
    chunks = spans(n, chunk_size)
    pieces = []
    for c, (start, stop) in enumerate(chunks):
        grads = torch.autograd.grad(
            losses,
            tensors,
            grad_outputs=one_hots(start, stop, 0, (n,), losses),
            retain_graph=retain_graph or c < len(chunks) - 1,
            allow_unused=True,
            is_grads_batched=True,
        )
        pieces.append(
            [
                zeros(p, (stop - start,), p.shape) if g is None else g
                for g, p in zip(grads, tensors, strict=True)
            ]
        )
    rows = tuple(cat(r) for r in zip(*pieces, strict=True))
    return rows if deprecated else dict(zip(named, rows, strict=True))


@public
def per_sample_grads(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor,
    targets: Tensor,
) -> dict[str, Tensor]:
    r"""Gradient of each sample's loss with respect to every trainable parameter of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Model called on a batch; each sample is passed on its own with a batch dimension of
        one, so ordinary modules work. Batch normalisation that uses batch statistics
        (training mode, or ``track_running_stats=False``) is refused. It must not modify its
        inputs in place.
    loss_fn : callable
        Called as ``loss_fn(prediction, target)`` on one sample, both with a batch dimension of
        one; must return a one-element real floating-point Tensor, e.g.
        :func:`torch.nn.functional.mse_loss` or :func:`torch.nn.functional.cross_entropy`.
    inputs : Tensor
        Batch of ``N`` inputs (any dtype, e.g. integer token ids), first dimension ``N``.
    targets : Tensor
        Batch of ``N`` targets, first dimension ``N``.

    Returns
    -------
    dict of str to Tensor
        For each name of ``model.named_parameters()`` whose parameter requires grad, a Tensor
        of shape ``(N, *p.shape)``: row ``i`` is the gradient of
        ``loss_fn(model(inputs[i:i+1]), targets[i:i+1])``. ``.grad`` attributes are left
        untouched and the result is not attached to any graph.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``, ``loss_fn`` is not callable or does not return a
        real floating-point Tensor, ``inputs`` or ``targets`` is not a Tensor, or ``model``
        calls a custom :class:`torch.autograd.Function` without a vmap rule or
        ``setup_context``.
    ValueError
        If ``model`` normalises with batch statistics (call ``model.eval()`` or use
        GroupNorm/LayerNorm) or has no parameter that requires grad, ``inputs`` or ``targets``
        is 0-dim or has no sample, their batch sizes differ, or ``loss_fn`` returns more than
        one element.

    Notes
    -----
    With parameters :math:`\theta` and per-sample losses
    :math:`\ell_i(\theta) = L(m_\theta(x_i), y_i)`, the result is
    :math:`\nabla_\theta \ell_i` for every :math:`i`. The model is turned into a function of
    its parameters with :func:`torch.func.functional_call`, differentiated with
    :func:`torch.func.grad` and vectorised over samples with :func:`torch.func.vmap`, so the
    cost is about that of one batched forward and backward pass, not ``N``. Parameters that do
    not require grad and buffers are held fixed. Random operations (e.g. dropout in training
    mode) draw independently for each sample, as in an ordinary batch
    (``randomness='different'``).

    See Also
    --------
    loss_jacobian : Per-sample gradients from a vector of losses already computed.
    batch_jacobian : Per-sample Jacobians with respect to the inputs.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> model = torch.nn.Linear(2, 1, bias=False)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> y = torch.tensor([[1.0], [5.0]])  # residuals x_i @ w - y_i are 2 and 2
    >>> grads = vg.per_sample_grads(model, torch.nn.functional.mse_loss, x, y)
    >>> grads["weight"]  # 2 * residual_i * x_i
    tensor([[[ 4.,  8.]],
    <BLANKLINE>
            [[12., 16.]]])
    """
    model = check_model(model)
    check_callable("loss_fn", loss_fn)
    xs, ys = samples("inputs", inputs), samples("targets", targets)
    if xs.shape[0] != ys.shape[0]:
        raise BadValue(
            "`inputs` and `targets` must have the same batch size (first dimension); "
            f"got shapes {fmt_shape(xs.shape)} and {fmt_shape(ys.shape)}."
        )
    trainable, fixed = split(model)

    def sample_loss(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        prediction = torch.func.functional_call(model, (params, fixed), (x.unsqueeze(0),))
        return scalar_output(loss_fn(prediction, y.unsqueeze(0)), "loss_fn")

    per_sample = torch.func.vmap(
        torch.func.grad(sample_loss), in_dims=(None, 0, 0), randomness="different"
    )
    return cast("dict[str, Tensor]", per_sample(trainable, xs, ys))

"""Per-sample gradients: of a vector of losses already computed, or of a model's loss."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from vecgrad._basis import basis_block, cat, spans
from vecgrad._checks import (
    check_callable,
    check_chunk_size,
    check_scalar_output,
    error,
    fmt_shape,
)


def _check_losses(losses: object) -> Tensor:
    if not isinstance(losses, Tensor):
        raise TypeError(
            error("loss_jacobian", f"`losses` must be a Tensor; got {type(losses).__name__}.")
        )
    if losses.dim() != 1 or losses.numel() == 0:
        raise ValueError(
            error(
                "loss_jacobian",
                "`losses` must be a non-empty 1-D Tensor, one loss per sample; "
                f"got shape {fmt_shape(losses.shape)}.",
            )
        )
    if not losses.dtype.is_floating_point:
        raise TypeError(
            error(
                "loss_jacobian",
                f"`losses` must have a real floating-point dtype; got {losses.dtype}.",
            )
        )
    if not losses.requires_grad:
        raise ValueError(
            error(
                "loss_jacobian",
                "`losses` must be attached to an autograd graph (computed from tensors that "
                "require grad, outside torch.no_grad()); got a Tensor with requires_grad=False.",
            )
        )
    return losses


def _check_params(params: object) -> tuple[Tensor, ...]:
    if isinstance(params, Tensor):
        items: tuple[object, ...] = (params,)
    elif isinstance(params, Mapping):
        raise TypeError(
            error(
                "loss_jacobian",
                "`params` must be a Tensor or an iterable of Tensors (pass `.values()` of a "
                f"mapping); got {type(params).__name__}.",
            )
        )
    elif isinstance(params, Iterable):
        items = tuple(params)
    else:
        raise TypeError(
            error(
                "loss_jacobian",
                "`params` must be a Tensor or an iterable of Tensors; "
                f"got {type(params).__name__}.",
            )
        )
    if not items:
        raise ValueError(
            error("loss_jacobian", "`params` must contain at least one Tensor; got none.")
        )
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(
                error("loss_jacobian", f"`params[{i}]` must be a Tensor; got {type(p).__name__}.")
            )
        if not p.requires_grad:
            raise ValueError(
                error(
                    "loss_jacobian",
                    f"`params[{i}]` must require grad; got a Tensor of shape "
                    f"{fmt_shape(p.shape)} with requires_grad=False.",
                )
            )
    return cast("tuple[Tensor, ...]", items)


def loss_jacobian(
    losses: Tensor,
    params: Tensor | Iterable[Tensor],
    *,
    chunk_size: int | None = None,
    retain_graph: bool = False,
) -> tuple[Tensor, ...]:
    r"""Jacobian of a vector of losses with respect to parameters: per-sample gradients.

    Parameters
    ----------
    losses : Tensor
        Non-empty 1-D Tensor of ``N`` losses (e.g. a loss with ``reduction='none'``), already
        computed and attached to the autograd graph.
    params : Tensor or iterable of Tensor
        Tensors that require grad, e.g. ``model.parameters()`` (a generator is consumed once).
    chunk_size : int, optional
        Largest number of losses differentiated at once; by default all ``N``. Memory grows
        with ``chunk_size`` times the memory of one backward pass.
    retain_graph : bool, optional
        Keep the graph behind ``losses`` so that it can be differentiated again (e.g. by a
        later ``losses.mean().backward()``). Default ``False``, like
        :func:`torch.autograd.grad`: the graph is freed.

    Returns
    -------
    tuple of Tensor
        One Tensor per parameter, always a tuple (as :func:`torch.autograd.grad`), of shape
        ``(N, *p.shape)``; row ``i`` is :math:`\partial\,\mathrm{losses}_i / \partial p`. A
        parameter the losses do not depend on gets zeros. Not attached to any graph.

    Raises
    ------
    TypeError
        If ``losses`` is not a floating-point Tensor, ``params`` is not a Tensor or an
        iterable of Tensors (a mapping is refused: pass its ``.values()``), ``chunk_size``
        is not an int, or ``retain_graph`` is not a bool.
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
    >>> (grads,) = vg.loss_jacobian(losses, [w])
    >>> torch.equal(grads, x)
    True
    """
    losses = _check_losses(losses)
    tensors = _check_params(params)
    chunk_size = check_chunk_size("loss_jacobian", chunk_size)
    if not isinstance(retain_graph, bool):
        raise TypeError(
            error(
                "loss_jacobian",
                f"`retain_graph` must be a bool; got {type(retain_graph).__name__}.",
            )
        )
    n = losses.shape[0]
    chunks = spans(n, chunk_size)
    pieces = []
    for c, (start, stop) in enumerate(chunks):
        grads = torch.autograd.grad(
            losses,
            tensors,
            grad_outputs=basis_block(start, stop, 0, n, losses),
            retain_graph=retain_graph or c < len(chunks) - 1,
            allow_unused=True,
            is_grads_batched=True,
        )
        pieces.append(
            tuple(
                torch.zeros(stop - start, *p.shape, dtype=p.dtype, device=p.device)
                if g is None
                else g
                for g, p in zip(grads, tensors, strict=True)
            )
        )
    return tuple(cat(rows) for rows in zip(*pieces, strict=True))


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(
            error(
                "per_sample_grads",
                f"`model` must be a torch.nn.Module; got {type(model).__name__}.",
            )
        )
    for name, module in model.named_modules():
        # Batch statistics mix the samples of a batch: in training mode, or when no running
        # statistics are kept (then they are used in eval mode too).
        if isinstance(module, _BatchNorm) and (module.training or module.running_mean is None):
            state = "in training mode" if module.training else "without running statistics"
            raise ValueError(
                error(
                    "per_sample_grads",
                    "`model` must not normalise with batch statistics, which make samples "
                    f"interact; got {type(module).__name__} {state} at "
                    f"'{name or type(model).__name__}'. Call model.eval() first (with "
                    "track_running_stats=True), or use GroupNorm or LayerNorm.",
                )
            )
    return model


def _check_batch(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(
            error("per_sample_grads", f"`{name}` must be a Tensor; got {type(value).__name__}.")
        )
    if value.dim() == 0:
        raise ValueError(
            error(
                "per_sample_grads",
                f"`{name}` must have a leading batch dimension; got a 0-dim Tensor.",
            )
        )
    if value.shape[0] == 0:
        raise ValueError(
            error(
                "per_sample_grads",
                f"`{name}` must have at least one sample; got shape {fmt_shape(value.shape)}.",
            )
        )
    return value.detach()


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
        real floating-point Tensor, or ``inputs`` or ``targets`` is not a Tensor.
    ValueError
        If the model normalises with batch statistics (call ``model.eval()`` or use
        GroupNorm/LayerNorm), has no parameter that requires grad, ``inputs`` or ``targets``
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
    model = _check_model(model)
    check_callable("per_sample_grads", "loss_fn", loss_fn)
    xs = _check_batch("inputs", inputs)
    ys = _check_batch("targets", targets)
    if xs.shape[0] != ys.shape[0]:
        raise ValueError(
            error(
                "per_sample_grads",
                "`inputs` and `targets` must have the same batch size (first dimension); "
                f"got shapes {fmt_shape(xs.shape)} and {fmt_shape(ys.shape)}.",
            )
        )
    trainable = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        raise ValueError(
            error(
                "per_sample_grads",
                "`model` must have at least one parameter that requires grad; got none.",
            )
        )
    fixed = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    fixed.update((n, b.detach()) for n, b in model.named_buffers())

    def sample_loss(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        prediction = torch.func.functional_call(model, (params, fixed), (x.unsqueeze(0),))
        loss = loss_fn(prediction, y.unsqueeze(0))
        return check_scalar_output("per_sample_grads", loss, "loss_fn")

    per_sample = torch.func.vmap(
        torch.func.grad(sample_loss), in_dims=(None, 0, 0), randomness="different"
    )
    return cast("dict[str, Tensor]", per_sample(trainable, xs, ys))

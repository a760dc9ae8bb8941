"""Per-sample gradients: of a vector of losses already computed, or of a model's loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn

from vecgrad._api import NamedParams, public
from vecgrad._basis import cat, one_hots, spans, zeros
from vecgrad._checks import (
    check_bool,
    check_callable,
    check_chunk_size,
    check_model,
    losses_vector,
    named_params,
    same_batch,
    samples,
    scalar_output,
)
from vecgrad._compat import batched_grad
from vecgrad._models import split, unchanged


@public
def loss_jacobian(
    losses: Tensor,
    params: NamedParams,
    *,
    chunk_size: int | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> dict[str, Tensor]:
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
    chunk_size : int, optional
        Largest number of losses differentiated at once; by default all ``N``. Memory grows
        with ``chunk_size`` times the memory of one backward pass.
    retain_graph : bool, optional
        Keep the graph behind ``losses`` so that it can be differentiated again (e.g. by a
        later ``losses.mean().backward()``). Default ``False``, like
        :func:`torch.autograd.grad`: the graph is freed. ``create_graph=True`` keeps it too.
    create_graph : bool, optional
        Build the graph of the derivative, so that the result can be differentiated again, as
        in :func:`torch.autograd.grad` (e.g. a penalty on per-sample gradient norms, trained
        by ``backward()``). Default ``False``: the result is a constant, and cheaper.

    Returns
    -------
    dict of str to Tensor
        For each name of ``params``, in its order (for a module, the names of
        ``named_parameters()``, as :func:`per_sample_grads`), a Tensor of shape
        ``(N, *p.shape)``; row ``i`` is :math:`\partial\,\mathrm{losses}_i / \partial p`. A
        parameter the losses do not depend on gets zeros. Attached to a graph only with
        ``create_graph=True`` (see :ref:`differentiable`).

    Raises
    ------
    TypeError
        If ``losses`` is not a dense floating-point Tensor, ``params`` is none of the forms
        above, has a key that is not a string or holds something other than a dense Tensor,
        ``chunk_size`` is not an int, or ``retain_graph`` or ``create_graph`` is not a bool.
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
    losses = losses_vector(losses)
    named = named_params(params)
    chunk_size = check_chunk_size(chunk_size)
    retain_graph = check_bool("retain_graph", retain_graph)
    create_graph = check_bool("create_graph", create_graph)
    n, tensors = losses.shape[0], tuple(named.values())
    chunks = spans(n, chunk_size)
    pieces = []
    for c, (start, stop) in enumerate(chunks):
        grads = batched_grad(
            losses,
            tensors,
            one_hots(start, stop, 0, (n,), losses),
            retain_graph=retain_graph or create_graph or c < len(chunks) - 1,
            create_graph=create_graph,
        )
        pieces.append(
            [
                zeros(p, (stop - start,), p.shape) if g is None else g
                for g, p in zip(grads, tensors, strict=True)
            ]
        )
    rows = tuple(cat(r) for r in zip(*pieces, strict=True))
    return dict(zip(named, rows, strict=True))


@public
def per_sample_grads(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor,
    targets: Tensor,
    *,
    create_graph: bool = False,
) -> dict[str, Tensor]:
    r"""Gradient of each sample's loss with respect to every trainable parameter of ``model``.

    Parameters
    ----------
    %(model)s
    loss_fn : callable
        Called as ``loss_fn(prediction, target)`` on one sample, both with a batch dimension of
        one; must return a one-element real floating-point Tensor, e.g.
        :func:`torch.nn.functional.mse_loss` or :func:`torch.nn.functional.cross_entropy`.
    inputs : Tensor
        Batch of ``N`` inputs (any dtype, e.g. integer token ids), first dimension ``N``.
    targets : Tensor
        Batch of ``N`` targets, first dimension ``N``.
    create_graph : bool, optional
        Make the result differentiable with respect to the model's parameters, e.g. to train
        with a penalty on per-sample gradients. Default ``False``: the result is a constant
        with respect to them and costs what it did without a graph (see :ref:`differentiable`).

    Returns
    -------
    dict of str to Tensor
        For each name of ``model.named_parameters()`` whose parameter requires grad, a Tensor
        of shape ``(N, *p.shape)``: row ``i`` is the gradient of
        ``loss_fn(model(inputs[i:i+1]), targets[i:i+1])``. ``.grad`` attributes are left
        untouched, and so are the model's parameters and buffers (the same objects, also
        after an error). Differentiable with respect to ``inputs`` and ``targets`` (when they
        require grad) and, with ``create_graph=True``, the parameters.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``, ``loss_fn`` is not callable or does not return a
        real floating-point Tensor, ``inputs`` or ``targets`` is not a dense Tensor,
        ``create_graph`` is not a bool, or ``model``
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
    create_graph = check_bool("create_graph", create_graph)
    same_batch(xs, ys)
    trainable, fixed = split(model, create_graph)

    def sample_loss(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        prediction = torch.func.functional_call(model, (params, fixed), (x.unsqueeze(0),))
        return scalar_output(loss_fn(prediction, y.unsqueeze(0)), "loss_fn")

    per_sample = torch.func.vmap(
        torch.func.grad(sample_loss), in_dims=(None, 0, 0), randomness="different"
    )
    with unchanged(model):
        return cast("dict[str, Tensor]", per_sample(trainable, xs, ys))

"""Per-sample Jacobians of a model's output with respect to its parameters."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from vecgrad._api import public
from vecgrad._checks import (
    BadValue,
    check_bool,
    check_chunk_size,
    check_model,
    check_output,
    fmt_shape,
    samples,
)
from vecgrad._memory import unshared
from vecgrad._models import split, unchanged


@public
def param_jacobian(
    model: nn.Module, inputs: Tensor, *, chunk_size: int | None = None, create_graph: bool = False
) -> dict[str, Tensor]:
    r"""Jacobian of each sample's output with respect to every trainable parameter of ``model``.

    Parameters
    ----------
    %(model)s
        For one sample it must return a real floating-point Tensor of shape ``(1, *out_row)``.
    inputs : Tensor
        Batch of ``N`` inputs (any dtype, e.g. integer token ids), first dimension ``N``.
    chunk_size : int, optional
        Largest number of output elements of one sample differentiated at once (the
        ``chunk_size`` of :func:`torch.func.jacrev`); by default all of ``out_row``. Memory
        grows with ``chunk_size`` times the memory of one backward pass through the batch.
    create_graph : bool, optional
        Make the result differentiable with respect to the model's parameters. Default
        ``False``: the result is a constant with respect to them and costs what it did without
        a graph (see :ref:`differentiable`).

    Returns
    -------
    dict of str to Tensor
        For each name of ``model.named_parameters()`` whose parameter ``p`` requires grad, in
        that order, a Tensor of shape ``(N, *out_row, *p.shape)``: entry ``[i, k]`` is
        :math:`\partial\, \mathrm{model}(x_i)_k / \partial p`, where ``model(x_i)`` is the output
        for ``inputs[i:i+1]`` without its batch dimension. ``.grad`` attributes are left
        untouched, and so are the model's parameters and buffers (the same objects, also after
        an error); the result has memory of its own. Differentiable with respect to ``inputs``
        (when they require grad) and, with ``create_graph=True``, the parameters.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module`` or does not return a real floating-point Tensor,
        ``inputs`` is not a dense Tensor, ``chunk_size`` is not an int or ``create_graph`` not
        a bool.
    ValueError
        If ``model`` normalises with batch statistics (call ``model.eval()`` or use
        GroupNorm/LayerNorm), has no parameter that requires grad, or returns a Tensor whose
        first dimension is not 1 for one sample; if ``inputs`` is 0-dim or has no sample; or if
        ``chunk_size < 1``.

    Notes
    -----
    With parameters :math:`\theta` and per-sample outputs :math:`f_\theta(x_i)`, the result is
    :math:`J_i = \partial f_\theta(x_i) / \partial \theta`, split by parameter. It is the
    reverse-mode Jacobian (:func:`torch.func.jacrev`) of :func:`torch.func.functional_call`,
    vectorised over samples with :func:`torch.func.vmap`: ``out_row`` vectorised backward
    passes through the batch, not ``N`` times as many. Reverse mode suits the usual case of
    far more parameters than outputs per sample. Parameters that do not require grad and
    buffers are held fixed. Random operations (e.g. dropout in training mode) draw
    independently for each sample (``randomness='different'``). Flattened and concatenated
    over parameters, the rows give the matrix :math:`J` whose product :math:`J J^\top` is the
    empirical neural tangent kernel.

    See Also
    --------
    per_sample_grads : Per-sample gradients of a loss with respect to the parameters.
    batch_jacobian : Per-sample Jacobians with respect to the inputs.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> model = torch.nn.Linear(2, 1)
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> J = vg.param_jacobian(model, x)  # output = w . x_i + b
    >>> J["weight"]  # d output / d weight = x_i, shape (N, 1, 1, 2)
    tensor([[[[1., 2.]]],
    <BLANKLINE>
    <BLANKLINE>
            [[[3., 4.]]]])
    >>> J["bias"]
    tensor([[[1.]],
    <BLANKLINE>
            [[1.]]])
    """
    model = check_model(model)
    xs = samples("inputs", inputs)
    chunk_size = check_chunk_size(chunk_size)
    trainable, fixed = split(model, check_bool("create_graph", create_graph))

    def sample_output(params: dict[str, Tensor], x: Tensor) -> Tensor:
        output = torch.func.functional_call(model, (params, fixed), (x.unsqueeze(0),))
        output = check_output(output, "model")
        if output.dim() == 0 or output.shape[0] != 1:
            raise BadValue(
                "`model` must return a Tensor whose first dimension is the batch size, 1 for "
                f"one sample; got shape {fmt_shape(output.shape)}."
            )
        return output[0]

    per_sample = torch.func.vmap(
        torch.func.jacrev(sample_output, chunk_size=chunk_size),
        in_dims=(None, 0),
        randomness="different",
    )
    with unchanged(model):
        jac = cast("dict[str, Tensor]", per_sample(trainable, xs))
    # A block that does not depend on the sample comes back expanded over it (stride 0).
    return {name: unshared(block) for name, block in jac.items()}

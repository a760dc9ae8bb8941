"""Curvature of a model's loss with respect to its parameters: the Hessian, its products with a
vector, and the products of the generalised Gauss-Newton matrix."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import Tensor, nn

from vecgrad._api import public
from vecgrad._checks import (
    check_bool,
    check_callable,
    check_model,
    check_output,
    like_params,
    same_batch,
    samples,
    scalar_output,
)
from vecgrad._compat import ensure_forward_ad
from vecgrad._memory import unshared
from vecgrad._models import split, unchanged

LossFn = Callable[[Any, Tensor], Tensor]
Params = dict[str, Tensor]


class _BatchLoss:
    """A model's loss on a batch as a function of its trainable parameters, checked.

    The model runs on the whole batch, as in training: its samples cannot interact through
    batch statistics, which are refused (they would also update the running statistics).
    """

    def __init__(
        self, model: object, loss_fn: object, inputs: object, targets: object, create_graph: object
    ) -> None:
        self.model = check_model(model)
        check_callable("loss_fn", loss_fn)
        self.loss_fn = cast(LossFn, loss_fn)
        self.xs, self.ys = samples("inputs", inputs), samples("targets", targets)
        same_batch(self.xs, self.ys)
        self.params, self.fixed = split(self.model, check_bool("create_graph", create_graph))

    def outputs(self, params: Params) -> Any:
        """``model(inputs)`` at ``params``."""
        return torch.func.functional_call(self.model, (params, self.fixed), (self.xs,))

    def of_outputs(self, outputs: Any, targets: Tensor) -> Tensor:
        """The loss of the batch as a function of the model's outputs."""
        return scalar_output(self.loss_fn(outputs, targets), "loss_fn")

    def __call__(self, params: Params, targets: Tensor) -> Tensor:
        return self.of_outputs(self.outputs(params), targets)

    def hvp(
        self, func: Callable[[Any, Tensor], Tensor], primal: Any, tangent: Any
    ) -> tuple[Tensor, Any]:
        """``func(primal, targets)`` and the product of its Hessian in ``primal`` with ``tangent``.

        A forward-mode JVP of the reverse-mode gradient. Floating-point targets enter the
        forward pass with a zero tangent of their own: torch 2.13 fails ("ZeroTensors are
        immutable") differentiating mse_loss's backward in forward mode against the implicit
        zero tangent of a constant target.
        """

        def value_and_aux(p: Any, targets: Tensor) -> tuple[Tensor, Tensor]:
            value = func(p, targets)
            return value, value

        gradient = torch.func.grad(value_and_aux, has_aux=True)
        ys = self.ys
        ensure_forward_ad()
        if ys.dtype.is_floating_point:
            zero = torch.zeros_like(ys)
            result = torch.func.jvp(gradient, (primal, ys), (tangent, zero), has_aux=True)
        else:
            result = torch.func.jvp(lambda p: gradient(p, ys), (primal,), (tangent,), has_aux=True)
        _, product, value = cast("tuple[Any, Any, Tensor]", result)
        return value, product


def _owned(blocks: Params) -> Params:
    # A block that does not depend on the direction comes back expanded (stride 0).
    return {name: unshared(block) for name, block in blocks.items()}


@public
def param_hessian(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    *,
    create_graph: bool = False,
) -> dict[str, dict[str, Tensor]]:
    r"""Hessian of a model's loss on a batch with respect to its trainable parameters.

    Parameters
    ----------
    %(batch_loss)s
    %(create_graph_params)s

    Returns
    -------
    dict of str to dict of str to Tensor
        Blocks keyed twice by the names of ``model.named_parameters()`` whose parameter
        requires grad, in that order: ``H[a][b]`` has shape ``p_a.shape + p_b.shape`` and holds
        :math:`\partial^2 L / \partial p_a \partial p_b`. ``.grad`` attributes, parameters and
        buffers are left untouched; each block has memory of its own. Differentiable with
        respect to ``inputs`` and ``targets`` (when they require grad) and, with
        ``create_graph=True``, the parameters.

    Raises
    ------
    TypeError
        %(bad_batch_loss)s, or ``model`` calls a
        custom :class:`torch.autograd.Function` without a ``jvp``, a vmap rule or
        ``setup_context``.
    ValueError
        %(bad_batch)s, or ``loss_fn`` returns more
        than one element.

    Notes
    -----
    The Hessian is the forward-mode Jacobian of the reverse-mode gradient
    (:func:`torch.func.jacfwd` of :func:`torch.func.jacrev`, as in :func:`torch.func.hessian`)
    over :func:`torch.func.functional_call`: one vectorised Hessian-vector product per
    parameter element. Time and memory grow like the number of parameters :math:`P` times one
    gradient, and the result holds :math:`P^2` numbers, so beyond a few thousand parameters use
    :func:`param_hvp` or :func:`param_ggnvp`. Flattened and concatenated, the blocks give the
    symmetric :math:`P \times P` matrix. Random operations (dropout in training mode) draw once
    for the whole Hessian.

    See Also
    --------
    param_hvp : Its product with a vector, without forming it.
    param_ggnvp : Products with the generalised Gauss-Newton matrix.
    hessian : Hessian of a function of tensors.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> model = torch.nn.Linear(2, 1)
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    >>> y = torch.zeros(2, 1)
    >>> H = vg.param_hessian(model, torch.nn.functional.mse_loss, x, y)
    >>> H["weight"]["weight"]  # 2/N sum_i x_i x_i^T, shape (1, 2, 1, 2)
    tensor([[[[10.,  2.]],
    <BLANKLINE>
             [[ 2.,  4.]]]])
    >>> H["bias"]["weight"]  # 2/N sum_i x_i
    tensor([[[4., 2.]]])
    """
    loss = _BatchLoss(model, loss_fn, inputs, targets, create_graph)
    ensure_forward_ad()
    # Forward over reverse as torch.func.hessian: jacfwd of jacrev works where jvp of grad
    # meets the torch 2.13 failure of mse_loss that _BatchLoss.hvp avoids.
    hessian = torch.func.jacfwd(torch.func.jacrev(loss), randomness="same")
    with unchanged(loss.model):
        blocks = cast("dict[str, Params]", hessian(loss.params, loss.ys))
    return {name: _owned(row) for name, row in blocks.items()}


@public
def param_hvp(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    v: Mapping[str, Tensor],
    *,
    create_graph: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    r"""Product of the Hessian of a model's loss with a vector of parameters, without forming it.

    Parameters
    ----------
    %(batch_loss)s
    %(param_vector)s
    %(create_graph_params)s

    Returns
    -------
    loss : Tensor
        The loss :math:`L` of the batch, 0-dim.
    hvp : dict of str to Tensor
        :math:`H v` keyed and shaped like the parameters, in the order of
        ``named_parameters()``: entry ``a`` is :math:`\sum_b H_{ab} v_b`, with the blocks
        :math:`H_{ab}` of :func:`param_hessian`. Parameters and buffers are left untouched.
        Both are differentiable with respect to ``inputs``, ``targets`` and ``v`` (when they
        require grad) and, with ``create_graph=True``, the parameters.

    Raises
    ------
    TypeError
        %(bad_batch_loss)s, %(bad_param_vector_type)s, or
        ``model`` calls a custom :class:`torch.autograd.Function` without a ``jvp`` or
        ``setup_context``.
    ValueError
        %(bad_batch)s, ``loss_fn`` returns more than
        one element, or %(bad_param_vector_value)s.

    Notes
    -----
    :math:`H v = \frac{d}{dt} \nabla L(\theta + t v)\big|_{t=0}`: a forward-mode JVP of the
    reverse-mode gradient (:func:`torch.func.jvp` of :func:`torch.func.grad`) over
    :func:`torch.func.functional_call`. It costs a small multiple of one gradient, with memory
    linear in the number of parameters, which makes iterative methods (Lanczos, conjugate
    gradients) on the Hessian of a large model affordable; :func:`torch.func.vmap` over ``v``
    gives several products at once. :math:`H` may be indefinite; :func:`param_ggnvp` gives a
    positive semi-definite alternative.

    See Also
    --------
    param_hessian : The whole Hessian, in blocks.
    param_ggnvp : Products with the generalised Gauss-Newton matrix.
    hvp : Hessian-vector product of a function of tensors.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> model = torch.nn.Linear(2, 1, bias=False)
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    >>> y = torch.zeros(2, 1)
    >>> v = {"weight": torch.tensor([[1.0, 0.0]])}
    >>> loss, Hv = vg.param_hvp(model, torch.nn.functional.mse_loss, x, y, v)
    >>> Hv["weight"]  # the first column of 2/N sum_i x_i x_i^T
    tensor([[10.,  2.]])
    """
    loss = _BatchLoss(model, loss_fn, inputs, targets, create_graph)
    vector = like_params("v", v, loss.params)
    with unchanged(loss.model):
        value, hv = loss.hvp(loss, loss.params, vector)
    return value, _owned(hv)


@public
def param_ggnvp(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    v: Mapping[str, Tensor],
    *,
    create_graph: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    r"""Product of the generalised Gauss-Newton matrix of a model's loss with a vector.

    Parameters
    ----------
    %(batch_loss)s
    %(param_vector)s
    %(create_graph_params)s

    Returns
    -------
    loss : Tensor
        The loss :math:`L` of the batch, 0-dim.
    ggnvp : dict of str to Tensor
        :math:`G v` keyed and shaped like the parameters, in the order of
        ``named_parameters()``. Parameters and buffers are left untouched. Both are
        differentiable with respect to ``inputs``, ``targets`` and ``v`` (when they require
        grad) and, with ``create_graph=True``, the parameters.

    Raises
    ------
    TypeError
        %(bad_batch_loss)s, ``model`` does not
        return a real floating-point Tensor, %(bad_param_vector_type)s, or ``model`` calls a
        custom :class:`torch.autograd.Function` without a ``jvp`` or ``setup_context``.
    ValueError
        %(bad_batch)s, ``loss_fn`` returns more than
        one element, or %(bad_param_vector_value)s.

    Notes
    -----
    With :math:`f = \mathrm{model}(\mathrm{inputs})` a function of the parameters
    :math:`\theta`, :math:`J = \partial f / \partial \theta` and :math:`H_L` the Hessian of
    ``loss_fn`` with respect to :math:`f`,

    .. math:: G = J^\top H_L J ,

    which is the Hessian :math:`H` of :math:`L` without the terms in the model's second
    derivatives. For a mean loss, :math:`G = \frac1N \sum_i J_i^\top H_i J_i` over the samples.
    :math:`G` is positive semi-definite whenever the loss is convex in :math:`f` (squared
    error, cross-entropy on logits), where :math:`H` may not be, which suits Gauss-Newton and
    natural-gradient steps and Laplace approximations. :math:`G v` is computed as
    :math:`J^\top (H_L (J v))` without forming any of them, as curvlinops'
    ``GGNLinearOperator`` does: a forward-mode product with the model's Jacobian
    (:func:`torch.func.jvp`), a Hessian-vector product of ``loss_fn`` with respect to
    :math:`f`, and a reverse-mode product (:func:`torch.func.vjp`), which runs the model
    forward a second time. Random operations (dropout in training mode) draw the same values
    in both forward passes, and the global random state advances as after one.

    See Also
    --------
    param_hvp : Products with the Hessian.
    param_jacobian : The Jacobians :math:`J_i` of the samples' outputs.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False), torch.nn.Tanh())
    >>> _ = torch.nn.init.zeros_(model[0].weight)  # tanh'(0) = 1: J_i = x_i^T
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    >>> y = torch.ones(2, 1)
    >>> v = {"0.weight": torch.tensor([[1.0, 0.0]])}
    >>> loss, Gv = vg.param_ggnvp(model, torch.nn.functional.mse_loss, x, y, v)
    >>> Gv["0.weight"]  # 2/N sum_i x_i x_i^T v, as for the linear model
    tensor([[10.,  2.]])
    """
    loss = _BatchLoss(model, loss_fn, inputs, targets, create_graph)
    vector = like_params("v", v, loss.params)

    def outputs(params: Params) -> Tensor:
        return check_output(loss.outputs(params), "model")

    params = loss.params
    cuda = sorted({p.device.index or 0 for p in params.values() if p.device.type == "cuda"})
    ensure_forward_ad()
    with unchanged(loss.model):
        # fork_rng puts the random state back: the second forward pass draws what the first did.
        with torch.random.fork_rng(devices=cuda):
            out, jv = cast("tuple[Tensor, Tensor]", torch.func.jvp(outputs, (params,), (vector,)))
        vjp_fn = torch.func.vjp(outputs, params)[1]
        value, hjv = loss.hvp(loss.of_outputs, out, jv)
        (gv,) = vjp_fn(hjv)
    return value, _owned(gv)

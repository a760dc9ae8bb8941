"""Vector-Jacobian products (reverse mode) and Jacobian-vector products (forward mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast, overload

import torch
from torch import Tensor

from vecgrad._api import Call, Func, TensorOrTensors, public
from vecgrad._compat import ensure_forward_ad


@overload
def vjp(func: Func, inputs: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
@overload
def vjp(func: Func, inputs: tuple[Tensor, ...], v: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]: ...


@public
def vjp(func: Func, inputs: TensorOrTensors, v: Tensor) -> tuple[Tensor, TensorOrTensors]:
    r"""Vector-Jacobian product :math:`v^\top J` of ``func`` at ``inputs``, by reverse mode.

    Parameters
    ----------
    %(func)s
    %(inputs)s
    v : Tensor
        Cotangent with exactly the shape of ``func``'s output (the ``grad_outputs`` of
        :func:`torch.autograd.grad`). It is never filled in implicitly, not even for a
        one-element output.

    Returns
    -------
    output : Tensor
        ``func(inputs)``.
    vjp : Tensor or tuple of Tensor
        :math:`v^\top J`, shaped like ``inputs`` (a tuple with one Tensor per input for tuple
        inputs). Both are differentiable with respect to ``inputs``, ``v`` and the tensors
        ``func`` closes over, like :func:`torch.func.vjp`'s (see :ref:`differentiable`).

    Raises
    ------
    TypeError
        %(bad_func_inputs)s, or if
        ``v`` is not a Tensor or its dtype differs from the output's.
    ValueError
        If ``inputs`` is an empty tuple, %(meta)s, or ``v``'s shape or device differs from the
        output's.

    Notes
    -----
    For :math:`f:\mathbb{R}^n\to\mathbb{R}^m` with Jacobian :math:`J\in\mathbb{R}^{m\times n}`,
    the result is :math:`v^\top J`, i.e. :math:`\sum_i v_i\,\partial f_i/\partial x_j`, at the
    cost of one forward and one backward pass; :math:`J` is never formed. Tensor shapes are
    flattened in row-major order. The function is evaluated once, with
    :func:`torch.func.vjp`.

    See Also
    --------
    jvp : Jacobian-vector product (forward mode).
    jacobian : The full Jacobian, built from vectorised VJPs or JVPs.
    torch.func.vjp : The underlying transform.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([1.0, 2.0, 3.0])
    >>> out, g = vg.vjp(lambda t: t**2, x, torch.tensor([1.0, 0.0, 1.0]))
    >>> g
    tensor([2., 0., 6.])
    """
    call = Call(func, inputs)
    output, vjp_fn = cast(
        "tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]]",
        torch.func.vjp(call.func, *call.xs),
    )
    cotangent = call.cotangent("v", v, output)
    return call.own(output), call.restore(vjp_fn(cotangent))


@overload
def jvp(func: Func, inputs: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
@overload
def jvp(func: Func, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]: ...


@public
def jvp(func: Func, inputs: TensorOrTensors, v: TensorOrTensors) -> tuple[Tensor, Tensor]:
    r"""Jacobian-vector product :math:`J v` of ``func`` at ``inputs``, by forward mode.

    Parameters
    ----------
    %(func)s
    %(inputs)s
    v : Tensor or tuple of Tensor
        Direction (tangent), with the structure, shapes, dtypes and device of ``inputs``. Named
        ``v`` like the vector of :func:`vjp` and :func:`hvp` (and of
        :func:`torch.autograd.functional.jvp`).

    Returns
    -------
    output : Tensor
        ``func(inputs)``.
    jvp : Tensor
        :math:`J v`, shaped like the output. Both are differentiable with respect to
        ``inputs``, ``v`` and the tensors ``func`` closes over, like :func:`torch.func.jvp`'s
        (see :ref:`differentiable`).

    Raises
    ------
    TypeError
        %(bad_tangent)s
    ValueError
        If ``inputs`` is an empty tuple, %(meta)s, or ``v`` does not match ``inputs`` in length,
        shape or device.

    Notes
    -----
    The result is the directional derivative
    :math:`J v = \frac{d}{dt} f(x + t v)\big|_{t=0}`, with :math:`J v = \sum_k J_k v_k` over
    the inputs of a tuple. It is computed in true forward mode by :func:`torch.func.jvp` (dual
    numbers carried through a single forward pass), not by differentiating a VJP twice.
    Forward mode ignores :class:`torch.no_grad` inside ``func``, as PyTorch's forward-mode AD
    does, where reverse mode holds what it computes constant; use ``.detach()`` there to hold a
    value constant in every mode (see :ref:`differentiable`).

    See Also
    --------
    vjp : Vector-Jacobian product (reverse mode).
    hvp : Hessian-vector product, forward mode over reverse mode.
    torch.func.jvp : The underlying transform.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x, v = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
    >>> vg.jvp(lambda t: t**3, x, v)  # (x**3, 3 x**2 v)
    (tensor([0., 1.]), tensor([0., 6.]))
    """
    call = Call(func, inputs)
    tangents = call.tangents("v", v)
    ensure_forward_ad()
    output, jvp_out = cast("tuple[Tensor, Tensor]", torch.func.jvp(call.func, call.xs, tangents))
    return call.own(output), call.own(jvp_out)

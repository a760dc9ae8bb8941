"""Hessians and Hessian-vector products of scalar functions."""

from __future__ import annotations

from typing import cast, overload

import torch
from torch import Tensor

from vecgrad._api import Call, Func, TensorOrTensors, public
from vecgrad._basis import zeros
from vecgrad._checks import scalar_output
from vecgrad._compat import ensure_forward_ad, forward_over_reverse


@overload
def hessian(func: Func, inputs: Tensor) -> Tensor: ...
@overload
def hessian(func: Func, inputs: tuple[Tensor, ...]) -> tuple[tuple[Tensor, ...], ...]: ...


@public
def hessian(func: Func, inputs: TensorOrTensors) -> Tensor | tuple[tuple[Tensor, ...], ...]:
    r"""Hessian of a scalar function ``func`` at ``inputs``.

    Parameters
    ----------
    %(func_scalar)s
    %(inputs)s

    Returns
    -------
    Tensor or tuple of tuple of Tensor
        For a Tensor input, ``H`` with ``H.shape == inputs.shape + inputs.shape``. For tuple
        inputs, a nested tuple of blocks: ``H[i][j]`` has shape
        ``inputs[i].shape + inputs[j].shape`` and holds
        :math:`\partial^2 f / \partial x_i \partial x_j` (as in
        :func:`torch.autograd.functional.hessian`). Differentiable with respect to ``inputs``
        and the tensors ``func`` closes over (see :ref:`differentiable`).

    Raises
    ------
    TypeError
        %(bad_func_inputs)s, or if
        ``func`` calls a custom :class:`torch.autograd.Function` without a ``jvp``, a vmap rule
        or ``setup_context`` (forward-over-reverse needs all three).
    ValueError
        If ``func`` returns more than one element, ``inputs`` is an empty tuple, or %(meta)s.

    Notes
    -----
    :math:`H_{jk} = \partial^2 f / \partial x_j \partial x_k` is the Jacobian of the gradient. It is
    computed by :func:`torch.func.hessian`: forward mode over reverse mode, i.e. one vectorised JVP
    of the gradient per input element. The output is reshaped to a 0-dim tensor first, so a function
    returning shape ``(1,)`` gives the same ``H`` as one returning shape ``()``. Forward mode
    ignores :class:`torch.no_grad` inside ``func``, as PyTorch's forward-mode AD does, where reverse
    mode holds what it computes constant; use ``.detach()`` there to hold a value constant in every
    mode (see :ref:`differentiable`).

    See Also
    --------
    hvp : Hessian-vector product without forming the Hessian.
    jacobian : Jacobian of a vector-valued function.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([1.0, 2.0])
    >>> vg.hessian(lambda t: (t**2).sum() + t[0] * t[1], x)
    tensor([[2., 1.],
            [1., 2.]])
    """
    call = Call(func, inputs)

    def scalar(*args: Tensor) -> Tensor:
        return scalar_output(call.func(*args))

    # torch.func.hessian fails on inputs without elements, whose blocks are empty anyway.
    nonempty = tuple(i for i, x in enumerate(call.xs) if x.numel() > 0)
    ensure_forward_ad()
    if nonempty:
        hess = cast(
            "tuple[tuple[Tensor, ...], ...]", torch.func.hessian(scalar, nonempty)(*call.xs)
        )
    else:
        scalar(*call.xs)  # still check what func returns
    rows = tuple(
        tuple(
            call.own(hess[nonempty.index(i)][nonempty.index(j)])
            if i in nonempty and j in nonempty
            else zeros(xi, xi.shape, xj.shape)
            for j, xj in enumerate(call.xs)
        )
        for i, xi in enumerate(call.xs)
    )
    return rows if call.is_tuple else rows[0][0]


@overload
def hvp(func: Func, inputs: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
@overload
def hvp(
    func: Func, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...]
) -> tuple[Tensor, tuple[Tensor, ...]]: ...


@public
def hvp(func: Func, inputs: TensorOrTensors, v: TensorOrTensors) -> tuple[Tensor, TensorOrTensors]:
    r"""Hessian-vector product :math:`H v` of a scalar function, without forming :math:`H`.

    Parameters
    ----------
    %(func_scalar)s
    %(inputs)s
    v : Tensor or tuple of Tensor
        Vector with the structure and shapes of ``inputs``.

    Returns
    -------
    output : Tensor
        ``func(inputs)``, with the shape ``func`` returned.
    hvp : Tensor or tuple of Tensor
        :math:`H v`, shaped like ``inputs``; for tuple inputs, entry :math:`i` is
        :math:`\sum_j H_{ij} v_j`. Both are differentiable with respect to ``inputs``, ``v``
        and the tensors ``func`` closes over (see :ref:`differentiable`).

    Raises
    ------
    TypeError
        %(bad_tangent)s
    ValueError
        If ``func`` returns more than one element, ``inputs`` is an empty tuple, %(meta)s, or
        ``v`` does not match ``inputs`` in length, shape or device.

    Notes
    -----
    :math:`H v = \frac{d}{dt} \nabla f(x + t v)\big|_{t=0}`: a forward-mode JVP of the reverse-mode
    gradient (:func:`torch.func.jvp` of :func:`torch.func.grad`), costing a small multiple of one
    gradient evaluation and memory linear in the input size. As the Hessian is symmetric, this
    equals :math:`v^\top H` too. Forward mode ignores :class:`torch.no_grad` inside ``func``, as
    PyTorch's forward-mode AD does, where reverse mode holds what it computes constant; use
    ``.detach()`` there to hold a value constant in every mode (see :ref:`differentiable`).

    See Also
    --------
    hessian : The full Hessian.
    jvp : Jacobian-vector product.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([1.0, 2.0])
    >>> value, Hv = vg.hvp(lambda t: (t**3).sum(), x, torch.tensor([1.0, 1.0]))
    >>> Hv
    tensor([ 6., 12.])
    """
    call = Call(func, inputs)
    vs = call.tangents("v", v)

    def scalar_and_value(*args: Tensor) -> tuple[Tensor, Tensor]:
        output = call.func(*args)
        return scalar_output(output), output

    # Gradient as a function of the inputs, returning func's own output as auxiliary data.
    grad_fn = torch.func.grad(scalar_and_value, argnums=tuple(range(len(vs))), has_aux=True)
    _, hv, output = cast(
        "tuple[tuple[Tensor, ...], tuple[Tensor, ...], Tensor]",
        forward_over_reverse(grad_fn, call.xs, vs, has_aux=True),
    )
    return call.own(output), call.restore(hv)

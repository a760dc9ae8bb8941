"""Hessians and Hessian-vector products of scalar functions."""

from __future__ import annotations

from typing import cast, overload

import torch
from torch import Tensor

from vecgrad._basis import zero_blocks
from vecgrad._checks import (
    Func,
    TensorOrTensors,
    check_callable,
    check_scalar_output,
    match_vectors,
    owned,
    prepare_inputs,
    restore,
)
from vecgrad._compat import ensure_forward_ad


@overload
def hessian(func: Func, inputs: Tensor) -> Tensor: ...
@overload
def hessian(func: Func, inputs: tuple[Tensor, ...]) -> tuple[tuple[Tensor, ...], ...]: ...


def hessian(func: Func, inputs: TensorOrTensors) -> Tensor | tuple[tuple[Tensor, ...], ...]:
    r"""Hessian of a scalar function ``func`` at ``inputs``.

    Parameters
    ----------
    func : callable
        Function returning a one-element real floating-point Tensor; called as
        ``func(inputs)`` for a Tensor and ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the Hessian is taken; real floating-point dtypes. A
        tuple, not a list, for several inputs.

    Returns
    -------
    Tensor or tuple of tuple of Tensor
        For a Tensor input, ``H`` with ``H.shape == inputs.shape + inputs.shape``. For tuple
        inputs, a nested tuple of blocks: ``H[i][j]`` has shape
        ``inputs[i].shape + inputs[j].shape`` and holds
        :math:`\partial^2 f / \partial x_i \partial x_j` (as in
        :func:`torch.autograd.functional.hessian`). Detached from any graph.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, or if
        ``inputs`` is not a Tensor or a tuple of Tensors of real floating-point dtype.
    ValueError
        If ``func`` returns more than one element.

    Notes
    -----
    :math:`H_{jk} = \partial^2 f / \partial x_j \partial x_k` is the Jacobian of the gradient.
    It is computed by :func:`torch.func.hessian`: forward mode over reverse mode, i.e. one
    vectorised JVP of the gradient per input element. The output is reshaped to a 0-dim tensor
    first, so a function returning shape ``(1,)`` gives the same ``H`` as one returning
    shape ``()``.

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
    check_callable("hessian", "func", func)
    xs, is_tuple = prepare_inputs("hessian", inputs)

    def scalar(*args: Tensor) -> Tensor:
        return check_scalar_output("hessian", func(*args))

    # torch.func.hessian fails on inputs without elements, whose blocks are empty anyway.
    nonempty = tuple(i for i, x in enumerate(xs) if x.numel() > 0)
    ensure_forward_ad()
    with torch.no_grad():
        if nonempty:
            hess = cast(
                "tuple[tuple[Tensor, ...], ...]",
                torch.func.hessian(scalar, nonempty)(*xs),
            )
        else:
            scalar(*xs)  # still check what func returns
    rows = tuple(
        tuple(
            hess[nonempty.index(i)][nonempty.index(j)]
            if i in nonempty and j in nonempty
            else zero_blocks(xi.shape, [xj.shape], xi)[0]
            for j, xj in enumerate(xs)
        )
        for i, xi in enumerate(xs)
    )
    return rows if is_tuple else rows[0][0]


@overload
def hvp(func: Func, inputs: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
@overload
def hvp(
    func: Func, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...]
) -> tuple[Tensor, tuple[Tensor, ...]]: ...


def hvp(func: Func, inputs: TensorOrTensors, v: TensorOrTensors) -> tuple[Tensor, TensorOrTensors]:
    r"""Hessian-vector product :math:`H v` of a scalar function, without forming :math:`H`.

    Parameters
    ----------
    func : callable
        Function returning a one-element real floating-point Tensor; called as
        ``func(inputs)`` for a Tensor and ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the Hessian is taken; real floating-point dtypes. A
        tuple, not a list, for several inputs.
    v : Tensor or tuple of Tensor
        Vector with the structure and shapes of ``inputs``.

    Returns
    -------
    output : Tensor
        ``func(inputs)``, detached, with the shape ``func`` returned.
    hvp : Tensor or tuple of Tensor
        :math:`H v`, shaped like ``inputs``; for tuple inputs, entry :math:`i` is
        :math:`\sum_j H_{ij} v_j`. Detached from any graph.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, if
        ``inputs`` or ``v`` is not a Tensor or a tuple of Tensors of real floating-point dtype,
        if ``v`` is a Tensor where ``inputs`` is a tuple (or the reverse), or if a dtype in ``v``
        differs from its input's.
    ValueError
        If ``func`` returns more than one element, or ``v`` does not match ``inputs`` in length,
        shape or device.

    Notes
    -----
    :math:`H v = \frac{d}{dt} \nabla f(x + t v)\big|_{t=0}`: a forward-mode JVP of the
    reverse-mode gradient (:func:`torch.func.jvp` of :func:`torch.func.grad`), costing a small
    multiple of one gradient evaluation and memory linear in the input size. As the Hessian
    is symmetric, this equals :math:`v^\top H` too.

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
    check_callable("hvp", "func", func)
    xs, is_tuple = prepare_inputs("hvp", inputs)
    vs = match_vectors("hvp", "v", v, xs, is_tuple, "inputs")

    def scalar_and_value(*args: Tensor) -> tuple[Tensor, Tensor]:
        output = func(*args)
        return check_scalar_output("hvp", output), output

    # Gradient as a function of the inputs, returning func's own output as auxiliary data.
    grad_fn = torch.func.grad(scalar_and_value, argnums=tuple(range(len(xs))), has_aux=True)
    ensure_forward_ad()
    with torch.no_grad():
        _, hv, output = cast(
            "tuple[tuple[Tensor, ...], tuple[Tensor, ...], Tensor]",
            torch.func.jvp(grad_fn, xs, vs, has_aux=True),
        )
    # For a quadratic like (t**2).sum() / 2, torch returns the caller's `v` itself as H v.
    caller = (*xs, *vs)
    return owned(output, *caller), restore(tuple(owned(h, *caller) for h in hv), is_tuple)

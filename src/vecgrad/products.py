"""Vector-Jacobian products (reverse mode) and Jacobian-vector products (forward mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast, overload

import torch
from torch import Tensor

from vecgrad._checks import (
    Func,
    TensorOrTensors,
    check_callable,
    checked,
    match_vectors,
    owned,
    prepare_inputs,
    restore,
)
from vecgrad._compat import ensure_forward_ad


@overload
def vjp(func: Func, inputs: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
@overload
def vjp(func: Func, inputs: tuple[Tensor, ...], v: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]: ...


def vjp(func: Func, inputs: TensorOrTensors, v: Tensor) -> tuple[Tensor, TensorOrTensors]:
    r"""Vector-Jacobian product :math:`v^\top J` of ``func`` at ``inputs``, by reverse mode.

    Parameters
    ----------
    func : callable
        Function returning a Tensor; called as ``func(inputs)`` for a Tensor and
        ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the product is taken; real floating-point dtypes. A
        tuple, not a list, for several inputs.
    v : Tensor
        Cotangent with exactly the shape of ``func``'s output (the ``grad_outputs`` of
        :func:`torch.autograd.grad`). It is never filled in implicitly, not even for a
        one-element output.

    Returns
    -------
    output : Tensor
        ``func(inputs)``, detached.
    vjp : Tensor or tuple of Tensor
        :math:`v^\top J`, shaped like ``inputs`` (a tuple with one Tensor per input for tuple
        inputs), detached from any graph.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, if
        ``inputs`` is not a Tensor or a tuple of Tensors of real floating-point dtype, or if
        ``v`` is not a Tensor or its dtype differs from the output's.
    ValueError
        If ``v``'s shape or device differs from the output's.

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
    check_callable("vjp", "func", func)
    xs, is_tuple = prepare_inputs("vjp", inputs)
    with torch.no_grad():
        output, vjp_fn = cast(
            "tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]]",
            torch.func.vjp(checked("vjp", func), *xs),
        )
        (cotangent,) = match_vectors("vjp", "v", v, (output,), False, "func(inputs)")
        grads = vjp_fn(cotangent)
    # For functions like the identity, torch returns the caller's tensors themselves.
    caller = (*xs, cotangent)
    return owned(output, *caller), restore(tuple(owned(g, *caller) for g in grads), is_tuple)


def jvp(func: Func, inputs: TensorOrTensors, tangents: TensorOrTensors) -> tuple[Tensor, Tensor]:
    r"""Jacobian-vector product :math:`J u` of ``func`` at ``inputs``, by forward mode.

    Parameters
    ----------
    func : callable
        Function returning a Tensor; called as ``func(inputs)`` for a Tensor and
        ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the product is taken; real floating-point dtypes. A
        tuple, not a list, for several inputs.
    tangents : Tensor or tuple of Tensor
        Direction :math:`u`, with the structure and shapes of ``inputs``.

    Returns
    -------
    output : Tensor
        ``func(inputs)``, detached.
    jvp : Tensor
        :math:`J u`, shaped like the output, detached from any graph.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, if
        ``inputs`` or ``tangents`` is not a Tensor or a tuple of Tensors of real floating-point
        dtype, if ``tangents`` is a Tensor where ``inputs`` is a tuple (or the reverse), or if
        a tangent's dtype differs from its input's.
    ValueError
        If ``tangents`` has a different number of Tensors than ``inputs`` or a shape or device
        differs.

    Notes
    -----
    The result is the directional derivative
    :math:`J u = \frac{d}{dt} f(x + t u)\big|_{t=0}`, with :math:`J u = \sum_k J_k u_k` over
    the inputs of a tuple. It is computed in true forward mode by :func:`torch.func.jvp` (dual
    numbers carried through a single forward pass), not by differentiating a VJP twice.

    See Also
    --------
    vjp : Vector-Jacobian product (reverse mode).
    hvp : Hessian-vector product, forward mode over reverse mode.
    torch.func.jvp : The underlying transform.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([1.0, 2.0, 3.0])
    >>> out, Ju = vg.jvp(lambda t: t**2, x, torch.tensor([1.0, 0.0, 1.0]))
    >>> Ju
    tensor([2., 0., 6.])
    """
    check_callable("jvp", "func", func)
    xs, is_tuple = prepare_inputs("jvp", inputs)
    ts = match_vectors("jvp", "tangents", tangents, xs, is_tuple, "inputs")
    ensure_forward_ad()
    with torch.no_grad():
        output, jvp_out = cast(
            "tuple[Tensor, Tensor]", torch.func.jvp(checked("jvp", func), xs, ts)
        )
    # For functions like the identity, torch returns the caller's tensors themselves.
    return owned(output, *xs, *ts), owned(jvp_out, *xs, *ts)

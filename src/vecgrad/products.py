"""Vector-Jacobian products (reverse mode) and Jacobian-vector products (forward mode)."""

from __future__ import annotations

from typing import Any, Literal, cast, overload

import torch
from torch import Tensor

from vecgrad._api import AnyFunc, AuxFunc, AuxFuncs, Call, Func, Funcs, public
from vecgrad._compat import ensure_forward_ad
from vecgrad.jacobians import _vjp


@overload
def vjp(
    func: Func, inputs: Tensor, v: Tensor, *, has_aux: Literal[False] = ...
) -> tuple[Tensor, Tensor]: ...
@overload
def vjp(
    func: Func, inputs: tuple[Tensor, ...], v: Tensor, *, has_aux: Literal[False] = ...
) -> tuple[Tensor, tuple[Tensor, ...]]: ...
@overload
def vjp(
    func: Funcs, inputs: Tensor, v: tuple[Tensor, ...], *, has_aux: Literal[False] = ...
) -> tuple[tuple[Tensor, ...], Tensor]: ...
@overload
def vjp(
    func: Funcs, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...], *, has_aux: Literal[False] = ...
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]: ...
@overload
def vjp(
    func: AuxFunc, inputs: Tensor, v: Tensor, *, has_aux: Literal[True]
) -> tuple[Tensor, Tensor, Any]: ...
@overload
def vjp(
    func: AuxFunc, inputs: tuple[Tensor, ...], v: Tensor, *, has_aux: Literal[True]
) -> tuple[Tensor, tuple[Tensor, ...], Any]: ...
@overload
def vjp(
    func: AuxFuncs, inputs: Tensor, v: tuple[Tensor, ...], *, has_aux: Literal[True]
) -> tuple[tuple[Tensor, ...], Tensor, Any]: ...
@overload
def vjp(
    func: AuxFuncs, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...], *, has_aux: Literal[True]
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Any]: ...


@public
def vjp(
    func: AnyFunc,
    inputs: Tensor | tuple[Tensor, ...],
    v: Tensor | tuple[Tensor, ...],
    *,
    has_aux: bool = False,
) -> tuple[Any, ...]:
    r"""Vector-Jacobian product :math:`v^\top J` of ``func`` at ``inputs``, by reverse mode.

    Parameters
    ----------
    %(func_outputs)s
    %(inputs)s
    v : Tensor or tuple of Tensor
        Cotangent with exactly the structure and shapes of ``func``'s output (the
        ``grad_outputs`` of :func:`torch.autograd.grad`): a tuple with one Tensor per output
        when ``func`` returns a tuple. It is never filled in implicitly, not even for a
        one-element output.
    %(has_aux)s

    Returns
    -------
    output : Tensor or tuple of Tensor
        ``func(inputs)`` (without ``aux``).
    vjp : Tensor or tuple of Tensor
        :math:`v^\top J`, summed over the outputs, shaped like ``inputs`` (a tuple with one
        Tensor per input for tuple inputs). Both are differentiable with respect to
        ``inputs``, ``v`` and the tensors ``func`` closes over, like :func:`torch.func.vjp`'s
        (see :ref:`differentiable`).
    aux : object
        Only with ``has_aux=True``: what ``func`` returned beside its output, untouched.

    Raises
    ------
    TypeError
        %(bad_outputs)s, or if
        ``v`` is not a Tensor or a tuple of Tensors like the output, or a dtype in it differs
        from its output's.
    ValueError
        If ``inputs`` is an empty tuple or ``func`` returns one, %(meta)s, or ``v``'s length,
        shapes or devices differ from the output's.

    Notes
    -----
    For :math:`f:\mathbb{R}^n\to\mathbb{R}^m` with Jacobian :math:`J\in\mathbb{R}^{m\times n}`,
    the result is :math:`v^\top J`, i.e. :math:`\sum_i v_i\,\partial f_i/\partial x_j`, at the
    cost of one forward and one backward pass; :math:`J` is never formed. Tensor shapes are
    flattened in row-major order; several outputs act as one output of all their elements, so
    their products add up. The function is evaluated once, with :func:`torch.func.vjp`.

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
    >>> out, g, aux = vg.vjp(lambda t: (t**2, "aux"), x, torch.ones(3), has_aux=True)
    >>> g, aux
    (tensor([2., 4., 6.]), 'aux')
    """
    call = Call(func, inputs, has_aux)
    outputs, vjp_fn, aux = _vjp(call.outputs, call.xs)
    grads = vjp_fn(call.cotangents("v", v, outputs))
    return call.with_aux((call.restore_outputs(outputs), call.restore(grads)), call.aux(aux))


@overload
def jvp(
    func: Func, inputs: Tensor, v: Tensor, *, has_aux: Literal[False] = ...
) -> tuple[Tensor, Tensor]: ...
@overload
def jvp(
    func: Func, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...], *, has_aux: Literal[False] = ...
) -> tuple[Tensor, Tensor]: ...
@overload
def jvp(
    func: Funcs, inputs: Tensor, v: Tensor, *, has_aux: Literal[False] = ...
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]: ...
@overload
def jvp(
    func: Funcs, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...], *, has_aux: Literal[False] = ...
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]: ...
@overload
def jvp(
    func: AuxFunc, inputs: Tensor, v: Tensor, *, has_aux: Literal[True]
) -> tuple[Tensor, Tensor, Any]: ...
@overload
def jvp(
    func: AuxFunc, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...], *, has_aux: Literal[True]
) -> tuple[Tensor, Tensor, Any]: ...
@overload
def jvp(
    func: AuxFuncs, inputs: Tensor, v: Tensor, *, has_aux: Literal[True]
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Any]: ...
@overload
def jvp(
    func: AuxFuncs, inputs: tuple[Tensor, ...], v: tuple[Tensor, ...], *, has_aux: Literal[True]
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Any]: ...


@public
def jvp(
    func: AnyFunc,
    inputs: Tensor | tuple[Tensor, ...],
    v: Tensor | tuple[Tensor, ...],
    *,
    has_aux: bool = False,
) -> tuple[Any, ...]:
    r"""Jacobian-vector product :math:`J v` of ``func`` at ``inputs``, by forward mode.

    Parameters
    ----------
    %(func_outputs)s
    %(inputs)s
    v : Tensor or tuple of Tensor
        Direction (tangent), with the structure, shapes, dtypes and device of ``inputs``. Named
        ``v`` like the vector of :func:`vjp` and :func:`hvp` (and of
        :func:`torch.autograd.functional.jvp`).
    %(has_aux)s

    Returns
    -------
    output : Tensor or tuple of Tensor
        ``func(inputs)`` (without ``aux``).
    jvp : Tensor or tuple of Tensor
        :math:`J v`, shaped like the output: a tuple with one Tensor per output when ``func``
        returns a tuple, as :func:`torch.func.jvp` gives it. Both are differentiable with
        respect to ``inputs``, ``v`` and the tensors ``func`` closes over, like
        :func:`torch.func.jvp`'s (see :ref:`differentiable`).
    aux : object
        Only with ``has_aux=True``: what ``func`` returned beside its output, untouched.

    Raises
    ------
    TypeError
        %(bad_tangent)s Also if ``func`` returns neither a Tensor nor a tuple of them (a pair
        ``(output, aux)`` with ``has_aux=True``), or ``has_aux`` is not a bool.
    ValueError
        If ``inputs`` is an empty tuple or ``func`` returns one, %(meta)s, or ``v`` does not
        match ``inputs`` in length, shape or device.

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
    >>> vg.jvp(lambda t: (t**2, t.sum()), x, v)  # two outputs: a tuple of each
    ((tensor([0., 1.]), tensor(1.)), (tensor([0., 4.]), tensor(3.)))
    """
    call = Call(func, inputs, has_aux)
    tangents = call.tangents("v", v)
    ensure_forward_ad()
    outputs, jvps, aux = cast(
        "tuple[tuple[Tensor, ...], tuple[Tensor, ...], tuple[Tensor, ...]]",
        torch.func.jvp(call.outputs, call.xs, tangents, has_aux=True),
    )
    return call.with_aux((call.restore_outputs(outputs), call.restore_outputs(jvps)), call.aux(aux))

"""Jacobians by central finite differences, to check derivatives computed by autograd."""

from __future__ import annotations

from typing import overload

import torch
from torch import Tensor

from vecgrad._api import Call, Func, TensorOrTensors, public
from vecgrad._basis import one_hots, zeros
from vecgrad._checks import check_widths, positive_float
from vecgrad._memory import in_transform


def _steps(x: Tensor, eps: float | None) -> Tensor:
    """Step for every element of ``x``: ``eps`` or the dtype-based default."""
    if eps is not None:
        return torch.full_like(x, eps)
    # Truncation error ~ h^2 and rounding error ~ u/h balance at h ~ u^(1/3), relative to |x|.
    scale: float = torch.finfo(x.dtype).eps ** (1 / 3)
    return x.abs().clamp(min=1).mul(scale)


@overload
def numerical_jacobian(func: Func, inputs: Tensor, *, eps: float | None = ...) -> Tensor: ...
@overload
def numerical_jacobian(
    func: Func, inputs: tuple[Tensor, ...], *, eps: float | None = ...
) -> tuple[Tensor, ...]: ...


@public
def numerical_jacobian(
    func: Func, inputs: TensorOrTensors, *, eps: float | None = None
) -> TensorOrTensors:
    r"""Jacobian of ``func`` at ``inputs`` by central finite differences.

    Meant for checking other derivatives: it evaluates ``func`` twice per input element and is
    only as accurate as the floating-point format allows, so use float64.

    Parameters
    ----------
    func : callable
        Function returning a real floating-point Tensor; called as ``func(inputs)`` for a
        Tensor and ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the Jacobian is taken; real floating-point dtypes (float64
        recommended). A tuple, not a list, for several inputs.
    eps : float, optional
        Absolute step :math:`h` for every element. By default, element :math:`x_j` gets
        :math:`h_j = u^{1/3} \max(1, |x_j|)`, where :math:`u` is the machine epsilon of its
        dtype (:math:`h \approx 6\times10^{-6}` for float64, :math:`5\times10^{-3}` for
        float32).

    Returns
    -------
    Tensor or tuple of Tensor
        Same layout as :func:`jacobian`: ``J.shape == output.shape + input.shape``, a tuple
        with one Tensor per input for tuple inputs. Differentiable like every vecgrad result
        (see :ref:`differentiable`): the differences of ``func``'s values carry the graph.

    Raises
    ------
    TypeError
        %(bad_func_inputs)s, or if
        ``eps`` is not a number.
    ValueError
        If ``inputs`` is an empty tuple, %(meta)s, or ``eps`` is not positive and finite or so small
        against an element of ``inputs`` that :math:`x_j + h` and :math:`x_j - h` round to the
        same number.

    Notes
    -----
    Column :math:`j` is
    :math:`\bigl(f(x + h_j e_j) - f(x - h_j e_j)\bigr) / \bigl((x_j + h_j) - (x_j - h_j)\bigr)`,
    whose error is :math:`O(h^2)` from truncation plus :math:`O(u/h)` from rounding; the
    default step balances the two, for an error of about :math:`u^{2/3}` relative to the
    function's scale (about :math:`10^{-11}` in float64). The denominator uses the steps as
    actually represented in floating point.

    See Also
    --------
    jacobian : The exact Jacobian by automatic differentiation.
    torch.autograd.gradcheck : Compares analytical and numerical gradients.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([0.5, 1.0], dtype=torch.float64)
    >>> J = vg.numerical_jacobian(torch.exp, x)
    >>> torch.allclose(J, torch.diag(torch.exp(x)))
    True
    """
    call = Call(func, inputs)
    step = None if eps is None else positive_float("eps", eps, "None or a positive float")
    xs, f = call.xs, call.func
    jac = []
    for i, x in enumerate(xs):
        h = _steps(x, step).reshape(-1)
        flat = x.reshape(-1)
        # The steps as represented: (x + h) - (x - h), which is 0 if h is lost to rounding.
        widths = (flat + h) - (flat - h)
        if not in_transform(widths):  # a check of values, which vmap cannot branch on
            check_widths(widths, flat, step, call.name("inputs", i))
        columns = []
        for j in range(x.numel()):
            # x +- h_j e_j without writing into x, so that it works under transforms.
            shift = (h * one_hots(j, j + 1, 0, flat.shape, flat)[0]).reshape(x.shape)
            args_plus = (*xs[:i], x + shift, *xs[i + 1 :])
            args_minus = (*xs[:i], x - shift, *xs[i + 1 :])
            columns.append((f(*args_plus) - f(*args_minus)) / widths[j])
        if columns:
            jac.append(torch.stack(columns, dim=-1).reshape(columns[0].shape + x.shape))
        else:
            out = f(*xs)
            jac.append(zeros(out, out.shape, x.shape))
    return call.restore(tuple(jac))

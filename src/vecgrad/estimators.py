"""Random estimates of Jacobian norms and Hessian traces from a few products."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor

from vecgrad._api import Call, Func, TensorOrTensors, public
from vecgrad._basis import cat, spans
from vecgrad._checks import (
    check_choice,
    check_chunk_size,
    check_generator,
    positive_int,
    scalar_output,
)
from vecgrad._compat import ensure_forward_ad

_QUANTITIES = ("frobenius", "hessian_trace")

Estimate = Callable[..., Tensor]


def _rademacher(num: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``num`` probes of independent signs +-1 shaped like ``like``: ``(num, *like.shape)``.

    They are drawn on the generator's device (by default ``like``'s, from torch's global
    generator there) and moved to ``like``'s, so that one seed gives the same probes anywhere.
    """
    device = like.device if generator is None else generator.device
    bits = torch.randint(0, 2, (num, *like.shape), generator=generator, device=device)
    return bits.to(like.device, like.dtype).mul_(2).sub_(1)


def _frobenius(call: Call, num: int, generator: torch.Generator | None) -> tuple[Estimate, Tensor]:
    r"""Single-probe estimate :math:`\lVert J^\top z\rVert^2` of a probe ``z`` in output space."""
    output, vjp_fn = cast(
        "tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]]",
        torch.func.vjp(call.func, *call.xs),
    )

    def estimate(z: Tensor) -> Tensor:
        return sum((g.square().sum() for g in vjp_fn(z)), output.new_zeros(()))

    return estimate, _rademacher(num, output, generator)


def _hessian_trace(
    call: Call, num: int, generator: torch.Generator | None
) -> tuple[Estimate, tuple[Tensor, ...]]:
    r"""Single-probe estimate :math:`z^\top H z` of a probe ``z`` in input space."""

    def scalar(*args: Tensor) -> Tensor:
        return scalar_output(call.func(*args))

    grad_fn = torch.func.grad(scalar, argnums=tuple(range(len(call.xs))))
    ensure_forward_ad()

    def estimate(*z: Tensor) -> Tensor:
        # H z is the forward-mode derivative of the gradient in the direction z.
        hz = cast("tuple[Tensor, ...]", torch.func.jvp(grad_fn, call.xs, z)[1])
        return sum(
            ((zi * hi).sum() for zi, hi in zip(z, hz, strict=True)), call.xs[0].new_zeros(())
        )

    scalar(*call.xs)  # the output is checked before any probe is drawn
    return estimate, tuple(_rademacher(num, x, generator) for x in call.xs)


@public
def hutchinson(
    func: Func,
    inputs: TensorOrTensors,
    *,
    num_samples: int,
    quantity: str = "frobenius",
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Hutchinson estimates of a squared Jacobian norm or a Hessian trace, one per probe.

    Parameters
    ----------
    func : callable
        Function returning a Tensor (a one-element Tensor for ``'hessian_trace'``); called as
        ``func(inputs)`` for a Tensor and ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the Jacobian or Hessian is taken; real floating-point dtypes. A tuple,
        not a list, for several inputs, whose Jacobians (or Hessian blocks) all count.
    num_samples : int
        Number :math:`k` of random probes, hence of estimates returned.
    quantity : {'frobenius', 'hessian_trace'}, optional
        ``'frobenius'`` (default) estimates the squared Frobenius norm of the Jacobian,
        :math:`\lVert J\rVert_F^2 = \sum_{ij} J_{ij}^2`, from vector-Jacobian products;
        ``'hessian_trace'`` the trace of the Hessian of a scalar ``func`` from Hessian-vector
        products.
    chunk_size : int, optional
        Largest number of probes whose products are computed at once, to bound memory; by
        default all ``num_samples``. The estimates do not depend on it.
    generator : torch.Generator, optional
        Source of the probes, for reproducible estimates; by default torch's global generator
        (seeded by :func:`torch.manual_seed`) on the device of the probes.

    Returns
    -------
    Tensor
        Shape ``(num_samples,)``: one unbiased estimate per probe. Their mean is the Hutchinson
        estimate from :math:`k` probes and their standard deviation divided by :math:`\sqrt{k}`
        its standard error. The dtype is the promoted one (:func:`torch.promote_types`) of
        ``func``'s output and the inputs for ``'frobenius'`` (float64 inputs with a float32
        output give float64), and of the inputs alone for ``'hessian_trace'``. Differentiable
        with respect to ``inputs`` and the tensors ``func`` closes over, e.g. to train with the
        penalty (see :ref:`differentiable`); the probes are constants.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, if
        ``inputs`` is not a Tensor or a tuple of Tensors of real floating-point dtype, if
        ``num_samples`` or ``chunk_size`` is not an int, ``quantity`` not a string, or
        ``generator`` neither None nor a :class:`torch.Generator`.
    ValueError
        If ``func`` returns more than one element with ``quantity='hessian_trace'``, if
        ``inputs`` is an empty tuple, %(meta)s, ``num_samples < 1``, ``quantity`` is unknown or
        ``chunk_size < 1``.

    Notes
    -----
    For a symmetric matrix :math:`A` and a probe :math:`z` of independent signs :math:`\pm 1`
    (Rademacher), :math:`\mathbb{E}[z z^\top] = I`, so :math:`\mathbb{E}[z^\top A z] =
    \operatorname{tr} A`. With :math:`A = J J^\top` and :math:`z` in output space, :math:`z^\top J
    J^\top z = \lVert J^\top z\rVert^2` is one vector-Jacobian product, and
    :math:`\operatorname{tr}(J J^\top) = \lVert J\rVert_F^2`. With :math:`A = H` and :math:`z` in
    input space, :math:`z^\top H z` needs one Hessian-vector product, a forward-mode derivative of
    the reverse-mode gradient. The variance of one estimate is :math:`2 \sum_{i \ne j} A_{ij}^2`
    (zero for a diagonal :math:`A`), the smallest among probes of independent entries of mean zero
    and variance one (Hutchinson, 1990); the mean of :math:`k` estimates has :math:`1/k` of it. The
    products are vectorised over probes with :func:`torch.func.vmap`. For ``'frobenius'``, ``func``
    is evaluated once; for ``'hessian_trace'``, once to check its output, then inside the
    Hessian-vector products (once per chunk of probes). The probes are drawn all at once, before any
    product, as ``2 * torch.randint(0, 2, (num_samples, *shape)) - 1`` on the generator's device,
    with one draw per input (in order) for ``'hessian_trace'``. Random operations in ``func`` draw
    once for all probes. For ``'hessian_trace'``, forward mode ignores :class:`torch.no_grad` inside
    ``func``, as PyTorch's forward-mode AD does, where reverse mode holds what it computes constant;
    use ``.detach()`` there to hold a value constant in every mode (see :ref:`differentiable`).

    See Also
    --------
    jacobian : The exact Jacobian, whose squared entries sum to :math:`\lVert J\rVert_F^2`.
    hessian : The exact Hessian.
    vjp, hvp : The products behind the two estimates.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([1.0, 2.0, 3.0])
    >>> vg.hutchinson(lambda t: x * t, x, num_samples=3)  # J = diag(x): no variance
    tensor([14., 14., 14.])
    >>> a = torch.tensor([[1.0, 2.0], [0.0, 3.0]])  # ||a||_F^2 = 14, a a^T = [[5, 6], [6, 9]]
    >>> g = torch.Generator().manual_seed(0)
    >>> estimates = vg.hutchinson(lambda t: a @ t, x[:2], num_samples=8, generator=g)
    >>> estimates  # 14 + 12 z_1 z_2
    tensor([ 2.,  2., 26., 26., 26.,  2.,  2., 26.])
    """
    call = Call(func, inputs)
    num_samples = positive_int("num_samples", num_samples)
    quantity = check_choice("quantity", quantity, _QUANTITIES)
    chunk_size = check_chunk_size(chunk_size)
    generator = check_generator(generator)
    estimate, probes = (
        _frobenius(call, num_samples, generator)
        if quantity == "frobenius"
        else _hessian_trace(call, num_samples, generator)
    )
    zs = probes if isinstance(probes, tuple) else (probes,)
    # Random operations in func draw once for all probes, as in one evaluation of func.
    batched = torch.func.vmap(estimate, randomness="same")
    pieces = [
        batched(*(z[start:stop] for z in zs)) for start, stop in spans(num_samples, chunk_size)
    ]
    return call.own(cat(pieces))

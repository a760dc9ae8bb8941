"""Work-arounds for behaviour of the installed torch version."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor


@functools.cache
def ensure_forward_ad() -> None:
    """Load torch's forward-mode decompositions once, without their DeprecationWarning.

    On first use, forward-mode AD imports ``torch._decomp.decompositions_for_jvp``, which calls
    ``torch.jit.script`` and so emits a DeprecationWarning the caller cannot act on. Under
    ``-W error`` that warning aborts the import and every later forward-mode call, so the
    import is triggered here, once, with only that warning silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.script` is", category=DeprecationWarning
        )
        zero = torch.zeros(())
        torch.func.jvp(torch.sin, (zero,), (zero,))


def forward_over_reverse(
    grad_fn: Callable[..., Any], xs: tuple[Tensor, ...], vs: tuple[Tensor, ...], has_aux: bool
) -> tuple[Any, ...]:
    """``torch.func.jvp(grad_fn, xs, vs, has_aux=has_aux)``: the gradient and :math:`H v`.

    In torch 2.13 forward mode through the backward of some losses (``F.mse_loss`` with a
    target that is not an input) raises "ZeroTensors are immutable". Reverse over reverse gives
    the same :math:`H v`, the Hessian being symmetric, at a similar cost; ``func`` then runs a
    second time.
    """
    ensure_forward_ad()
    try:
        return cast("tuple[Any, ...]", torch.func.jvp(grad_fn, xs, vs, has_aux=has_aux))
    except RuntimeError as err:
        if "ZeroTensors are immutable" not in str(err):
            raise
    pulled = cast("tuple[Any, ...]", torch.func.vjp(grad_fn, *xs, has_aux=has_aux))
    return (pulled[0], pulled[1](vs), *pulled[2:])


def outside_transforms() -> bool:
    """Whether no torch.func transform is running, so that plain autograd may be used.

    Inside one, even a plain tensor's ``requires_grad_()`` is refused.
    """
    return torch._C._functorch.peek_interpreter_stack() is None

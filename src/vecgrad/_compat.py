"""Work-arounds for behaviour of the installed torch version."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor
from torch.overrides import has_torch_function


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


# What torch.autograd.grad batches its backward pass with: the legacy vmap and the engine's
# entry point. None where this torch lacks one, and batched_grad makes the public call.
_LEGACY_VMAP = (
    getattr(torch._C, "_vmapmode_increment_nesting", None),
    getattr(torch._C, "_vmapmode_decrement_nesting", None),
    getattr(torch, "_add_batch_dim", None),
    getattr(torch, "_remove_batch_dim", None),
)
_engine_run_backward = getattr(torch.autograd.graph, "_engine_run_backward", None)
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


def batched_grad(
    outputs: Tensor,
    inputs: tuple[Tensor, ...],
    grad_outputs: Tensor,
    *,
    retain_graph: bool,
    create_graph: bool,
) -> tuple[Tensor | None, ...]:
    """``torch.autograd.grad(outputs, inputs, grad_outputs, is_grads_batched=True,
    allow_unused=True, ...)``: one backward pass per row of ``grad_outputs``, vectorised.

    torch.autograd.grad does it in Python around the engine: pytree flattening, checks of
    arguments that vecgrad has already checked, the legacy vmap's wrapper, about 0.1 ms a call
    (a sixth of a reused sparse Jacobian of 4096 inputs). The same engine call under the same
    legacy vmap is made here directly, for plain Tensors. Tensor subclasses with
    ``__torch_function__``, code that torch.compile traces (which would stop inside the vmap
    and leave its level raised) and a torch without these private functions take the public
    call. The caller guarantees what torch.autograd.grad would check: at least one input and
    one row, rows of the output's shape and dtype.
    """
    increment, decrement, add_batch_dim, remove_batch_dim = _LEGACY_VMAP
    engine = _engine_run_backward
    if (
        increment is None
        or decrement is None
        or add_batch_dim is None
        or remove_batch_dim is None
        or engine is None
        or _is_compiling()
        or has_torch_function((outputs, *inputs, grad_outputs))
    ):
        return torch.autograd.grad(
            outputs,
            inputs,
            grad_outputs,
            retain_graph=retain_graph,
            create_graph=create_graph,
            allow_unused=True,
            is_grads_batched=True,
        )
    level = increment()
    try:
        batched = add_batch_dim(grad_outputs, 0, level)
        grads = engine(
            (outputs,), (batched,), retain_graph, create_graph, inputs, True, accumulate_grad=False
        )
        n = grad_outputs.shape[0]
        return tuple(None if g is None else remove_batch_dim(g, level, n, 0) for g in grads)
    finally:
        decrement()

"""The model a per-sample function differentiates, and the batch it is called on, checked."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from vecgrad._arguments import BadType, BadValue, check_tensor, fmt_shape
from vecgrad._memory import in_transform


def trainable_params(model: nn.Module) -> dict[str, Tensor]:
    """The parameters of ``model`` that require grad, keyed like ``named_parameters()``.

    A parameter swapped in by a torch.func transform (an ensemble's stacked parameters under
    ``vmap`` of ``functional_call``) is being differentiated or batched, and counts too: its
    wrapper does not report the ``requires_grad`` of the tensor inside.
    """
    return {name: p for name, p in model.named_parameters() if p.requires_grad or in_transform(p)}


def check_model(model: object) -> nn.Module:
    """``model``, if it is a Module whose samples do not interact through batch statistics."""
    if not isinstance(model, nn.Module):
        raise BadType(f"`model` must be a torch.nn.Module; got {type(model).__name__}.")
    for name, module in model.named_modules():
        # Batch statistics mix the samples of a batch: in training mode, or when no running
        # statistics are kept (then they are used in eval mode too).
        if isinstance(module, _BatchNorm) and (module.training or module.running_mean is None):
            state = "in training mode" if module.training else "without running statistics"
            raise BadValue(
                "`model` must not normalise with batch statistics, which make samples "
                f"interact; got {type(module).__name__} {state} at "
                f"'{name or type(model).__name__}'. Call model.eval() first (with "
                "track_running_stats=True), or use GroupNorm or LayerNorm."
            )
    return model


def split(model: nn.Module, create_graph: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The tensors of ``model`` for :func:`torch.func.functional_call`, by name.

    First its parameters that require grad (at least one), then what is held fixed: the
    parameters that do not, and the buffers. Without ``create_graph`` the trainable ones are
    detached, so that no graph of the derivative is built back to them (the common case, and
    the fast one); with it, results are differentiable with respect to them.
    """
    params = trainable_params(model)
    if not params:
        raise BadValue("`model` must have at least one parameter that requires grad; got none.")
    trainable = params if create_graph else {n: p.detach() for n, p in params.items()}
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in params}
    fixed.update((n, b.detach()) for n, b in model.named_buffers())
    return trainable, fixed


@contextlib.contextmanager
def unchanged(model: nn.Module) -> Iterator[None]:
    """Put back every parameter and buffer of ``model`` on leaving, also after an error.

    :func:`torch.func.functional_call` swaps tensors into the model and back; for a submodule
    that appears twice (``nn.Sequential(lin, nn.Tanh(), lin)``) torch 2.13 puts back its own
    substitute at the second place, and the model loses its Parameters.
    """
    saved: list[tuple[dict[str, Any], str, Tensor | None]] = [
        (slots, name, tensor)
        for module in model.modules()
        for slots in (module._parameters, module._buffers)
        for name, tensor in slots.items()
    ]
    try:
        yield
    finally:
        for slots, name, tensor in saved:
            if slots.get(name) is not tensor:
                slots[name] = tensor


def samples(name: str, value: object) -> Tensor:
    """Check that ``value`` is a Tensor with a leading batch dimension of at least one sample."""
    value = check_tensor(name, value)
    if value.dim() == 0:
        raise BadValue(f"`{name}` must have a leading batch dimension; got a 0-dim Tensor.")
    if value.shape[0] == 0:
        raise BadValue(
            f"`{name}` must have at least one sample; got shape {fmt_shape(value.shape)}."
        )
    return value

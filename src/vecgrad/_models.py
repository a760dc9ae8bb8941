"""Swapping a model's tensors in for torch.func.functional_call, and always back out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn

from vecgrad._checks import BadValue, trainable_params


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

"""The model a per-sample function differentiates, and the batch it is called on, checked."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from vecgrad._arguments import BadType, BadValue, check_tensor, fmt_shape


def trainable_params(model: nn.Module) -> dict[str, Tensor]:
    """The parameters of ``model`` that require grad, keyed like ``named_parameters()``."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


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


def split(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The detached tensors of ``model`` for :func:`torch.func.functional_call`, by name.

    First its parameters that require grad (at least one), then what is held fixed: the
    parameters that do not, and the buffers.
    """
    trainable = {n: p.detach() for n, p in trainable_params(model).items()}
    if not trainable:
        raise BadValue("`model` must have at least one parameter that requires grad; got none.")
    fixed = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    fixed.update((n, b.detach()) for n, b in model.named_buffers())
    return trainable, fixed


def samples(name: str, value: object) -> Tensor:
    """Check that ``value`` is a Tensor with a leading batch dimension of at least one sample."""
    value = check_tensor(name, value)
    if value.dim() == 0:
        raise BadValue(f"`{name}` must have a leading batch dimension; got a 0-dim Tensor.")
    if value.shape[0] == 0:
        raise BadValue(
            f"`{name}` must have at least one sample; got shape {fmt_shape(value.shape)}."
        )
    return value.detach()

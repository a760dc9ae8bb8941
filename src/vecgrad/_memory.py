"""Results that own their memory: never the caller's tensors, never one element in two places."""

from __future__ import annotations

from torch import Tensor


def unshared(x: Tensor) -> Tensor:
    """``x``, copied if several of its elements share memory (a stride 0, e.g. after ``expand``).

    Forward-mode AD writes tangents into a tensor's layout, which torch refuses for such
    tensors, and a result laid out that way would change in every place when written once.
    Other layouts (transposed, sliced) are kept: copying them would only cost time. The copy
    is differentiable, and strides can be read under torch.func transforms too.
    """
    overlapping = any(st == 0 and size > 1 for st, size in zip(x.stride(), x.shape, strict=True))
    return x.contiguous() if overlapping else x


def _storage(t: Tensor) -> int | None:
    """Address of ``t``'s storage; None under a torch.func transform, whose tensors have none."""
    try:
        return t.untyped_storage().data_ptr()
    except (NotImplementedError, RuntimeError):
        return None


def in_transform(t: Tensor) -> bool:
    """Whether ``t`` is a torch.func transform's wrapper, whose values cannot be branched on."""
    return _storage(t) is None


def owned(t: Tensor, *others: Tensor) -> Tensor:
    """Return ``t``, or a copy of it if it shares memory with any of ``others`` (the caller's).

    Inside a torch.func transform tensors are wrappers without storage, and nothing is
    checked: there the caller's tensors are wrappers too, and only the transform's own
    results reach the caller outside it.
    """
    storage = _storage(t)
    if not storage:
        return t
    shared = any(_storage(o) == storage for o in others)
    return t.clone() if shared else t

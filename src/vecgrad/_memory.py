"""Results that own their memory: never the caller's tensors, never one element in two places."""

from __future__ import annotations

from torch import Tensor


def unshared(x: Tensor) -> Tensor:
    """``x``, copied if several of its elements share memory (a stride 0, e.g. after ``expand``).

    Forward-mode AD writes tangents into a tensor's layout, which torch refuses for such
    tensors, and a result laid out that way would change in every place when written once.
    Other layouts (transposed, sliced) are kept: copying them would only cost time.
    """
    overlapping = any(st == 0 and size > 1 for st, size in zip(x.stride(), x.shape, strict=True))
    return x.contiguous() if overlapping else x


def owned(t: Tensor, *others: Tensor) -> Tensor:
    """Return ``t``, or a copy of it if it shares memory with any of ``others`` (the caller's)."""
    storage = t.untyped_storage().data_ptr()
    shared = storage != 0 and any(o.untyped_storage().data_ptr() == storage for o in others)
    return t.clone() if shared else t

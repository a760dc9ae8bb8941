"""Output sizes remembered per function, so that strategy='auto' rarely evaluates twice."""

from __future__ import annotations

import weakref
from collections.abc import Hashable

from torch import Tensor

# func -> {(kind, input shapes, dtypes, devices): output size}. Weak keys: forgotten with func.
# Only the choice of strategy depends on this memory, never a result, so a stale entry (a
# function whose output size varies for inputs of the same shapes) only costs speed.
_KNOWN: weakref.WeakKeyDictionary[object, dict[Hashable, int]] = weakref.WeakKeyDictionary()
_MAX_ENTRIES = 32


def _key(kind: str, xs: tuple[Tensor, ...]) -> Hashable:
    return (kind, *((x.shape, x.dtype, x.device) for x in xs))


def known_size(func: object, kind: str, xs: tuple[Tensor, ...]) -> int | None:
    """Output size remembered for ``func`` at inputs shaped like ``xs``, if any."""
    try:
        sizes = _KNOWN.get(func)
    except TypeError:  # not weak-referenceable (e.g. a builtin) or not hashable
        return None
    return None if sizes is None else sizes.get(_key(kind, xs))


def remember_size(func: object, kind: str, xs: tuple[Tensor, ...], size: int) -> None:
    """Remember the output size of ``func`` at inputs shaped like ``xs``."""
    try:
        sizes = _KNOWN.setdefault(func, {})
    except TypeError:
        return
    if len(sizes) >= _MAX_ENTRIES:
        sizes.clear()
    sizes[_key(kind, xs)] = size

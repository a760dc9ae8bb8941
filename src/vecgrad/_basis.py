"""One-hot directions (rows of an identity matrix), built a chunk at a time, and zero blocks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def spans(size: int, chunk_size: int | None) -> list[tuple[int, int]]:
    """Split ``range(size)`` into ``[start, stop)`` pieces of at most ``chunk_size``."""
    step = max(size, 1) if chunk_size is None else chunk_size
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def one_hots(
    start: int,
    stop: int,
    offset: int,
    shape: Sequence[int],
    like: Tensor,
    batch: int | None = None,
) -> Tensor:
    """Directions ``e_start, ..., e_(stop - 1)``, shape ``(stop - start, *shape)``.

    They are standard basis vectors of a concatenation of flattened tensors, cut to the
    ``prod(shape)`` columns of the one that starts at ``offset``. With ``batch``, each is
    repeated in ``batch`` rows: shape ``(stop - start, batch, *shape)``. ``like`` gives the dtype
    and device.
    """
    size = math.prod(shape)
    if start == offset and stop - start == size:  # the whole identity: one kernel, the usual case
        block = torch.eye(size, dtype=like.dtype, device=like.device)
    else:
        block = zeros(like, (stop - start, size))
        # Row r is e_(start + r), which is one in column start + r - offset of this block.
        block.diagonal(start - offset).fill_(1)
    block = block.view(stop - start, *shape)
    return block if batch is None else block.unsqueeze(1).expand(stop - start, batch, *shape)


def offsets(sizes: Sequence[int]) -> list[int]:
    """Start of each piece in a concatenation of pieces of the given sizes."""
    starts = [0]
    for size in sizes[:-1]:
        starts.append(starts[-1] + size)
    return starts


def cat(pieces: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate, without a copy when there is a single piece."""
    return pieces[0] if len(pieces) == 1 else torch.cat(tuple(pieces), dim=dim)


def zeros(like: Tensor, *shapes: Sequence[int]) -> Tensor:
    """Zeros of shape ``shapes[0] + shapes[1] + ...`` with the dtype and device of ``like``.

    The one way blocks of zeros are built: for outputs or inputs without elements, and for
    tensors the result does not depend on.
    """
    return torch.zeros([n for shape in shapes for n in shape], dtype=like.dtype, device=like.device)

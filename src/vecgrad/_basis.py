"""One-hot directions (rows of an identity matrix), built a chunk at a time, and zero blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def spans(size: int, chunk_size: int | None) -> list[tuple[int, int]]:
    """Split ``range(size)`` into ``[start, stop)`` pieces of at most ``chunk_size``."""
    step = max(size, 1) if chunk_size is None else chunk_size
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def basis_block(start: int, stop: int, offset: int, size: int, like: Tensor) -> Tensor:
    """Rows ``start:stop`` and columns ``offset:offset + size`` of an identity matrix.

    These are standard basis vectors of a concatenation of flattened tensors, cut to one
    tensor's columns; ``like`` gives the dtype and device.
    """
    block = torch.zeros(stop - start, size, dtype=like.dtype, device=like.device)
    # Row r is e_(start + r), which is one in column start + r - offset of this block.
    block.diagonal(start - offset).fill_(1)
    return block


def offsets(sizes: Sequence[int]) -> list[int]:
    """Start of each piece in a concatenation of pieces of the given sizes."""
    starts = [0]
    for size in sizes[:-1]:
        starts.append(starts[-1] + size)
    return starts


def cat(pieces: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate, without a copy when there is a single piece."""
    return pieces[0] if len(pieces) == 1 else torch.cat(tuple(pieces), dim=dim)


def zero_blocks(
    out_shape: Sequence[int], in_shapes: Sequence[Sequence[int]], like: Tensor
) -> tuple[Tensor, ...]:
    """Jacobian blocks ``out_shape + in_shape`` of zeros, for outputs or inputs without elements."""
    return tuple(
        torch.zeros(*out_shape, *shape, dtype=like.dtype, device=like.device) for shape in in_shapes
    )

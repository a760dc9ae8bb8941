"""Checks of single arguments, raising refusals that the public boundary names (see ``_api``)."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import SupportsIndex, cast

import torch
from torch import Tensor

_FLOATS = "float16, bfloat16, float32 or float64"


class BadType(TypeError):
    """A refused argument type; :func:`vecgrad._api.public` prefixes the function's name."""


class BadValue(ValueError):
    """A refused argument value; :func:`vecgrad._api.public` prefixes the function's name."""


def fmt_shape(shape: Sequence[int]) -> str:
    """Write a shape as a tuple, e.g. ``(3,)``, ``()`` or ``(2, 4)``."""
    return str(tuple(shape))


def check_callable(name: str, value: object) -> None:
    """Refuse a ``value`` that cannot be called."""
    if not callable(value):
        raise BadType(f"`{name}` must be callable; got {type(value).__name__}.")


def check_tensor(name: str, value: object) -> Tensor:
    """Refuse a ``value`` that is not a dense Tensor holding data.

    Sparse layouts have no strides and meta tensors no values: torch fails on them deep inside
    a transform, in words about its internals.
    """
    if not isinstance(value, Tensor):
        raise BadType(f"`{name}` must be a Tensor; got {type(value).__name__}.")
    if value.layout != torch.strided:
        raise BadType(
            f"`{name}` must be a dense (strided) Tensor; got layout {value.layout}. "
            "Call .to_dense() first."
        )
    if value.is_meta:
        raise BadValue(f"`{name}` must hold values; got a Tensor on the meta device.")
    return value


def check_real_floating(name: str, tensor: Tensor) -> None:
    """Refuse a tensor of an integer, boolean or complex dtype."""
    if not tensor.dtype.is_floating_point:
        raise BadType(
            f"`{name}` must have a real floating-point dtype ({_FLOATS}); got {tensor.dtype}."
        )


def check_output(out: object, name: str = "func") -> Tensor:
    """Check that the callable ``name`` returned a real floating-point Tensor."""
    if not isinstance(out, Tensor):
        raise BadType(f"`{name}` must return a Tensor; got {type(out).__name__}.")
    if out.layout != torch.strided:
        raise BadType(f"`{name}` must return a dense (strided) Tensor; got layout {out.layout}.")
    if out.is_meta:
        raise BadValue(f"`{name}` must return a Tensor with values; got one on the meta device.")
    if not out.dtype.is_floating_point:
        raise BadType(
            f"`{name}` must return a real floating-point Tensor ({_FLOATS}); got dtype {out.dtype}."
        )
    return out


def scalar_output(out: object, name: str = "func") -> Tensor:
    """Check that ``name`` returned a one-element real floating-point Tensor; return it 0-dim."""
    out = check_output(out, name)
    if out.numel() != 1:
        raise BadValue(
            f"`{name}` must return a one-element Tensor (a scalar); "
            f"got shape {fmt_shape(out.shape)}."
        )
    return out.reshape(())


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """Check that ``value`` is one of the strings ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        names = ", ".join(repr(s) for s in allowed)
        kind = "" if isinstance(value, str) else f" of type {type(value).__name__}"
        refusal = BadValue if isinstance(value, str) else BadType
        raise refusal(f"`{name}` must be one of {names}; got {value!r}{kind}.")
    return value


def check_bool(name: str, value: object) -> bool:
    """Refuse anything but ``True`` and ``False``."""
    if not isinstance(value, bool):
        raise BadType(f"`{name}` must be a bool; got {type(value).__name__}.")
    return value


def positive_int(name: str, value: object, expected: str = "a positive int") -> int:
    """Check that ``value`` is an integer >= 1 of any integer type (``int``, ``numpy.int64``)."""
    # Integer types (int, numpy.int64, one-element integer tensors) have __index__; floats don't.
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(cast(SupportsIndex, value))
    except TypeError:
        raise BadType(f"`{name}` must be {expected}; got {type(value).__name__}.") from None
    if number < 1:
        raise BadValue(f"`{name}` must be {expected}; got {number}.")
    return number


def positive_float(name: str, value: object, expected: str = "a positive float") -> float:
    """Check that ``value`` is a finite real number > 0 (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadType(f"`{name}` must be {expected}; got {type(value).__name__}.")
    if not (math.isfinite(value) and value > 0):
        raise BadValue(f"`{name}` must be {expected}; got {value}.")
    return float(value)


def check_chunk_size(value: object) -> int | None:
    """Check a ``chunk_size`` argument: None (everything at once) or a positive integer."""
    return None if value is None else positive_int("chunk_size", value, "None or a positive int")

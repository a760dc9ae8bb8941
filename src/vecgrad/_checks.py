"""Validation of arguments and conversion between tensor-or-tuple inputs and tuples."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import SupportsIndex, TypeAlias

from torch import Tensor

TensorOrTensors: TypeAlias = Tensor | tuple[Tensor, ...]
Func: TypeAlias = Callable[..., Tensor]

_FLOAT_DTYPES = "float16, bfloat16, float32 or float64"


def _prefix(fn: str) -> str:
    return f"vecgrad.{fn}: "


def fmt_shape(shape: Sequence[int]) -> str:
    """Write a shape as a tuple, e.g. ``(3,)``, ``()`` or ``(2, 4)``."""
    return str(tuple(shape))


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a tensor of the given shape."""
    return math.prod(shape)


def check_callable(fn: str, name: str, value: object) -> None:
    """Raise TypeError unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{_prefix(fn)}`{name}` must be callable; got {type(value).__name__}.")


def _check_real_floating(fn: str, name: str, tensor: Tensor) -> None:
    if not tensor.dtype.is_floating_point:
        raise TypeError(
            f"{_prefix(fn)}`{name}` must have a real floating-point dtype ({_FLOAT_DTYPES}); "
            f"got {tensor.dtype}."
        )


def as_tuple(fn: str, name: str, value: object) -> tuple[tuple[Tensor, ...], bool]:
    """Normalise a Tensor or a tuple of Tensors to ``(tuple, was_tuple)``.

    Lists are refused so that the structure of the result (tensor or tuple) is never ambiguous.
    """
    if isinstance(value, Tensor):
        return (value,), False
    if isinstance(value, tuple):
        if not value:
            raise ValueError(
                f"{_prefix(fn)}`{name}` must be a Tensor or a non-empty tuple of Tensors; "
                "got an empty tuple."
            )
        for i, item in enumerate(value):
            if not isinstance(item, Tensor):
                raise TypeError(
                    f"{_prefix(fn)}`{name}[{i}]` must be a Tensor; got {type(item).__name__}."
                )
        return value, True
    hint = " (pass tuple(...) instead of a list)" if isinstance(value, list) else ""
    raise TypeError(
        f"{_prefix(fn)}`{name}` must be a Tensor or a tuple of Tensors; "
        f"got {type(value).__name__}{hint}."
    )


def item_name(name: str, index: int, is_tuple: bool) -> str:
    """Name of one element of a tensor-or-tuple argument, for error messages."""
    return f"{name}[{index}]" if is_tuple else name


def unshared(x: Tensor) -> Tensor:
    """``x``, copied if several of its elements share memory (a stride 0, e.g. after ``expand``).

    Forward-mode AD writes tangents into a tensor's layout, which torch refuses for such
    tensors, and a result laid out that way would change in every place when written once.
    Other layouts (transposed, sliced) are kept: copying them would only cost time.
    """
    overlapping = any(st == 0 and size > 1 for st, size in zip(x.stride(), x.shape, strict=True))
    return x.contiguous() if overlapping else x


def _own_memory(x: Tensor) -> Tensor:
    """Detach ``x`` and give it memory of its own elements (see :func:`unshared`)."""
    return unshared(x.detach())


def owned(t: Tensor, *others: Tensor) -> Tensor:
    """Return ``t``, or a copy of it if it shares memory with any of ``others`` (the caller's)."""
    storage = t.untyped_storage().data_ptr()
    shared = storage != 0 and any(o.untyped_storage().data_ptr() == storage for o in others)
    return t.clone() if shared else t


def prepare_inputs(fn: str, inputs: object) -> tuple[tuple[Tensor, ...], bool]:
    """Validate the point of evaluation and detach it from any graph.

    Returns the inputs as a tuple and whether the caller passed a tuple.
    """
    xs, is_tuple = as_tuple(fn, "inputs", inputs)
    for i, x in enumerate(xs):
        _check_real_floating(fn, item_name("inputs", i, is_tuple), x)
    return tuple(_own_memory(x) for x in xs), is_tuple


def match_vectors(
    fn: str,
    name: str,
    value: object,
    like: tuple[Tensor, ...],
    like_is_tuple: bool,
    like_name: str,
) -> tuple[Tensor, ...]:
    """Check that ``value`` has the structure, shapes, dtypes and devices of ``like``.

    ``like_name`` names ``like`` in messages.
    """
    vs, is_tuple = as_tuple(fn, name, value)
    if is_tuple != like_is_tuple:
        expected = f"a tuple of {len(like)} Tensors" if like_is_tuple else "a Tensor"
        raise TypeError(
            f"{_prefix(fn)}`{name}` must be {expected}, like `{like_name}`; "
            f"got {type(value).__name__}."
        )
    if len(vs) != len(like):
        raise ValueError(
            f"{_prefix(fn)}`{name}` must have one Tensor per element of `{like_name}` "
            f"({len(like)}); got {len(vs)}."
        )
    for i, (v, ref) in enumerate(zip(vs, like, strict=True)):
        v_name, ref_name = item_name(name, i, is_tuple), item_name(like_name, i, is_tuple)
        _check_real_floating(fn, v_name, v)
        if v.shape != ref.shape:
            raise ValueError(
                f"{_prefix(fn)}`{v_name}` must have the shape of `{ref_name}`, "
                f"{fmt_shape(ref.shape)}; got {fmt_shape(v.shape)}."
            )
        # Mixed dtypes would be silently rounded to one of them, mixed devices fail deep in torch.
        if v.dtype != ref.dtype:
            raise TypeError(
                f"{_prefix(fn)}`{v_name}` must have dtype {ref.dtype} like `{ref_name}`; "
                f"got {v.dtype}."
            )
        if v.device != ref.device:
            raise ValueError(
                f"{_prefix(fn)}`{v_name}` must be on device {ref.device} like `{ref_name}`; "
                f"got {v.device}."
            )
    return tuple(_own_memory(v) for v in vs)


def restore(values: tuple[Tensor, ...], is_tuple: bool) -> TensorOrTensors:
    """Return a tuple as the caller's structure: the tuple itself or its only element."""
    return values if is_tuple else values[0]


def check_output(fn: str, out: object, name: str = "func") -> Tensor:
    """Check that the callable ``name`` returned a real floating-point Tensor."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{_prefix(fn)}`{name}` must return a Tensor; got {type(out).__name__}.")
    if not out.dtype.is_floating_point:
        raise TypeError(
            f"{_prefix(fn)}`{name}` must return a real floating-point Tensor ({_FLOAT_DTYPES}); "
            f"got dtype {out.dtype}."
        )
    return out


def checked(fn: str, func: Func) -> Func:
    """Wrap ``func`` so that its output is validated when it is traced (a cheap isinstance)."""

    def wrapped(*args: Tensor) -> Tensor:
        return check_output(fn, func(*args))

    return wrapped


def check_scalar_output(fn: str, out: object, name: str = "func") -> Tensor:
    """Check that ``name`` returned a one-element real floating-point Tensor; return it 0-dim."""
    out = check_output(fn, out, name)
    if out.numel() != 1:
        raise ValueError(
            f"{_prefix(fn)}`{name}` must return a one-element Tensor (a scalar); "
            f"got shape {fmt_shape(out.shape)}."
        )
    return out.reshape(())


def check_strategy(fn: str, strategy: object, allowed: tuple[str, ...]) -> str:
    """Check ``strategy`` against the allowed names."""
    if not isinstance(strategy, str) or strategy not in allowed:
        names = ", ".join(repr(s) for s in allowed)
        kind = "" if isinstance(strategy, str) else f" of type {type(strategy).__name__}"
        error = ValueError if isinstance(strategy, str) else TypeError
        raise error(f"{_prefix(fn)}`strategy` must be one of {names}; got {strategy!r}{kind}.")
    return strategy


def check_chunk_size(fn: str, chunk_size: object) -> int | None:
    """Check that ``chunk_size`` is None or a positive integer (``int`` or e.g. ``numpy.int64``)."""
    if chunk_size is None:
        return None
    # Any integer type (int, numpy.int64, a one-element integer tensor) has __index__; floats don't.
    try:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, SupportsIndex):
            raise TypeError
        chunk_size = operator.index(chunk_size)
    except TypeError:
        raise TypeError(
            f"{_prefix(fn)}`chunk_size` must be None or a positive int; "
            f"got {type(chunk_size).__name__}."
        ) from None
    if chunk_size < 1:
        raise ValueError(
            f"{_prefix(fn)}`chunk_size` must be None or a positive int; got {chunk_size}."
        )
    return chunk_size


def error(fn: str, message: str) -> str:
    """Prefix a message with the public function's name."""
    return _prefix(fn) + message

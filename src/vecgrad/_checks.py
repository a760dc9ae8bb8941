"""Every check of an argument, raising refusals that the public boundary names (see ``_api``).

Checks of single values first, then of tensors, batches, models and parameters.
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import SupportsIndex, TypeVar, cast

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from vecgrad._memory import in_transform

S = TypeVar("S", bound=str)
_FLOATS = "float16, bfloat16, float32 or float64"
# The gallery example on complex numbers (gallery/02_jacobians/plot_04_complex.py).
COMPLEX_EXAMPLE = "https://vecgrad.github.io/vecgrad/gallery/02_jacobians/plot_04_complex.html"
# What a function's evaluation gives the Jacobian code: its outputs, and the tensors of its aux.
Outputs = tuple[tuple[Tensor, ...], tuple[Tensor, ...]]


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


def check_no_arguments(fn: object) -> None:
    """Refuse an ``fn`` that cannot be called as ``fn()``: timing it would fail in the timer."""
    check_callable("fn", fn)
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # some builtins have no signature: let the call decide
        return
    try:
        signature.bind()
    except TypeError:
        needed = [
            name
            for name, p in signature.parameters.items()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise BadType(
            "`fn` must be callable with no arguments; got a callable that needs "
            f"{', '.join(repr(n) for n in needed)}. Bind them first, e.g. "
            "`lambda: fn(x)` or functools.partial(fn, x)."
        ) from None


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


def complex_recipe(dtype: torch.dtype) -> str:
    """For a complex ``dtype``, the way to differentiate anyway; otherwise nothing.

    A complex Jacobian of ``output.shape + input.shape`` holds only holomorphic derivatives, and
    torch.func.jacrev and jacfwd refuse complex tensors too; the real view has one answer.
    """
    if not dtype.is_complex:
        return ""
    return (
        " vecgrad differentiates real tensors: differentiate the real view instead, with "
        "torch.view_as_real and torch.view_as_complex, as the example at "
        f"{COMPLEX_EXAMPLE} shows."
    )


def check_real_floating(name: str, tensor: Tensor) -> None:
    """Refuse a tensor of an integer, boolean or complex dtype."""
    if not tensor.dtype.is_floating_point:
        raise BadType(
            f"`{name}` must have a real floating-point dtype ({_FLOATS}); got {tensor.dtype}."
            + complex_recipe(tensor.dtype)
        )


def check_output(out: object, name: str = "func", where: str = "") -> Tensor:
    """Check that the callable ``name`` returned a real floating-point Tensor.

    ``where`` names the element of a tuple of outputs, e.g. `` (output [1])``.
    """
    if not isinstance(out, Tensor):
        raise BadType(f"`{name}` must return a Tensor; got {type(out).__name__}{where}.")
    if out.layout != torch.strided:
        raise BadType(
            f"`{name}` must return a dense (strided) Tensor; got layout {out.layout}{where}."
        )
    if out.is_meta:
        raise BadValue(
            f"`{name}` must return a Tensor with values; got one on the meta device{where}."
        )
    if not out.dtype.is_floating_point:
        raise BadType(
            f"`{name}` must return a real floating-point Tensor ({_FLOATS}); "
            f"got dtype {out.dtype}{where}." + complex_recipe(out.dtype)
        )
    return out


def check_outputs(out: object, has_aux: bool) -> tuple[tuple[Tensor, ...], bool, object]:
    """Split what ``func`` returned into ``(outputs, was_tuple, aux)``, each output checked.

    ``func`` returns a Tensor or a tuple of Tensors, or with ``has_aux`` a pair ``(that, aux)``
    whose ``aux`` is handed back untouched. Lists are refused, as for ``inputs``, so that the
    structure of the result is never ambiguous.
    """
    aux: object = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            got = f"a tuple of length {len(out)}" if isinstance(out, tuple) else type(out).__name__
            raise BadType(f"`func` must return a pair (output, aux) with has_aux=True; got {got}.")
        out, aux = out
    if isinstance(out, Tensor):
        return (check_output(out),), False, aux
    if not isinstance(out, tuple):
        hint = " (return tuple(...) instead of a list)" if isinstance(out, list) else ""
        raise BadType(
            f"`func` must return a Tensor or a tuple of Tensors; got {type(out).__name__}{hint}."
        )
    if not out:
        raise BadValue("`func` must return a Tensor or a non-empty tuple of Tensors; got ().")
    return (
        tuple(check_output(o, where=f" (output [{i}])") for i, o in enumerate(out)),
        True,
        aux,
    )


def scalar_output(out: object, name: str = "func") -> Tensor:
    """Check that ``name`` returned a one-element real floating-point Tensor; return it 0-dim."""
    out = check_output(out, name)
    if out.numel() != 1:
        raise BadValue(
            f"`{name}` must return a one-element Tensor (a scalar); "
            f"got shape {fmt_shape(out.shape)}."
        )
    return out.reshape(())


def check_choice(name: str, value: object, allowed: tuple[S, ...]) -> S:
    """Check that ``value`` is one of the strings ``allowed`` (the arguments of a Literal)."""
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


def one_tensor(value: object, context: str) -> Tensor:
    """Refuse ``inputs`` that is not one Tensor, for a trace or diagonal (``context`` says which).

    Several inputs would index the matrix by pairs of (input, element), a structure no result
    of these functions has; the caller can concatenate them instead.
    """
    if isinstance(value, Tensor):
        return value
    expected = f"`inputs` must be one Tensor{context}, whose elements index the square matrix"
    if not isinstance(value, (tuple, list)):
        raise BadType(f"{expected}; got {type(value).__name__}.")
    raise BadType(
        f"{expected}; got a {type(value).__name__} of length {len(value)}. Concatenate "
        "several inputs into one Tensor, or hold all but one fixed in a closure."
    )


def square_output(output: Tensor, like: Tensor, context: str) -> Tensor:
    """Check that ``output`` has the shape of the input ``like``: the Jacobian is square."""
    if output.shape != like.shape:
        raise BadValue(
            f"`func` must return a Tensor of the shape of `inputs`, {fmt_shape(like.shape)}, "
            f"{context} (a square Jacobian); got shape {fmt_shape(output.shape)}."
        )
    return output


def diagonal_colors(colors: object, elementwise: bool, like: Tensor) -> Tensor | None:
    """The colour of each element of ``like``, flattened; None when every element is its own.

    ``elementwise`` is the case of a single colour. Colours are plain integers fixed for the
    whole call: their values decide which passes are made, so they cannot be batched or
    differentiated by a torch.func transform. They are moved to ``like``'s device.
    """
    if colors is None:
        if not elementwise:
            return None
        return torch.zeros(like.numel(), dtype=torch.long, device=like.device)
    colors = check_tensor("colors", colors)
    if colors.dtype.is_floating_point or colors.dtype.is_complex or colors.dtype == torch.bool:
        raise BadType(f"`colors` must have an integer dtype; got {colors.dtype}.")
    if elementwise:
        raise BadValue(
            "`elementwise` must be False when `colors` is given (elementwise=True is the case "
            "of one colour for every element); got True."
        )
    flat = (like.numel(),)
    if colors.shape not in (like.shape, flat):
        also = "" if like.shape == flat else f", or {fmt_shape(flat)}"
        raise BadValue(
            f"`colors` must have the shape of `inputs`, {fmt_shape(like.shape)}{also}; "
            f"got {fmt_shape(colors.shape)}."
        )
    if in_transform(colors):
        raise BadValue(
            "`colors` must be a plain Tensor, fixed for the whole call; got a Tensor batched or "
            "differentiated by a torch.func transform. Close over the colours instead."
        )
    return colors.reshape(-1).to(like.device)


def common_batch_size(tensors: Sequence[tuple[str, Tensor]]) -> int:
    """Check that every named tensor has a leading batch dimension of one size; return it."""
    for name, x in tensors:
        if x.dim() == 0:
            raise BadValue(f"`{name}` must have a leading batch dimension; got a 0-dim Tensor.")
    sizes = {x.shape[0] for _, x in tensors}
    if len(sizes) > 1:
        shapes = ", ".join(fmt_shape(x.shape) for _, x in tensors)
        raise BadValue(
            "every Tensor in `inputs` must have the same batch size (first dimension); "
            f"got shapes {shapes}."
        )
    return tensors[0][1].shape[0]


def losses_vector(losses: object) -> Tensor:
    """Check that ``losses`` is a non-empty 1-D floating-point Tensor attached to a graph."""
    losses = check_tensor("losses", losses)
    if losses.dim() != 1 or losses.numel() == 0:
        raise BadValue(
            "`losses` must be a non-empty 1-D Tensor, one loss per sample; "
            f"got shape {fmt_shape(losses.shape)}."
        )
    check_real_floating("losses", losses)
    if not losses.requires_grad:
        raise BadValue(
            "`losses` must be attached to an autograd graph (computed from tensors that "
            "require grad, outside torch.no_grad()); got a Tensor with requires_grad=False."
        )
    return losses


def named_params(params: object) -> dict[str, Tensor]:
    """The tensors to differentiate, by name."""
    expected = (
        "`params` must be an nn.Module, a mapping name -> Tensor or an iterable of "
        "(name, Tensor) pairs such as model.named_parameters()"
    )
    if isinstance(params, nn.Module):
        items: list[tuple[object, object]] = list(trainable_params(params).items())
    elif isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, Iterable) and not isinstance(params, (Tensor, str)):
        items = list(params)
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise BadType(f"{expected}; got an iterable holding {type(item).__name__}.")
    else:
        raise BadType(f"{expected}; got {type(params).__name__}.")
    if not items:
        raise BadValue("`params` must contain at least one Tensor; got none.")
    named = {}
    for key, value in items:
        if not isinstance(key, str):
            raise BadType(f"{expected}; got the key {key!r} of type {type(key).__name__}.")
        label = f"params[{key!r}]"
        tensor = named[key] = check_tensor(label, value)
        if not tensor.requires_grad:
            raise BadValue(
                f"`{label}` must require grad; got a Tensor of shape {fmt_shape(tensor.shape)} "
                "with requires_grad=False."
            )
    return named


def rowwise(func: Callable[..., Outputs], batch: int) -> Callable[..., Outputs]:
    """``func``, checked to return Tensors whose first dimension is the batch size.

    ``func`` returns ``(outputs, aux)``, as :meth:`vecgrad._api.Call.outputs` does.
    """

    def checked(*args: Tensor) -> Outputs:
        outputs, aux = func(*args)
        for i, output in enumerate(outputs):
            if output.dim() == 0 or output.shape[0] != batch:
                where = f" (output [{i}])" if len(outputs) > 1 else ""
                raise BadValue(
                    "`func` must return a Tensor whose first dimension is the batch size "
                    f"N = {batch}; got shape {fmt_shape(output.shape)}{where}."
                )
        return outputs, aux

    return checked


def check_generator(value: object) -> torch.Generator | None:
    """Refuse a ``generator`` that is neither None nor a :class:`torch.Generator`."""
    if value is not None and not isinstance(value, torch.Generator):
        raise BadType(f"`generator` must be a torch.Generator or None; got {type(value).__name__}.")
    return value


def check_widths(widths: Tensor, x: Tensor, eps: float | None, name: str) -> None:
    """Refuse a step so small against an element that both evaluations see the same point."""
    lost = (widths == 0).nonzero()
    if lost.numel() > 0:
        j = int(lost[0, 0])
        raise BadValue(
            f"`eps` = {eps} is lost to rounding at `{name}` element {x[j].item()} "
            f"({x.dtype}): x + eps == x - eps; pass a larger `eps` or None."
        )


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


def trainable_params(model: nn.Module) -> dict[str, Tensor]:
    """The parameters of ``model`` that require grad, keyed like ``named_parameters()``.

    A parameter swapped in by a torch.func transform (an ensemble's stacked parameters under
    ``vmap`` of ``functional_call``) is being differentiated or batched, and counts too: its
    wrapper does not report the ``requires_grad`` of the tensor inside.
    """
    return {name: p for name, p in model.named_parameters() if p.requires_grad or in_transform(p)}


# Sparse Jacobians: patterns, colourings and their inputs.

_PATTERN_LAYOUTS = (torch.strided, torch.sparse_coo, torch.sparse_csr)


def single_input(value: object) -> None:
    """Refuse ``inputs`` that are not one Tensor: a sparsity pattern covers a single input."""
    if isinstance(value, (tuple, list)):
        raise BadType(
            f"`inputs` must be one Tensor; got a {type(value).__name__} of {len(value)}. "
            "Concatenate them, e.g. torch.cat([x.flatten() for x in inputs]), and split the "
            "result inside func: a sparsity pattern covers the elements of one input."
        )


def sparsity_pattern(value: object, coloring: type | None = None) -> Tensor:
    """Check a sparsity pattern: a bool Tensor, strided, sparse COO or 2-D sparse CSR.

    ``coloring`` is the class also accepted (its instances are checked elsewhere), for the
    message.
    """
    expected = "a bool Tensor" + ("" if coloring is None else f" or a {coloring.__name__}")
    if not isinstance(value, Tensor):
        raise BadType(f"`sparsity` must be {expected}; got {type(value).__name__}.")
    if value.layout not in _PATTERN_LAYOUTS:
        raise BadType(
            "`sparsity` must be a strided, sparse COO or sparse CSR Tensor; got layout "
            f"{value.layout}. Convert it with .to_sparse()."
        )
    if value.is_meta:
        raise BadValue("`sparsity` must hold values; got a Tensor on the meta device.")
    if value.layout == torch.strided and in_transform(value):
        raise BadValue(
            "`sparsity` must be a plain Tensor, fixed for the whole call; got a Tensor batched or "
            "differentiated by a torch.func transform. Close over the pattern instead."
        )
    if value.dtype != torch.bool:
        raise BadType(
            "`sparsity` must have dtype torch.bool, True where the derivative may be nonzero; "
            f"got {value.dtype}. Pass `pattern != 0`."
        )
    if value.layout != torch.strided and value.dense_dim() > 0:
        raise BadValue(
            "`sparsity` must have sparse dimensions only; got a hybrid sparse Tensor with "
            f"dense_dim() = {value.dense_dim()}."
        )
    if value.layout == torch.sparse_csr and value.dim() != 2:
        raise BadValue(
            f"`sparsity` must be 2-D when sparse CSR; got {value.dim()} dimensions. Use a "
            "sparse COO Tensor (.to_sparse_coo())."
        )
    return value


def check_input_ndim(value: object, ndim: int) -> int:
    """Check ``input_ndim``: how many trailing dimensions of ``sparsity`` are the input's."""
    expected = f"an int from 0 to sparsity.dim() = {ndim}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadType(f"`input_ndim` must be {expected}; got {type(value).__name__}.")
    if not 0 <= value <= ndim:
        raise BadValue(f"`input_ndim` must be {expected}; got {value}.")
    return value


def pattern_for_input(shape: Sequence[int], input_shape: Sequence[int]) -> None:
    """Check that a pattern of ``shape`` ends in the input's shape."""
    k = len(input_shape)
    if len(shape) < k or tuple(shape[len(shape) - k :]) != tuple(input_shape):
        raise BadValue(
            "`sparsity` must have shape func(inputs).shape + inputs.shape, ending in "
            f"{fmt_shape(input_shape)}; got {fmt_shape(shape)}."
        )


def pattern_for_output(
    pattern_output: Sequence[int], output: Sequence[int], input_shape: Sequence[int]
) -> None:
    """Check that the output ``func`` returned has the shape the pattern was made for."""
    if tuple(pattern_output) != tuple(output):
        expected = fmt_shape((*output, *input_shape))
        got = fmt_shape((*pattern_output, *input_shape))
        raise BadValue(
            f"`sparsity` must have shape func(inputs).shape + inputs.shape = {expected}; got {got}."
        )


def coloring_for(
    mode: str, coloring_input: Sequence[int], input_shape: Sequence[int], strategy: str
) -> None:
    """Check that a reused colouring fits ``inputs`` and ``strategy``."""
    if tuple(coloring_input) != tuple(input_shape):
        raise BadValue(
            f"`sparsity` must be a colouring for inputs of shape {fmt_shape(input_shape)}; "
            f"got one for shape {fmt_shape(coloring_input)}."
        )
    if strategy not in ("auto", mode):
        raise BadValue(
            f"`strategy` must be 'auto' or the colouring's mode {mode!r} when `sparsity` is a "
            f"colouring; got {strategy!r}."
        )


def square_pattern(output_shape: Sequence[int], input_shape: Sequence[int]) -> None:
    """Check that a pattern to star-colour is square: its output dimensions are its input's."""
    if tuple(output_shape) != tuple(input_shape):
        raise BadValue(
            "`sparsity` must be square for strategy='symmetric', its last input_ndim "
            "dimensions repeating the others as in a Hessian's pattern; got shape "
            f"{fmt_shape((*output_shape, *input_shape))}, read as "
            f"output {fmt_shape(output_shape)} and input {fmt_shape(input_shape)} (the last "
            "input_ndim dimensions)."
        )


def symmetric_pattern(entry: tuple[int, ...], transposed: tuple[int, ...]) -> None:
    """Refuse a pattern to star-colour that holds ``entry`` but not ``transposed``."""
    raise BadValue(
        "`sparsity` must be symmetric, as a Hessian's pattern is: True at "
        f"(j, i) wherever True at (i, j); got True at {entry} but not at {transposed}. Pass "
        "`pattern | pattern.mT` for a 2-D pattern."
    )


def hessian_pattern(shape: Sequence[int], input_shape: Sequence[int]) -> None:
    """Check that a Hessian's pattern has the shape ``inputs.shape + inputs.shape``."""
    if tuple(shape) != (*input_shape, *input_shape):
        raise BadValue(
            "`sparsity` must have shape inputs.shape + inputs.shape = "
            f"{fmt_shape((*input_shape, *input_shape))}; got {fmt_shape(shape)}."
        )


def hessian_coloring(
    output_shape: Sequence[int], input_shape: Sequence[int], shape: Sequence[int]
) -> None:
    """Check that a reused colouring is one of a Hessian's pattern for inputs of ``shape``."""
    if tuple(output_shape) != tuple(shape) or tuple(input_shape) != tuple(shape):
        raise BadValue(
            "`sparsity` must be a colouring of a pattern of shape inputs.shape + inputs.shape "
            f"= {fmt_shape((*shape, *shape))}; got one of shape "
            f"{fmt_shape((*output_shape, *input_shape))}."
        )


def jacobian_coloring(mode: str) -> None:
    """Refuse a symmetric colouring for a Jacobian: its values hold for symmetric matrices."""
    if mode == "symmetric":
        raise BadValue(
            "`sparsity` must be a colouring of mode 'forward' or 'reverse'; got a 'symmetric' "
            "one, whose products give the entries of a symmetric matrix only. Pass it to "
            "vecgrad.sparse_hessian for a Hessian, or colour the pattern with "
            "strategy='forward' or 'reverse'."
        )


WRONG_FIELDS = "whose mode, shapes, pattern or colours have the wrong type or shape"


def coloring_fields(valid: bool, reason: str) -> None:
    """Refuse a colouring that :func:`vecgrad.color_jacobian` did not make and is not valid.

    One it made and that was changed in place since counts as made otherwise.
    """
    if not valid:
        raise BadValue(
            "`sparsity` must be a colouring made by vecgrad.color_jacobian and left unchanged; "
            f"got a JacobianColoring built or changed otherwise, {reason}."
        )


def coloring_shape(value: object) -> torch.Size:
    """A shape field of a colouring :func:`vecgrad.color_jacobian` did not make, checked."""
    try:
        return torch.Size(value)  # type: ignore[arg-type]
    except TypeError:
        coloring_fields(False, WRONG_FIELDS)
        raise


_DENSE_JACOBIAN = "jacobian, which gives a dense Jacobian"


_CARRY_GRAPH = "its results carry the autograd graph"


def not_transformed(
    name: str,
    transformed: bool,
    function: str,
    dense: str = _DENSE_JACOBIAN,
    outside: str = _CARRY_GRAPH,
) -> None:
    """Refuse to run inside torch.func transforms, where sparse results cannot exist.

    ``dense`` names the vecgrad function that works there instead, and what it gives;
    ``outside`` says why calling ``function`` outside the transform loses nothing.
    """
    if transformed:
        what = "inputs" if name == "inputs" else "tensors it closes over"
        raise BadValue(
            f"`{name}` must not be transformed by torch.func (vmap, grad, jacrev, jvp, ...): "
            f"{function} builds a sparse Tensor, which these transforms cannot batch or "
            f"wrap; got {what} under a transform. Call {function} outside the transform "
            f"({outside}), or use vecgrad.{dense} inside one."
        )


# Curvature with respect to a model's parameters.


def same_batch(inputs: Tensor, targets: Tensor) -> None:
    """Check that ``inputs`` and ``targets`` hold the same number of samples."""
    if inputs.shape[0] != targets.shape[0]:
        raise BadValue(
            "`inputs` and `targets` must have the same batch size (first dimension); "
            f"got shapes {fmt_shape(inputs.shape)} and {fmt_shape(targets.shape)}."
        )


def like_params(name: str, value: object, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``value``, a vector keyed like ``params``: each a Tensor of its parameter's shape, dtype
    and device; in the order of ``params``."""
    expected = "a mapping from each trainable parameter's name to a Tensor"
    if not isinstance(value, Mapping):
        raise BadType(
            f"`{name}` must be {expected}, like dict(model.named_parameters()); "
            f"got {type(value).__name__}."
        )
    missing = [key for key in params if key not in value]
    extra = [key for key in value if key not in params]
    if missing or extra:
        raise BadValue(
            f"`{name}` must have the names of the trainable parameters, {list(params)}; "
            f"got {list(value)} (missing {missing}, unknown {extra})."
        )
    vector = {}
    for key, p in params.items():
        label = f"{name}[{key!r}]"
        vector[key] = check_like(label, check_tensor(label, value[key]), p, "its parameter")
    return vector


def check_like(name: str, v: Tensor, ref: Tensor, ref_name: str) -> Tensor:
    """Check that the vector ``v`` is real floating point with ``ref``'s shape, dtype and device.

    Mixed dtypes would be silently rounded to one of them; mixed devices fail deep in torch.
    """
    check_real_floating(name, v)
    if v.shape != ref.shape:
        raise BadValue(
            f"`{name}` must have the shape of {ref_name}, {fmt_shape(ref.shape)}; "
            f"got {fmt_shape(v.shape)}."
        )
    if v.dtype != ref.dtype:
        raise BadType(f"`{name}` must have dtype {ref.dtype} like {ref_name}; got {v.dtype}.")
    if v.device != ref.device:
        raise BadValue(f"`{name}` must be on device {ref.device} like {ref_name}; got {v.device}.")
    return v

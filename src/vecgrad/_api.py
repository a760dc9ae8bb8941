"""The boundary of every public function: its name in errors, its point, its results.

:func:`public` wraps a public function so that the refusals its checks raise
(:class:`~vecgrad._checks.BadType`, :class:`~vecgrad._checks.BadValue`) reach the caller as
TypeError and ValueError prefixed ``vecgrad.NAME: ``; no check names the function itself.
:class:`Call` takes ``func`` and ``inputs`` (a Tensor or a tuple of Tensors) once, checks them,
works on a tuple, and gives results back in the caller's structure, with memory of their own.
Nothing is detached and no grad mode is changed, so that results carry the autograd graph and
every public function runs inside torch.func transforms and inside another one.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar, cast, get_type_hints

from torch import Tensor, nn

from vecgrad._checks import (
    BadType,
    BadValue,
    Outputs,
    check_bool,
    check_callable,
    check_like,
    check_output,
    check_outputs,
    check_real_floating,
    check_tensor,
)
from vecgrad._docs import fill
from vecgrad._memory import owned, unshared

# The aliases of public signatures live here: autodoc evaluates a public function's overloads in
# the globals of the @public wrapper, which are this module's. `public` gives each function a
# signature with these evaluated, so that help() and the API pages show the types they stand for.
TensorOrTensors: TypeAlias = Tensor | tuple[Tensor, ...]
Func: TypeAlias = Callable[..., Tensor]
# A function of several outputs, and one that returns (output, aux) with has_aux=True.
Funcs: TypeAlias = Callable[..., tuple[Tensor, ...]]
AuxFunc: TypeAlias = Callable[..., tuple[Tensor, Any]]
AuxFuncs: TypeAlias = Callable[..., tuple[tuple[Tensor, ...], Any]]
# Any of the four, for the implementation behind their overloads.
AnyFunc: TypeAlias = Callable[..., Tensor | tuple[Any, ...]]
NamedParams: TypeAlias = nn.Module | Mapping[str, Tensor] | Iterable[tuple[str, Tensor]]
# The string choices of the public functions, so that a type checker catches a misspelt one;
# their checks take the allowed strings from here (typing.get_args).
Strategy: TypeAlias = Literal["auto", "reverse", "forward", "loop"]
BatchStrategy: TypeAlias = Literal["auto", "reverse", "forward"]
SparseStrategy: TypeAlias = Literal["auto", "forward", "reverse"]
ColoringStrategy: TypeAlias = Literal["auto", "forward", "reverse", "symmetric"]
Quantity: TypeAlias = Literal[
    "frobenius", "jacobian_trace", "jacobian_diagonal", "hessian_trace", "hessian_diagonal"
]
DiagonalOf: TypeAlias = Literal["jacobian", "hessian"]
P = ParamSpec("P")
R = TypeVar("R")


def public(fn: Callable[P, R]) -> Callable[P, R]:
    """Make ``fn`` public: refusals raised while it runs are named ``vecgrad.<fn name>: ``.

    Its docstring's shared paragraphs (``%%(name)s``, see :mod:`vecgrad._docs`) are filled in.

    They are re-raised as plain TypeError or ValueError, so that a public function called inside
    another one's ``func`` keeps its own name.
    """
    fn.__doc__ = fill(fn.__doc__)
    prefix = f"vecgrad.{fn.__name__}: "
    # The argument whose code runs under the transforms: func, model or fn.
    subject = next(iter(inspect.signature(fn).parameters))

    @functools.wraps(fn)
    def boundary(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except BadType as refusal:
            raise TypeError(prefix + str(refusal)) from None
        except BadValue as refusal:
            raise ValueError(prefix + str(refusal)) from None
        except (NotImplementedError, RuntimeError) as err:
            reason = _unsupported_function(err)
            if reason is None:
                raise
            raise TypeError(prefix + f"`{subject}` {reason}") from err

    boundary.__signature__ = _evaluated_signature(fn)  # type: ignore[attr-defined]
    return boundary


def _evaluated_signature(fn: Callable[..., object]) -> inspect.Signature:
    """``fn``'s signature with its annotations evaluated: types, not the strings of aliases.

    The modules use ``from __future__ import annotations``, so their annotations are strings
    such as ``'TensorOrTensors'``; help() and the API pages should show what they stand for.
    """
    hints = get_type_hints(fn)
    signature = inspect.signature(fn)
    return signature.replace(
        parameters=[
            p.replace(annotation=hints.get(name, p.annotation))
            for name, p in signature.parameters.items()
        ],
        return_annotation=hints.get("return", signature.return_annotation),
    )


# Ops whose batched backward (vmap over the VJP) returns wrong values in torch 2.13, silently:
# reverse mode vectorised over cotangents is not a safe fallback for them (docs/errors.md).
_BATCHED_BACKWARD_WRONG = frozenset({"_cdist_forward"})


def _unsupported_function(err: Exception) -> str | None:
    """Say which piece a custom autograd.Function lacks, from torch's error; None if not that.

    torch raises these deep inside a transform, in words about its own internals; the caller
    needs to know which of their Functions to change, and how.
    """
    message = str(err)
    if isinstance(err, NotImplementedError) and "must implement the jvp function" in message:
        return (
            "must support forward-mode AD; got a custom torch.autograd.Function without a `jvp` "
            "staticmethod. Define `jvp`, or use a reverse-mode method."
        )
    vmap = re.match(r"You tried to vmap over (\w+), but it does not have vmap support", message)
    if vmap:
        return (
            "must support torch.func.vmap; got the custom torch.autograd.Function "
            f"{vmap.group(1)} without a vmap rule. Set `generate_vmap_rule = True` on it or "
            "define a `vmap` staticmethod."
        )
    if "Sparse CSR tensors do not have strides" in message:
        return "must return a dense (strided) Tensor; got a sparse CSR one. Call .to_dense()."
    forward = re.match(r"Trying to use forward AD with (\w+) that does not support it", message)
    if forward and "sparse" in forward.group(1):
        return (
            "must return a dense (strided) Tensor; got a sparse one (forward mode cannot "
            f"differentiate {forward.group(1)}). Call .to_dense()."
        )
    if forward and forward.group(1) in _BATCHED_BACKWARD_WRONG:
        return (
            f"must support forward-mode AD; it calls {forward.group(1)}, which has no "
            "forward-mode derivative in this version of torch, and whose backward gives wrong "
            "values under torch.func.vmap. Use jacobian with strategy='loop', or vjp one "
            "cotangent at a time."
        )
    if forward:
        return (
            f"must support forward-mode AD; it calls {forward.group(1)}, which has no "
            "forward-mode derivative in this version of torch. Use a reverse-mode method "
            "(vjp, or jacobian with strategy='reverse')."
        )
    if "that would mutate a captured Tensor" in message:
        return (
            "must not modify in place a tensor it closes over, which torch.func transforms "
            "cannot differentiate; a common case is BatchNorm in training mode updating its "
            "running statistics. Call model.eval(), build the layer with "
            "track_running_stats=False, or pass the tensor in as an input."
        )
    if "Tensor.requires_grad_() (or perhaps" in message:
        return (
            "must not call requires_grad_() (or torch.autograd.grad, or "
            "torch.autograd.functional) on the tensors it is given: vecgrad differentiates "
            "them with torch.func transforms. Write `func` as a plain function of its inputs; "
            "nested derivatives work with vecgrad's or torch.func's functions."
        )
    if "it must override the setup_context staticmethod" in message:
        return (
            "must work under torch.func transforms; got a custom torch.autograd.Function whose "
            "`forward` takes `ctx` (the older style). Give it a `setup_context` staticmethod "
            "and a `forward` without `ctx`."
        )
    return None


def _as_tuple(name: str, value: object) -> tuple[tuple[Tensor, ...], bool]:
    """Normalise a Tensor or a tuple of Tensors to ``(tuple, was_tuple)``.

    Lists are refused so that the structure of the result (tensor or tuple) is never ambiguous.
    """
    if isinstance(value, Tensor):
        return (check_tensor(name, value),), False
    if not isinstance(value, tuple):
        hint = " (pass tuple(...) instead of a list)" if isinstance(value, list) else ""
        raise BadType(
            f"`{name}` must be a Tensor or a tuple of Tensors; got {type(value).__name__}{hint}."
        )
    if not value:
        raise BadValue(
            f"`{name}` must be a Tensor or a non-empty tuple of Tensors; got an empty tuple."
        )
    return tuple(check_tensor(f"{name}[{i}]", item) for i, item in enumerate(value)), True


def _tensors(aux: object) -> Iterator[Tensor]:
    """The Tensors of ``aux``, depth first through tuples, lists and dicts."""
    if isinstance(aux, Tensor):
        yield aux
    elif isinstance(aux, (tuple, list)):
        for item in aux:
            yield from _tensors(item)
    elif isinstance(aux, dict):
        for item in aux.values():
            yield from _tensors(item)


def _rebuilt(aux: object, tensors: Iterator[Tensor]) -> object:
    """``aux`` with its Tensors, in the order of :func:`_tensors`, taken from ``tensors``."""
    if isinstance(aux, Tensor):
        return next(tensors)
    if isinstance(aux, tuple) and hasattr(aux, "_fields"):  # a namedtuple
        return cast(Any, type(aux))(*(_rebuilt(item, tensors) for item in aux))
    if isinstance(aux, (tuple, list)):
        return type(aux)(_rebuilt(item, tensors) for item in aux)
    if isinstance(aux, dict):
        rebuilt = copy.copy(aux)  # keeps the mapping's type (OrderedDict, defaultdict)
        for key, item in aux.items():
            rebuilt[key] = _rebuilt(item, tensors)
        return rebuilt
    return aux


class Call:
    """The function and point of one call of a public function, checked.

    ``xs`` holds ``inputs`` as a tuple of real floating-point tensors whose elements each have
    memory of their own, ``is_tuple`` whether the caller passed a tuple. Nothing is detached:
    results are differentiable with respect to the inputs, the vectors and what ``func`` closes
    over, as with torch.func (see "Differentiating vecgrad's results" in the docs).
    """

    def __init__(self, func: object, inputs: object, has_aux: object = False) -> None:
        check_callable("func", func)
        self._func = cast(Func, func)
        self.has_aux = check_bool("has_aux", has_aux)
        self._aux: object = None
        # Whether func returns a tuple of Tensors: known once :meth:`outputs` has run.
        self.out_is_tuple = False
        xs, self.is_tuple = _as_tuple("inputs", inputs)
        for i, x in enumerate(xs):
            check_real_floating(self.name("inputs", i), x)
        self.xs = tuple(unshared(x) for x in xs)
        self._caller = list(self.xs)  # memory that no result may share

    def func(self, *args: Tensor) -> Tensor:
        """The caller's ``func``, checked to return a real floating-point Tensor."""
        return check_output(self._func(*args))

    def outputs(self, *args: Tensor) -> Outputs:
        """The caller's ``func`` as ``(outputs, aux_tensors)``, two tuples of Tensors.

        torch.func's ``has_aux`` takes only Tensors: the Tensors of ``aux`` (in tuples, lists
        and dicts) go through the transforms, which unwrap them, and the rest of ``aux`` waits
        here for :meth:`aux`. The structure of the outputs is recorded for
        :meth:`restore_outputs` and :meth:`restore_blocks`.
        """
        outputs, self.out_is_tuple, self._aux = check_outputs(self._func(*args), self.has_aux)
        return outputs, tuple(_tensors(self._aux))

    def aux(self, tensors: tuple[Tensor, ...]) -> object:
        """``func``'s aux, its Tensors replaced by ``tensors`` (as the transforms gave them)."""
        return _rebuilt(self._aux, iter(tensors))

    def name(self, name: str, index: int) -> str:
        """Name of element ``index`` of an argument structured like ``inputs``, for messages."""
        return f"{name}[{index}]" if self.is_tuple else name

    def tangents(self, name: str, value: object) -> tuple[Tensor, ...]:
        """Check that ``value`` has the structure, shapes, dtypes and devices of ``inputs``."""
        return self._like(name, value, self.xs, "inputs", self.is_tuple)

    def cotangents(
        self, name: str, value: object, outputs: tuple[Tensor, ...]
    ) -> tuple[Tensor, ...]:
        """Check that ``value`` has the structure, shapes, dtypes and devices of the outputs."""
        return self._like(name, value, outputs, "func(inputs)", self.out_is_tuple)

    def cotangent(self, name: str, value: object, output: Tensor) -> Tensor:
        """Check that ``value`` is one Tensor with the shape, dtype and device of ``output``."""
        (cotangent,) = self._like(name, value, (output,), "func(inputs)", False)
        return cotangent

    def _like(
        self,
        name: str,
        value: object,
        like: tuple[Tensor, ...],
        like_name: str,
        like_tuple: bool,
    ) -> tuple[Tensor, ...]:
        vs, is_tuple = _as_tuple(name, value)
        if is_tuple != like_tuple:
            expected = f"a tuple of {len(like)} Tensors" if like_tuple else "a Tensor"
            raise BadType(
                f"`{name}` must be {expected}, like `{like_name}`; got {type(value).__name__}."
            )
        if len(vs) != len(like):
            raise BadValue(
                f"`{name}` must have one Tensor per element of `{like_name}` ({len(like)}); "
                f"got {len(vs)}."
            )
        for i, (v, ref) in enumerate(zip(vs, like, strict=True)):
            v_name, ref_name = (
                (f"{name}[{i}]", f"{like_name}[{i}]") if is_tuple else (name, like_name)
            )
            check_like(v_name, v, ref, f"`{ref_name}`")
        vs = tuple(unshared(v) for v in vs)
        self._caller.extend(vs)
        return vs

    def own(self, result: Tensor) -> Tensor:
        """``result`` with memory of its own, shared neither with the caller nor between elements.

        torch returns the caller's tensors themselves for functions like the identity, and
        reshapes of expanded tensors keep their stride 0.
        """
        return owned(unshared(result), *self._caller)

    def restore(self, results: tuple[Tensor, ...]) -> TensorOrTensors:
        """One result per input, each with its own memory, in the caller's structure."""
        mine = tuple(self.own(r) for r in results)
        return mine if self.is_tuple else mine[0]

    def restore_outputs(self, results: tuple[Tensor, ...]) -> TensorOrTensors:
        """One result per output, each with its own memory, in the structure ``func`` returned."""
        mine = tuple(self.own(r) for r in results)
        return mine if self.out_is_tuple else mine[0]

    def restore_blocks(self, blocks: tuple[tuple[Tensor, ...], ...]) -> Any:
        """Blocks ``[i][j]`` (output ``i``, input ``j``) nested like :func:`torch.func.jacrev`'s.

        A level of tuple is kept for the outputs where ``func`` returned a tuple, and for the
        inputs where ``inputs`` is a tuple: a Tensor, a tuple, or a tuple of tuples.
        """
        per_output = tuple(self.restore(row) for row in blocks)
        return per_output if self.out_is_tuple else per_output[0]

    def with_aux(self, result: tuple[Any, ...], aux: object) -> tuple[Any, ...]:
        """``result`` followed by ``aux`` when ``has_aux`` is set; ``aux`` is not touched."""
        return (*result, aux) if self.has_aux else result

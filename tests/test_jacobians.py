"""vecgrad.jacobian: every strategy against analytic Jacobians, torch.func and each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import Mock

import numpy as np
import pytest
import torch
from conftest import DTYPE, Case
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

STRATEGIES = ("auto", "reverse", "forward", "loop")
VECTORISED = ("auto", "reverse", "forward")


def assert_close_tree(actual: object, expected: object) -> None:
    """assert_close that also checks the tensor-or-tuple structure."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple)
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_close_tree(a, e)
    else:
        assert isinstance(actual, torch.Tensor)
        assert_close(actual, expected)


def call(func: Callable[..., torch.Tensor], inputs: Any) -> torch.Tensor:
    return func(*inputs) if isinstance(inputs, tuple) else func(inputs)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_analytic_jacobian(case: Case, strategy: str) -> None:
    jac = vg.jacobian(case.func, case.inputs, strategy=strategy)
    assert_close_tree(jac, case.expected)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("strategy", VECTORISED)
def test_chunk_size_does_not_change_result(case: Case, strategy: str, chunk_size: int) -> None:
    jac = vg.jacobian(case.func, case.inputs, strategy=strategy, chunk_size=chunk_size)
    assert_close_tree(jac, case.expected)


def test_matches_torch_func(case: Case) -> None:
    argnums = tuple(range(len(case.inputs))) if isinstance(case.inputs, tuple) else 0
    args = case.inputs if isinstance(case.inputs, tuple) else (case.inputs,)
    assert_close_tree(
        vg.jacobian(case.func, case.inputs), torch.func.jacrev(case.func, argnums)(*args)
    )
    assert_close_tree(
        vg.jacobian(case.func, case.inputs, strategy="forward"),
        torch.func.jacfwd(case.func, argnums)(*args),
    )


def test_matches_numerical_jacobian(case: Case) -> None:
    assert_close_tree(
        vg.jacobian(case.func, case.inputs), vg.numerical_jacobian(case.func, case.inputs)
    )


def test_strategies_agree_on_matrix_function_of_two_matrices() -> None:
    a = torch.randn(2, 3, dtype=DTYPE)
    b = torch.randn(3, 4, dtype=DTYPE)

    def func(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ y)

    reference = torch.func.jacrev(func, argnums=(0, 1))(a, b)
    for strategy in STRATEGIES:
        jac = vg.jacobian(func, (a, b), strategy=strategy)
        assert isinstance(jac, tuple)
        assert jac[0].shape == (2, 4, 2, 3)
        assert jac[1].shape == (2, 4, 3, 4)
        assert_close_tree(jac, reference)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_output_independent_of_an_input_gives_zeros(strategy: str) -> None:
    x = torch.randn(3, dtype=DTYPE)
    y = torch.randn(2, dtype=DTYPE)
    jac = vg.jacobian(lambda a, b: torch.sin(a), (x, y), strategy=strategy)
    assert isinstance(jac, tuple)
    assert_close(jac[0], torch.diag(torch.cos(x)))
    assert_close(jac[1], torch.zeros(3, 2, dtype=DTYPE))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_constant_function_gives_zeros(strategy: str) -> None:
    x = torch.randn(3, dtype=DTYPE)
    jac = vg.jacobian(lambda t: torch.ones(2, dtype=DTYPE), x, strategy=strategy)
    assert_close(jac, torch.zeros(2, 3, dtype=DTYPE))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_empty_output_and_empty_input(strategy: str) -> None:
    x = torch.randn(3, dtype=DTYPE)
    assert_close(vg.jacobian(lambda t: t[:0], x, strategy=strategy), torch.zeros(0, 3, dtype=DTYPE))
    empty = torch.zeros(0, dtype=DTYPE)
    jac = vg.jacobian(lambda t: torch.cat([t, t]).sum() + 1.0, empty, strategy=strategy)
    assert_close(jac, torch.zeros(0, dtype=DTYPE))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_result_is_differentiable_and_grads_untouched(strategy: str) -> None:
    w = torch.randn(3, dtype=DTYPE, requires_grad=True)
    x = torch.randn(3, dtype=DTYPE, requires_grad=True)

    def func(t: torch.Tensor) -> torch.Tensor:
        return torch.sin(w * t)

    jac = vg.jacobian(func, x, strategy=strategy)
    assert isinstance(jac, torch.Tensor)
    assert w.grad is None
    assert x.grad is None
    assert_close(jac, torch.diag(w.detach() * torch.cos(w.detach() * x.detach())))
    # The graph reaches both the input and the tensor func closes over, as jacrev's does.
    reference = torch.func.jacrev(func)(x)
    got = torch.autograd.grad(jac.square().sum(), (w, x))
    assert_close(got, torch.autograd.grad(reference.square().sum(), (w, x)))
    with torch.no_grad():
        assert not vg.jacobian(func, x, strategy=strategy).requires_grad


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    ("in_dtype", "out_dtype"), [(torch.float64, torch.float32), (torch.float32, torch.float64)]
)
def test_jacobian_dtype_is_the_promoted_one(
    strategy: str, in_dtype: torch.dtype, out_dtype: torch.dtype
) -> None:
    x = torch.randn(3, dtype=in_dtype)
    jac = vg.jacobian(lambda t: torch.sin(t).to(out_dtype), x, strategy=strategy)
    assert isinstance(jac, torch.Tensor)
    assert jac.dtype == torch.float64
    assert_close(jac, torch.diag(torch.cos(x.double())), check_dtype=False, rtol=1e-6, atol=1e-6)


def test_float32_inputs_give_float32_jacobian() -> None:
    x = torch.randn(4)
    for strategy in STRATEGIES:
        jac = vg.jacobian(torch.exp, x, strategy=strategy)
        assert isinstance(jac, torch.Tensor)
        assert jac.dtype == torch.float32
        assert_close(jac, torch.diag(torch.exp(x)))


class _DoubleForwardOnly(torch.autograd.Function):
    """y = 2x with a forward-mode rule and a backward pass that refuses to run."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return 2 * x

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pass

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor) -> torch.Tensor:
        return 2 * tangent

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("reverse mode was used")


def test_forward_strategy_uses_forward_mode_only() -> None:
    x = torch.randn(3, dtype=DTYPE)
    jac = vg.jacobian(_DoubleForwardOnly.apply, x, strategy="forward", chunk_size=2)
    assert_close(jac, 2 * torch.eye(3, dtype=DTYPE))
    with pytest.raises(RuntimeError, match="reverse mode was used"):
        vg.jacobian(_DoubleForwardOnly.apply, x, strategy="reverse")


@pytest.mark.parametrize(
    ("out_size", "in_sizes", "mode"),
    [
        (3, (5,), "reverse"),
        (5, (5,), "reverse"),
        (6, (5,), "forward"),
        (5, (2, 3), "reverse"),
        (6, (2, 3), "forward"),
    ],
)
def test_auto_rule_compares_output_and_total_input_sizes(
    modes: Callable[[], list[str]], out_size: int, in_sizes: tuple[int, ...], mode: str
) -> None:
    xs = tuple(torch.randn(n, dtype=DTYPE) for n in in_sizes)
    weight = torch.randn(out_size, sum(in_sizes), dtype=DTYPE)

    def func(*args: torch.Tensor) -> torch.Tensor:
        return weight @ torch.cat(args)

    inputs = xs if len(xs) > 1 else xs[0]
    jac = vg.jacobian(func, inputs)
    assert modes() == [mode]
    blocks = jac if isinstance(jac, tuple) else (jac,)
    assert_close(torch.cat(blocks, dim=1), weight)


def test_auto_choice_depends_on_shapes_only(modes: Callable[[], list[str]]) -> None:
    weight = torch.randn(6, 2, dtype=DTYPE)
    x = torch.randn(2, dtype=DTYPE)
    func = Mock(wraps=lambda t: weight @ t)
    for _ in range(3):
        assert_close(vg.jacobian(func, x), weight)
        # A new lambda on every call: nothing can be remembered about it.
        assert_close(vg.jacobian(lambda t: weight @ t, x), weight)
    assert modes() == ["forward"] * 6
    # Each call evaluates func under vjp to learn the output's size, then runs forward mode.
    assert func.call_count == 3 * 2
    # Inputs of the same shapes, a narrow output: the choice follows the output's shape.
    assert_close(vg.jacobian(lambda t: t.sum(0, keepdim=True), x), torch.ones(1, 2, dtype=DTYPE))
    assert modes()[-1] == "reverse"


def test_strategy_errors() -> None:
    x = torch.randn(3)
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.jacobian: `strategy` must be one of 'auto', 'reverse', 'forward', "
        r"'loop'; got 'fast'\.",
    ):
        vg.jacobian(torch.sin, x, strategy="fast")
    with pytest.raises(TypeError, match=r"vecgrad\.jacobian: `strategy` must be one of .*got 1"):
        vg.jacobian(torch.sin, x, strategy=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chunk_size", "error", "match"),
    [
        (0, ValueError, r"vecgrad\.jacobian: `chunk_size` must be None or a positive int; got 0"),
        (-2, ValueError, r"`chunk_size` must be None or a positive int; got -2"),
        (2.0, TypeError, r"`chunk_size` must be None or a positive int; got float"),
        (True, TypeError, r"`chunk_size` must be None or a positive int; got bool"),
        (torch.tensor(2.0), TypeError, r"`chunk_size` must be None or a positive int; got Tensor"),
    ],
)
def test_chunk_size_errors(chunk_size: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        vg.jacobian(torch.sin, torch.randn(3), chunk_size=chunk_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk_size", [np.int64(2), torch.tensor(2)])
def test_chunk_size_accepts_any_integer_type(chunk_size: object) -> None:
    x = torch.randn(5, dtype=torch.float64)
    J = vg.jacobian(torch.sin, x, chunk_size=chunk_size)  # type: ignore[arg-type]
    assert_close(J, torch.diag(torch.cos(x)))


def test_chunk_size_is_rejected_with_loop() -> None:
    with pytest.raises(
        ValueError, match=r"vecgrad\.jacobian: `chunk_size` must be None with strategy='loop'"
    ):
        vg.jacobian(torch.sin, torch.randn(3), strategy="loop", chunk_size=2)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ([torch.randn(2)], TypeError, r"`inputs` must be a Tensor or a tuple of Tensors; got list"),
        (1.0, TypeError, r"`inputs` must be a Tensor or a tuple of Tensors; got float"),
        ((), ValueError, r"`inputs` must be a Tensor or a non-empty tuple of Tensors"),
        ((torch.randn(2), 3.0), TypeError, r"`inputs\[1\]` must be a Tensor; got float"),
        (torch.arange(3), TypeError, r"`inputs` must have a real floating-point dtype .*int64"),
        (
            (torch.randn(2), torch.ones(2, dtype=torch.bool)),
            TypeError,
            r"`inputs\[1\]` must have a real floating-point dtype .*got torch\.bool",
        ),
        (
            torch.ones(2, dtype=torch.complex64),
            TypeError,
            r"`inputs` must have a real floating-point dtype .*complex64",
        ),
    ],
)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_input_errors(inputs: object, error: type[Exception], match: str, strategy: str) -> None:
    with pytest.raises(error, match=r"vecgrad\.jacobian: " + match):
        vg.jacobian(lambda *a: a[0], inputs, strategy=strategy)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_func_errors(strategy: str) -> None:
    x = torch.randn(3)
    with pytest.raises(TypeError, match=r"vecgrad\.jacobian: `func` must be callable; got int"):
        vg.jacobian(3, x, strategy=strategy)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"vecgrad\.jacobian: `func` must return a Tensor or a tuple of Tensors; got list "
        r"\(return tuple\(\.\.\.\) instead of a list\)\.",
    ):
        vg.jacobian(lambda t: [t, t], x, strategy=strategy)
    with pytest.raises(TypeError, match=r"`func` must return a real floating-point Tensor .*int64"):
        vg.jacobian(lambda t: t.long(), x, strategy=strategy)


def test_tensor_input_gives_tensor_and_one_tuple_gives_tuple() -> None:
    x = torch.randn(3, dtype=DTYPE)
    assert isinstance(vg.jacobian(torch.sin, x), torch.Tensor)
    jac = vg.jacobian(torch.sin, (x,))
    assert isinstance(jac, tuple)
    assert len(jac) == 1
    assert_close(jac[0], torch.diag(torch.cos(x)))


def test_call_helper_matches_func_convention(case: Case) -> None:
    # J's leading dimensions are the output's shape, its trailing ones the input's.
    output = call(case.func, case.inputs)
    jac = vg.jacobian(case.func, case.inputs)
    inputs = case.inputs if isinstance(case.inputs, tuple) else (case.inputs,)
    blocks = jac if isinstance(jac, tuple) else (jac,)
    for block, x in zip(blocks, inputs, strict=True):
        assert block.shape == output.shape + x.shape

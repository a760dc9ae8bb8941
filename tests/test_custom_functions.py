"""Custom autograd.Functions that lack what a method needs: a vecgrad error says which piece."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import vecgrad as vg


class Square(torch.autograd.Function):
    """x ** 2 elementwise, with every piece: backward, jvp and a generated vmap rule."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x**2

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: Tensor) -> None:
        (x,) = inputs
        ctx.save_for_backward(x)
        ctx.x = x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x * grad

    @staticmethod
    def jvp(ctx: Any, tangent: Tensor) -> Tensor:
        return 2 * ctx.x * tangent


class NoJvp(torch.autograd.Function):
    generate_vmap_rule = True
    forward = staticmethod(Square.forward)
    setup_context = staticmethod(Square.setup_context)
    backward = staticmethod(Square.backward)


class NoVmap(torch.autograd.Function):
    forward = staticmethod(Square.forward)
    setup_context = staticmethod(Square.setup_context)
    backward = staticmethod(Square.backward)
    jvp = staticmethod(Square.jvp)


class OldStyle(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x * grad


X = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
NO_JVP = r"`func` must support forward-mode AD; got a custom torch\.autograd\.Function without"
NO_VMAP = r"must support torch\.func\.vmap; got the custom torch\.autograd\.Function NoVmap"
OLD = r"`func` must work under torch\.func transforms; got a custom torch\.autograd\.Function whose"


class Head(nn.Module):
    def __init__(self, op: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2, dtype=torch.float64)
        self.op = op

    def forward(self, x: Tensor) -> Tensor:
        return self.op(self.linear(x))


def test_a_complete_function_works_everywhere() -> None:
    expected = torch.diag(2 * X)
    for strategy in ("reverse", "forward", "loop"):
        torch.testing.assert_close(vg.jacobian(Square.apply, X, strategy=strategy), expected)
    torch.testing.assert_close(vg.jvp(Square.apply, X, torch.ones_like(X))[1], 2 * X)
    torch.testing.assert_close(
        vg.hessian(lambda t: Square.apply(t).sum(), X), 2 * torch.eye(3, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: vg.jacobian(NoJvp.apply, X, strategy="forward"), r"vecgrad\.jacobian: " + NO_JVP),
        (lambda: vg.jvp(NoJvp.apply, X, X), r"vecgrad\.jvp: " + NO_JVP),
        (lambda: vg.hvp(lambda t: NoJvp.apply(t).sum(), X, X), r"vecgrad\.hvp: " + NO_JVP),
        (lambda: vg.hessian(lambda t: NoJvp.apply(t).sum(), X), r"vecgrad\.hessian: " + NO_JVP),
        (
            lambda: vg.batch_jacobian(NoJvp.apply, X[:, None], strategy="forward"),
            r"vecgrad\.batch_jacobian: " + NO_JVP,
        ),
        (
            lambda: vg.jacobian(NoVmap.apply, X, strategy="forward"),
            r"vecgrad\.jacobian: `func` " + NO_VMAP,
        ),
        (
            lambda: vg.per_sample_grads(
                Head(NoVmap.apply),
                lambda p, y: ((p - y) ** 2).sum(),
                torch.ones(4, 3, dtype=torch.float64),
                torch.ones(4, 2, dtype=torch.float64),
            ),
            r"vecgrad\.per_sample_grads: `model` " + NO_VMAP,
        ),
        (lambda: vg.jacobian(OldStyle.apply, X, strategy="reverse"), r"vecgrad\.jacobian: " + OLD),
        (lambda: vg.vjp(OldStyle.apply, X, X), r"vecgrad\.vjp: " + OLD),
    ],
)
def test_a_missing_piece_is_named(call: Callable[[], object], match: str) -> None:
    with pytest.raises(TypeError, match=match) as info:
        call()
    # torch's own error stays attached, for the full story.
    assert isinstance(info.value.__cause__, (NotImplementedError, RuntimeError))


def test_methods_that_do_not_need_the_piece_still_work() -> None:
    expected = torch.diag(2 * X)
    torch.testing.assert_close(vg.jacobian(NoJvp.apply, X, strategy="reverse"), expected)
    torch.testing.assert_close(vg.jacobian(NoVmap.apply, X, strategy="reverse"), expected)
    torch.testing.assert_close(vg.jacobian(OldStyle.apply, X, strategy="loop"), expected)


def test_other_runtime_errors_pass_unchanged() -> None:
    def broken(t: Tensor) -> Tensor:
        raise RuntimeError("something else went wrong")

    with pytest.raises(RuntimeError, match=r"^something else went wrong$"):
        vg.jacobian(broken, X)

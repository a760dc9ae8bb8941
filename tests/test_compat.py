"""batched_grad: torch.autograd.grad's batched backward pass, made without its Python layer.

It must give what ``torch.autograd.grad(..., is_grads_batched=True, allow_unused=True)`` gives,
graph included, and fall back to that call for tensor subclasses, under torch.compile and for a
torch without the private functions it uses.
"""

from __future__ import annotations

import pytest
import torch
from conftest import DTYPE
from torch.testing import assert_close

import vecgrad as vg
from vecgrad import _compat

pytestmark = pytest.mark.usefixtures("seeded")


def problem() -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
    """Outputs ``sin(a) * b`` of shape (4,), inputs ``a``, ``b`` and an unused ``c``, and 3
    rows of cotangents."""
    a, b, c = (torch.randn(4, dtype=DTYPE, requires_grad=True) for _ in range(3))
    return torch.sin(a) * b, (a, b, c), torch.randn(3, 4, dtype=DTYPE)


def public(
    outputs: torch.Tensor, inputs: tuple[torch.Tensor, ...], seeds: torch.Tensor, create_graph: bool
) -> tuple[torch.Tensor | None, ...]:
    return torch.autograd.grad(
        outputs,
        inputs,
        seeds,
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
        is_grads_batched=True,
    )


def refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("this path must not be taken")


@pytest.mark.parametrize("create_graph", [False, True])
def test_matches_torch_autograd_grad_without_calling_it(
    create_graph: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs, inputs, seeds = problem()
    expected = public(outputs, inputs, seeds, create_graph)
    monkeypatch.setattr(torch.autograd, "grad", refuse)
    got = _compat.batched_grad(outputs, inputs, seeds, retain_graph=True, create_graph=create_graph)
    assert got[2] is None
    assert expected[2] is None
    assert_close(got[:2], expected[:2])
    assert all(g.requires_grad is create_graph for g in got[:2])
    if create_graph:  # the rows carry the graph: d/da of sum(cos(a) * b * seeds)
        monkeypatch.undo()
        (a, b, _) = inputs
        (second,) = torch.autograd.grad(got[0].sum(), a)
        assert_close(second, -torch.sin(a) * b * seeds.sum(0))


def test_a_tensor_subclass_takes_the_public_call(monkeypatch: pytest.MonkeyPatch) -> None:
    tagged = type("Tagged", (torch.Tensor,), {})
    a = torch.randn(4, dtype=DTYPE).as_subclass(tagged).requires_grad_()
    outputs, seeds = torch.sin(a) * 2, torch.randn(3, 4, dtype=DTYPE)
    monkeypatch.setattr(_compat, "_engine_run_backward", refuse)
    (got,) = _compat.batched_grad(outputs, (a,), seeds, retain_graph=False, create_graph=False)
    assert type(got) is tagged
    assert_close(got.as_subclass(torch.Tensor), 2 * torch.cos(a.as_subclass(torch.Tensor)) * seeds)


@pytest.mark.parametrize("missing", ["_LEGACY_VMAP", "_engine_run_backward"])
def test_a_torch_without_the_private_functions_takes_the_public_call(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs, inputs, seeds = problem()
    expected = public(outputs, inputs, seeds, False)
    monkeypatch.setattr(_compat, missing, (None,) * 4 if missing == "_LEGACY_VMAP" else None)
    if missing == "_LEGACY_VMAP":
        monkeypatch.setattr(_compat, "_engine_run_backward", refuse)
    got = _compat.batched_grad(outputs, inputs, seeds, retain_graph=False, create_graph=False)
    assert got[2] is None
    assert_close(got[:2], expected[:2])


def legacy_vmap_level() -> int:
    """How many legacy vmaps are running on this thread."""
    level = torch._C._vmapmode_increment_nesting()
    torch._C._vmapmode_decrement_nesting()
    return level - 1


# Dynamo reads .grad of its fake tensors while tracing vecgrad's input checks.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_torch_compile_traces_the_public_call_and_leaves_no_vmap_running() -> None:
    """Traced, the direct call would stop inside the legacy vmap and never leave it."""
    x = torch.randn(5, 3, dtype=DTYPE)
    w = torch.randn(3, dtype=DTYPE, requires_grad=True)

    @torch.compile(backend="eager")
    def rows(w: torch.Tensor) -> torch.Tensor:
        return vg.loss_jacobian(torch.tanh(x @ w) ** 2, {"w": w})["w"]

    try:
        got = rows(w)
    finally:
        torch._dynamo.reset()
    t = torch.tanh(x @ w).detach()  # d tanh(x_i w)^2 / dw = 2 tanh (1 - tanh^2) x_i
    assert_close(got, (2 * t * (1 - t**2))[:, None] * x)
    assert legacy_vmap_level() == 0

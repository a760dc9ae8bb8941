"""Inputs with unusual memory layouts, and results that own their memory.

Forward mode writes tangents into an input's layout, which torch refuses for expanded
tensors (stride 0); results must never be views into the caller's tensors or into each other.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from conftest import DTYPE
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

A = torch.linspace(-1.0, 1.0, 12, dtype=DTYPE).reshape(4, 3)


def layouts() -> dict[str, torch.Tensor]:
    """Non-contiguous (5, 4) inputs: expanded (stride 0), transposed and sliced."""
    return {
        "expanded": torch.randn(1, 4, dtype=DTYPE).expand(5, 4),
        "transposed": torch.randn(4, 5, dtype=DTYPE).t(),
        "sliced": torch.randn(5, 8, dtype=DTYPE)[:, ::2],
    }


LAYOUTS = ("expanded", "transposed", "sliced")


def rows(t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(t @ A)


def wide(t: torch.Tensor) -> torch.Tensor:
    """More outputs than inputs, so that strategy='auto' takes forward mode."""
    return torch.outer(t.reshape(-1), t.reshape(-1)).sin()


def scalar(t: torch.Tensor) -> torch.Tensor:
    return (t**3).sum() + t.sin().prod()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("strategy", ["auto", "reverse", "forward", "loop"])
@pytest.mark.parametrize("func", [rows, wide], ids=["rows", "wide"])
def test_jacobian_layouts(
    layout: str, strategy: str, func: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    x = layouts()[layout]
    expected = torch.func.jacrev(func)(x.contiguous())
    assert_close(vg.jacobian(func, x, strategy=strategy), expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("strategy", ["auto", "reverse", "forward"])
@pytest.mark.parametrize("func", [rows, torch.sin], ids=["rows", "sin"])
def test_batch_jacobian_layouts(
    layout: str, strategy: str, func: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    x = layouts()[layout]
    expected = torch.stack([torch.func.jacrev(func)(r) for r in x.contiguous()])
    assert_close(vg.batch_jacobian(func, x, strategy=strategy), expected)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_products_and_hessians_layouts(layout: str) -> None:
    x = layouts()[layout]
    v = layouts()[layout]  # vectors with the same unusual layout
    xc, vc = x.contiguous(), v.contiguous()
    out, ju = vg.jvp(rows, x, v)
    assert_close((out, ju), torch.func.jvp(rows, (xc,), (vc,)))
    cotangent = torch.randn(5, 3, dtype=DTYPE).t().contiguous().t()  # transposed (5, 3)
    out, g = vg.vjp(rows, x, cotangent)
    assert_close(g, torch.func.vjp(rows, xc)[1](cotangent.contiguous())[0])
    out, hv = vg.hvp(scalar, x, v)
    assert_close(hv, torch.autograd.functional.hvp(scalar, xc, vc)[1])
    assert_close(vg.hessian(scalar, x), torch.autograd.functional.hessian(scalar, xc))
    assert_close(vg.numerical_jacobian(rows, x), torch.func.jacrev(rows)(xc))


def jacobian_results() -> dict[str, Callable[[], torch.Tensor]]:
    x = torch.randn(2, 3, dtype=DTYPE)
    results: dict[str, Callable[[], torch.Tensor]] = {}
    for strategy in ("auto", "reverse", "forward"):
        results[f"batch_jacobian-{strategy}"] = lambda s=strategy: vg.batch_jacobian(  # type: ignore[misc]
            lambda t: t + 1, x, strategy=s
        )
    for strategy in ("auto", "reverse", "forward", "loop"):
        results[f"jacobian-expand-{strategy}"] = lambda s=strategy: vg.jacobian(  # type: ignore[misc]
            lambda t: t.expand(2, 3), x[0], strategy=s
        )
        results[f"jacobian-identity-{strategy}"] = lambda s=strategy: vg.jacobian(  # type: ignore[misc]
            lambda t: t, x, strategy=s
        )
    return results


@pytest.mark.parametrize("name", sorted(jacobian_results()))
def test_jacobian_rows_own_their_memory(name: str) -> None:
    jac = jacobian_results()[name]()
    before = jac[1].clone()
    jac[0] += 7
    assert_close(jac[1], before)
    jac += 1  # in place on the whole result: refused by torch if elements share memory
    assert_close(jac[1], before + 1)


def test_products_do_not_return_the_callers_tensors() -> None:
    x = torch.randn(3, dtype=DTYPE)
    v = torch.randn(3, dtype=DTYPE)
    x0, v0 = x.clone(), v.clone()
    results = [
        *vg.vjp(lambda t: t, x, v),
        *vg.jvp(lambda t: t, x, v),
        *vg.vjp(lambda t: t.view(3), x, v),
        vg.hvp(lambda t: (t**2).sum() / 2, x, v)[1],
    ]
    for result in results:
        result.add_(100)
    assert_close(x, x0, rtol=0, atol=0)
    assert_close(v, v0, rtol=0, atol=0)


def test_tuple_products_do_not_return_the_callers_tensors() -> None:
    a, b = torch.randn(2, dtype=DTYPE), torch.randn(3, dtype=DTYPE)
    u, w = torch.randn(2, dtype=DTYPE), torch.randn(3, dtype=DTYPE)
    saved = [t.clone() for t in (a, b, u, w)]
    _, (ga, gb) = vg.vjp(lambda s, t: s, (a, b), u)
    _, (ha, hb) = vg.hvp(lambda s, t: (s**2).sum() / 2 + (t**2).sum() / 2, (a, b), (u, w))
    for result in (ga, gb, ha, hb):
        result.add_(100)
    for tensor, copy in zip((a, b, u, w), saved, strict=True):
        assert_close(tensor, copy, rtol=0, atol=0)

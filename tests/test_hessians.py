"""vecgrad.hessian and vecgrad.hvp against analytic Hessians and torch.autograd.functional."""

from __future__ import annotations

import pytest
import torch
from conftest import DTYPE
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def rosenbrock_hessian(x: torch.Tensor) -> torch.Tensor:
    """Closed form: tridiagonal, from differentiating the gradient by hand."""
    n = x.numel()
    h = torch.zeros(n, n, dtype=x.dtype)
    for j in range(n):
        if j < n - 1:
            h[j, j] += 1200 * x[j] ** 2 - 400 * x[j + 1] + 2
            h[j, j + 1] = h[j + 1, j] = -400 * x[j]
        if j > 0:
            h[j, j] += 200
    return h


def test_rosenbrock_at_minimum() -> None:
    h = vg.hessian(rosenbrock, torch.ones(2, dtype=DTYPE))
    assert_close(h, torch.tensor([[802.0, -400.0], [-400.0, 200.0]], dtype=DTYPE))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_rosenbrock_matches_closed_form(n: int) -> None:
    x = torch.randn(n, dtype=DTYPE)
    assert_close(vg.hessian(rosenbrock, x), rosenbrock_hessian(x))


@pytest.mark.parametrize("n", [2, 5])
def test_hvp_is_hessian_times_v(n: int) -> None:
    x = torch.randn(n, dtype=DTYPE)
    v = torch.randn(n, dtype=DTYPE)
    value, hv = vg.hvp(rosenbrock, x, v)
    assert_close(value, rosenbrock(x))
    assert_close(hv, rosenbrock_hessian(x) @ v)


def test_matrix_input() -> None:
    x = torch.randn(2, 3, dtype=DTYPE)
    h = vg.hessian(lambda t: (t**3).sum(), x)
    assert isinstance(h, torch.Tensor)
    assert h.shape == (2, 3, 2, 3)
    assert_close(h.reshape(6, 6), torch.diag(6 * x.reshape(-1)))
    v = torch.randn(2, 3, dtype=DTYPE)
    _, hv = vg.hvp(lambda t: (t**3).sum(), x, v)
    assert_close(hv, 6 * x * v)


def test_zero_dim_input_and_one_element_output() -> None:
    x = torch.tensor(0.3, dtype=DTYPE)
    assert_close(vg.hessian(torch.sin, x), -torch.sin(x))
    # A (1,)-shaped output is treated as the scalar it holds.
    y = torch.randn(3, dtype=DTYPE)
    h = vg.hessian(lambda t: (t**2).sum().reshape(1), y)
    assert_close(h, 2 * torch.eye(3, dtype=DTYPE))
    value, hv = vg.hvp(lambda t: (t**2).sum().reshape(1, 1), y, y)
    assert value.shape == (1, 1)
    assert_close(hv, 2 * y)


def quadratic_pair(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x**2 * y).sum() + (y**3).sum()


def test_tuple_inputs_give_nested_blocks() -> None:
    x = torch.randn(3, dtype=DTYPE)
    y = torch.randn(3, dtype=DTYPE)
    h = vg.hessian(quadratic_pair, (x, y))
    assert isinstance(h, tuple)
    assert all(isinstance(row, tuple) and len(row) == 2 for row in h)
    assert_close(h[0][0], torch.diag(2 * y))
    assert_close(h[0][1], torch.diag(2 * x))
    assert_close(h[1][0], torch.diag(2 * x))
    assert_close(h[1][1], torch.diag(6 * y))
    assert_close(h, torch.autograd.functional.hessian(quadratic_pair, (x, y)))


def test_tuple_hvp_matches_blocks() -> None:
    x = torch.randn(4, dtype=DTYPE)
    y = torch.randn(4, dtype=DTYPE)
    v = (torch.randn(4, dtype=DTYPE), torch.randn(4, dtype=DTYPE))
    value, hv = vg.hvp(quadratic_pair, (x, y), v)
    assert_close(value, quadratic_pair(x, y))
    h = vg.hessian(quadratic_pair, (x, y))
    assert isinstance(hv, tuple)
    assert isinstance(h, tuple)
    for i in range(2):
        assert_close(hv[i], h[i][0] @ v[0] + h[i][1] @ v[1])


def test_results_differentiable_and_grads_untouched() -> None:
    w = torch.randn(3, dtype=DTYPE, requires_grad=True)
    x = torch.randn(3, dtype=DTYPE, requires_grad=True)

    def func(t: torch.Tensor) -> torch.Tensor:
        return (w * t**3).sum()

    v = torch.ones(3, dtype=DTYPE)
    h = vg.hessian(func, x)
    value, hv = vg.hvp(func, x, v)
    assert w.grad is None
    assert x.grad is None
    assert_close(h, torch.diag(6 * w.detach() * x.detach()))
    # d/dw and d/dx of sum(H), sum(Hv) agree with torch.func's compositions.
    ref_h = torch.func.hessian(func)(x)
    ref_hv = torch.func.jvp(torch.func.grad(func), (x,), (v,))[1]
    for got, ref in ((h, ref_h), (hv, ref_hv), (value, func(x))):
        assert isinstance(got, torch.Tensor)
        expected = torch.autograd.grad(ref.sum(), (w, x))
        assert_close(torch.autograd.grad(got.sum(), (w, x)), expected)
    with torch.no_grad():
        assert not vg.hessian(func, x).requires_grad
        assert not any(t.requires_grad for t in vg.hvp(func, x, v))


@pytest.mark.parametrize("name", ["hessian", "hvp"])
def test_non_scalar_function_is_refused(name: str) -> None:
    x = torch.randn(3)
    args = (x,) if name == "hessian" else (x, x)
    with pytest.raises(
        ValueError,
        match=rf"vecgrad\.{name}: `func` must return a one-element Tensor \(a scalar\); "
        r"got shape \(3,\)",
    ):
        getattr(vg, name)(torch.sin, *args)
    with pytest.raises(
        TypeError, match=rf"vecgrad\.{name}: `func` must return a Tensor; got float"
    ):
        getattr(vg, name)(lambda t: 1.0, *args)
    with pytest.raises(TypeError, match=rf"vecgrad\.{name}: `func` must be callable; got int"):
        getattr(vg, name)(1, *args)
    with pytest.raises(TypeError, match=rf"vecgrad\.{name}: `inputs` must have a real floating"):
        getattr(vg, name)(torch.sum, *(torch.arange(3) for _ in args))


def test_hessian_of_empty_inputs_is_empty() -> None:
    empty = torch.zeros(0, 2, dtype=DTYPE)
    hess = vg.hessian(lambda t: (t**2).sum(), empty)
    assert isinstance(hess, torch.Tensor)
    assert hess.shape == (0, 2, 0, 2)
    a = torch.randn(3, dtype=DTYPE)
    blocks = vg.hessian(lambda s, t: (s**3).sum() + t.sum(), (a, empty))
    assert isinstance(blocks, tuple)
    assert_close(blocks[0][0], torch.diag(6 * a))
    assert [[b.shape for b in row] for row in blocks] == [
        [(3, 3), (3, 0, 2)],
        [(0, 2, 3), (0, 2, 0, 2)],
    ]
    with pytest.raises(ValueError, match=r"vecgrad\.hessian: `func` must return a one-element"):
        vg.hessian(lambda t: t, empty)


def test_mse_loss_whose_forward_mode_backward_fails_in_torch() -> None:
    """torch 2.13: jvp of grad through F.mse_loss raises; hvp and the estimators still answer.

    The Hessian of mean((x - t)^2) is 2 I / n, so H v = 2 v / n and the trace is 2.
    """
    torch.manual_seed(0)
    x, t, v = (torch.randn(5, dtype=DTYPE) for _ in range(3))

    def mse(p: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(p, t)

    with pytest.raises(RuntimeError, match="ZeroTensors are immutable"):
        torch.func.jvp(torch.func.grad(mse), (x,), (v,))
    value, hv = vg.hvp(mse, x, v)
    assert_close(value, ((x - t) ** 2).mean())
    assert_close(hv, 2 * v / 5)
    assert_close(vg.hessian(mse, x), 2 * torch.eye(5, dtype=DTYPE) / 5)
    # Rademacher probes: z^T (2 I / n) z = 2 exactly, for every probe.
    estimates = vg.hutchinson(mse, x, quantity="hessian_trace", num_samples=4)
    assert_close(estimates, torch.full((4,), 2.0, dtype=DTYPE))
    v_leaf = v.clone().requires_grad_()
    (grad_of_hv,) = torch.autograd.grad(vg.hvp(mse, x, v_leaf)[1].sum(), v_leaf)
    assert_close(grad_of_hv, torch.full((5,), 0.4, dtype=DTYPE))

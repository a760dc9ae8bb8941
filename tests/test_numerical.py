"""vecgrad.numerical_jacobian against analytic Jacobians."""

from __future__ import annotations

import pytest
import torch
from conftest import DTYPE, Case
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")


def test_matches_analytic_jacobian(case: Case) -> None:
    jac = vg.numerical_jacobian(case.func, case.inputs)
    if isinstance(case.expected, tuple):
        assert isinstance(jac, tuple)
    assert_close(jac, case.expected, rtol=1e-7, atol=1e-8)


def test_default_step_scales_with_magnitude() -> None:
    # exp at |x| ~ 20: a fixed step of 6e-6 would still work, but the relative step keeps the
    # rounding error at the level of float64 for large and small x alike.
    x = torch.tensor([-20.0, 1e-3, 20.0], dtype=DTYPE)
    assert_close(vg.numerical_jacobian(torch.exp, x), torch.diag(torch.exp(x)), rtol=1e-8, atol=0)
    big = torch.tensor([3e5], dtype=DTYPE)
    assert_close(
        vg.numerical_jacobian(lambda t: t**3, big), 3 * big[:, None] ** 2, rtol=1e-8, atol=0
    )


def test_explicit_step() -> None:
    x = torch.tensor([0.5, -1.5], dtype=DTYPE)
    # Central differences are exact for quadratics, up to rounding, for any step.
    jac = vg.numerical_jacobian(lambda t: t**2 + t[0] * t[1], x, eps=0.25)
    expected = torch.tensor([[2 * 0.5 + -1.5, 0.5], [-1.5, 2 * -1.5 + 0.5]], dtype=DTYPE)
    assert_close(jac, expected)
    # A large step is visibly wrong for a non-polynomial function: eps is really used.
    coarse = vg.numerical_jacobian(torch.sin, x, eps=0.5)
    assert not torch.allclose(coarse, torch.diag(torch.cos(x)), atol=1e-3)


def test_float32_with_looser_tolerance() -> None:
    x = torch.randn(4)
    jac = vg.numerical_jacobian(torch.tanh, x)
    assert jac.dtype == torch.float32
    assert_close(jac, torch.diag(1 - torch.tanh(x) ** 2), rtol=1e-3, atol=1e-4)


def test_non_contiguous_input_left_unchanged() -> None:
    x = torch.randn(3, 2, dtype=DTYPE).T  # (2, 3), not contiguous
    before = x.clone()
    jac = vg.numerical_jacobian(lambda t: t @ t.T, x)
    assert_close(jac, vg.jacobian(lambda t: t @ t.T, x))
    assert torch.equal(x, before)


def test_empty_input() -> None:
    jac = vg.numerical_jacobian(lambda t: t.sum() + 2.0, torch.zeros(0, dtype=DTYPE))
    assert_close(jac, torch.zeros(0, dtype=DTYPE))


@pytest.mark.parametrize(
    ("eps", "error", "match"),
    [
        (0.0, ValueError, r"`eps` must be None or a positive float; got 0\.0"),
        (-1e-3, ValueError, r"`eps` must be None or a positive float; got -0\.001"),
        (float("nan"), ValueError, r"`eps` must be None or a positive float; got nan"),
        (float("inf"), ValueError, r"`eps` must be None or a positive float; got inf"),
        ("1e-3", TypeError, r"`eps` must be None or a positive float; got str"),
        (True, TypeError, r"`eps` must be None or a positive float; got bool"),
    ],
)
def test_eps_errors(eps: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=r"vecgrad\.numerical_jacobian: " + match):
        vg.numerical_jacobian(torch.sin, torch.randn(2), eps=eps)  # type: ignore[arg-type]


def test_step_lost_to_rounding_is_refused() -> None:
    # In float32, 1000 +- 1e-6 both round to 1000: the difference quotient would be 0 / 0.
    x = torch.tensor([1.0, 1000.0])
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.numerical_jacobian: `eps` = 1e-06 is lost to rounding at `inputs` "
        r"element 1000\.0 \(torch\.float32\)",
    ):
        vg.numerical_jacobian(torch.sin, x, eps=1e-6)
    with pytest.raises(ValueError, match=r"at `inputs\[1\]` element 1000\.0"):
        vg.numerical_jacobian(torch.mul, (torch.ones(2), x), eps=1e-6)


def test_input_and_func_errors() -> None:
    x = torch.randn(2)
    with pytest.raises(
        TypeError, match=r"vecgrad\.numerical_jacobian: `inputs` must be a Tensor or a tuple"
    ):
        vg.numerical_jacobian(torch.sin, [x])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"vecgrad\.numerical_jacobian: `inputs` must have a real floating"
    ):
        vg.numerical_jacobian(torch.sin, torch.arange(2))
    with pytest.raises(
        TypeError, match=r"vecgrad\.numerical_jacobian: `func` must return a Tensor; got float"
    ):
        vg.numerical_jacobian(lambda t: float(t.sum()), x)
    with pytest.raises(TypeError, match=r"vecgrad\.numerical_jacobian: `func` must be callable"):
        vg.numerical_jacobian(None, x)  # type: ignore[arg-type]

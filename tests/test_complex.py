"""Complex tensors: refused everywhere with the real-view recipe, which then gives torch's answer.

vecgrad differentiates real tensors only, like torch.func.jacrev and jacfwd. The refusal names
the gallery example on complex numbers; the recipe it gives (differentiate the real view) must
reproduce the real Jacobian and torch.func's complex VJP and JVP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.func import jvp, vjp
from torch.testing import assert_close

import vecgrad as vg
from vecgrad._checks import COMPLEX_EXAMPLE

C128 = torch.complex128
Z = torch.tensor([0.4 + 0.9j, -0.3 - 0.2j], dtype=C128)
X = torch.tensor([0.5, -1.0], dtype=torch.float64)
RECIPE = r"differentiate the real view instead, with torch\.view_as_real and torch\.view_as_complex"
PAGE = re.escape(COMPLEX_EXAMPLE)


def f(z: Tensor) -> Tensor:
    """Holomorphic in its first output only: (z0 z1, conj(z0) + z1^2, |z1|^2)."""
    return torch.stack([z[0] * z[1], z[0].conj() + z[1] ** 2, z[1].abs().square().to(C128)])


def f_real(r: Tensor) -> Tensor:
    """``f`` on the real view: (n, 2) real in, (m, 2) real out."""
    return torch.view_as_real(f(torch.view_as_complex(r)))


def finite_real_jacobian(z: Tensor, h: float = 1e-6) -> Tensor:
    """The (2m, 2n) real Jacobian of f by central differences on each real and imaginary part."""
    columns = []
    for k in range(z.numel()):
        for step in (h, 1j * h):
            e = torch.zeros_like(z)
            e[k] = step
            columns.append(torch.view_as_real((f(z + e) - f(z - e)) / (2 * h)).reshape(-1))
    return torch.stack(columns, dim=1)


class ComplexHead(nn.Module):
    """A linear layer whose output is made complex."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2, dtype=torch.float64)

    def forward(self, t: Tensor) -> Tensor:
        return self.linear(t).to(C128)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: vg.jacobian(f, Z), r"^vecgrad\.jacobian: `inputs` must have a real"),
        (lambda: vg.jacobian(f, (X, Z)), r"^vecgrad\.jacobian: `inputs\[1\]` must have a real"),
        (lambda: vg.vjp(torch.sin, X, Z), r"^vecgrad\.vjp: `v` must have a real"),
        (lambda: vg.jvp(torch.sin, X, Z), r"^vecgrad\.jvp: `v` must have a real"),
        (
            lambda: vg.jvp(lambda t: t.to(C128), X, X),
            r"^vecgrad\.jvp: `func` must return a real floating-point Tensor",
        ),
        (lambda: vg.hessian(lambda t: t.abs().sum(), Z), r"^vecgrad\.hessian: `inputs` must"),
        (
            lambda: vg.batch_jacobian(torch.sin, Z[:, None]),
            r"^vecgrad\.batch_jacobian: `inputs` must have a real",
        ),
        (
            lambda: vg.param_jacobian(ComplexHead(), X[None]),
            r"^vecgrad\.param_jacobian: `model` must return a real floating-point Tensor",
        ),
    ],
)
def test_complex_is_refused_with_the_recipe(call: Callable[[], object], match: str) -> None:
    with pytest.raises(TypeError, match=match) as info:
        call()
    message = str(info.value)
    assert re.search(RECIPE, message), message
    assert re.search(PAGE, message), message


def test_other_dtypes_get_no_recipe() -> None:
    with pytest.raises(TypeError, match=r"got torch\.int64\.$"):
        vg.jacobian(torch.sin, torch.arange(3))


def test_the_named_page_exists() -> None:
    path = COMPLEX_EXAMPLE.split("/gallery/", 1)[1].removesuffix(".html")
    gallery = Path(__file__).parents[1] / "gallery"
    assert (gallery / f"{path}.py").is_file()


@pytest.mark.parametrize("strategy", ["reverse", "forward", "loop"])
def test_the_recipe_gives_the_real_jacobian(strategy: str) -> None:
    J = vg.jacobian(f_real, torch.view_as_real(Z), strategy=strategy)
    assert J.shape == (3, 2, 2, 2)
    assert_close(J.reshape(6, 4), finite_real_jacobian(Z), rtol=1e-7, atol=1e-8)


def test_the_recipe_matches_torch_complex_products(seeded: None) -> None:
    """vjp on the real view is torch.func.vjp's J^T v, jvp is torch.func.jvp's J u."""
    u = torch.randn(2, dtype=C128)
    v = torch.randn(3, dtype=C128)
    r = torch.view_as_real(Z)
    _, vJ = vg.vjp(f_real, r, torch.view_as_real(v))
    _, Ju = vg.jvp(f_real, r, torch.view_as_real(u))
    _, pullback = vjp(f, Z)
    assert_close(torch.view_as_complex(vJ), pullback(v)[0])
    assert_close(torch.view_as_complex(Ju), jvp(f, (Z,), (u,))[1])


def test_the_recipe_gives_the_gradient_of_a_real_loss() -> None:
    """A real loss of the real view: vecgrad's gradient is torch's .grad of the complex tensor."""
    c = torch.tensor([1.0 - 1.0j, -2.0 + 0.5j], dtype=C128)

    def loss(z: Tensor) -> Tensor:
        return (z**2 - c).abs().square().sum()

    z = Z.clone().requires_grad_()
    loss(z).backward()
    assert z.grad is not None
    _, g = vg.vjp(
        lambda r: loss(torch.view_as_complex(r)),
        torch.view_as_real(Z),
        torch.ones((), dtype=torch.float64),
    )
    assert_close(torch.view_as_complex(g), z.grad)
    assert_close(z.grad, 4 * (Z**2 - c) * Z.conj())  # 2 dL/d(conj z)

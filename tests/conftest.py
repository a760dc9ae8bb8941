"""Shared test set-up: a reproducible hypothesis profile, seeding, and analytic Jacobians."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from unittest.mock import Mock

import pytest
import torch
from hypothesis import settings

from vecgrad import jacobians

# Reproducible property tests: the same examples on every run, nothing stored between runs.
settings.register_profile(
    "vecgrad", derandomize=True, deadline=None, database=None, max_examples=25
)
settings.load_profile("vecgrad")

DTYPE = torch.float64


@pytest.fixture
def modes(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Spy on the vectorised Jacobian modes: ``modes()`` lists those called so far, in order."""
    parent = Mock()
    for mode in ("forward", "reverse"):
        spy = Mock(wraps=getattr(jacobians, f"_{mode}"))
        monkeypatch.setattr(jacobians, f"_{mode}", spy)
        parent.attach_mock(spy, mode)
    return lambda: [name for name, _, _ in parent.mock_calls]


X3 = torch.randn(3, generator=torch.Generator().manual_seed(3))
# The refusals of `func` shared by every function of one Tensor, as rows of an error table:
# (func, inputs, keyword arguments, error, message).
FUNC_ERRORS = [
    ("sin", X3, {}, TypeError, r"`func` must be callable; got str"),
    (lambda t: t.long(), X3, {}, TypeError, r"`func` must return a real floating-point"),
]


@pytest.fixture
def seeded() -> None:
    """Seed torch's global generator so that every test sees the same random numbers."""
    torch.manual_seed(0)


@dataclass(frozen=True)
class Case:
    """A function with its analytic Jacobian at a point."""

    name: str
    func: Callable[..., torch.Tensor]
    inputs: torch.Tensor | tuple[torch.Tensor, ...]
    expected: torch.Tensor | tuple[torch.Tensor, ...]

    def __str__(self) -> str:
        return self.name


def skew(a: torch.Tensor) -> torch.Tensor:
    """Matrix [a]x with [a]x @ b == cross(a, b)."""
    zero = torch.zeros((), dtype=a.dtype)
    return torch.stack(
        [
            torch.stack([zero, -a[2], a[1]]),
            torch.stack([a[2], zero, -a[0]]),
            torch.stack([-a[1], a[0], zero]),
        ]
    )


def _polar_to_cartesian(p: torch.Tensor) -> torch.Tensor:
    r, theta = p[0], p[1]
    return torch.stack([r * torch.cos(theta), r * torch.sin(theta)])


def _cartesian_to_polar(q: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.linalg.vector_norm(q), torch.atan2(q[1], q[0])])


def make_cases() -> list[Case]:
    """Functions whose Jacobians are known in closed form, at fixed float64 points."""
    g = torch.Generator().manual_seed(1234)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=DTYPE)

    eye = torch.eye
    cases = []

    a = rand(3, 4)
    x = rand(4)
    cases.append(Case("linear", lambda t: a @ t, x, a))

    x = rand(5)
    cases.append(Case("sin", torch.sin, x, torch.diag(torch.cos(x))))
    cases.append(Case("exp", torch.exp, x, torch.diag(torch.exp(x))))

    s = torch.softmax(x, dim=0)
    cases.append(
        Case("softmax", lambda t: torch.softmax(t, dim=0), x, torch.diag(s) - torch.outer(s, s))
    )

    r, theta = 1.7, 0.6
    polar = torch.tensor([r, theta], dtype=DTYPE)
    j_polar = torch.tensor(
        [[math.cos(theta), -r * math.sin(theta)], [math.sin(theta), r * math.cos(theta)]],
        dtype=DTYPE,
    )
    cases.append(Case("polar_to_cartesian", _polar_to_cartesian, polar, j_polar))

    qx, qy = 1.2, -0.5
    rq = math.hypot(qx, qy)
    j_cart = torch.tensor([[qx / rq, qy / rq], [-qy / rq**2, qx / rq**2]], dtype=DTYPE)
    q = torch.tensor([qx, qy], dtype=DTYPE)
    cases.append(Case("cartesian_to_polar", _cartesian_to_polar, q, j_cart))

    u, w = rand(3), rand(3)
    # d(u x w)/du = -[w]x and d(u x w)/dw = [u]x
    cases.append(Case("cross_fixed", lambda t: torch.linalg.cross(t, w), u, -skew(w)))
    cases.append(
        Case("cross_pair", lambda s_, t: torch.linalg.cross(s_, t), (u, w), (-skew(w), skew(u)))
    )

    n = 3
    xm = rand(n, n)
    # Y = X @ X: dY_ij/dX_kl = delta_ik X_lj + X_ik delta_jl
    j_square = torch.einsum("ik,lj->ijkl", eye(n, dtype=DTYPE), xm) + torch.einsum(
        "ik,jl->ijkl", xm, eye(n, dtype=DTYPE)
    )
    cases.append(Case("matrix_square", lambda t: t @ t, xm, j_square))

    m, k = 4, 3
    xg = rand(m, k)
    # Y = X^T X: dY_ij/dX_ab = delta_jb X_ai + delta_ib X_aj
    j_gram = torch.einsum("jb,ai->ijab", eye(k, dtype=DTYPE), xg) + torch.einsum(
        "ib,aj->ijab", eye(k, dtype=DTYPE), xg
    )
    cases.append(Case("gram", lambda t: t.T @ t, xg, j_gram))

    x0 = torch.tensor(0.7, dtype=DTYPE)
    cases.append(Case("scalar_to_scalar", lambda t: t**3, x0, 3 * x0**2))
    cases.append(
        Case(
            "scalar_to_circle",
            lambda t: torch.stack([torch.cos(t), torch.sin(t)]),
            x0,
            torch.stack([-torch.sin(x0), torch.cos(x0)]),
        )
    )
    xv = rand(4)
    cases.append(Case("squared_norm", lambda t: (t**2).sum(), xv, 2 * xv))

    am, xx = rand(2, 3), rand(3)
    # y = A @ x: dy_i/dA_kl = delta_ik x_l and dy/dx = A
    j_a = torch.einsum("ik,l->ikl", eye(2, dtype=DTYPE), xx)
    cases.append(Case("matvec_pair", lambda mat, vec: mat @ vec, (am, xx), (j_a, am)))
    return cases


CASES = make_cases()


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    """Each analytic case in turn."""
    param: Case = request.param
    return param

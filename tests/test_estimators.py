"""vecgrad.hutchinson against exact Jacobians and Hessians, enumerated probes and statistics."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch
from conftest import DTYPE, FUNC_ERRORS, X3
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

Tensor = torch.Tensor


def make_mlp(d_in: int = 4, hidden: int = 6, d_out: int = 3) -> Callable[[Tensor], Tensor]:
    w1, b1 = torch.randn(hidden, d_in, dtype=DTYPE), torch.randn(hidden, dtype=DTYPE)
    w2 = torch.randn(d_out, hidden, dtype=DTYPE)
    return lambda x: w2 @ torch.tanh(w1 @ x + b1)


def smooth_scalar(x: Tensor) -> Tensor:
    """A scalar function with a dense Hessian: log-sum-exp plus a cubic coupling."""
    return torch.logsumexp(x, 0) + (x[:-1] * x[1:] ** 2).sum()


def signs(m: int) -> Tensor:
    """All 2**m vectors of signs +-1, shape (2**m, m)."""
    return torch.tensor(list(itertools.product((-1.0, 1.0), repeat=m)), dtype=DTYPE)


def off_diagonal_variance(a: Tensor) -> float:
    """Variance of z^T A z for a symmetric A and Rademacher z: 2 sum_{i != j} A_ij^2."""
    return float(2 * (a.square().sum() - a.diagonal().square().sum()))


# --- the Frobenius norm of a Jacobian --------------------------------------------------------


def test_each_estimate_is_a_quadratic_form_of_a_sign_vector() -> None:
    f, x = make_mlp(d_out=3), torch.randn(4, dtype=DTYPE)
    jac = vg.jacobian(f, x)
    gram = jac @ jac.T
    forms = torch.einsum("si,ij,sj->s", signs(3), gram, signs(3))  # z^T J J^T z, every z
    # Averaging over every sign vector is exact: E[z z^T] = I.
    assert_close(forms.mean(), jac.square().sum())
    estimates = vg.hutchinson(f, x, num_samples=64)
    assert estimates.shape == (64,)
    distance = (estimates[:, None] - forms[None, :]).abs().min(dim=1).values
    assert_close(distance, torch.zeros_like(distance), rtol=0, atol=1e-12)
    # z and -z give the same value: 4 distinct values, all of which 64 draws hit.
    assert len(torch.unique(estimates.round(decimals=10))) == 4


def test_estimates_use_the_documented_probes() -> None:
    f, x = make_mlp(d_out=5), torch.randn(4, dtype=DTYPE)
    jac = vg.jacobian(f, x)
    estimates = vg.hutchinson(f, x, num_samples=10, generator=torch.Generator().manual_seed(3))
    z = 2 * torch.randint(0, 2, (10, 5), generator=torch.Generator().manual_seed(3)) - 1
    assert_close(estimates, (z.to(DTYPE) @ jac).square().sum(1))


def test_mean_is_unbiased_over_many_seeds() -> None:
    # 400 independent single-probe estimates, one per seed; their mean must lie within 4 standard
    # errors of the exact value (the exact variance is known). By the central limit theorem a
    # correct estimator fails this with probability about 6e-5 for a random set of seeds.
    f, x = make_mlp(d_out=4), torch.randn(4, dtype=DTYPE)
    jac = vg.jacobian(f, x)
    exact, variance = float(jac.square().sum()), off_diagonal_variance(jac @ jac.T)
    seeds = 400
    draws = torch.cat(
        [
            vg.hutchinson(f, x, num_samples=1, generator=torch.Generator().manual_seed(s))
            for s in range(seeds)
        ]
    )
    assert abs(float(draws.mean()) - exact) < 4 * math.sqrt(variance / seeds)


def test_spread_matches_the_exact_variance() -> None:
    # Over 20000 probes the sample variance has a relative standard error of about 1.5% here;
    # 15% is about ten of them.
    f, x = make_mlp(d_out=4), torch.randn(4, dtype=DTYPE)
    jac = vg.jacobian(f, x)
    estimates = vg.hutchinson(f, x, num_samples=20_000)
    variance = off_diagonal_variance(jac @ jac.T)
    assert abs(float(estimates.var()) / variance - 1) < 0.15


def test_diagonal_jacobian_has_no_variance() -> None:
    x = torch.randn(5, dtype=DTYPE)
    estimates = vg.hutchinson(torch.sin, x, num_samples=7)
    assert_close(estimates, torch.cos(x).square().sum().expand(7))


def test_tuple_inputs_add_the_norms_of_every_jacobian() -> None:
    a, b = torch.randn(3, 2, dtype=DTYPE), torch.randn(3, dtype=DTYPE)
    x, y = torch.randn(2, dtype=DTYPE), torch.randn(3, dtype=DTYPE)

    def f(x: Tensor, y: Tensor) -> Tensor:
        return torch.tanh(a @ x) * y + b

    jx, jy = vg.jacobian(f, (x, y))
    exact = jx.square().sum() + jy.square().sum()
    gram = jx @ jx.T + jy @ jy.T
    estimates = vg.hutchinson(f, (x, y), num_samples=50_000)
    standard_error = math.sqrt(off_diagonal_variance(gram) / 50_000)
    assert abs(float(estimates.mean() - exact)) < 4 * standard_error


@pytest.mark.parametrize("chunk_size", [1, 3, 16])
def test_chunk_size_changes_nothing(chunk_size: int) -> None:
    f, x = make_mlp(), torch.randn(4, dtype=DTYPE)
    whole = vg.hutchinson(f, x, num_samples=10, generator=torch.Generator().manual_seed(1))
    chunked = vg.hutchinson(
        f, x, num_samples=10, chunk_size=chunk_size, generator=torch.Generator().manual_seed(1)
    )
    # The same probes in the same order; only the size of the vectorised products differs, which
    # may change the rounding of their reductions.
    assert_close(chunked, whole)


def test_seeds_reproduce_and_differ() -> None:
    f, x = make_mlp(d_out=6), torch.randn(4, dtype=DTYPE)
    torch.manual_seed(5)
    first = vg.hutchinson(f, x, num_samples=20)
    torch.manual_seed(5)
    assert torch.equal(vg.hutchinson(f, x, num_samples=20), first)
    assert not torch.equal(vg.hutchinson(f, x, num_samples=20), first)


def test_dtype_differentiable_and_caller_untouched() -> None:
    x = torch.randn(4, requires_grad=True)
    before = x.detach().clone()
    estimates = vg.hutchinson(lambda t: t.exp(), x, num_samples=3)
    assert estimates.dtype == torch.float32
    assert_close(estimates, x.detach().exp().square().sum().expand(3))
    assert torch.equal(x.detach(), before)
    assert x.grad is None
    # J = diag(exp(x)) and every probe gives ||J^T z||^2 = sum exp(2x): its gradient is 2 exp(2x).
    (grad,) = torch.autograd.grad(estimates.mean(), x)
    assert_close(grad, 2 * torch.exp(2 * x.detach()))
    with torch.no_grad():
        assert not vg.hutchinson(lambda t: t.exp(), x, num_samples=3).requires_grad


@pytest.mark.parametrize(
    ("quantity", "func", "dtypes", "expected"),
    [
        ("frobenius", lambda t: t.float(), (torch.float64,), torch.float64),
        ("frobenius", lambda t: t.double(), (torch.float32,), torch.float64),
        (
            "frobenius",
            lambda a, b: a.float() * b.float(),
            (torch.float16, torch.bfloat16),
            torch.float32,
        ),
        ("hessian_trace", lambda t: t.float().pow(3).sum(), (torch.float64,), torch.float64),
        ("hessian_trace", lambda t: t.double().pow(3).sum(), (torch.float32,), torch.float32),
        (
            "hessian_trace",
            lambda a, b: (a.float().pow(2) * b.float()).sum(),
            (torch.float16, torch.bfloat16),
            torch.float32,
        ),
    ],
)
def test_dtype_is_promoted(
    quantity: str,
    func: Callable[..., Tensor],
    dtypes: tuple[torch.dtype, ...],
    expected: torch.dtype,
) -> None:
    # The output's dtype counts for 'frobenius' only: H z has the inputs' dtypes.
    xs = tuple(torch.randn(3).to(dtype) for dtype in dtypes)
    point = xs[0] if len(xs) == 1 else xs
    assert vg.hutchinson(func, point, num_samples=2, quantity=quantity).dtype == expected


def test_no_elements_give_zero() -> None:
    x = torch.randn(3, dtype=DTYPE)
    for f, point in ((lambda t: t[:0], x), (lambda t: t * 2, x[:0])):
        assert_close(vg.hutchinson(f, point, num_samples=2), torch.zeros(2, dtype=DTYPE))
    empty = vg.hutchinson(torch.sum, x[:0], num_samples=2, quantity="hessian_trace")
    assert_close(empty, torch.zeros(2, dtype=DTYPE))


# --- the trace of a Hessian --------------------------------------------------------------------


def test_hessian_trace_estimates_are_quadratic_forms() -> None:
    x = torch.randn(3, dtype=DTYPE)
    hess = vg.hessian(smooth_scalar, x)
    forms = torch.einsum("si,ij,sj->s", signs(3), hess, signs(3))
    assert_close(forms.mean(), hess.trace())
    estimates = vg.hutchinson(smooth_scalar, x, num_samples=64, quantity="hessian_trace")
    distance = (estimates[:, None] - forms[None, :]).abs().min(dim=1).values
    assert_close(distance, torch.zeros_like(distance), rtol=0, atol=1e-12)
    assert len(torch.unique(estimates.round(decimals=10))) == 4


def test_hessian_trace_is_unbiased() -> None:
    # As for the Frobenius norm: 4 standard errors, a chance failure about 6e-5.
    x = torch.randn(5, dtype=DTYPE)
    hess = vg.hessian(smooth_scalar, x)
    estimates = vg.hutchinson(smooth_scalar, x, num_samples=4000, quantity="hessian_trace")
    standard_error = math.sqrt(off_diagonal_variance(hess) / 4000)
    assert abs(float(estimates.mean() - hess.trace())) < 4 * standard_error


def test_hessian_trace_of_tuple_inputs_and_one_element_output() -> None:
    # f(x, y) = sum(x^2 y) returned with shape (1,): H_xx = diag(2y), H_yy = 0, so tr H = 2 sum y
    # and, H_xx being diagonal, the x part adds no variance; the cross term 2 z_x . (2x * z_y) does.
    x, y = torch.randn(3, dtype=DTYPE), torch.randn(3, dtype=DTYPE)

    def f(x: Tensor, y: Tensor) -> Tensor:
        return (x**2 * y).sum().reshape(1)

    (hxx, hxy), (_, hyy) = vg.hessian(f, (x, y))
    hess = torch.cat((torch.cat((hxx, hxy), 1), torch.cat((hxy.T, hyy), 1)), 0)
    estimates = vg.hutchinson(f, (x, y), num_samples=2000, quantity="hessian_trace")
    standard_error = math.sqrt(off_diagonal_variance(hess) / 2000)
    assert abs(float(estimates.mean() - 2 * y.sum())) < 4 * standard_error


def test_diagonal_hessian_has_no_variance() -> None:
    x = torch.randn(4, dtype=DTYPE)
    estimates = vg.hutchinson(lambda t: t.exp().sum(), x, num_samples=5, quantity="hessian_trace")
    assert_close(estimates, x.exp().sum().expand(5))


# --- errors ----------------------------------------------------------------------------------


X = X3


@pytest.mark.parametrize(
    ("func", "inputs", "kwargs", "error", "match"),
    [
        *FUNC_ERRORS,
        (
            torch.sin,
            [X],
            {},
            TypeError,
            r"`inputs` must be a Tensor or a tuple of Tensors; got list",
        ),
        (torch.sin, X.int(), {}, TypeError, r"`inputs` must have a real floating-point dtype"),
        (torch.sin, X, {"num_samples": 2.0}, TypeError, r"`num_samples` must be a positive int"),
        (torch.sin, X, {"quantity": 1}, TypeError, r"`quantity` must be one of .* of type int"),
        (torch.sin, X, {"chunk_size": "2"}, TypeError, r"`chunk_size` must be None or a positive"),
        (torch.sin, X, {"generator": 0}, TypeError, r"`generator` must be a torch.Generator or"),
        (
            torch.sin,
            X,
            {"quantity": "hessian_trace"},
            ValueError,
            r"`func` must return a one-element Tensor \(a scalar\); got shape \(3,\)",
        ),
        (torch.sin, (), {}, ValueError, r"`inputs` must be a Tensor or a non-empty tuple"),
        (
            torch.sin,
            X,
            {"num_samples": 0},
            ValueError,
            r"`num_samples` must be a positive int; got 0",
        ),
        (torch.sin, X, {"quantity": "trace"}, ValueError, r"`quantity` must be one of 'frobenius'"),
        (torch.sin, X, {"chunk_size": 0}, ValueError, r"`chunk_size` must be None or .*; got 0"),
    ],
)
def test_errors(
    func: object, inputs: object, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    kwargs = {"num_samples": 2, **kwargs}
    with pytest.raises(error, match=r"^vecgrad\.hutchinson: " + match):
        vg.hutchinson(func, inputs, **kwargs)  # type: ignore[arg-type]

"""Diagonals and traces of square Jacobians and Hessians: vecgrad.diagonal against torch.func,
and hutchinson's trace and diagonal estimates against exact moments."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from conftest import DTYPE, FUNC_ERRORS, X3
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

Tensor = torch.Tensor
Func = Callable[[Tensor], Tensor]
G = torch.Generator().manual_seed(2024)


def rand(*shape: int) -> Tensor:
    return torch.randn(*shape, generator=G, dtype=DTYPE)


@dataclass(frozen=True)
class Square:
    """A function whose Jacobian (or, for ``of='hessian'``, Hessian) is square, at a point."""

    name: str
    func: Func
    x: Tensor
    of: str = "jacobian"
    elementwise: bool = False

    def __str__(self) -> str:
        return self.name

    def matrix(self) -> Tensor:
        """The whole matrix from torch.func, as an n x n matrix of the flattened input."""
        x, n = self.x, self.x.numel()
        full = torch.func.jacfwd(self.func)(x) if self.of == "jacobian" else hess(self.func, x)
        return full.reshape(n, n)

    def diagonal(self) -> Tensor:
        return self.matrix().diagonal().reshape(self.x.shape)


def hess(func: Func, x: Tensor) -> Tensor:
    return torch.func.hessian(lambda t: func(t).reshape(()))(x)


W, B = rand(5, 5), rand(5)
W2, W3 = rand(6, 5), rand(5, 6)
M = rand(3, 3)

JACOBIANS = [
    Square("linear", lambda t: W @ t, rand(5)),
    Square("mlp", lambda t: W3 @ torch.tanh(W2 @ t + 1.0), rand(5)),
    Square("softmax", lambda t: torch.softmax(t, 0), rand(5)),
    Square("matrix_square", lambda t: t @ t + M * t, rand(3, 3)),
    Square("coupled", lambda t: t * t.sum() + torch.sin(t.flip(0)), rand(4)),
    Square("sin", torch.sin, rand(6), elementwise=True),
    Square("exp_square_2d", lambda t: torch.exp(t) * t**2, rand(2, 3), elementwise=True),
    Square("scalar", lambda t: t**3, rand(1)[0], elementwise=True),
]
HESSIANS = [
    Square(
        "logsumexp_cubic",
        lambda t: torch.logsumexp(t, 0) + (t[:-1] * t[1:] ** 2).sum(),
        rand(5),
        of="hessian",
    ),
    Square("mlp_norm", lambda t: torch.tanh(W @ t + B).square().sum(), rand(5), of="hessian"),
    Square("matrix", lambda t: (t @ t).trace() + torch.sin(t).sum(), rand(3, 3), of="hessian"),
    Square(
        "one_element_output",
        lambda t: (t.exp() * t).sum().reshape(1),
        rand(4),
        of="hessian",
        elementwise=True,
    ),
    Square(
        "separable_2d",
        lambda t: (torch.cos(t) * t**3).sum(),
        rand(2, 3),
        of="hessian",
        elementwise=True,
    ),
]
CASES = JACOBIANS + HESSIANS


def counting(func: Func) -> tuple[Func, list[int]]:
    """``func`` and a list that grows by one on every call: one call per vectorised chunk."""
    calls: list[int] = []

    def counted(t: Tensor) -> Tensor:
        calls.append(1)
        return func(t)

    return counted, calls


# --- exact diagonals ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_diagonal_and_trace_match_torch_func(case: Square) -> None:
    diag = vg.diagonal(case.func, case.x, of=case.of)
    assert diag.shape == case.x.shape
    assert_close(diag, case.diagonal())
    assert_close(diag.sum(), case.matrix().trace())


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("chunk_size", [1, 2, 5, 100])
def test_chunk_size_changes_nothing(case: Square, chunk_size: int) -> None:
    whole = vg.diagonal(case.func, case.x, of=case.of)
    chunked = vg.diagonal(case.func, case.x, of=case.of, chunk_size=chunk_size)
    # The same products, vectorised in batches of another size, may round their reductions
    # differently (by a few float64 ulps): assert_close's float64 tolerance, rtol 1e-7.
    assert_close(chunked, whole)


@pytest.mark.parametrize("of", ["jacobian", "hessian"])
def test_a_chunk_keeps_only_its_diagonal(of: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Memory for chunk_size products, as documented: no piece may hold on to its chunk's
    # (chunk_size, n) products until they are put together, n^2 elements in all.
    pieces: list[Tensor] = []

    def spy(parts: list[Tensor], dim: int = 0) -> Tensor:
        pieces.extend(parts)
        return torch.cat(tuple(parts), dim)

    monkeypatch.setattr("vecgrad.estimators.cat", spy)
    x = rand(6)
    func = (lambda t: t**3 + t.roll(1)) if of == "jacobian" else (lambda t: (t**3).sum())
    diag = vg.diagonal(func, x, of=of, chunk_size=2)
    assert_close(diag, 3 * x**2 if of == "jacobian" else 6 * x)
    assert len(pieces) == 3
    for piece in pieces:
        assert piece.untyped_storage().nbytes() == piece.numel() * piece.element_size()


@pytest.mark.parametrize("case", [c for c in CASES if c.elementwise], ids=str)
def test_elementwise_takes_one_pass(case: Square) -> None:
    func, calls = counting(case.func)
    diag = vg.diagonal(func, case.x, of=case.of, elementwise=True)
    assert len(calls) == 1
    assert_close(diag, case.diagonal())


@pytest.mark.parametrize("case", [c for c in CASES if not c.elementwise], ids=str)
def test_elementwise_on_a_full_matrix_gives_row_sums(case: Square) -> None:
    # What the docstring states of a false promise: the tangent of ones gives A @ 1.
    diag = vg.diagonal(case.func, case.x, of=case.of, elementwise=True)
    assert_close(diag, case.matrix().sum(1).reshape(case.x.shape))


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("chunk_size", [1, 3])
def test_default_route_takes_one_pass_per_element(case: Square, chunk_size: int) -> None:
    func, calls = counting(case.func)
    vg.diagonal(func, case.x, of=case.of, chunk_size=chunk_size)
    assert len(calls) == math.ceil(case.x.numel() / chunk_size)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("chunk_size", [None, 1, 2])
def test_any_colouring_sums_the_row_over_its_colour(case: Square, chunk_size: int | None) -> None:
    # Element i of the result is sum_{j: c_j = c_i} A_ij, whatever the colours; unsorted,
    # negative and non-consecutive colour values included.
    n = case.x.numel()
    palette = torch.tensor([7, -3, 100, 0])
    colors = palette[torch.randint(0, 4, (n,), generator=torch.Generator().manual_seed(n))]
    same = (colors[:, None] == colors[None, :]).to(DTYPE)
    expected = (case.matrix() * same).sum(1).reshape(case.x.shape)
    func, calls = counting(case.func)
    got = vg.diagonal(
        func, case.x, of=case.of, colors=colors.reshape(case.x.shape), chunk_size=chunk_size
    )
    assert_close(got, expected)
    used = len(torch.unique(colors))
    assert len(calls) == math.ceil(used / (chunk_size or used))
    flat = vg.diagonal(case.func, case.x, of=case.of, colors=colors, chunk_size=chunk_size)
    assert_close(flat, expected)


def banded(n: int, width: int) -> Tensor:
    """A random matrix whose entries more than ``width`` off the diagonal are zero."""
    i = torch.arange(n)
    return rand(n, n) * ((i[:, None] - i[None, :]).abs() <= width)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_a_valid_colouring_gives_the_diagonal_of_a_banded_jacobian(width: int) -> None:
    # Same-coloured elements are width + 1 apart, so they never share an output: i % (width + 1).
    n = 9
    a = banded(n, width)

    def func(t: Tensor) -> Tensor:
        return torch.tanh(a @ t) + t**3

    x = rand(n)
    colors = torch.arange(n) % (width + 1)
    counted, calls = counting(func)
    diag = vg.diagonal(counted, x, colors=colors, chunk_size=1)
    assert len(calls) == width + 1
    assert_close(diag, torch.func.jacfwd(func)(x).diagonal())


def test_two_colours_suffice_for_a_tridiagonal_diagonal() -> None:
    # Neighbours differ in parity: fewer colours than recovering the whole Jacobian needs (3).
    n, a = 8, banded(8, 1)

    def func(t: Tensor) -> Tensor:
        return torch.sin(a @ t)

    x = rand(n)
    diag = vg.diagonal(func, x, colors=torch.arange(n) % 2)
    assert_close(diag, torch.func.jacfwd(func)(x).diagonal())


def test_a_checkerboard_colours_a_five_point_stencil() -> None:
    # f(u)_ij = u_ij^3 + sum of the four neighbours (zero outside): each pixel's neighbours have
    # the other colour of (i + j) % 2; colours shaped like the input.
    def stencil(u: Tensor) -> Tensor:
        p = torch.nn.functional.pad(u, (1, 1, 1, 1))
        return u**3 + p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]

    u = rand(4, 5)
    i, j = torch.meshgrid(torch.arange(4), torch.arange(5), indexing="ij")
    counted, calls = counting(stencil)
    diag = vg.diagonal(counted, u, colors=(i + j) % 2, chunk_size=1)
    assert len(calls) == 2
    assert_close(diag, 3 * u**2)


def test_a_colouring_gives_the_diagonal_of_a_tridiagonal_hessian() -> None:
    # f = sum_i g(x_i, x_{i+1}) has a tridiagonal Hessian.
    def chain(t: Tensor) -> Tensor:
        return torch.sin(t[:-1] * t[1:]).sum() + (t**4).sum() / 4

    x = rand(7)
    diag = vg.diagonal(chain, x, of="hessian", colors=torch.arange(7) % 2)
    assert_close(diag, torch.func.hessian(chain)(x).diagonal())


@pytest.mark.parametrize("of", ["jacobian", "hessian"])
def test_no_elements(of: str) -> None:
    x = torch.zeros(0, 3, dtype=DTYPE)
    func = torch.sin if of == "jacobian" else torch.sum
    counted, calls = counting(func)
    for kwargs in ({}, {"elementwise": True}, {"colors": torch.zeros(0, 3, dtype=torch.long)}):
        diag = vg.diagonal(counted, x, of=of, **kwargs)  # type: ignore[arg-type]
        assert diag.shape == (0, 3)
        assert diag.dtype == DTYPE
    assert len(calls) == 3  # func is still called, to check what it returns


@pytest.mark.parametrize(
    ("func", "of", "dtype", "expected"),
    [
        (lambda t: t.float(), "jacobian", torch.float64, torch.float64),
        (lambda t: t.double(), "jacobian", torch.float32, torch.float64),
        (lambda t: t.double().sin(), "jacobian", torch.bfloat16, torch.float64),
        (lambda t: t.half(), "jacobian", torch.float32, torch.float32),
        (lambda t: t.double().pow(3).sum(), "hessian", torch.float32, torch.float32),
        (lambda t: t.float().pow(3).sum(), "hessian", torch.float64, torch.float64),
    ],
)
def test_dtype_is_that_of_jacobian_or_hessian(
    func: Func, of: str, dtype: torch.dtype, expected: torch.dtype
) -> None:
    x = torch.randn(3).to(dtype)
    for kwargs in ({}, {"elementwise": True}, {"colors": torch.tensor([0, 1, 0])}):
        assert vg.diagonal(func, x, of=of, **kwargs).dtype == expected  # type: ignore[arg-type]
    reference = vg.jacobian(func, x) if of == "jacobian" else vg.hessian(func, x)
    assert reference.dtype == expected


def test_caller_untouched_and_result_owns_its_memory() -> None:
    x = rand(4)
    before = x.clone()
    for kwargs in ({}, {"elementwise": True}, {"colors": torch.tensor([0, 1, 0, 1])}):
        diag = vg.diagonal(lambda t: t, x, **kwargs)  # type: ignore[arg-type]
        assert_close(diag, torch.ones_like(x))
        diag.add_(1)  # a write to the result changes nothing else
        assert torch.equal(x, before)


# --- differentiating and composing exact diagonals ------------------------------------------------

ROUTES: dict[str, dict[str, object]] = {
    "default": {},
    "chunked": {"chunk_size": 2},
    "colors": {"colors": torch.tensor([0, 1, 0, 2, 1])},
    "elementwise": {"elementwise": True},  # a false promise here: row sums, one colour
}


def route_colors(kwargs: dict[str, object]) -> Tensor | None:
    """The colours a route stands for: None for every element its own."""
    if kwargs.get("elementwise"):
        return torch.zeros(5, dtype=torch.long)
    colors = kwargs.get("colors")
    return colors if isinstance(colors, Tensor) else None


def field(w: Tensor, t: Tensor) -> Tensor:
    """A vector field with a dense, non-symmetric Jacobian that depends on the weights ``w``."""
    return torch.tanh(w @ t) * t


def energy(w: Tensor, t: Tensor) -> Tensor:
    return torch.logsumexp(w @ t, 0) + (t**4).sum() / 4


def reference(of: str, colors: Tensor | None) -> Callable[[Tensor, Tensor], Tensor]:
    """The diagonal (or colour-row sum) as a pure torch.func composition of (w, t)."""

    def diag(w: Tensor, t: Tensor) -> Tensor:
        if of == "jacobian":
            full = torch.func.jacfwd(lambda s: field(w, s))(t)
        else:
            full = torch.func.hessian(lambda s: energy(w, s))(t)
        if colors is None:
            return full.diagonal()
        return (full * (colors[:, None] == colors[None, :])).sum(1)

    return diag


def ours(of: str, kwargs: dict[str, object]) -> Callable[[Tensor, Tensor], Tensor]:
    def diag(w: Tensor, t: Tensor) -> Tensor:
        func = field if of == "jacobian" else energy
        return vg.diagonal(lambda s: func(w, s), t, of=of, **kwargs)  # type: ignore[arg-type]

    return diag


@pytest.mark.parametrize("of", ["jacobian", "hessian"])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_gradients_reach_inputs_and_closed_over_weights(of: str, route: str) -> None:
    kwargs = ROUTES[route]
    w, x = rand(5, 5).requires_grad_(), rand(5).requires_grad_()
    diag = ours(of, kwargs)(w, x)
    assert diag.requires_grad
    loss = (diag * torch.linspace(-1, 1, 5, dtype=DTYPE)).sum() + diag.square().sum()
    got = torch.autograd.grad(loss, (w, x))
    ref = reference(of, route_colors(kwargs))

    def ref_loss(w_: Tensor, t: Tensor) -> Tensor:
        d = ref(w_, t)
        return (d * torch.linspace(-1, 1, 5, dtype=DTYPE)).sum() + d.square().sum()

    expected = torch.func.grad(ref_loss, argnums=(0, 1))(w.detach(), x.detach())
    assert_close(got, expected)
    with torch.no_grad():
        assert not ours(of, kwargs)(w, x).requires_grad


@pytest.mark.parametrize("of", ["jacobian", "hessian"])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_inside_vmap_grad_and_jacrev(of: str, route: str) -> None:
    kwargs = ROUTES[route]
    ref = reference(of, route_colors(kwargs))
    mine = ours(of, kwargs)
    w, xs = rand(5, 5), rand(3, 5)
    # vmap over points, and over weights (an ensemble).
    assert_close(
        torch.func.vmap(mine, in_dims=(None, 0))(w, xs), torch.func.vmap(ref, (None, 0))(w, xs)
    )
    ws = rand(2, 5, 5)
    assert_close(
        torch.func.vmap(mine, in_dims=(0, None))(ws, xs[0]),
        torch.func.vmap(ref, (0, None))(ws, xs[0]),
    )
    # grad of the trace (divergence or Laplacian), and the whole Jacobian of the diagonal.
    trace = torch.func.grad(lambda t: mine(w, t).sum())(xs[0])
    assert_close(trace, torch.func.grad(lambda t: ref(w, t).sum())(xs[0]))
    assert_close(
        torch.func.jacrev(mine, argnums=1)(w, xs[0]), torch.func.jacrev(ref, argnums=1)(w, xs[0])
    )


def test_elementwise_inside_vmap_and_grad() -> None:
    xs = rand(3, 4)

    def diag(t: Tensor) -> Tensor:
        return vg.diagonal(lambda s: torch.sin(s) * s, t, elementwise=True)

    expected = torch.cos(xs) * xs + torch.sin(xs)
    assert_close(torch.func.vmap(diag)(xs), expected)
    # d/dx of sum(cos x * x + sin x) = -sin x * x + 2 cos x
    assert_close(
        torch.func.grad(lambda t: diag(t).sum())(xs[0]),
        2 * torch.cos(xs[0]) - torch.sin(xs[0]) * xs[0],
    )


def test_diagonal_of_a_function_that_calls_vecgrad() -> None:
    # The Jacobian of the gradient (vg.jacobian of a scalar) is the Hessian.
    x = rand(4)

    def gradient(t: Tensor) -> Tensor:
        return vg.jacobian(lambda s: (torch.sin(s) * s.sum()).sum(), t)

    assert_close(
        vg.diagonal(gradient, x), hess(lambda s: (torch.sin(s) * s.sum()).sum(), x).diagonal()
    )


# --- estimated traces and diagonals ---------------------------------------------------------------


def signs(n: int) -> Tensor:
    """All 2**n vectors of signs +-1, shape (2**n, n): every Rademacher probe, equally likely."""
    return torch.tensor(list(itertools.product((-1.0, 1.0), repeat=n)), dtype=DTYPE)


def every_probe(a: Tensor) -> tuple[Tensor, Tensor]:
    """The estimates z * (A z) and z^T A z of every probe z: their exact distribution."""
    z = signs(a.shape[0])
    diagonal = z * (z @ a.T)
    return diagonal, diagonal.sum(1)


def diagonal_variance(a: Tensor) -> Tensor:
    """The stated variance of (z * A z)_i: sum_{j != i} A_ij^2."""
    return a.square().sum(1) - a.diagonal().square()


def trace_variance(a: Tensor) -> float:
    """The stated variance of z^T A z: sum_{i != j} (A_ij^2 + A_ij A_ji)."""
    off = a - torch.diag(a.diagonal())
    return float((off.square() + off * off.T).sum())


def test_stated_moments_are_exact_over_every_probe() -> None:
    # No randomness: the mean over all 2**n sign vectors is the expectation.
    a = rand(6, 6)  # not symmetric
    diagonal, trace = every_probe(a)
    assert_close(diagonal.mean(0), a.diagonal())
    centred = diagonal - a.diagonal()
    covariance = centred.T @ centred / len(centred)
    off = a - torch.diag(a.diagonal())
    assert_close(covariance, off * off.T + torch.diag(diagonal_variance(a)))
    assert_close(trace.mean(), a.trace())
    assert_close(float(trace.var(unbiased=False)), trace_variance(a))
    # 2 sum_{i != j} A_ij^2 holds for symmetric matrices only.
    assert abs(trace_variance(a) - 2 * float(off.square().sum())) > 1
    sym = a + a.T
    assert_close(
        float(every_probe(sym)[1].var(unbiased=False)),
        2 * float((sym - torch.diag(sym.diagonal())).square().sum()),
    )


def exact_moments(samples: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean, variance and fourth central moment of the distribution of every probe's estimate."""
    mean = samples.mean(0)
    centred = samples - mean
    return mean, centred.square().mean(0), centred.pow(4).mean(0)


# A dense, non-symmetric Jacobian (the MLP) and a dense Hessian; no off-diagonal entry is zero.
ESTIMATED = {"jacobian": JACOBIANS[1], "hessian": HESSIANS[0]}


@pytest.mark.parametrize("kind", ["jacobian", "hessian"])
@pytest.mark.parametrize("what", ["diagonal", "trace"])
def test_estimates_are_unbiased_with_the_stated_variance(kind: str, what: str) -> None:
    """Mean and spread of 20000 seeded estimates against the exact moments.

    The mean of k estimates has standard error sqrt(var / k); the sample variance s^2 has
    standard error sqrt((mu_4 - var^2) / k), with mu_4 the exact fourth central moment (from
    every probe). By the central limit theorem a correct estimator lands outside 4.5 standard
    errors with probability below 1e-5 per element; the seed fixes the draws, so the outcome is
    the same on every run.
    """
    case = ESTIMATED[kind]
    a = case.matrix()
    diagonal, trace = every_probe(a)
    exact = diagonal if what == "diagonal" else trace
    mean, variance, fourth = exact_moments(exact)
    assert_close(
        variance,
        diagonal_variance(a)
        if what == "diagonal"
        else torch.tensor(trace_variance(a), dtype=DTYPE),
    )
    k = 20_000
    estimates = vg.hutchinson(
        case.func,
        case.x,
        num_samples=k,
        quantity=f"{kind}_{what}",
        generator=torch.Generator().manual_seed(11),
    )
    assert estimates.shape == ((k, *case.x.shape) if what == "diagonal" else (k,))
    estimates = estimates.reshape(k, -1) if what == "diagonal" else estimates
    assert torch.all((estimates.mean(0) - mean).abs() < 4.5 * (variance / k).sqrt())
    spread = estimates.var(0)
    assert torch.all((spread - variance).abs() < 4.5 * ((fourth - variance**2) / k).sqrt())


@pytest.mark.parametrize("kind", ["jacobian", "hessian"])
def test_estimates_use_the_documented_probes(kind: str) -> None:
    case = (
        Square("2d", lambda t: torch.tanh(t @ M) * t, rand(2, 3))
        if kind == "jacobian"
        else Square("2d", lambda t: torch.logsumexp((t @ M).flatten(), 0), rand(2, 3), of="hessian")
    )
    a = case.matrix()
    diag = vg.hutchinson(
        case.func,
        case.x,
        num_samples=10,
        quantity=f"{kind}_diagonal",
        generator=torch.Generator().manual_seed(3),
    )
    trace = vg.hutchinson(
        case.func,
        case.x,
        num_samples=10,
        quantity=f"{kind}_trace",
        generator=torch.Generator().manual_seed(3),
    )
    z = (2 * torch.randint(0, 2, (10, 2, 3), generator=torch.Generator().manual_seed(3)) - 1).to(
        DTYPE
    )
    flat = z.reshape(10, 6)
    assert_close(diag, (flat * (flat @ a.T)).reshape(10, 2, 3))
    assert_close(trace, (flat * (flat @ a.T)).sum(1))
    # A probe's diagonal estimate sums to its trace estimate.
    assert_close(diag.sum((1, 2)), trace)


@pytest.mark.parametrize("case", [c for c in CASES if c.elementwise], ids=str)
def test_diagonal_matrices_give_estimates_without_variance(case: Square) -> None:
    diag = vg.hutchinson(case.func, case.x, num_samples=4, quantity=f"{case.of}_diagonal")
    assert_close(diag, case.diagonal().expand(4, *case.x.shape))
    trace = vg.hutchinson(case.func, case.x, num_samples=4, quantity=f"{case.of}_trace")
    assert_close(trace, case.diagonal().sum().expand(4))


@pytest.mark.parametrize("quantity", ["jacobian_trace", "jacobian_diagonal", "hessian_diagonal"])
@pytest.mark.parametrize("chunk_size", [1, 3, 16])
def test_estimate_chunk_size_changes_nothing(quantity: str, chunk_size: int) -> None:
    case = JACOBIANS[1] if quantity.startswith("jacobian") else HESSIANS[1]

    def run(size: int | None) -> Tensor:
        generator = torch.Generator().manual_seed(1)
        return vg.hutchinson(
            case.func,
            case.x,
            num_samples=10,
            quantity=quantity,
            chunk_size=size,
            generator=generator,
        )

    assert_close(run(chunk_size), run(None))


@pytest.mark.parametrize(
    "quantity", ["jacobian_trace", "jacobian_diagonal", "hessian_trace", "hessian_diagonal"]
)
def test_estimates_are_differentiable_like_torch_func(quantity: str) -> None:
    kind, what = quantity.split("_")
    w, x = rand(5, 5).requires_grad_(), rand(5).requires_grad_()
    func = field if kind == "jacobian" else energy
    est = vg.hutchinson(
        lambda t: func(w, t),
        x,
        num_samples=6,
        quantity=quantity,
        generator=torch.Generator().manual_seed(4),
    )
    got = torch.autograd.grad(est.square().sum(), (w, x))
    z = (2 * torch.randint(0, 2, (6, 5), generator=torch.Generator().manual_seed(4)) - 1).to(DTYPE)

    def ref(w_: Tensor, t: Tensor) -> Tensor:
        if kind == "jacobian":
            a = torch.func.jacfwd(lambda s: field(w_, s))(t)
        else:
            a = torch.func.hessian(lambda s: energy(w_, s))(t)
        each = z * (z @ a.T)
        return (each if what == "diagonal" else each.sum(1)).square().sum()

    assert_close(got, torch.func.grad(ref, argnums=(0, 1))(w.detach(), x.detach()))


def test_estimates_inside_vmap_and_grad() -> None:
    w, xs = rand(5, 5), rand(3, 5)

    def estimate(t: Tensor) -> Tensor:
        generator = torch.Generator().manual_seed(5)
        return vg.hutchinson(
            lambda s: field(w, s),
            t,
            num_samples=4,
            quantity="jacobian_diagonal",
            generator=generator,
        )

    # The probes are drawn inside the vmapped function: one draw for every point.
    batched = torch.func.vmap(estimate, randomness="same")(xs)
    assert_close(batched, torch.stack([estimate(t) for t in xs]))
    z = (2 * torch.randint(0, 2, (4, 5), generator=torch.Generator().manual_seed(5)) - 1).to(DTYPE)

    def ref(t: Tensor) -> Tensor:
        return (z * (z @ torch.func.jacfwd(lambda s: field(w, s))(t).T)).sum()

    assert_close(torch.func.grad(lambda t: estimate(t).sum())(xs[0]), torch.func.grad(ref)(xs[0]))


@pytest.mark.parametrize(
    ("quantity", "func", "dtype", "expected"),
    [
        ("jacobian_trace", lambda t: t.float(), torch.float64, torch.float64),
        ("jacobian_diagonal", lambda t: t.double(), torch.float32, torch.float64),
        ("jacobian_diagonal", lambda t: t.half(), torch.float32, torch.float32),
        ("hessian_diagonal", lambda t: t.double().pow(3).sum(), torch.float32, torch.float32),
    ],
)
def test_estimate_dtype_is_promoted(
    quantity: str, func: Func, dtype: torch.dtype, expected: torch.dtype
) -> None:
    assert (
        vg.hutchinson(func, torch.randn(3).to(dtype), num_samples=2, quantity=quantity).dtype
        == expected
    )


def test_estimates_of_no_elements() -> None:
    x = torch.zeros(0, dtype=DTYPE)
    for quantity, func in (
        ("jacobian_trace", torch.sin),
        ("jacobian_diagonal", torch.sin),
        ("hessian_diagonal", torch.sum),
    ):
        est = vg.hutchinson(func, x, num_samples=2, quantity=quantity)
        assert_close(
            est,
            torch.zeros(2, dtype=DTYPE)
            if quantity.endswith("trace")
            else torch.zeros(2, 0, dtype=DTYPE),
        )


# --- errors ------------------------------------------------------------------------------------

X = X3


@pytest.mark.parametrize(
    ("func", "inputs", "kwargs", "error", "match"),
    [
        *FUNC_ERRORS,
        (
            torch.sin,
            (X, X),
            {},
            TypeError,
            r"`inputs` must be one Tensor, whose elements index the square matrix; got a tuple "
            r"of length 2\. Concatenate several inputs into one Tensor, or hold all but one fixed",
        ),
        (torch.sin, [X], {}, TypeError, r"`inputs` must be one Tensor, .*; got a list of length 1"),
        (torch.sin, 1.0, {}, TypeError, r"`inputs` must be one Tensor, .*; got float\.$"),
        (torch.sin, X.int(), {}, TypeError, r"`inputs` must have a real floating-point dtype"),
        (
            torch.sin,
            X,
            {"of": 1},
            TypeError,
            r"`of` must be one of 'jacobian', 'hessian'; got 1 of",
        ),
        (torch.sin, X, {"elementwise": 1}, TypeError, r"`elementwise` must be a bool; got int"),
        (torch.sin, X, {"colors": [0, 1, 0]}, TypeError, r"`colors` must be a Tensor; got list"),
        (
            torch.sin,
            X,
            {"colors": X},
            TypeError,
            r"`colors` must have an integer dtype; got torch\.float32",
        ),
        (
            torch.sin,
            X,
            {"colors": X > 0},
            TypeError,
            r"`colors` must have an integer dtype; got torch\.bool",
        ),
        (
            torch.sin,
            X,
            {"colors": torch.zeros(3, dtype=torch.long).to_sparse()},
            TypeError,
            r"`colors` must be a dense \(strided\) Tensor",
        ),
        (torch.sin, X, {"chunk_size": 1.0}, TypeError, r"`chunk_size` must be None or a positive"),
        (
            lambda t: t[:2],
            X,
            {},
            ValueError,
            r"`func` must return a Tensor of the shape of `inputs`, \(3,\), with of='jacobian' "
            r"\(a square Jacobian\); got shape \(2,\)\.",
        ),
        (
            torch.sin,
            X,
            {"of": "hessian"},
            ValueError,
            r"`func` must return a one-element Tensor \(a scalar\); got shape \(3,\)",
        ),
        (
            lambda t: torch.ones(3, device="meta"),
            X,
            {},
            ValueError,
            r"`func` must return a Tensor with values",
        ),
        (torch.sin, X.to("meta"), {}, ValueError, r"`inputs` must hold values"),
        (
            torch.sin,
            X,
            {"of": "laplacian"},
            ValueError,
            r"`of` must be one of 'jacobian', 'hessian'; got 'laplacian'\.$",
        ),
        (
            torch.sin,
            X,
            {"elementwise": True, "colors": torch.zeros(3, dtype=torch.long)},
            ValueError,
            r"`elementwise` must be False when `colors` is given",
        ),
        (
            torch.sin,
            X,
            {"colors": torch.zeros(2, dtype=torch.long)},
            ValueError,
            r"`colors` must have the shape of `inputs`, \(3,\); got \(2,\)\.$",
        ),
        (
            torch.sin,
            X.reshape(3, 1),
            {"colors": torch.zeros(1, 3, dtype=torch.long)},
            ValueError,
            r"`colors` must have the shape of `inputs`, \(3, 1\), or \(3,\); got \(1, 3\)\.$",
        ),
        (
            torch.sin,
            X,
            {"colors": torch.zeros(3, dtype=torch.long, device="meta")},
            ValueError,
            r"`colors` must hold values",
        ),
        (torch.sin, X, {"chunk_size": 0}, ValueError, r"`chunk_size` must be None or .*; got 0"),
    ],
)
def test_diagonal_errors(
    func: object, inputs: object, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=r"^vecgrad\.diagonal: " + match):
        vg.diagonal(func, inputs, **kwargs)  # type: ignore[arg-type]


def test_colors_batched_by_a_transform_are_refused() -> None:
    colors = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.diagonal: `colors` must be a plain Tensor, fixed for the whole call; "
        r"got a Tensor batched",
    ):
        torch.func.vmap(lambda t, c: vg.diagonal(torch.sin, t, colors=c))(torch.randn(2, 3), colors)


@pytest.mark.parametrize("quantity", ["jacobian_trace", "jacobian_diagonal", "hessian_diagonal"])
def test_estimators_of_one_input_refuse_tuples(quantity: str) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^vecgrad\.hutchinson: `inputs` must be one Tensor with quantity='{quantity}', "
        r"whose elements index the square matrix; got a tuple of length 2\.",
    ):
        vg.hutchinson(lambda a, b: a * b, (X, X), num_samples=2, quantity=quantity)


@pytest.mark.parametrize("quantity", ["jacobian_trace", "jacobian_diagonal"])
def test_estimators_need_a_square_jacobian(quantity: str) -> None:
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.hutchinson: `func` must return a Tensor of the shape of `inputs`, "
        rf"\(3,\), with quantity='{quantity}' \(a square Jacobian\); got shape \(\)\.",
    ):
        vg.hutchinson(torch.sum, X, num_samples=2, quantity=quantity)


def test_hessian_diagonal_needs_a_scalar() -> None:
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.hutchinson: `func` must return a one-element Tensor \(a scalar\); "
        r"got shape \(3,\)",
    ):
        vg.hutchinson(torch.sin, X, num_samples=2, quantity="hessian_diagonal")

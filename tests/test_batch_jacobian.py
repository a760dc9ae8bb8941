"""vecgrad.batch_jacobian against a loop of per-sample Jacobians."""

from __future__ import annotations

from collections.abc import Callable
from unittest.mock import Mock

import pytest
import torch
from conftest import DTYPE
from torch import nn
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

STRATEGIES = ("auto", "reverse", "forward")


def per_sample_reference(
    func: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, ...]:
    """Jacobian of every sample on its own (a batch of one), stacked: N jacrev calls."""

    def one(*rows: torch.Tensor) -> torch.Tensor:
        return func(*(r.unsqueeze(0) for r in rows)).squeeze(0)

    argnums = tuple(range(len(inputs)))
    per_sample = [
        torch.func.jacrev(one, argnums)(*(x[b] for x in inputs)) for b in range(len(inputs[0]))
    ]
    return tuple(torch.stack(blocks) for blocks in zip(*per_sample, strict=True))


def mlp(n_in: int, n_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, 6), nn.Tanh(), nn.Linear(6, n_out)).to(DTYPE)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("n_in", "n_out"), [(5, 2), (2, 5), (3, 3), (1, 1)])
def test_mlp_matches_per_sample_loop(strategy: str, n_in: int, n_out: int) -> None:
    model = mlp(n_in, n_out)
    x = torch.randn(7, n_in, dtype=DTYPE)
    jac = vg.batch_jacobian(model, x, strategy=strategy)
    assert isinstance(jac, torch.Tensor)
    assert jac.shape == (7, n_out, n_in)
    # The model's parameters require grad, so the Jacobians carry the graph to them.
    assert jac.requires_grad
    (expected,) = per_sample_reference(model, (x,))
    assert_close(jac, expected)
    weight = model[0].weight
    (got,) = torch.autograd.grad(jac.square().sum(), weight)
    assert_close(got, torch.autograd.grad(expected.square().sum(), weight)[0])
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_elementwise_function_gives_diagonal_blocks(strategy: str) -> None:
    x = torch.randn(4, 3, dtype=DTYPE)
    jac = vg.batch_jacobian(torch.sin, x, strategy=strategy)
    assert_close(jac, torch.diag_embed(torch.cos(x)))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matrix_rows(strategy: str) -> None:
    # Each sample is a 2x3 matrix X_b, mapped to the 3x3 matrix X_b^T X_b.
    x = torch.randn(5, 2, 3, dtype=DTYPE)

    def gram(t: torch.Tensor) -> torch.Tensor:
        return t.transpose(-1, -2) @ t

    jac = vg.batch_jacobian(gram, x, strategy=strategy)
    assert isinstance(jac, torch.Tensor)
    assert jac.shape == (5, 3, 3, 2, 3)
    (expected,) = per_sample_reference(gram, (x,))
    assert_close(jac, expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tuple_inputs(strategy: str) -> None:
    x = torch.randn(6, 3, dtype=DTYPE)
    y = torch.randn(6, 2, 2, dtype=DTYPE)
    w = torch.randn(4, 3, dtype=DTYPE)

    def func(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a @ w.T) * b.flatten(1).sum(1, keepdim=True) ** 2

    jac = vg.batch_jacobian(func, (x, y), strategy=strategy)
    assert isinstance(jac, tuple)
    assert jac[0].shape == (6, 4, 3)
    assert jac[1].shape == (6, 4, 2, 2)
    for block, ref in zip(jac, per_sample_reference(func, (x, y)), strict=True):
        assert_close(block, ref)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batch_of_one_and_of_zero(strategy: str) -> None:
    model = mlp(3, 2)
    x = torch.randn(1, 3, dtype=DTYPE)
    (expected,) = per_sample_reference(model, (x,))
    assert_close(vg.batch_jacobian(model, x, strategy=strategy), expected)
    empty = vg.batch_jacobian(model, torch.zeros(0, 3, dtype=DTYPE), strategy=strategy)
    assert isinstance(empty, torch.Tensor)
    assert empty.shape == (0, 2, 3)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_scalar_rows(strategy: str) -> None:
    # Input rows and output rows may be scalars: x of shape (N,), output of shape (N,).
    x = torch.randn(5, dtype=DTYPE)
    assert_close(vg.batch_jacobian(torch.exp, x, strategy=strategy), torch.exp(x))


@pytest.mark.parametrize(
    ("n_in", "n_out", "mode"),
    [(4, 3, "reverse"), (4, 4, "reverse"), (3, 4, "reverse"), (2, 4, "reverse"), (2, 5, "forward")],
)
def test_auto_rule_compares_row_sizes(
    modes: Callable[[], list[str]], n_in: int, n_out: int, mode: str
) -> None:
    model = mlp(n_in, n_out)
    x = torch.randn(50, n_in, dtype=DTYPE)  # N is irrelevant to the choice
    vg.batch_jacobian(model, x)
    assert modes() == [mode]


def test_auto_choice_is_the_same_on_every_call(modes: Callable[[], list[str]]) -> None:
    model = mlp(2, 5)
    func = Mock(wraps=model)
    x = torch.randn(3, 2, dtype=DTYPE)
    (expected,) = per_sample_reference(model, (x,))
    for _ in range(3):
        assert_close(vg.batch_jacobian(func, x), expected)
    assert modes() == ["forward"] * 3
    assert func.call_count == 3 * 2  # an evaluation under vjp, then forward mode


@pytest.mark.parametrize("chunk_size", [1, 2, 7])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_chunk_size_does_not_change_result(strategy: str, chunk_size: int) -> None:
    x = torch.randn(4, 2, 3, dtype=DTYPE)
    y = torch.randn(4, 2, dtype=DTYPE)

    def func(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a.sum(1)) * b.prod(1, keepdim=True)  # rows of 3, from rows of 6 and 2

    jac = vg.batch_jacobian(func, (x, y), strategy=strategy, chunk_size=chunk_size)
    for block, ref in zip(jac, per_sample_reference(func, (x, y)), strict=True):
        assert_close(block, ref)


def test_errors() -> None:
    x = torch.randn(4, 3)
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.batch_jacobian: `strategy` must be one of 'auto', 'reverse', 'forward'; "
        r"got 'loop'",
    ):
        vg.batch_jacobian(torch.sin, x, strategy="loop")
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.batch_jacobian: `inputs` must have a leading batch dimension; got a 0-dim",
    ):
        vg.batch_jacobian(torch.sin, torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"`inputs\[1\]` must have a leading batch dimension"):
        vg.batch_jacobian(torch.mul, (torch.ones(2), torch.tensor(1.0)))
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.batch_jacobian: every Tensor in `inputs` must have the same batch size "
        r"\(first dimension\); got shapes \(4, 3\), \(5, 3\)",
    ):
        vg.batch_jacobian(torch.add, (x, torch.randn(5, 3)))
    with pytest.raises(TypeError, match=r"vecgrad\.batch_jacobian: `inputs` must be a Tensor or"):
        vg.batch_jacobian(torch.sin, [x])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"vecgrad\.batch_jacobian: `func` must be callable"):
        vg.batch_jacobian(None, x)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_output_errors(strategy: str) -> None:
    x = torch.randn(4, 3)
    with pytest.raises(
        ValueError,
        match=r"vecgrad\.batch_jacobian: `func` must return a Tensor whose first dimension is "
        r"the batch size N = 4; got shape \(3,\)",
    ):
        vg.batch_jacobian(lambda t: t.sum(0), x, strategy=strategy)
    with pytest.raises(ValueError, match=r"batch size N = 4; got shape \(\)"):
        vg.batch_jacobian(lambda t: t.sum(), x, strategy=strategy)
    with pytest.raises(
        TypeError,
        match=r"vecgrad\.batch_jacobian: `func` must return a Tensor or a tuple of Tensors; "
        r"got dict\.",
    ):
        vg.batch_jacobian(lambda t: {"y": t}, x, strategy=strategy)

"""What a type checker sees of vecgrad's public signatures; checked by mypy (``nox -s lint``).

Each ``assert_type`` pins a result type, and each ``# type: ignore[code]`` marks a call that must
be an error: mypy --strict reports an ignore that is not needed, so a lost ``Literal`` (a
misspelt strategy accepted) fails the check. tests/test_typing.py runs mypy on it too. The calls
are type-checked, never run.
"""

from __future__ import annotations

from typing import Any, assert_type

import torch
from torch import Tensor

import vecgrad as vg


def one(a: Tensor) -> Tensor:
    return a.sin()


def two(a: Tensor) -> tuple[Tensor, Tensor]:
    return a.sin(), a.sum()


def with_aux(a: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    return a.sin(), {"norm": a.norm()}


def two_with_aux(a: Tensor) -> tuple[tuple[Tensor, Tensor], str]:
    return (a.sin(), a.sum()), "aux"


def both(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    return a * b.sum(), b


def calls() -> None:
    """Typical calls; mypy checks this body (it is never called: some calls must fail)."""
    x = torch.ones(3, dtype=torch.float64)
    y = torch.ones(2, dtype=torch.float64)
    # Results nest like torch.func.jacrev's: output first, then input.
    assert_type(vg.jacobian(one, x), Tensor)
    assert_type(vg.jacobian(one, (x,)), tuple[Tensor, ...])
    assert_type(vg.jacobian(two, x), tuple[Tensor, ...])
    assert_type(vg.jacobian(both, (x, y)), tuple[tuple[Tensor, ...], ...])
    assert_type(vg.jacobian(with_aux, x, has_aux=True), tuple[Tensor, Any])
    assert_type(vg.jacobian(two_with_aux, x, has_aux=True), tuple[tuple[Tensor, ...], Any])
    assert_type(vg.batch_jacobian(two, x, strategy="forward"), tuple[Tensor, ...])
    assert_type(vg.vjp(one, x, x), tuple[Tensor, Tensor])
    assert_type(vg.vjp(two, x, (x, x.sum())), tuple[tuple[Tensor, ...], Tensor])
    assert_type(vg.vjp(with_aux, x, x, has_aux=True), tuple[Tensor, Tensor, Any])
    assert_type(vg.jvp(one, x, x), tuple[Tensor, Tensor])
    assert_type(vg.jvp(both, (x, y), (x, y)), tuple[tuple[Tensor, ...], tuple[Tensor, ...]])

    # Every string choice is a Literal: a misspelt one is an error.
    vg.jacobian(one, x, strategy="revrse")  # type: ignore[call-overload]
    vg.batch_jacobian(one, x, strategy="loop")  # type: ignore[call-overload]
    vg.hutchinson(one, x, num_samples=2, quantity="frobenius_norm")  # type: ignore[arg-type]
    vg.diagonal(one, x, of="hesian")  # type: ignore[arg-type]
    vg.sparse_jacobian(one, x, sparsity=x > 0, strategy="revrse")  # type: ignore[arg-type]
    vg.color_jacobian(torch.eye(3, dtype=torch.bool), strategy="fwd")  # type: ignore[arg-type]
    # has_aux must be a literal True for the aux overloads, and func must return a pair then.
    vg.jacobian(one, x, has_aux=True)  # type: ignore[call-overload]

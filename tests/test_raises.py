"""Every public function's ``Raises`` section against the errors it really raises.

For each function, the arguments a ``Raises`` paragraph names (as ``name``) under TypeError or
ValueError must be exactly those for which a case below raises that error, with a message that
starts ``vecgrad.NAME: `` and names the argument first.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import vecgrad as vg

# Fixed values: only the errors matter here.
X = torch.linspace(-1.0, 1.0, 3)
T = X.clone().requires_grad_(True)
LOSSES = T * 2
MODEL = nn.Linear(3, 1)
Y = torch.ones(4, 1)
META = torch.ones(3, device="meta")  # a tensor without values
EYE = torch.eye(3, dtype=torch.bool)
PARAMS = {n: torch.zeros_like(p) for n, p in MODEL.named_parameters()}  # a vector like them
# The public functions; a public class (JacobianColoring) has no Raises section.
FUNCTIONS = [name for name in vg.__all__ if inspect.isfunction(getattr(vg, name))]


class Case:
    """A call of ``vecgrad.<name>`` that must raise ``error`` about argument ``arg``."""

    def __init__(
        self, name: str, error: type[Exception], arg: str, /, *args: Any, **kwargs: Any
    ) -> None:
        self.name, self.error, self.arg = name, error, arg
        self.call = functools.partial(getattr(vg, name), *args, **kwargs)

    def __repr__(self) -> str:
        return f"{self.name}-{self.error.__name__}-{self.arg}"


CASES = [
    Case("jacobian", TypeError, "func", 3, X),
    Case("jacobian", TypeError, "inputs", torch.sin, [X]),
    Case("jacobian", TypeError, "strategy", torch.sin, X, strategy=1),
    Case("jacobian", TypeError, "chunk_size", torch.sin, X, chunk_size=1.0),
    Case("jacobian", ValueError, "func", lambda t: META, X),
    Case("jacobian", ValueError, "inputs", torch.sin, ()),
    Case("jacobian", ValueError, "strategy", torch.sin, X, strategy="fast"),
    Case("jacobian", TypeError, "has_aux", torch.sin, X, has_aux=1),
    Case("jacobian", ValueError, "chunk_size", torch.sin, X, chunk_size=0),
    Case("batch_jacobian", TypeError, "func", lambda t: None, X),
    Case("batch_jacobian", TypeError, "inputs", torch.sin, X.long()),
    Case("batch_jacobian", TypeError, "strategy", torch.sin, X, strategy=None),
    Case("batch_jacobian", TypeError, "chunk_size", torch.sin, X, chunk_size="1"),
    Case("batch_jacobian", ValueError, "func", torch.sum, X),
    Case("batch_jacobian", ValueError, "inputs", torch.sin, X[0]),
    Case("batch_jacobian", ValueError, "strategy", torch.sin, X, strategy="loop"),
    Case("batch_jacobian", TypeError, "has_aux", torch.sin, X, has_aux="yes"),
    Case("batch_jacobian", ValueError, "chunk_size", torch.sin, X, chunk_size=-1),
    Case("vjp", TypeError, "func", lambda t: t.long(), X, X),
    Case("vjp", TypeError, "inputs", torch.sin, 1.0, X),
    Case("vjp", TypeError, "v", torch.sin, X, None),
    Case("vjp", ValueError, "func", lambda t: META, X, X),
    Case("vjp", ValueError, "inputs", torch.sin, (), X),
    Case("vjp", ValueError, "v", torch.sin, X, X[:2]),
    Case("vjp", TypeError, "has_aux", torch.sin, X, X, has_aux=None),
    Case("jvp", TypeError, "func", "sin", X, X),
    Case("jvp", TypeError, "inputs", torch.sin, (X, 1), X),
    Case("jvp", TypeError, "v", torch.sin, X, X.half()),
    Case("jvp", ValueError, "func", lambda t: META, X, X),
    Case("jvp", ValueError, "inputs", torch.sin, (), ()),
    Case("jvp", ValueError, "v", torch.sin, X, X[:2]),
    Case("jvp", TypeError, "has_aux", torch.sin, X, X, has_aux=0),
    Case("hessian", TypeError, "func", lambda t: 1.0, X),
    Case("hessian", TypeError, "inputs", torch.sum, X.bool()),
    Case("hessian", ValueError, "func", torch.sin, X),
    Case("hessian", ValueError, "inputs", torch.sum, ()),
    Case("hvp", TypeError, "func", None, X, X),
    Case("hvp", TypeError, "inputs", torch.sum, [X], X),
    Case("hvp", TypeError, "v", torch.sum, X, (X,)),
    Case("hvp", ValueError, "func", torch.sin, X, X),
    Case("hvp", ValueError, "inputs", torch.sum, (), ()),
    Case("hvp", ValueError, "v", torch.sum, (X, X), (X,)),
    Case("numerical_jacobian", TypeError, "func", lambda t: [t], X),
    Case("numerical_jacobian", TypeError, "inputs", torch.sin, "x"),
    Case("numerical_jacobian", TypeError, "eps", torch.sin, X, eps="1"),
    Case("numerical_jacobian", ValueError, "func", lambda t: META, X),
    Case("numerical_jacobian", ValueError, "inputs", torch.sin, ()),
    Case("numerical_jacobian", ValueError, "eps", torch.sin, X, eps=0.0),
    Case("loss_jacobian", TypeError, "losses", [1.0], MODEL),
    Case("loss_jacobian", TypeError, "params", LOSSES, 3),
    Case("loss_jacobian", TypeError, "chunk_size", LOSSES, {"t": T}, chunk_size=2.0),
    Case("loss_jacobian", TypeError, "retain_graph", LOSSES, {"t": T}, retain_graph=1),
    Case("loss_jacobian", TypeError, "create_graph", LOSSES, {"t": T}, create_graph=None),
    Case("loss_jacobian", ValueError, "losses", LOSSES.detach(), {"t": T}),
    Case("loss_jacobian", ValueError, "params", LOSSES, {}),
    Case("loss_jacobian", ValueError, "chunk_size", LOSSES, {"t": T}, chunk_size=0),
    Case("per_sample_grads", TypeError, "model", None, F.mse_loss, Y, Y),
    Case("per_sample_grads", TypeError, "loss_fn", MODEL, None, Y, Y),
    Case("per_sample_grads", TypeError, "inputs", MODEL, F.mse_loss, 1, Y),
    Case("per_sample_grads", TypeError, "targets", MODEL, F.mse_loss, Y, 1),
    Case("per_sample_grads", TypeError, "create_graph", MODEL, F.mse_loss, Y, Y, create_graph=1),
    Case("per_sample_grads", ValueError, "model", nn.BatchNorm1d(1), F.mse_loss, Y, Y),
    Case(
        "per_sample_grads",
        ValueError,
        "loss_fn",
        MODEL,
        lambda p, t: (p - t).expand(1, 2),
        torch.randn(4, 3),
        Y,
    ),
    Case("per_sample_grads", ValueError, "inputs", MODEL, F.mse_loss, Y[0, 0], Y),
    Case("per_sample_grads", ValueError, "targets", MODEL, F.mse_loss, Y, Y[:0]),
    Case("param_jacobian", TypeError, "model", F.mse_loss, Y),
    Case("param_jacobian", TypeError, "inputs", MODEL, [X]),
    Case("param_jacobian", TypeError, "chunk_size", MODEL, Y, chunk_size=1.0),
    Case("param_jacobian", TypeError, "create_graph", MODEL, Y, create_graph="yes"),
    Case("param_jacobian", ValueError, "model", nn.BatchNorm1d(1), Y),
    Case("param_jacobian", ValueError, "inputs", MODEL, X[0]),
    Case("param_jacobian", ValueError, "chunk_size", MODEL, Y, chunk_size=0),
    Case("param_hessian", TypeError, "model", None, F.mse_loss, Y, Y),
    Case("param_hessian", TypeError, "loss_fn", MODEL, 1, Y, Y),
    Case("param_hessian", TypeError, "inputs", MODEL, F.mse_loss, [1.0], Y),
    Case("param_hessian", TypeError, "targets", MODEL, F.mse_loss, Y, Y.to_sparse()),
    Case("param_hessian", TypeError, "create_graph", MODEL, F.mse_loss, Y, Y, create_graph=0),
    Case("param_hessian", ValueError, "model", nn.BatchNorm1d(1), F.mse_loss, Y, Y),
    Case("param_hessian", ValueError, "loss_fn", MODEL, lambda p, t: p - t, torch.ones(4, 3), Y),
    Case("param_hessian", ValueError, "inputs", MODEL, F.mse_loss, Y[:0], Y),
    Case("param_hessian", ValueError, "targets", MODEL, F.mse_loss, Y, Y[0, 0]),
    *(
        case
        for name in ("param_hvp", "param_ggnvp")
        for case in (
            Case(name, TypeError, "model", F.mse_loss, F.mse_loss, Y, Y, PARAMS),
            Case(name, TypeError, "loss_fn", MODEL, "mse", Y, Y, PARAMS),
            Case(name, TypeError, "inputs", MODEL, F.mse_loss, 1, Y, PARAMS),
            Case(name, TypeError, "targets", MODEL, F.mse_loss, Y, None, PARAMS),
            Case(name, TypeError, "v", MODEL, F.mse_loss, Y, Y, list(PARAMS.values())),
            Case(name, TypeError, "create_graph", MODEL, F.mse_loss, Y, Y, PARAMS, create_graph=1),
            Case(name, ValueError, "model", nn.BatchNorm1d(1), F.mse_loss, Y, Y, PARAMS),
            Case(
                name, ValueError, "loss_fn", MODEL, lambda p, t: p - t, torch.ones(4, 3), Y, PARAMS
            ),
            Case(name, ValueError, "inputs", MODEL, F.mse_loss, Y[0, 0], Y, PARAMS),
            Case(name, ValueError, "targets", MODEL, F.mse_loss, Y, Y[:0], PARAMS),
            Case(name, ValueError, "v", MODEL, F.mse_loss, Y, Y, {"weight": PARAMS["weight"]}),
        )
    ),
    Case("hutchinson", TypeError, "func", 1, X, num_samples=1),
    Case("hutchinson", TypeError, "inputs", torch.sin, [X], num_samples=1),
    Case("hutchinson", TypeError, "num_samples", torch.sin, X, num_samples=None),
    Case("hutchinson", TypeError, "quantity", torch.sin, X, num_samples=1, quantity=None),
    Case("hutchinson", TypeError, "chunk_size", torch.sin, X, num_samples=1, chunk_size=1.0),
    Case("hutchinson", TypeError, "generator", torch.sin, X, num_samples=1, generator=0),
    Case("hutchinson", ValueError, "func", torch.sin, X, num_samples=1, quantity="hessian_trace"),
    Case("hutchinson", ValueError, "inputs", torch.sin, (), num_samples=1),
    Case("hutchinson", ValueError, "num_samples", torch.sin, X, num_samples=0),
    Case("hutchinson", ValueError, "quantity", torch.sin, X, num_samples=1, quantity="trace"),
    Case("hutchinson", ValueError, "chunk_size", torch.sin, X, num_samples=1, chunk_size=0),
    Case(
        "hutchinson", TypeError, "inputs", torch.sin, (X,), num_samples=1, quantity="jacobian_trace"
    ),
    Case(
        "hutchinson", ValueError, "func", torch.sum, X, num_samples=1, quantity="jacobian_diagonal"
    ),
    Case("diagonal", TypeError, "func", 1, X),
    Case("diagonal", TypeError, "inputs", torch.sin, (X,)),
    Case("diagonal", TypeError, "of", torch.sin, X, of=None),
    Case("diagonal", TypeError, "elementwise", torch.sin, X, elementwise="yes"),
    Case("diagonal", TypeError, "colors", torch.sin, X, colors=X),
    Case("diagonal", TypeError, "chunk_size", torch.sin, X, chunk_size=1.0),
    Case("diagonal", ValueError, "func", torch.sum, X),
    Case("diagonal", ValueError, "inputs", torch.sin, META),
    Case("diagonal", ValueError, "of", torch.sin, X, of="laplacian"),
    Case("diagonal", ValueError, "elementwise", torch.sin, X, elementwise=True, colors=X.long()),
    Case("diagonal", ValueError, "colors", torch.sin, X, colors=X[:2].long()),
    Case("diagonal", ValueError, "chunk_size", torch.sin, X, chunk_size=0),
    Case("color_jacobian", TypeError, "sparsity", X),
    Case("color_jacobian", TypeError, "strategy", EYE, strategy=1),
    Case("color_jacobian", TypeError, "input_ndim", EYE, input_ndim=1.0),
    Case("color_jacobian", ValueError, "sparsity", EYE.to(device="meta")),
    Case("color_jacobian", ValueError, "strategy", EYE, strategy="loop"),
    Case("color_jacobian", ValueError, "input_ndim", EYE, input_ndim=3),
    Case("sparse_jacobian", TypeError, "func", 3, X, sparsity=EYE),
    Case("sparse_jacobian", TypeError, "inputs", torch.sin, (X, X), sparsity=EYE),
    Case("sparse_jacobian", TypeError, "sparsity", torch.sin, X, sparsity=None),
    Case("sparse_jacobian", TypeError, "strategy", torch.sin, X, sparsity=EYE, strategy=1),
    Case("sparse_jacobian", TypeError, "chunk_size", torch.sin, X, sparsity=EYE, chunk_size=1.0),
    Case("sparse_jacobian", ValueError, "func", lambda t: META, X, sparsity=EYE),
    Case("sparse_jacobian", ValueError, "inputs", torch.sin, META, sparsity=EYE),
    Case("sparse_jacobian", ValueError, "sparsity", torch.sin, X, sparsity=EYE[:2]),
    Case("sparse_jacobian", ValueError, "strategy", torch.sin, X, sparsity=EYE, strategy="loop"),
    Case("sparse_jacobian", ValueError, "chunk_size", torch.sin, X, sparsity=EYE, chunk_size=0),
    Case("sparse_hessian", TypeError, "func", 3, X, sparsity=EYE),
    Case("sparse_hessian", TypeError, "inputs", torch.sum, (X, X), sparsity=EYE),
    Case("sparse_hessian", TypeError, "sparsity", torch.sum, X, sparsity=None),
    Case("sparse_hessian", TypeError, "chunk_size", torch.sum, X, sparsity=EYE, chunk_size=1.0),
    Case("sparse_hessian", ValueError, "func", torch.sin, X, sparsity=EYE),
    Case("sparse_hessian", ValueError, "inputs", torch.sum, META, sparsity=EYE),
    Case("sparse_hessian", ValueError, "sparsity", torch.sum, X, sparsity=EYE[:2]),
    Case("sparse_hessian", ValueError, "chunk_size", torch.sum, X, sparsity=EYE, chunk_size=0),
    Case("jacobian_sparsity", TypeError, "func", None, X),
    Case("jacobian_sparsity", TypeError, "inputs", torch.sin, [X]),
    Case("jacobian_sparsity", TypeError, "num_points", torch.sin, X, num_points=None),
    Case("jacobian_sparsity", TypeError, "chunk_size", torch.sin, X, chunk_size="1"),
    Case("jacobian_sparsity", ValueError, "func", lambda t: META, X),
    Case("jacobian_sparsity", ValueError, "inputs", torch.sin, META),
    Case("jacobian_sparsity", ValueError, "num_points", torch.sin, X, num_points=0),
    Case("jacobian_sparsity", ValueError, "chunk_size", torch.sin, X, chunk_size=-2),
    Case("time_call", TypeError, "fn", 1),
    Case("time_call", TypeError, "min_run_time", print, min_run_time="1"),
    Case("time_call", TypeError, "num_threads", print, num_threads=1.0),
    Case("time_call", ValueError, "min_run_time", print, min_run_time=-1.0),
    Case("time_call", ValueError, "num_threads", print, num_threads=0),
]


def documented(name: str) -> set[tuple[type[Exception], str]]:
    """(error, argument) for every argument named as ``arg`` in a paragraph of ``Raises``."""
    func = getattr(vg, name)
    doc = inspect.getdoc(func) or ""
    section = re.search(r"\nRaises\n-+\n(.*?)\n\n", doc, re.S)
    assert section, name
    arguments = set(inspect.signature(func).parameters)
    pairs = set()
    for error, text in re.findall(r"^(\w+)\n((?:    .*\n?)+)", section.group(1), re.M):
        assert error in ("TypeError", "ValueError"), (name, error)
        named = set(re.findall(r"``(\w+)", text)) & arguments
        pairs |= {(TypeError if error == "TypeError" else ValueError, arg) for arg in named}
    return pairs


@pytest.mark.parametrize("name", FUNCTIONS)
def test_raises_section_names_exactly_the_tested_errors(name: str) -> None:
    assert documented(name) == {(c.error, c.arg) for c in CASES if c.name == name}


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_case_raises_the_error_for_its_argument(case: Case) -> None:
    # The message names the function, then the argument (or one element of it) first.
    match = rf"^vecgrad\.{case.name}: [^`]*`{case.arg}(\[[^\]]+\])?`"
    with pytest.raises(case.error, match=match) as info:
        case.call()
    assert type(info.value) is case.error  # a plain TypeError or ValueError, no private class

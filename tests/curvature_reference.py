"""References for the curvature of a model's loss on a batch, built from torch.func alone.

The Hessian is :func:`torch.func.hessian` over :func:`torch.func.functional_call`; products
with a vector contract the explicit blocks; the Gauss-Newton matrix is ``J^T H_L J`` from
``jacrev`` of the outputs and the Hessian of the loss with respect to them. Each works on a deep
copy of the model, since functional_call replaces the parameters of a reused submodule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

Params = dict[str, Tensor]
Blocks = dict[str, dict[str, Tensor]]


class Reference:
    """The loss of ``model`` on a batch as a function of its trainable parameters."""

    def __init__(
        self, model: nn.Module, loss_fn: Callable[..., Any], inputs: Tensor, targets: Tensor
    ) -> None:
        self.module = copy.deepcopy(model)
        self.loss_fn, self.xs, self.ys = loss_fn, inputs, targets
        named = dict(self.module.named_parameters())
        self.params = {n: p.detach() for n, p in named.items() if p.requires_grad}
        self.fixed = {n: p.detach() for n, p in named.items() if not p.requires_grad}
        self.fixed.update((n, b.detach()) for n, b in self.module.named_buffers())

    def outputs(self, params: Params) -> Tensor:
        out = torch.func.functional_call(self.module, (params, self.fixed), (self.xs,))
        assert isinstance(out, Tensor)
        return out

    def of_outputs(self, out: Tensor) -> Tensor:
        return self.loss_fn(out, self.ys).reshape(())  # type: ignore[no-any-return]

    def loss(self, params: Params) -> Tensor:
        return self.of_outputs(self.outputs(params))

    def hessian(self) -> Blocks:
        return torch.func.hessian(self.loss)(self.params)  # type: ignore[no-any-return]

    def hvp(self, v: Params) -> Params:
        """H v from the explicit blocks."""
        return contract(self.hessian(), v)

    def ggn(self) -> Blocks:
        """G = J^T H_L J in blocks, from the Jacobian of the outputs and the loss's Hessian."""
        out = self.outputs(self.params)
        jac: Params = torch.func.jacrev(self.outputs)(self.params)
        h_out = torch.func.hessian(self.of_outputs)(out)
        k = out.dim()
        return {
            a: {
                b: torch.tensordot(
                    torch.tensordot(jac[a], h_out, dims=(list(range(k)), list(range(k)))),
                    jac[b],
                    dims=k,
                )
                for b in self.params
            }
            for a in self.params
        }

    def ggnvp(self, v: Params) -> Params:
        return contract(self.ggn(), v)


def contract(blocks: Blocks, v: Params) -> Params:
    """The product of a matrix in blocks with a vector keyed like its columns."""
    return {
        a: sum(torch.tensordot(row[b], v[b], dims=v[b].dim()) for b in row)  # type: ignore[misc]
        for a, row in blocks.items()
    }


def matrix(blocks: Blocks) -> Tensor:
    """The blocks as one P x P matrix, rows and columns in the order of the keys."""
    size = {a: int(blocks[a][a].numel() ** 0.5) for a in blocks}  # diagonal blocks: n_a x n_a
    return torch.cat(
        [torch.cat([row[b].reshape(size[a], size[b]) for b in row], 1) for a, row in blocks.items()]
    )


def vector(v: Params) -> Tensor:
    """A vector keyed like the parameters, flattened and concatenated."""
    return torch.cat([t.reshape(-1) for t in v.values()])

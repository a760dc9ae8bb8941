"""Jacobians, vector-Jacobian and Jacobian-vector products in PyTorch."""

from vecgrad.curvature import param_ggnvp, param_hessian, param_hvp
from vecgrad.estimators import diagonal, hutchinson
from vecgrad.hessians import hessian, hvp
from vecgrad.jacobians import batch_jacobian, jacobian
from vecgrad.numerical import numerical_jacobian
from vecgrad.parameters import param_jacobian
from vecgrad.per_sample import loss_jacobian, per_sample_grads
from vecgrad.products import jvp, vjp
from vecgrad.sparse import (
    JacobianColoring,
    color_jacobian,
    jacobian_sparsity,
    sparse_hessian,
    sparse_jacobian,
)
from vecgrad.timing import time_call

__version__ = "0.1.0"

__all__ = [
    "JacobianColoring",
    "batch_jacobian",
    "color_jacobian",
    "diagonal",
    "hessian",
    "hutchinson",
    "hvp",
    "jacobian",
    "jacobian_sparsity",
    "jvp",
    "loss_jacobian",
    "numerical_jacobian",
    "param_ggnvp",
    "param_hessian",
    "param_hvp",
    "param_jacobian",
    "per_sample_grads",
    "sparse_hessian",
    "sparse_jacobian",
    "time_call",
    "vjp",
]

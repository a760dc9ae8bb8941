r"""
Differentiating through a solver
================================

The root :math:`x^\star(b)` of :math:`F(x, b) = 0` is a function of :math:`b`, and its derivative
needs nothing from the solver that found it: the implicit function theorem gives it from
:math:`F`'s Jacobians at the root and one linear solve. This example computes it with
:func:`vecgrad.jvp`, :func:`vecgrad.vjp` and :func:`vecgrad.jacobian`, compares it with
differentiating through every Newton step and with finite differences, and counts what each
costs.
"""

from itertools import pairwise

import matplotlib.pyplot as plt
import torch
from torch.testing import assert_close

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# The system and its solver
# -------------------------
# The system of the :ref:`Newton example <sphx_glr_gallery_05_applications_plot_01_newton.py>`,
# with the right-hand side :math:`b` made an argument:
#
# .. math::
#
#    F(x, b) = A x + x^3 - b = 0, \qquad A = \operatorname{tridiag}(-1, 2, -1) \in
#    \mathbb{R}^{6 \times 6}.
#
# For every :math:`b` there is exactly one root: :math:`F(\cdot, b)` is the gradient of
# :math:`\tfrac12 x^\top A x + \tfrac14 \sum_i x_i^4 - b^\top x`, which is strictly convex
# (:math:`A` is positive definite) and grows without bound, so it has exactly one minimiser,
# where the gradient vanishes. The solver takes a fixed number of Newton steps from
# :math:`x_0 = 0`, each with the Jacobian from :func:`vecgrad.jacobian`; a fixed count, not a
# tolerance, makes its output a smooth function of :math:`b`. Everything is float64.

n = 6
dtype = torch.float64
ones = torch.ones(n - 1, dtype=dtype)
A = 2 * torch.eye(n, dtype=dtype) - torch.diag(ones, 1) - torch.diag(ones, -1)
x_true = torch.linspace(-1.5, 2.0, n, dtype=dtype)
b = A @ x_true + x_true**3  # so that the root is x_true


def F(x, b):
    return A @ x + x**3 - b


def newton(b, steps):
    x = torch.zeros(n, dtype=dtype)
    for _ in range(steps):
        J = vg.jacobian(lambda x: F(x, b), x)
        x = x - torch.linalg.solve(J, F(x, b))
    return x


x_star = newton(b, 12)
print(f"after 12 steps: |x - x_true| = {(x_star - x_true).norm():.1e}")
assert_close(x_star, x_true, rtol=0, atol=1e-14)

# %%
# The implicit function theorem
# -----------------------------
# Differentiate :math:`F(x^\star(b), b) = 0` with respect to :math:`b`:
# :math:`\partial_x F\, \frac{dx^\star}{db} + \partial_b F = 0`, so
#
# .. math::
#
#    \frac{dx^\star}{db} = -(\partial_x F)^{-1}\, \partial_b F,
#
# both Jacobians taken at the root. :func:`vecgrad.jacobian` of :math:`F` with respect to the
# tuple :math:`(x, b)` gives both blocks, and one :func:`torch.linalg.solve` with six right-hand
# sides gives the whole :math:`6 \times 6` derivative. Here :math:`\partial_b F = -I`, so the
# derivative is :math:`J_F(x^\star)^{-1}` with :math:`J_F = A + 3\operatorname{diag}(x^{\star 2})`,
# the independent check.


def ift_jacobian(x_root, b):
    F_x, F_b = vg.jacobian(F, (x_root, b))
    return -torch.linalg.solve(F_x, F_b)


D_ift = ift_jacobian(x_star, b)
D_formula = torch.linalg.inv(A + torch.diag(3 * x_true**2))
print(f"max |IFT - formula| = {(D_ift - D_formula).abs().max():.1e}")
assert_close(D_ift, D_formula)

# %%
# One direction or one gradient: products, not Jacobians
# ------------------------------------------------------
# A forward-mode question, how :math:`x^\star` moves when :math:`b` moves along :math:`u`, needs
# :math:`\partial_b F\, u`: one :func:`vecgrad.jvp`, then one solve with :math:`\partial_x F`.
# A reverse-mode question, the gradient of a scalar :math:`L(x^\star)`, needs the adjoint
# :math:`\mu` from :math:`(\partial_x F)^\top \mu = \nabla_x L` and then
# :math:`\nabla_b L = -(\partial_b F)^\top \mu`: one solve and one :func:`vecgrad.vjp`. Neither
# forms :math:`\partial_b F`, which matters when :math:`b` is large; :math:`\partial_x F` is
# only ever used in a solve, so a matrix-free solver could use :func:`vecgrad.jvp` products for
# the first solve and :func:`vecgrad.vjp` products for the transposed one.
# We take :math:`L(x) = \tfrac12 \lVert x \rVert^2`.

F_x = vg.jacobian(lambda x: F(x, b), x_star)
u = torch.randn(n, dtype=dtype)
_, F_b_u = vg.jvp(lambda b: F(x_star, b), b, u)
direction = -torch.linalg.solve(F_x, F_b_u)
mu = torch.linalg.solve(F_x.T, x_star)  # grad of L at x* is x*
_, mu_F_b = vg.vjp(lambda b: F(x_star, b), b, mu)
gradient = -mu_F_b
print("dx*/db u =", [f"{value:+.4f}" for value in direction.tolist()])
print("grad_b L =", [f"{value:+.4f}" for value in gradient.tolist()])
assert_close(direction, D_formula @ u)
assert_close(gradient, D_formula.T @ x_true)

# %%
# Unrolled differentiation and finite differences
# -----------------------------------------------
# The other way is to differentiate the solver itself: the results of :func:`vecgrad.jacobian`
# inside each step carry their graph, so the :math:`k` Newton steps form one differentiable
# function of :math:`b`, and an outer :func:`vecgrad.jacobian` differentiates through all of
# them. :func:`vecgrad.numerical_jacobian` gives the third estimate, from twelve solves at
# shifted :math:`b`. After 12 steps the unrolled derivative agrees with the IFT to rounding
# error, and the finite differences to better than :math:`10^{-9}`: their step,
# :math:`h_j \approx 6 \times 10^{-6} \max(1, |b_j|)`, leaves a truncation error of order
# :math:`h^2` and a rounding error of order :math:`10^{-16} / h`.

D_unrolled = vg.jacobian(lambda b: newton(b, 12), b)
D_numerical = vg.numerical_jacobian(lambda b: newton(b, 12), b)
print(f"max |unrolled - IFT|  = {(D_unrolled - D_ift).abs().max():.1e}")
print(f"max |numerical - IFT| = {(D_numerical - D_ift).abs().max():.1e}")
assert_close(D_unrolled, D_ift, rtol=0, atol=1e-14)
assert_close(D_numerical, D_ift, rtol=0, atol=1e-9)

# %%
# Before the solver has converged the two differ. The IFT formula, evaluated at the iterate
# :math:`x_k` instead of the root, is only as good as :math:`x_k`; the unrolled derivative is
# the exact derivative of :math:`x_k(b)`, which is not :math:`dx^\star/db` either. We record
# both errors for :math:`k = 1, \dots, 12`, relative to the IFT Jacobian at the root. Each IFT
# Jacobian at :math:`x_k` is checked against :math:`(A + 3 \operatorname{diag}(x_k^2))^{-1}`, and
# the unrolled derivative after 3 steps against finite differences of the 3-step solver.

ks = list(range(1, 13))
records = []
for k in ks:
    x_k = newton(b, k)
    unrolled_k = vg.jacobian(lambda b, k=k: newton(b, k), b)
    ift_k = ift_jacobian(x_k, b)
    assert_close(ift_k, torch.linalg.inv(A + torch.diag(3 * x_k**2)))
    records.append(
        (
            (x_k - x_star).norm().item(),
            (unrolled_k - D_ift).norm().item() / D_ift.norm().item(),
            (ift_k - D_ift).norm().item() / D_ift.norm().item(),
        )
    )
    if k == 3:
        fd_3 = vg.numerical_jacobian(lambda b: newton(b, 3), b)
        assert_close(unrolled_k, fd_3, rtol=0, atol=1e-8)
iterate_error, unrolled_error, ift_error = (list(r) for r in zip(*records, strict=True))
for k, e_x, e_u, e_i in zip(ks, iterate_error, unrolled_error, ift_error, strict=True):
    print(f"k = {k:2d}: |x_k - x*| {e_x:.1e}, rel. error unrolled {e_u:.1e}, IFT at x_k {e_i:.1e}")

# %%
# What the table shows, and the checks: far from the root both derivatives are wrong by tens of
# per cent or more; once Newton's method is close, both errors are squared at every step, like
# the iterate's (from :math:`k = 7` to :math:`10`, each new error is below twice the square of
# the previous one); from :math:`k = 11` all three are at rounding level. At every :math:`k` before
# that, the IFT at :math:`x_k` is the more accurate of the two: unrolling carries the errors of
# all the earlier Jacobians along.

assert min(unrolled_error[:6]) > 0.1
assert min(ift_error[:6]) > 0.1
for errors in (iterate_error, unrolled_error, ift_error):
    assert all(errors[k] < 2 * errors[k - 1] ** 2 for k in range(7, 10))
    assert max(errors[10:]) < 1e-14
assert all(i < u for i, u in zip(ift_error[:10], unrolled_error[:10], strict=True))

# %%
# What each costs
# ---------------
# The unrolled derivative records every step: its graph grows by the same number of autograd
# nodes per Newton step, and the backward pass walks all of them. The implicit derivative only
# needs the root, so the solver need not be recorded at all. To use it inside a larger model,
# solve with a detached copy of :math:`b`, then take one differentiable step from that root with
# :math:`\partial_x F` held constant,
# :math:`\tilde x = x^\star - (\partial_x F)^{-1} F(x^\star, b)`: since :math:`F(x^\star, b) = 0`
# its value is the root, and its derivative with respect to :math:`b` is
# :math:`-(\partial_x F)^{-1} \partial_b F`, the implicit one, at whatever point the solver
# stopped: none of the steps that led there is recorded.


def graph_size(tensor):
    """Number of autograd nodes that backward from ``tensor`` would visit."""
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(next_node for next_node, _ in node.next_functions)
    return len(seen)


def implicit_layer(b, steps):
    constant = b.detach()  # the root and F_x are computed from a copy that no mode differentiates
    root = newton(constant, steps)
    F_x = vg.jacobian(lambda x: F(x, constant), root)
    return root - torch.linalg.solve(F_x, F(root, b))


# %%
# With :math:`b` requiring grad, the unrolled solver's graph has the same number of nodes more
# for every extra step (the first step, from a constant :math:`x_0`, records fewer), while the
# implicit layer's graph has the same size for every :math:`k`, smaller than what one Newton
# step adds. Its derivative from
# :func:`vecgrad.jacobian` is the IFT formula at the solver's last iterate: after 3 steps, far
# from the root, that is ``ift_jacobian(x_3, b)``, in reverse and in forward mode alike; after 12,
# the derivative at the root. The copy is made with ``detach()``, not under
# :class:`torch.no_grad`, because forward mode ignores ``no_grad``
# (:ref:`pitfalls <no-grad-forward-mode>`).

b_leaf = b.clone().requires_grad_()
unrolled_nodes = [graph_size(newton(b_leaf, k)) for k in ks]
implicit_nodes = [graph_size(implicit_layer(b_leaf, k)) for k in ks]
per_step = unrolled_nodes[2] - unrolled_nodes[1]
print(f"unrolled graph: {unrolled_nodes} nodes, {per_step} more per step")
print(f"implicit layer: {implicit_nodes} nodes")
assert per_step > 0
assert all(m - k == per_step for k, m in pairwise(unrolled_nodes[1:]))
assert len(set(implicit_nodes)) == 1
assert implicit_nodes[0] < per_step
for strategy in ("reverse", "forward"):
    layer_3 = vg.jacobian(lambda b: implicit_layer(b, 3), b, strategy=strategy)
    assert_close(layer_3, ift_jacobian(newton(b, 3), b))
assert_close(vg.jacobian(lambda b: implicit_layer(b, 12), b), D_ift, rtol=0, atol=1e-12)

# %%
# The left panel: both derivatives converge with the iterate, the implicit one evaluated at
# :math:`x_k`. The right panel: the autograd nodes that a backward pass from each would visit,
# against the number of steps. Counts, unlike times, are the same on every machine.

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
floor = 1e-17  # zeros drawn at the bottom of the logarithmic axis
left.semilogy(ks, [max(e, floor) for e in iterate_error], "k.:", label=r"$\|x_k - x^\star\|$")
left.semilogy(ks, [max(e, floor) for e in unrolled_error], "o-", label="unrolled derivative")
left.semilogy(ks, [max(e, floor) for e in ift_error], "s--", label=r"IFT at $x_k$")
left.legend()
_ = left.set(
    title="Error after k Newton steps",
    xlabel="Newton steps k",
    ylabel="error (relative for derivatives)",
)
right.plot(ks, unrolled_nodes, "o-", label="unrolled solver")
right.plot(ks, implicit_nodes, "s--", label="implicit layer")
right.legend()
_ = right.set(
    title="Graph recorded for the derivative",
    xlabel="Newton steps k",
    ylabel="autograd nodes",
    ylim=(0, None),
)
fig.tight_layout()

"""
Vector outputs and ``grad_outputs``
===================================

Reverse mode never forms a Jacobian: given a vector :math:`v` shaped like the output, it returns
:math:`v^\\top J`, a weighted sum of the Jacobian's rows. ``grad_outputs`` (the ``gradient``
argument of ``backward``) is that :math:`v`. This example shows what it must look like, what it
computes, and why a vector of ones gives derivatives only for elementwise functions.
"""

# sphinx_gallery_thumbnail_number = 1

import math

import matplotlib.pyplot as plt
import torch
from torch.testing import assert_close

import vecgrad as vg

_ = torch.manual_seed(0)


def error_message(kind, fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``; return the message of the ``kind`` error it raises."""
    try:
        fn(*args, **kwargs)
    except kind as err:
        return str(err)
    return "no error"


# %%
# A function from :math:`\mathbb{R}^2` to :math:`\mathbb{R}^3`
# -------------------------------------------------------------
# Each row of the Jacobian holds the partial derivatives of one output:
#
# .. math::
#
#    y = \begin{pmatrix} x_0^2 + x_1 \\ x_0 x_1 \\ \sin x_0 + \cos x_1 \end{pmatrix},
#    \qquad
#    J = \frac{\partial y}{\partial x} =
#    \begin{pmatrix} 2x_0 & 1 \\ x_1 & x_0 \\ \cos x_0 & -\sin x_1 \end{pmatrix}.
#
# At :math:`x = (2, 1)` the first row is :math:`(4, 1)` and the third is
# :math:`(\cos 2, -\sin 1) \approx (-0.4161, -0.8415)`.


def f(x):
    return torch.stack([x[0] ** 2 + x[1], x[0] * x[1], torch.sin(x[0]) + torch.cos(x[1])])


def jacobian_by_hand(x):
    return torch.stack(
        [
            torch.stack([2 * x[0], torch.ones_like(x[0])]),
            torch.stack([x[1], x[0]]),
            torch.stack([torch.cos(x[0]), -torch.sin(x[1])]),
        ]
    )


x = torch.tensor([2.0, 1.0], dtype=torch.float64, requires_grad=True)
y = f(x)
J = jacobian_by_hand(x.detach())
print("y =", y.detach())
print("J =\n", J)
y_expected = torch.tensor([5.0, 2.0, math.sin(2.0) + math.cos(1.0)], dtype=torch.float64)
assert_close(y.detach(), y_expected)
assert_close(J[0], torch.tensor([4.0, 1.0], dtype=torch.float64))
assert_close(J[2], torch.tensor([-0.4161, -0.8415], dtype=torch.float64), atol=1e-4, rtol=0)

# %%
# No implicit gradient for a vector output
# ----------------------------------------
# ``grad_outputs`` defaults to ``None``, and ``None`` is accepted only for one-element outputs
# (where it means 1). It does *not* default to a vector of ones: for ``y`` with three elements,
# both ``backward()`` and :func:`torch.autograd.grad` refuse to guess.

for name, call in [
    ("y.backward()", lambda: y.backward(retain_graph=True)),
    ("torch.autograd.grad(y, x)", lambda: torch.autograd.grad(y, x, retain_graph=True)),
]:
    message = error_message(RuntimeError, call)
    print(f"{name}: RuntimeError: {message}")
    assert "grad can be implicitly created only for scalar outputs" in message
assert x.grad is None

# %%
# A vector-Jacobian product is a weighted sum of rows
# ---------------------------------------------------
# With ``grad_outputs=v`` autograd returns
# :math:`(v^\top J)_j = \sum_i v_i\, \partial y_i / \partial x_j`: row :math:`i` of :math:`J`
# weighted by :math:`v_i`, summed. One backward pass costs a small multiple of the forward pass,
# whatever :math:`v` is, and :math:`J` itself is never built.

v = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
(vjp,) = torch.autograd.grad(y, x, grad_outputs=v, retain_graph=True)
print("autograd v^T J:", vjp)
print("by hand  v^T J:", v @ J)
assert_close(vjp, v @ J)
assert_close(vjp, 0.5 * J[0] - 1.0 * J[1] + 2.0 * J[2])

# %%
# One-hot weights pick out one row. The first row at :math:`x = (2, 1)` is
# :math:`(2 x_0, 1) = (4, 1)`. No ``create_graph=True`` is needed for this: that flag records
# the backward pass itself so that it can be differentiated again (second derivatives), and it
# costs memory. Here ``retain_graph=True`` is enough, because we walk the graph once per row.

rows = []
for i in range(3):
    e_i = torch.zeros(3, dtype=torch.float64)
    e_i[i] = 1.0
    (row,) = torch.autograd.grad(y, x, grad_outputs=e_i, retain_graph=True)
    print(f"e_{i}^T J =", row)
    assert_close(row, J[i])
    rows.append(row)
assert_close(rows[0], torch.tensor([4.0, 1.0], dtype=torch.float64))  # (2 * 2, 1)

# %%
# ``v`` is the gradient of whatever comes next
# --------------------------------------------
# If a scalar :math:`L` is computed from :math:`y`, the chain rule says
# :math:`\nabla_x L = J^\top \nabla_y L`, with gradients as column vectors (the convention of
# every page here, stated in the :ref:`glossary <gradient-convention>`). So backpropagating
# :math:`L` is the same as a VJP with :math:`v = \nabla_y L`, read as a column. Take
# :math:`L = y_0^2 + y_1^2`, so :math:`v = (2y_0, 2y_1, 0) = (10, 4, 0)` at :math:`x = (2, 1)`
# and :math:`\nabla_x L = 10\,(4, 1) + 4\,(1, 2) = (44, 18)`.

(grad_L,) = torch.autograd.grad(y[0] ** 2 + y[1] ** 2, x, retain_graph=True)
v_L = torch.stack([2 * y[0], 2 * y[1], torch.zeros_like(y[0])]).detach()
(vjp_L,) = torch.autograd.grad(y, x, grad_outputs=v_L, retain_graph=True)
print("gradient of L:       ", grad_L)
print("VJP with v = dL/dy:  ", vjp_L)
assert_close(grad_L, vjp_L)
assert_close(grad_L, torch.tensor([44.0, 18.0], dtype=torch.float64))  # 10*(4,1) + 4*(1,2)

# %%
# ``grad_outputs`` must have exactly the output's shape
# -----------------------------------------------------
# No broadcasting and no reshaping happen: a 0-dim tensor, a shape-``(1,)`` tensor, a tensor of
# the wrong length, and even ``(1, 3)`` (same number of elements) are all refused with a shape
# mismatch, by :func:`torch.autograd.grad` and by ``backward(gradient)`` alike. Build ``v`` with
# the output's shape, e.g. from ``torch.ones_like(y)`` or ``torch.zeros_like(y)``.

for bad in [torch.tensor(1.0), torch.ones(1), torch.ones(2), torch.ones(1, 3)]:
    bad = bad.to(torch.float64)
    message = error_message(
        RuntimeError, torch.autograd.grad, y, x, grad_outputs=bad, retain_graph=True
    )
    print(f"shape {tuple(bad.shape)}: {message}")
    assert "Mismatch in shape" in message

message = error_message(
    RuntimeError, y.backward, torch.ones(1, 3, dtype=torch.float64), retain_graph=True
)
print("y.backward(ones(1, 3)):", message)
assert "Mismatch in shape" in message
assert x.grad is None

# %%
# Mean and sum of a vector of losses
# ----------------------------------
# A batch of per-sample losses :math:`\ell \in \mathbb{R}^N` is a vector output too. Since
# :math:`\partial\, \mathrm{mean}(\ell) / \partial \ell = (1/N, \dots, 1/N)`,
# ``losses.backward(torch.full((N,), 1 / N))`` is exactly ``losses.mean().backward()``, and a
# vector of ones is ``losses.sum().backward()``.

N = 5
w = torch.randn(3, dtype=torch.float64, requires_grad=True)
X = torch.randn(N, 3, dtype=torch.float64)
t = torch.randn(N, dtype=torch.float64)


def per_sample_losses(w):
    return (X @ w - t) ** 2


mean_weights = torch.full((N,), 1 / N, dtype=torch.float64)
ones = torch.ones(N, dtype=torch.float64)
grads = {}
for name, backward in [
    ("mean().backward()", lambda: per_sample_losses(w).mean().backward()),
    ("backward(1/N)", lambda: per_sample_losses(w).backward(mean_weights)),
    ("sum().backward()", lambda: per_sample_losses(w).sum().backward()),
    ("backward(ones)", lambda: per_sample_losses(w).backward(ones)),
]:
    w.grad = None  # gradients accumulate: reset between the four runs
    backward()
    grads[name] = w.grad.clone()
    print(f"{name:>18}: {grads[name]}")

# the gradient of sum_n (X_n . w - t_n)^2 is 2 X^T (X w - t)
by_hand = 2 * X.T @ (X @ w.detach() - t)
assert_close(grads["backward(1/N)"], grads["mean().backward()"])
assert_close(grads["backward(ones)"], grads["sum().backward()"])
assert_close(grads["sum().backward()"], by_hand)
assert_close(grads["mean().backward()"], by_hand / N)

# %%
# A vector of ones gives column sums
# ----------------------------------
# With :math:`v = \mathbf{1}`, the VJP is :math:`\mathbf{1}^\top J`: the sum of each *column*
# of :math:`J`, which is the gradient of :math:`\sum_i y_i`. A common belief is that ones
# "preserve the exact gradient" and give each output's derivative. That is true only when
# :math:`J` is diagonal, i.e. when output :math:`i` depends on input :math:`i` alone. For an
# elementwise function such as :math:`\tanh` the column sums *are* the derivatives
# :math:`1 - \tanh^2 x_i`.

n = 6
z = torch.linspace(-2.0, 2.0, n, dtype=torch.float64, requires_grad=True)
ones_n = torch.ones(n, dtype=torch.float64)

(ones_tanh,) = torch.autograd.grad(torch.tanh(z), z, grad_outputs=ones_n)
J_tanh = torch.diag(1 - torch.tanh(z.detach()) ** 2)
print("tanh, ones-VJP:", ones_tanh)
print("tanh, diag(J): ", torch.diagonal(J_tanh))
assert_close(ones_tanh, J_tanh.sum(dim=0))
assert_close(ones_tanh, torch.diagonal(J_tanh))

# %%
# Softmax couples every output to every input. Its Jacobian is
# :math:`J = \operatorname{diag}(s) - s s^\top` with :math:`s = \operatorname{softmax}(z)`, so
# the diagonal is :math:`s_i (1 - s_i)` but each column sums to
# :math:`s_j - s_j \sum_i s_i = 0`: the outputs always add up to 1, whatever :math:`z` is. A
# vector of ones therefore returns zeros, not the derivatives.

s = torch.softmax(z, dim=0)
(ones_softmax,) = torch.autograd.grad(s, z, grad_outputs=ones_n)
s0 = s.detach()
J_softmax = torch.diag(s0) - torch.outer(s0, s0)
print("softmax, ones-VJP:", ones_softmax)
print("softmax, diag(J): ", torch.diagonal(J_softmax))
assert_close(ones_softmax, J_softmax.sum(dim=0))
assert_close(ones_softmax, torch.zeros_like(ones_n))
assert_close(torch.diagonal(J_softmax), s0 * (1 - s0))
assert (torch.diagonal(J_softmax) > 0.01).all()  # the derivatives are far from zero

# %%
# A cumulative sum is coupled too, in one direction: :math:`y_i = \sum_{k \le i} z_k`, so
# :math:`J` is lower triangular with ones, every diagonal entry is 1, and column :math:`j` sums
# to :math:`n - j`.

(ones_cumsum,) = torch.autograd.grad(torch.cumsum(z, dim=0), z, grad_outputs=ones_n)
J_cumsum = torch.tril(torch.ones(n, n, dtype=torch.float64))
print("cumsum, ones-VJP:", ones_cumsum)
print("cumsum, diag(J): ", torch.diagonal(J_cumsum))
assert_close(ones_cumsum, J_cumsum.sum(dim=0))
assert_close(ones_cumsum, torch.arange(n, 0, -1, dtype=torch.float64))  # n - j
assert_close(torch.diagonal(J_cumsum), ones_n)

# %%
# The picture: for :math:`\tanh` the two bars agree; for softmax the ones-VJP is zero
# everywhere while every diagonal entry of the Jacobian is positive.

fig, axs = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
pos = torch.arange(n).numpy()
for ax, title, ones_vjp, jac in [
    (axs[0], r"elementwise: $\tanh(z)$", ones_tanh, J_tanh),
    (axs[1], r"coupled: softmax$(z)$", ones_softmax, J_softmax),
]:
    diag = torch.diagonal(jac).numpy()
    ax.bar(pos - 0.2, diag, width=0.4, label=r"diagonal $\partial y_i/\partial z_i$")
    ax.bar(pos + 0.2, ones_vjp.numpy(), width=0.4, label=r"ones-VJP $\mathbf{1}^\top J$")
    ax.axhline(0.0, color="0.5", linewidth=0.5)
    _ = ax.set(title=title, xlabel="index i")
axs[1].legend(loc="upper left")
_ = axs[0].set(ylabel="value")
fig.tight_layout()

# %%
# The same product with :func:`vecgrad.vjp`
# -----------------------------------------
# :func:`vecgrad.vjp` takes the function, the point and :math:`v`, and returns the output and
# :math:`v^\top J`. It fills nothing in: ``v`` is required, ``None`` is refused, and ``v`` must
# have exactly the output's shape. A wrong shape gets a ``ValueError`` that says which shape was
# expected.

out, vjp_vg = vg.vjp(f, x.detach(), v)
print("vg.vjp:", vjp_vg)
assert_close(out, y.detach())
assert_close(vjp_vg, v @ J)

for bad in [torch.ones(2, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)]:
    message = error_message(ValueError, vg.vjp, f, x.detach(), bad)
    print(f"v of shape {tuple(bad.shape)}: ValueError: {message}")
    assert "vecgrad.vjp" in message
    assert "(3,)" in message  # the expected shape, that of f(x)

for name, call in [
    ("no v", lambda: vg.vjp(f, x.detach())),
    ("v=None", lambda: vg.vjp(f, x.detach(), None)),
]:
    message = error_message(TypeError, call)
    print(f"{name}: TypeError: {message}")
    assert "'v'" in message or "`v`" in message  # names the argument

plt.show()

"""
Reconstructing a full Jacobian
==============================

A backward pass gives one vector-Jacobian product, so the full Jacobian takes one pass per
output row; a forward-mode pass gives one column. This example builds the same :math:`4 \\times 3`
Jacobian row by row, all rows at once, and column by column, checks each against the matrix
derived by hand, and measures what vectorising the rows buys.
"""

# sphinx_gallery_thumbnail_number = 1

import warnings

import matplotlib.pyplot as plt
import torch
from torch.testing import assert_close

import vecgrad as vg

_ = torch.manual_seed(0)


# %%
# A function from :math:`\mathbb{R}^3` to :math:`\mathbb{R}^4` and its Jacobian by hand
# -------------------------------------------------------------------------------------
#
# .. math::
#
#    f(x) = \begin{pmatrix} x_0 x_1 + x_2^2 \\ x_0^3 - x_1 x_2 \\
#           e^{x_0} + \sin x_1 - x_2 \\ x_0 + x_1 + x_2 \end{pmatrix},
#    \qquad
#    J = \begin{pmatrix} x_1 & x_0 & 2 x_2 \\ 3 x_0^2 & -x_2 & -x_1 \\
#        e^{x_0} & \cos x_1 & -1 \\ 1 & 1 & 1 \end{pmatrix}.
#
# At :math:`x = (1, 2, 3)` the third row is :math:`(e, \cos 2, -1) \approx (2.7183, -0.4161, -1)`:
# the derivative of :math:`\sin x_1` is :math:`\cos x_1`, not :math:`\sin x_1`. We work in float64
# so that every method agrees with the formula to rounding error.


def f(x):
    return torch.stack(
        [
            x[0] * x[1] + x[2] ** 2,
            x[0] ** 3 - x[1] * x[2],
            torch.exp(x[0]) + torch.sin(x[1]) - x[2],
            x[0] + x[1] + x[2],
        ]
    )


def jacobian_by_hand(x):
    x0, x1, x2 = x
    one = torch.ones_like(x0)
    return torch.stack(
        [
            torch.stack([x1, x0, 2 * x2]),
            torch.stack([3 * x0**2, -x2, -x1]),
            torch.stack([torch.exp(x0), torch.cos(x1), -one]),
            torch.stack([one, one, one]),
        ]
    )


x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
J_true = jacobian_by_hand(x)
print("J by hand =\n", J_true)
assert_close(J_true[2, 1], torch.cos(torch.tensor(2.0, dtype=torch.float64)))

# %%
# 1. One backward pass per row
# ----------------------------
# Run the forward pass once, then ask for :math:`e_i^\top J` with a one-hot ``grad_outputs``
# for each output :math:`i`. Every pass but the last walks a graph that must still be there, so
# ``retain_graph=True``. ``create_graph=True`` is *not* needed: it records the backward pass
# so its result can be differentiated again (Hessians), and it keeps all of that in memory.
# Without it the rows come back as plain tensors with no graph attached.


def jacobian_loop(func, x):
    x = x.detach().requires_grad_()
    y = func(x)
    rows = []
    for i in range(y.numel()):
        e_i = torch.zeros_like(y)
        e_i[i] = 1.0
        rows.append(torch.autograd.grad(y, x, grad_outputs=e_i, retain_graph=True)[0])
    return torch.stack(rows)


J_loop = jacobian_loop(f, x)
assert not J_loop.requires_grad  # no create_graph: plain rows, no graph attached
print("one-hot rows =\n", J_loop)
assert_close(J_loop, J_true)

# %%
# The functional helper :func:`torch.autograd.functional.vjp` returns a *pair*
# ``(output, vjp)``, not the product alone, and it re-runs ``f`` on every call. Used in the same
# loop it evaluates the function once per row, where the loop above evaluated it once in total.

calls = 0


def counted_f(x):
    global calls
    calls += 1
    return f(x)


rows = []
for i in range(4):
    e_i = torch.zeros(4, dtype=torch.float64)
    e_i[i] = 1.0
    out, row = torch.autograd.functional.vjp(counted_f, x, e_i)
    rows.append(row)
print("forward evaluations for 4 rows:", calls)
assert calls == 4
assert_close(out, f(x))
assert_close(torch.stack(rows), J_true)

# %%
# 2. All rows in one vectorised call
# ----------------------------------
# The rows are independent, so they can be computed together. :func:`torch.func.vjp` returns the
# output and a function ``v -> v^T J``; :func:`torch.func.vmap` maps it over the rows of the
# identity matrix in one batched backward pass. :func:`torch.func.jacrev` packages exactly this,
# and ``torch.autograd.grad(..., is_grads_batched=True)`` does it for an existing graph.

out, vjp_fn = torch.func.vjp(f, x)
eye_out = torch.eye(out.numel(), dtype=torch.float64)
(J_vmap,) = torch.func.vmap(vjp_fn)(eye_out)
J_jacrev = torch.func.jacrev(f)(x)
xr = x.clone().requires_grad_()
(J_batched,) = torch.autograd.grad(f(xr), xr, grad_outputs=eye_out, is_grads_batched=True)
print("vmap(vjp) =\n", J_vmap)
assert_close(J_vmap, J_true)
assert_close(J_jacrev, J_true)
assert_close(J_batched, J_true)

# %%
# 3. Columns by forward mode
# --------------------------
# Forward mode pushes a tangent :math:`u` through the function and returns :math:`J u`: with
# :math:`u = e_j` that is column :math:`j`. A full Jacobian then costs one pass per *input*
# (3 here) instead of one per output (4). :func:`torch.func.jacfwd` vectorises these
# :func:`torch.func.jvp` calls. (The first forward-mode call in a process makes torch 2.13 load
# its forward-mode rules through the deprecated ``torch.jit.script``; the DeprecationWarning
# that comes from inside torch is harmless, and we silence exactly that message.)

warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)


def column(u):
    return torch.func.jvp(f, (x,), (u,))[1]


eye_in = torch.eye(x.numel(), dtype=torch.float64)
J_columns = torch.func.vmap(column, out_dims=1)(eye_in)
J_jacfwd = torch.func.jacfwd(f)(x)
print("jacfwd =\n", J_jacfwd)
assert_close(J_columns, J_true)
assert_close(J_jacfwd, J_true)

# %%
# 4. :func:`vecgrad.jacobian` with each strategy
# ----------------------------------------------
# :func:`vecgrad.jacobian` offers all three: ``"loop"`` (one :func:`torch.autograd.grad` per
# output element), ``"reverse"`` (vectorised rows), ``"forward"`` (vectorised columns), and
# ``"auto"``, which picks reverse when the output has no more elements than the input and
# forward otherwise. A central-difference Jacobian from :func:`vecgrad.numerical_jacobian`
# is a reference that uses no autograd at all.

J_numerical = vg.numerical_jacobian(f, x)
assert_close(J_numerical, J_true, atol=1e-6, rtol=1e-6)
for strategy in ["loop", "reverse", "forward", "auto"]:
    J_vg = vg.jacobian(f, x, strategy=strategy)
    print(f"strategy={strategy!r:>10}: max |J - J by hand| = {(J_vg - J_true).abs().max():.1e}")
    assert J_vg.shape == (4, 3)
    assert_close(J_vg, J_true)

# %%
# A larger Jacobian: softmax
# --------------------------
# For :math:`s = \operatorname{softmax}(z)`, :math:`\partial s_i / \partial z_j = s_i
# (\delta_{ij} - s_j)`, i.e. :math:`J = \operatorname{diag}(s) - s s^\top`: positive on the
# diagonal, negative elsewhere, symmetric, and every row and column sums to zero.

z = torch.linspace(-1.0, 2.0, 10, dtype=torch.float64)
s = torch.softmax(z, dim=0)
J_softmax = torch.diag(s) - torch.outer(s, s)
J_softmax_vg = vg.jacobian(lambda z: torch.softmax(z, dim=0), z)
print("max |vg.jacobian - (diag(s) - s s^T)|:", (J_softmax_vg - J_softmax).abs().max().item())
assert_close(J_softmax_vg, J_softmax)
assert_close(J_softmax_vg, J_softmax_vg.T)
assert_close(J_softmax_vg.sum(dim=1), torch.zeros_like(z))
assert_close(torch.diagonal(J_softmax_vg), s * (1 - s))

fig, ax = plt.subplots()
lim = J_softmax_vg.abs().max().item()
im = ax.imshow(J_softmax_vg.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
fig.colorbar(im, ax=ax, label=r"$\partial s_i / \partial z_j$")
_ = ax.set(title="Jacobian of softmax", xlabel="input j", ylabel="output i")

# %%
# What vectorising the rows buys
# ------------------------------
# For :math:`f(x) = \tanh(Ax)` with :math:`A \in \mathbb{R}^{m \times 32}` the Jacobian is
# :math:`\operatorname{diag}(1 - \tanh^2(Ax))\,A`. We compare the one-hot loop with
# :func:`vecgrad.jacobian` with ``strategy="reverse"`` as the number of outputs :math:`m` grows.
# The loop runs one backward pass per row and pays Python and autograd overhead each time; the
# vectorised call runs all :math:`m` rows as one batched pass. A hook on the node that produced
# the output of ``g`` counts the backward passes through it, and those counts are asserted. The
# times are medians from :func:`vecgrad.time_call` on one thread, measured on the machine that
# built this page.


passes = {"backward": 0}


def count_backward_passes(y):
    """Count, from now on, each backward pass through the node that produced ``y``."""
    if y.requires_grad:
        y.grad_fn.register_hook(lambda *_: passes.update(backward=passes["backward"] + 1))
    return y


def passes_of(fn):
    passes["backward"] = 0
    fn()
    return passes["backward"]


# %%
# Each size is also a correctness check: both methods must reproduce the formula.

n = 32
sizes = [4, 16, 64, 256]
t_loop, t_vec = [], []
for m in sizes:
    A = torch.randn(m, n, dtype=torch.float64) / n**0.5
    x_m = torch.randn(n, dtype=torch.float64)

    def g(x, A=A):
        return count_backward_passes(torch.tanh(A @ x))

    J_formula = (1 - torch.tanh(A @ x_m) ** 2)[:, None] * A
    assert_close(jacobian_loop(g, x_m), J_formula)
    assert_close(vg.jacobian(g, x_m, strategy="reverse"), J_formula)
    loop, vec = (
        lambda g=g, x_m=x_m: jacobian_loop(g, x_m),
        lambda g=g, x_m=x_m: vg.jacobian(g, x_m, strategy="reverse"),
    )
    assert passes_of(loop) == m
    assert passes_of(vec) == 1
    t_loop.append(vg.time_call(loop, min_run_time=0.05))
    t_vec.append(vg.time_call(vec, min_run_time=0.05))
    print(f"m = {m:3d}: loop {m:3d} passes, {t_loop[-1] * 1e3:7.2f} ms;", end=" ")
    print(f"vectorised 1 pass, {t_vec[-1] * 1e3:6.2f} ms")

# %%
# The loop's time grows with :math:`m`, one backward pass per row; the vectorised call grows far
# more slowly at these sizes. The ratio depends on the machine and on what else it was doing, so
# it is printed, not asserted; what is asserted above is the number of passes.

print(f"loop / vectorised at m = {sizes[-1]}: {t_loop[-1] / t_vec[-1]:.1f}x")

fig, ax = plt.subplots()
ax.loglog(sizes, t_loop, "o-", label="one-hot loop (autograd.grad per row)")
ax.loglog(sizes, t_vec, "s-", label='vg.jacobian(strategy="reverse")')
ax.legend()
_ = ax.set(
    title=r"Jacobian of $\tanh(Ax)$, 32 inputs",
    xlabel="number of outputs m",
    ylabel="time per Jacobian [s] (median)",
)
plt.show()

"""
Batched Jacobians: one small Jacobian per sample
================================================

A function applied row by row to a batch of :math:`N` samples has a Jacobian that is mostly zeros.
This example shows its block-diagonal structure, recovers all :math:`N` per-sample Jacobians with
one backward pass per output component, and shows when that shortcut gives wrong answers.
"""

# sphinx_gallery_thumbnail_number = 1

import matplotlib.pyplot as plt
import torch
from torch.func import jacrev

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A row-wise function and its Jacobian by hand
# --------------------------------------------
# Each sample :math:`x = (x_1, x_2)` is mapped to three outputs,
#
# .. math::
#
#    f(x) = \begin{pmatrix} x_1 x_2 \\ \sin(x_1 + x_2^2) \\ x_1^2 - 3 x_2 \end{pmatrix},
#    \qquad
#    J(x) = \frac{\partial f}{\partial x} = \begin{pmatrix}
#        x_2 & x_1 \\
#        \cos(x_1 + x_2^2) & 2 x_2 \cos(x_1 + x_2^2) \\
#        2 x_1 & -3
#    \end{pmatrix}.
#
# ``f`` indexes the last axis only, so the same code maps one sample ``(2,)`` to ``(3,)`` and a
# batch ``(N, 2)`` to ``(N, 3)``. ``per_sample_jacobian`` is the hand-derived reference used for
# every check below, all in float64 so that agreement is to about 1e-15.


def f(x):
    x1, x2 = x[..., 0], x[..., 1]
    return torch.stack((x1 * x2, torch.sin(x1 + x2**2), x1**2 - 3 * x2), dim=-1)


def per_sample_jacobian(x):
    x1, x2 = x[..., 0], x[..., 1]
    c = torch.cos(x1 + x2**2)
    rows = (
        torch.stack((x2, x1), dim=-1),
        torch.stack((c, 2 * x2 * c), dim=-1),
        torch.stack((2 * x1, torch.full_like(x2, -3.0)), dim=-1),
    )
    return torch.stack(rows, dim=-2)  # (..., 3, 2)


N = 6
x = torch.randn(N, 2, dtype=torch.float64)
J_exact = per_sample_jacobian(x)
print("per-sample Jacobians:", tuple(J_exact.shape))

# %%
# The full Jacobian is block-diagonal
# -----------------------------------
# Treat the whole batch as one function from :math:`\mathbb{R}^{N \times 2}` to
# :math:`\mathbb{R}^{N \times 3}`. :func:`torch.func.jacrev` returns its Jacobian with shape
# ``output.shape + input.shape`` = ``(N, 3, N, 2)``; flattening both sides gives a
# :math:`3N \times 2N` matrix. Output row :math:`i` depends on input row :math:`i` only, so every
# block :math:`(i, j)` with :math:`i \ne j` is exactly zero and block :math:`(i, i)` is
# :math:`J(x_i)`.

J_full = jacrev(f)(x)
print("full Jacobian:", tuple(J_full.shape), "->", (3 * N, 2 * N))
assert J_full.shape == (N, 3, N, 2)
same_sample = torch.eye(N, dtype=torch.bool)[:, None, :, None].expand(N, 3, N, 2)
off_blocks = J_full[~same_sample]
torch.testing.assert_close(off_blocks, torch.zeros_like(off_blocks), rtol=0, atol=0)
diagonal_blocks = torch.diagonal(J_full, dim1=0, dim2=2).permute(2, 0, 1)  # (N, 3, 2)
torch.testing.assert_close(diagonal_blocks, J_exact)
n_nonzero = int((J_full != 0).sum())
print("nonzero entries:", n_nonzero, "of", J_full.numel())
assert n_nonzero == 6 * N

# %%
# In the picture each dark rectangle is one :math:`3 \times 2` per-sample Jacobian; everything
# else is zero. Only :math:`6N` of the :math:`6N^2` entries carry information, so forming the full
# matrix wastes a factor :math:`N` in memory and work.

fig, ax = plt.subplots(figsize=(5, 6))
pattern = (J_full.reshape(3 * N, 2 * N) != 0).numpy()
ax.imshow(pattern, cmap="Greys", interpolation="nearest")
ax.set_xticks([2 * j - 0.5 for j in range(1, N)], minor=True)
ax.set_yticks([3 * i - 0.5 for i in range(1, N)], minor=True)
ax.grid(which="minor", color="tab:blue", linewidth=0.5)
ax.tick_params(which="minor", length=0)
_ = ax.set(
    title=f"Nonzero pattern of the ({3 * N}, {2 * N}) Jacobian",
    xlabel="input index (sample, coordinate)",
    ylabel="output index (sample, component)",
)

# %%
# All per-sample Jacobians from three backward passes
# ---------------------------------------------------
# A vector-Jacobian product with :math:`v` sums rows of the full Jacobian:
# :math:`(v^\top J)_{j,l} = \sum_{i,k} v_{i,k}\, \partial f_k(x_i) / \partial x_{j,l}`. Take
# :math:`v_{i,k} = 1` for one output component :math:`k` and *every* sample :math:`i`. Because the
# off-diagonal blocks vanish, the sum over :math:`i` keeps only :math:`i = j`, and the result is row
# :math:`k` of :math:`J(x_j)` for all samples at once. Three such products (one per output
# component) give all :math:`N` Jacobians, whatever :math:`N` is. ``f`` runs once;
# ``retain_graph=True`` keeps its graph for the next pass.

x_leaf = x.clone().requires_grad_()
y = f(x_leaf)
rows = []
for k in range(3):
    v = torch.zeros_like(y)
    v[:, k] = 1.0
    (row_k,) = torch.autograd.grad(y, x_leaf, grad_outputs=v, retain_graph=k < 2)
    rows.append(row_k)  # (N, 2): row k of every sample's Jacobian
J_vjp = torch.stack(rows, dim=1)
print("from 3 VJPs:", tuple(J_vjp.shape))
torch.testing.assert_close(J_vjp, J_exact)

# %%
# The same statement in one line: the one-hot-per-component VJP is a row of the Jacobian of
# :math:`x \mapsto \sum_i f(x_i)`, a function with only three outputs. Its Jacobian has shape
# ``(3, N, 2)``; moving the sample axis to the front gives the per-sample Jacobians.
#
# This is also the whole story behind "a VJP with a vector of ones": in general it returns the
# column sums of the Jacobian, the gradient of :math:`\sum f`. Those are the per-sample (or, for an
# elementwise function, the elementwise) derivatives only because the Jacobian is block-diagonal
# (or diagonal); the next section shows a function where they are not.

J_sum = jacrev(lambda x: f(x).sum(dim=0))(x)
print("Jacobian of the summed outputs:", tuple(J_sum.shape))
torch.testing.assert_close(J_sum.permute(1, 0, 2), J_exact)

# %%
# :func:`vecgrad.batch_jacobian` packages this. ``strategy="reverse"`` uses one vectorised VJP per
# output component (3 here); ``strategy="forward"`` uses one vectorised JVP per input coordinate
# (2 here), the same trick with the one-hot tangent :math:`u_{i,l} = 1` for every sample. Both
# return ``(N, 3, 2)``.

for strategy in ("reverse", "forward"):
    J_vg = vg.batch_jacobian(f, x, strategy=strategy)
    print(f"vg.batch_jacobian(strategy={strategy!r}):", tuple(J_vg.shape))
    torch.testing.assert_close(J_vg, J_exact)

# %%
# When samples interact, the shortcut is wrong
# --------------------------------------------
# Everything above used the zero off-diagonal blocks. Subtract the batch mean,
# :math:`g(x)_i = f(x_i) - \frac1N \sum_j f(x_j)`, and every output row depends on every input row:
# block :math:`(i, j)` of the full Jacobian is :math:`(\delta_{ij} - \frac1N) J(x_j)`. The
# per-sample Jacobian :math:`\partial g_i / \partial x_i` is :math:`(1 - \frac1N) J(x_i)`, but the
# one-hot VJPs sum the column of blocks, :math:`\sum_i (\delta_{ij} - \frac1N) J(x_j) = 0`:
# they report zero for a function whose outputs clearly move with its inputs.


def g(x):
    y = f(x)
    return y - y.mean(dim=0)


G_full = jacrev(g)(x)
eye = torch.eye(N, dtype=torch.float64)
G_expected = (eye - 1 / N)[:, None, :, None] * J_exact.permute(1, 0, 2)[None]
torch.testing.assert_close(G_full, G_expected)
G_true = torch.diagonal(G_full, dim1=0, dim2=2).permute(2, 0, 1)
G_trick = jacrev(lambda x: g(x).sum(dim=0))(x).permute(1, 0, 2)
print("true dg_0/dx_0:\n", G_true[0])
print("one-hot VJP result for sample 0:\n", G_trick[0])
torch.testing.assert_close(G_true, (1 - 1 / N) * J_exact)
torch.testing.assert_close(G_trick, torch.zeros_like(G_trick), rtol=0, atol=1e-12)

# %%
# :func:`vecgrad.batch_jacobian` relies on the same structure and cannot check it. In reverse mode
# it returns the same zeros. In forward mode the one-hot tangents sum the *row* of blocks instead,
# :math:`\sum_j (\delta_{ij} - \frac1N) J(x_j) = J(x_i) - \frac1N \sum_j J(x_j)`: a different
# wrong answer. Neither is :math:`(1 - \frac1N) J(x_i)`.

G_reverse = vg.batch_jacobian(g, x, strategy="reverse")
G_forward = vg.batch_jacobian(g, x, strategy="forward")
print("reverse, sample 0:\n", G_reverse[0], "\nforward, sample 0:\n", G_forward[0])
torch.testing.assert_close(G_reverse, torch.zeros_like(G_reverse), rtol=0, atol=1e-12)
torch.testing.assert_close(G_forward, J_exact - J_exact.mean(dim=0))
assert not torch.allclose(G_forward, G_true)

# %%
# The two full Jacobians side by side, on one colour scale: the mixing function has no zero block
# left (the off-diagonal blocks are the faint :math:`-J(x_j)/N`), so there is no structure to
# exploit. A batch-norm layer in training mode, a batch mean or a softmax over the batch axis all
# break row-wise independence. For such functions compute the full Jacobian (or loop over samples
# with the rest of the batch held fixed, if that is the quantity you want).

limit = float(torch.cat((J_full, G_full)).abs().max())
fig, axes = plt.subplots(1, 2, figsize=(8, 5), sharey=True, layout="constrained")
panels = ((axes[0], J_full, "row-wise f"), (axes[1], G_full, "g = f - batch mean"))
for ax, J, name in panels:
    image = ax.imshow(
        J.reshape(3 * N, 2 * N).numpy(),
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    _ = ax.set(title=name, xlabel="input index", xticks=range(0, 2 * N, 2))
_ = axes[0].set(ylabel="output index")
_ = fig.colorbar(image, ax=axes, label="Jacobian entry")

# %%
# Cost against batch size
# -----------------------
# Three ways to get all per-sample Jacobians: a Python loop calling :func:`torch.func.jacrev` once
# per sample, the three one-hot VJPs above, and :func:`vecgrad.batch_jacobian`. The loop does
# :math:`N` small calls; the other two do a fixed number of vectorised passes whose cost grows only
# with the size of the tensors. ``counted_f`` is ``f`` with two counters: its calls, and the
# backward passes through the node that produced its output (a hook on that node runs once per
# pass). The counts are what this section asserts.

passes = {"f": 0, "backward": 0}


def counted_f(x):
    passes["f"] += 1
    y = f(x)
    if y.requires_grad:  # the hook runs once per backward pass through y's node
        y.grad_fn.register_hook(lambda *_: passes.update(backward=passes["backward"] + 1))
    return y


jacobian_of_f = jacrev(counted_f)


def loop_jacobians(x):
    return torch.stack([jacobian_of_f(x_i) for x_i in x])


def onehot_vjp_jacobians(x):
    x = x.detach().requires_grad_()
    y = counted_f(x)
    eye3 = torch.eye(3, dtype=x.dtype)
    rows = []
    for k in range(3):
        (row_k,) = torch.autograd.grad(y, x, eye3[k].expand_as(y), retain_graph=k < 2)
        rows.append(row_k)
    return torch.stack(rows, dim=1)


methods = {
    "loop of jacrev (N calls)": loop_jacobians,
    "3 one-hot VJPs": onehot_vjp_jacobians,
    "vg.batch_jacobian": lambda x: vg.batch_jacobian(counted_f, x),
}

# %%
# For each of four batch sizes, every method is checked against the formula and its passes are
# counted; then :func:`vecgrad.time_call` measures its median time per call, on one thread
# (tensors this small gain nothing from a second one).

sizes = [10, 30, 100, 300]
timings = {name: [] for name in methods}
counts = {name: [] for name in methods}
for n in sizes:
    xn = torch.randn(n, 2, dtype=torch.float64)
    for name, fn in methods.items():
        passes.update(f=0, backward=0)
        torch.testing.assert_close(fn(xn), per_sample_jacobian(xn))
        counts[name].append(dict(passes))
        timings[name].append(vg.time_call(lambda fn=fn, xn=xn: fn(xn), min_run_time=0.05))
for name in methods:
    cells = [f"N={n}: {t * 1e3:.2f} ms" for n, t in zip(sizes, timings[name], strict=True)]
    print(f"{name}  {counts[name][-1]} at N={sizes[-1]}\n   ", "   ".join(cells))

# %%
# The loop calls ``f`` and runs a backward pass once per sample. The one-hot VJPs call it once and
# run three backward passes, one per output component; :func:`vecgrad.batch_jacobian` takes the
# same three VJPs, run as one vectorised backward pass, reusing the evaluation that told it the
# output's size. Neither count depends on :math:`N`.

expected = {
    "loop of jacrev (N calls)": [{"f": n, "backward": n} for n in sizes],
    "3 one-hot VJPs": [{"f": 1, "backward": 3}] * len(sizes),
    "vg.batch_jacobian": [{"f": 1, "backward": 1}] * len(sizes),
}
assert counts == expected, counts

# %%
# On a quiet machine the loop's time grows in proportion to :math:`N` on this log-log plot (a line
# of slope one: it makes :math:`N` calls), while the vectorised methods stay nearly flat at these
# sizes, where fixed per-call overhead dominates. The times come from the machine that built this
# page and depend on what else it was doing, so single points can jump; they are shown, not
# asserted, and ``nox -s bench`` checks the speed goals.

fig, ax = plt.subplots()
for name, ts in timings.items():
    ax.loglog(sizes, ts, "o-", label=name)
ax.legend()
_ = ax.set(
    title="Per-sample Jacobians of f: R^2 -> R^3",
    xlabel="batch size N",
    ylabel="seconds per call (median)",
)

loop_t = timings["loop of jacrev (N calls)"]
for name in ("3 one-hot VJPs", "vg.batch_jacobian"):
    print(f"N={sizes[-1]}: loop / {name} = {loop_t[-1] / timings[name][-1]:.0f}")

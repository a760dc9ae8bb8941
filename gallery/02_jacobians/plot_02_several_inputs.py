"""
Jacobians of functions of several inputs and several outputs
============================================================

A function of several tensors has one Jacobian block per input, and each block has the shape
``output.shape + input.shape``; a function that returns several tensors has one block per output
and input, ``J[i][j]``. This example computes the blocks four ways, nests them for several
outputs, shows how they join into the Jacobian of one flattened input, and explains when a
vector-Jacobian product with a vector of ones really returns per-sample derivatives.
"""

# sphinx_gallery_thumbnail_number = 2
import warnings

import matplotlib.pyplot as plt
import torch

import vecgrad as vg

_ = torch.manual_seed(0)
# torch 2.13 loads its forward-mode rules through the deprecated torch.jit.script on first use;
# that DeprecationWarning comes from inside torch, so exactly that message is silenced.
warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)

# %%
# A function of two vectors
# -------------------------
# Take :math:`f(x, y) = (x_0 y_0,\ x_1 y_1^2,\ \sin(x_2 + y_0),\ x_0 x_1 x_2 + e^{y_1})` with
# :math:`x \in \mathbb{R}^3` and :math:`y \in \mathbb{R}^2`. Its derivative is a pair of blocks,
# :math:`\partial f / \partial x` of shape (4, 3) and :math:`\partial f / \partial y` of shape
# (4, 2), which we write down by hand to have an independent reference. We work in float64 so
# that the comparisons can use tight tolerances.


def f(x, y):
    return torch.stack(
        [
            x[0] * y[0],
            x[1] * y[1] ** 2,
            torch.sin(x[2] + y[0]),
            x[0] * x[1] * x[2] + torch.exp(y[1]),
        ]
    )


def analytic_blocks(x, y):
    c = torch.cos(x[2] + y[0])
    z = torch.zeros((), dtype=x.dtype)
    jx = torch.stack(
        [
            torch.stack([y[0], z, z]),
            torch.stack([z, y[1] ** 2, z]),
            torch.stack([z, z, c]),
            torch.stack([x[1] * x[2], x[0] * x[2], x[0] * x[1]]),
        ]
    )
    jy = torch.stack(
        [
            torch.stack([x[0], z]),
            torch.stack([z, 2 * x[1] * y[1]]),
            torch.stack([c, z]),
            torch.stack([z, torch.exp(y[1])]),
        ]
    )
    return jx, jy


x = torch.randn(3, dtype=torch.float64)
y = torch.randn(2, dtype=torch.float64)
Jx, Jy = analytic_blocks(x, y)
print("df/dx:\n", Jx, "\ndf/dy:\n", Jy)

# %%
# Rows of both blocks from one backward pass
# ------------------------------------------
# :func:`torch.autograd.grad` accepts a tuple of inputs and returns one gradient per input. With
# the one-hot ``grad_outputs`` :math:`e_i` it returns row :math:`i` of *every* block at once, so a
# loop over the four outputs builds both blocks. The forward pass runs once; ``retain_graph=True``
# keeps its graph alive for the next backward pass.

xr = x.clone().requires_grad_()
yr = y.clone().requires_grad_()
out = f(xr, yr)
rows_x, rows_y = [], []
for i in range(out.numel()):
    e_i = torch.zeros_like(out)
    e_i[i] = 1.0
    gx, gy = torch.autograd.grad(out, (xr, yr), grad_outputs=e_i, retain_graph=True)
    rows_x.append(gx)
    rows_y.append(gy)
loop_x, loop_y = torch.stack(rows_x), torch.stack(rows_y)
print("loop blocks:", tuple(loop_x.shape), tuple(loop_y.shape))
assert loop_x.shape == (4, 3)
assert loop_y.shape == (4, 2)
torch.testing.assert_close(loop_x, Jx)
torch.testing.assert_close(loop_y, Jy)

# %%
# :func:`torch.autograd.functional.vjp` on a tuple of inputs
# ----------------------------------------------------------
# The functional API returns a *pair*: the output of ``f`` and the vector-Jacobian products,
# which for a tuple of inputs are themselves a tuple. Unpack both levels:
# ``out, (vjp_x, vjp_y) = vjp(f, (x, y), v)``. Each product is :math:`v^\top J` for that block.
# The functional API evaluates ``f`` again on every call, so building the blocks row by row
# with it costs one forward pass per row; the counter below shows it.

calls = {"f": 0}


def counted_f(x, y):
    calls["f"] += 1
    return f(x, y)


v = torch.randn(4, dtype=torch.float64)
out, (vjp_x, vjp_y) = torch.autograd.functional.vjp(counted_f, (x, y), v)
print("v^T df/dx =", vjp_x, "\nv^T df/dy =", vjp_y)
torch.testing.assert_close(vjp_x, v @ Jx)
torch.testing.assert_close(vjp_y, v @ Jy)
torch.testing.assert_close(out, f(x, y))

for i in range(4):
    torch.autograd.functional.vjp(counted_f, (x, y), torch.eye(4, dtype=torch.float64)[i])
print("evaluations of f: 1 for the product above, then", calls["f"] - 1, "for four rows")
assert calls["f"] == 5

# %%
# Whole blocks in one call
# ------------------------
# :func:`torch.func.jacrev` with ``argnums=(0, 1)`` differentiates with respect to both
# arguments and returns a tuple of blocks; :func:`torch.autograd.functional.jacobian` and
# :func:`vecgrad.jacobian` do the same when the inputs are given as a tuple. The result always
# mirrors the structure of the inputs.

blocks_func = torch.func.jacrev(f, argnums=(0, 1))(x, y)
blocks_functional = torch.autograd.functional.jacobian(f, (x, y))
blocks_vg = vg.jacobian(f, (x, y))
for blocks in (blocks_func, blocks_functional, blocks_vg):
    assert isinstance(blocks, tuple)
    assert len(blocks) == 2
    torch.testing.assert_close(blocks[0], Jx)
    torch.testing.assert_close(blocks[1], Jy)
print("jacrev, functional.jacobian and vg.jacobian agree with the analytic blocks")

# %%
# A matrix-shaped input
# ---------------------
# For a matrix input the block keeps the matrix's shape. Take :math:`g(W, x) = \tanh(W x)` with
# :math:`W` of shape (3, 4) and :math:`x` of shape (4,). The output has shape (3,), so the block
# for :math:`W` has shape (3, 3, 4): entry ``[i, j, k]`` is
# :math:`\partial g_i / \partial W_{jk} = \delta_{ij}\,(1 - g_i^2)\,x_k`, because output
# :math:`i` only sees row :math:`i` of :math:`W`.


def g(W, x):
    return torch.tanh(W @ x)


W = torch.randn(3, 4, dtype=torch.float64)
xw = torch.randn(4, dtype=torch.float64)
s = 1 - g(W, xw) ** 2
JW_ref = torch.eye(3, dtype=torch.float64)[:, :, None] * (s[:, None] * xw)[:, None, :]
Jxw_ref = s[:, None] * W

JW, Jxw = vg.jacobian(g, (W, xw))
print("block shapes:", tuple(JW.shape), tuple(Jxw.shape))
assert JW.shape == g(W, xw).shape + W.shape
assert Jxw.shape == g(W, xw).shape + xw.shape
torch.testing.assert_close(JW, JW_ref)
torch.testing.assert_close(Jxw, Jxw_ref)
torch.testing.assert_close(torch.func.jacrev(g, argnums=(0, 1))(W, xw), (JW_ref, Jxw_ref))

# %%
# Several outputs: blocks ``J[i][j]``
# -----------------------------------
# Let the function also return the squared norm of :math:`W`, a scalar:
# :math:`k(W, x) = (\tanh(W x),\ \lVert W \rVert^2)`. With two outputs and two inputs there are
# four blocks, nested output first, then input, as :func:`torch.func.jacrev` nests them:
# ``J[i][j]`` is the derivative of output ``i`` with respect to input ``j``, of shape
# ``outputs[i].shape + inputs[j].shape``. The norm does not depend on :math:`x`, so its block
# for :math:`x` is zero, and its block for :math:`W` is :math:`2W`.


def k(W, x):
    return g(W, x), (W**2).sum()


J = vg.jacobian(k, (W, xw))
outputs, inputs = k(W, xw), (W, xw)
for i, row in enumerate(J):
    for j, block in enumerate(row):
        print(f"J[{i}][{j}].shape = {tuple(block.shape)}")
        assert block.shape == outputs[i].shape + inputs[j].shape
assert [[tuple(b.shape) for b in row] for row in J] == [[(3, 3, 4), (3, 4)], [(3, 4), (4,)]]

# %%
# The first row of blocks is the Jacobian of :math:`g` found above; the second is
# :math:`(2W, 0)`. :func:`torch.func.jacrev`, :func:`torch.func.jacfwd` and
# :func:`torch.autograd.functional.jacobian` return the same nesting. The vectorised strategies
# of :func:`vecgrad.jacobian` compute all four blocks in one vectorised call, whose rows (or
# columns) run over the elements of both outputs (or inputs); ``'loop'`` runs one backward pass
# per output element, 3 + 1 here.

expected = ((JW_ref, Jxw_ref), (2 * W, torch.zeros(4, dtype=torch.float64)))
torch.testing.assert_close(J, expected)
torch.testing.assert_close(torch.func.jacrev(k, argnums=(0, 1))(W, xw), expected)
torch.testing.assert_close(torch.func.jacfwd(k, argnums=(0, 1))(W, xw), expected)
torch.testing.assert_close(torch.autograd.functional.jacobian(k, (W, xw)), expected)
for strategy in ("reverse", "forward", "loop"):
    torch.testing.assert_close(vg.jacobian(k, (W, xw), strategy=strategy), expected)

# %%
# One input keeps only the outputs' level: ``vg.jacobian(k_of_W, W)`` is a pair of blocks
# of shapes (3, 3, 4) and (3, 4). The products follow the outputs too. A VJP takes one
# cotangent per output, a tuple shaped like the output, and adds their products; a JVP returns
# one tangent per output, as :func:`torch.func.jvp` does.

JW_only = vg.jacobian(lambda W: k(W, xw), W)
assert [tuple(b.shape) for b in JW_only] == [(3, 3, 4), (3, 4)]
v_pair = (torch.randn(3, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
_, (vjp_W, vjp_x) = vg.vjp(k, (W, xw), v_pair)
assert vjp_W.shape == W.shape
assert vjp_x.shape == xw.shape
torch.testing.assert_close(vjp_W, torch.einsum("i,ijk->jk", v_pair[0], JW_ref) + 2 * 2 * W)
torch.testing.assert_close(vjp_x, v_pair[0] @ Jxw_ref)
u = (torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64))
_, (jvp_g, jvp_norm) = vg.jvp(k, (W, xw), u)
assert jvp_g.shape == (3,)
assert jvp_norm.shape == ()
torch.testing.assert_close(jvp_g, torch.einsum("ijk,jk->i", JW_ref, u[0]) + Jxw_ref @ u[1])
torch.testing.assert_close(jvp_norm, (2 * W * u[0]).sum())

# %%
# An output that is not differentiated: ``has_aux``
# -------------------------------------------------
# Often a function computes a value to report (a loss, a norm) next to what is differentiated.
# With ``has_aux=True`` it returns a pair ``(output, aux)``; ``aux`` comes back as it is, beside
# the Jacobian, and is not differentiated, as with ``torch.func.jacrev(..., has_aux=True)``.
# jacrev accepts only tensors in ``aux``; vecgrad also returns other objects, such as the Python
# int below.


def g_and_report(W, x):
    y = g(W, x)
    return y, {"saturated": (y.abs() > 0.5).sum().item(), "norm": y.norm()}


(JW_aux, Jx_aux), report = vg.jacobian(g_and_report, (W, xw), has_aux=True)
print("aux:", report)
torch.testing.assert_close((JW_aux, Jx_aux), (JW_ref, Jxw_ref))
torch.testing.assert_close(report["norm"], g(W, xw).norm())
assert report["saturated"] == int((g(W, xw).abs() > 0.5).sum())

# %%
# The blocks are pieces of one Jacobian
# -------------------------------------
# Flatten every input and concatenate them into one vector :math:`z`. The Jacobian of the
# function of :math:`z` is the blocks, each reshaped to ``(output numel, input numel)``, placed
# side by side in the order of the inputs.


def g_flat(z):
    return g(z[:12].reshape(3, 4), z[12:])


z = torch.cat([W.reshape(-1), xw])
J_flat = torch.func.jacrev(g_flat)(z)
J_joined = torch.cat([JW.reshape(3, -1), Jxw], dim=1)
print("Jacobian of the flattened input:", tuple(J_flat.shape))
assert J_flat.shape == (3, 12 + 4)
torch.testing.assert_close(J_flat, J_joined)

J_f_flat = vg.jacobian(lambda xy: f(xy[:3], xy[3:]), torch.cat([x, y]))
torch.testing.assert_close(J_f_flat, torch.cat([Jx, Jy], dim=1))

# %%
# The joined Jacobian of :math:`g`: twelve columns for the entries of :math:`W` (row by row)
# and four for :math:`x`. In the :math:`W` part, output :math:`i` is non-zero only in the four
# columns of row :math:`i` of :math:`W`.

lim = J_joined.abs().max().item()
fig, ax = plt.subplots(figsize=(8, 2.4), layout="constrained")
im = ax.imshow(J_joined.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
ax.axvline(11.5, color="black", linewidth=2)
_ = ax.set(
    title="Jacobian of g(W, x): block for W | block for x",
    xlabel="flattened input index (W[0, :], W[1, :], W[2, :], x)",
    ylabel="output index",
    yticks=range(3),
)
_ = fig.colorbar(im, ax=ax, shrink=0.9)

# %%
# Elementwise functions of a batch: when ones give per-sample derivatives
# -----------------------------------------------------------------------
# Let :math:`x, y \in \mathbb{R}^N` hold :math:`N` samples and
# :math:`h_n = x_n y_n + \sin(x_n y_n^2)`. A VJP with :math:`v = (1, \dots, 1)` returns
# :math:`\mathbf{1}^\top J`, the column sums of each block, which is the gradient of
# :math:`\sum_n h_n`. It matches the per-sample partial derivatives
# :math:`\partial h_n / \partial x_n = y_n + y_n^2 \cos(x_n y_n^2)` and
# :math:`\partial h_n / \partial y_n = x_n + 2 x_n y_n \cos(x_n y_n^2)` here.

N = 8


def h(x, y):
    return x * y + torch.sin(x * y**2)


xb = 2 * torch.rand(N, dtype=torch.float64) - 1
yb = 2 * torch.rand(N, dtype=torch.float64) - 1
dh_dx = yb + yb**2 * torch.cos(xb * yb**2)
dh_dy = xb + 2 * xb * yb * torch.cos(xb * yb**2)
_, (ones_x, ones_y) = torch.autograd.functional.vjp(h, (xb, yb), torch.ones(N, dtype=torch.float64))
print("ones-VJP w.r.t. x:", ones_x)
torch.testing.assert_close(ones_x, dh_dx)
torch.testing.assert_close(ones_y, dh_dy)

# %%
# The reason is the structure of the blocks, not the vector of ones. Sample :math:`n` of the
# output depends only on sample :math:`n` of the inputs, so both (N, N) blocks are diagonal, and
# the sum of a column of a diagonal matrix is its diagonal entry. The full blocks show it.

Hx, Hy = vg.jacobian(h, (xb, yb))
print(
    "off-diagonal entries of dh/dx: max |.| =", (Hx - torch.diag(Hx.diagonal())).abs().max().item()
)
torch.testing.assert_close(Hx, torch.diag(dh_dx))
torch.testing.assert_close(Hy, torch.diag(dh_dy))
torch.testing.assert_close(Hx.sum(0), ones_x)

# %%
# A counter-example
# -----------------
# Centre the outputs over the batch, :math:`c_n = h_n - \frac{1}{N}\sum_m h_m`, as a
# normalisation layer does. Now every output depends on every sample: the blocks are dense.
# Their column sums are exactly zero, because :math:`\sum_n c_n = 0` for every input, so the
# ones-VJP returns zeros, while the diagonal holds the partial derivatives
# :math:`\partial c_n / \partial x_n = (1 - 1/N)\, \partial h_n / \partial x_n`. A vector of
# ones always gives the gradient of the sum of the outputs. That is the per-sample derivative
# only for a diagonal Jacobian, or a block-diagonal one with one output per sample (the next
# section shows what it gives with several).


def centred(x, y):
    out = h(x, y)
    return out - out.mean()


_, (ones_cx, _) = torch.autograd.functional.vjp(
    centred, (xb, yb), torch.ones(N, dtype=torch.float64)
)
Cx, _ = vg.jacobian(centred, (xb, yb))
print("ones-VJP:", ones_cx)
print("diagonal:", Cx.diagonal())
torch.testing.assert_close(ones_cx, torch.zeros(N, dtype=torch.float64))
torch.testing.assert_close(Cx.diagonal(), (1 - 1 / N) * dh_dx)
torch.testing.assert_close(Cx, (torch.eye(N, dtype=torch.float64) - 1 / N) * dh_dx)
assert (ones_cx - Cx.diagonal()).abs().max() > 0.1

# %%
# Samples with several features
# -----------------------------
# The same holds when each sample is a row of features. For :math:`X` of shape (N, 2) and
# :math:`h_n = X_{n0} X_{n1} + \sin(X_{n0} X_{n1}^2)`, the Jacobian has shape (N, N, 2) and is
# zero whenever the output sample differs from the input sample: it is block-diagonal, so the
# ones-VJP returns the (N, 2) rows of per-sample gradients.

X = torch.stack([xb, yb], dim=1)
J_rows = vg.jacobian(lambda X: h(X[:, 0], X[:, 1]), X)
mask = torch.eye(N, dtype=torch.bool)
print("Jacobian shape:", tuple(J_rows.shape), "| non-zero only on the sample diagonal")
assert J_rows.shape == (N, N, 2)
torch.testing.assert_close(J_rows[~mask], torch.zeros_like(J_rows[~mask]))
torch.testing.assert_close(J_rows[mask], torch.stack([dh_dx, dh_dy], dim=1))
torch.testing.assert_close(J_rows.sum(0), torch.stack([ones_x, ones_y], dim=1))

# %%
# With several outputs per sample, the blocks are no longer rows. Give each sample a second
# output, :math:`g_n = (h_n, X_{n0}^2 X_{n1})`: block :math:`n` is a 2 x 2 Jacobian, and the
# ones-VJP adds up its rows. It returns, per sample, the gradient of the *sum* of that sample's
# outputs, :math:`\nabla_{X_n} (h_n + X_{n0}^2 X_{n1})`, not the per-sample Jacobian, which
# :func:`vecgrad.batch_jacobian` gives.


def g(X):
    return torch.stack([h(X[:, 0], X[:, 1]), X[:, 0] ** 2 * X[:, 1]], dim=1)  # (N, 2)


_, ones_g = torch.autograd.functional.vjp(g, X, torch.ones(N, 2, dtype=torch.float64))
second = torch.stack([2 * xb * yb, xb**2], dim=1)  # gradient of X_n0^2 X_n1 per sample
blocks = vg.batch_jacobian(g, X)  # (N, 2, 2): one Jacobian per sample
print("ones-VJP, sample 0:", ones_g[0])
print("Jacobian, sample 0:", blocks[0])
torch.testing.assert_close(blocks, torch.stack([torch.stack([dh_dx, dh_dy], dim=1), second], 1))
torch.testing.assert_close(ones_g, torch.stack([dh_dx, dh_dy], dim=1) + second)
torch.testing.assert_close(ones_g, blocks.sum(1))  # the rows of each block, added up

# %%
# The two :math:`\partial / \partial x` blocks side by side, on one colour scale: diagonal for the
# elementwise function, dense for the centred one. Their column sums are the ones-VJP.

lim = max(Hx.abs().max().item(), Cx.abs().max().item())
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), layout="constrained")
for ax, block, name in zip(axes, (Hx, Cx), ("elementwise h", "centred h - mean(h)"), strict=True):
    im = ax.imshow(block.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    _ = ax.set(title=f"d/dx of {name}", xlabel="input sample", ylabel="output sample")
_ = fig.colorbar(im, ax=axes, shrink=0.8)
plt.show()

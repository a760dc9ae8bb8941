"""
The empirical neural tangent kernel of a small MLP
==================================================

The empirical neural tangent kernel compares two inputs through the gradients of a network's
output with respect to its parameters. This example builds it from per-sample parameter
Jacobians, checks it against a loop of backward passes, multiplies it by a vector without
forming any Jacobian, and checks what it predicts: how one gradient step moves the outputs.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.func import functional_call

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A small network and its kernel
# ------------------------------
# For a network :math:`f_\theta` with parameters :math:`\theta \in \mathbb{R}^P` and one output,
# the empirical neural tangent kernel (NTK) of two inputs is the inner product of their parameter
# gradients,
#
# .. math::
#
#    \Theta(x, x') = \nabla_\theta f_\theta(x)^\top \nabla_\theta f_\theta(x')
#    \quad\text{so that}\quad \Theta = J J^\top,
#
# where row :math:`i` of :math:`J \in \mathbb{R}^{N \times P}` is the gradient for sample
# :math:`x_i`. The network maps a number to a number through two tanh layers of width 32; the
# inputs are 40 points of :math:`[-3, 3]`. Everything is float64.

model = nn.Sequential(
    nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1)
).double()
x = torch.linspace(-3, 3, 40, dtype=torch.float64).unsqueeze(1)  # (N, 1)
params = dict(model.named_parameters())
n_params = sum(p.numel() for p in params.values())
print(f"N = {x.shape[0]} inputs, P = {n_params} parameters")
assert n_params == (1 * 32 + 32) + (32 * 32 + 32) + (32 * 1 + 1)

# %%
# Per-sample Jacobians with respect to the parameters
# ---------------------------------------------------
# :func:`vecgrad.param_jacobian` passes each sample through the model on its own and returns,
# for every parameter ``p``, a tensor of shape ``(N, *out_row, *p.shape)``: here
# ``(40, 1, *p.shape)``. Flattening each block to ``(N, -1)`` and concatenating in the order of
# ``named_parameters()`` gives :math:`J`.

blocks = vg.param_jacobian(model, x)
for name, block in blocks.items():
    print(f"{name:>9}: {tuple(block.shape)}")
    assert block.shape == (40, 1, *params[name].shape)
J = torch.cat([block.reshape(40, -1) for block in blocks.values()], dim=1)
print("J:", tuple(J.shape))
assert J.shape == (40, n_params)

# %%
# The reference: one backward pass per sample, each on a fresh forward pass of that sample alone,
# with :func:`torch.autograd.grad`. Its rows, and the kernels built from them, agree with
# ``param_jacobian``'s to float64 rounding.

rows = []
for i in range(40):
    grads = torch.autograd.grad(model(x[i : i + 1]).squeeze(), tuple(params.values()))
    rows.append(torch.cat([g.reshape(-1) for g in grads]))
J_loop = torch.stack(rows)
torch.testing.assert_close(J, J_loop)
ntk = J @ J.T
torch.testing.assert_close(ntk, J_loop @ J_loop.T)
print("largest |NTK - loop NTK|:", f"{(ntk - J_loop @ J_loop.T).abs().max():.1e}")

# %%
# A Gram matrix is symmetric and positive semi-definite, and its trace is
# :math:`\operatorname{tr} J J^\top = \lVert J\rVert_F^2`. Its eigenvalues fall off
# geometrically: the 40 outputs of a smooth network of one variable move together, and five
# directions of function space hold more than 99.9% of the trace. The smallest eigenvalues are
# zero up to rounding: computing :math:`J J^\top` and its eigenvalues in float64 perturbs them by
# roughly :math:`N \varepsilon \lambda_{\max}`, with :math:`\varepsilon` the machine epsilon; no
# eigenvalue is more negative than that. The eigenvalues are the squared singular values of
# :math:`J`, which :func:`torch.linalg.svdvals` computes without forming :math:`J J^\top`.

eigenvalues = torch.linalg.eigvalsh(ntk)  # ascending
rounding = 40 * torch.finfo(torch.float64).eps * float(eigenvalues[-1])
top5 = float(eigenvalues[-5:].sum() / eigenvalues.sum())
print(f"largest eigenvalue {eigenvalues[-1]:.4g}, trace {ntk.trace():.4g}, top five {top5:.5%}")
print(f"smallest eigenvalue {eigenvalues[0]:.2g}, rounding level {rounding:.2g}")
torch.testing.assert_close(ntk, ntk.T)
torch.testing.assert_close(ntk.trace(), J.square().sum())
assert eigenvalues[0] > -rounding
assert top5 > 0.999
singular_squared = torch.linalg.svdvals(J).square()  # descending
svd_gap = (eigenvalues.flip(0) - singular_squared).abs().max()
print(f"largest |eigenvalue - singular value^2|: {svd_gap:.1e}")
torch.testing.assert_close(eigenvalues.flip(0), singular_squared, rtol=1e-10, atol=rounding)

# %%
# On the left, the whole kernel; on the right, three of its rows: :math:`\Theta(x, x_0)` as a
# function of :math:`x` for three anchors :math:`x_0`. Unlike a Gaussian kernel, the NTK is not a
# function of :math:`x - x'` alone: its diagonal :math:`\lVert\nabla_\theta f(x)\rVert^2` is
# smallest in the middle and almost twice as large at an end, and inputs at opposite ends have a
# negative kernel, so a gradient step that raises the output at one end lowers it at the other.

diagonal = ntk.diagonal()
smallest, largest = int(diagonal.argmin()), int(diagonal.argmax())
print(f"diagonal: {diagonal[smallest]:.3g} at x = {x[smallest, 0]:.2f}, ", end="")
print(f"{diagonal[largest]:.3g} at x = {x[largest, 0]:.2f}; Θ(-3, 3) = {ntk[0, -1]:.3g}")
assert abs(x[smallest, 0]) < 1
assert largest in (0, 39)
assert diagonal[largest] > 1.8 * diagonal[smallest]
assert ntk[0, -1] < 0

# %%
# The kernel as an image, and the three rows as curves with their anchors marked.

fig, (ax_matrix, ax_rows) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
fig.get_layout_engine().set(wspace=0.1)
image = ax_matrix.imshow(ntk.numpy(), extent=(-3, 3, 3, -3), cmap="viridis")
_ = fig.colorbar(image, ax=ax_matrix, label=r"$\Theta(x, x')$")
_ = ax_matrix.set(title="empirical NTK", xlabel="x'", ylabel="x")
for anchor in (5, 20, 34):
    line = ax_rows.plot(x[:, 0], ntk[anchor], label=f"$x_0$ = {x[anchor, 0]:.2f}")[0]
    ax_rows.axvline(float(x[anchor, 0]), color=line.get_color(), linestyle=":")
ax_rows.legend()
_ = ax_rows.set(title="rows of the kernel", xlabel="x", ylabel=r"$\Theta(x, x_0)$")

# %%
# The spectrum on a log scale: below the rounding level the values are noise, of either sign, so
# only their magnitude is drawn.

fig, ax = plt.subplots()
ax.semilogy(range(1, 41), eigenvalues.flip(0).abs(), "o-")
ax.axhline(rounding, color="gray", ls=":", label=r"$N \varepsilon \lambda_{\max}$ (rounding)")
ax.legend()
_ = ax.set(title="eigenvalues of the NTK", xlabel="index (largest first)", ylabel="|eigenvalue|")

# %%
# Kernel-vector products without any Jacobian
# -------------------------------------------
# Often only :math:`\Theta v` is needed (for example inside an iterative solver). It takes two
# products of the batched network with respect to its parameters: a vector-Jacobian product
# :math:`u = J^\top v` (one backward pass, :func:`vecgrad.vjp`), then a Jacobian-vector product
# :math:`J u` (one forward pass, :func:`vecgrad.jvp`). Neither forms the :math:`N \times P`
# matrix :math:`J`. The batched network's Jacobian *is* :math:`J`, because every output depends
# only on its own sample.

names = tuple(params)


def batch_output(*tensors):
    """Outputs for the whole batch, as a function of the parameters: shape (N,)."""
    return functional_call(model, dict(zip(names, tensors, strict=True)), (x,)).squeeze(1)


point = tuple(p.detach() for p in params.values())
v = torch.randn(40, dtype=torch.float64)
_, u = vg.vjp(batch_output, point, v)  # u = J^T v, one tensor per parameter
_, ntk_v = vg.jvp(batch_output, point, u)  # J u = J J^T v
print("largest |Θ v from two products - Θ @ v|:", f"{(ntk_v - ntk @ v).abs().max():.1e}")
torch.testing.assert_close(ntk_v, ntk @ v)

# %%
# What the kernel predicts: one gradient step
# -------------------------------------------
# For the squared error :math:`L = \frac12 \lVert f - y\rVert^2` on the 40 points, a gradient
# step :math:`\theta \leftarrow \theta - \eta J^\top (f - y)` changes the outputs by
# :math:`-\eta\, J J^\top (f - y) = -\eta\, \Theta\, (f - y)` to first order in :math:`\eta`.
# The target is :math:`\sin x`; each step below is taken on a fresh copy of the
# parameters with :func:`torch.autograd.grad`, and the actual change is compared with the
# kernel's prediction. Their gap is second order in :math:`\eta` and the change first order, so
# the relative gap shrinks like :math:`\eta`: about ten times for a step ten times smaller.

y = torch.sin(x[:, 0])
residual = (batch_output(*point) - y).detach()
gaps = {}
for lr in (1e-3, 1e-4):
    outputs = batch_output(*params.values())
    grads = torch.autograd.grad(0.5 * (outputs - y).square().sum(), tuple(params.values()))
    stepped = tuple(p.detach() - lr * g for p, g in zip(params.values(), grads, strict=True))
    change = (batch_output(*stepped) - outputs).detach()
    predicted = -lr * ntk @ residual
    gaps[lr] = float((change - predicted).norm() / predicted.norm())
    print(f"lr = {lr:g}: |change - prediction| / |prediction| = {gaps[lr]:.2e}")
assert gaps[1e-3] < 1e-2
assert 5 < gaps[1e-3] / gaps[1e-4] < 20

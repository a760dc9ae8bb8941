"""
The curvature of a network's loss
=================================

The Hessian of a loss with respect to a network's weights, its largest eigenvalues by Lanczos
without ever forming it, and the Gauss-Newton matrix that replaces it when a positive
semi-definite curvature is needed. Every matrix is checked against :mod:`torch.func` over
:func:`torch.func.functional_call`.
"""

# sphinx_gallery_thumbnail_number = 1

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch.func import functional_call

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A small regression network
# --------------------------
# A tanh MLP maps 3 features to 2 outputs, with a squared error over a batch of 32 samples, all
# in float64. Its 38 parameters live in four tensors; the curvature functions key their results
# by the names of ``model.named_parameters()``.

model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).to(torch.float64)
x = torch.randn(32, 3, dtype=torch.float64)
y = torch.randn(32, 2, dtype=torch.float64)
names = [name for name, _ in model.named_parameters()]
sizes = [p.numel() for p in model.parameters()]
P = sum(sizes)
print(f"{P} parameters: " + ", ".join(f"{n} {tuple(p.shape)}" for n, p in model.named_parameters()))
assert P == 38

# %%
# The full parameter Hessian
# --------------------------
# :func:`vecgrad.param_hessian` returns blocks keyed twice: ``H[a][b]`` has shape
# ``p_a.shape + p_b.shape``. The reference is :func:`torch.func.hessian` of the loss written as a
# function of a parameter dictionary through :func:`torch.func.functional_call`.

H_blocks = vg.param_hessian(model, F.mse_loss, x, y)
print("H['0.weight']['2.weight'].shape =", tuple(H_blocks["0.weight"]["2.weight"].shape))
assert H_blocks["0.weight"]["2.weight"].shape == (6, 3, 2, 6)

params = {n: p.detach() for n, p in model.named_parameters()}


def loss_of(params):
    return F.mse_loss(functional_call(model, params, (x,)), y)


reference = torch.func.hessian(loss_of)(params)
torch.testing.assert_close(H_blocks, reference)

# %%
# Flattening each block to a matrix and concatenating them gives the symmetric 38 x 38 Hessian.


def to_matrix(blocks):
    rows = [
        torch.cat([blocks[a][b].reshape(m, n) for b, n in zip(names, sizes, strict=True)], 1)
        for a, m in zip(names, sizes, strict=True)
    ]
    return torch.cat(rows)


H = to_matrix(H_blocks)
torch.testing.assert_close(H, H.T)
print(f"H is {tuple(H.shape)}, ||H - H^T|| = {(H - H.T).abs().max():.1e}")

# %%
# The mistake that silently gives zeros
# -------------------------------------
# Writing the loss as a function of ``params`` but calling ``model(x)`` inside it closes over
# the model's own weights: the function does not depend on its argument at all, and
# :func:`torch.func.hessian` returns zeros without a warning. ``functional_call`` is what puts
# ``params`` into the model.


def closed_over(params):
    return F.mse_loss(model(x), y)  # params unused: the model's own weights are used


zeros = to_matrix(torch.func.hessian(closed_over)(params))
print(f"closed-over weights: largest |H_ij| = {zeros.abs().max():.1f}; right: {H.abs().max():.3f}")
assert not zeros.any()
assert H.abs().max() > 0.1

# %%
# Top eigenvalues by Lanczos, without forming H
# ---------------------------------------------
# :func:`vecgrad.param_hvp` multiplies the Hessian with a vector keyed like the parameters at
# the cost of a few gradients. Wrapped in SciPy's ``scipy.sparse.linalg.LinearOperator`` on
# flat vectors, it is all that ``scipy.sparse.linalg.eigsh`` (Lanczos) needs. The
# reference is :func:`torch.linalg.eigvalsh` of the full matrix.

shapes = [p.shape for p in model.parameters()]


def hessian_times(flat):
    pieces = torch.from_numpy(np.asarray(flat, dtype=np.float64)).split(sizes)
    v = {n: t.reshape(s) for n, t, s in zip(names, pieces, shapes, strict=True)}
    _, hv = vg.param_hvp(model, F.mse_loss, x, y, v)
    return torch.cat([t.reshape(-1) for t in hv.values()]).numpy()


operator = LinearOperator((P, P), matvec=hessian_times, dtype=np.float64)
top = np.sort(eigsh(operator, k=3, which="LA", return_eigenvectors=False))[::-1]
bottom = np.sort(eigsh(operator, k=2, which="SA", return_eigenvectors=False))
exact = torch.linalg.eigvalsh(H)
print(
    "Lanczos top 3:   ",
    np.round(top, 6),
    "\neigvalsh top 3:  ",
    exact[-3:].flip(0).numpy().round(6),
)
print("Lanczos lowest 2:", np.round(bottom, 6))
np.testing.assert_allclose(top, exact[-3:].flip(0).numpy(), rtol=1e-8, atol=1e-10)
np.testing.assert_allclose(bottom, exact[:2].numpy(), rtol=1e-8, atol=1e-10)
assert exact[0] < -1e-3  # the Hessian of a network's loss is indefinite

# %%
# The Gauss-Newton matrix
# -----------------------
# :math:`G = J^\top H_L J`, with :math:`J` the Jacobian of the model's outputs with respect to
# the parameters and :math:`H_L` the Hessian of the loss with respect to the outputs, drops the
# terms of :math:`H` that carry the network's second derivatives. For a squared error
# :math:`H_L` is constant, :math:`2/(N\,k)` times the identity for :math:`N` samples of
# :math:`k` outputs, so :math:`G` is positive semi-definite. :func:`vecgrad.param_ggnvp` gives
# :math:`Gv`; mapped with :func:`torch.func.vmap` over the basis vectors it gives all of
# :math:`G`. The reference builds :math:`J` by :func:`torch.func.jacrev`.

basis = torch.eye(P, dtype=torch.float64).split(sizes, dim=1)
columns = {n: b.reshape(P, *s) for n, b, s in zip(names, basis, shapes, strict=True)}
products = torch.func.vmap(lambda v: vg.param_ggnvp(model, F.mse_loss, x, y, v)[1])(columns)
G = torch.cat([products[n].reshape(P, -1) for n in names], 1)

J = torch.func.jacrev(lambda p: functional_call(model, p, (x,)))(params)
J = torch.cat([J[n].reshape(x.shape[0] * 2, -1) for n in names], 1)  # (N k) x P
torch.testing.assert_close(G, 2 / J.shape[0] * J.T @ J)
eig_G = torch.linalg.eigvalsh(G)
print(f"eigenvalues of H: [{exact[0]:.4f}, {exact[-1]:.4f}]")
print(f"eigenvalues of G: [{eig_G[0]:.1e}, {eig_G[-1]:.4f}]")
assert eig_G[0] > -1e-12

# %%
# Side by side, on one colour scale: the two agree where the network is linear in its
# parameters (the last layer's block, bottom right) and differ in the blocks that involve the
# hidden layer, where the Hessian has curvature of the tanh that the Gauss-Newton matrix leaves
# out.

limit = max(H.abs().max(), G.abs().max()).item()
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
for ax, matrix, title in (
    (axes[0], H, "Hessian H (indefinite)"),
    (axes[1], G, "Gauss-Newton G (PSD)"),
):
    im = ax.imshow(matrix.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    _ = ax.set(title=title, xlabel="parameter j", ylabel="parameter i")
_ = fig.colorbar(im, ax=axes, shrink=0.8)
last = slice(P - 14, P)  # 2.weight and 2.bias: the model is linear in them
torch.testing.assert_close(H[last, last], G[last, last])

# %%
# Time and memory against the parameter count
# -------------------------------------------
# The Hessian holds :math:`P^2` numbers and costs about :math:`P` Hessian-vector products; one
# product holds :math:`P` numbers and costs a few gradients. Widening the hidden layer shows the
# two growing apart (timings are of this machine, printed only). Each product is checked
# against the Hessian it avoids forming.

counts, hessian_times_s, hvp_times_s = [], [], []
for width in (4, 16, 64, 128):
    net = nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 2)).to(torch.float64)
    v = {n: torch.randn_like(p) for n, p in net.named_parameters()}
    blocks = vg.param_hessian(net, F.mse_loss, x, y)
    _, hv = vg.param_hvp(net, F.mse_loss, x, y, v)
    expected = {
        a: sum(torch.tensordot(row[b], v[b], dims=v[b].dim()) for b in row)
        for a, row in blocks.items()
    }
    torch.testing.assert_close(hv, expected)
    n_params = sum(p.numel() for p in net.parameters())
    counts.append(n_params)
    hessian_times_s.append(
        vg.time_call(lambda net=net: vg.param_hessian(net, F.mse_loss, x, y), min_run_time=0.05)
    )
    hvp_times_s.append(
        vg.time_call(lambda net=net, v=v: vg.param_hvp(net, F.mse_loss, x, y, v), min_run_time=0.05)
    )
    print(
        f"P = {n_params:5d}: param_hessian {hessian_times_s[-1] * 1e3:7.2f} ms, "
        f"{n_params**2 * 8 / 1e6:7.3f} MB; param_hvp {hvp_times_s[-1] * 1e3:5.2f} ms, "
        f"{n_params * 8 / 1e3:5.1f} kB"
    )

# %%
# On log-log axes the product stays nearly flat while the Hessian grows with :math:`P`.

fig, ax = plt.subplots(figsize=(6, 4))
_ = ax.loglog(counts, np.array(hessian_times_s) * 1e3, "o-", label="param_hessian (P x P)")
_ = ax.loglog(counts, np.array(hvp_times_s) * 1e3, "s-", label="param_hvp (one product)")
_ = ax.set(xlabel="number of parameters P", ylabel="time per call [ms]", title="Cost against P")
_ = ax.legend()

r"""
A gradient penalty for a Wasserstein critic
===========================================

A WGAN-GP critic is kept close to 1-Lipschitz by penalising, at random points between real and
fake samples, how far the norm of its score's input gradient is from 1. This example shows why
one backward pass with ``grad_outputs`` of ones gives all those gradients at once, checks that
the vecgrad and the plain autograd routes give the same penalty and the same parameter gradient,
and trains a small critic on 2-D data until its gradient norms sit near 1.
"""

import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.testing import assert_close

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# Two distributions in the plane
# ------------------------------
# The "real" samples lie near eight points on a circle of radius 2; the "fake" ones, which a
# generator would produce, come from a Gaussian at the origin. The critic only ever sees
# batches of both, so the two samplers are all we need. Everything is float64, so that the
# routes compared below can be checked with float64's tight tolerance.

dtype = torch.float64


def real_batch(n):
    angle = 2 * math.pi * torch.randint(0, 8, (n,), dtype=dtype) / 8
    centres = 2 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + 0.1 * torch.randn(n, 2, dtype=dtype)


def fake_batch(n):
    return 0.5 * torch.randn(n, 2, dtype=dtype)


def interpolates(real, fake):
    """One random point on the segment between each real and each fake sample."""
    t = torch.rand(real.shape[0], 1, dtype=dtype)
    return t * real + (1 - t) * fake


# %%
# The critic and its scores
# -------------------------
# The critic maps a point of :math:`\mathbb{R}^2` to a score, so a batch of :math:`N` points
# gives a score vector :math:`s \in \mathbb{R}^N`. The penalty needs
# :math:`\nabla_x D(\hat x_i)` for every interpolate :math:`\hat x_i`, i.e. one gradient per
# sample. There is no normalisation layer across the batch: score :math:`i` depends on sample
# :math:`i` alone.

critic = nn.Sequential(
    nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1)
).to(dtype)


def scores(x):
    return critic(x).squeeze(-1)  # (N, 2) -> (N,)


x_hat = interpolates(real_batch(6), fake_batch(6))
print(f"scores of 6 interpolates: shape {tuple(scores(x_hat).shape)}")
assert scores(x_hat).shape == (6,)

# %%
# Why a vector of ones gives per-sample gradients
# -----------------------------------------------
# The Jacobian of :math:`s` with respect to the whole batch has shape :math:`(N, N, 2)`. Its
# block :math:`(i, j)` is :math:`\partial s_i / \partial \hat x_j`, zero unless :math:`i = j`: the
# Jacobian is block diagonal. The vector-Jacobian product with :math:`v = \mathbf 1` sums each
# column of blocks, and every column holds one non-zero block, so
# :math:`(\mathbf 1^\top J)_j = \nabla D(\hat x_j)`. :func:`vecgrad.jacobian` shows the blocks;
# :func:`vecgrad.vjp` with ones returns the diagonal ones, as does
# :func:`vecgrad.batch_jacobian`, which assumes exactly this structure. The Jacobian itself is
# checked against :func:`torch.func.jacrev`.

J = vg.jacobian(scores, x_hat)  # (6, 6, 2)
assert_close(J, torch.func.jacrev(scores)(x_hat))
eye = torch.eye(6, dtype=torch.bool)
diagonal_blocks = J[eye]  # (6, 2): block i of row i
off_diagonal = J[~eye].abs().max()
_, ones_vjp = vg.vjp(scores, x_hat, torch.ones(6, dtype=dtype))
print(f"Jacobian {tuple(J.shape)}, largest off-diagonal entry {off_diagonal:.1e}")
assert off_diagonal == 0
assert_close(ones_vjp, diagonal_blocks)
assert_close(vg.batch_jacobian(scores, x_hat).reshape(6, 2), diagonal_blocks)

# %%
# The block structure is a property of the critic, not of the trick. Put a batch-normalisation
# layer that normalises with the batch's own statistics into a critic and every score depends
# on every sample through the batch's mean and variance: the off-diagonal blocks fill in, and
# the ones-VJP is the gradient of the summed scores, no longer each sample's gradient. The
# :doc:`pitfalls page </pitfalls>` (its section "A vector of ones gives the derivative of each
# output") and
# :ref:`the grad_outputs example <sphx_glr_gallery_01_gradients_plot_02_grad_outputs.py>` show
# the same effect for smaller functions.

norm_layer = nn.BatchNorm1d(16, track_running_stats=False)  # always the batch's statistics
normed = nn.Sequential(nn.Linear(2, 16), norm_layer, nn.Tanh(), nn.Linear(16, 1)).to(dtype)


def normed_scores(x):
    return normed(x).squeeze(-1)


J_bn = vg.jacobian(normed_scores, x_hat)
assert_close(J_bn, torch.func.jacrev(normed_scores)(x_hat))
_, ones_vjp_bn = vg.vjp(normed_scores, x_hat, torch.ones(6, dtype=dtype))
coupling = J_bn[~eye].abs().max()
mismatch = (ones_vjp_bn - J_bn[eye]).abs().max()
print(f"with batch norm: largest off-diagonal entry {coupling:.3f}, ", end="")
print(f"|ones-VJP - diagonal blocks| up to {mismatch:.3f}")
assert_close(ones_vjp_bn, J_bn.sum(dim=0))  # column sums, as for any function
assert coupling > 1e-2
assert mismatch > 1e-2

# %%
# The penalty, three ways
# -----------------------
# For the critic above, the penalty of a batch of interpolates is
#
# .. math::
#
#    P = \frac{\lambda}{N} \sum_{i=1}^N \bigl(\lVert \nabla_x D(\hat x_i) \rVert - 1\bigr)^2 .
#
# It is minimised with respect to the critic's parameters, so the gradients inside it must
# themselves be differentiable: ``create_graph=True`` for :func:`torch.autograd.grad`. The
# results of :func:`vecgrad.vjp` and :func:`vecgrad.batch_jacobian` carry their graph whenever
# something they depend on requires grad, here the critic's parameters (see
# :ref:`differentiable`), so the same penalty built from them can be backpropagated as it is.

lam = 10.0


def penalty(grads):
    return lam * (grads.norm(dim=1) - 1).square().mean()


def autograd_route(x):
    x = x.detach().requires_grad_()
    s = scores(x)
    (grads,) = torch.autograd.grad(s, x, grad_outputs=torch.ones_like(s), create_graph=True)
    return grads


def vjp_route(x):
    return vg.vjp(scores, x, torch.ones(x.shape[0], dtype=dtype))[1]


def batch_jacobian_route(x):
    return vg.batch_jacobian(scores, x).reshape(x.shape)


# %%
# The independent reference is :mod:`torch.func`: the critic as a function of its parameters
# (:func:`torch.func.functional_call`), the gradient of one sample's score with
# :func:`torch.func.grad`, vectorised over the batch with :func:`torch.func.vmap`. The penalty's
# gradient with respect to the parameters is then one more :func:`torch.func.grad`. On a batch of
# 64 interpolates, the three routes must give the same penalty and the same gradient with
# respect to every parameter, within :func:`~torch.testing.assert_close`'s float64 tolerance.
# The last layer's bias shifts every score equally and leaves the input gradients alone, so its
# gradient is zero: ``materialize_grads=True`` returns that zero instead of ``None``.

params = dict(critic.named_parameters())


def func_penalty(p, x):
    def score(xi):
        return torch.func.functional_call(critic, p, (xi.unsqueeze(0),)).squeeze()

    return penalty(torch.func.vmap(torch.func.grad(score))(x))


x_hat = interpolates(real_batch(64), fake_batch(64))
reference = torch.func.grad(func_penalty)({k: v.detach() for k, v in params.items()}, x_hat)
for name, route in [
    ("autograd.grad", autograd_route),
    ("vg.vjp", vjp_route),
    ("vg.batch_jacobian", batch_jacobian_route),
]:
    P = penalty(route(x_hat))
    grads = torch.autograd.grad(P, list(params.values()), materialize_grads=True)
    worst = max((g - reference[k]).abs().max().item() for k, g in zip(params, grads, strict=True))
    print(f"{name:>17}: P = {P.item():.6f}, max |dP/dtheta - torch.func| = {worst:.1e}")
    assert_close(P, func_penalty(params, x_hat))
    for k, g in zip(params, grads, strict=True):
        assert_close(g, reference[k])

# %%
# Training the critic
# -------------------
# The critic maximises the difference of its mean scores on real and fake samples, the estimate
# of the Wasserstein distance, minus the penalty. We take 300 Adam steps on batches of 64 of
# each, the penalty built with :func:`vecgrad.vjp`, and follow the gradient norms on one fixed
# batch of 256 interpolates. Before training they are all well below 1 (a freshly initialised
# network varies slowly); the penalty is what pulls them to 1.

x_eval = interpolates(real_batch(256), fake_batch(256))


def eval_norms():
    with torch.no_grad():
        return vg.batch_jacobian(scores, x_eval).reshape(256, 2).norm(dim=1)


def reference_norms():
    """The same norms from torch.func: the gradient of one score, vectorised over the batch."""
    return torch.func.vmap(torch.func.grad(lambda xi: critic(xi).squeeze()))(x_eval).norm(dim=1)


norms_before = eval_norms()
assert_close(norms_before, reference_norms())
optimizer = torch.optim.Adam(critic.parameters(), lr=5e-3, betas=(0.5, 0.9))
history = [(0, (norms_before - 1).abs().mean().item())]
for step in range(300):
    real, fake = real_batch(64), fake_batch(64)
    distance = critic(real).mean() - critic(fake).mean()
    loss = -distance + penalty(vjp_route(interpolates(real, fake)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 25 == 24:
        history.append((step + 1, (eval_norms() - 1).abs().mean().item()))
norms_after = eval_norms()

# %%
# The check: on the evaluation batch, every gradient norm starts below 0.5, the mean distance of
# the norm from 1 falls from more than 0.5 to less than 0.15, and at least 80% of the norms end
# between 0.8 and 1.2. The norms are computed with :func:`vecgrad.batch_jacobian` under
# :class:`torch.no_grad`, where no graph is needed; before and after training they must equal
# the :mod:`torch.func` reference, and after training the ones-VJP route too.

gap_before = (norms_before - 1).abs().mean().item()
gap_after = (norms_after - 1).abs().mean().item()
inside = ((norms_after - 1).abs() <= 0.2).double().mean().item()
print(f"largest norm before training: {norms_before.max():.3f}")
print(f"mean | |grad D| - 1 |: {gap_before:.3f} before, {gap_after:.3f} after 300 steps")
print(f"fraction of norms in [0.8, 1.2] after training: {inside:.1%}")
assert norms_before.max() < 0.5
assert gap_before > 0.5
assert gap_after < 0.15
assert inside > 0.8
assert_close(norms_after, reference_norms())
assert_close(vjp_route(x_eval).norm(dim=1).detach(), norms_after)

# %%
# On the left, the trained critic's scores: they rise from the fake samples towards the real
# ones (every real sample plotted scores above the mean score of the fake ones), with slope close
# to 1 between them. On the right, the distance of the gradient norms
# from 1 during training, on the fixed evaluation batch.

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
grid = torch.linspace(-3, 3, 121, dtype=dtype)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
with torch.no_grad():
    field = scores(torch.stack([gx.ravel(), gy.ravel()], dim=1)).reshape(gx.shape)
contour = left.contourf(gx, gy, field, levels=20, cmap="viridis")
fig.colorbar(contour, ax=left, label="critic score")
real, fake = real_batch(200), fake_batch(200)
with torch.no_grad():
    assert scores(real).min() > scores(fake).mean()
# Colours that show on the colour map and on the legend's light or dark box alike.
left.scatter(real[:, 0], real[:, 1], s=5, c="tab:red", label="real")
left.scatter(fake[:, 0], fake[:, 1], s=5, c="tab:cyan", label="fake")
left.legend(loc="lower right")
_ = left.set(title="Trained critic", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
steps, gaps = zip(*history, strict=True)
right.plot(steps, gaps, "o-")
_ = right.set(
    title="Gradient norms on the evaluation batch",
    xlabel="training step",
    ylabel=r"mean $|\,\|\nabla_x D(\hat x)\| - 1|$",
    ylim=(0, None),
)
fig.tight_layout()

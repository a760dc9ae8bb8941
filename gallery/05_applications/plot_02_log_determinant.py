r"""
Change of variables: the log-determinant of a Jacobian
======================================================

An invertible map :math:`f` turns a random variable :math:`z` with density :math:`p_Z` into
:math:`x = f(z)` with density :math:`p_X(x) = p_Z(z) / |\det J_f(z)|`. This example builds a small
normalising flow in two dimensions, computes :math:`\log |\det J_f|` for every sample with
:func:`vecgrad.batch_jacobian`, checks it against the closed form, and checks that the resulting
density integrates to one.
"""

import math

import matplotlib.pyplot as plt
import torch

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# Two affine coupling layers
# --------------------------
# An affine coupling layer keeps one coordinate and scales and shifts the other by amounts that
# depend only on the kept one. Two of them, each keeping a different coordinate, give
#
# .. math::
#
#    y_2 = z_2\, e^{s_1(z_1)} + t_1(z_1), \qquad
#    x_1 = z_1\, e^{s_2(y_2)} + t_2(y_2), \qquad x = f(z) = (x_1, y_2),
#
# with :math:`s_1 = \tfrac12 \tanh`, :math:`t_1(a) = \tfrac12 a^2 - 1`,
# :math:`s_2 = -0.4 \tanh` and :math:`t_2 = 0.8 \sin`. Each layer's Jacobian is triangular with
# diagonal :math:`(1, e^{s_1})` or :math:`(e^{s_2}, 1)`, so the chain rule gives the closed form
# :math:`\log|\det J_f(z)| = s_1(z_1) + s_2(y_2)`, and both layers invert in closed form too.
# ``f`` and ``f_inverse`` act on the last axis, so they map a batch row by row.


def s1(a):
    return 0.5 * torch.tanh(a)


def t1(a):
    return 0.5 * a**2 - 1.0


def s2(c):
    return -0.4 * torch.tanh(c)


def t2(c):
    return 0.8 * torch.sin(c)


def f(z):
    z1, z2 = z[..., 0], z[..., 1]
    y2 = z2 * torch.exp(s1(z1)) + t1(z1)
    x1 = z1 * torch.exp(s2(y2)) + t2(y2)
    return torch.stack((x1, y2), dim=-1)


def f_inverse(x):
    x1, y2 = x[..., 0], x[..., 1]
    z1 = (x1 - t2(y2)) * torch.exp(-s2(y2))
    z2 = (y2 - t1(z1)) * torch.exp(-s1(z1))
    return torch.stack((z1, z2), dim=-1)


def log_det_closed_form(z):
    return s1(z[..., 0]) + s2(f(z)[..., 1])


z = torch.randn(1000, 2, dtype=torch.float64)
x = f(z)
print("max |f_inverse(f(z)) - z| =", (f_inverse(x) - z).abs().max().item())
torch.testing.assert_close(f_inverse(x), z)

# %%
# One Jacobian per sample
# -----------------------
# ``f`` treats each row of the batch on its own, so :func:`vecgrad.batch_jacobian` returns all
# 1000 Jacobians, shape ``(1000, 2, 2)``, from two VJPs (one per output coordinate), run as one
# vectorised backward pass. :func:`torch.linalg.slogdet` then gives :math:`\log|\det J|` for
# each, which must match the closed form. The Jacobian is never singular: each layer's diagonal
# is an exponential.

J = vg.batch_jacobian(f, z)
sign, log_det = torch.linalg.slogdet(J)
print("Jacobians:", tuple(J.shape))
print("log|det J| for the first 4 samples:", log_det[:4])
print("closed form:                       ", log_det_closed_form(z[:4]))
torch.testing.assert_close(log_det, log_det_closed_form(z))
torch.testing.assert_close(sign, torch.ones(1000, dtype=torch.float64))

# %%
# The same per-sample Jacobian, taken one sample at a time with :func:`vecgrad.jacobian`, agrees;
# and the Jacobian of the inverse map at :math:`x = f(z)` is the inverse matrix, so the two
# log-determinants add up to zero.

for i in range(3):
    torch.testing.assert_close(vg.jacobian(f, z[i]), J[i])
J_inverse = vg.batch_jacobian(f_inverse, x)
log_det_inverse = torch.linalg.slogdet(J_inverse)[1]
print("max |log|det J_f| + log|det J_f^-1|| =", (log_det + log_det_inverse).abs().max().item())
torch.testing.assert_close(J_inverse @ J, torch.eye(2, dtype=torch.float64).expand(1000, 2, 2))
torch.testing.assert_close(log_det_inverse, -log_det)

# %%
# The density on a grid
# ---------------------
# With a standard normal :math:`p_Z`, the change of variables reads
#
# .. math::
#
#    \log p_X(x) = \log p_Z(z) - \log|\det J_f(z)|, \qquad z = f^{-1}(x).
#
# ``log_density`` evaluates it at a batch of points, with one call to
# :func:`vecgrad.batch_jacobian` for all of them; ``with_log_det=False`` leaves out the
# log-determinant, for a comparison below.


def log_normal(z):
    return -0.5 * (z**2).sum(dim=-1) - math.log(2 * math.pi)


def log_density(x, with_log_det=True):
    z = f_inverse(x)
    if not with_log_det:
        return log_normal(z)
    return log_normal(z) - torch.linalg.slogdet(vg.batch_jacobian(f, z))[1]


# %%
# We evaluate it at the centres of the cells of a grid of spacing :math:`h` on the box
# :math:`[-8.5, 8.5] \times [-9.5, 20.5]`, which cells of side :math:`h = 0.1` and :math:`2h`
# both tile exactly.


def grid(h):
    x1 = torch.arange(-8.5 + h / 2, 8.5, h, dtype=torch.float64)
    x2 = torch.arange(-9.5 + h / 2, 20.5, h, dtype=torch.float64)
    X1, X2 = torch.meshgrid(x1, x2, indexing="xy")
    return X1, X2, torch.stack((X1, X2), dim=-1).reshape(-1, 2)


h = 0.1
X1, X2, points = grid(h)
density = log_density(points).exp().reshape(X1.shape)
print("grid:", tuple(X1.shape), "cells")
assert X1.shape == (300, 170)

# %%
# Does it integrate to one?
# -------------------------
# The sum of density times cell area (the midpoint rule) differs from 1 for two reasons:
#
# * **Mass outside the box.** For :math:`\|z\| \le 5`, :math:`|x_1| \le 5 e^{0.4} + 0.8 < 8.5`
#   and :math:`-9.5 < -5 e^{0.5} - 1 \le y_2 \le 5 e^{0.5} + 12.5 - 1 < 20`, so the box holds
#   the image of that disc, and the mass outside is at most
#   :math:`P(\|z\| > 5) = e^{-25/2} \approx 3.7 \times 10^{-6}` (:math:`\|z\|^2` is
#   :math:`\chi^2_2`).
# * **Quadrature error.** For a smooth density that is negligible at the edges of the box, the
#   midpoint rule converges faster than any power of :math:`h`. The change from a grid twice as
#   coarse, :math:`2h`, therefore estimates the coarser grid's error, and ours is smaller still.
#
# Together that is below the tolerance of :math:`10^{-5}` asserted.

total = density.sum().item() * h**2
total_coarse = log_density(grid(2 * h)[2]).exp().sum().item() * (2 * h) ** 2
print(f"integral, h = {h}: 1 {total - 1:+.1e}")
print(f"integral, h = {2 * h}: 1 {total_coarse - 1:+.1e}")
assert abs(total - total_coarse) < 2e-6
assert abs(total - 1) < 1e-5

# %%
# Leaving out the log-determinant, a common slip, gives a "density" :math:`p_Z(f^{-1}(x))`.
# Substituting :math:`x = f(z)`, :math:`dx = |\det J_f(z)|\,dz`, it integrates to
# :math:`E_z|\det J_f(z)| \approx 1.21` instead of 1. The reference computes that expectation
# with the midpoint rule in :math:`z`, on :math:`[-8, 8]^2` with spacing 0.05, from the closed
# form.

total_no_det = log_density(points, with_log_det=False).exp().sum().item() * h**2
z_axis = torch.arange(-8 + 0.025, 8, 0.05, dtype=torch.float64)
zz = torch.stack(torch.meshgrid(z_axis, z_axis, indexing="xy"), dim=-1).reshape(-1, 2)
reference = (log_normal(zz) + log_det_closed_form(zz)).exp().sum().item() * 0.05**2
print(f"without log|det J|: {total_no_det:.9f}; E|det J_f| = {reference:.9f}")
assert abs(total_no_det - reference) < 1e-6

# %%
# The same argument, checked on samples: no image of 10,000 points drawn uniformly from the disc
# :math:`\|z\| \le 5` (a uniform direction, radius :math:`5\sqrt{u}`) nor of 1,000 points on
# its edge leaves the box.

direction = torch.randn(11_000, 2, dtype=torch.float64)
direction = direction / direction.norm(dim=-1, keepdim=True)
radius = torch.cat(
    (5 * torch.rand(10_000, 1, dtype=torch.float64).sqrt(), torch.full((1000, 1), 5.0))
)
image = f(direction * radius)
assert image[:, 0].abs().max() < 8.5
assert image[:, 1].min() > -9.5
assert image[:, 1].max() < 20

# %%
# The density, with 300 samples :math:`f(z)` drawn by pushing standard normal points through the
# flow: the samples fall where the density is high. The quadratic shift :math:`t_1` lifts both
# tails of :math:`z_1` into two arms, and the second layer's :math:`\sin` shift and
# :math:`\tanh` scale push them sideways by different amounts.

fig, ax = plt.subplots(figsize=(5.5, 5))
mesh = ax.pcolormesh(X1.numpy(), X2.numpy(), density.numpy(), cmap="viridis", shading="auto")
samples = f(torch.randn(300, 2, dtype=torch.float64))
_ = ax.plot(samples[:, 0], samples[:, 1], ".", color="white", markersize=2, alpha=0.7)
_ = fig.colorbar(mesh, ax=ax, label=r"$p_X(x)$")
_ = ax.set(title=r"Density of $x = f(z)$, $z \sim N(0, I)$", xlabel=r"$x_1$", ylabel=r"$x_2 = y_2$")
_ = ax.set(xlim=(-4.5, 4.5), ylim=(-4.5, 6))

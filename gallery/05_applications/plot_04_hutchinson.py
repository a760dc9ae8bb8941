"""
A Jacobian regulariser from random vector-Jacobian products
===========================================================

A Jacobian penalty :math:`\\lVert \\partial f / \\partial x\\rVert_F^2` keeps a network's outputs
from changing quickly with its inputs. Hutchinson's estimator replaces its exact value by random
vector-Jacobian products; this example shows the estimate converging to the exact value as probes
are added, checks that it is unbiased, and estimates the trace of a Hessian the same way.
"""

import math

import matplotlib.pyplot as plt
import torch
from torch import nn

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# The quantity to estimate
# ------------------------
# A network maps each of :math:`N = 8` samples from :math:`\mathbb{R}^8` to :math:`\mathbb{R}^{16}`
# through one tanh layer. The penalty sums the squared Frobenius norms of the per-sample
# Jacobians, which is the squared norm of the Jacobian of the whole batch: its blocks between
# different samples are zero. :func:`vecgrad.jacobian` gives that ``(8, 16, 8, 8)`` Jacobian; the
# reference is the hand-derived :math:`J_i = W_2 \operatorname{diag}(1 - \tanh^2(W_1 x_i + b_1))
# W_1`. Everything is float64.

model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 16)).double()
# Here the estimates are only looked at: frozen weights keep vecgrad from recording a graph back
# to them (training with the penalty is the next example's subject).
model.requires_grad_(False)
x = torch.randn(8, 8, dtype=torch.float64)
J = vg.jacobian(model, x)
exact = float(J.square().sum())

w1, b1, w2 = model[0].weight.detach(), model[0].bias.detach(), model[2].weight.detach()
slope = 1 - torch.tanh(x @ w1.T + b1) ** 2  # (N, 32)
J_by_hand = torch.einsum("oh,nh,hi->noi", w2, slope, w1)  # (N, 16, 8)
print(f"||J||_F^2 = {exact:.6f}, by hand {float(J_by_hand.square().sum()):.6f}")
torch.testing.assert_close(torch.diagonal(J, dim1=0, dim2=2).permute(2, 0, 1), J_by_hand)
torch.testing.assert_close(J.square().sum(), J_by_hand.square().sum())

# %%
# Hutchinson's estimator
# ----------------------
# For a probe :math:`z` of independent random signs in output space, :math:`\mathbb{E}[z z^\top]
# = I`, so
#
# .. math::
#
#    \mathbb{E}\,\lVert J^\top z\rVert^2 = \mathbb{E}\, z^\top J J^\top z
#    = \operatorname{tr}(J J^\top) = \lVert J\rVert_F^2 .
#
# Each probe costs one vector-Jacobian product, against 16 vectorised VJPs for the exact
# per-sample value with :func:`vecgrad.batch_jacobian` (128 for the whole-batch Jacobian); the
# estimator pays off when outputs are many and no such structure exists.
# :func:`vecgrad.hutchinson` returns one estimate per probe; their mean is the
# estimate from :math:`k` probes. The spread of a single estimate is known exactly too: with
# :math:`A = J J^\top`, its variance is :math:`2 \sum_{i \ne j} A_{ij}^2`.

J_flat = J.reshape(128, 64)
A = J_flat @ J_flat.T
sigma = math.sqrt(2 * float(A.square().sum() - A.diagonal().square().sum()))
generator = torch.Generator().manual_seed(0)
single = vg.hutchinson(model, x, num_samples=20_000, generator=generator)
print(f"one probe: mean {float(single.mean()):.4f}, std {float(single.std()):.4f}")
print(f"exact:     value {exact:.4f}, std {sigma:.4f} ({sigma / exact:.0%} of the value)")
assert abs(float(single.mean()) - exact) < 4 * sigma / math.sqrt(20_000)
assert abs(float(single.std()) / sigma - 1) < 0.05

# %%
# The estimate against the number of probes
# -----------------------------------------
# To see how the estimate from :math:`k` probes spreads, draw it 100 times for each :math:`k`:
# 100 repetitions of 512 probes, the estimate from :math:`k` probes being the mean of the first
# :math:`k` of a repetition. ``chunk_size`` bounds how many of the 51 200 products are computed
# at once; it does not change the result.

repeats, ks = 100, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
estimates = vg.hutchinson(
    model, x, num_samples=repeats * ks[-1], chunk_size=8192, generator=generator
).reshape(repeats, ks[-1])
means = torch.stack([estimates[:, :k].mean(dim=1) for k in ks], dim=1)  # (repeats, len(ks))
centre, spread = means.mean(dim=0), means.std(dim=0)
for k, c, s in zip(ks, centre.tolist(), spread.tolist(), strict=True):
    print(f"k = {k:>3}: {c:.4f} ± {s:.4f} (predicted ± {sigma / math.sqrt(k):.4f})")

# %%
# The band shrinks like :math:`\sigma / \sqrt{k}` around the exact value. The checks: at every
# :math:`k` the average of the 100 estimates is within four of its standard errors of the exact
# value, and their spread within 25% of :math:`\sigma / \sqrt{k}` (the spread of 100 draws is
# itself uncertain by about 7%).

predicted = torch.tensor([sigma / math.sqrt(k) for k in ks], dtype=torch.float64)
fig, ax = plt.subplots()
ax.fill_between(ks, centre - spread, centre + spread, alpha=0.3, label="mean ± std of 100 runs")
ax.plot(ks, centre, "o-", label="mean of 100 runs")
ax.plot(ks, exact + predicted, "k--", linewidth=1, label=r"exact $\pm\ \sigma / \sqrt{k}$")
ax.plot(ks, exact - predicted, "k--", linewidth=1)
ax.axhline(exact, color="k", linewidth=1)
ax.set_xscale("log", base=2)
ax.legend()
_ = ax.set(title=r"Hutchinson estimate of $\|J\|_F^2$", xlabel="probes k", ylabel="estimate")

assert torch.all((centre - exact).abs() < 4 * spread / math.sqrt(repeats))
assert torch.all((spread / predicted - 1).abs() < 0.25)

# %%
# Unbiased over seeds
# -------------------
# A penalty in training is usually estimated with a single probe per step, so what matters most
# is that one probe is right on average. Over 200 seeds, each drawing one probe, the mean must be
# within four standard errors (:math:`4\sigma / \sqrt{200}`) of the exact value. A correct
# estimator fails this with a probability of about :math:`6 \times 10^{-5}` for a random set of
# seeds; one biased by more than :math:`4\sigma / \sqrt{200} \approx 0.28\,\sigma` fails it more
# often than not.

draws = torch.cat(
    [
        vg.hutchinson(model, x, num_samples=1, generator=torch.Generator().manual_seed(seed))
        for seed in range(200)
    ]
)
z_score = (float(draws.mean()) - exact) / (sigma / math.sqrt(200))
print(f"mean of 200 seeds {float(draws.mean()):.4f}, exact {exact:.4f}, z = {z_score:+.2f}")
assert abs(z_score) < 4

# %%
# The trace of a Hessian, the same way
# ------------------------------------
# With probes in input space, :math:`\mathbb{E}\, z^\top H z = \operatorname{tr} H` for the
# Hessian :math:`H` of a scalar; each probe costs one Hessian-vector product
# (``quantity="hessian_trace"``). Here :math:`H` is the Hessian of the squared error of the
# network with respect to its 64 inputs, and the reference its trace from
# :func:`vecgrad.hessian`; as above, the mean of 4000 probes must lie within four standard errors
# of it, the variance again following from the exact :math:`H`.

target = torch.randn(8, 16, dtype=torch.float64)


def squared_error(inputs):
    return 0.5 * (model(inputs) - target).square().sum()


H = vg.hessian(squared_error, x).reshape(64, 64)
sigma_h = math.sqrt(2 * float(H.square().sum() - H.diagonal().square().sum()))
traces = vg.hutchinson(
    squared_error, x, num_samples=4000, quantity="hessian_trace", generator=generator
)
z_score = float(traces.mean() - H.trace()) / (sigma_h / math.sqrt(4000))
print(f"tr H = {float(H.trace()):.4f}, mean of 4000 probes {float(traces.mean()):.4f}, ", end="")
print(f"z = {z_score:+.2f}")
assert abs(z_score) < 4

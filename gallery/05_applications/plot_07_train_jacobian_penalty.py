r"""
Training with a Jacobian penalty
================================

The :ref:`Hutchinson example <sphx_glr_gallery_05_applications_plot_04_hutchinson.py>` estimated
a network's squared Jacobian norm from random vector-Jacobian products. Here the one-probe
estimate is used as a training penalty: we check that its gradient with respect to the
parameters is right on average, then show that it trains a network that fits the same data
with a much smaller Jacobian.
"""

import copy
import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.testing import assert_close

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A small regression task
# -----------------------
# The targets come from a narrow "teacher" network, :math:`\mathbb{R}^8 \to \mathbb{R}^{16}`
# through 4 tanh units, plus Gaussian noise of standard deviation 0.3 on every output. There
# are only :math:`N = 16` training samples, far fewer target values (256) than the student has
# parameters (816), so the student can fit them exactly, noise included; 256 noise-free
# held-out samples measure what it learnt. The student is the network of the Hutchinson
# example, 8 inputs, 32 tanh units, 16 outputs. Everything is float64.

dtype = torch.float64
teacher = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 16)).to(dtype)
teacher.requires_grad_(False)
x_train, x_test = torch.randn(16, 8, dtype=dtype), torch.randn(256, 8, dtype=dtype)
noise_std = 0.3
y_train = teacher(x_train) + noise_std * torch.randn(16, 16, dtype=dtype)
y_test = teacher(x_test)
student = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 16)).to(dtype)
n_params = sum(p.numel() for p in student.parameters())
print(f"{y_train.numel()} training targets, {n_params} parameters")
assert (y_train.numel(), n_params) == (256, 816)

# %%
# The penalty and its one-probe estimate
# --------------------------------------
# The penalty is the mean squared Frobenius norm of the per-sample Jacobians,
#
# .. math::
#
#    R(\theta) = \frac1N \sum_{i=1}^N \lVert J_i(\theta) \rVert_F^2, \qquad
#    J_i = \frac{\partial f_\theta(x_i)}{\partial x_i},
#
# which is :math:`1/N` times the squared norm of the whole batch's Jacobian (its blocks between
# different samples are zero). Exactly, it is :func:`vecgrad.jacobian` squared and summed; the
# estimate is :func:`vecgrad.hutchinson` with one probe, one vector-Jacobian product. Both
# results carry the autograd graph back to the student's parameters, which they close over, so
# either can be added to a loss and backpropagated (:ref:`differentiable` states the rule).


def exact_penalty(model, x):
    return vg.jacobian(model, x).square().sum() / x.shape[0]


def one_probe_penalty(model, x, generator=None):
    return vg.hutchinson(model, x, num_samples=1, generator=generator).sum() / x.shape[0]


# %%
# The reference for the exact penalty and its gradient is written with :mod:`torch.func` alone:
# each sample's Jacobian with :func:`torch.func.jacrev`, vectorised over the batch with
# :func:`torch.func.vmap`, the parameters passed in with :func:`torch.func.functional_call`,
# and the gradient with :func:`torch.func.grad`. The output bias :math:`b_2` shifts every output
# by a constant and does not enter :math:`J`, so the gradient with respect to it is zero
# (``materialize_grads=True`` returns that zero instead of ``None``).

params = dict(student.named_parameters())


def reference_penalty(p, x):
    def one_sample(xi):
        return torch.func.functional_call(student, p, (xi,))

    return torch.func.vmap(torch.func.jacrev(one_sample))(x).square().sum() / x.shape[0]


R = exact_penalty(student, x_train)
exact_grad = torch.autograd.grad(R, list(params.values()), materialize_grads=True)
reference = torch.func.grad(reference_penalty)({k: v.detach() for k, v in params.items()}, x_train)
print(f"R(theta) = {R.item():.6f}, torch.func: {reference_penalty(params, x_train).item():.6f}")
assert_close(R, reference_penalty(params, x_train))
for name, g in zip(params, exact_grad, strict=True):
    assert_close(g, reference[name])
assert torch.all(exact_grad[3] == 0)  # the output bias

# %%
# The estimate's gradient is unbiased
# -----------------------------------
# For a fixed probe :math:`z`, :math:`\lVert J^\top z\rVert^2` is a smooth function of
# :math:`\theta`, so the gradient of its mean over probes is the mean of its gradients:
# :math:`\mathbb{E}_z \nabla_\theta \hat R = \nabla_\theta\, \mathbb{E}_z \hat R = \nabla_\theta R`.
# To check it we draw :math:`K = 500` one-probe estimates, each from its own call of
# :func:`vecgrad.hutchinson` as in training, and backpropagate each to the 800 parameters that
# enter the penalty (:math:`W_1, b_1, W_2`).

K = 500
entering = list(params.values())[:3]
generator = torch.Generator().manual_seed(1)


def one_probe_gradient():
    grads = torch.autograd.grad(one_probe_penalty(student, x_train, generator), entering)
    return torch.cat([g.ravel() for g in grads])


draws = torch.stack([one_probe_gradient() for _ in range(K)])  # (K, 800)
exact_flat = torch.cat([g.ravel() for g in exact_grad[:3]])
print(f"{K} one-probe gradients of {draws.shape[1]} entries each")
assert draws.shape == (K, 800)

# %%
# The tolerance comes from the draws' own spread. With :math:`s_j` the standard deviation of
# entry :math:`j` over the draws, the mean's standard error is :math:`s_j / \sqrt{K}`, and for an
# unbiased estimator :math:`z_j = (\bar g_j - \nabla_j R) / (s_j / \sqrt K)` is close to a
# standard normal. We require :math:`|z_j| < 5` for all 800 entries: a standard normal variable
# exceeds 5 in absolute value with probability :math:`5.7 \times 10^{-7}`, so even 800 of them
# pass with probability above 0.9995. The same test along the exact gradient's direction, one
# number, must give :math:`|z| < 4`. A single draw is very noisy: the norm of its spread is
# between half and twice the norm of the gradient itself. The mean of 500 is within 10% of the
# exact gradient, and within twice the standard error that spread predicts.

mean, spread = draws.mean(dim=0), draws.std(dim=0)
z = (mean - exact_flat) / (spread / math.sqrt(K))
direction = exact_flat / exact_flat.norm()
along = draws @ direction
z_along = (along.mean() - exact_flat.norm()) / (along.std() / math.sqrt(K))
relative_error = ((mean - exact_flat).norm() / exact_flat.norm()).item()
relative_spread = (spread.square().sum().sqrt() / exact_flat.norm()).item()
print(f"largest |z_j| over 800 entries: {z.abs().max():.2f}; along the gradient z = {z_along:+.2f}")
print(f"one draw: relative spread {relative_spread:.2f}; mean of {K}: relative error ", end="")
print(f"{relative_error:.3f} (standard error {relative_spread / math.sqrt(K):.3f})")
assert z.abs().max() < 5
assert abs(z_along) < 4
assert 0.5 < relative_spread < 2
assert relative_error < 0.1
assert relative_error < 2 * relative_spread / math.sqrt(K)

# %%
# Training with and without the penalty
# -------------------------------------
# Two copies of the student start from the same weights. Both minimise the squared error summed
# over the 16 outputs and averaged over the 16 training samples ("MSE per sample" below), with
# Adam for 400 full-batch steps; the second adds
# :math:`\lambda \hat R` with :math:`\lambda = 0.02`, a fresh probe at every step. The
# exact :math:`\lVert J\rVert_F` (root mean square over the samples) is recorded every 20 steps,
# from the per-sample Jacobians of :func:`vecgrad.batch_jacobian`, which skips the zero blocks
# between samples.


def task_loss(model, x, y):
    return (model(x) - y).square().sum(dim=1).mean()


def jacobian_norm(model, x):
    with torch.no_grad():  # a measurement: no graph needed
        per_sample = vg.batch_jacobian(model, x)  # (N, 16, 8), without the zero blocks
    return per_sample.square().sum(dim=(1, 2)).mean().sqrt().item()


def train(lam, steps=400):
    model = copy.deepcopy(student)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(2)
    curve = []
    for step in range(steps + 1):
        loss = task_loss(model, x_train, y_train)
        if step % 20 == 0:
            curve.append((step, loss.item(), jacobian_norm(model, x_train)))
        if step == steps:
            return model, curve
        if lam > 0:
            loss = loss + lam * one_probe_penalty(model, x_train, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


plain, plain_curve = train(lam=0.0)
regularised, regularised_curve = train(lam=0.02)

# %%
# Comparable fit, smaller Jacobian
# --------------------------------
# "Comparable task loss" here means that both students fit the training targets: a mean squared
# error per sample below 0.01, under 1% of the noise they contain
# (:math:`16 \times 0.3^2 = 1.44` per sample). With the fit that close, the penalty decides which
# of the many fitting networks training finds: the regularised student's
# :math:`\lVert J\rVert_F` on the training inputs must be less than half the plain one's. On the
# held-out samples its Jacobian is smaller too, and its error less than a third of the plain
# one's. Neither student learns the teacher, though: both do worse there than the constant
# prediction "the mean of the training targets". The noise (1.44 per sample) is larger than the
# teacher's own variation (the variance of its outputs, summed over them), and 16 samples are too
# few to tell the two apart. The Jacobian norms printed here are checked against the
# :mod:`torch.func` reference above.


def summary(model):
    with torch.no_grad():
        fit, held_out = task_loss(model, x_train, y_train), task_loss(model, x_test, y_test)
    return fit.item(), jacobian_norm(model, x_train), held_out.item(), jacobian_norm(model, x_test)


rows = {"plain": summary(plain), "regularised": summary(regularised)}
for name, (fit, jac, test, jac_test) in rows.items():
    print(f"{name:>11}: train MSE {fit:.1e}, ||J||_F {jac:.3f}; ", end="")
    print(f"held-out MSE {test:.3f}, ||J||_F {jac_test:.3f}")
constant = (y_test - y_train.mean(dim=0)).square().sum(dim=1).mean().item()
signal = y_test.var(dim=0, correction=0).sum().item()
print(f"held-out MSE of the training targets' mean {constant:.3f}; teacher's variance {signal:.3f}")
(fit_p, jac_p, test_p, jac_test_p), (fit_r, jac_r, test_r, jac_test_r) = rows.values()
assert fit_p < 1e-6  # the noise fitted exactly
assert fit_r < 0.01
assert jac_r < 0.5 * jac_p
assert jac_test_r < jac_test_p
assert test_r < test_p / 3
assert constant < test_r
assert signal < 16 * noise_std**2
for model, (_, jac, _, jac_test) in zip([plain, regularised], rows.values(), strict=True):
    weights = {k: v.detach() for k, v in model.named_parameters()}
    assert_close(jac, reference_penalty(weights, x_train).sqrt().item())
    assert_close(jac_test, reference_penalty(weights, x_test).sqrt().item())

# %%
# The training curves: from step 40 on the penalty slows the fit, but both students pass below
# 0.01, the plain one much further, as it fits the noise exactly. Both Jacobians grow at first;
# the plain one rises to a plateau and stays there (its last value is within 1% of its largest),
# while the regularised one turns down and ends at least 20% below its peak.

plain_losses = [loss for _, loss, _ in plain_curve]
regularised_losses = [loss for _, loss, _ in regularised_curve]
plain_norms = [norm for _, _, norm in plain_curve]
regularised_norms = [norm for _, _, norm in regularised_curve]
assert all(r > p for r, p in zip(regularised_losses[2:], plain_losses[2:], strict=True))
assert plain_norms[1] > plain_norms[0]
assert regularised_norms[1] > regularised_norms[0]
assert plain_norms[-1] > 0.99 * max(plain_norms)
assert regularised_norms[-1] < 0.8 * max(regularised_norms)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for name, curve in [("plain", plain_curve), (r"penalty $\lambda = 0.02$", regularised_curve)]:
    steps, losses, norms = zip(*curve, strict=True)
    left.semilogy(steps, losses, label=name)
    right.plot(steps, norms, label=name)
left.axhline(0.01, color="grey", linestyle=":", label="0.01")
left.legend()
_ = left.set(title="Task loss on the training set", xlabel="step", ylabel="MSE per sample")
right.legend()
_ = right.set(
    title="Jacobian norm on the training inputs", xlabel="step", ylabel=r"$\|J\|_F$ (RMS)"
)
fig.tight_layout()

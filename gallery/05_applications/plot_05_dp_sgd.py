r"""
Per-sample gradient clipping: one DP-SGD step
=============================================

Differentially private SGD (DP-SGD) clips each sample's gradient to a norm :math:`C` fixed in
advance, so that adding or removing one sample changes the summed gradient by at most :math:`C`,
adds Gaussian noise with standard deviation :math:`\sigma C`, and divides by a fixed batch size.
That needs one gradient per sample, not the usual batch gradient. This example takes them from
:func:`vecgrad.per_sample_grads`, checks them against a loop, and makes one
:class:`torch.optim.SGD` step with the noised gradient; it computes no privacy guarantee.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A small classifier and a batch
# ------------------------------
# A two-layer network sorts points of :math:`\mathbb{R}^4` into three classes; the loss is the
# cross-entropy. Everything is float64 so that the comparisons below can be tight.

N, lr, sigma = 64, 0.5, 1.0
model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)).double()
inputs = torch.randn(N, 4, dtype=torch.float64)
targets = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0).long()  # classes 0, 1, 2
loss_fn = nn.functional.cross_entropy
names = [name for name, _ in model.named_parameters()]
print("parameters:", {name: tuple(p.shape) for name, p in model.named_parameters()})

# %%
# Per-sample gradients
# --------------------
# :func:`vecgrad.per_sample_grads` returns a dict keyed like ``model.named_parameters()``; entry
# ``name`` has shape ``(N, *p.shape)`` and row :math:`i` is the gradient of sample :math:`i`'s
# loss. The reference is the obvious loop, one backward pass per sample. As a second check,
# their mean is the ordinary gradient of the mean loss.

grads = vg.per_sample_grads(model, loss_fn, inputs, targets)
print({name: tuple(g.shape) for name, g in grads.items()})
assert list(grads) == names

loop = {name: [] for name in names}
for i in range(N):
    model.zero_grad()
    loss_fn(model(inputs[i : i + 1]), targets[i : i + 1]).backward()
    for name, p in model.named_parameters():
        loop[name].append(p.grad.clone())
model.zero_grad()
loss_fn(model(inputs), targets).backward()
for name, p in model.named_parameters():
    torch.testing.assert_close(grads[name], torch.stack(loop[name]))
    torch.testing.assert_close(grads[name].mean(dim=0), p.grad)
model.zero_grad()

# %%
# Clipping each sample's gradient
# -------------------------------
# A sample's gradient is the whole vector of its parameter gradients, so its norm is taken over
# all parameters together. Each is scaled by :math:`\min(1, C / \|g_i\|)`: gradients shorter than
# :math:`C` stay as they are, longer ones keep their direction and get norm :math:`C`. Here
# :math:`C = 2` is fixed before looking at the data (a threshold taken from the data, such as the
# median norm, would itself leak it); it happens to clip 31 of the 64 samples.


def per_sample_norms(grads):
    return torch.cat([g.flatten(start_dim=1) for g in grads.values()], dim=1).norm(dim=1)


norms = per_sample_norms(grads)
C = 2.0
scale = (C / norms).clamp(max=1.0)
clipped = {name: g * scale.view(-1, *[1] * (g.dim() - 1)) for name, g in grads.items()}
clipped_norms = per_sample_norms(clipped)
print(f"C = {C:.4f}; norms before: {norms.min():.4f} .. {norms.max():.4f}")
print(
    f"after: {clipped_norms.min():.4f} .. {clipped_norms.max():.4f}, "
    f"{int((norms > C).sum())} of {N} clipped"
)
assert int((norms > C).sum()) == 31
torch.testing.assert_close(clipped_norms, norms.clamp(max=C))
short = norms <= C
for name in names:
    torch.testing.assert_close(clipped[name][short], grads[name][short], rtol=0, atol=0)

# %%
# Clipping bounds what one sample can do to the sum: removing sample :math:`i` changes
# :math:`\sum_j \bar g_j` by exactly :math:`\bar g_i`, whose norm is now at most :math:`C`.
# Without clipping there is no such bound: the change is :math:`\|g_i\|`, 2.83 for the largest
# here, and another sample could make it anything. The largest change one sample can make (the
# *sensitivity*) is what the noise is scaled to, and it depends on what is released and on what
# "one sample" means:
#
# * the **sum** :math:`\sum_j \bar g_j` has sensitivity :math:`C` when neighbouring batches differ
#   by adding or removing one sample, and :math:`2C` when one sample is *replaced* by another
#   (:math:`\bar g_i` out, :math:`\bar g_k` in, each of norm at most :math:`C`);
# * the **average** has :math:`C/N` (or :math:`2C/N`), but only if :math:`N` is a fixed, public
#   number: dividing by the actual size of the batch, which the added or removed sample changes,
#   gives no such bound. So DP-SGD noises the sum and divides by a fixed number. With *Poisson
#   sampling*, where each sample of the data set joins a batch independently with a fixed
#   probability :math:`q` and the batch size is therefore random, that number is the expected
#   batch size, :math:`q` times the size of the data set.
#
# Below, both changes of the sum are measured over this batch.

total = {name: c.sum(dim=0) for name, c in clipped.items()}
change = [
    torch.cat([(total[n] - (clipped[n].sum(dim=0) - clipped[n][i])).flatten() for n in names])
    for i in range(N)
]
sensitivity = max(c.norm().item() for c in change)
print(
    f"largest change from removing one sample: {sensitivity:.4f} (clipped), "
    f"{norms.max():.4f} (not clipped)"
)
assert sensitivity <= C * (1 + 1e-12)
flat = torch.cat([c.flatten(1) for c in clipped.values()], dim=1)  # (N, d): one row per sample
replaced = torch.cdist(flat, flat).max().item()  # |g_k - g_i|: sample i replaced by sample k
print(f"largest change from replacing one sample: {replaced:.4f}; 2C = {2 * C}")
assert C < replaced <= 2 * C * (1 + 1e-12)  # more than C: the bound for replacement is 2C
assert abs(norms.max().item() - 2.83) < 0.005

# %%
# Noise and average
# -----------------
# The noised gradient is :math:`\tilde g = \frac1N \left(\sum_i \bar g_i + \sigma C\,\xi
# \right)` with :math:`\xi` standard normal, one entry per parameter, drawn from a seeded
# :class:`torch.Generator`. (The seed makes this page reproducible; real DP-SGD needs
# unpredictable noise, since a known seed lets anyone remove it.) The guarantee DP-SGD gives is
# :math:`(\varepsilon, \delta)`-differential privacy: for any two neighbouring data sets and any
# set :math:`S` of possible results, :math:`P[\text{result} \in S]` on one is at most
# :math:`e^\varepsilon` times that on the other, plus :math:`\delta`. Which
# :math:`(\varepsilon, \delta)` a given :math:`\sigma` buys over a whole training run (many noisy
# steps, each on a sampled batch) is computed by a *privacy accountant*, an algorithm that adds up
# the privacy lost step by step, such as the moments accountant of
# `Abadi et al. (2016) <https://arxiv.org/abs/1607.00133>`_. It is not shown here, and its
# result holds only if :math:`C` does not depend on the data.
# The noise vector has :math:`d` entries, so its norm is about :math:`\sigma C \sqrt d`.


def gaussian_noise(seed):
    generator = torch.Generator().manual_seed(seed)
    return {
        name: sigma * C * torch.randn(p.shape, generator=generator, dtype=torch.float64)
        for name, p in model.named_parameters()
    }


noise = gaussian_noise(seed=1)
noisy = {name: (total[name] + noise[name]) / N for name in names}
d = sum(p.numel() for p in model.parameters())
noise_norm = torch.cat([xi.flatten() for xi in noise.values()]).norm().item()
print(f"d = {d}: |noise| = {noise_norm:.3f}, sigma C sqrt(d) = {sigma * C * d**0.5:.3f}")
assert abs(noise_norm / (sigma * C * d**0.5) - 1) < 0.3
for name, xi in gaussian_noise(seed=1).items():
    assert torch.equal(xi, noise[name])

# %%
# The distribution of per-sample norms before and after clipping: every sample above :math:`C`
# moves into the bar at :math:`C`.

fig, ax = plt.subplots()
width = (norms.max() - norms.min()).item() / 20
bins = (C + width * (torch.arange(-12, 13) - 0.5)).numpy()  # C sits in the middle of a bin
_ = ax.hist(norms.numpy(), bins=bins, alpha=0.6, label="before clipping")
_ = ax.hist(clipped_norms.numpy(), bins=bins, alpha=0.6, label="after clipping")
_ = ax.axvline(C, color="black", linestyle="--", label=f"C = {C:g} (fixed in advance)")
_ = ax.set(title=f"Per-sample gradient norms, N = {N}", xlabel="norm", ylabel="samples")
_ = ax.legend()

# %%
# A real optimiser step
# ---------------------
# The noised gradient goes where an optimiser looks for it, each parameter's ``.grad``, and
# :meth:`torch.optim.SGD.step` does the rest. Plain SGD (no momentum, no weight decay) moves
# every parameter by exactly :math:`-\text{lr}\,\tilde g`. With lr = 0.5, a power of two,
# :math:`-\text{lr}\,\tilde g` is exact, so SGD's fused multiply-add and the reference's
# multiply-then-add round identically and the check below allows no difference at all; for other
# rates they can differ in the last bit.

before = {name: p.detach().clone() for name, p in model.named_parameters()}
optimizer = torch.optim.SGD(model.parameters(), lr=lr)
for name, p in model.named_parameters():
    p.grad = noisy[name].clone()
optimizer.step()
for name, p in model.named_parameters():
    torch.testing.assert_close(p.detach(), before[name] + (-lr) * noisy[name], rtol=0, atol=0)
step = torch.cat([(p.detach() - before[n]).flatten() for n, p in model.named_parameters()])
noisy_norm = torch.cat([g.flatten() for g in noisy.values()]).norm()
print(f"|step| = {step.norm():.5f}, lr * |g~| = {lr * noisy_norm:.5f}")
torch.testing.assert_close(step.norm(), lr * noisy_norm)

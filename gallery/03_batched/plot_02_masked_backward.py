"""
Per-sample gradients from a vector of losses
============================================

A training batch produces one loss per sample. Calling ``backward`` on that vector with a one-hot
mask gives the gradient of a single sample's loss; this example shows how to do it correctly, what
the resulting rows add up to, and why a vectorised method is much faster.
"""

# sphinx_gallery_thumbnail_number = 1

import functools
import textwrap

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A one-layer sigmoid network
# ---------------------------
# A batch :math:`X \in \mathbb{R}^{N \times m}` with targets :math:`y_i \in \{0, 1\}` goes through
# :math:`\hat y = \sigma(X W^\top + b)` with :math:`W` of shape ``(1, m)`` and :math:`b` of shape
# ``(1,)``. The squared errors :math:`\ell_i = (y_i - \hat y_i)^2` form a vector ``losses`` of
# shape ``(N,)``. Everything is in float64 so that the comparisons with the formulas below hold to
# about 1e-15.

N, m = 4, 3
X = torch.randn(N, m, dtype=torch.float64)
y = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
W = torch.randn(1, m, dtype=torch.float64, requires_grad=True)
b = torch.randn(1, dtype=torch.float64, requires_grad=True)


def predict(X, W, b):
    return torch.sigmoid(X @ W.T + b).squeeze(1)  # (N,)


def squared_errors(X, y, W, b):
    return (y - predict(X, W, b)) ** 2  # (N,): one loss per sample


losses = squared_errors(X, y, W, b)
print("losses:", losses.detach())
logits = X @ W.T + b  # (N, 1)
torch.testing.assert_close(losses, (y - 1 / (1 + torch.exp(-logits[:, 0]))) ** 2)

# %%
# ``backward`` on a vector needs a vector
# ---------------------------------------
# ``losses`` has four elements, so ``losses.backward()`` does not know how to weight them and
# refuses. Only a one-element output gets the implicit gradient 1.

try:
    losses.backward()
    message = "no error"
except RuntimeError as err:
    message = str(err)
print("RuntimeError:\n" + textwrap.fill(message, 80))
assert "grad can be implicitly created only for scalar outputs" in message

# %%
# The gradient of the mean loss, two ways
# ---------------------------------------
# The usual training step calls ``backward`` on the mean. By the chain rule the same gradient comes
# from ``losses.backward(v)`` with :math:`v = \partial\,\mathrm{mean} / \partial \ell =
# (1/N, \dots, 1/N)`. The gradients have the shapes of the parameters: ``W.grad`` is ``(1, m)``
# and ``b.grad`` is ``(1,)``, one entry for the single output unit.

squared_errors(X, y, W, b).mean().backward()
grad_mean = (W.grad.clone(), b.grad.clone())
W.grad, b.grad = None, None
squared_errors(X, y, W, b).backward(torch.full((N,), 1 / N, dtype=torch.float64))
print("W.grad of the mean:", grad_mean[0], "\nb.grad of the mean:", grad_mean[1])
torch.testing.assert_close((W.grad, b.grad), grad_mean)
assert W.grad.shape == W.shape == (1, m)
assert b.grad.shape == b.shape == (1,)
W.grad, b.grad = None, None

# %%
# The mean is 0-dimensional, so its implicit gradient is ``torch.tensor(1.0)``, not
# ``torch.Tensor([1])`` (shape ``(1,)``, which PyTorch rejects):
# :ref:`sphx_glr_gallery_01_gradients_plot_01_scalar_gradients.py` shows both.

# %%
# One backward pass per sample
# ----------------------------
# The one-hot mask :math:`e_i` picks out :math:`\ell_i`: ``losses.backward(e_i)`` leaves
# :math:`\partial \ell_i / \partial W` in ``W.grad``. Two details make a loop over samples
# correct. The graph is freed after a backward pass unless ``retain_graph=True``, which every call
# but the last needs. And ``backward`` *adds* into ``.grad``, so each result must be taken out (here
# by setting ``.grad`` to ``None``) before the next call.


def masked_backward(losses, params):
    """One row per sample: a (N, *p.shape) tensor for each parameter p."""
    for p in params:
        p.grad = None
    rows = [[] for _ in params]
    for i in range(len(losses)):
        mask = torch.zeros_like(losses)
        mask[i] = 1.0
        losses.backward(mask, retain_graph=i < len(losses) - 1)
        for row, p in zip(rows, params, strict=True):
            row.append(p.grad)
            p.grad = None  # the next backward starts from nothing
    return tuple(torch.stack(row) for row in rows)


losses = squared_errors(X, y, W, b)
jac_W, jac_b = masked_backward(losses, [W, b])
print("per-sample gradients: W", tuple(jac_W.shape), " b", tuple(jac_b.shape))
assert jac_W.shape == (N, *W.shape)
assert jac_b.shape == (N, *b.shape)

# %%
# The result is the Jacobian of ``losses`` with respect to each parameter, with the usual layout
# ``output.shape + param.shape``: **one row per sample**, ``jac_W[i]`` being
# :math:`\partial \ell_i / \partial W`. Writing it transposed (rows indexed by weights, columns by
# samples) while still calling the rows "per-sample gradients" is a common confusion.
#
# For this model the chain rule gives each row in closed form,
#
# .. math::
#
#    \frac{\partial \ell_i}{\partial W} = -2\,(y_i - \hat y_i)\,\hat y_i\,(1 - \hat y_i)\,x_i,
#    \qquad
#    \frac{\partial \ell_i}{\partial b} = -2\,(y_i - \hat y_i)\,\hat y_i\,(1 - \hat y_i).


def exact_grads(X, y):
    """The closed-form rows: (N, *W.shape) and (N, *b.shape)."""
    y_hat = predict(X, W, b).detach()
    r = -2 * (y - y_hat) * y_hat * (1 - y_hat)  # (N,)
    return r[:, None, None] * X[:, None, :], r[:, None]


print("per-sample dl_i/dW:\n", jac_W[:, 0])
torch.testing.assert_close((jac_W, jac_b), exact_grads(X, y))

# %%
# The mask's scale scales the row
# -------------------------------
# ``losses.backward(v)`` computes :math:`v^\top J = \sum_i v_i \, \partial \ell_i / \partial W`,
# which is linear in :math:`v`. A mask must therefore hold exactly 1 at sample :math:`i`: a mask
# of 0.5 (as some articles write it) returns half the row, and a mask with several nonzero entries
# returns the weighted sum of their rows.

losses = squared_errors(X, y, W, b)
half_mask = torch.zeros(N, dtype=torch.float64)
half_mask[1] = 0.5
(half_row,) = torch.autograd.grad(losses, W, half_mask, retain_graph=True)
weights = torch.tensor([0.5, 0.0, 2.0, 0.0], dtype=torch.float64)
(weighted,) = torch.autograd.grad(losses, W, weights)
print("mask 0.5 e_1:", half_row, "\nrow 1:       ", jac_W[1])
torch.testing.assert_close(half_row, 0.5 * jac_W[1])
torch.testing.assert_close(weighted, 0.5 * jac_W[0] + 2.0 * jac_W[2])

# %%
# What the rows add up to
# -----------------------
# Summing the rows gives the gradient of :math:`\sum_i \ell_i`, which is :math:`N` times the
# gradient of the mean loss, not the gradient of the mean itself. The mean of the rows is the
# gradient of the mean.

squared_errors(X, y, W, b).sum().backward()
grad_sum = (W.grad.clone(), b.grad.clone())
W.grad, b.grad = None, None
print("sum of rows:", jac_W.sum(0), "\ngradient of the mean:", grad_mean[0])
torch.testing.assert_close((jac_W.sum(0), jac_b.sum(0)), grad_sum)
torch.testing.assert_close(jac_W.sum(0), N * grad_mean[0])
torch.testing.assert_close(jac_b.sum(0), N * grad_mean[1])
torch.testing.assert_close((jac_W.mean(0), jac_b.mean(0)), grad_mean)
assert not torch.allclose(jac_W.sum(0), grad_mean[0])

# %%
# Forgetting to reset ``.grad``
# -----------------------------
# Without the reset, what ``W.grad`` holds after call :math:`i` is the running sum
# :math:`\sum_{j \le i} \partial \ell_j / \partial W`: the cumulative sum of the true rows. The last
# "row" is the gradient of the sum of all losses.

losses = squared_errors(X, y, W, b)
accumulated = []
for i in range(N):
    losses.backward(torch.eye(N, dtype=torch.float64)[i], retain_graph=i < N - 1)
    accumulated.append(W.grad.clone())  # no reset: gradients pile up
accumulated = torch.stack(accumulated)
torch.testing.assert_close(accumulated, torch.cumsum(jac_W, dim=0))
torch.testing.assert_close(accumulated[-1], grad_sum[0])
W.grad, b.grad = None, None

# %%
# The two tables for :math:`W` side by side, on one colour scale: each row of the left one is a
# sample's own gradient; on the right each row also carries the rows above it.

limit = float(torch.cat((jac_W, accumulated)).abs().max())
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharey=True, layout="constrained")
for ax, data, title in (
    (axes[0], jac_W[:, 0], "per-sample rows (reset .grad)"),
    (axes[1], accumulated[:, 0], "running sums (no reset)"),
):
    image = ax.imshow(data.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    _ = ax.set(title=title, xlabel="weight index j", xticks=range(m))
_ = axes[0].set(ylabel="sample i", yticks=range(N))
_ = fig.colorbar(image, ax=axes, label=r"$\partial \ell_i / \partial W_j$")

# %%
# Forgetting ``retain_graph``
# ---------------------------
# The first ``backward`` frees the buffers the graph saved for the backward pass, so the second
# mask fails.

losses = squared_errors(X, y, W, b)
losses.backward(torch.eye(N, dtype=torch.float64)[0])
try:
    losses.backward(torch.eye(N, dtype=torch.float64)[1])
    message = "no error"
except RuntimeError as err:
    message = str(err)
print("RuntimeError:\n" + textwrap.fill(message.split(".")[0], 80))
assert "Trying to backward through the graph a second time" in message
W.grad, b.grad = None, None

# %%
# The same rows with vecgrad
# --------------------------
# :func:`vecgrad.loss_jacobian` takes the already computed ``losses`` and the parameters and
# returns the same rows, ``(N, *p.shape)`` each, without touching ``.grad``: a gradient already
# stored there (below, the one of the mean loss) stays as it was. It runs the :math:`N` masked
# passes as one vectorised call, so the Python loop disappears, but each pass still goes through
# the graph of the whole batch.

losses = squared_errors(X, y, W, b)
losses.mean().backward(retain_graph=True)
vg_W, vg_b = vg.loss_jacobian(losses, {"W": W, "b": b}).values()
print("vg.loss_jacobian shapes:", tuple(vg_W.shape), tuple(vg_b.shape))
torch.testing.assert_close((vg_W, vg_b), (jac_W, jac_b))
torch.testing.assert_close((W.grad, b.grad), grad_mean, rtol=0, atol=0)
W.grad, b.grad = None, None

# %%
# With an :class:`torch.nn.Module`, :func:`vecgrad.per_sample_grads` computes the rows without
# building the batch graph at all: it evaluates the loss of one sample,
# ``loss_fn(model(x_i[None]), y_i[None])``, and vectorises its gradient over the batch with
# :func:`torch.func.vmap`. With one sample, the mean squared error is that sample's loss. The result
# is a dictionary keyed by parameter name.

model = nn.Sequential(nn.Linear(m, 1), nn.Sigmoid()).double()
with torch.no_grad():
    model[0].weight.copy_(W)
    model[0].bias.copy_(b)


def loss_fn(output, target):
    return nn.functional.mse_loss(output.squeeze(1), target)


per_sample = vg.per_sample_grads(model, loss_fn, X, y)
print({name: tuple(g.shape) for name, g in per_sample.items()})
torch.testing.assert_close(per_sample["0.weight"], jac_W)
torch.testing.assert_close(per_sample["0.bias"], jac_b)

# %%
# Evaluating samples one at a time is only faithful when samples do not interact in the model.
# Batch normalisation in training mode normalises each sample with statistics of the whole
# batch, so :func:`vecgrad.per_sample_grads` refuses it rather than return gradients of a
# different function.

bn_model = nn.Sequential(nn.Linear(m, 2), nn.BatchNorm1d(2), nn.Linear(2, 1)).double()
try:
    vg.per_sample_grads(bn_model, loss_fn, X, y)
    message = "no error"
except ValueError as err:
    message = str(err)
print("ValueError:\n" + textwrap.fill(message, 80))
assert "per_sample_grads" in message
assert "BatchNorm1d in training mode" in message

# %%
# Cost against batch size
# -----------------------
# The masked loop does :math:`N` backward passes, each through the graph of the *whole* batch:
# :math:`O(N^2)` work in total. The vectorised gradient does one pass over :math:`N` single-sample
# problems: :math:`O(N)` work. As a reference that does not go through vecgrad, ``vmap(grad(...))``
# is written out with :func:`torch.func.functional_call`. All three methods run ``model``; a
# forward hook counts its forward passes, and a hook on the node that produced its output counts
# the backward passes through it. Those counts are what this section asserts.

params = {name: p.detach() for name, p in model.named_parameters()}
passes = {"forward": 0, "backward": 0}


def count_passes(module, inputs, output):
    passes["forward"] += 1
    if output.requires_grad:  # the node runs once per backward pass through it
        output.grad_fn.register_hook(lambda *_: passes.update(backward=passes["backward"] + 1))


_ = model.register_forward_hook(count_passes)


def sample_loss(params, x_i, y_i):
    return loss_fn(functional_call(model, params, (x_i[None],)), y_i[None])


def masked_timed(X, y):
    losses = (y - model(X).squeeze(1)) ** 2
    jW, jb = masked_backward(losses, [model[0].weight, model[0].bias])
    return {"0.weight": jW, "0.bias": jb}


def vmap_grad(X, y):
    return vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)


methods = {
    "masked backward (N passes)": masked_timed,
    "vg.per_sample_grads": lambda X, y: vg.per_sample_grads(model, loss_fn, X, y),
    "torch.func vmap(grad)": vmap_grad,
}

# %%
# For each of four batch sizes, every method is checked against the closed-form gradients and its
# passes are counted; then :func:`vecgrad.time_call` measures its median time per call, on one
# thread (tensors this small gain nothing from a second one).

sizes = [8, 32, 128, 512]
timings = {name: [] for name in methods}
counts = {name: [] for name in methods}
for n in sizes:
    Xn, yn = torch.randn(n, m, dtype=torch.float64), torch.randint(0, 2, (n,)).double()
    dW, db = exact_grads(Xn, yn)
    for name, fn in methods.items():
        passes.update(forward=0, backward=0)
        torch.testing.assert_close(fn(Xn, yn), {"0.weight": dW, "0.bias": db})
        counts[name].append(dict(passes))
        run = functools.partial(fn, Xn, yn)
        timings[name].append(vg.time_call(run, min_run_time=0.05))
for name in methods:
    cells = [f"N={n}: {t * 1e3:.2f} ms" for n, t in zip(sizes, timings[name], strict=True)]
    print(f"{name}  {counts[name][-1]} at N={sizes[-1]}\n   ", "   ".join(cells))

# %%
# Every method runs the model forward once. The masked loop then makes :math:`N` backward passes
# through the graph of the whole batch; the vectorised methods make one, whatever :math:`N` is.

for name, per_size in counts.items():
    expected = [{"forward": 1, "backward": n if "masked" in name else 1} for n in sizes]
    assert per_size == expected, (name, per_size)

# %%
# The timings from the machine that built this page, with reference lines of slopes one and two.
# The vectorised methods stay nearly flat. For a network this small each backward pass costs
# mostly a fixed overhead, so the masked loop's measured slope is near one at these sizes; the
# part of each pass that touches all :math:`N` samples, and with it the slope two, takes over for
# larger models and batches. Times depend on the machine and on what else it was doing, so they
# are shown, not asserted; ``nox -s bench`` checks the speed goals at larger sizes.

fig, ax = plt.subplots()
for name, ts in timings.items():
    ax.loglog(sizes, ts, "o-", label=name)
t0 = timings["masked backward (N passes)"][0]
for power, style in ((1, "k--"), (2, "k:")):
    reference = [t0 * (n / sizes[0]) ** power for n in sizes]
    ax.loglog(sizes, reference, style, lw=0.8, label=f"slope {power}")
ax.legend()
_ = ax.set(
    title="Per-sample gradients of a sigmoid layer",
    xlabel="batch size N",
    ylabel="seconds per call (median)",
)

masked_t = timings["masked backward (N passes)"]
for name in ("vg.per_sample_grads", "torch.func vmap(grad)"):
    print(f"N={sizes[-1]}: masked loop / {name} = {masked_t[-1] / timings[name][-1]:.0f}")

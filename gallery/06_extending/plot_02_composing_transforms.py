r"""
Composing torch.func transforms
===============================

The transforms of :mod:`torch.func` take a function and return a function, so they nest:
``vmap(grad(f))`` gives per-sample gradients, ``jacfwd(jacrev(f))`` a Hessian and
``jvp(grad(f))`` a Hessian-vector product. This example composes them on module parameters and
on a function with a known Hessian, checks every result, and times the ways to a
Hessian-vector product.
"""

import warnings

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.func import functional_call, grad, jacfwd, jacrev, jvp, linearize, vjp, vmap

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A module as a function of its parameters
# ----------------------------------------
# The transforms differentiate functions of tensors, not modules. :func:`torch.func.functional_call`
# runs a module with parameters taken from a dict, so ``loss(params, x, y)`` is an ordinary
# function of the dict and :func:`torch.func.grad` returns a dict of gradients with the same
# keys. The reference is ``loss.backward()``, which fills each parameter's ``.grad``.

model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
params = {name: p.detach() for name, p in model.named_parameters()}
inputs = torch.randn(16, 3, dtype=torch.float64)
targets = torch.randn(16, 1, dtype=torch.float64)


def loss(params, x, y):
    return nn.functional.mse_loss(functional_call(model, params, (x,)), y)


grads = grad(loss)(params, inputs, targets)
nn.functional.mse_loss(model(inputs), targets).backward()
for name, p in model.named_parameters():
    print(f"{name:9s} grad {tuple(grads[name].shape)}")
    torch.testing.assert_close(grads[name], p.grad)

# %%
# Auxiliary outputs
# -----------------
# With ``has_aux=True`` the function returns a pair ``(value, aux)``: only ``value`` is
# differentiated, and ``aux`` (here the predictions, which a training loop wants anyway) comes
# back untouched, saving a second forward pass.


def loss_and_predictions(params, x, y):
    predictions = functional_call(model, params, (x,))
    return nn.functional.mse_loss(predictions, y), predictions


grads_aux, predictions = grad(loss_and_predictions, has_aux=True)(params, inputs, targets)
print("aux:", tuple(predictions.shape), "| gradient keys:", list(grads_aux))
torch.testing.assert_close(predictions, model(inputs).detach())
for name in params:
    torch.testing.assert_close(grads_aux[name], grads[name])

# %%
# vmap of grad: per-sample gradients
# ----------------------------------
# ``grad`` of the loss of *one* sample, vmapped over the batch (``in_dims=(None, 0, 0)``: the
# parameters are shared, inputs and targets are split along their first axis), gives one
# gradient per sample. The sample is given a batch axis of one inside, as the model expects.
# :func:`vecgrad.per_sample_grads` is this composition; the loop is the reference.


def sample_loss(params, x, y):
    return loss(params, x.unsqueeze(0), y.unsqueeze(0))


per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, inputs, targets)
from_vecgrad = vg.per_sample_grads(model, nn.functional.mse_loss, inputs, targets)
loop = [grad(sample_loss)(params, x, y) for x, y in zip(inputs, targets, strict=True)]
for name in params:
    print(f"{name:9s} per-sample {tuple(per_sample[name].shape)}")
    torch.testing.assert_close(per_sample[name], torch.stack([g[name] for g in loop]))
    torch.testing.assert_close(from_vecgrad[name], per_sample[name])
    torch.testing.assert_close(per_sample[name].mean(dim=0), grads[name])

# %%
# A function with a known Hessian
# -------------------------------
# For :math:`f(x) = \log \sum_i e^{(Ax)_i} + \frac{\lambda}{2}\|x\|^2` with :math:`A` of shape
# :math:`m \times n`, :math:`p = \mathrm{softmax}(Ax)` gives
#
# .. math::
#
#    \nabla f = A^\top p + \lambda x, \qquad
#    H = A^\top \left(\mathrm{diag}(p) - p p^\top\right) A + \lambda I.
#
# We take :math:`n = 200`, :math:`m = 100` and :math:`\lambda = 0.1`, in float64.

n, m, lam = 200, 100, 0.1
A = torch.randn(m, n, dtype=torch.float64) / n**0.5
x = torch.randn(n, dtype=torch.float64)
v = torch.randn(n, dtype=torch.float64)


def f(x):
    return torch.logsumexp(A @ x, dim=0) + 0.5 * lam * (x @ x)


p = torch.softmax(A @ x, dim=0)
H = A.T @ (torch.diag(p) - torch.outer(p, p)) @ A + lam * torch.eye(n, dtype=torch.float64)
torch.testing.assert_close(grad(f)(x), A.T @ p + lam * x)

# %%
# Hessians: Jacobians of the gradient
# -----------------------------------
# The Hessian is the Jacobian of :math:`\nabla f`. ``jacfwd(jacrev(f))`` is forward over reverse
# (:math:`n` JVPs of the gradient) and ``jacrev(jacrev(f))`` reverse over reverse (:math:`n`
# VJPs of it); :func:`torch.func.hessian` and :func:`vecgrad.hessian` use the first. (The
# first forward-mode call in a process makes torch 2.13 load its forward-mode rules through the
# deprecated ``torch.jit.script``; we silence exactly that DeprecationWarning, which comes from
# inside torch.)

warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
hessians = {
    "jacfwd(jacrev(f))": jacfwd(jacrev(f))(x),
    "jacrev(jacrev(f))": jacrev(jacrev(f))(x),
    "torch.func.hessian": torch.func.hessian(f)(x),
    "vg.hessian": vg.hessian(f, x),
}
for name, result in hessians.items():
    print(f"{name:18s} max |H - formula| = {(result - H).abs().max():.1e}")
    torch.testing.assert_close(result, H)

# %%
# Hessian-vector products, five ways
# ----------------------------------
# :math:`Hv` needs no Hessian: it is the derivative of :math:`\nabla f` along :math:`v`
# (forward over reverse: ``jvp`` of ``grad``), or the VJP of :math:`\nabla f` with :math:`v`,
# equal because :math:`H` is symmetric (reverse over reverse: ``vjp`` of ``grad``), or the gradient
# of the directional derivative :math:`\nabla f \cdot v` (reverse over forward: ``grad`` of
# ``jvp``). :func:`torch.autograd.grad` with ``create_graph=True`` does reverse over reverse
# without :mod:`torch.func`, and :func:`vecgrad.hvp` does forward over reverse.


def hvp_autograd(v):
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(f(xr), xr, create_graph=True)
    return torch.autograd.grad(g, xr, grad_outputs=v)[0]


hvps = {
    "jvp(grad(f))": lambda v: jvp(grad(f), (x,), (v,))[1],
    "vjp(grad(f))": lambda v: vjp(grad(f), x)[1](v)[0],
    "grad(jvp(f))": lambda v: grad(lambda y: jvp(f, (y,), (v,))[1])(x),
    "autograd.grad twice": hvp_autograd,
    "vg.hvp": lambda v: vg.hvp(f, x, v)[1],
}
for name, hvp in hvps.items():
    result = hvp(v)
    print(f"{name:20s} max |Hv - formula| = {(result - H @ v).abs().max():.1e}")
    torch.testing.assert_close(result, H @ v)

# %%
# Many products at one point: linearize
# -------------------------------------
# Every call above runs :math:`f` again. :func:`torch.func.linearize` traces the forward pass
# once and returns a function that evaluates only the linear map :math:`u \mapsto J u`; applied
# to :math:`\nabla f`, that map is :math:`u \mapsto Hu`. Conjugate gradients or Lanczos, which need
# many products at one point, can reuse it. (Tracing makes :mod:`torch.fx` warn
# "Attempted to insert a get_attr Node ..." while it folds constants, a harmless message from
# inside torch, reported as pytorch/pytorch#94374; we silence exactly that one, here only.)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Attempted to insert a get_attr Node", UserWarning)
    gradient, hvp_at_x = linearize(grad(f), x)
U = torch.randn(n, 5, dtype=torch.float64)
HU = torch.stack([hvp_at_x(u) for u in U.T], dim=1)
print("5 products from one linearisation:", tuple(HU.shape))
torch.testing.assert_close(gradient, A.T @ p + lam * x)
torch.testing.assert_close(HU, H @ U)
hvps["linearize, then call"] = hvp_at_x

# %%
# What each costs
# ---------------
# :func:`vecgrad.time_call` reports the median time of one call. All variants run in this one
# process, on one thread, one after the other; the forming of a Hessian, followed by one
# matrix-vector product, is timed too, for scale. The times are from the machine that built this
# page, and only the agreement above is asserted, never a time.

times = {
    name: vg.time_call(lambda hvp=hvp: hvp(v), min_run_time=0.05) for name, hvp in hvps.items()
}
times["jacfwd(jacrev(f)) @ v"] = vg.time_call(lambda: jacfwd(jacrev(f))(x) @ v, min_run_time=0.05)
for name, seconds in times.items():
    print(f"{name:22s} {seconds * 1e3:7.3f} ms")

fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
names = list(times)
_ = ax.barh(names, [times[name] * 1e3 for name in names], color="C0")
_ = ax.invert_yaxis()
_ = ax.set_xscale("log")
_ = ax.set(title=f"One Hessian-vector product, n = {n}", xlabel="ms per call (median, log scale)")

# %%
# With :math:`n = 200` the arithmetic of one product is tiny, so most of each time is the fixed
# cost of a call: setting up the transforms and running :math:`f` again. That is why the
# linearised function, which skips both, and plain :func:`torch.autograd.grad` are usually the
# quickest here, and why the order can change for larger problems, where forward over reverse is
# the usual recommendation. Forming the whole Hessian costs :math:`n` products' worth of
# arithmetic, which vmap batches into one call, for the one product it is used for.

"""
Gradients of a scalar: ``backward`` and ``autograd.grad``
=========================================================

Reverse mode starts from one number. This example differentiates a scalar function in the two
ways PyTorch offers, checks both against the derivative worked out by hand, and shows the three
rules that trip people up: the implicit gradient of 1, accumulation into ``.grad``, and
``retain_graph``.
"""

# sphinx_gallery_thumbnail_number = 1

import math

import matplotlib.pyplot as plt
import torch
from torch.testing import assert_close

_ = torch.manual_seed(0)


# %%
# A scalar function and its derivative
# ------------------------------------
# We use :math:`f(x) = x \sin x`, whose derivative by the product rule is
# :math:`f'(x) = \sin x + x \cos x`. The inputs are float64 so that autograd and the formula
# agree to the last digits.


def f(x):
    return x * torch.sin(x)


def f_prime(x):
    return torch.sin(x) + x * torch.cos(x)


x = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
print("f(1.5)  =", f(x).item())
print("f'(1.5) =", f_prime(x).item(), "(by hand)")
assert_close(f(x).item(), 1.5 * math.sin(1.5))  # the standard library as a reference

# %%
# Two ways to ask for the gradient
# --------------------------------
# :meth:`torch.Tensor.backward` walks the graph back from the output and *adds* the result
# into the ``.grad`` attribute of every leaf that requires grad. :func:`torch.autograd.grad`
# walks the same graph but *returns* the gradients as a tuple (one entry per input) and leaves
# ``.grad`` alone.

y = f(x)
y.backward()
print("x.grad after backward():", x.grad)
assert_close(x.grad, f_prime(x.detach()))

(dx,) = torch.autograd.grad(f(x), x)
print("torch.autograd.grad:     ", dx)
assert_close(dx, f_prime(x.detach()))
assert_close(x.grad, f_prime(x.detach()))  # autograd.grad did not add into .grad

# %%
# The implicit gradient of 1
# --------------------------
# Neither call above was told what to multiply the derivative by. For an output with exactly
# one element, PyTorch fills in a gradient of 1 with the output's own shape: ``torch.ones_like(y)``.
# That covers a 0-dim tensor (what ``.sum()`` and ``.mean()`` return) and a shape-``(1,)``
# tensor alike. Passing ``grad_outputs`` for such an output is allowed but never required.

x0 = x.detach()
for shape in [(), (1,)]:
    xs = x0.reshape(shape).requires_grad_()
    ys = f(xs)
    (implicit,) = torch.autograd.grad(ys, xs)
    (explicit,) = torch.autograd.grad(f(xs), xs, grad_outputs=torch.ones_like(ys))
    print(f"output shape {tuple(ys.shape)}: implicit", implicit.tolist())
    print(f"output shape {tuple(ys.shape)}: explicit", explicit.tolist())
    assert_close(implicit, explicit)
    assert_close(implicit, f_prime(x0).reshape(shape))

# %%
# The explicit gradient must have the output's shape
# --------------------------------------------------
# A common belief is that ``loss.backward()`` is the same call as
# ``loss.backward(torch.tensor([1.0]))``. For a 0-dim loss it is not: the gradient must have
# exactly the output's shape, and ``(1,)`` is not ``()``. The equivalent explicit call is
# ``loss.backward(torch.tensor(1.0))``, or ``torch.ones_like(loss)``, which is right for both.

loss = f(x)
message = "no error"
try:
    loss.backward(torch.tensor([1.0], dtype=torch.float64))
except RuntimeError as err:
    message = str(err)
print("RuntimeError:", message)
assert "Mismatch in shape" in message

x.grad = None
loss.backward(torch.tensor(1.0, dtype=torch.float64))
print("backward(torch.tensor(1.0)):", x.grad)
assert_close(x.grad, f_prime(x0))

# %%
# Gradients accumulate
# --------------------
# ``backward()`` adds into ``.grad``; it never overwrites it. Two backward passes over two
# freshly built graphs therefore leave *twice* the derivative behind. This is what lets a
# training loop sum gradients over several micro-batches, and what silently corrupts results
# when the reset is forgotten.

x.grad = None
f(x).backward()
once = x.grad.clone()
f(x).backward()
print("after one backward:", once.item(), " after two:", x.grad.item())
assert_close(once, f_prime(x0))
assert_close(x.grad, 2 * f_prime(x0))

# %%
# Three ways to reset ``.grad``
# -----------------------------
# Setting ``x.grad = None`` drops the tensor; the next backward allocates a fresh one.
# An optimizer's :meth:`~torch.optim.Optimizer.zero_grad` does the same for all its parameters
# (``set_to_none=True`` is the default). ``x.grad.zero_()`` keeps the tensor and fills it with
# zeros in place, which matters only when something else holds a reference to it.

x.grad = None
assert x.grad is None

optimizer = torch.optim.SGD([x], lr=0.1)
f(x).backward()
optimizer.zero_grad()
assert x.grad is None

f(x).backward()
held = x.grad
x.grad.zero_()
print("after zero_():", x.grad, "- same tensor object:", held is x.grad)
assert held is x.grad
assert_close(x.grad, torch.zeros_like(x0))
f(x).backward()
assert_close(x.grad, f_prime(x0))  # back to a single copy

# %%
# A graph is freed after its first backward pass
# -----------------------------------------------
# To save memory, the backward pass releases the intermediate values the graph saved in the
# forward pass (here :math:`x` and :math:`\sin x`, which the product rule needs). A second
# backward pass through the *same* graph then fails with a message that names the fix.

x.grad = None
y = f(x)
y.backward()
message = "no error"
try:
    y.backward()
except RuntimeError as err:
    message = str(err)
print("RuntimeError:", message)
assert "Trying to backward through the graph a second time" in message
assert "retain_graph=True" in message

# %%
# ``retain_graph=True`` keeps the saved values, so the same graph can be walked again. Every
# walk but the last needs it. The second walk still *adds* into ``.grad``, so the result is
# again twice the derivative. The same flag exists on :func:`torch.autograd.grad`.

x.grad = None
y = f(x)
y.backward(retain_graph=True)
y.backward()
print("two backward passes through one graph:", x.grad.item())
assert_close(x.grad, 2 * f_prime(x0))

y = f(x)
(g1,) = torch.autograd.grad(y, x, retain_graph=True)
(g2,) = torch.autograd.grad(y, x)
assert_close(g1, f_prime(x0))
assert_close(g2, f_prime(x0))  # returned, not accumulated: each call gives one copy

# %%
# The derivative over a whole range
# ---------------------------------
# To plot :math:`f'` we differentiate at 201 points at once. ``f`` acts elementwise, so output
# :math:`i` depends only on input :math:`i`, and the gradient of the *sum* of the outputs is the
# vector of the individual derivatives. (That shortcut holds only for elementwise functions;
# :ref:`the next example <sphx_glr_gallery_01_gradients_plot_02_grad_outputs.py>` shows why and
# what goes wrong otherwise.) A central finite difference gives a third, independent reference.

xs = torch.linspace(-6.0, 6.0, 201, dtype=torch.float64, requires_grad=True)
f(xs).sum().backward()

h = 1e-6
fd = (f(xs.detach() + h) - f(xs.detach() - h)) / (2 * h)
print("max |autograd - formula|:     ", (xs.grad - f_prime(xs.detach())).abs().max().item())
print("max |autograd - finite diff.|:", (xs.grad - fd).abs().max().item())
assert_close(xs.grad, f_prime(xs.detach()))
assert_close(xs.grad, fd, atol=1e-8, rtol=1e-7)

# %%
# Autograd's values (dots) lie on the hand-derived curve.

grid = xs.detach()
fig, ax = plt.subplots()
ax.plot(grid.numpy(), f(grid).numpy(), label=r"$f(x) = x \sin x$")
ax.plot(grid.numpy(), f_prime(grid).numpy(), label=r"$f'(x) = \sin x + x \cos x$ (by hand)")
ax.plot(grid[::8].numpy(), xs.grad[::8].numpy(), "o", markersize=4, label="autograd")
ax.axhline(0.0, color="0.5", linewidth=0.5)
ax.legend(loc="lower center", ncols=3, fontsize="small")
_ = ax.set(
    title="Autograd against the analytic derivative", xlabel="x", ylabel="value", ylim=(-8, 7)
)
plt.show()

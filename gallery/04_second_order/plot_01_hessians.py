"""
Hessians and Hessian-vector products
====================================

Second derivatives come from differentiating a gradient again. This example builds single
Hessian entries, the full Hessian and Hessian-vector products of the Rosenbrock function, each
checked against the Hessian derived by hand, and shows why a Hessian-vector product is much
cheaper than the Hessian it multiplies.
"""

# sphinx_gallery_thumbnail_number = 2

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import LogNorm, SymLogNorm

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# The Rosenbrock function and its Hessian by hand
# -----------------------------------------------
# .. math::
#
#    f(x) = \sum_{i=0}^{n-2} 100\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2
#
# Each term couples neighbours only, so the Hessian is tridiagonal:
# :math:`H_{i,i+1} = H_{i+1,i} = -400\,x_i`, and
# :math:`H_{ii} = 1200\,x_i^2 - 400\,x_{i+1} + 2` (for :math:`i < n-1`) plus :math:`200`
# (for :math:`i > 0`). We derive the gradient the same way. All tensors are float64: second
# derivatives of this function reach the thousands, and float32 would blur the comparisons.


def rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def rosenbrock_grad(x):
    g = torch.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosenbrock_hessian(x):
    diagonal = torch.zeros_like(x)
    diagonal[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    diagonal[1:] += 200
    off = -400 * x[:-1]
    return torch.diag(diagonal) + torch.diag(off, 1) + torch.diag(off, -1)


n = 6
x = torch.randn(n, dtype=torch.float64)
H = rosenbrock_hessian(x)
print("analytic Hessian:\n", H)

# %%
# One entry: the gradient of a gradient
# -------------------------------------
# :math:`H_{ij} = \partial / \partial x_j\, (\partial f / \partial x_i)`. The first
# :func:`torch.autograd.grad` must use ``create_graph=True``, so that the gradient it returns is
# itself part of a graph; the second call then differentiates entry :math:`i` of it and returns
# row :math:`i` of :math:`H`.

xr = x.clone().requires_grad_()
(g,) = torch.autograd.grad(rosenbrock(xr), xr, create_graph=True)
(row_2,) = torch.autograd.grad(g[2], xr)
print(f"H[2, 2] = {row_2[2]:.4f}, H[2, 3] = {row_2[3]:.4f}")
torch.testing.assert_close(g, rosenbrock_grad(x))
torch.testing.assert_close(row_2, H[2])

# %%
# Without ``create_graph=True`` the gradient is a plain tensor with no history, and the second
# call has nothing to differentiate.

(g_plain,) = torch.autograd.grad(rosenbrock(xr), xr)
message = "no error"
try:
    torch.autograd.grad(g_plain[2], xr)
except RuntimeError as err:
    message = str(err)
print("RuntimeError:", message)
assert "does not require grad" in message

# %%
# Choosing the entry to differentiate
# -----------------------------------
# For a vector output, a "Hessian element" is a second derivative of one output component.
# Take :math:`y = x^2` elementwise at :math:`x = (1, 2, 3)`. Component :math:`y_1 = x_1^2`
# depends on :math:`x_1` alone, so its first gradient is :math:`(0, 4, 0)`. Differentiating the
# entry at index 0 of that gradient returns :math:`\partial^2 y_1 / \partial x_0^2 = 0`, an entry
# that is zero for every :math:`x`, since :math:`y_1` does not involve :math:`x_0`. The
# informative entry is :math:`\partial^2 y_1 / \partial x_1^2 = 2`, from entry 1; the Hessian of
# :math:`y_1` is :math:`\mathrm{diag}(0, 2, 0)`.

xs = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
y = xs**2
(dy1,) = torch.autograd.grad(y[1], xs, create_graph=True)
(d_dy1_0,) = torch.autograd.grad(dy1[0], xs, retain_graph=True)
(d_dy1_1,) = torch.autograd.grad(dy1[1], xs, retain_graph=True)
print("gradient of y[1]:", dy1.detach())
print("d2 y[1] / dx0^2 =", d_dy1_0[0].item(), "| d2 y[1] / dx1^2 =", d_dy1_1[1].item())
torch.testing.assert_close(dy1.detach(), torch.tensor([0.0, 4.0, 0.0], dtype=torch.float64))
torch.testing.assert_close(d_dy1_0, torch.zeros(3, dtype=torch.float64))
torch.testing.assert_close(d_dy1_1[1], torch.tensor(2.0, dtype=torch.float64))
hessian_y1 = vg.hessian(lambda x: (x**2)[1], xs.detach())
torch.testing.assert_close(
    hessian_y1, torch.diag(torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64))
)

# %%
# The full Hessian
# ----------------
# Repeating the second call for every :math:`i` builds :math:`H` row by row. The call above
# freed the graph of :math:`g`, so we take the gradient again; ``retain_graph=True`` keeps its
# graph alive from one row to the next. :func:`torch.autograd.functional.hessian`,
# :func:`torch.func.hessian` and :func:`vecgrad.hessian` return all of it at once.

(g,) = torch.autograd.grad(rosenbrock(xr), xr, create_graph=True)
rows = [torch.autograd.grad(g[i], xr, retain_graph=True)[0] for i in range(n)]
hessians = {
    "row loop": torch.stack(rows),
    "torch.autograd.functional.hessian": torch.autograd.functional.hessian(rosenbrock, x),
    "torch.func.hessian": torch.func.hessian(rosenbrock)(x),
    "vecgrad.hessian": vg.hessian(rosenbrock, x),
}
for name, result in hessians.items():
    print(f"{name:34s} max |H - analytic| = {(result - H).abs().max().item():.1e}")
    torch.testing.assert_close(result, H)
torch.testing.assert_close(H, H.T)

# %%
# The tridiagonal band: entry :math:`(i, j)` is zero whenever :math:`|i - j| > 1`, because no
# term of :math:`f` contains both :math:`x_i` and :math:`x_j`. The colour scale is symmetric and
# logarithmic beyond :math:`\pm 10`, so that entries of a few hundred stay visible next to
# diagonal entries of several thousand.

lim = H.abs().max().item()
fig, ax = plt.subplots(figsize=(5.5, 4.5))
norm = SymLogNorm(linthresh=10.0, vmin=-lim, vmax=lim)
im = ax.imshow(H.numpy(), cmap="RdBu_r", norm=norm)
_ = ax.set(title=f"Hessian of the {n}-D Rosenbrock function", xlabel="j", ylabel="i")
_ = fig.colorbar(im, ax=ax)
torch.testing.assert_close(H.triu(2), torch.zeros(n, n, dtype=torch.float64))

# %%
# Newton's direction in two dimensions
# ------------------------------------
# The Hessian turns the gradient into Newton's step :math:`d = -H^{-1} \nabla f`, the minimiser
# of the local quadratic model. At the classic starting point :math:`(-1.2, 1)` the Hessian is
# positive definite, so :math:`d` is a descent direction (:math:`\nabla f \cdot d < 0`). The
# negative gradient points mostly along :math:`x_0`; Newton's step heads for the floor of the
# curved valley :math:`x_1 = x_0^2`, lands almost on it, and lowers :math:`f` from 24.2 to about
# 4.73.

p = torch.tensor([-1.2, 1.0], dtype=torch.float64)
grad_p = torch.func.grad(rosenbrock)(p)
hess_p = vg.hessian(rosenbrock, p)
newton = -torch.linalg.solve(hess_p, grad_p)
print("gradient:", grad_p, "\nHessian:\n", hess_p, "\nNewton step:", newton)
print(f"f(p) = {rosenbrock(p):.4f}, f(p + d) = {rosenbrock(p + newton):.4f}")
torch.testing.assert_close(grad_p, rosenbrock_grad(p))
torch.testing.assert_close(hess_p, rosenbrock_hessian(p))
assert torch.linalg.eigvalsh(hess_p).min() > 0
torch.testing.assert_close(hess_p @ newton, -grad_p)
assert grad_p @ newton < 0
torch.testing.assert_close(rosenbrock(p), torch.tensor(24.2, dtype=torch.float64))
torch.testing.assert_close(
    rosenbrock(p + newton), torch.tensor(4.73, dtype=torch.float64), atol=5e-3, rtol=0
)
landing = p + newton
print(f"after the step: x1 - x0^2 = {landing[1] - landing[0] ** 2:.4f}")
assert abs(landing[1] - landing[0] ** 2) < 1e-3

# %%
# The contour plot uses logarithmically spaced levels. The negative gradient is drawn with the
# same length as the Newton step, so only the directions differ.

grid_0 = torch.linspace(-1.7, 1.5, 201, dtype=torch.float64)
grid_1 = torch.linspace(-0.5, 2.3, 201, dtype=torch.float64)
X0, X1 = torch.meshgrid(grid_0, grid_1, indexing="xy")
F = 100 * (X1 - X0**2) ** 2 + (1 - X0) ** 2
steepest = -grad_p / grad_p.norm() * newton.norm()
fig, ax = plt.subplots(figsize=(6, 5))
levels = torch.logspace(-1, 3, 13).numpy()
_ = ax.contour(X0.numpy(), X1.numpy(), F.numpy(), levels=levels, norm=LogNorm())
for step, name, colour in ((steepest, "negative gradient", "C3"), (newton, "Newton step", "C1")):
    _ = ax.annotate(
        "",
        xy=(p + step).tolist(),
        xytext=p.tolist(),
        arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 2},
    )
    _ = ax.plot([], [], color=colour, linewidth=2, label=name)
_ = ax.plot(1.0, 1.0, "k*", markersize=12, label="minimum (1, 1)")
_ = ax.plot(*p.tolist(), "ko", label="p = (-1.2, 1)")
_ = ax.set(title="2-D Rosenbrock: gradient vs Newton direction", xlabel="x0", ylabel="x1")
_ = ax.legend(loc="lower right")

# %%
# Hessian-vector products without the Hessian
# -------------------------------------------
# Many methods (conjugate gradients, Lanczos, truncated Newton) only need :math:`H v`. It is
# the derivative of :math:`\nabla f \cdot v`, which needs one gradient and one more pass, never
# the :math:`n \times n` matrix:
#
# * *reverse over reverse*: differentiate :math:`\nabla f \cdot v` with a second reverse pass,
#   from a gradient taken with ``create_graph=True``;
# * *forward over reverse*: push the tangent :math:`v` through the gradient function with
#   :func:`torch.func.jvp` of :func:`torch.func.grad`, which :func:`vecgrad.hvp` also does.
#
# :func:`torch.autograd.functional.hvp` returns the same numbers with three reverse passes (the
# double-backward trick applied to the gradient); its documentation points to
# :func:`torch.autograd.functional.vhp` as faster, which computes :math:`v^\top H`, the same
# vector here because :math:`H` is symmetric.

v = torch.randn(n, dtype=torch.float64)
(g,) = torch.autograd.grad(rosenbrock(xr), xr, create_graph=True)
(hvp_rr,) = torch.autograd.grad(g @ v, xr)
_, hvp_fr = torch.func.jvp(torch.func.grad(rosenbrock), (x,), (v,))
f_vg, hvp_vg = vg.hvp(rosenbrock, x, v)
_, hvp_functional = torch.autograd.functional.hvp(rosenbrock, x, v)
_, vhp_functional = torch.autograd.functional.vhp(rosenbrock, x, v)
print("H @ v (analytic):", H @ v)
for name, result in [
    ("reverse over reverse", hvp_rr),
    ("forward over reverse", hvp_fr),
    ("vecgrad.hvp", hvp_vg),
    ("autograd.functional.hvp", hvp_functional),
    ("autograd.functional.vhp", vhp_functional),
]:
    print(f"{name:24s}", result)
    torch.testing.assert_close(result, H @ v)
torch.testing.assert_close(f_vg, rosenbrock(x))

# %%
# What it costs
# -------------
# A full Hessian is :math:`n` Hessian-vector products, one per column, and :math:`n^2` numbers
# to store, so it takes about :math:`n` times the work of one product, itself a small multiple of
# one gradient. (Vectorising the :math:`n` products hides part of that factor in the times at
# these small sizes.) At each size both results are checked against the Hessian by hand, and the
# Hessian times :math:`v` must equal the product; then :func:`vecgrad.time_call` measures the
# median time per call of each, on one thread, on the machine that built this page.


def time_both(size):
    xn, vn = torch.randn(size, dtype=torch.float64), torch.randn(size, dtype=torch.float64)
    H_n, (_, hvp_n) = vg.hessian(rosenbrock, xn), vg.hvp(rosenbrock, xn, vn)
    torch.testing.assert_close(H_n, rosenbrock_hessian(xn))
    torch.testing.assert_close(hvp_n, H_n @ vn)
    assert H_n.numel() == size**2  # what each one stores
    assert hvp_n.numel() == size
    return [
        vg.time_call(lambda: vg.hessian(rosenbrock, xn), min_run_time=0.05),
        vg.time_call(lambda: vg.hvp(rosenbrock, xn, vn), min_run_time=0.05),
    ]


sizes = [16, 64, 256, 1024]
costs = [time_both(size) for size in sizes]
for size, (t_hess, t_hvp) in zip(sizes, costs, strict=True):
    print(f"n = {size:5d}: Hessian {1e3 * t_hess:7.2f} ms, HVP {1e3 * t_hvp:6.2f} ms")

# %%
# At :math:`n = 1024` the Hessian holds a million numbers, against a thousand for one product.
# The time ratio depends on the machine and on what else it was doing, so it is printed, not
# asserted.

t_hess, t_hvp = costs[-1]
print(f"n = {sizes[-1]}: Hessian / HVP time = {t_hess / t_hvp:.1f}")

fig, ax = plt.subplots()
_ = ax.semilogx(sizes, [1e3 * c[0] for c in costs], "o-", label="full Hessian (vecgrad.hessian)")
_ = ax.semilogx(sizes, [1e3 * c[1] for c in costs], "s-", label="one product (vecgrad.hvp)")
_ = ax.set(title="Hessian vs Hessian-vector product", xlabel="n", ylabel="time (ms, median)")
_ = ax.legend()
plt.show()

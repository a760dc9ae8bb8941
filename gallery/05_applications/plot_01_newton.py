r"""
Newton's method for a nonlinear system
======================================

Newton's method solves :math:`F(x) = 0` by linearising :math:`F` at each iterate and solving the
linear system, which needs the Jacobian of :math:`F`. This example takes it from
:func:`vecgrad.jacobian`, checks it against the formula, and shows the quadratic convergence that
a correct Jacobian buys, next to the linear convergence of a Jacobian held fixed.
"""

from itertools import pairwise

import matplotlib.pyplot as plt
import torch

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A system with a known root
# --------------------------
# Take :math:`n = 6` unknowns, the second-difference matrix :math:`A` (2 on the diagonal, -1 beside
# it) and an elementwise cube:
#
# .. math::
#
#    F(x) = A x + x^3 - b, \qquad J_F(x) = A + 3\,\mathrm{diag}(x^2).
#
# We choose the root :math:`x^\star` first and set :math:`b = A x^\star + (x^\star)^3`. It is the
# only root: :math:`F` is the gradient of the strictly convex
# :math:`\tfrac12 x^\top A x + \tfrac14 \sum_i x_i^4 - b^\top x`. All in float64, so that the
# residual can fall to about :math:`10^{-15}`.

n = 6
A = 2 * torch.eye(n, dtype=torch.float64) - torch.diag(torch.ones(n - 1, dtype=torch.float64), 1)
A = A - torch.diag(torch.ones(n - 1, dtype=torch.float64), -1)
x_star = torch.linspace(-1.5, 2.0, n, dtype=torch.float64)
b = A @ x_star + x_star**3


def F(x):
    return A @ x + x**3 - b


def jacobian_F(x):
    return A + torch.diag(3 * x**2)


print("x* =", x_star)

# %%
# The Jacobian from :func:`vecgrad.jacobian`
# ------------------------------------------
# :math:`F` maps :math:`\mathbb{R}^6` to :math:`\mathbb{R}^6`, so reverse mode (six rows) and
# forward mode (six columns) cost the same; ``'auto'`` picks reverse mode for a square Jacobian.
# At a random point both agree with the formula.

x_test = torch.randn(n, dtype=torch.float64)
for strategy in ("reverse", "forward"):
    J = vg.jacobian(F, x_test, strategy=strategy)
    error = (J - jacobian_F(x_test)).abs().max().item()
    print(f"strategy={strategy!r}: max |J - formula| = {error:.1e}")
    torch.testing.assert_close(J, jacobian_F(x_test))

# %%
# Newton's iteration
# ------------------
# At :math:`x_k`, the linear model :math:`F(x_k) + J_F(x_k)\,s` vanishes for the step
# :math:`s = -J_F(x_k)^{-1} F(x_k)`, found with :func:`torch.linalg.solve` (never an explicit
# inverse). We start at :math:`x_0 = 0`, stop once :math:`\|F(x_k)\| < 10^{-13}`, keep every
# iterate, and check every Jacobian used on the way against the formula.


def newton(x, max_steps=30, tol=1e-13):
    iterates = [x]
    while F(x).norm() >= tol and len(iterates) <= max_steps:
        J = vg.jacobian(F, x)
        torch.testing.assert_close(J, jacobian_F(x))
        x = x + torch.linalg.solve(J, -F(x))
        iterates.append(x)
    return iterates


iterates = newton(torch.zeros(n, dtype=torch.float64))
r_newton = [F(x).norm().item() for x in iterates]
for k, r in enumerate(r_newton):
    print(f"step {k:2d}: |F(x_k)| = {r:.3e}")
print("root found:", iterates[-1])
torch.testing.assert_close(iterates[-1], x_star, rtol=0, atol=1e-13)
assert len(iterates) - 1 <= 12

# %%
# Two phases
# ----------
# :math:`J_F(0) = A` knows nothing of the cube, so the first step overshoots to a point where
# :math:`\|F\|` is a hundred times larger. Far from the root the cube dominates, and Newton's step
# for :math:`x^3 = c` takes :math:`x` to :math:`\tfrac23 x`: the residual shrinks by about
# :math:`(2/3)^3 = 8/27 \approx 0.30` per step, a linear rate. Once :math:`\|F\| < 1` the
# linear model is accurate and the second phase starts.

far = [r_next / r for r, r_next in pairwise(r_newton[1:4])]
print("far from the root, |F_(k+1)| / |F_k| =", [f"{q:.3f}" for q in far], "vs 8/27 = 0.296")
assert r_newton[1] > 100 * r_newton[0]
for q in far:
    assert abs(q - 8 / 27) < 0.01

# %%
# Quadratic convergence
# ---------------------
# Near a root where :math:`J_F` is invertible, Newton's error obeys
# :math:`\|e_{k+1}\| \le C \|e_k\|^2`, and the residual, which is :math:`J_F e_k` to first order,
# does the same: the ratio :math:`\|F(x_{k+1})\| / \|F(x_k)\|^2` stays bounded and the number of
# correct digits doubles each step. We take the ratios from the first residual below 1, and only
# while the new residual is above :math:`10^{-14}`, where rounding, not the method, sets its size.

local = [k for k, r in enumerate(r_newton) if r < 1.0]
ratios = [
    r_newton[k + 1] / r_newton[k] ** 2
    for k in local
    if k + 1 < len(r_newton) and r_newton[k + 1] > 1e-14
]
print("|F_(k+1)| / |F_k|^2 once |F_k| < 1:", [f"{q:.3f}" for q in ratios])
assert len(ratios) >= 3
assert max(ratios) < 0.5

# %%
# Where the square comes from: with the error :math:`e_k = x_k - x^\star`, expanding the cube
# gives :math:`J_F(x_k)\,e_k - F(x_k) = 3 x^\star e_k^2 + 2 e_k^3` (elementwise powers), so
# Newton's new error is exactly
#
# .. math::
#
#    e_{k+1} = J_F(x_k)^{-1} \left(3 x^\star e_k^2 + 2 e_k^3\right),
#
# quadratic in :math:`e_k`. The iterates obey it to rounding error (about :math:`10^{-15}`), which
# is also why the last step, from :math:`\|e_k\| \approx 10^{-12}`, is left out.

for k in [k for k in local if (iterates[k] - x_star).norm() > 1e-10]:
    e_k, e_next = iterates[k] - x_star, iterates[k + 1] - x_star
    predicted = torch.linalg.solve(jacobian_F(iterates[k]), 3 * x_star * e_k**2 + 2 * e_k**3)
    print(
        f"step {k}: |e_k| = {e_k.norm():.2e}, |e_(k+1)| = {e_next.norm():.2e}, "
        f"predicted {predicted.norm():.2e}"
    )
    torch.testing.assert_close(e_next, predicted, rtol=1e-6, atol=1e-14)

# %%
# A Jacobian held fixed: linear convergence
# -----------------------------------------
# The chord method computes the Jacobian once, here at the first Newton iterate with
# :math:`\|F\| < 1`, and reuses it for every later step. Each step is cheaper, but near the root
# the error is multiplied by :math:`I - J_F(x_c)^{-1} J_F(x^\star)` per step, with :math:`x_c`
# the point where the Jacobian was taken; the residual shrinks by a constant factor, that
# matrix's spectral radius :math:`\rho`, so reaching the same accuracy takes many more steps.
# A Newton iteration fed a wrong Jacobian loses its quadratic rate the same way.

x_chord = iterates[local[0]]
J_frozen = vg.jacobian(F, x_chord)
r_chord = [F(x_chord).norm().item()]
while r_chord[-1] >= 1e-13 and len(r_chord) <= 200:
    x_chord = x_chord + torch.linalg.solve(J_frozen, -F(x_chord))
    r_chord.append(F(x_chord).norm().item())
linear = [r_next / r for r, r_next in pairwise(r_chord[2:7])]
contraction = torch.eye(n, dtype=torch.float64) - torch.linalg.solve(J_frozen, jacobian_F(x_star))
rho = torch.linalg.eigvals(contraction).abs().max().item()
print(f"chord method from step {local[0]}: {len(r_chord) - 1} more steps")
print("|F_(k+1)| / |F_k| =", [f"{q:.5f}" for q in linear], f"vs rho = {rho:.5f}")
torch.testing.assert_close(x_chord, x_star, rtol=0, atol=1e-12)
assert len(r_chord) - 1 > 2 * (len(r_newton) - 1 - local[0])
assert all(abs(q / rho - 1) < 0.01 for q in linear)

# %%
# On a logarithmic axis, the chord method's residuals fall along a straight line whose slope is
# its constant ratio; Newton's fall ever more steeply once they are below 1, each step roughly
# squaring them.

fig, ax = plt.subplots()
_ = ax.semilogy(r_newton, "o-", label="Newton (vg.jacobian at every step)")
steps = range(local[0], local[0] + len(r_chord))
_ = ax.semilogy(steps, r_chord, ".-", label=f"chord (Jacobian at step {local[0]} only)")
_ = ax.axhline(1e-13, color="grey", linestyle=":", label="stopping tolerance")
_ = ax.set(
    title=r"Residual per step for $F(x) = Ax + x^3 - b$",
    xlabel="step k",
    ylabel=r"$\|F(x_k)\|$",
)
_ = ax.legend()

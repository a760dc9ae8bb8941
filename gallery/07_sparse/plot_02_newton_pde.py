r"""
Newton's method on a 2-D nonlinear PDE
======================================

A nonlinear Poisson problem on an :math:`N \times N` grid has a Jacobian with five nonzeros per
row. Coloured once, it costs five Jacobian-vector products at every Newton step, whatever
:math:`N`; this example solves the problem with it and ``scipy.sparse.linalg.spsolve``,
compares matrix-free Newton-Krylov, and checks the solution against a known one.
"""

# sphinx_gallery_thumbnail_number = 2

import itertools
import math

import matplotlib.pyplot as plt
import scipy.sparse
import scipy.sparse.linalg
import torch
import torch.nn.functional as F

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A problem with a known solution
# -------------------------------
# We solve the Bratu-type equation :math:`-\Delta u - \lambda e^u = g` on the unit square with
# :math:`u = 0` on the boundary and :math:`\lambda = 1`, choosing the source :math:`g` so that
# :math:`u^\star(x, y) = \sin(\pi x) \sin(\pi y)` solves it:
# :math:`g = 2\pi^2 u^\star - e^{u^\star}`. The five-point Laplacian on the interior points of
# a grid of spacing :math:`h = 1/(N+1)` gives :math:`n = N^2` equations :math:`F(u) = 0`, and
# a discrete solution within :math:`O(h^2)` of :math:`u^\star`. All in float64.

lam = 1.0


def problem(N):
    h = 1.0 / (N + 1)
    t = torch.linspace(h, 1 - h, N, dtype=torch.float64)
    u_star = torch.outer(torch.sin(math.pi * t), torch.sin(math.pi * t)).reshape(-1)
    g = 2 * math.pi**2 * u_star - lam * torch.exp(u_star)

    def residual(u):
        v = F.pad(u.reshape(N, N), (1, 1, 1, 1))
        lap = 4 * v[1:-1, 1:-1] - v[:-2, 1:-1] - v[2:, 1:-1] - v[1:-1, :-2] - v[1:-1, 2:]
        return lap.reshape(-1) / h**2 - lam * torch.exp(u) - g

    return residual, u_star, h


# %%
# The pattern, coloured once
# --------------------------
# The pattern follows from the stencil: point :math:`(i, j)` couples to itself and its four
# neighbours. We build it as a sparse COO tensor without forming the :math:`n \times n`
# matrix, and colour it once per grid size, for every Newton step to reuse. Five colours, the
# lower bound, for every grid size.


def stencil_pattern(N):
    idx = torch.arange(N * N).reshape(N, N)
    pairs = [(idx, idx)]
    for a, b in [(idx[1:], idx[:-1]), (idx[:, 1:], idx[:, :-1])]:
        pairs += [(a, b), (b, a)]
    rows = torch.cat([a.reshape(-1) for a, _ in pairs])
    cols = torch.cat([b.reshape(-1) for _, b in pairs])
    values = torch.ones(rows.numel(), dtype=torch.bool)
    indices, shape = torch.stack([rows, cols]), (N * N, N * N)
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()


colorings = {}
for N in (15, 31, 63, 99):
    colorings[N] = coloring = vg.color_jacobian(stencil_pattern(N), strategy="forward")
    print(
        f"N = {N:3d}, n = {N * N:5d}: {coloring.num_colors} colours, bound {coloring.lower_bound}"
    )
    assert coloring.num_colors == coloring.lower_bound == 5

# %%
# The sparse Jacobian is right
# ----------------------------
# Analytically, :math:`J_F(u) = A / h^2 - \lambda \operatorname{diag}(e^u)`, with :math:`A` the
# five-point matrix, built here with ``scipy.sparse.kron``. The colour-compressed Jacobian
# matches it at a random point, and so does the dense :func:`vecgrad.jacobian`.


def to_csr(J):
    rows, cols = J.indices().numpy()
    return scipy.sparse.csr_matrix((J.values().detach().numpy(), (rows, cols)), shape=J.shape)


def five_point(N):
    T = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N))
    eye = scipy.sparse.identity(N)
    return (scipy.sparse.kron(T, eye) + scipy.sparse.kron(eye, T)).tocsr()


N = 15
residual, u_star, h = problem(N)
coloring = colorings[N]
u = torch.randn(N * N, dtype=torch.float64)
J = to_csr(vg.sparse_jacobian(residual, u, sparsity=coloring))
J_formula = five_point(N) / h**2 - lam * scipy.sparse.diags(torch.exp(u).numpy())
print("max |J - formula| =", abs(J - J_formula).max())
assert abs(J - J_formula).max() < 1e-9
torch.testing.assert_close(torch.from_numpy(J.toarray()), vg.jacobian(residual, u))

# %%
# Newton with a reused colouring
# ------------------------------
# Each step computes the sparse Jacobian with the same colouring, converts it to CSR and solves
# :math:`J_F(u_k)\, s = -F(u_k)` with ``scipy.sparse.linalg.spsolve``. We start from
# :math:`u_0 = 0` and stop when :math:`\|F(u_k)\|_\infty < 10^{-9}`. The residual cannot fall
# much below the rounding error of its terms :math:`4 u_{ij} / h^2`, a few times
# :math:`\varepsilon / h^2` (:math:`\varepsilon \approx 2.2 \cdot 10^{-16}` in float64), which
# is of order :math:`10^{-13}` to :math:`10^{-12}` on these grids.


def newton_sparse(N, tol=1e-9, max_steps=20):
    residual, _, _ = problem(N)
    coloring = colorings[N]
    u = torch.zeros(N * N, dtype=torch.float64)
    history = [residual(u).abs().max().item()]
    while history[-1] >= tol and len(history) <= max_steps:
        J = to_csr(vg.sparse_jacobian(residual, u, sparsity=coloring))
        u = u + torch.from_numpy(scipy.sparse.linalg.spsolve(J, -residual(u).numpy()))
        history.append(residual(u).abs().max().item())
    return u, history


results = {N: newton_sparse(N) for N in (15, 31, 63)}
for N, (_, history) in results.items():
    print(f"N = {N}: |F| per step", " ".join(f"{r:.1e}" for r in history))
    assert history[-1] < 1e-9
    assert len(history) - 1 <= 6

# %%
# Second-order accuracy
# ---------------------
# The Newton solution is the discrete one; its distance to :math:`u^\star` is the
# discretisation error, :math:`O(h^2)`. Halving :math:`h` (:math:`N + 1 = 16, 32, 64`) should
# divide the maximum error by about 4.

errors = {N: (u - problem(N)[1]).abs().max().item() for N, (u, _) in results.items()}
ratios = [errors[15] / errors[31], errors[31] / errors[63]]
print("max error:", {N: f"{e:.2e}" for N, e in errors.items()})
print("ratios:", [f"{q:.3f}" for q in ratios], "vs 4")
assert all(abs(q - 4) < 0.1 for q in ratios)
assert errors[63] < 1e-3

# %%
# Matrix-free Newton-Krylov
# -------------------------
# Newton-Krylov never forms :math:`J_F`: GMRES solves each step's system from products
# :math:`J_F(u_k) v`, one :func:`vecgrad.jvp` each, wrapped in a
# ``scipy.sparse.linalg.LinearOperator``. The function counts the products.


def newton_krylov(N, tol=1e-9, max_steps=20):
    residual, _, _ = problem(N)
    u = torch.zeros(N * N, dtype=torch.float64)
    history, products = [residual(u).abs().max().item()], [0]

    def matvec(v):
        products[0] += 1
        return vg.jvp(residual, u, torch.from_numpy(v.reshape(-1)))[1].numpy()

    while history[-1] >= tol and len(history) <= max_steps:
        op = scipy.sparse.linalg.LinearOperator((N * N, N * N), matvec=matvec, dtype=float)
        step, info = scipy.sparse.linalg.gmres(op, -residual(u).numpy(), rtol=1e-12, restart=200)
        assert info == 0
        u = u + torch.from_numpy(step)
        history.append(residual(u).abs().max().item())
    return u, history, products[0]


# %%
# Unpreconditioned, GMRES needs many products on this ill-conditioned system, far more than the
# five per step of the sparse Jacobian, but it reaches the same solution.

u_nk, history_nk, products_nk = newton_krylov(15)
print("Newton-Krylov, N = 15: |F| per step", " ".join(f"{r:.1e}" for r in history_nk))
print(f"{products_nk} JVPs, against {5 * (len(results[15][1]) - 1)} for the sparse Newton steps")
assert history_nk[-1] < 1e-9
assert products_nk > 5 * (len(results[15][1]) - 1)
torch.testing.assert_close(u_nk, results[15][0], rtol=0, atol=1e-10)

# %%
# Quadratic convergence
# ---------------------
# Newton's method converges quadratically: :math:`r_{k+1} \le C r_k^2` for the residuals
# :math:`r_k = \|F(u_k)\|_\infty`, so the exponent roughly doubles per step. We check that
# :math:`r_{k+1} / r_k^2` stays below :math:`10^{-2}` for every step that lands above the
# rounding floor (taken as :math:`100\, \varepsilon / h^2`), for both methods, and that the last
# residual lies within ten times :math:`\varepsilon / h^2`.

eps = torch.finfo(torch.float64).eps
runs = {f"sparse, N = {N}": (N, history) for N, (_, history) in results.items()}
runs["Newton-Krylov, N = 15"] = (15, history_nk)
for name, (N, history) in runs.items():
    floor = eps * (N + 1) ** 2
    quotients = [b / a**2 for a, b in itertools.pairwise(history) if b > 100 * floor]
    print(f"{name}: r_k+1 / r_k^2 =", " ".join(f"{q:.1e}" for q in quotients), end=", ")
    print(f"last r / (eps / h^2) = {history[-1] / floor:.1f}")
    assert len(quotients) >= 3
    assert max(quotients) < 1e-2
    assert history[-1] < 10 * floor

# %%
# The residual per step: the exponent doubles until rounding sets the floor.

fig, ax = plt.subplots()
for N, (_, history) in results.items():
    _ = ax.semilogy(history, "o-", label=f"sparse Newton, N = {N}")
_ = ax.semilogy(history_nk, "x--", label="Newton-Krylov, N = 15")
_ = ax.axhline(1e-9, color="grey", linestyle=":", label="tolerance")
_ = ax.set(title=r"$-\Delta u - e^u = g$: residual per step", xlabel="Newton step k")
_ = ax.set(xticks=range(len(history_nk)))
_ = ax.set(ylabel=r"$\|F(u_k)\|_\infty$")
_ = ax.legend()

# %%
# Cost per Jacobian
# -----------------
# A sparse Jacobian costs five products of length :math:`n`; a dense one (:func:`vecgrad.jacobian`)
# costs :math:`n` of them, and :math:`n^2` memory, so we time it only on the smaller grids. We
# count the passes by counting how often the residual is called with ``chunk_size=1`` (one call
# per product): five, whatever :math:`n`. The times are measured on the machine that built this
# page, with :func:`vecgrad.time_call`, and are not checked. Two helpers: one times a call, the
# other counts how often a function is called.


def seconds(fn, *args, **kwargs):
    return vg.time_call(lambda: fn(*args, **kwargs), min_run_time=0.05)


def counting(func, calls):
    def counted(u):
        calls.append(1)
        return func(u)

    return counted


# %%
# For each grid, the sparse Jacobian's passes are counted, then both Jacobians timed; the dense
# one only up to :math:`n = 961`.

sizes, sparse_times, dense_sizes, dense_times = [], [], [], []
for N in (15, 31, 63, 99):
    residual, u_star, _ = problem(N)
    coloring = colorings[N]
    calls = []
    _ = vg.sparse_jacobian(counting(residual, calls), u_star, sparsity=coloring, chunk_size=1)
    assert len(calls) == coloring.num_colors == 5
    sizes.append(N * N)
    sparse_times.append(seconds(vg.sparse_jacobian, residual, u_star, sparsity=coloring))
    if N <= 31:
        dense_sizes.append(N * N)
        dense_times.append(seconds(vg.jacobian, residual, u_star))
print("passes per sparse Jacobian: 5 at every n =", sizes)

# %%
# The dense Jacobian's time grows quickly with :math:`n`: :math:`n` products of length
# :math:`n`. The sparse one's does :math:`5n` work, little next to the fixed cost of a call at
# these sizes, so it hardly grows up to :math:`n \approx 10^4`.

fig, ax = plt.subplots()
_ = ax.loglog(sizes, sparse_times, "o-", label="sparse_jacobian (5 JVPs)")
_ = ax.loglog(dense_sizes, dense_times, "s-", label="jacobian (n products)")
_ = ax.set(title="Time per Jacobian (measured on the build machine)", xlabel="unknowns n")
_ = ax.set(ylabel="seconds")
_ = ax.legend()

r"""
Divergence and Laplacian
========================

A continuous normalising flow needs the divergence of its vector field, a physics-informed
network the Laplacian of its output: the traces of a Jacobian and of a Hessian. This example
computes both exactly with :func:`vecgrad.diagonal` and estimates them with
:func:`vecgrad.hutchinson`, and checks them against closed forms and :mod:`torch.func`.
"""

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# The divergence of a vector field
# --------------------------------
# The field :math:`f(x) = \tanh(W x + b)` on :math:`\mathbb{R}^d` has Jacobian
# :math:`J = \operatorname{diag}(1 - \tanh^2(z))\, W` with :math:`z = W x + b`, so its
# divergence is :math:`\nabla \cdot f = \sum_i (1 - \tanh^2 z_i)\, W_{ii}`. The exact
# :func:`vecgrad.diagonal` takes one Jacobian-vector product per element, :math:`d` in all.
# Everything is float64, so exact results are compared to a relative :math:`10^{-12}`.

d = 6
W = torch.randn(d, d, dtype=torch.float64)
b = torch.randn(d, dtype=torch.float64)
x = torch.randn(d, dtype=torch.float64)
tight = {"rtol": 1e-12, "atol": 1e-12}


def field(x):
    return torch.tanh(W @ x + b)


div_formula = ((1 - torch.tanh(W @ x + b) ** 2) * W.diagonal()).sum()
div_exact = vg.diagonal(field, x).sum()
print(f"divergence: diagonal {div_exact:.12f}, formula {div_formula:.12f}")
torch.testing.assert_close(div_exact, div_formula, **tight)

# %%
# One pass for an elementwise field
# ---------------------------------
# When output :math:`i` depends on input :math:`i` alone, as for
# :math:`g(x) = a \odot \tanh(x)`, the Jacobian is diagonal: one product with the all-ones
# vector gives the whole diagonal. ``elementwise=True`` says so; it is the caller's promise, not
# checked.

a = torch.randn(d, dtype=torch.float64)
div_elementwise = vg.diagonal(lambda t: a * torch.tanh(t), x, elementwise=True).sum()
div_g = (a * (1 - torch.tanh(x) ** 2)).sum()
print(f"divergence of a * tanh(x): one pass {div_elementwise:.12f}, formula {div_g:.12f}")
torch.testing.assert_close(div_elementwise, div_g, **tight)

# %%
# Two colours for a tridiagonal field
# -----------------------------------
# In :math:`h(x)_i = \tanh(x_i)\,(1 + \sin x_{i-1}) - \tfrac12 x_{i+1}^2` (zero beyond the
# ends), output :math:`i` reads its two neighbours as well: the Jacobian is tridiagonal, with
# :math:`J_{ii} = (1 - \tanh^2 x_i)(1 + \sin x_{i-1})`. Elements of the same parity never
# influence each other's outputs, so colouring them by parity, ``colors=i % 2``, gives the exact
# diagonal from two Jacobian-vector products, at any :math:`d`.

d_h = 40
x_h = torch.randn(d_h, dtype=torch.float64)


def neighbours(x):
    return F.pad(x[:-1], (1, 0)), F.pad(x[1:], (0, 1))


def h(x):
    left, right = neighbours(x)
    return torch.tanh(x) * (1 + torch.sin(left)) - right**2 / 2


# %%
# The two-colour diagonal matches the closed form and the diagonal of
# :func:`torch.func.jacfwd`'s dense Jacobian. With ``elementwise=True``, a wrong promise here,
# the single product with all ones returns the row sums of :math:`J`, not its diagonal.

left, right = neighbours(x_h)
diag_formula = (1 - torch.tanh(x_h) ** 2) * (1 + torch.sin(left))
diag_colors = vg.diagonal(h, x_h, colors=torch.arange(d_h) % 2)
J_h = torch.func.jacfwd(h)(x_h)
print(f"divergence of h: 2 colours {diag_colors.sum():.12f}, formula {diag_formula.sum():.12f}")
torch.testing.assert_close(diag_colors, diag_formula, **tight)
torch.testing.assert_close(diag_colors, J_h.diagonal(), **tight)
torch.testing.assert_close(vg.diagonal(h, x_h, elementwise=True), J_h.sum(1), **tight)

# %%
# Hutchinson's estimate
# ---------------------
# For a probe :math:`z` of random signs, :math:`z^\top J z` has mean :math:`\operatorname{tr} J`,
# from one Jacobian-vector product whatever :math:`d`. With :math:`k = 2000` probes the mean is
# within a few standard errors of the exact divergence, and the spread of the single estimates
# matches the variance :math:`\sum_{i \ne j} (J_{ij}^2 + J_{ij} J_{ji})`.

k = 2000
estimates = vg.hutchinson(field, x, num_samples=k, quantity="jacobian_trace")
mean, se = estimates.mean(), estimates.std() / math.sqrt(k)
J = torch.func.jacfwd(field)(x)
off = J - torch.diag(J.diagonal())
variance = (off**2 + off * off.T).sum()
print(f"estimate {mean:.4f} +- {se:.4f} (exact {div_exact:.4f})")
print(f"variance of one estimate: sample {estimates.var():.3f}, formula {variance:.3f}")
assert abs(mean - div_exact) < 4 * se
assert abs(estimates.var() / variance - 1) < 0.2

# %%
# With :math:`d = 6` there are only :math:`2^6` sign vectors, so the variance of one estimate can
# also be computed exactly, over all of them, and compared with the formula to the last digits.

signs = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=torch.float64)] * d)
every_estimate = (signs * (signs @ J.T)).sum(1)  # z^T J z for each z
torch.testing.assert_close(every_estimate.mean(), div_exact, **tight)
torch.testing.assert_close(every_estimate.var(correction=0), variance, **tight)

# %%
# A stochastic diagonal
# ---------------------
# ``quantity='jacobian_diagonal'`` returns :math:`z \odot J z` per probe, whose mean is
# :math:`\operatorname{diag} J`. Element :math:`i` of one estimate is
# :math:`J_{ii} + z_i \sum_{j \ne i} J_{ij} z_j`, so its variance is
# :math:`\sum_{j \ne i} J_{ij}^2`; for :math:`h`,
# :math:`\tanh^2 x_i \cos^2 x_{i-1} + x_{i+1}^2` (each term only where the neighbour exists).

estimates_h = vg.hutchinson(h, x_h, num_samples=k, quantity="jacobian_diagonal")
mean_h, se_h = estimates_h.mean(0), estimates_h.std(0) / math.sqrt(k)
variance_formula = (torch.tanh(x_h) * torch.cos(left)) ** 2 + right**2
variance_formula[0] = right[0] ** 2  # no left neighbour
z_scores = (mean_h - diag_formula) / se_h
variance_ratio = estimates_h.var(0) / variance_formula
print(f"largest |mean - diagonal| / standard error: {z_scores.abs().max():.2f}")
print(f"largest |sample / formula - 1| of the variances: {(variance_ratio - 1).abs().max():.3f}")
assert (z_scores.abs() < 5).all()
assert ((variance_ratio - 1).abs() < 0.2).all()

# %%
# The seeded probes give the same figures at every build, and the tolerances leave room. The mean of
# 2000 bounded estimates is close to normal, so a z-score above 5 has a chance of about :math:`6
# \cdot 10^{-7}` per element. For the variances: element :math:`i` of an estimate takes the values
# :math:`J_{ii} \pm J_{i,i-1} \pm J_{i,i+1}`, whose kurtosis is at most 2, so the sample variance of
# 2000 estimates has a relative standard deviation below :math:`1/\sqrt{2000} \approx 0.022`; 0.2 is
# nine of them. The figure shows the variance of one estimate per element, sampled and from the
# formula; the mean of :math:`k` estimates has :math:`1/k` of it.

fig, ax = plt.subplots()
_ = ax.plot(variance_formula.numpy(), "-", color="grey", label="formula")
_ = ax.plot(estimates_h.var(0).numpy(), "o", markersize=4, label=f"sample of {k} estimates")
_ = ax.set(title="Stochastic diagonal of J: variance of one estimate", xlabel="element i")
_ = ax.set(ylabel=r"variance of $(z \odot J z)_i$")
_ = ax.legend()

# %%
# The Laplacian of a network
# --------------------------
# A physics-informed network :math:`u : \mathbb{R}^d \to \mathbb{R}` enters the PDE residual
# through :math:`\Delta u = \operatorname{tr} H`. :func:`vecgrad.diagonal` with ``of='hessian'``
# computes the diagonal of :math:`H` from :math:`d` Hessian-vector products (forward mode over
# the reverse-mode gradient). With ``chunk_size=c`` it holds :math:`c` products of :math:`d`
# elements at a time and keeps only their diagonal entries: :math:`c\, d` numbers instead of the
# :math:`d^2` of :math:`H`. Without it, all :math:`d` products are held at once, as much as
# :math:`H`.

net = torch.nn.Sequential(
    torch.nn.Linear(d, 32),
    torch.nn.Tanh(),
    torch.nn.Linear(32, 32),
    torch.nn.Tanh(),
    torch.nn.Linear(32, 1),
).double()


def u(x):
    return net(x).squeeze(-1)


# %%
# At eight collocation points, two products at a time, the Laplacian matches the trace of
# :func:`torch.func.hessian`.

points = torch.randn(8, d, dtype=torch.float64)
lap_exact = torch.stack([vg.diagonal(u, p, of="hessian", chunk_size=2).sum() for p in points])
lap_reference = torch.stack([torch.func.hessian(u)(p).trace() for p in points])
print("Laplacian at the points:", [f"{v:.5f}" for v in lap_exact.tolist()])
torch.testing.assert_close(lap_exact, lap_reference, **tight)

# %%
# The stochastic Laplacian
# ------------------------
# ``quantity='hessian_trace'`` estimates :math:`\Delta u` from Hessian-vector products with
# random signs. At the first point, 2000 probes give an estimate within a few standard errors;
# the spread of a single estimate is :math:`2 \sum_{i \ne j} H_{ij}^2` for a symmetric :math:`H`.

estimates = vg.hutchinson(u, points[0], num_samples=k, quantity="hessian_trace")
mean, se = estimates.mean(), estimates.std() / math.sqrt(k)
H = torch.func.hessian(u)(points[0])
variance = 2 * ((H - torch.diag(H.diagonal())) ** 2).sum()
print(f"estimate {mean:.5f} +- {se:.5f} (exact {lap_exact[0]:.5f})")
print(f"variance of one estimate: sample {estimates.var():.5f}, formula {variance:.5f}")
assert abs(mean - lap_exact[0]) < 4 * se
assert abs(estimates.var() / variance - 1) < 0.2

# %%
# Costs: products counted
# -----------------------
# The cost is counted in products (and in how many are batched together, below). Counting the calls
# of :math:`h` with ``chunk_size=1`` (one call per product) shows them: :math:`d` for the exact
# diagonal, two with the colours, one per probe for Hutchinson, here 16.


def products(run):
    calls = []

    def counted(t):
        calls.append(1)
        return h(t)

    _ = run(counted)
    return len(calls)


# %%
# The counts at :math:`d = 40`:

parity = torch.arange(d_h) % 2
counts = {
    "diagonal": products(lambda f: vg.diagonal(f, x_h, chunk_size=1)),
    "diagonal, 2 colours": products(lambda f: vg.diagonal(f, x_h, colors=parity, chunk_size=1)),
    "hutchinson, 16": products(
        lambda f: vg.hutchinson(f, x_h, num_samples=16, quantity="jacobian_trace", chunk_size=1)
    ),
}
print(f"products at d = {d_h}:", counts)
assert counts == {"diagonal": d_h, "diagonal, 2 colours": 2, "hutchinson, 16": 16}

# %%
# Costs: time
# -----------
# We time the divergence of :math:`h` and the Laplacian of a one-hidden-layer MLP at
# :math:`d = 16, 128, 1024`, each against the full matrix from :mod:`torch.func`, with
# :func:`vecgrad.time_call`: one run on the machine that built this page, printed and drawn, not
# checked. The divergence first.

dims = (16, 128, 1024)


def divergence_calls(p):
    colors = torch.arange(p.numel()) % 2
    return {
        "diagonal (d JVPs)": lambda: vg.diagonal(h, p),
        "diagonal, 2 colours": lambda: vg.diagonal(h, p, colors=colors),
        "jacfwd().trace()": lambda: torch.func.jacfwd(h)(p).trace(),
        "hutchinson, 16 probes": lambda: vg.hutchinson(
            h, p, num_samples=16, quantity="jacobian_trace"
        ),
    }


# %%
# For the Laplacian, one more entry: the exact diagonal with ``chunk_size=64``, whose memory is
# that of 64 products at a time, paid for with :math:`d / 64` batched passes.


def laplacian_calls(m, p):
    return {
        "diagonal (d HVPs)": lambda: vg.diagonal(m, p, of="hessian"),
        "diagonal, chunk_size=64": lambda: vg.diagonal(m, p, of="hessian", chunk_size=64),
        "hessian().trace()": lambda: torch.func.hessian(m)(p).trace(),
        "hutchinson, 16 probes": lambda: vg.hutchinson(
            m, p, num_samples=16, quantity="hessian_trace"
        ),
    }


def mlp(dim):
    model = torch.nn.Sequential(torch.nn.Linear(dim, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    model = model.double()

    def m(t):
        return model(t).squeeze(-1)

    return m


# %%
# Before timing, every exact method is checked against the trace of the full matrix at the
# smallest :math:`d`.

p = torch.randn(dims[0], dtype=torch.float64)
m = mlp(dims[0])
for calls, trace in [
    (divergence_calls(p), torch.func.jacfwd(h)(p).trace()),
    (laplacian_calls(m, p), torch.func.hessian(m)(p).trace()),
]:
    for name, call in calls.items():
        if name.startswith("diagonal"):  # vecgrad's exact ones; the rest give the reference
            torch.testing.assert_close(call().sum(), trace, **tight)

# %%
# Then each call is timed at each size.

times = {"divergence": {}, "Laplacian": {}}
for dim in dims:
    p, m = torch.randn(dim, dtype=torch.float64), mlp(dim)
    for kind, calls in [("divergence", divergence_calls(p)), ("Laplacian", laplacian_calls(m, p))]:
        for name, call in calls.items():
            times[kind].setdefault(name, []).append(vg.time_call(call, min_run_time=0.05))
for kind, rows in times.items():
    for name, values in rows.items():
        print(f"{kind:10} {name:24}", " ".join(f"{t * 1e3:7.2f} ms" for t in values))

# %%
# What the figure shows when the machine is not busy with other work: at :math:`d = 1024`,
# Hutchinson's 16 products cost a fraction of the :math:`d` of the exact methods, and so do the
# two colours, which are exact. Without structure the exact diagonal costs about what the full
# matrix costs, as :func:`torch.func.jacfwd` and :func:`torch.func.hessian` also take :math:`d`
# vectorised products; its gain is memory, bounded by ``chunk_size`` at the price of time:
# :math:`d / 64` batched passes instead of one.

fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True, layout="constrained")
for ax, (kind, rows) in zip(axes, times.items(), strict=True):
    for (name, values), marker in zip(rows.items(), "os^v", strict=True):
        _ = ax.loglog(dims, values, marker=marker, label=name)
    _ = ax.set(title=f"{kind}: time per call", xlabel="dimension d")
    _ = ax.set(xticks=dims, xticklabels=[str(dim) for dim in dims])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    _ = ax.legend(fontsize="small")
_ = axes[0].set(ylabel="seconds (build machine)")

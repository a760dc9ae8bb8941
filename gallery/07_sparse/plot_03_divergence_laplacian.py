r"""
Divergence and Laplacian
========================

A continuous normalising flow needs the divergence of its vector field, a physics-informed
network the Laplacian of its output: the traces of a Jacobian and of a Hessian. This example
computes both exactly with :func:`vecgrad.diagonal` and estimates them with
:func:`vecgrad.hutchinson`, and checks them against closed forms and :func:`torch.func.hessian`.
"""

import math

import matplotlib.pyplot as plt
import torch

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# The divergence of a vector field
# --------------------------------
# The field :math:`f(x) = \tanh(W x + b)` on :math:`\mathbb{R}^d` has Jacobian
# :math:`J = \operatorname{diag}(1 - \tanh^2(z))\, W` with :math:`z = W x + b`, so its
# divergence is :math:`\nabla \cdot f = \sum_i (1 - \tanh^2 z_i)\, W_{ii}`. The exact
# :func:`vecgrad.diagonal` takes one Jacobian-vector product per element, :math:`d` in all.
# Float64, so the comparison can be tight.

d = 6
W = torch.randn(d, d, dtype=torch.float64)
b = torch.randn(d, dtype=torch.float64)
x = torch.randn(d, dtype=torch.float64)


def field(x):
    return torch.tanh(W @ x + b)


div_formula = ((1 - torch.tanh(W @ x + b) ** 2) * W.diagonal()).sum()
div_exact = vg.diagonal(field, x).sum()
print(f"divergence: diagonal {div_exact:.12f}, formula {div_formula:.12f}")
torch.testing.assert_close(div_exact, div_formula)

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
torch.testing.assert_close(div_elementwise, div_g)

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
# The Laplacian of a network
# --------------------------
# A physics-informed network :math:`u : \mathbb{R}^d \to \mathbb{R}` enters the PDE residual
# through :math:`\Delta u = \operatorname{tr} H`. :func:`vecgrad.diagonal` with ``of='hessian'``
# computes the diagonal of :math:`H` from :math:`d` Hessian-vector products (forward mode over
# the reverse-mode gradient), never forming :math:`H`. At eight collocation points it matches the
# trace of :func:`torch.func.hessian`.

net = torch.nn.Sequential(
    torch.nn.Linear(d, 32),
    torch.nn.Tanh(),
    torch.nn.Linear(32, 32),
    torch.nn.Tanh(),
    torch.nn.Linear(32, 1),
).double()


def u(x):
    return net(x).squeeze(-1)


points = torch.randn(8, d, dtype=torch.float64)
lap_exact = torch.stack([vg.diagonal(u, p, of="hessian").sum() for p in points])
lap_reference = torch.stack([torch.func.hessian(u)(p).trace() for p in points])
print("Laplacian at the points:", [f"{v:.5f}" for v in lap_exact.tolist()])
torch.testing.assert_close(lap_exact, lap_reference)

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
# Costs
# -----
# The exact diagonal takes :math:`d` Hessian-vector products, the full Hessian :math:`d` as well
# plus :math:`d^2` memory, and Hutchinson a fixed number (here 16) whatever :math:`d`, at the
# price of noise. At these small sizes the fixed cost of a call weighs as much as the products.
# The times below are one run on the machine that built this page, measured with
# :func:`vecgrad.time_call`; they are not checked.

dims, times = (4, 16, 64), {"diagonal (exact)": [], "hessian().trace()": [], "hutchinson, 16": []}
for dim in dims:
    model = torch.nn.Sequential(torch.nn.Linear(dim, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    model = model.double()

    def m(t, model=model):
        return model(t).squeeze(-1)

    p = torch.randn(dim, dtype=torch.float64)
    calls = {
        "diagonal (exact)": lambda m=m, p=p: vg.diagonal(m, p, of="hessian"),
        "hessian().trace()": lambda m=m, p=p: torch.func.hessian(m)(p).trace(),
        "hutchinson, 16": lambda m=m, p=p: vg.hutchinson(
            m, p, num_samples=16, quantity="hessian_trace"
        ),
    }
    for name, call in calls.items():
        times[name].append(vg.time_call(call, min_run_time=0.05))

fig, ax = plt.subplots()
for name, values in times.items():
    _ = ax.loglog(dims, values, "o-", label=name)
_ = ax.set(title="Laplacian of an MLP: time per call (build machine)", xlabel="dimension d")
_ = ax.set(xticks=dims, xticklabels=[str(dim) for dim in dims])
ax.xaxis.set_minor_locator(plt.NullLocator())
_ = ax.set(ylabel="seconds")
_ = ax.legend()

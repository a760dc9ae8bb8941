r"""
Sparse Hessians by star colouring
=================================

A Hessian is symmetric, and a colouring of its columns can use that: an entry missing from one
product can be read from another. This example star-colours an arrow-shaped and a banded
Hessian pattern with :func:`vecgrad.color_jacobian`, compares the colour counts with the column
colouring of a Jacobian, and computes the Hessians with :func:`vecgrad.sparse_hessian`.
"""

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# Many local variables and one global one
# ---------------------------------------
# A model with one parameter :math:`\theta` shared by all data points and a latent value
# :math:`z_i` per point, fitted by minimising
# :math:`f(\theta, z) = \sum_i \operatorname{softplus}(\theta z_i - y_i) + \tfrac12 \sum_i z_i^2
# + \tfrac12 \theta^2`. Each term couples :math:`z_i` to :math:`\theta` only, so the Hessian in
# :math:`x = (\theta, z_1, \ldots, z_m)` is an arrow: a dense first row and column and a
# diagonal.

m = 1000
y = torch.randn(m, dtype=torch.float64)


def f_arrow(x):
    theta, z = x[0], x[1:]
    return F.softplus(theta * z - y).sum() + 0.5 * (z**2).sum() + 0.5 * theta**2


n = m + 1
arrow = torch.eye(n, dtype=torch.bool)
arrow[0] = arrow[:, 0] = True
x = torch.randn(n, dtype=torch.float64)
print("Hessian pattern of f equals the arrow:", torch.equal(vg.hessian(f_arrow, x) != 0, arrow))
assert torch.equal(vg.hessian(f_arrow, x) != 0, arrow)

# %%
# Two colours instead of n
# ------------------------
# A column colouring (``strategy='forward'``, as for a Jacobian) gives columns that share a row
# different colours. Row 0 holds every column, so it needs :math:`n` colours: no better than the
# dense Hessian. A star colouring (``strategy='symmetric'``) only asks that adjacent columns
# differ and that no path of four columns alternates between two colours: the centre takes one
# colour, all the leaves another.

column = vg.color_jacobian(arrow, strategy="forward")
star = vg.color_jacobian(arrow, strategy="symmetric")
print(column)
print(star)
assert column.num_colors == n
assert star.num_colors == 2
assert star.colors[0] != star.colors[1]
assert bool((star.colors[1:] == star.colors[1]).all())

# %%
# Reading the entries back
# ------------------------
# With one product :math:`b_c = H s_c` per colour (:math:`s_c` the sum of the one-hot vectors
# of colour :math:`c`), :math:`H_{ii}` is entry :math:`i` of :math:`b_{c(i)}`. A leaf :math:`i`
# has one neighbour of the centre's colour, the centre itself, so :math:`H_{i0}` is entry
# :math:`i` of :math:`b_{c(0)}`. The centre has :math:`m` neighbours of the leaves' colour, whose
# entries are summed in its row of :math:`b_{c(1)}`; :math:`H_{0i} = H_{i0}` is read from the
# leaf's row instead. :func:`vecgrad.sparse_hessian` finds those places once per colouring.

H_sparse = vg.sparse_hessian(f_arrow, x, sparsity=star)
H_dense = torch.func.hessian(f_arrow)(x)
print("stored entries:", H_sparse.values().numel(), "of", n * n)
print("max |sparse - torch.func.hessian| =", (H_sparse.to_dense() - H_dense).abs().max().item())
assert H_sparse.values().numel() == 3 * n - 2
torch.testing.assert_close(H_sparse.to_dense(), H_dense, rtol=1e-14, atol=1e-14)

# %%
# The colourings drawn
# --------------------
# The first twelve rows and columns of the pattern, each nonzero coloured by its column's
# colour: left the column colouring, a colour per column; right the star colouring, two.


def coloured_pattern(pattern, colors):
    image = torch.full(pattern.shape, float("nan"))
    rows, cols = pattern.nonzero().T
    image[rows, cols] = colors[cols].float()
    return image.numpy()


k = 12
fig, axes = plt.subplots(1, 2, layout="constrained")
for ax, coloring, title in [(axes[0], column, "column colouring"), (axes[1], star, "star")]:
    colors = coloring.colors[:k]
    _ = ax.imshow(coloured_pattern(arrow[:k, :k], colors), cmap="tab20", vmin=0, vmax=19)
    _ = ax.set(title=f"{title}: {coloring.num_colors} colours", xlabel="column j", ylabel="row i")

# %%
# Timing
# ------
# Two Hessian-vector products against the :math:`n` of :func:`vecgrad.hessian`, timed with
# :func:`vecgrad.time_call` (printed, not checked). The colouring is made once and reused, as
# in a Newton loop.

t_sparse = vg.time_call(lambda: vg.sparse_hessian(f_arrow, x, sparsity=star), min_run_time=0.1)
t_dense = vg.time_call(lambda: vg.hessian(f_arrow, x), min_run_time=0.1)
print(f"n = {n}: sparse_hessian {t_sparse * 1e3:.2f} ms, hessian {t_dense * 1e3:.1f} ms")
print(f"speed-up: {t_dense / t_sparse:.0f}x")

# %%
# A banded Hessian
# ----------------
# A chain of particles with springs to the first and second neighbours,
# :math:`f(x) = \sum_i \cos(x_{i+1} - x_i) + \tfrac{1}{10} \sum_i (x_{i+2} - x_i)^2
# + \tfrac14 \sum_i x_i^4`, has a pentadiagonal Hessian. A row holds five nonzeros, so the
# column colouring needs five colours, and here the star colouring needs five too: symmetry saves
# colours where a few rows are much fuller than the others, as in the arrow. Five products give
# the Hessian at any length of the chain.


def f_chain(x):
    return (
        torch.cos(x[1:] - x[:-1]).sum() + 0.1 * ((x[2:] - x[:-2]) ** 2).sum() + 0.25 * (x**4).sum()
    )


n_chain = 400
band = torch.ones(n_chain, n_chain).tril(2).triu(-2).bool()
x_chain = torch.randn(n_chain, dtype=torch.float64)
band_column = vg.color_jacobian(band, strategy="forward")
band_star = vg.color_jacobian(band, strategy="symmetric")
print("column colours:", band_column.num_colors, "| star colours:", band_star.num_colors)
assert band_column.num_colors == 5
assert band_star.num_colors == 5

# %%
# The five products give the whole Hessian: it equals :func:`torch.func.hessian`'s in float64,
# and its nonzeros are exactly the band.

H_band = vg.sparse_hessian(f_chain, x_chain, sparsity=band_star).to_dense()
H_band_ref = torch.func.hessian(f_chain)(x_chain)
print("max |sparse - torch.func.hessian| =", (H_band - H_band_ref).abs().max().item())
torch.testing.assert_close(H_band, H_band_ref, rtol=1e-14, atol=1e-13)
assert torch.equal(H_band_ref != 0, band)

# %%
# Timed as before, with the colouring reused (printed, not checked).

t_sparse = vg.time_call(
    lambda: vg.sparse_hessian(f_chain, x_chain, sparsity=band_star), min_run_time=0.1
)
t_dense = vg.time_call(lambda: vg.hessian(f_chain, x_chain), min_run_time=0.1)
print(f"n = {n_chain}: sparse_hessian {t_sparse * 1e3:.2f} ms, hessian {t_dense * 1e3:.1f} ms")

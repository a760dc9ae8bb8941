r"""
Colouring made visible
======================

Columns of a sparse Jacobian that share no row can be found with one Jacobian-vector product.
This example colours a tridiagonal pattern and a 2-D five-point stencil with
:func:`vecgrad.color_jacobian`, draws the colours, and checks that the compressed products
decompress into exactly the dense Jacobian.
"""

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A tridiagonal Jacobian
# ----------------------
# Output :math:`i` of :math:`f(x)_i = x_i^2 + \sin(x_{i-1} x_{i+1})` (zero beyond the ends)
# depends on :math:`x_{i-1}, x_i, x_{i+1}` only, so its Jacobian is tridiagonal. We write the
# pattern down from that reasoning, not from the function, and colour its columns. A row holds
# three nonzeros, whose columns need three different colours: the lower bound is 3.

n = 12


def f_band(x):
    left, right = F.pad(x[:-1], (1, 0)), F.pad(x[1:], (0, 1))
    return x**2 + torch.sin(left * right)


band = torch.ones(n, n).tril(1).triu(-1).bool()
band_coloring = vg.color_jacobian(band, strategy="forward")
print(band_coloring)
print("column colours:", band_coloring.colors.tolist())
assert band_coloring.num_colors == band_coloring.lower_bound == 3

# %%
# What a colouring promises
# -------------------------
# Columns of one colour must share no row: in every row, the colours of the nonzero columns are
# all different. We check that directly on the pattern, row by row.


def colours_distinct_in_rows(pattern, colors):
    for row in pattern:
        row_colors = colors[row]
        if row_colors.unique().numel() != row_colors.numel():
            return False
    return True


print("valid:", colours_distinct_in_rows(band, band_coloring.colors))
assert colours_distinct_in_rows(band, band_coloring.colors)

# %%
# Three products instead of twelve
# --------------------------------
# :func:`vecgrad.sparse_jacobian` adds up the one-hot directions of each colour, computes one
# Jacobian-vector product per colour and reads each nonzero from the product of its column's
# colour. In float64 the result equals :func:`torch.func.jacfwd`'s dense Jacobian to rounding.

x = torch.randn(n, dtype=torch.float64)
J_sparse = vg.sparse_jacobian(f_band, x, sparsity=band_coloring)
J_dense = torch.func.jacfwd(f_band)(x)
print("stored entries:", J_sparse.values().numel(), "of", n * n)
print("max |sparse - jacfwd| =", (J_sparse.to_dense() - J_dense).abs().max().item())
assert J_sparse.values().numel() == 3 * n - 2
torch.testing.assert_close(J_sparse.to_dense(), J_dense, rtol=1e-14, atol=1e-14)

# %%
# The compressed matrix
# ---------------------
# With the seed matrix :math:`S` (column :math:`c` holds ones on the columns of colour
# :math:`c`), the products form :math:`B = J S`, an :math:`n \times 3` matrix that holds every
# nonzero of :math:`J` once. We build :math:`S` and check :math:`B` against the dense Jacobian.

S = F.one_hot(band_coloring.colors, 3).to(torch.float64)
B = torch.stack([vg.jvp(f_band, x, S[:, c])[1] for c in range(3)], dim=1)
print("B = J S has shape", tuple(B.shape))
torch.testing.assert_close(B, J_dense @ S)
assert (J_dense != 0).sum() == (B != 0).sum()

# %%
# Left, the pattern with each nonzero coloured by its column's colour; right, the compressed
# matrix, each column one product. Both use one colour scale: colour 0, 1 and 2.


def coloured_pattern(pattern, colors):
    image = torch.full(pattern.shape, float("nan"))
    rows, cols = pattern.nonzero().T
    image[rows, cols] = colors[cols].float()
    return image.numpy()


compressed = torch.where(B != 0, torch.arange(3.0), float("nan")).numpy()
fig, axes = plt.subplots(1, 2, width_ratios=[n, 3 + 1], layout="constrained")
style = {"cmap": "viridis", "vmin": 0, "vmax": 2}
_ = axes[0].imshow(coloured_pattern(band, band_coloring.colors), **style)
image = axes[1].imshow(compressed, **style)
_ = axes[0].set(title="pattern of J, by column colour", xlabel="column j", ylabel="row i")
_ = axes[1].set(title="B = J S", xlabel="colour c", xticks=range(3))
_ = fig.colorbar(image, ax=axes, ticks=range(3), label="colour")

# %%
# A five-point stencil on a grid
# ------------------------------
# On an :math:`N \times N` grid flattened row by row, output :math:`(i, j)` of a discrete
# Laplacian plus a cube depends on :math:`(i, j)` and its four neighbours. A row of the
# Jacobian holds five nonzeros, so five colours at least, whatever :math:`N`. The pattern is
# built from the stencil's offsets, and :func:`vecgrad.jacobian_sparsity`, which probes the
# function, finds the same one.

N = 6
h2 = 1.0 / (N + 1) ** 2


def f_grid(u):
    v = F.pad(u.reshape(N, N), (1, 1, 1, 1))
    lap = 4 * v[1:-1, 1:-1] - v[:-2, 1:-1] - v[2:, 1:-1] - v[1:-1, :-2] - v[1:-1, 2:]
    return (lap / h2 + u.reshape(N, N) ** 3).reshape(-1)


idx = torch.arange(N * N).reshape(N, N)
stencil = torch.eye(N * N, dtype=torch.bool)
for a, b in [(idx[1:], idx[:-1]), (idx[:, 1:], idx[:, :-1])]:
    stencil[a.reshape(-1), b.reshape(-1)] = stencil[b.reshape(-1), a.reshape(-1)] = True
u = torch.randn(N * N, dtype=torch.float64)
probed = vg.jacobian_sparsity(f_grid, u)
print(
    "nonzeros:",
    int(stencil.sum()),
    "| probed equals built:",
    torch.equal(probed.to_dense(), stencil),
)
assert torch.equal(probed.to_dense(), stencil)

# %%
# Five colours
# ------------
# The colouring reaches the lower bound of 5: the 36 columns come from 5 Jacobian-vector
# products. Again the decompressed Jacobian equals :func:`torch.func.jacfwd`'s in float64.

grid_coloring = vg.color_jacobian(stencil, strategy="forward")
print(grid_coloring)
assert grid_coloring.num_colors == grid_coloring.lower_bound == 5
assert colours_distinct_in_rows(stencil, grid_coloring.colors)
J_grid = vg.sparse_jacobian(f_grid, u, sparsity=grid_coloring).to_dense()
print("max |sparse - jacfwd| =", (J_grid - torch.func.jacfwd(f_grid)(u)).abs().max().item())
torch.testing.assert_close(J_grid, torch.func.jacfwd(f_grid)(u), rtol=1e-14, atol=1e-12)

# %%
# Drawn on the grid, the colours form diagonal stripes: a point and its four neighbours always
# carry five different colours. Left, the colour of each grid point; right, the Jacobian's
# pattern coloured by column, on the same colour scale.

fig, axes = plt.subplots(1, 2, width_ratios=[1, 2], layout="constrained")
style = {"cmap": "viridis", "vmin": 0, "vmax": 4}
_ = axes[0].imshow(grid_coloring.colors.reshape(N, N).numpy(), **style)
image = axes[1].imshow(coloured_pattern(stencil, grid_coloring.colors), **style)
_ = axes[0].set(title="colour of grid point", xlabel="j", ylabel="i")
_ = axes[1].set(title="pattern of J, by column colour", xlabel="column", ylabel="row")
_ = fig.colorbar(image, ax=axes, ticks=range(5), label="colour", shrink=0.6)

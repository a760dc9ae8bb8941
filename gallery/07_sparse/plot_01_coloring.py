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
# three nonzeros, whose columns need three different colours: the lower bound is 3. With three
# colours, any three neighbouring columns take all three, so a valid colouring repeats with
# period 3: column :math:`j` gets colour :math:`j \bmod 3`, up to renaming the colours.

n = 12


def f_band(x):
    left, right = F.pad(x[:-1], (1, 0)), F.pad(x[1:], (0, 1))
    return x**2 + torch.sin(left * right)


band = torch.ones(n, n).tril(1).triu(-1).bool()
band_coloring = vg.color_jacobian(band, strategy="forward")
print(band_coloring)
print("column colours:", band_coloring.colors.tolist())
assert band_coloring.num_colors == band_coloring.lower_bound == 3
first_three = band_coloring.colors[:3]
assert sorted(first_three.tolist()) == [0, 1, 2]
assert torch.equal(band_coloring.colors, first_three[torch.arange(n) % 3])

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
print("max |sparse - jacfwd| =", (J_sparse.to_dense() - J_dense).abs().max().item())
torch.testing.assert_close(J_sparse.to_dense(), J_dense, rtol=1e-14, atol=1e-14)

# %%
# A pattern may cover more than the nonzeros
# ------------------------------------------
# The pattern must hold every entry that can be nonzero; it may hold more. Here it does: the ends
# are padded with zeros, so :math:`\sin(0 \cdot x_1)` makes :math:`J_{0,1} = 0`, and likewise
# :math:`J_{n-1,n-2} = 0`. The dense Jacobian has :math:`3n - 4 = 32` nonzeros, and the sparse
# result stores all :math:`3n - 2 = 34` entries of the pattern, these two zeros included.

stored = J_sparse.values()
zeros = J_sparse.indices()[:, stored == 0]
print("stored entries:", stored.numel(), "| nonzeros of jacfwd:", int((J_dense != 0).sum()))
print("stored zeros at (row, column):", zeros.T.tolist())
assert stored.numel() == 3 * n - 2
assert int((J_dense != 0).sum()) == 3 * n - 4
assert zeros.T.tolist() == [[0, 1], [n - 1, n - 2]]

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
# To draw the pattern, each nonzero :math:`(i, j)` gets the colour of its column :math:`j`; the
# entries outside the pattern stay blank (NaN).


def coloured_pattern(pattern, colors):
    image = torch.full(pattern.shape, float("nan"))
    rows, cols = pattern.nonzero().T
    image[rows, cols] = colors[cols].float()
    return image.numpy()


# %%
# Left, the pattern with each nonzero coloured by its column's colour; right, the compressed
# matrix, each column one product. Both use one colour scale: colour 0, 1 and 2.

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
# Jacobian holds five nonzeros, so five colours at least, whatever :math:`N`.

N = 6
h2 = 1.0 / (N + 1) ** 2


def f_grid(u):
    v = F.pad(u.reshape(N, N), (1, 1, 1, 1))
    lap = 4 * v[1:-1, 1:-1] - v[:-2, 1:-1] - v[2:, 1:-1] - v[1:-1, :-2] - v[1:-1, 2:]
    return (lap / h2 + u.reshape(N, N) ** 3).reshape(-1)


# %%
# We build the pattern from the stencil's offsets: the diagonal, and each pair of neighbours in
# both directions. Every point has five entries but those on the edge of the grid, which lose
# one per missing neighbour: :math:`4N` in all, so :math:`5N^2 - 4N` nonzeros.

idx = torch.arange(N * N).reshape(N, N)
stencil = torch.eye(N * N, dtype=torch.bool)
for a, b in [(idx[1:], idx[:-1]), (idx[:, 1:], idx[:, :-1])]:
    stencil[a.reshape(-1), b.reshape(-1)] = stencil[b.reshape(-1), a.reshape(-1)] = True
print("nonzeros:", int(stencil.sum()), "| 5 N^2 - 4 N =", 5 * N**2 - 4 * N)
assert int(stencil.sum()) == 5 * N**2 - 4 * N

# %%
# :func:`vecgrad.jacobian_sparsity` finds the pattern by probing instead: it computes dense
# Jacobians at ``num_points`` points (3 by default) and keeps every entry that is nonzero at one
# of them. That costs ``num_points`` dense Jacobians, so find the pattern once, and reuse it (or
# its colouring) at every later point, for example at every step of a Newton loop. Here it finds
# the built pattern.

u = torch.randn(N * N, dtype=torch.float64)
probed = vg.jacobian_sparsity(f_grid, u)
print("probed equals built:", torch.equal(probed.to_dense(), stencil))
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

# %%
# A pattern that misses entries
# -----------------------------
# Nothing checks the pattern against the function: entries outside it are assumed zero. Add a
# term in :math:`x_{i-2}` to the tridiagonal function and keep the tridiagonal colouring. Column
# :math:`i - 2` has the colour of column :math:`i + 1`, so the product of that colour holds
# :math:`J_{i,i+1} + J_{i,i-2}` in row :math:`i`, and that sum is returned as
# :math:`J_{i,i+1}`, with no error or warning. Entry :math:`J_{n-1,n-3}` is lost altogether.


def f_wider(x):
    return f_band(x) + 0.5 * F.pad(x[:-2], (2, 0)) ** 2


J_wrong = vg.sparse_jacobian(f_wider, x, sparsity=band_coloring).to_dense()
J_true = torch.func.jacfwd(f_wider)(x)
i = torch.arange(2, n - 1)
expected = J_true * band
expected[i, i + 1] += J_true[i, i - 2]
largest = (J_wrong - J_true)[band].abs().max()
print("largest error inside the pattern:", largest.item())
torch.testing.assert_close(J_wrong, expected, rtol=1e-14, atol=1e-14)
torch.testing.assert_close(largest, J_true[i, i - 2].abs().max(), rtol=1e-14, atol=1e-14)

# %%
# Probing finds the wider pattern: four diagonals, :math:`4n - 6` entries without the two that
# are zero at every point. A row holds four of them, so four colours, and the Jacobian is right.

wider = vg.jacobian_sparsity(f_wider, x)
wider_coloring = vg.color_jacobian(wider)
J_right = vg.sparse_jacobian(f_wider, x, sparsity=wider_coloring).to_dense()
print("pattern nonzeros:", int(wider.to_dense().sum()), "| colours:", wider_coloring.num_colors)
assert torch.equal(wider.to_dense(), J_true != 0)
assert int(wider.to_dense().sum()) == 4 * n - 6
assert wider_coloring.num_colors == wider_coloring.lower_bound == 4
torch.testing.assert_close(J_right, J_true, rtol=1e-14, atol=1e-14)

# %%
# When a pattern does not pay
# ---------------------------
# A colouring saves products only when each row has few nonzeros (each column, in reverse mode). The
# Jacobian of a dense layer, :math:`\tanh(W x)`, has no zeros: every colouring of its full pattern
# needs :math:`n` colours, and :func:`vecgrad.sparse_jacobian` then does the work of
# :func:`vecgrad.jacobian` plus the bookkeeping of :math:`n^2` stored entries (and, given a pattern,
# the colouring).

n_dense = 300
W = torch.randn(n_dense, n_dense, dtype=torch.float64) / n_dense**0.5
x_dense = torch.randn(n_dense, dtype=torch.float64)


def f_dense(x):
    return torch.tanh(W @ x)


full = torch.ones(n_dense, n_dense, dtype=torch.bool)
full_coloring = vg.color_jacobian(full)
print("colours:", full_coloring.num_colors, "for n =", n_dense)
assert full_coloring.num_colors == full_coloring.lower_bound == n_dense
J_full = vg.sparse_jacobian(f_dense, x_dense, sparsity=full_coloring).to_dense()
torch.testing.assert_close(J_full, (1 - f_dense(x_dense) ** 2)[:, None] * W)

# %%
# Timed on the machine that built this page with :func:`vecgrad.time_call` (printed, not
# checked): from the pattern, with the colouring reused, and the dense :func:`vecgrad.jacobian`.
# For a dense Jacobian, :func:`vecgrad.jacobian` is the one to call.


def milliseconds(call):
    return vg.time_call(call, min_run_time=0.05) * 1e3


times = {
    "sparse_jacobian, from the pattern": lambda: vg.sparse_jacobian(
        f_dense, x_dense, sparsity=full
    ),
    "sparse_jacobian, colouring reused": lambda: vg.sparse_jacobian(
        f_dense, x_dense, sparsity=full_coloring
    ),
    "jacobian": lambda: vg.jacobian(f_dense, x_dense),
}
for name, call in times.items():
    print(f"{name:34} {milliseconds(call):6.1f} ms")

"""
Complex inputs and outputs
==========================

What ``.grad`` means for a real loss of a complex tensor, why gradient descent still works,
holomorphic and non-holomorphic functions, and the Jacobian of a complex map as a real Jacobian
of twice the size. Every derivative is checked against finite differences taken separately on
the real and imaginary parts.
"""

# sphinx_gallery_thumbnail_number = 1
import warnings

import matplotlib.pyplot as plt
import torch
from torch.func import jacfwd, jacrev, jvp, vjp

import vecgrad as vg

_ = torch.manual_seed(0)
# torch 2.13 loads its forward-mode rules through the deprecated torch.jit.script on first use;
# that DeprecationWarning comes from inside torch, so exactly that message is silenced.
warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
c128 = torch.complex128

# %%
# The gradient of a real loss
# ---------------------------
# Write each complex number as :math:`z = a + ib`. A real loss :math:`L(z)` is then a function of
# the :math:`2n` real numbers :math:`(a, b)`, and that is what PyTorch differentiates:
# ``z.grad`` is :math:`\partial L / \partial a + i\, \partial L / \partial b`, the ordinary
# gradient of :math:`L` over the real and imaginary parts, packed as complex numbers. In
# Wirtinger calculus, with :math:`\partial / \partial \bar z = (\partial / \partial a + i\,
# \partial / \partial b) / 2`, it is :math:`2\, \partial L / \partial \bar z`, twice the
# *conjugate* Wirtinger derivative: PyTorch's convention. The loss below,
# :math:`L(z) = \sum_k |z_k^2 - c_k|^2`, has :math:`\partial L / \partial \bar z_k =
# 2 (z_k^2 - c_k) \bar z_k`.

c = torch.tensor([1.0 - 1.0j, -2.0 + 0.5j], dtype=c128)


def loss_fn(z):
    return (z**2 - c).abs().square().sum()


z0 = torch.tensor([0.4 + 0.9j, -0.3 - 0.2j], dtype=c128)
z = z0.clone().requires_grad_()
loss_fn(z).backward()
print("z.grad:", z.grad)
torch.testing.assert_close(z.grad, 2 * (2 * (z0**2 - c) * z0.conj()))

# %%
# The independent check: central finite differences along the real and the imaginary part of
# each element, :math:`\partial L / \partial a_k` and :math:`\partial L / \partial b_k`.


def finite_gradient(fn, z, h=1e-6):
    parts = []
    for step in (h, 1j * h):  # along a_k, then along b_k
        rows = [fn(z + step * e) - fn(z - step * e) for e in torch.eye(len(z), dtype=c128)]
        parts.append(torch.stack(rows).real / (2 * h))
    return torch.complex(*parts)


by_differences = finite_gradient(loss_fn, z0)
print("finite differences:", by_differences)
torch.testing.assert_close(z.grad, by_differences, rtol=1e-7, atol=1e-8)

# %%
# Because ``z.grad`` is the real gradient, the step ``z -= lr * z.grad`` is plain gradient
# descent on :math:`(a, b)`, and the loss goes down. (With the Wirtinger derivative
# :math:`\partial L / \partial z` instead, the step would have to be conjugated first.) The
# iterates converge to square roots of :math:`c`, and they are exactly those of gradient descent
# written on the real view, two real numbers per element.

z = z0.clone().requires_grad_()
r = torch.view_as_real(z0).clone().requires_grad_()
path = [z0.clone()]
for _ in range(200):
    for t, loss in ((z, loss_fn(z)), (r, loss_fn(torch.view_as_complex(r)))):
        (g,) = torch.autograd.grad(loss, t)
        with torch.no_grad():
            t -= 0.05 * g
    path.append(z.detach().clone())
path = torch.stack(path)
print(f"loss after 200 steps: {loss_fn(z).item():.2e}, z = {z.detach()}")
torch.testing.assert_close(torch.view_as_real(z.detach()), r.detach())
torch.testing.assert_close(z.detach() ** 2, c)

fig, ax = plt.subplots()
for k in range(2):
    ax.plot(path[:, k].real, path[:, k].imag, ".-", markersize=3, label=f"z[{k}]")
    roots = torch.stack([c[k].sqrt(), -c[k].sqrt()])
    ax.plot(roots.real, roots.imag, "kx", markersize=9)
_ = ax.set(xlabel="real part", ylabel="imaginary part", aspect="equal")
_ = ax.set(title="Descent with z.grad reaches square roots of c (crosses)")
_ = ax.legend()

# %%
# Holomorphic and non-holomorphic functions
# -----------------------------------------
# For :math:`f : \mathbb{C} \to \mathbb{C}` with :math:`f = p + iq`, the real derivative is a
# 2 by 2 matrix :math:`\begin{pmatrix} p_a & p_b \\ q_a & q_b \end{pmatrix}`. The function is
# holomorphic (complex differentiable) when this matrix is multiplication by one complex number
# :math:`f'(z) = \alpha + i\beta`, that is :math:`\begin{pmatrix} \alpha & -\beta \\ \beta &
# \alpha \end{pmatrix}`: the Cauchy-Riemann equations :math:`p_a = q_b,\ p_b = -q_a`, or
# :math:`\partial f / \partial \bar z = 0`. :math:`z^2` and :math:`e^z` are holomorphic;
# :math:`\bar z`, :math:`|z|^2` and :math:`\operatorname{Re} z` are not, and losses are never
# holomorphic (a real-valued holomorphic function is constant). Every function has the two
# Wirtinger derivatives :math:`\partial f / \partial z` and :math:`\partial f / \partial \bar z`,
# and they give the real matrix: its columns are :math:`f_a = \partial f / \partial z +
# \partial f / \partial \bar z` and :math:`f_b = i (\partial f / \partial z - \partial f /
# \partial \bar z)`, split into real and imaginary parts. For :math:`|z|^2 = z \bar z` they are
# :math:`(\bar z, z)`, for :math:`\operatorname{Re} z = (z + \bar z)/2` both are 1/2. The
# matrices below come from finite differences on the real and imaginary parts, and are checked
# against these formulas.


def real_derivative(f, z, h=1e-6):
    """The 2 x 2 real Jacobian of a scalar f at z, by central differences."""
    columns = [(f(z + step) - f(z - step)) / (2 * h) for step in (h, 1j * h)]
    rows = [[col.real for col in columns], [col.imag for col in columns]]
    return torch.tensor(rows, dtype=torch.float64)


point = torch.tensor(0.6 - 0.8j, dtype=c128)
functions = {  # f, then its derivatives by z and by z-bar at the point
    "z^2": (lambda z: z**2, 2 * point, 0),
    "exp(z)": (torch.exp, torch.exp(point), 0),
    "conj(z)": (torch.conj, 0, 1),
    "|z|^2": (lambda z: z.abs().square().to(c128), point.conj(), point),
    "Re z": (lambda z: z.real.to(c128), 0.5, 0.5),
}
for name, (f, by_z, by_zbar) in functions.items():
    D = real_derivative(f, point)
    d_by_dzbar = complex(D[0, 0] - D[1, 1], D[1, 0] + D[0, 1]) / 2
    entries = ", ".join(f"{d:6.3f}" for d in D.flatten().tolist())
    print(f"{name:8s} real derivative [{entries}], df/dz-bar = {d_by_dzbar:.3f}")
    f_a, f_b = complex(by_z + by_zbar), complex(1j * (by_z - by_zbar))
    expected = torch.tensor([[f_a.real, f_b.real], [f_a.imag, f_b.imag]], dtype=torch.float64)
    torch.testing.assert_close(D, expected, rtol=1e-7, atol=1e-8)
    assert abs(d_by_dzbar - complex(by_zbar)) < 1e-8
    if by_zbar == 0:  # holomorphic: the matrix of multiplication by f'(z) = alpha + i beta
        alpha, beta = f_a.real, f_a.imag
        torch.testing.assert_close(
            D, torch.tensor([[alpha, -beta], [beta, alpha]], dtype=torch.float64)
        )

# %%
# A map from C^n to C^m as a real 2m by 2n Jacobian
# -------------------------------------------------
# A general map from :math:`\mathbb{C}^n` to :math:`\mathbb{C}^m` has one 2 by 2 real block per
# pair (output, input), so its derivative is a real :math:`2m \times 2n` Jacobian: one complex
# number per pair is enough only for a holomorphic map. :func:`torch.view_as_real` turns a
# complex tensor into a real one with a last dimension of size 2 (real, imaginary), and
# :func:`torch.view_as_complex` turns it back. Wrapping ``f`` between them gives a real function
# whose Jacobian any tool computes. Here :math:`f(z) = (z_0 z_1,\ \bar z_0 + z_1^2,\ |z_1|^2)`,
# holomorphic in its first output only.


def f(z):
    return torch.stack([z[0] * z[1], z[0].conj() + z[1] ** 2, z[1].abs().square().to(c128)])


def f_real(r):  # (n, 2) real -> (m, 2) real
    return torch.view_as_real(f(torch.view_as_complex(r)))


J_real = jacrev(f_real)(torch.view_as_real(z0)).reshape(6, 4)
print("real Jacobian (rows: Re f0, Im f0, ...; columns: a0, b0, a1, b1):\n", J_real)

columns = []
for k in range(2):
    for step in (1e-6, 1e-6j):  # along a_k, then along b_k
        e = torch.zeros(2, dtype=c128)
        e[k] = step
        column = (f(z0 + e) - f(z0 - e)) / (2 * abs(step))
        columns.append(torch.view_as_real(column).reshape(6))
torch.testing.assert_close(J_real, torch.stack(columns, dim=1), rtol=1e-7, atol=1e-8)
torch.testing.assert_close(jacfwd(f_real)(torch.view_as_real(z0)).reshape(6, 4), J_real)

# %%
# What torch.func returns for complex tensors
# -------------------------------------------
# :func:`torch.func.jacrev` and :func:`torch.func.jacfwd` refuse complex inputs and complex
# outputs, in PyTorch 2.13 with the messages below. A complex tensor of shape
# ``output.shape + input.shape`` could hold only one number per pair, enough only for a
# holomorphic map.


def message(transform, fn, arg):
    try:
        transform(fn)(arg)
    except RuntimeError as err:
        return str(err)
    raise AssertionError("expected a RuntimeError")


def to_complex(r):  # real input, complex output
    return torch.view_as_complex(r)


for transform in (jacrev, jacfwd):
    for fn, arg, what in ((f, z0, "inputs"), (to_complex, torch.view_as_real(z0), "outputs")):
        text = message(transform, fn, arg)
        print(text)
        assert text == (
            f"{transform.__name__}: Expected all {what} to be real but received complex tensor "
            "at flattened input idx: 0"
        )

# %%
# :func:`torch.func.jvp` and :func:`torch.func.vjp` do accept complex tensors, and follow the
# real view. A JVP with tangent :math:`u` is the real Jacobian applied to the real and imaginary
# parts of :math:`u`; a VJP with cotangent :math:`v` is its *transpose* applied to those of
# :math:`v`, which is why ``.grad`` is the real gradient. For the holomorphic first output they
# reduce to :math:`f'(z)\, u` and :math:`\overline{f'(z)}\, v`.

u = torch.randn(2, dtype=c128)
v = torch.randn(3, dtype=c128)
_, Ju = jvp(f, (z0,), (u,))
_, pullback = vjp(f, z0)
(vJ,) = pullback(v)
as_real = torch.view_as_real
torch.testing.assert_close(as_real(Ju).reshape(6), J_real @ as_real(u).reshape(4))
torch.testing.assert_close(as_real(vJ).reshape(4), J_real.T @ as_real(v).reshape(6))

_, Ju0 = jvp(lambda z: f(z)[0], (z0,), (u,))
_, pullback0 = vjp(lambda z: f(z)[0], z0)
derivative = torch.stack([z0[1], z0[0]])  # of z0 z1, by z0 and by z1
torch.testing.assert_close(Ju0, (derivative * u).sum())
torch.testing.assert_close(pullback0(v[0])[0], derivative.conj() * v[0])
print("torch.func.jvp:", Ju, "\ntorch.func.vjp:", vJ)

# %%
# vecgrad and complex numbers
# ---------------------------
# vecgrad follows :func:`torch.func.jacrev`: it refuses complex tensors, and its error names this
# page. The real view above is the way to differentiate complex functions with it, with one
# convention for every function (``vjp`` gives :math:`J^\top v` of the real Jacobian, as
# PyTorch's complex VJP does).

text = ""
try:
    vg.jacobian(f, z0)
except TypeError as err:
    text = str(err)
print(text)
assert text.startswith("vecgrad.jacobian: `inputs` must have a real floating-point dtype")
assert "gallery/02_jacobians/plot_04_complex.html" in text

J_vg = vg.jacobian(f_real, torch.view_as_real(z0))  # shape (3, 2, 2, 2)
torch.testing.assert_close(J_vg.reshape(6, 4), J_real)
_, vJ_vg = vg.vjp(f_real, torch.view_as_real(z0), as_real(v))
torch.testing.assert_close(torch.view_as_complex(vJ_vg), vJ)

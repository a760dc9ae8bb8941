"""
Forward mode and Jacobian-vector products
=========================================

Forward-mode differentiation pushes a tangent vector :math:`u` through a function alongside its
value and returns the Jacobian-vector product :math:`J u` in one pass. This example computes it
with :func:`vecgrad.jvp`, dual numbers and :func:`torch.func.jvp`, shows what
:func:`torch.autograd.functional.jvp` does instead, and measures when columns (forward mode) beat
rows (reverse mode) for building a whole Jacobian.
"""

# sphinx_gallery_thumbnail_number = 1
from collections import Counter

import matplotlib.pyplot as plt
import torch
import torch.autograd.forward_ad as fwAD

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# A function and its Jacobian
# ---------------------------
# :math:`f(x) = (x_0 x_1,\ x_2 \sin x_1,\ e^{x_0 - x_2},\ x_0^2 + x_1 x_2)` maps
# :math:`\mathbb{R}^3` to :math:`\mathbb{R}^4`. Its (4, 3) Jacobian, written by hand, is the
# reference for every product below; :math:`J u` is the directional derivative of :math:`f`
# along :math:`u`. Everything is in float64 so the comparisons can be tight.


def f(x):
    return torch.stack(
        [x[0] * x[1], x[2] * torch.sin(x[1]), torch.exp(x[0] - x[2]), x[0] ** 2 + x[1] * x[2]]
    )


def jacobian_f(x):
    e = torch.exp(x[0] - x[2])
    z = torch.zeros((), dtype=x.dtype)
    return torch.stack(
        [
            torch.stack([x[1], x[0], z]),
            torch.stack([z, x[2] * torch.cos(x[1]), torch.sin(x[1])]),
            torch.stack([e, z, -e]),
            torch.stack([2 * x[0], x[2], x[1]]),
        ]
    )


x = torch.randn(3, dtype=torch.float64)
u = torch.randn(3, dtype=torch.float64)
J = jacobian_f(x)
Ju = J @ u
print("J @ u =", Ju)

# %%
# One call: :func:`vecgrad.jvp`
# -----------------------------
# :func:`vecgrad.jvp` takes the function, the point and the tangent (a tensor, or a tuple for a
# function of several tensors) and returns the pair ``(output, jvp)``.

out_vg, jvp_vg = vg.jvp(f, x, u)
print("vecgrad.jvp:", jvp_vg)
torch.testing.assert_close(out_vg, f(x))
torch.testing.assert_close(jvp_vg, Ju)

# %%
# Dual numbers with :mod:`torch.autograd.forward_ad`
# --------------------------------------------------
# Underneath is PyTorch's forward-mode engine. Inside a ``dual_level`` context,
# :func:`~torch.autograd.forward_ad.make_dual` attaches the tangent :math:`u` to :math:`x`.
# Every operation then propagates value and tangent together, and
# :func:`~torch.autograd.forward_ad.unpack_dual` splits the result into ``primal`` (the value
# :math:`f(x)`) and ``tangent`` (:math:`J u`). Unpack inside the context: the tangent is gone
# once the level closes.

with fwAD.dual_level():
    dual_x = fwAD.make_dual(x, u)
    dual_out = f(dual_x)
    primal, tangent = fwAD.unpack_dual(dual_out)
print("tangent of f(x):", tangent)
torch.testing.assert_close(primal, f(x))
torch.testing.assert_close(tangent, Ju)

# %%
# :func:`torch.func.jvp` wraps the same machinery in one call. It takes points and tangents as
# tuples, one entry per argument of the function, and also returns ``(output, jvp)``.

out_func, jvp_func = torch.func.jvp(f, (x,), (u,))
print("torch.func.jvp:", jvp_func)
torch.testing.assert_close(out_func, f(x))
torch.testing.assert_close(jvp_func, Ju)

# %%
# With the tangent :math:`e_j` (a one-hot vector) a JVP returns column :math:`j` of the
# Jacobian, so :math:`n` JVPs give the whole Jacobian column by column.
# :func:`torch.func.jacfwd` does exactly this, with the :math:`n` products vectorised.

columns = [torch.func.jvp(f, (x,), (e_j,))[1] for e_j in torch.eye(3, dtype=torch.float64)]
J_columns = torch.stack(columns, dim=1)
print("Jacobian from 3 JVPs:\n", J_columns)
torch.testing.assert_close(J_columns, J)
torch.testing.assert_close(torch.func.jacfwd(f)(x), J)

# %%
# :func:`torch.autograd.functional.jvp` is not forward mode
# ----------------------------------------------------------
# The older functional API returns the same numbers, but its documentation says how: "by using
# the backward of the backward (sometimes called the double backwards trick)". It runs one
# reverse pass with ``create_graph=True`` to get :math:`w \mapsto J^\top w` as a differentiable
# function of a dummy :math:`w`, then a second reverse pass through *that* to get
# :math:`(J^\top)^\top u = J u`.

out_fn, jvp_fn = torch.autograd.functional.jvp(f, x, u)
print("torch.autograd.functional.jvp:", jvp_fn)
torch.testing.assert_close(jvp_fn, Ju)
torch.testing.assert_close(out_fn, f(x))
doc = " ".join(torch.autograd.functional.jvp.__doc__.split())
assert "by using the backward of the backward (sometimes called the double backwards trick)" in doc

# %%
# We can watch it happen. ``MatVec`` computes :math:`A x` as a custom
# :class:`torch.autograd.Function` with a counter in each of its three rules: ``forward``,
# ``backward`` (used by reverse mode; it returns :math:`A^\top g` through the same class, so a
# second reverse pass calls it again) and ``jvp`` (used by forward mode).

calls = Counter()


class MatVec(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, A):
        calls["forward"] += 1
        return A @ x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.A = inputs[1]

    @staticmethod
    def backward(ctx, grad_out):
        calls["backward"] += 1
        return MatVec.apply(grad_out, ctx.A.mT), None

    @staticmethod
    def jvp(ctx, x_tangent, A_tangent):
        calls["jvp"] += 1
        return ctx.A @ x_tangent


# %%
# Each method computes the JVP of :math:`x \mapsto \sin(A x)` and we count the rule calls.
# True forward mode evaluates ``forward`` once and ``jvp`` once. The functional API never calls
# ``jvp``: it calls ``backward`` twice, once in each reverse pass, and ``forward`` three times
# (once for the value, and once inside each ``backward``, which reuses ``MatVec``).

A = torch.randn(4, 3, dtype=torch.float64)


def sin_Ax(x):
    return torch.sin(MatVec.apply(x, A))


methods = {
    "torch.func.jvp": lambda: torch.func.jvp(sin_Ax, (x,), (u,)),
    "vecgrad.jvp": lambda: vg.jvp(sin_Ax, x, u),
    "torch.autograd.functional.jvp": lambda: torch.autograd.functional.jvp(sin_Ax, x, u),
}
counts = {}
for name, method in methods.items():
    calls.clear()
    _, jvp = method()
    counts[name] = dict(calls)
    print(f"{name:30s} {counts[name]}")
    torch.testing.assert_close(jvp, torch.cos(A @ x) * (A @ u))
assert counts["torch.func.jvp"] == {"forward": 1, "jvp": 1}
assert counts["vecgrad.jvp"] == {"forward": 1, "jvp": 1}
assert counts["torch.autograd.functional.jvp"] == {"forward": 3, "backward": 2}

# %%
# Unpacking the result
# --------------------
# :func:`torch.autograd.functional.jvp` and :func:`torch.autograd.functional.vjp` return a pair
# ``(output, product)``, so unpacking into a single name fails. Unpack two names, or index
# ``[1]``. Note also that :func:`torch.func.vjp` returns ``(output, vjp_fn)``: the products come
# from calling ``vjp_fn``, which returns a tuple with one entry per input.

for functional, vector in (
    (torch.autograd.functional.jvp, u),
    (torch.autograd.functional.vjp, torch.ones(4, dtype=x.dtype)),
):
    message = "no error"
    try:
        (product,) = functional(f, x, vector)
    except ValueError as err:
        message = str(err)
    print(f"{functional.__name__}: ValueError: {message}")
    assert "too many values to unpack" in message

out, jvp_result = torch.autograd.functional.jvp(f, x, u)
out, vjp_result = torch.autograd.functional.vjp(f, x, torch.ones(4, dtype=x.dtype))
out, vjp_fn = torch.func.vjp(f, x)
(vjp_from_fn,) = vjp_fn(torch.ones(4, dtype=x.dtype))
torch.testing.assert_close(jvp_result, Ju)
torch.testing.assert_close(vjp_result, J.sum(0))
torch.testing.assert_close(vjp_from_fn, J.sum(0))

# %%
# Tall and wide Jacobians: when forward mode wins
# -----------------------------------------------
# One JVP yields a column of :math:`J`, one VJP a row, and each costs a small multiple of one
# evaluation of :math:`f`. A Jacobian with :math:`m` rows and :math:`n` columns therefore costs
# about :math:`n` JVPs in forward mode and :math:`m` VJPs in reverse mode: forward mode wins for
# *tall* Jacobians (few inputs, many outputs), reverse mode for *wide* ones. We build a small
# network in both shapes, 16 inputs to 1024 outputs and 1024 inputs to 16 outputs, and check
# both strategies against the Jacobian from the chain rule.


def make_net(n_in, n_out, hidden=256):
    W1 = torch.randn(hidden, n_in, dtype=torch.float64) / n_in**0.5
    W2 = torch.randn(n_out, hidden, dtype=torch.float64) / hidden**0.5

    def net(x):
        return W2 @ torch.tanh(W1 @ x)

    def net_jacobian(x):  # chain rule: W2 diag(1 - tanh^2(W1 x)) W1
        return W2 @ ((1 - torch.tanh(W1 @ x) ** 2)[:, None] * W1)

    return net, net_jacobian


cases = {}
for label, n_in, n_out in (("tall: 16 -> 1024", 16, 1024), ("wide: 1024 -> 16", 1024, 16)):
    net, net_jacobian = make_net(n_in, n_out)
    x0 = torch.randn(n_in, dtype=torch.float64)
    J_fwd = vg.jacobian(net, x0, strategy="forward")
    J_rev = vg.jacobian(net, x0, strategy="reverse")
    print(f"{label}: Jacobian shape {tuple(J_fwd.shape)}")
    torch.testing.assert_close(J_fwd, net_jacobian(x0))
    torch.testing.assert_close(J_rev, net_jacobian(x0))
    cases[label] = (net, x0)

# %%
# The timings below are medians from :func:`vecgrad.time_call`, on one thread, so that the
# comparison counts arithmetic rather than thread scheduling, measured on the machine that built
# this page.


def time_strategies(net, x0):
    return [
        vg.time_call(lambda s=s: vg.jacobian(net, x0, strategy=s), min_run_time=0.05)
        for s in ("forward", "reverse")
    ]


timings = {label: time_strategies(net, x0) for label, (net, x0) in cases.items()}
for label, (t_fwd, t_rev) in timings.items():
    print(f"{label}: forward {1e3 * t_fwd:.2f} ms, reverse {1e3 * t_rev:.2f} ms")

# %%
# On its favourable shape each mode needs 64 times fewer products (16 instead of 1024). The
# measured gap, printed below, is smaller: the cheaper side also pays what does not shrink with
# the number of products (evaluating ``net``, setting up the vectorised transform), and at this
# size that is much of its time. The times depend on the machine and on what else it was doing,
# so they are printed and plotted, not asserted; what is asserted is that both strategies give
# the Jacobian of the chain rule (above), and ``nox -s bench`` checks the speed goals.

(tall_fwd, tall_rev), (wide_fwd, wide_rev) = timings.values()
print(f"tall: reverse / forward = {tall_rev / tall_fwd:.1f} (products: 1024 / 16 = 64)")
print(f"wide: forward / reverse = {wide_fwd / wide_rev:.1f} (products: 1024 / 16 = 64)")

fig, ax = plt.subplots()
positions = range(len(timings))
for offset, index, name in ((-0.2, 0, "forward (columns, JVPs)"), (0.2, 1, "reverse (rows, VJPs)")):
    heights = [1e3 * pair[index] for pair in timings.values()]
    _ = ax.bar([p + offset for p in positions], heights, width=0.4, label=name)
_ = ax.set(
    xticks=positions,
    xticklabels=list(timings),
    ylabel="time for the full Jacobian (ms, median)",
    title="vecgrad.jacobian: forward vs reverse strategy",
    ylim=(0, 1.35e3 * max(max(pair) for pair in timings.values())),
)
_ = ax.legend(loc="upper center")

# %%
# :func:`vecgrad.jacobian` makes this choice for you: with ``strategy="auto"`` it takes reverse
# mode when the output has at most as many elements as the input, and forward mode otherwise.
# :doc:`/choosing` shows the rule at work and measures both strategies over a range of sizes.

plt.show()

r"""
A custom autograd.Function for every mode
=========================================

A :class:`torch.autograd.Function` gives an operation hand-written derivatives. To work with
reverse mode, forward mode and :func:`torch.func.vmap` (and so with every :mod:`vecgrad`
function and :mod:`torch.func` transform) it needs a ``forward`` without ``ctx`` plus
``setup_context``, a ``backward``, a ``jvp`` and a vmap rule.
This example writes one, checks it with :func:`torch.autograd.gradcheck`, and shows the errors
that each missing piece causes.
"""

import warnings

import torch
from torch import nn
from torch.autograd.gradcheck import GradcheckError

import vecgrad as vg

_ = torch.manual_seed(0)

# %%
# The operation: polar to Cartesian coordinates
# ---------------------------------------------
# Along the last axis, :math:`(r, \theta) \mapsto (r\cos\theta,\ r\sin\theta)`. Its Jacobian is
# not symmetric, so the two derivative rules differ by a transpose:
#
# .. math::
#
#    J = \begin{pmatrix} \cos\theta & -r\sin\theta \\ \sin\theta & r\cos\theta \end{pmatrix},
#    \qquad \texttt{backward}: g \mapsto J^\top g, \qquad \texttt{jvp}: u \mapsto J u.
#
# ``forward`` takes only the inputs; ``setup_context`` saves what the rules need:
# ``save_for_backward`` for ``backward`` and ``save_for_forward`` for ``jvp``. Both rules are
# ordinary torch code of the saved input, so autograd can differentiate them again (second
# derivatives). ``generate_vmap_rule = True`` lets :func:`torch.func.vmap` run the Function by
# vmapping its staticmethods, which works because they are plain torch operations. Separately,
# they index only the last axis, so the Function also accepts a batch of shape ``(..., 2)``
# directly.


def radius_cos_sin(x):
    return x[..., 0], torch.cos(x[..., 1]), torch.sin(x[..., 1])


class PolarToCartesian(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        r, cos, sin = radius_cos_sin(x)
        return torch.stack((r * cos, r * sin), dim=-1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        r, cos, sin = radius_cos_sin(x)
        gx, gy = grad_output[..., 0], grad_output[..., 1]
        return torch.stack((gx * cos + gy * sin, r * (gy * cos - gx * sin)), dim=-1)

    @staticmethod
    def jvp(ctx, x_tangent):
        (x,) = ctx.saved_tensors
        r, cos, sin = radius_cos_sin(x)
        dr, dtheta = x_tangent[..., 0], x_tangent[..., 1]
        return torch.stack((dr * cos - r * sin * dtheta, dr * sin + r * cos * dtheta), dim=-1)


polar = PolarToCartesian.apply

# %%
# The references: the Jacobian written out, and the same function in plain torch operations,
# which autograd differentiates on its own.


def jacobian_polar(x):
    r, cos, sin = radius_cos_sin(x)
    rows = (torch.stack((cos, -r * sin), dim=-1), torch.stack((sin, r * cos), dim=-1))
    return torch.stack(rows, dim=-2)


def polar_plain(x):
    r, theta = x[..., 0], x[..., 1]
    return torch.stack((r * torch.cos(theta), r * torch.sin(theta)), dim=-1)


x = torch.tensor([2.0, 0.7], dtype=torch.float64)
print("polar(x) =", polar(x))
print("J =\n", jacobian_polar(x))
torch.testing.assert_close(polar(x), polar_plain(x))

# %%
# Checking the rules with gradcheck
# ---------------------------------
# :func:`torch.autograd.gradcheck` compares the analytic derivatives with central finite
# differences, which needs float64. ``check_forward_ad=True`` tests ``jvp`` as well as
# ``backward``, and the two ``check_batched_*`` options test them under :func:`torch.func.vmap`.
# :func:`torch.autograd.gradgradcheck` differentiates ``backward`` once more (with
# ``check_fwd_over_rev=True``, in forward mode too). Both raise an error with the mismatching
# entries, or return ``True``. (The first forward-mode call in a process makes
# torch 2.13 load its forward-mode rules through the deprecated ``torch.jit.script``; we silence
# exactly that DeprecationWarning, which comes from inside torch.)

warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
batch = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
first = torch.autograd.gradcheck(
    polar, (batch,), check_forward_ad=True, check_batched_grad=True, check_batched_forward_grad=True
)
second = torch.autograd.gradgradcheck(polar, (batch,), check_fwd_over_rev=True)
print("gradcheck:", first, "| gradgradcheck:", second)

# %%
# The flag matters. A common slip is to write ``jvp`` as :math:`J^\top u`, the ``backward``
# formula, instead of :math:`J u`. Reverse mode does not notice, so gradcheck without
# ``check_forward_ad`` passes; with it, gradcheck reports the mismatch.


class TransposedJvp(torch.autograd.Function):
    generate_vmap_rule = True
    forward = staticmethod(PolarToCartesian.forward)
    setup_context = staticmethod(PolarToCartesian.setup_context)
    backward = staticmethod(PolarToCartesian.backward)

    @staticmethod
    def jvp(ctx, x_tangent):
        return PolarToCartesian.backward(ctx, x_tangent)  # J^T u: wrong


reverse_only = torch.autograd.gradcheck(TransposedJvp.apply, (batch,))
print("transposed jvp, reverse mode only:", reverse_only)
try:
    torch.autograd.gradcheck(TransposedJvp.apply, (batch,), check_forward_ad=True)
    message = "no error"
except GradcheckError as err:
    message = str(err)
print("with check_forward_ad=True: GradcheckError:", message.splitlines()[0])
assert "Jacobian computed with forward mode mismatch" in message

# %%
# Every Jacobian agrees
# ---------------------
# :func:`vecgrad.jacobian` in reverse mode calls ``backward`` (one vectorised VJP per output),
# in forward mode ``jvp`` (one vectorised JVP per input), and :func:`torch.func.jacrev` and
# :func:`torch.func.jacfwd` do the same. On a batch, :func:`torch.func.vmap` of ``jacrev`` and
# :func:`vecgrad.batch_jacobian` in both strategies give one Jacobian per row.

jacobians = {
    "vg.jacobian reverse": vg.jacobian(polar, x, strategy="reverse"),
    "vg.jacobian forward": vg.jacobian(polar, x, strategy="forward"),
    "torch.func.jacrev": torch.func.jacrev(polar)(x),
    "torch.func.jacfwd": torch.func.jacfwd(polar)(x),
}
for name, J in jacobians.items():
    print(f"{name:20s} max |J - formula| = {(J - jacobian_polar(x)).abs().max():.1e}")
    torch.testing.assert_close(J, jacobian_polar(x))
rows = batch.detach()
torch.testing.assert_close(torch.func.vmap(torch.func.jacrev(polar))(rows), jacobian_polar(rows))
for strategy in ("reverse", "forward"):
    J_rows = vg.batch_jacobian(polar, rows, strategy=strategy)
    torch.testing.assert_close(J_rows, jacobian_polar(rows))

# %%
# Per-sample gradients through a model
# ------------------------------------
# A layer that predicts a radius and an angle, followed by the Function, gives a point in the
# plane. :func:`vecgrad.per_sample_grads` vmaps the model over samples, so it runs the Function
# batched.


class PolarHead(nn.Module):
    def __init__(self, to_cartesian):
        super().__init__()
        self.linear = nn.Linear(3, 2, dtype=torch.float64)
        self.to_cartesian = to_cartesian

    def forward(self, x):
        return self.to_cartesian(self.linear(x))


# %%
# The references: a loop of ``backward`` calls, and the same model with the plain-torch version
# of the operation and the same weights.

model, plain_model = PolarHead(polar), PolarHead(polar_plain)
plain_model.load_state_dict(model.state_dict())
inputs = torch.randn(8, 3, dtype=torch.float64)
targets = torch.randn(8, 2, dtype=torch.float64)
loss_fn = nn.functional.mse_loss
grads = vg.per_sample_grads(model, loss_fn, inputs, targets)
plain = vg.per_sample_grads(plain_model, loss_fn, inputs, targets)
for i in range(len(inputs)):
    model.zero_grad()
    loss_fn(model(inputs[i : i + 1]), targets[i : i + 1]).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name][i], p.grad)
for name in grads:
    torch.testing.assert_close(grads[name], plain[name])
print({name: tuple(g.shape) for name, g in grads.items()}, "match the loop and plain torch")

# %%
# Without ``jvp``: no forward mode
# --------------------------------
# Leave out ``jvp`` and reverse mode still works, but anything that needs forward mode fails
# when it reaches the Function. PyTorch raises a :class:`NotImplementedError` from deep inside
# :func:`torch.func.jvp`; :func:`vecgrad.jacobian` turns it into a :class:`TypeError` that names
# the argument and the missing piece, with PyTorch's error kept as its ``__cause__``.


class NoJvp(torch.autograd.Function):
    generate_vmap_rule = True
    forward = staticmethod(PolarToCartesian.forward)
    setup_context = staticmethod(PolarToCartesian.setup_context)
    backward = staticmethod(PolarToCartesian.backward)


def check_error(call, cause, *fragments):
    """Call ``call``; print the error it raises, and check it is vecgrad's TypeError with these
    words and PyTorch's own error (of type ``cause``) attached as its ``__cause__``."""
    try:
        call()
    except Exception as error:
        err = error
    else:
        raise AssertionError("no error")
    print(f"{type(err).__name__}: {str(err).splitlines()[0]}")
    assert isinstance(err, TypeError)
    assert all(fragment in str(err) for fragment in fragments), str(err)
    assert isinstance(err.__cause__, cause)


torch.testing.assert_close(vg.jacobian(NoJvp.apply, x, strategy="reverse"), jacobian_polar(x))
check_error(
    lambda: vg.jacobian(NoJvp.apply, x, strategy="forward"),
    NotImplementedError,
    "`func` must support forward-mode AD",
    "without a `jvp` staticmethod",
)

# %%
# Without a vmap rule: nothing vectorised through the Function
# ------------------------------------------------------------
# Leave out ``generate_vmap_rule`` (and the alternative, a ``vmap`` staticmethod) and any
# transform that vmaps the Function *itself* fails: :func:`vecgrad.jacobian` in forward mode,
# which vmaps the JVP, and :func:`vecgrad.per_sample_grads`, which vmaps the model. Each names
# the Function and the two ways to give it a rule (PyTorch's :class:`RuntimeError` is the
# ``__cause__``). Reverse-mode Jacobians still work:
# they vmap only the backward pass, whose ``backward`` is ordinary torch code.


class NoVmap(torch.autograd.Function):
    forward = staticmethod(PolarToCartesian.forward)
    setup_context = staticmethod(PolarToCartesian.setup_context)
    backward = staticmethod(PolarToCartesian.backward)
    jvp = staticmethod(PolarToCartesian.jvp)


torch.testing.assert_close(vg.jacobian(NoVmap.apply, x, strategy="reverse"), jacobian_polar(x))
calls = {
    "vg.jacobian(strategy='forward')": lambda: vg.jacobian(NoVmap.apply, x, strategy="forward"),
    "vg.per_sample_grads": lambda: vg.per_sample_grads(
        PolarHead(NoVmap.apply), loss_fn, inputs, targets
    ),
}
for name, call in calls.items():
    print(f"{name}:")
    check_error(
        call,
        RuntimeError,
        "must support torch.func.vmap; got the custom torch.autograd.Function NoVmap",
        "generate_vmap_rule = True",
    )

# %%
# The older style: ``forward(ctx, ...)``
# --------------------------------------
# A Function written the older way, with ``ctx`` as the first argument of ``forward`` and no
# ``setup_context``, works with ``backward()`` but with no :mod:`torch.func` transform at all,
# so every vectorised strategy fails. ``strategy='loop'`` calls :func:`torch.autograd.grad` once
# per output element, without transforms, and still works.


class OldStyle(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return PolarToCartesian.forward(x)

    backward = staticmethod(PolarToCartesian.backward)


torch.testing.assert_close(vg.jacobian(OldStyle.apply, x, strategy="loop"), jacobian_polar(x))
check_error(
    lambda: vg.jacobian(OldStyle.apply, x, strategy="reverse"),
    RuntimeError,
    "whose `forward` takes `ctx` (the older style)",
)

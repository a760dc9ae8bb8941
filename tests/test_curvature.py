"""vg.param_hessian, vg.param_hvp and vg.param_ggnvp against torch.func in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import DTYPE
from curvature_reference import Reference, contract, matrix, vector
from torch import Tensor, nn
from torch.nn import functional as F
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

N = 5


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(DTYPE)


def reused() -> nn.Module:
    lin = nn.Linear(3, 3)
    return nn.Sequential(lin, nn.Tanh(), lin, nn.BatchNorm1d(3).eval()).to(DTYPE)


def frozen() -> nn.Module:
    model = mlp()
    model[0].weight.requires_grad_(False)
    return model


class Embedded(nn.Module):
    """Integer token ids through an embedding, flattened, then a layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 2)
        self.out = nn.Linear(4, 2)

    def forward(self, ids: Tensor) -> Tensor:
        return self.out(torch.tanh(self.embed(ids).flatten(1)))


def regression(model: nn.Module) -> tuple[Tensor, Tensor]:
    return batch(model(torch.zeros(1, 3, dtype=DTYPE)).shape[1])


def batch(outputs: int = 2) -> tuple[Tensor, Tensor]:
    return torch.randn(N, 3, dtype=DTYPE), torch.randn(N, outputs, dtype=DTYPE)


def classes(model: nn.Module) -> tuple[Tensor, Tensor]:
    return torch.randn(N, 3, dtype=DTYPE), torch.randint(0, 2, (N,))


def tokens(model: nn.Module) -> tuple[Tensor, Tensor]:
    return torch.randint(0, 7, (N, 2)), torch.randn(N, 2, dtype=DTYPE)


def summed(p: Tensor, t: Tensor) -> Tensor:
    return ((p - t) ** 2).sum()


# name: (model, loss_fn, batch)
PROBLEMS: dict[str, tuple[Callable[[], nn.Module], Callable[..., Tensor], Callable[..., Any]]] = {
    "mlp-mse": (mlp, F.mse_loss, regression),
    "mlp-cross-entropy": (mlp, F.cross_entropy, classes),
    "mlp-summed": (mlp, summed, regression),
    "reused-batchnorm-eval": (reused, F.mse_loss, regression),
    "frozen": (frozen, F.mse_loss, regression),
    "embedding": (Embedded, F.mse_loss, tokens),
}


def problem(name: str) -> tuple[nn.Module, Callable[..., Tensor], Tensor, Tensor]:
    make, loss_fn, batch = PROBLEMS[name]
    model = make().to(DTYPE)
    x, y = batch(model)
    return model, loss_fn, x, y


def direction(model: nn.Module) -> dict[str, Tensor]:
    return {n: torch.randn_like(p) for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_param_hessian_matches_torch_func_hessian(name: str) -> None:
    model, loss_fn, x, y = problem(name)
    hess = vg.param_hessian(model, loss_fn, x, y)
    ref = Reference(model, loss_fn, x, y)
    expected = ref.hessian()
    assert list(hess) == list(ref.params)
    for a, row in hess.items():
        assert list(row) == list(ref.params)
        for b, block in row.items():
            assert block.shape == ref.params[a].shape + ref.params[b].shape
    assert_close(hess, expected)
    H = matrix(hess)
    assert_close(H, H.T)
    assert not any(block.requires_grad for row in hess.values() for block in row.values())


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_param_hvp_is_the_hessian_times_v(name: str) -> None:
    model, loss_fn, x, y = problem(name)
    v = direction(model)
    loss, hv = vg.param_hvp(model, loss_fn, x, y, v)
    ref = Reference(model, loss_fn, x, y)
    assert list(hv) == list(ref.params)
    assert_close(hv, ref.hvp(v))
    assert_close(vector(hv), matrix(ref.hessian()) @ vector(v))
    assert loss.shape == ()
    assert_close(loss, ref.loss(ref.params))


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_param_ggnvp_is_j_transpose_h_j_times_v(name: str) -> None:
    model, loss_fn, x, y = problem(name)
    v = direction(model)
    loss, gv = vg.param_ggnvp(model, loss_fn, x, y, v)
    ref = Reference(model, loss_fn, x, y)
    G = matrix(ref.ggn())
    assert list(gv) == list(ref.params)
    assert_close(vector(gv), G @ vector(v))
    assert_close(loss, ref.loss(ref.params))
    assert_close(G, G.T)
    assert torch.linalg.eigvalsh(G).min() > -1e-10  # convex losses: positive semi-definite


def test_a_mean_reduced_loss_is_the_mean_of_the_per_sample_losses() -> None:
    """The same loss_fn for both: H v = d/dt mean_i grad_i(theta + t v) (central differences)."""
    model, loss_fn, x, y = problem("mlp-mse")
    v = direction(model)
    _, hv = vg.param_hvp(model, loss_fn, x, y, v)

    def mean_gradient(t: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.add_(t * v[name])
        try:
            grads = vg.per_sample_grads(model, loss_fn, x, y)
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.sub_(t * v[name])
        return {name: g.mean(0) for name, g in grads.items()}

    eps = 1e-6
    plus, minus = mean_gradient(torch.tensor(eps)), mean_gradient(torch.tensor(-eps))
    difference = {name: (plus[name] - minus[name]) / (2 * eps) for name in plus}
    assert_close(hv, difference, rtol=1e-6, atol=1e-7)


def test_hessian_is_indefinite_where_the_gauss_newton_matrix_is_not() -> None:
    model, loss_fn, x, y = problem("mlp-cross-entropy")
    H = matrix(vg.param_hessian(model, loss_fn, x, y))
    G = matrix(Reference(model, loss_fn, x, y).ggn())
    assert torch.linalg.eigvalsh(H).min() < -1e-6
    assert torch.linalg.eigvalsh(G).min() > -1e-10


def test_gauss_newton_equals_hessian_for_a_linear_model() -> None:
    """A model linear in its parameters has no second-derivative term: G = H."""
    model = nn.Linear(3, 2).to(DTYPE)
    x, y = regression(model)
    v = direction(model)
    _, gv = vg.param_ggnvp(model, F.mse_loss, x, y, v)
    _, hv = vg.param_hvp(model, F.mse_loss, x, y, v)
    assert_close(gv, hv)
    H = vg.param_hessian(model, F.mse_loss, x, y)
    # mse_loss of one sample averages its 2 outputs: H_ww = 2/(N 2) sum_i I (x) x_i x_i^T.
    xx = 2 * (x.T @ x) / (N * 2)
    assert_close(H["weight"]["weight"], torch.einsum("kl,ij->kilj", torch.eye(2, dtype=DTYPE), xx))


@pytest.mark.parametrize("function", ["param_hvp", "param_ggnvp"])
def test_products_under_vmap_give_the_whole_matrix(function: str) -> None:
    """vmap over the vector: the product with every basis vector at once."""
    model, loss_fn, x, y = problem("mlp-mse")
    ref = Reference(model, loss_fn, x, y)
    expected = matrix(ref.hessian() if function == "param_hvp" else ref.ggn())
    shapes = {n: p.shape for n, p in ref.params.items()}
    size = sum(s.numel() for s in shapes.values())
    basis = torch.eye(size, dtype=DTYPE).split([s.numel() for s in shapes.values()], dim=1)
    vs = {n: b.reshape(size, *shapes[n]) for n, b in zip(shapes, basis, strict=True)}
    product = getattr(vg, function)

    columns = torch.func.vmap(lambda v: vector(product(model, loss_fn, x, y, v)[1]))(vs)
    assert_close(columns, expected)


def test_hessian_under_grad_with_respect_to_the_inputs() -> None:
    """Differentiable with respect to inputs: d tr H / dx, against torch.func."""
    model, loss_fn, x, y = problem("mlp-mse")

    def trace(inputs: Tensor) -> Tensor:
        return matrix(vg.param_hessian(model, loss_fn, inputs, y)).trace()

    def trace_ref(inputs: Tensor) -> Tensor:
        return matrix(Reference(model, loss_fn, inputs, y).hessian()).trace()

    assert_close(torch.func.grad(trace)(x), torch.func.grad(trace_ref)(x))


@pytest.mark.parametrize("function", ["param_hvp", "param_ggnvp"])
def test_products_are_differentiable_in_v_inputs_and_with_create_graph_params(
    function: str,
) -> None:
    # Not mse_loss: torch 2.13 cannot differentiate its forward-mode derivative in reverse mode
    # ("ZeroTensors are immutable"), inside vecgrad or out.
    model, loss_fn, x, y = problem("mlp-summed")
    x = x.clone().requires_grad_(True)
    v = {n: t.requires_grad_(True) for n, t in direction(model).items()}
    u = direction(model)
    product = getattr(vg, function)
    weights = tuple(model.parameters())

    plain = product(model, loss_fn, x, y, v)[1]
    assert all(t.requires_grad for t in plain.values())  # through v and x
    got_v = torch.autograd.grad(vector(plain) @ vector(u), (x, *v.values()))
    graph = product(model, loss_fn, x, y, v, create_graph=True)[1]
    got_p = torch.autograd.grad(vector(graph) @ vector(u), weights)

    def bilinear(params: dict[str, Tensor], inputs: Tensor, vs: dict[str, Tensor]) -> Tensor:
        """u^T M(params, inputs) v with the explicit matrix of the reference."""
        ref = Reference(model, loss_fn, inputs, y)
        ref.params = params
        blocks = ref.hessian() if function == "param_hvp" else ref.ggn()
        return vector(contract(blocks, vs)) @ vector(u)

    params = {n: p.detach() for n, p in model.named_parameters()}
    vd = {n: t.detach() for n, t in v.items()}
    want_p = torch.func.grad(bilinear)(params, x.detach(), vd)
    want_x = torch.func.grad(bilinear, argnums=1)(params, x.detach(), vd)
    want_v = torch.func.grad(bilinear, argnums=2)(params, x.detach(), vd)
    assert_close(got_v[0], want_x)
    assert_close(got_v[1:], tuple(want_v.values()))
    assert_close(got_p, tuple(want_p.values()))


def test_param_hessian_create_graph() -> None:
    model, loss_fn, x, y = problem("mlp-mse")
    weights = tuple(model.parameters())
    hess = vg.param_hessian(model, loss_fn, x, y, create_graph=True)
    got = torch.autograd.grad(matrix(hess).square().sum(), weights)

    def squared(params: dict[str, Tensor]) -> Tensor:
        ref = Reference(model, loss_fn, x, y)
        ref.params = params
        return matrix(ref.hessian()).square().sum()

    params = {n: p.detach() for n, p in model.named_parameters()}
    assert_close(got, tuple(torch.func.grad(squared)(params).values()))


def dropout_model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Dropout(0.5), nn.Linear(6, 2)).to(DTYPE)


def test_gauss_newton_with_dropout_uses_one_mask() -> None:
    """The two forward passes draw the same mask: G stays symmetric and PSD, and the random
    state advances as after one forward pass."""
    model, (x, y) = dropout_model().train(), batch()
    P = sum(p.numel() for p in model.parameters())
    vs = [direction(model) for _ in range(4)]

    def products(seed: int) -> Tensor:
        columns = []
        for v in vs:
            torch.manual_seed(seed)
            columns.append(vector(vg.param_ggnvp(model, F.mse_loss, x, y, v)[1]))
        return torch.stack(columns, 1)

    M = torch.stack([vector(v) for v in vs], 1)  # P x 4
    gram = M.T @ products(3)
    assert_close(gram, gram.T)
    assert torch.linalg.eigvalsh(gram).min() > -1e-10
    torch.manual_seed(3)
    vg.param_ggnvp(model, F.mse_loss, x, y, vs[0])
    after_call = torch.get_rng_state()
    torch.manual_seed(3)
    model(x)
    assert torch.equal(after_call, torch.get_rng_state())
    assert M.shape[0] == P


def test_hessian_with_dropout_is_symmetric() -> None:
    model, (x, y) = dropout_model().train(), batch()
    H = matrix(vg.param_hessian(model, F.mse_loss, x, y))
    assert_close(H, H.T)
    assert H.abs().sum() > 0


class NoJvp(torch.autograd.Function):
    """Doubling with a backward and a vmap rule but no jvp."""

    generate_vmap_rule = True

    @staticmethod
    def forward(t: Tensor) -> Tensor:
        return 2 * t

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Tensor:
        return 2 * g


class Doubled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, t: Tensor) -> Tensor:
        return NoJvp.apply(self.lin(t))  # type: ignore[no-any-return]


class Long(nn.Module):
    def forward(self, t: Tensor) -> Tensor:
        return (t * 3).long()


def bn_train() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).to(DTYPE).train()


def all_frozen() -> nn.Module:
    return nn.Linear(3, 2).to(DTYPE).requires_grad_(False)


X, Y = torch.randn(N, 3, dtype=DTYPE), torch.randn(N, 2, dtype=DTYPE)
LIN = nn.Linear(3, 2).to(DTYPE)


def zeros_like_params(model: nn.Module) -> dict[str, Tensor]:
    return {n: torch.zeros_like(p) for n, p in model.named_parameters()}


V = zeros_like_params(LIN)

# (args after the function's name, keyword arguments, error, message); `v` is appended for the
# products, so the cases without one apply to all three functions.
COMMON: list[tuple[str, Callable[[], tuple[Any, ...]], dict[str, Any], type, str]] = [
    (
        "model-type",
        lambda: (F.mse_loss, F.mse_loss, X, Y),
        {},
        TypeError,
        r"`model` must be a torch\.nn\.Module; got function\.",
    ),
    (
        "model-batchnorm",
        lambda: (bn_train(), F.mse_loss, X, Y),
        {},
        ValueError,
        r"`model` must not normalise with batch statistics.*BatchNorm1d in training mode at '1'",
    ),
    (
        "model-frozen",
        lambda: (all_frozen(), F.mse_loss, X, Y),
        {},
        ValueError,
        r"`model` must have at least one parameter that requires grad; got none\.",
    ),
    (
        "loss_fn-type",
        lambda: (LIN, "mse", X, Y),
        {},
        TypeError,
        r"`loss_fn` must be callable; got str\.",
    ),
    (
        "loss_fn-output",
        lambda: (LIN, lambda p, t: 0.0, X, Y),
        {},
        TypeError,
        r"`loss_fn` must return a Tensor; got float\.",
    ),
    (
        "loss_fn-vector",
        lambda: (LIN, lambda p, t: p - t, X, Y),
        {},
        ValueError,
        r"`loss_fn` must return a one-element Tensor \(a scalar\); got shape \(5, 2\)\.",
    ),
    (
        "inputs-type",
        lambda: (LIN, F.mse_loss, X.tolist(), Y),
        {},
        TypeError,
        r"`inputs` must be a Tensor; got list\.",
    ),
    (
        "inputs-0-dim",
        lambda: (LIN, F.mse_loss, X[0, 0], Y),
        {},
        ValueError,
        r"`inputs` must have a leading batch dimension; got a 0-dim Tensor\.",
    ),
    (
        "targets-empty",
        lambda: (LIN, F.mse_loss, X, Y[:0]),
        {},
        ValueError,
        r"`targets` must have at least one sample; got shape \(0, 2\)\.",
    ),
    (
        "targets-sparse",
        lambda: (LIN, F.mse_loss, X, Y.to_sparse()),
        {},
        TypeError,
        r"`targets` must be a dense \(strided\) Tensor",
    ),
    (
        "batch-sizes",
        lambda: (LIN, F.mse_loss, X, Y[:3]),
        {},
        ValueError,
        r"`inputs` and `targets` must have the same batch size \(first dimension\); "
        r"got shapes \(5, 3\) and \(3, 2\)\.",
    ),
    (
        "create_graph",
        lambda: (LIN, F.mse_loss, X, Y),
        {"create_graph": 1},
        TypeError,
        r"`create_graph` must be a bool; got int\.",
    ),
]


def _v(**changes: Any) -> dict[str, Any]:
    v: dict[str, Any] = dict(V)
    v.update(changes)
    return {k: t for k, t in v.items() if t is not None}


VECTOR: list[tuple[str, Callable[[], Any], type, str]] = [
    (
        "v-type",
        lambda: list(V.values()),
        TypeError,
        r"`v` must be a mapping from each trainable parameter's name to a Tensor, like "
        r"dict\(model\.named_parameters\(\)\); got list\.",
    ),
    (
        "v-missing",
        lambda: _v(bias=None),
        ValueError,
        r"`v` must have the names of the trainable parameters, \['weight', 'bias'\]; got "
        r"\['weight'\] \(missing \['bias'\], unknown \[\]\)\.",
    ),
    (
        "v-unknown",
        lambda: _v(scale=torch.ones(1, dtype=DTYPE)),
        ValueError,
        r"`v` must have the names .* \(missing \[\], unknown \['scale'\]\)\.",
    ),
    (
        "v-element",
        lambda: _v(bias=[0.0, 0.0]),
        TypeError,
        r"`v\['bias'\]` must be a Tensor; got list\.",
    ),
    (
        "v-int",
        lambda: _v(bias=torch.zeros(2, dtype=torch.long)),
        TypeError,
        r"`v\['bias'\]` must have a real floating-point dtype",
    ),
    (
        "v-shape",
        lambda: _v(weight=torch.zeros(3, 2, dtype=DTYPE)),
        ValueError,
        r"`v\['weight'\]` must have the shape of its parameter, \(2, 3\); got \(3, 2\)\.",
    ),
    (
        "v-dtype",
        lambda: _v(bias=torch.zeros(2)),
        TypeError,
        r"`v\['bias'\]` must have dtype torch\.float64 like its parameter; got torch\.float32\.",
    ),
    (
        "v-meta",
        lambda: _v(bias=torch.zeros(2, dtype=DTYPE, device="meta")),
        ValueError,
        r"`v\['bias'\]` must hold values; got a Tensor on the meta device\.",
    ),
]
FUNCTIONS = ["param_hessian", "param_hvp", "param_ggnvp"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("case", COMMON, ids=[c[0] for c in COMMON])
def test_refusals(function: str, case: tuple[Any, ...]) -> None:
    _, args, kwargs, error, match = case
    model = args()[0]
    v = zeros_like_params(model) if isinstance(model, nn.Module) and list(model.parameters()) else V
    extra = () if function == "param_hessian" else (v,)
    with pytest.raises(error, match=rf"^vecgrad\.{function}: {match}"):
        getattr(vg, function)(*args(), *extra, **kwargs)


@pytest.mark.parametrize("function", ["param_hvp", "param_ggnvp"])
@pytest.mark.parametrize("case", VECTOR, ids=[c[0] for c in VECTOR])
def test_refusals_of_v(function: str, case: tuple[Any, ...]) -> None:
    _, v, error, match = case
    with pytest.raises(error, match=rf"^vecgrad\.{function}: {match}"):
        getattr(vg, function)(LIN, F.mse_loss, X, Y, v())


@pytest.mark.parametrize("function", ["param_hvp", "param_ggnvp"])
def test_v_on_another_device_is_refused(function: str) -> None:
    """The one device here is the CPU: a model on the meta device stands for another one."""
    model = nn.Linear(3, 2, device="meta", dtype=DTYPE)
    with pytest.raises(
        ValueError,
        match=rf"^vecgrad\.{function}: `v\['weight'\]` must be on device meta like its "
        r"parameter; got cpu\.",
    ):
        getattr(vg, function)(model, F.mse_loss, X, Y, V)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_custom_function_without_jvp_is_named(function: str) -> None:
    model = Doubled().to(DTYPE)
    extra = () if function == "param_hessian" else (zeros_like_params(model),)
    with pytest.raises(
        TypeError,
        match=rf"^vecgrad\.{function}: `model` must support forward-mode AD; got a custom "
        r"torch\.autograd\.Function without a `jvp` staticmethod\.",
    ):
        getattr(vg, function)(model, F.mse_loss, X, Y, *extra)


def test_gauss_newton_needs_a_floating_point_output() -> None:
    model = nn.Sequential(LIN, Long())
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.param_ggnvp: `model` must return a real floating-point Tensor "
        r"\(float16, bfloat16, float32 or float64\); got dtype torch\.int64\.",
    ):
        vg.param_ggnvp(model, F.mse_loss, X, Y, zeros_like_params(model))

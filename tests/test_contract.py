"""What every public function promises beyond its values: untouched models, one answer for every
strategy, and vecgrad errors instead of torch's internal ones.

See docs/concepts/composing.md ("Differentiating and composing vecgrad's results").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import DTYPE
from torch import Tensor, nn
from torch.nn import functional as F
from torch.testing import assert_close

import vecgrad as vg

pytestmark = pytest.mark.usefixtures("seeded")

STRATEGIES = ("auto", "reverse", "forward", "loop")


def snapshot(model: nn.Module) -> list[tuple[str, Any, Tensor, bool]]:
    """Every parameter and buffer slot of every submodule: the object, a copy, requires_grad."""
    return [
        (f"{id(module)}.{name}", tensor, tensor.detach().clone(), tensor.requires_grad)
        for module in model.modules()
        for slots in (module._parameters, module._buffers)
        for name, tensor in slots.items()
        if tensor is not None
    ]


def assert_unchanged(model: nn.Module, before: list[tuple[str, Any, Tensor, bool]]) -> None:
    after = snapshot(model)
    assert [key for key, *_ in after] == [key for key, *_ in before]
    for (_, obj, _, _), (_, obj0, copy0, grad0) in zip(after, before, strict=True):
        assert obj is obj0
        assert torch.equal(obj.detach(), copy0)
        assert obj.requires_grad == grad0


def reused() -> nn.Module:
    """A model that calls one Linear twice: functional_call used to lose its Parameters."""
    lin = nn.Linear(3, 3).to(DTYPE)
    return nn.Sequential(lin, nn.Tanh(), lin, nn.Dropout(0.0), nn.BatchNorm1d(3).eval()).to(DTYPE)


def zeros(model: nn.Module) -> dict[str, Tensor]:
    """A vector keyed like the trainable parameters of ``model``."""
    return {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad}


MODEL_CALLS: dict[str, Callable[[nn.Module, Tensor, Tensor], object]] = {
    "per_sample_grads": lambda m, x, y: vg.per_sample_grads(m, F.mse_loss, x, y),
    "per_sample_grads-graph": lambda m, x, y: vg.per_sample_grads(
        m, F.mse_loss, x, y, create_graph=True
    ),
    "param_jacobian": lambda m, x, y: vg.param_jacobian(m, x),
    "param_jacobian-graph": lambda m, x, y: vg.param_jacobian(m, x, create_graph=True),
    "param_hessian": lambda m, x, y: vg.param_hessian(m, F.mse_loss, x, y),
    "param_hvp-graph": lambda m, x, y: vg.param_hvp(
        m, F.mse_loss, x, y, zeros(m), create_graph=True
    ),
    "param_ggnvp": lambda m, x, y: vg.param_ggnvp(m, F.mse_loss, x, y, zeros(m)),
    # Errors raised while the model is swapped into torch.func.functional_call:
    "per_sample_grads-bad-loss": lambda m, x, y: vg.per_sample_grads(
        m, lambda p, t: (p - t).expand(2, 3), x, y
    ),
    "param_jacobian-bad-model-output": lambda m, x, y: vg.param_jacobian(
        nn.Sequential(m, nn.Flatten(0)), x
    ),
    "param_hvp-bad-loss": lambda m, x, y: vg.param_hvp(m, lambda p, t: p - t, x, y, zeros(m)),
    "param_ggnvp-bad-loss": lambda m, x, y: vg.param_ggnvp(m, lambda p, t: p - t, x, y, zeros(m)),
}


@pytest.mark.parametrize("name", sorted(MODEL_CALLS))
def test_models_are_left_as_they_were(name: str) -> None:
    model = reused()
    hook_calls: list[int] = []
    model.register_forward_hook(lambda *args: hook_calls.append(1))
    model.train()
    model[4].eval()  # BatchNorm with running statistics: allowed
    before, flags = snapshot(model), [m.training for m in model.modules()]
    x, y = torch.randn(4, 3, dtype=DTYPE), torch.randn(4, 3, dtype=DTYPE)
    if name.endswith(("bad-loss", "bad-model-output")):
        with pytest.raises(ValueError, match=r"^vecgrad\.(per_sample_grads|param_\w+): "):
            MODEL_CALLS[name](model, x, y)
    else:
        MODEL_CALLS[name](model, x, y)
    assert_unchanged(model, before)
    assert [m.training for m in model.modules()] == flags
    assert model(x).requires_grad  # still trains: the Parameters are back
    assert hook_calls  # the hook is still registered and ran


def test_reused_submodule_gradients_match_torch_func() -> None:
    model = reused()
    x, y = torch.randn(4, 3, dtype=DTYPE), torch.randn(4, 3, dtype=DTYPE)
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def loss(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        out = torch.func.functional_call(model, (p, buffers), (xi[None],))
        return F.mse_loss(out, yi[None])

    expected = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    assert_unchanged(model, snapshot(model))
    assert_close(grads, expected)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).to(DTYPE)


def test_param_jacobian_create_graph_matches_torch_func() -> None:
    model, x = mlp(), torch.randn(4, 3, dtype=DTYPE)
    weights = tuple(model.parameters())
    plain = vg.param_jacobian(model, x)
    assert not any(block.requires_grad for block in plain.values())
    jac = vg.param_jacobian(model, x, create_graph=True)
    params = dict(model.named_parameters())

    def output(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        return torch.func.functional_call(model, p, (xi[None],))[0]

    expected = torch.func.vmap(torch.func.jacrev(output), in_dims=(None, 0))(params, x)
    assert_close(jac, expected)
    # The squared Frobenius norm of the NTK's factor, differentiated with respect to the weights.
    # The last bias's block is constant (ones), so it is not in the graph: materialise zeros.
    options: dict[str, Any] = {"allow_unused": True, "materialize_grads": True}
    got = torch.autograd.grad(sum(b.square().sum() for b in jac.values()), weights, **options)
    ref = torch.autograd.grad(sum(b.square().sum() for b in expected.values()), weights, **options)
    assert_close(got, ref)


def test_per_sample_grads_differentiable_with_respect_to_inputs() -> None:
    model = mlp()
    x = torch.randn(4, 3, dtype=DTYPE, requires_grad=True)
    y = torch.randn(4, 2, dtype=DTYPE)
    grads = vg.per_sample_grads(model, F.mse_loss, x, y)
    (got,) = torch.autograd.grad(grads["0.weight"].sum(), x)

    def reference(inputs: Tensor) -> Tensor:
        params = {n: p.detach() for n, p in model.named_parameters()}

        def loss(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
            return F.mse_loss(torch.func.functional_call(model, p, (xi[None],)), yi[None])

        per = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, inputs, y)
        return per["0.weight"].sum()

    assert_close(got, torch.func.grad(reference)(x.detach()))


def test_per_sample_grads_of_an_ensemble_under_vmap() -> None:
    """Stacked parameters swapped in by functional_call under vmap count as trainable."""
    models = [nn.Linear(3, 1).to(DTYPE) for _ in range(3)]
    stacked, _ = torch.func.stack_module_state(models)
    base = nn.Linear(3, 1).to(DTYPE)
    x, y = torch.randn(5, 3, dtype=DTYPE), torch.randn(5, 1, dtype=DTYPE)

    class PerSample(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = base

        def forward(self, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
            return vg.per_sample_grads(self.inner, F.mse_loss, inputs, targets)

    wrapper = PerSample()
    params = {f"inner.{name}": value for name, value in stacked.items()}
    grads = torch.func.vmap(lambda p: torch.func.functional_call(wrapper, p, (x, y)))(params)
    for k, model in enumerate(models):
        expected = vg.per_sample_grads(model, F.mse_loss, x, y)
        assert_close({name: g[k] for name, g in grads.items()}, expected)


class Halve(nn.Module):
    """Dropout followed by a fixed map: a random function of its input."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.weight = torch.linspace(-1.0, 1.0, 12, dtype=DTYPE).reshape(4, 3)

    def forward(self, t: Tensor) -> Tensor:
        return torch.tanh(self.drop(t) @ self.weight.T)


@pytest.mark.parametrize("shape", [(3,), (2, 3)], ids=["tall", "batch"])
def test_dropout_gives_the_same_jacobian_for_every_vectorised_strategy(
    shape: tuple[int, ...],
) -> None:
    """With one seed, 'auto' gives what the strategy it picks gives, and all use one mask."""
    func, x = Halve().train(), torch.randn(*shape, dtype=DTYPE)
    results = {}
    for strategy in ("auto", "reverse", "forward"):
        torch.manual_seed(7)
        results[strategy] = vg.jacobian(func, x, strategy=strategy)
    torch.manual_seed(7)
    mask = (torch.nn.functional.dropout(torch.ones_like(x), 0.5) != 0).to(DTYPE)
    # J = diag(1 - y^2) W diag(2 m) per row, with the one mask m drawn for all rows/columns.
    for strategy, jac in results.items():
        assert_close(jac, results["reverse"], msg=strategy)
    assert_close(results["reverse"], torch.func.jacrev(lambda t: func.eval()(t * 2 * mask))(x))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategies_agree_under_inference_mode(strategy: str) -> None:
    model, x = mlp(), torch.randn(3, dtype=DTYPE)
    expected = torch.func.jacrev(model)(x).detach()
    with torch.inference_mode():
        jac = vg.jacobian(model, x, strategy=strategy)
        inference_x = torch.randn(3, dtype=DTYPE)
    assert_close(jac, expected)
    with torch.inference_mode():
        jac = vg.jacobian(model, inference_x, strategy=strategy)
    assert_close(jac, torch.func.jacrev(model)(inference_x.clone()).detach())


@pytest.mark.parametrize("strategy", ["auto", "reverse", "forward"])
def test_requires_grad_inside_func_is_refused(strategy: str) -> None:
    def func(t: Tensor) -> Tensor:
        return t.requires_grad_() * 2

    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.jacobian: `func` must not call requires_grad_\(\) \(or "
        r"torch\.autograd\.grad, or torch\.autograd\.functional\) on the tensors it is given",
    ):
        vg.jacobian(func, torch.randn(3, dtype=DTYPE), strategy=strategy)


def test_requires_grad_inside_func_works_with_the_loop() -> None:
    """The loop is plain autograd: the inputs it passes already require grad."""
    x = torch.randn(3, dtype=DTYPE)
    jac = vg.jacobian(lambda t: t.requires_grad_() * 2, x, strategy="loop")
    assert_close(jac, 2 * torch.eye(3, dtype=DTYPE))


@pytest.mark.parametrize(
    "func",
    [lambda t: t * t[0].item(), lambda t: t if t.sum() > 0 else -t],
    ids=["item", "branch"],
)
def test_value_dependent_functions_work_with_every_strategy(
    func: Callable[[Tensor], Tensor],
) -> None:
    """vmap batches only the directions, never the point, so func may read values there."""
    x = torch.ones(3, dtype=DTYPE)
    expected = torch.autograd.functional.jacobian(func, x)  # the value held constant
    for strategy in STRATEGIES:
        assert_close(vg.jacobian(func, x, strategy=strategy), expected)
    assert_close(
        vg.hessian(lambda t: func(t).sum() ** 2, x), 2 * expected.sum(0).outer(expected.sum(0))
    )


def test_loop_is_refused_inside_transforms() -> None:
    with pytest.raises(
        ValueError,
        match=r"^vecgrad\.jacobian: `strategy` must not be 'loop' inside torch\.func transforms",
    ):
        torch.func.vmap(lambda t: vg.jacobian(torch.sin, t, strategy="loop"))(torch.randn(2, 3))


def test_loop_nests_inside_the_loop() -> None:
    """Plain autograd all the way: the loop of a loop is a Hessian."""
    x = torch.randn(3, dtype=DTYPE)

    def gradient(t: Tensor) -> Tensor:
        return vg.jacobian(lambda s: (s**3).sum(), t, strategy="loop")

    hess = vg.jacobian(gradient, x, strategy="loop")
    assert_close(hess, torch.diag(6 * x))


SPARSE = torch.eye(3, dtype=DTYPE).to_sparse()
META = torch.ones(3, dtype=DTYPE, device="meta")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: vg.jacobian(torch.sin, SPARSE),
            TypeError,
            r"^vecgrad\.jacobian: `inputs` must be a dense \(strided\) Tensor; got layout "
            r"torch\.sparse_coo\. Call \.to_dense\(\) first\.",
        ),
        (
            lambda: vg.jacobian(torch.sin, SPARSE.to_sparse_csr()),
            TypeError,
            r"^vecgrad\.jacobian: `inputs` must be a dense \(strided\) Tensor; got layout "
            r"torch\.sparse_csr\.",
        ),
        (
            lambda: vg.hessian(torch.sum, META),
            ValueError,
            r"^vecgrad\.hessian: `inputs` must hold values; got a Tensor on the meta device\.",
        ),
        (
            lambda: vg.jvp(torch.sin, torch.ones(3, dtype=DTYPE), SPARSE[0]),
            TypeError,
            r"^vecgrad\.jvp: `v` must be a dense \(strided\) Tensor",
        ),
        (
            lambda: vg.vjp(
                lambda t: (t[:, None] * SPARSE).sum(0), torch.ones(3, dtype=DTYPE), META
            ),
            TypeError,
            r"^vecgrad\.vjp: `func` must return a dense \(strided\) Tensor; got layout "
            r"torch\.sparse_coo\.",
        ),
        (
            lambda: vg.jacobian(lambda t: META, torch.ones(3, dtype=DTYPE)),
            ValueError,
            r"^vecgrad\.jacobian: `func` must return a Tensor with values; got one on the meta "
            r"device\.",
        ),
        (
            lambda: vg.per_sample_grads(mlp(), F.mse_loss, META.reshape(1, 3), META),
            ValueError,
            r"^vecgrad\.per_sample_grads: `inputs` must hold values",
        ),
    ],
    ids=["coo", "csr", "meta", "sparse-v", "sparse-output", "meta-output", "meta-batch"],
)
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning")
def test_sparse_and_meta_tensors_are_refused(
    call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_time_call_needs_a_function_without_arguments() -> None:
    def needs(x: Tensor, *, scale: float) -> Tensor:
        return x * scale

    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.time_call: `fn` must be callable with no arguments; got a callable "
        r"that needs 'x', 'scale'\. Bind them first",
    ):
        vg.time_call(needs)  # type: ignore[arg-type]
    assert vg.time_call(lambda: needs(torch.ones(2), scale=2.0), min_run_time=0.01) > 0


def test_ops_without_forward_mode_are_named() -> None:
    """grid_sample has no forward-mode derivative in torch 2.13: forward methods say so."""
    grid = torch.rand(1, 3, 3, 2, dtype=DTYPE) * 2 - 1

    def sample(t: Tensor) -> Tensor:
        return F.grid_sample(t, grid, align_corners=False).flatten()

    x = torch.randn(1, 1, 4, 4, dtype=DTYPE)
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.jacobian: `func` must support forward-mode AD; it calls "
        r"grid_sampler_2d, which has no forward-mode derivative in this version of torch\. Use a "
        r"reverse-mode method",
    ):
        vg.jacobian(sample, x, strategy="forward")
    with pytest.raises(TypeError, match=r"^vecgrad\.jvp: `func` must support forward-mode AD"):
        vg.jvp(sample, x, torch.ones_like(x))
    expected = torch.autograd.functional.jacobian(sample, x)
    assert_close(vg.jacobian(sample, x, strategy="reverse"), expected)


def test_cdist_is_sent_to_the_loop() -> None:
    """torch.cdist: no forward mode, and its backward is wrong under vmap in torch 2.13."""
    points = torch.randn(3, 2, dtype=DTYPE)

    def distances(t: Tensor) -> Tensor:
        return torch.cdist(t, points).flatten()

    x = torch.randn(4, 2, dtype=DTYPE)
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.jacobian: `func` must support forward-mode AD; it calls _cdist_forward, "
        r".* whose backward gives wrong values under torch\.func\.vmap\. Use jacobian with "
        r"strategy='loop'",
    ):
        vg.jacobian(distances, x, strategy="forward")
    expected = torch.autograd.functional.jacobian(distances, x)
    assert_close(vg.jacobian(distances, x, strategy="loop"), expected)


def test_in_place_updates_of_captured_tensors_are_named() -> None:
    """BatchNorm in training mode updates its running statistics in place during the call."""
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4)).to(DTYPE).train()
    x = torch.randn(5, 2, dtype=DTYPE)
    with pytest.raises(
        TypeError,
        match=r"^vecgrad\.vjp: `func` must not modify in place a tensor it closes over, .* "
        r"BatchNorm in training mode updating its running statistics\. Call model\.eval\(\)",
    ):
        vg.vjp(model, x, torch.ones(5, 4, dtype=DTYPE))
    model[1].track_running_stats = False  # batch statistics without the update: runs
    model[1].running_mean = model[1].running_var = None
    _, grad = vg.vjp(model, x, torch.ones(5, 4, dtype=DTYPE))
    assert_close(grad, torch.func.vjp(model, x)[1](torch.ones(5, 4, dtype=DTYPE))[0])

"""Traces and diagonals of square Jacobians and Hessians, exact or estimated from random probes,
and estimates of squared Jacobian norms."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast, get_args

import torch
from torch import Tensor

from vecgrad._api import Call, DiagonalOf, Func, Quantity, TensorOrTensors, public
from vecgrad._basis import cat, spans
from vecgrad._checks import (
    check_bool,
    check_choice,
    check_chunk_size,
    check_generator,
    diagonal_colors,
    one_tensor,
    positive_int,
    scalar_output,
    square_output,
)
from vecgrad._compat import ensure_forward_ad, forward_over_reverse

_QUANTITIES = get_args(Quantity)
# The quantities whose matrix is indexed by the elements of one input.
_ONE_INPUT = ("jacobian_trace", "jacobian_diagonal", "hessian_diagonal")
_OF = get_args(DiagonalOf)

Estimate = Callable[..., Tensor]
# A matrix-vector product in input space, tangents and results as tuples shaped like the inputs.
Product = Callable[..., tuple[Tensor, ...]]


def _rademacher(num: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``num`` probes of independent signs +-1 shaped like ``like``: ``(num, *like.shape)``.

    They are drawn on the generator's device (by default ``like``'s, from torch's global
    generator there) and moved to ``like``'s, so that one seed gives the same probes anywhere.
    """
    device = like.device if generator is None else generator.device
    bits = torch.randint(0, 2, (num, *like.shape), generator=generator, device=device)
    return bits.to(like.device, like.dtype).mul_(2).sub_(1)


def _jacobian_product(call: Call, context: str) -> Product:
    """``v -> (J v,)`` for one input, by forward mode; ``func`` must map it to its own shape."""
    (x,) = call.xs
    ensure_forward_ad()

    def product(v: Tensor) -> tuple[Tensor, ...]:
        output, jv = cast("tuple[Tensor, Tensor]", torch.func.jvp(call.func, (x,), (v,)))
        # Checked in the first chunk of products, before any other chunk runs.
        square_output(output, x, context)
        return (jv,)

    return product


def _hessian_product(call: Call) -> Product:
    """``v -> H v`` of a scalar ``func``: the forward-mode derivative of the reverse-mode gradient.

    Any number of inputs: ``v`` and the result have one Tensor per input.
    """

    def scalar(*args: Tensor) -> Tensor:
        return scalar_output(call.func(*args))

    grad_fn = torch.func.grad(scalar, argnums=tuple(range(len(call.xs))))

    def product(*v: Tensor) -> tuple[Tensor, ...]:
        return cast("tuple[Tensor, ...]", forward_over_reverse(grad_fn, call.xs, v, False)[1])

    return product


def _frobenius(call: Call, num: int, generator: torch.Generator | None) -> tuple[Estimate, Tensor]:
    r"""Single-probe estimate :math:`\lVert J^\top z\rVert^2` of a probe ``z`` in output space."""
    output, vjp_fn = cast(
        "tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]]",
        torch.func.vjp(call.func, *call.xs),
    )

    def estimate(z: Tensor) -> Tensor:
        return sum((g.square().sum() for g in vjp_fn(z)), output.new_zeros(()))

    return estimate, _rademacher(num, output, generator)


def _input_space(
    call: Call, quantity: str, num: int, generator: torch.Generator | None
) -> tuple[Estimate, tuple[Tensor, ...]]:
    r"""Single-probe estimates :math:`z^\top A z` (traces) or :math:`z \odot A z` (diagonals).

    :math:`A` is the Jacobian (one JVP per probe) or the Hessian (one HVP per probe), and the
    probes ``z`` live in input space.
    """
    if quantity.startswith("hessian"):
        product = _hessian_product(call)
        # The output is checked before any probe is drawn.
        scalar_output(call.func(*call.xs))
    else:
        product = _jacobian_product(call, f"with quantity={quantity!r}")

    def trace(*z: Tensor) -> Tensor:
        az = product(*z)
        return sum(
            ((zi * ai).sum() for zi, ai in zip(z, az, strict=True)), call.xs[0].new_zeros(())
        )

    def diagonal(z: Tensor) -> Tensor:
        (az,) = product(z)
        return z * az

    estimate = trace if quantity.endswith("trace") else diagonal
    return estimate, tuple(_rademacher(num, x, generator) for x in call.xs)


@public
def hutchinson(
    func: Func,
    inputs: TensorOrTensors,
    *,
    num_samples: int,
    quantity: Quantity = "frobenius",
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Random estimates of a squared Jacobian norm, or of a trace or diagonal, one per probe.

    Parameters
    ----------
    func : callable
        Function returning a Tensor: of the shape of ``inputs`` for ``'jacobian_trace'`` and
        ``'jacobian_diagonal'`` (a square Jacobian), a one-element Tensor for
        ``'hessian_trace'`` and ``'hessian_diagonal'``. Called as ``func(inputs)`` for a Tensor
        and ``func(*inputs)`` for a tuple.
        It must not modify its inputs in place (that would change the caller's tensors).
    inputs : Tensor or tuple of Tensor
        Point at which the Jacobian or Hessian is taken; real floating-point dtypes. A tuple,
        not a list, for several inputs, whose Jacobians (or Hessian blocks) all count; only
        ``'frobenius'`` and ``'hessian_trace'`` take a tuple, the other quantities one Tensor.
    num_samples : int
        Number :math:`k` of random probes, hence of estimates returned.
    quantity : str, optional
        What is estimated (table in the Notes): ``'frobenius'`` (default), the squared Frobenius
        norm :math:`\lVert J\rVert_F^2 = \sum_{ij} J_{ij}^2` of the Jacobian, from
        vector-Jacobian products; ``'jacobian_trace'``, the trace of a square Jacobian (the
        divergence of a vector field), and ``'jacobian_diagonal'``, its diagonal, from
        Jacobian-vector products; ``'hessian_trace'`` and ``'hessian_diagonal'``, the trace and
        diagonal of the Hessian of a scalar ``func``, from Hessian-vector products.
    chunk_size : int, optional
        Largest number of probes whose products are computed at once, to bound memory; by
        default all ``num_samples``. The estimates do not depend on it.
    generator : torch.Generator, optional
        Source of the probes, for reproducible estimates; by default torch's global generator
        (seeded by :func:`torch.manual_seed`) on the device of the probes.

    Returns
    -------
    Tensor
        One unbiased estimate per probe: shape ``(num_samples,)`` for ``'frobenius'`` and the
        traces, ``(num_samples, *inputs.shape)`` for the diagonals. Their mean over the first
        dimension is the estimate from :math:`k` probes and their standard deviation divided by
        :math:`\sqrt{k}` its standard error. The dtype is the promoted one
        (:func:`torch.promote_types`) of ``func``'s output and the inputs for ``'frobenius'``
        and the Jacobian quantities (float64 inputs with a float32 output give float64), and of
        the inputs alone for the Hessian quantities. Differentiable with respect to ``inputs``
        and the tensors ``func`` closes over, e.g. to train with the penalty (see
        :ref:`differentiable`); the probes are constants.

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a real floating-point Tensor, if
        ``inputs`` is not a Tensor or a tuple of Tensors of real floating-point dtype, or is a
        tuple with ``'jacobian_trace'``, ``'jacobian_diagonal'`` or ``'hessian_diagonal'``, if
        ``num_samples`` or ``chunk_size`` is not an int, ``quantity`` not a string, or
        ``generator`` neither None nor a :class:`torch.Generator`.
    ValueError
        If ``func`` returns more than one element with a Hessian quantity, or a Tensor of
        another shape than ``inputs`` with a Jacobian quantity other than ``'frobenius'``, if
        ``inputs`` is an empty tuple, %(meta)s, ``num_samples < 1``, ``quantity`` is unknown or
        ``chunk_size < 1``.

    Notes
    -----
    For a square matrix :math:`A` and a probe :math:`z` of independent signs :math:`\pm 1`
    (Rademacher), :math:`\mathbb{E}[z z^\top] = I`, so :math:`\mathbb{E}[z^\top A z] =
    \operatorname{tr} A` (Hutchinson, 1990) and :math:`\mathbb{E}[z \odot A z] =
    \operatorname{diag} A` (Bekas, Kokiopoulou and Saad, 2007), where :math:`\odot` multiplies
    element by element. Each estimate needs one product :math:`A z` and never forms :math:`A`:

    .. list-table::
       :header-rows: 1

       * - ``quantity``
         - :math:`A`, probe space
         - one estimate, from one
         - variance of one estimate
       * - ``'frobenius'``
         - :math:`J J^\top`, output
         - :math:`\lVert J^\top z\rVert^2`, VJP
         - :math:`2 \sum_{i \ne j} A_{ij}^2`
       * - ``'jacobian_trace'``
         - :math:`J`, input
         - :math:`z^\top J z`, JVP
         - :math:`\sum_{i \ne j} (J_{ij}^2 + J_{ij} J_{ji})`
       * - ``'jacobian_diagonal'``
         - :math:`J`, input
         - :math:`z \odot J z`, JVP
         - element :math:`i`: :math:`\sum_{j \ne i} J_{ij}^2`
       * - ``'hessian_trace'``
         - :math:`H`, input
         - :math:`z^\top H z`, HVP
         - :math:`2 \sum_{i \ne j} H_{ij}^2`
       * - ``'hessian_diagonal'``
         - :math:`H`, input
         - :math:`z \odot H z`, HVP
         - element :math:`i`: :math:`\sum_{j \ne i} H_{ij}^2`

    The variances follow from :math:`z^\top A z = \operatorname{tr} A + \sum_{i < j} (A_{ij} +
    A_{ji}) z_i z_j` and :math:`(z \odot A z)_i = A_{ii} + \sum_{j \ne i} A_{ij} z_i z_j`, as
    the products :math:`z_i z_j` of different pairs are uncorrelated with variance one; for a
    symmetric :math:`A` the trace's is :math:`2 \sum_{i \ne j} A_{ij}^2`, the smallest among
    probes of independent entries of mean zero and variance one. Elements :math:`i \ne l` of a
    diagonal estimate have covariance :math:`A_{il} A_{li}`, and they sum to the trace estimate
    of the same probe. All are zero for a diagonal :math:`A`; the mean of :math:`k` estimates
    has :math:`1/k` of the variance. For exact traces and diagonals, at the cost of one product
    per input element (or fewer, with structure), see :func:`diagonal`.

    The products are vectorised over probes with :func:`torch.func.vmap`: :math:`H z` is a
    forward-mode derivative of the reverse-mode gradient. For ``'frobenius'``, ``func`` is
    evaluated once; for the Jacobian quantities, once per chunk of probes; for the Hessian
    quantities, once to check its output, then once per chunk. The probes are drawn all at
    once, before any product, as ``2 * torch.randint(0, 2, (num_samples, *shape)) - 1`` on the
    generator's device, with one draw per input (in order) for ``'hessian_trace'``. Random
    operations in ``func`` draw once for all probes with ``'frobenius'``, once per chunk of
    probes otherwise. Forward mode (every quantity but ``'frobenius'``) ignores
    :class:`torch.no_grad` inside ``func``, as PyTorch's forward-mode AD does, where reverse
    mode holds what it computes constant; use ``.detach()`` there to hold a value constant in
    every mode (see :ref:`differentiable`).

    See Also
    --------
    diagonal : The exact diagonal (and so trace) of a square Jacobian or of a Hessian.
    jacobian : The exact Jacobian, whose squared entries sum to :math:`\lVert J\rVert_F^2`.
    hessian : The exact Hessian.
    vjp, jvp, hvp : The products behind the estimates.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([1.0, 2.0, 3.0])
    >>> vg.hutchinson(lambda t: x * t, x, num_samples=3)  # J = diag(x): no variance
    tensor([14., 14., 14.])
    >>> a = torch.tensor([[1.0, 2.0], [0.0, 3.0]])  # ||a||_F^2 = 14, a a^T = [[5, 6], [6, 9]]
    >>> g = torch.Generator().manual_seed(0)
    >>> estimates = vg.hutchinson(lambda t: a @ t, x[:2], num_samples=8, generator=g)
    >>> estimates  # 14 + 12 z_1 z_2
    tensor([ 2.,  2., 26., 26., 26.,  2.,  2., 26.])
    >>> g = torch.Generator().manual_seed(0)
    >>> vg.hutchinson(lambda t: a @ t, x[:2], num_samples=4, quantity="jacobian_diagonal",
    ...               generator=g)  # diag a = (1, 3) + (2 z_1 z_2, 0)
    tensor([[-1.,  3.],
            [-1.,  3.],
            [ 3.,  3.],
            [ 3.,  3.]])
    """
    call = Call(func, inputs)
    num_samples = positive_int("num_samples", num_samples)
    quantity = check_choice("quantity", quantity, _QUANTITIES)
    chunk_size = check_chunk_size(chunk_size)
    generator = check_generator(generator)
    if quantity in _ONE_INPUT:
        one_tensor(inputs, f" with quantity={quantity!r}")
    estimate, probes = (
        _frobenius(call, num_samples, generator)
        if quantity == "frobenius"
        else _input_space(call, quantity, num_samples, generator)
    )
    zs = probes if isinstance(probes, tuple) else (probes,)
    # Random operations in func draw once for all probes of a chunk, as in one evaluation.
    batched = torch.func.vmap(estimate, randomness="same")
    pieces = [
        batched(*(z[start:stop] for z in zs)) for start, stop in spans(num_samples, chunk_size)
    ]
    return call.own(cat(pieces))


@public
def diagonal(
    func: Func,
    inputs: Tensor,
    *,
    of: DiagonalOf = "jacobian",
    elementwise: bool = False,
    colors: Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Exact diagonal of a square Jacobian or of a Hessian; its sum is the trace.

    Parameters
    ----------
    func : callable
        Function of one Tensor, called as ``func(inputs)``. With ``of='jacobian'`` it must
        return a Tensor of the shape of ``inputs`` (a square Jacobian, e.g. a vector field);
        with ``of='hessian'`` a one-element Tensor.
        It must not modify its input in place (that would change the caller's tensor).
    inputs : Tensor
        Point at which the derivatives are taken: one dense Tensor of a real floating-point
        dtype. A tuple is refused: a diagonal needs one square matrix.
    of : {'jacobian', 'hessian'}, optional
        ``'jacobian'`` (default): :math:`J_{ii} = \partial f_i / \partial x_i`;
        ``'hessian'``: :math:`H_{ii} = \partial^2 f / \partial x_i^2` of a scalar ``func``.
    elementwise : bool, optional
        The caller's promise that the matrix is diagonal: with ``of='jacobian'``, that output
        element :math:`i` depends on input element :math:`i` alone (``torch.sin``, an
        activation); with ``of='hessian'``, that ``func`` is a sum of functions of one element
        each. One pass then gives the whole diagonal. Not checked: if the matrix is not
        diagonal, the result holds its row sums instead.
    colors : Tensor, optional
        An integer Tensor of the shape of ``inputs`` (or flat, ``(inputs.numel(),)``): one
        colour per input element, such that :math:`J_{ij} = 0` (``of='hessian'``:
        :math:`H_{ij} = 0`) for any two elements :math:`i \ne j` of the same colour, i.e.
        output element :math:`i` (gradient element :math:`i`) does not depend on input element
        :math:`j`. One pass per colour then gives the diagonal. Any integers serve as colours;
        the Tensor is moved to ``inputs``' device. Not checked: the result's element :math:`i`
        is :math:`\sum_{j:\,c_j = c_i} A_{ij}` (:math:`A` the Jacobian or Hessian), which is
        :math:`A_{ii}` exactly when the condition holds.
    chunk_size : int, optional
        Largest number of passes computed at once, to bound memory; by default all at once.

    Returns
    -------
    Tensor
        The diagonal, shaped like ``inputs``: element ``idx`` is the derivative of output
        element ``idx`` with respect to input element ``idx`` (``of='jacobian'``), or the
        second derivative of ``func`` with respect to input element ``idx`` twice
        (``of='hessian'``). Its ``.sum()`` is the trace: the divergence
        :math:`\nabla \cdot f` of a vector field, or the Laplacian :math:`\Delta f` of a scalar
        function. The dtype is that of :func:`jacobian` (the promotion of the output's and the
        input's) or of :func:`hessian` (the input's). Differentiable with respect to ``inputs``
        and the tensors ``func`` closes over (see :ref:`differentiable`).

    Raises
    ------
    TypeError
        If ``func`` is not callable or does not return a dense real floating-point Tensor, if
        ``inputs`` is not one dense Tensor of real floating-point dtype (a tuple, say),
        ``of`` is not a string, ``elementwise`` not a bool, ``colors`` not a dense Tensor of an
        integer dtype, or ``chunk_size`` not an int; or if ``func`` calls a custom
        :class:`torch.autograd.Function` without a ``jvp``, a vmap rule or ``setup_context``.
    ValueError
        If ``func`` returns a Tensor of another shape than ``inputs`` with ``of='jacobian'``
        or more than one element with ``of='hessian'``, if %(meta)s, ``of`` is unknown,
        ``elementwise`` is true while ``colors`` is given, ``colors`` has another shape than
        ``inputs``, is a meta tensor or a Tensor a torch.func transform batches, or
        ``chunk_size < 1``.

    Notes
    -----
    A pass is one product of the matrix :math:`A` with a tangent :math:`v`: a Jacobian-vector
    product :math:`J v` (forward mode, as in :func:`jvp`) or a Hessian-vector product
    :math:`H v` (forward mode over the reverse-mode gradient, as in :func:`hvp`). For
    :math:`n` input elements:

    .. list-table::
       :header-rows: 1

       * - arguments
         - passes
         - tangent of a pass
       * - default
         - :math:`n`
         - :math:`e_i`; keeps element :math:`i` of :math:`A e_i`
       * - ``elementwise=True``
         - 1
         - all ones; :math:`A \mathbf{1} = \operatorname{diag} A`
       * - ``colors`` with :math:`C` colours
         - :math:`C`
         - :math:`\mathbf{1}_c`, one on colour :math:`c`; keeps its elements

    The default costs what ``jacobian(func, inputs, strategy='forward')`` or
    :func:`hessian` costs. Its memory is that of ``chunk_size`` products of :math:`n` elements
    at a time: by default all :math:`n` of them, as much as the whole matrix; a smaller
    ``chunk_size`` bounds it, and each chunk keeps only its :math:`\operatorname{chunk\_size}`
    diagonal entries. With colours, :math:`(A \mathbf{1}_c)_i = \sum_{j:\,c_j = c}
    A_{ij}`, which is :math:`A_{ii}` for every :math:`i` of colour :math:`c` when no other
    element of that colour influences output :math:`i`. A colouring of the columns of the
    sparsity pattern (columns of one colour share no row, as used to compress sparse
    Jacobians) satisfies this when the pattern includes the diagonal; as only the diagonal is
    wanted, fewer colours may do (two for a tridiagonal matrix: neighbours differ in parity).
    The passes are vectorised with :func:`torch.func.vmap`; ``func`` is evaluated once per
    chunk of passes, and random operations in it draw once per chunk. Forward mode ignores
    :class:`torch.no_grad` inside ``func``, as PyTorch's forward-mode AD does; use
    ``.detach()`` there to hold a value constant (see :ref:`differentiable`). For estimates from
    a few passes whatever :math:`n`, see :func:`hutchinson` with ``quantity='jacobian_trace'``,
    ``'jacobian_diagonal'``, ``'hessian_trace'`` or ``'hessian_diagonal'``.

    See Also
    --------
    hutchinson : Unbiased random estimates of the same traces and diagonals.
    jacobian, hessian : The whole matrices.
    jvp, hvp : The products of one pass.

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.tensor([0.0, 1.0, 2.0, 3.0])
    >>> vg.diagonal(lambda t: t**2 + t.roll(1), x)  # n = 4 passes
    tensor([0., 2., 4., 6.])
    >>> vg.diagonal(lambda t: t**3, x, elementwise=True)  # 1 pass
    tensor([ 0.,  3., 12., 27.])
    >>> band = torch.ones(3).diag(1) + torch.ones(3).diag(-1)  # J = diag(2x) + band
    >>> vg.diagonal(lambda t: t**2 + band @ t, x, colors=torch.arange(4) %% 2)  # 2 passes
    tensor([0., 2., 4., 6.])
    >>> vg.diagonal(lambda t: (t**3).sum(), x, of="hessian").sum()  # Laplacian: 6 * sum(x)
    tensor(36.)
    """
    x = one_tensor(inputs, "")
    call = Call(func, x)
    of = check_choice("of", of, _OF)
    elementwise = check_bool("elementwise", elementwise)
    groups = diagonal_colors(colors, elementwise, call.xs[0])
    chunk_size = check_chunk_size(chunk_size)
    product = (
        _hessian_product(call) if of == "hessian" else _jacobian_product(call, "with of='jacobian'")
    )
    return call.own(_diagonal(product, call.xs[0], groups, chunk_size))


def _diagonal(product: Product, x: Tensor, groups: Tensor | None, chunk_size: int | None) -> Tensor:
    """The diagonal from one product per colour (per element when ``groups`` is None).

    With colours, the elements are sorted by colour, so that those of a chunk of colours are
    one slice; each keeps its entry of its colour's product, and the slices are put back in
    element order. Without, product ``i`` is column ``i`` and keeps its element ``i``.
    """
    n = x.numel()
    if groups is None:
        colors, num_colors = torch.arange(n, device=x.device), n
    else:
        values, colors = torch.unique(groups, return_inverse=True)  # colours 0, 1, ..., C - 1
        num_colors = values.numel()
        order = torch.argsort(colors, stable=True)
        members = colors[order]
        # Where each colour's elements start in that order.
        bounds = torch.searchsorted(members, torch.arange(num_colors + 1, device=x.device))
        starts = bounds.tolist()
    if num_colors == 0:
        # No pass to make: one product of the empty tangent checks func and gives the dtype.
        return _promoted(product(torch.zeros_like(x))[0], x)
    batched = torch.func.vmap(product, randomness="same")
    pieces = []
    for start, stop in spans(num_colors, chunk_size):
        palette = torch.arange(start, stop, device=x.device)
        tangents = (colors == palette[:, None]).to(x.dtype).reshape(stop - start, *x.shape)
        (products,) = batched(tangents)
        flat = products.reshape(stop - start, n)
        if groups is None:
            # Element start + r of product r, copied: a view would keep every chunk's
            # products alive until the end, n^2 elements in all.
            pieces.append(flat.diagonal(start).clone())
        else:
            elements = slice(starts[start], starts[stop])
            pieces.append(flat[members[elements] - start, order[elements]])
    diag = cat(pieces)
    if groups is not None:
        diag = diag[torch.argsort(order)]  # the inverse permutation
    return _promoted(diag.reshape(x.shape), x)


def _promoted(diag: Tensor, x: Tensor) -> Tensor:
    """``diag`` in the dtype of :func:`~vecgrad.jacobian`'s result (a JVP has the output's)."""
    return diag.to(torch.promote_types(diag.dtype, x.dtype))

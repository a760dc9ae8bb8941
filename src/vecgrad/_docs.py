"""Docstring paragraphs that several public functions share, written once.

A public docstring names a paragraph as ``%(name)s``; :func:`vecgrad._api.public` fills it in
when the function is defined, so ``help()``, the API pages and the Raises tests all read the
whole text. Continuation lines carry their final indentation (eight spaces, a parameter's
description).
"""

from __future__ import annotations

FRAGMENTS = {
    "func": (
        "func : callable\n"
        "        Function returning a Tensor; called as ``func(inputs)`` for a Tensor and\n"
        "        ``func(*inputs)`` for a tuple.\n"
        "        It must not modify its inputs in place (that would change the caller's tensors)."
    ),
    # func of jacobian, batch_jacobian, vjp and jvp, which take several outputs and has_aux.
    "func_outputs": (
        "func : callable\n"
        "        Function returning a Tensor or a tuple of Tensors (several outputs); called as\n"
        "        ``func(inputs)`` for a Tensor and ``func(*inputs)`` for a tuple. With\n"
        "        ``has_aux=True`` it returns a pair ``(output, aux)`` instead.\n"
        "        It must not modify its inputs in place (that would change the caller's tensors)."
    ),
    "has_aux": (
        "has_aux : bool, optional\n"
        "        If True, ``func`` returns ``(output, aux)``: ``output`` (a Tensor or a tuple of\n"
        "        Tensors) is differentiated and ``aux``, any object, is returned as the last\n"
        "        element of the result, not differentiated, like the ``aux`` of\n"
        "        :func:`torch.func.jacrev`. Default False."
    ),
    "func_scalar": (
        "func : callable\n"
        "        Function returning a one-element real floating-point Tensor; called as\n"
        "        ``func(inputs)`` for a Tensor and ``func(*inputs)`` for a tuple.\n"
        "        It must not modify its inputs in place (that would change the caller's tensors)."
    ),
    "inputs": (
        "inputs : Tensor or tuple of Tensor\n"
        "        Point at which ``func`` is differentiated; dense tensors of real floating-point\n"
        "        dtypes. A tuple, not a list, for several inputs."
    ),
    # The first clause of a TypeError paragraph.
    "bad_func_inputs": (
        "If ``func`` is not callable or does not return a dense real floating-point Tensor, if\n"
        "        ``inputs`` is not a dense Tensor or a tuple of dense Tensors of real\n"
        "        floating-point dtype"
    ),
    # The TypeError paragraph of a function taking a tangent ``v`` shaped like ``inputs``.
    "bad_tangent": (
        "If ``func`` is not callable or does not return a dense real floating-point Tensor, if\n"
        "        ``inputs`` or ``v`` is not a dense Tensor or a tuple of dense Tensors of real\n"
        "        floating-point dtype, if ``v`` is a Tensor where ``inputs`` is a tuple (or the\n"
        "        reverse), or if a dtype in ``v`` differs from its input's; or if ``func`` calls\n"
        "        a custom :class:`torch.autograd.Function` without a ``jvp`` or\n"
        "        ``setup_context``."
    ),
    # The TypeError clause on what func returns, for the functions that take several outputs.
    "bad_outputs": (
        "If ``func`` is not callable or does not return a dense real floating-point Tensor or\n"
        "        a tuple of them (a pair ``(output, aux)`` with ``has_aux=True``), if\n"
        "        ``has_aux`` is not a bool, if ``inputs`` is not a dense Tensor or a tuple of\n"
        "        dense Tensors of real floating-point dtype"
    ),
    # A clause of a ValueError paragraph.
    "meta": "``inputs`` holds a meta tensor or ``func`` returns one (they hold no values)",
    "model": (
        "model : torch.nn.Module\n"
        "        Model called on a batch; each sample is passed on its own with a batch\n"
        "        dimension of one, so ordinary modules work. Batch normalisation that uses batch\n"
        "        statistics (training mode, or ``track_running_stats=False``) is refused. It must\n"
        "        not modify its inputs in place. Its parameters and buffers are the same objects,\n"
        "        with the same values, after the call (also after an error)."
    ),
    # The arguments of the functions of a model's loss on a batch (curvature).
    "batch_loss": (
        "model : torch.nn.Module\n"
        "        Model called on the whole batch, ``model(inputs)``, as in training. Batch\n"
        "        normalisation that uses batch statistics (training mode, or\n"
        "        ``track_running_stats=False``) is refused: it would update the model's running\n"
        "        statistics. It must not modify its inputs in place. Its parameters and buffers\n"
        "        are the same objects, with the same values, after the call (also after an\n"
        "        error).\n"
        "    loss_fn : callable\n"
        "        Called as ``loss_fn(model(inputs), targets)``; must return a one-element real\n"
        "        floating-point Tensor, the loss :math:`L` of the batch. With the default\n"
        "        ``reduction='mean'`` of torch's losses (:func:`torch.nn.functional.mse_loss`,\n"
        "        :func:`torch.nn.functional.cross_entropy`) that is the mean of the samples'\n"
        "        losses, each the loss that :func:`per_sample_grads` differentiates.\n"
        "    inputs : Tensor\n"
        "        Batch of ``N`` inputs (any dtype, e.g. integer token ids), first dimension\n"
        "        ``N``.\n"
        "    targets : Tensor\n"
        "        Batch of ``N`` targets, first dimension ``N``."
    ),
    "param_vector": (
        "v : mapping of str to Tensor\n"
        "        Vector keyed like the trainable parameters: for each name of\n"
        "        ``model.named_parameters()`` whose parameter requires grad, a Tensor of that\n"
        "        parameter's shape, dtype and device (in any order)."
    ),
    "create_graph_params": (
        "create_graph : bool, optional\n"
        "        Make the results differentiable with respect to the model's parameters. Default\n"
        "        ``False``: they are constants with respect to them (see :ref:`differentiable`)."
    ),
    # The first clauses of the TypeError and ValueError paragraphs of a model's curvature.
    "bad_batch_loss": (
        "If ``model`` is not an ``nn.Module``, ``loss_fn`` is not callable or does not\n"
        "        return a real floating-point Tensor, ``inputs`` or ``targets`` is not a dense\n"
        "        Tensor, ``create_graph`` is not a bool"
    ),
    "bad_batch": (
        "If ``model`` normalises with batch statistics (call ``model.eval()`` or use\n"
        "        GroupNorm/LayerNorm) or has no parameter that requires grad, ``inputs`` or\n"
        "        ``targets`` is 0-dim or has no sample, their batch sizes differ"
    ),
    # The clauses about ``v`` of a product with a vector of parameters.
    "bad_param_vector_type": (
        "``v`` is not a mapping of dense real floating-point Tensors or\n"
        "        one has another dtype than its parameter"
    ),
    "bad_param_vector_value": (
        "``v`` lacks a name, has an unknown one, or\n"
        "        holds a Tensor of another shape or device than its parameter"
    ),
}


def fill(doc: str | None) -> str | None:
    """``doc`` with its ``%(name)s`` paragraphs filled in."""
    return None if doc is None else doc % FRAGMENTS

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
}


def fill(doc: str | None) -> str | None:
    """``doc`` with its ``%(name)s`` paragraphs filled in."""
    return None if doc is None else doc % FRAGMENTS

"""Work-arounds for behaviour of the installed torch version."""

from __future__ import annotations

import functools
import warnings

import torch


@functools.cache
def ensure_forward_ad() -> None:
    """Load torch's forward-mode decompositions once, without their DeprecationWarning.

    On first use, forward-mode AD imports ``torch._decomp.decompositions_for_jvp``, which calls
    ``torch.jit.script`` and so emits a DeprecationWarning the caller cannot act on. Under
    ``-W error`` that warning aborts the import and every later forward-mode call, so the
    import is triggered here, once, with only that warning silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.script` is", category=DeprecationWarning
        )
        zero = torch.zeros(())
        torch.func.jvp(torch.sin, (zero,), (zero,))

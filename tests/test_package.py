"""The public surface of vecgrad: names, version, doctests, and behaviour under -W error."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

import vecgrad as vg

PUBLIC = [
    "batch_jacobian",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "loss_jacobian",
    "numerical_jacobian",
    "per_sample_grads",
    "time_call",
    "vjp",
]
MODULES = ["hessians", "jacobians", "numerical", "per_sample", "products", "timing"]


def test_public_names() -> None:
    assert vg.__all__ == PUBLIC
    assert vg.__all__ == sorted(vg.__all__)
    assert vg.__version__ == "0.1.0"
    for name in PUBLIC:
        func = getattr(vg, name)
        assert callable(func)
        doc = func.__doc__ or ""
        for section in ("Parameters", "Returns", "Raises", "Notes", "See Also", "Examples"):
            assert f"\n    {section}\n    ---" in doc, (name, section)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module: str) -> None:
    mod = importlib.import_module(f"vecgrad.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_forward_mode_works_when_warnings_are_errors() -> None:
    # The first forward-mode call loads torch's decompositions, which warns; vecgrad keeps that
    # warning from turning into an error in a fresh interpreter run with -W error.
    code = (
        "import torch, vecgrad as vg\n"
        "x = torch.tensor([0.0, 1.0], dtype=torch.float64)\n"
        "_, ju = vg.jvp(torch.sin, x, torch.ones_like(x))\n"
        "assert torch.allclose(ju, torch.cos(x))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr

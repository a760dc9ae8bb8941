"""The public surface of vecgrad: exported names, their docs, doctests, and -W error."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vecgrad as vg

ROOT = Path(__file__).resolve().parents[1]
# The public modules of the package: those whose names do not start with an underscore.
MODULES = sorted(m.name for m in pkgutil.iter_modules(vg.__path__) if not m.name.startswith("_"))
SECTIONS = ("Parameters", "Returns", "Raises", "Notes", "See Also", "Examples")
# A public class (a result, like JacobianColoring) documents its attributes instead.
CLASS_SECTIONS = ("Attributes", "Notes", "See Also", "Examples")


def test_all_is_sorted_and_exports_every_public_function() -> None:
    assert vg.__all__ == sorted(vg.__all__)
    defined = {
        name
        for module in MODULES
        for name, obj in vars(importlib.import_module(f"vecgrad.{module}")).items()
        if (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == f"vecgrad.{module}"
        and not name.startswith("_")
    }
    assert set(vg.__all__) == defined
    assert re.fullmatch(r"\d+\.\d+\.\d+", vg.__version__)


@pytest.mark.parametrize("name", vg.__all__)
def test_public_name_is_documented(name: str) -> None:
    obj = getattr(vg, name)
    doc = obj.__doc__ or ""
    for section in CLASS_SECTIONS if inspect.isclass(obj) else SECTIONS:
        assert f"\n    {section}\n    ---" in doc, section
    # Listed in the API reference, which builds its page.
    assert re.search(rf"^   {name}$", (ROOT / "docs" / "api.rst").read_text(), re.M)


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

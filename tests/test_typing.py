"""The types a user meets: evaluated signatures for help(), and mypy on typical calls.

mypy is in the test dependency group, so these run in ``nox -s tests`` and ``nox -s unit``; the
same file is part of ``nox -s lint``'s mypy run.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

import pytest

import vecgrad as vg

TYPING = Path(__file__).parent / "typing" / "public_types.py"
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"
FUNCTIONS = [getattr(vg, name) for name in vg.__all__ if inspect.isfunction(getattr(vg, name))]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_signatures_show_types_not_alias_names(function: object) -> None:
    """help() and the API pages read inspect.signature: no annotation may be a string."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    annotations = [p.annotation for p in signature.parameters.values()]
    annotations.append(signature.return_annotation)
    assert not [a for a in annotations if isinstance(a, str)], str(signature)
    assert "TensorOrTensors" not in str(signature)


def test_string_choices_are_literals_in_the_signature() -> None:
    strategy = inspect.signature(vg.jacobian).parameters["strategy"].annotation
    assert typing.get_args(strategy) == ("auto", "reverse", "forward", "loop")
    assert "Literal['auto', 'reverse', 'forward', 'loop']" in str(inspect.signature(vg.jacobian))
    quantity = inspect.signature(vg.hutchinson).parameters["quantity"].annotation
    assert "hessian_diagonal" in typing.get_args(quantity)


def run_mypy(*args: str) -> tuple[str, int]:
    from mypy import api

    stdout, stderr, status = api.run(["--config-file", str(PYPROJECT), *args])
    return stdout + stderr, status


def test_mypy_accepts_the_typical_calls_and_refuses_the_misspelt_ones() -> None:
    """public_types.py pins result types and marks each expected error with an ignore."""
    output, status = run_mypy(str(TYPING))
    assert status == 0, output


def test_mypy_errors_name_no_private_class(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\nimport vecgrad as vg\n\n"
        "x = torch.ones(3, dtype=torch.float64)\n"
        'vg.jacobian(torch.sin, x, strategy="revrse")\n'
        "vg.vjp(torch.sin, x, 1.0)\n"
    )
    output, status = run_mypy(str(bad))
    assert status == 1
    assert 'No overload variant of "jacobian" matches' in output
    assert 'No overload variant of "vjp" matches' in output
    assert "Literal['auto', 'reverse', 'forward', 'loop']" in output
    # Names starting with an underscore are private: a user cannot look them up.
    assert not re.findall(r"\b_[A-Za-z]\w*", output), output

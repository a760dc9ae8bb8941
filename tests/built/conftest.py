"""Tests of the built site's files (no browser): they need Sphinx, to build the site if missing.

In CI (CI=true) a missing Sphinx fails them; elsewhere they are skipped with the reason, so that a
plain ``pytest tests`` with only the test dependencies runs the unit tests.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REQUIRED = os.environ.get("CI", "").lower() not in ("", "0", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the site tests, with the reason, where Sphinx is missing (not in CI)."""
    if REQUIRED or importlib.util.find_spec("sphinx") is not None:
        return
    here = Path(__file__).parent
    reason = "the site tests need Sphinx (`pip install --group docs -e .`, or run `nox -s tests`)"
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=reason))

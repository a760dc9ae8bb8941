"""Tests of the built site's files, without a browser: they need Sphinx, to build a stale site.

The fixtures (``site_dir``, ``parsed_pages``, ``stats``) come from the ``vecgrad_site`` plugin. In
CI (CI=true) a missing Sphinx fails these tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from vecgrad_site import in_ci


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_ci() or importlib.util.find_spec("sphinx") is not None:
        return
    reason = "the site tests need Sphinx (`pip install --group docs -e .`, or run `nox -s tests`)"
    for item in items:
        if Path(__file__).parent in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=reason))

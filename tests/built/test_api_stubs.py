"""The committed API stub pages are exactly what autosummary writes for docs/api.rst."""

from __future__ import annotations

from pathlib import Path

import vecgrad as vg

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
STUBS = DOCS / "api" / "generated"


def test_stubs_are_current(tmp_path: Path) -> None:
    from sphinx.ext.autosummary.generate import main as autogen  # skipped without Sphinx

    # What `nox -s api_stubs` runs (sphinx-autogen), into a temporary folder.
    autogen(["-t", str(DOCS / "_templates"), "-o", str(tmp_path), str(DOCS / "api.rst")])
    fresh = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.glob("*.rst")}
    committed = {path.name: path.read_text(encoding="utf-8") for path in STUBS.glob("*.rst")}
    assert committed == fresh, "the API stubs are out of date: run `nox -s api_stubs`"
    # One page per public function: api.rst lists them all.
    assert sorted(fresh) == sorted(f"vecgrad.{name}.rst" for name in vg.__all__)

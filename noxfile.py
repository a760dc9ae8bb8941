#!/usr/bin/env python
# /// script
# dependencies = ["nox>=2025.2.9"]
# ///
"""Developer sessions for vecgrad (``nox --list``; ``nox`` alone runs the first three):

- ``docs``: build the site, every example executed, then the package's doctests.
- ``tests``: unit, property and doctest tests, then the built site's files and the site in Chromium.
- ``lint``: ruff and mypy --strict.
- ``unit``: only the unit, property and doctest tests.
- ``bench``: vecgrad against the reference methods, as a table of ratios.
- ``bench_docs``: cold, no-change, one-example-edit and one-page-edit site builds against goals.
- ``api_stubs``: rewrite the API stub pages of docs/api.rst.
- ``serve``: rebuild and reload the site in the browser while you edit.

The site's paths and Sphinx command belong to ``docs/_tooling/vecgrad_site.py``, which
the site sessions install and run inside their environment.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"  # pip-based: pip finds the local torch wheel
nox.options.reuse_venv = "yes"


def install(session: nox.Session, *groups: str, site: bool = False) -> None:
    """Install torch first (pinned: a bare ``torch`` would pull a CUDA build), then vecgrad.

    ``groups`` are PEP 735 dependency groups of pyproject.toml; ``pip install --group`` needs
    pip 25.1 or newer, so pip is upgraded first (a no-op when it is new enough). ``site`` adds
    the site's tooling (``vecgrad_site``, editable).
    """
    session.install("pip>=25.1")
    session.install(*CONSTRAINTS, "torch==2.13.0")
    tooling = ("-e", "docs/_tooling") if site else ()
    session.install(*CONSTRAINTS, *(f"--group={group}" for group in groups), "-e", ".", *tooling)


def ensure_chromium(session: nox.Session) -> None:
    """Debian's Chromium for the browser tests, installed when missing and we are root.

    Elsewhere the browser tests skip with the reason (and fail in CI).
    """
    if os.environ.get("VECGRAD_CHROMIUM") or shutil.which("chromium"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)


def run_unit_tests(session: nox.Session) -> None:
    """The unit, property and doctest tests: no site, no browser; seconds to the first result."""
    session.run(
        "pytest",
        "--doctest-modules",
        "src/vecgrad",
        "tests",
        "--ignore=tests/browser",
        "--ignore=tests/built",
        "-q",
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with every example executed, then run the package's doctests."""
    install(session, "docs", site=True)
    session.run("python", "-m", "vecgrad_site", "build", *session.posargs)
    session.run("pytest", "--doctest-modules", "src/vecgrad", "-q", "-p", "no:cacheprovider")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, property and doctest tests first, then tests of the built site's files and in Chromium.

    The site `nox -s docs` built is brought up to date first (Sphinx's incremental build).
    """
    install(session, "test")
    run_unit_tests(session)
    install(session, "test", "docs", site=True)
    ensure_chromium(session)
    session.run("pytest", "tests/built", "tests/browser", *session.posargs)


@nox.session(default=False)
def unit(session: nox.Session) -> None:
    """Only the unit, property and doctest tests (what `nox -s tests` runs first)."""
    install(session, "test")
    run_unit_tests(session)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style (ruff) and types (mypy --strict on src/ and tests/typing/)."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time vecgrad against the reference methods and print a table of ratios."""
    install(session, "bench")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session(default=False)
def bench_docs(session: nox.Session) -> None:
    """Time cold, no-change, one-example-edit and one-page-edit site builds against their goals."""
    install(session, "docs", site=True)
    session.run("python", "benchmarks/docs_build.py", *session.posargs)


@nox.session(default=False)
def api_stubs(session: nox.Session) -> None:
    """Write the API stub pages of docs/api.rst (after adding or renaming a public function).

    They are committed: generating them at every build imports vecgrad, and so torch, even when
    nothing changed (tests/built/test_api_stubs.py fails when they are out of date).
    """
    install(session, "docs")
    for stub in Path("docs/api/generated").glob("vecgrad.*.rst"):
        stub.unlink()
    session.run(
        "sphinx-autogen", "-t", "docs/_templates", "-o", "docs/api/generated", "docs/api.rst"
    )


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Rebuild and reload the site in the browser while you edit (sphinx-autobuild)."""
    install(session, "docs", site=True)
    session.install(*CONSTRAINTS, "sphinx-autobuild")
    session.run("python", "-m", "vecgrad_site", "serve", *session.posargs)


if __name__ == "__main__":
    nox.main()

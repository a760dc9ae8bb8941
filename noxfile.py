#!/usr/bin/env python
# /// script
# dependencies = ["nox>=2025.2.9"]
# ///
"""Developer sessions for vecgrad: docs, tests, unit, lint, bench and serve (``nox --list``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
SITE = DOCS / "_build" / "html"
# Written after a successful build: a hash of everything the site is built from (see site_inputs).
SITE_STAMP = DOCS / "_build" / "site-inputs.json"
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
# axe-core for the accessibility test, from npm, into an ignored folder (tests/browser/conftest.py).
AXE_CORE = "4.14.1"
AXE_DIR = ROOT / ".nox" / "axe"

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"  # pip-based: pip finds the local torch wheel
nox.options.reuse_venv = "yes"


def install(session: nox.Session, *groups: str) -> None:
    """Install torch first (pinned: a bare ``torch`` would pull a CUDA build), then vecgrad.

    ``groups`` are PEP 735 dependency groups of pyproject.toml; ``pip install --group`` needs
    pip 25.1 or newer, so pip is upgraded first (a no-op when it is new enough).
    """
    session.install("pip>=25.1")
    session.install(*CONSTRAINTS, "torch==2.13.0")
    session.install(*CONSTRAINTS, *(f"--group={group}" for group in groups), "-e", ".")


def site_inputs(*extra: str) -> str:
    """A hash of what the site is built from: docs/ and gallery/ sources, src/, the pins.

    Build outputs (docs/_build, the generated gallery and API pages, the copied MathJax) and
    caches are left out. ``extra`` adds the build's options (the site's address, arguments).
    """
    digest = hashlib.sha256()
    generated = (
        "_build",
        "gallery",
        "api/generated/backreferences",
        "sg_execution_times.rst",
        "_static/mathjax",
    )
    skipped = {DOCS / part for part in generated}
    files = [ROOT / "constraints.txt", ROOT / "pyproject.toml"]
    for folder in (DOCS, ROOT / "gallery", ROOT / "src"):
        files += [
            path
            for path in folder.rglob("*")
            if path.is_file()
            and "__pycache__" not in path.parts
            and not any(path == skip or skip in path.parents for skip in skipped)
        ]
    for path in sorted(files):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for value in extra:
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()


def sphinx_args(*posargs: str) -> list[str]:
    """The build's sphinx-build arguments (see build_site)."""
    doctrees = str(DOCS / "_build" / "doctrees")
    options = ["-T", "-j", "auto", "-W", "--keep-going", "-b", "html", "-d", doctrees]
    return [*options, str(DOCS), str(SITE), *posargs]


def build_options(*posargs: str) -> list[str]:
    """What else changes the built site: the address it is built for and the command line."""
    address = ("READTHEDOCS_CANONICAL_URL", "VECGRAD_DOCS_URL")
    return [*(f"{name}={os.environ.get(name, '')}" for name in address), *sphinx_args(*posargs)]


def site_is_current() -> bool:
    """True when a build succeeded from exactly the sources and options there are now."""
    if not (SITE_STAMP.is_file() and (SITE / "index.html").is_file()):
        return False
    stamp = json.loads(SITE_STAMP.read_text(encoding="utf-8"))
    return bool(stamp.get("inputs") == site_inputs(*build_options()))


def build_site(session: nox.Session, *posargs: str) -> None:
    """Build the HTML site, executing every gallery example and notebook page; warnings fail.

    ``-j auto`` reads (and so executes) the notebook pages in parallel; ``-T`` prints the full
    traceback of a failing notebook cell, which a parallel worker would otherwise only save to a
    log file. The stamp is removed first and written only after a successful build, so a failed
    or interrupted build is never taken for a current one.
    """
    SITE_STAMP.unlink(missing_ok=True)
    inputs = site_inputs(*build_options(*posargs))
    session.run("sphinx-build", *sphinx_args(*posargs))
    stamp = {"inputs": inputs, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    SITE_STAMP.write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def chromium_path() -> str | None:
    return os.environ.get("VECGRAD_CHROMIUM") or shutil.which("chromium")


def ensure_chromium(session: nox.Session) -> bool:
    """Debian's Chromium for the browser tests: installed when missing and we are root.

    Elsewhere a missing Chromium is reported, and the browser tests skip with the reason; in CI
    it is an error.
    """
    if chromium_path():
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)
        return True
    message = (
        "The browser tests need Chromium: install it (`sudo apt-get install -y chromium` on "
        "Debian) or set VECGRAD_CHROMIUM to a Chromium or Chrome binary."
    )
    if in_ci():
        session.error(message)
    session.warn(message + " They are skipped.")
    return False


def ensure_axe(session: nox.Session) -> None:
    """axe-core, pinned, from the npm registry into .nox/axe (skipped when it is there)."""
    package = AXE_DIR / "node_modules" / "axe-core" / "package.json"
    if package.is_file() and json.loads(package.read_text())["version"] == AXE_CORE:
        return
    if not shutil.which("npm"):
        message = "The accessibility test needs npm to install axe-core (`apt-get install npm`)."
        if in_ci():
            session.error(message)
        session.warn(message + " It is skipped.")
        return
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    session.run(
        "npm",
        "install",
        "--prefix",
        str(AXE_DIR),
        "--no-audit",
        "--no-fund",
        "--no-package-lock",
        "--no-save",
        f"axe-core@{AXE_CORE}",
        external=True,
    )


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
    install(session, "docs")
    session.install(*CONSTRAINTS, "pytest")
    build_site(session, *session.posargs)
    session.run("pytest", "--doctest-modules", "src/vecgrad", "-q", "-p", "no:cacheprovider")
    session.log(f"The site is at {SITE / 'index.html'}")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, property and doctest tests first, then tests of the built site and in a browser.

    The browser tests reuse the site `nox -s docs` built when it is current (same sources,
    constraints and options, see site_inputs) and rebuild it only when it is stale.
    """
    install(session, "test")
    run_unit_tests(session)
    install(session, "test", "docs")
    if site_is_current():
        session.log(f"The site in {SITE} is current: reusing it.")
    else:
        session.log(f"The site in {SITE} is missing or stale: building it.")
        build_site(session)
    ensure_chromium(session)
    ensure_axe(session)
    # The site's files (plain HTML checks, and a second cold build compared with this one),
    # then the site in a real browser.
    session.run("pytest", "tests/built", "tests/browser", *session.posargs)


@nox.session(default=False)
def unit(session: nox.Session) -> None:
    """Only the unit, property and doctest tests (what `nox -s tests` runs first)."""
    install(session, "test")
    run_unit_tests(session)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style (ruff) and types (mypy --strict on src/)."""
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
    install(session, "docs")
    session.run("python", "benchmarks/docs_build.py", *session.posargs)


@nox.session(default=False)
def api_stubs(session: nox.Session) -> None:
    """Write the API stub pages of docs/api.rst (after adding or renaming a public function)."""
    install(session, "docs")
    out = DOCS / "api" / "generated"
    for stub in out.glob("vecgrad.*.rst"):
        stub.unlink()
    templates = str(DOCS / "_templates")
    session.run("sphinx-autogen", "-t", templates, "-o", str(out), str(DOCS / "api.rst"))


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Rebuild and reload the site in the browser while you edit (sphinx-autobuild)."""
    install(session, "docs")
    session.install(*CONSTRAINTS, "sphinx-autobuild")
    session.run(
        "sphinx-autobuild",
        str(DOCS),
        str(SITE),
        "--watch",
        "src",
        "--watch",
        "gallery",
        "--ignore",
        str(DOCS / "gallery"),
        "--ignore",
        str(DOCS / "api" / "generated"),
        *session.posargs,
    )


if __name__ == "__main__":
    nox.main()

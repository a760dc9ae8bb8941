"""Developer sessions for vecgrad: docs, tests, lint, bench and serve (``nox --list``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
SITE = DOCS / "_build" / "html"
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

nox.options.default_venv_backend = "venv"  # pip-based: pip finds the local torch wheel
nox.options.reuse_venv = "yes"
nox.options.sessions = ["docs", "tests", "lint"]


def install(session: nox.Session, *extras: str) -> None:
    """Install torch first (pinned: a bare ``torch`` would pull a CUDA build), then vecgrad."""
    session.install(*CONSTRAINTS, "torch==2.13.0")
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, "-e", target)


def build_site(session: nox.Session) -> None:
    """Build the HTML site, executing every gallery example and notebook page; warnings fail.

    ``-j auto`` reads (and so executes) the notebook pages in parallel; ``-T`` prints the full
    traceback of a failing notebook cell, which a parallel worker would otherwise only save to a
    log file.
    """
    session.run(
        "sphinx-build",
        "-T",
        "-j",
        "auto",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "-d",
        str(DOCS / "_build" / "doctrees"),
        str(DOCS),
        str(SITE),
        *session.posargs,
    )


def ensure_chromium(session: nox.Session) -> None:
    """The browser tests drive Debian's Chromium; install it when it is missing and we may."""
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)
        return
    session.error(
        "The browser tests need Chromium at /usr/bin/chromium: install it "
        "(`sudo apt-get install -y chromium` on Debian), then run `nox -s tests` again."
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with every example executed, then run the package's doctests."""
    install(session, "docs")
    session.install(*CONSTRAINTS, "pytest")
    build_site(session)
    session.run("pytest", "--doctest-modules", "src/vecgrad", "-q", "-p", "no:cacheprovider")
    session.log(f"The site is at {SITE / 'index.html'}")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the unit, property, doctest and real-browser tests (builds the site if needed)."""
    install(session, "test", "docs")
    ensure_chromium(session)
    build_site(session)
    session.run("pytest", "--doctest-modules", "src/vecgrad", "tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style (ruff) and types (mypy --strict on src/)."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Time vecgrad against the reference methods and print a table of ratios."""
    install(session)
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session(default=False)
def bench_docs(session: nox.Session) -> None:
    """Time cold, no-change, one-example-edit and one-page-edit site builds against their goals."""
    install(session, "docs")
    session.run("python", "benchmarks/docs_build.py", *session.posargs)


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

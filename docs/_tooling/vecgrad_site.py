"""The vecgrad site: where it is built, with which command, and how its tests read it.

The one owner of what the noxfile, the site tests (tests/built, tests/browser) and the docs
benchmark share. ``python -m vecgrad_site build [SPHINX OPTIONS]`` builds the site (Sphinx's own
incremental build: an unchanged site takes a few seconds), ``python -m vecgrad_site serve``
rebuilds it as you edit. Installed (``pip install -e docs/_tooling``), it is also a pytest
plugin: the ``site_dir``, ``site_pages``, ``parsed_pages`` and ``stats`` fixtures, the skips
where Sphinx or Chromium is missing, and the counts printed at the end of a run.
"""

from __future__ import annotations

import importlib.util
import os
import posixpath
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pytest

if TYPE_CHECKING:
    from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "docs/_build/html"
# What a build writes into the checkout: not copied for a cold build.
GENERATED = (
    "docs/_build",
    "docs/gallery",
    "docs/api/generated/backreferences",
    "docs/_static/mathjax",
)
NOT_SOURCES = (".git", ".nox", ".venv", "__pycache__", ".*_cache", "*.egg-info")
CHROMIUM = os.environ.get("VECGRAD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def in_ci() -> bool:
    """True under CI (``CI=true``): a site test that cannot run fails instead of skipping."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def sphinx_command(root: Path = ROOT, *options: str) -> list[str]:
    """Warnings are errors; ``-j auto`` runs the notebook pages in parallel while it reads them;
    ``-T`` prints a failing cell's whole traceback."""
    out = root / "docs/_build"
    flags = ["-T", "-j", "auto", "-W", "--keep-going", "-b", "html", "-d", str(out / "doctrees")]
    return [sys.executable, "-m", "sphinx", *flags, *options, str(root / "docs"), str(out / "html")]


class BuildError(RuntimeError):
    """sphinx-build failed; the message ends with its log when it was captured."""


def build(root: Path = ROOT, *options: str, capture: bool = False) -> str:
    """Build the site of the checkout at ``root``; its log when ``capture``."""
    from vecgrad_reader import revision  # docs/_ext: needs Sphinx, as building does

    # The commit and its date are in the pages (source links, the footer's stamp); a copy of the
    # checkout has no .git, so it is built from the checkout's commit and date.
    stamp = revision(root) or revision(ROOT)
    env = {**stamp, **os.environ, "PYTHONPATH": str(root / "src"), "MPLBACKEND": "Agg"}
    command = sphinx_command(root, *options)
    done = subprocess.run(command, cwd=root, env=env, capture_output=capture, text=True)
    log = (done.stdout or "") + (done.stderr or "")
    if done.returncode:
        raise BuildError(f"`{' '.join(command)}` failed (exit {done.returncode})\n{log[-6000:]}")
    return log


def copy_checkout(dest: Path, root: Path = ROOT) -> Path:
    """A copy of the checkout's sources at ``dest``, without anything a build wrote."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(*NOT_SOURCES), symlinks=True)
    for rel in GENERATED:
        shutil.rmtree(dest / rel, ignore_errors=True)
    return dest


# -- Reading the built site ------------------------------------------------------------------------


def parse(path: Path) -> BeautifulSoup:
    from bs4 import BeautifulSoup  # furo's dependency: there wherever the site is built

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def served_prefix(site: Path) -> str:
    """The URL path the site is built to live under (``/``, or ``/vecgrad/`` for a project site),
    from the absolute links of its 404 page (sphinx-notfound-page)."""
    found = re.search(r'href="(/[^"]*?)_static/', (site / "404.html").read_text(encoding="utf-8"))
    return found.group(1) if found else "/"


def resolve(page: str, url: str, prefix: str = "/") -> tuple[str | None, str]:
    """The site path and fragment ``url`` on ``page`` points to; None for another site, and a
    path starting ``(outside the site)`` for one that leaves the site (``prefix``: its mount)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme or parts.netloc:
        return None, ""
    if not path.startswith("/"):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path)) if path else page
    elif path.startswith(prefix):
        target = posixpath.normpath(path[len(prefix) :] or ".")
    else:
        return f"(outside the site) {path}", ""
    if target == "." or path.endswith("/"):
        target = posixpath.normpath(posixpath.join(target, "index.html"))
    if target.startswith("../"):
        return f"(outside the site) {target}", ""
    return target, unquote(parts.fragment)


def no_problems(problems: list[str], what: str) -> None:
    """Fail with one line per problem found, under a count of them: ``3 broken links:``."""
    assert not problems, f"{len(problems)} {what}:\n  " + "\n  ".join(problems)


# -- pytest plugin: the site fixtures, the skips and the summary counts ---------------------------

STATS = pytest.StashKey[Counter[str]]()


@pytest.fixture(scope="session")
def stats(request: pytest.FixtureRequest) -> Counter[str]:
    """Counts printed at the end of the run (pages, page loads, links, downloads, axe runs...)."""
    return request.config.stash.setdefault(STATS, Counter())


@pytest.fixture(scope="session")
def site_dir() -> Path:
    """The built site, brought up to date first (log captured)."""
    try:
        build(capture=True)
    except BuildError as err:
        pytest.fail(str(err))
    return SITE


@pytest.fixture(scope="session")
def site_pages(site_dir: Path) -> list[str]:
    """Every HTML page of the site, as a path from its root; assets and downloads left out."""
    rels = [path.relative_to(site_dir) for path in site_dir.rglob("*.html")]
    assets = {"_static", "_sources", "_downloads", "_images"}
    pages = sorted(rel.as_posix() for rel in rels if rel.parts[0] not in assets)
    assert "index.html" in pages, f"no index.html among the built pages: {pages}"
    return pages


@pytest.fixture(scope="session")
def parsed_pages(site_dir: Path, site_pages: list[str]) -> dict[str, BeautifulSoup]:
    return {rel: parse(site_dir / rel) for rel in site_pages}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Site tests skip, with the reason, where Sphinx (tests/built) or also Chromium
    (tests/browser) is missing; in CI they run, and fail."""
    sphinx = importlib.util.find_spec("sphinx") is not None
    missing = {
        "built": "" if sphinx else "Sphinx (`pip install --group docs -e .`, or `nox -s tests`)",
        "browser": ""
        if sphinx and Path(CHROMIUM).is_file()
        else f"Sphinx and Chromium at {CHROMIUM}",
    }
    for item in [] if in_ci() else items:
        folder = item.path.parent
        if folder.parent == ROOT / "tests" and missing.get(folder.name):
            item.add_marker(pytest.mark.skip(reason=f"the site tests need {missing[folder.name]}"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if counts := config.stash.get(STATS, None):
        terminalreporter.write_sep("-", "vecgrad site checks")
        for name, value in counts.items():
            terminalreporter.write_line(f"{name}: {value}")


def main(command: str = "", *args: str) -> int:
    if command == "serve":
        watch = ["--watch", "src", "--watch", "gallery"]
        ignore = ["--ignore", "docs/gallery", "--ignore", "docs/api/generated"]
        autobuild = sphinx_command(ROOT, *watch, *ignore, *args)[3:]
        return subprocess.call([sys.executable, "-m", "sphinx_autobuild", *autobuild], cwd=ROOT)
    if command != "build":
        print("usage: python -m vecgrad_site build [SPHINX OPTIONS] | serve")
        return 2
    try:
        build(ROOT, *args)
    except BuildError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"The site is at {SITE / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

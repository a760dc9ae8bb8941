"""Fixtures for the site tests: the built site, a local server, one Chromium and the page visits.

Everything here is made once per session: the site is served by ``python -m http.server`` on a
free port of 127.0.0.1 and driven by Debian's Chromium through playwright. Every request to any
other host is aborted and counted, so a page that needs the network fails the tests.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:  # playwright is imported where a browser starts: the unit tests run without it
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, Route

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE = REPO_ROOT / "docs" / "_build" / "html"
BUILD_COMMAND = ("-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
CHROMIUM = Path(
    os.environ.get("VECGRAD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)
# axe-core, installed by `nox -s tests` with npm (noxfile.py pins its version).
AXE_JS = Path(
    os.environ.get("VECGRAD_AXE_JS")
    or REPO_ROOT / ".nox" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
)
# In CI (CI=true, as GitHub Actions and .ci/run set it) a missing dependency fails the browser
# tests; elsewhere they are skipped with the reason, so the unit tests run on any machine.
REQUIRED = os.environ.get("CI", "").lower() not in ("", "0", "false")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Folders of the build that hold assets and sources, not pages. sphinx-gallery's notebooks are
# excluded from the Sphinx build (conf.py), so no page comes from them; they are only downloads.
ASSET_DIRS = frozenset({"_static", "_sources", "_downloads", "_images"})
THEMES = ("light", "dark")
# <link rel=...> values that make the browser fetch the URL (canonical, next, prev... do not).
FETCHED_LINK_RELS = frozenset({"stylesheet", "icon", "preload", "modulepreload", "manifest"})
MATHJAX_TIMEOUT_MS = 15_000
SETTLE_TIMEOUT_S = 10
# Any URL not on the local server (blob: and data: URLs are the page's own).
OFFSITE = re.compile(r"^(?!http://127\.0\.0\.1[:/]|blob:|data:)")

STATS = pytest.StashKey[Counter[str]]()
SCREENSHOTS = pytest.StashKey[list[str]]()


# -- What the browser tests need ------------------------------------------------------------------


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (a missing package or Chromium), or None."""
    for module, package in (("playwright", "playwright"), ("PIL", "pillow")):
        if importlib.util.find_spec(module) is None:
            return (
                f"the browser tests need the Python package {package} "
                "(`pip install --group test --group docs -e .`, or run `nox -s tests`)"
            )
    if not CHROMIUM.is_file():
        return (
            f"the browser tests need Chromium at {CHROMIUM} (`apt-get install chromium` on "
            "Debian, or set VECGRAD_CHROMIUM to a Chromium or Chrome binary)"
        )
    if not (SITE / "index.html").is_file() and importlib.util.find_spec("sphinx") is None:
        return f"no built site at {SITE} and no Sphinx to build it (run `nox -s docs`)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests, with the reason, where their dependencies are missing (not in CI)."""
    here = Path(__file__).parent
    reason = None if REQUIRED else missing_browser()
    if reason:
        for item in items:
            if here in item.path.parents:
                item.add_marker(pytest.mark.skip(reason=reason))


# -- The built site --------------------------------------------------------------------------------


def list_pages(site: Path) -> list[str]:
    """Every HTML page of the build, as paths relative to its root (``gallery/index.html``)."""
    return sorted(
        path.relative_to(site).as_posix()
        for path in site.rglob("*.html")
        if path.relative_to(site).parts[0] not in ASSET_DIRS
    )


def served_prefix(site: Path) -> str:
    """The URL path the site is built to live under, read from its 404 page's absolute links.

    sphinx-notfound-page links the 404 page's assets absolutely (``/_static/...`` for a local build,
    ``/vecgrad/_static/...`` for a build for a project site), so the server mounts the site there.
    """
    notfound = site / "404.html"
    if notfound.is_file():
        found = re.search(r'href="(/[^"]*?)_static/', notfound.read_text(encoding="utf-8"))
        if found:
            return found.group(1)
    return "/"


@dataclass
class ParsedPage:
    """What the static checks need from one HTML file."""

    title: str = ""
    ids: set[str] = field(default_factory=set)
    refs: list[tuple[str, str]] = field(default_factory=list)  # (tag, URL) in document order
    meta: dict[str, str] = field(default_factory=dict)  # name or property -> content
    downloads: list[str] = field(default_factory=list)  # hrefs of <a download> / class "download"
    canonical: str = ""
    fetched_links: set[str] = field(default_factory=set)  # <link> hrefs the browser loads
    h1: int = 0  # number of <h1> headings


class _PageParser(HTMLParser):
    LINKING: ClassVar[dict[str, str]] = {
        "a": "href",
        "link": "href",
        "img": "src",
        "script": "src",
        "source": "src",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._in_head_title = False
        self._in_head = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.page.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.page.ids.add(values["name"])
        if tag == "body":
            self._in_head = False
        elif tag == "h1":
            self.page.h1 += 1
        elif tag == "title" and self._in_head and not self.page.title:
            self._in_head_title = True
        elif tag == "meta":
            key = values.get("name") or values.get("property")
            if key:
                self.page.meta[key] = values.get("content", "")
        rels = set(values.get("rel", "").split())
        if tag == "link" and "canonical" in rels:
            self.page.canonical = values.get("href", "")
        if tag == "link" and rels & FETCHED_LINK_RELS:
            self.page.fetched_links.add(values.get("href", ""))
        attr = self.LINKING.get(tag)
        if attr and attr in values:
            self.page.refs.append((tag, values[attr]))
            classes = values.get("class", "").split()
            if tag == "a" and ("download" in values or "download" in classes):
                self.page.downloads.append(values[attr])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_head_title = False
        elif tag == "head":
            self._in_head = False

    def handle_data(self, data: str) -> None:
        if self._in_head_title:
            self.page.title += data


def parse_page(path: Path) -> ParsedPage:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    parser.page.title = " ".join(parser.page.title.split())
    return parser.page


def checkout_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: this checkout's package first on the path, no -O."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONOPTIMIZE"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT / "src"), env.get("PYTHONPATH")])
    )
    return {**env, **extra}


@pytest.fixture(scope="session")
def stats(request: pytest.FixtureRequest) -> Counter[str]:
    """Counters printed at the end of the run (pages, requests, images, downloads, links)."""
    return request.config.stash.setdefault(STATS, Counter())


@pytest.fixture(scope="session")
def site_dir() -> Path:
    """The built HTML site; built here with the project's Sphinx command when it is missing."""
    if not (SITE / "index.html").is_file():
        command = [sys.executable, *BUILD_COMMAND]
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=checkout_env(), capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or not (SITE / "index.html").is_file():
            pytest.fail(
                f"building the site with `{' '.join(command)}` failed "
                f"(exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
            )
    return SITE


@pytest.fixture(scope="session")
def site_pages(site_dir: Path) -> list[str]:
    pages = list_pages(site_dir)
    assert "index.html" in pages, f"no index.html among the built pages: {pages}"
    return pages


@pytest.fixture(scope="session")
def parsed_pages(site_dir: Path, site_pages: list[str]) -> dict[str, ParsedPage]:
    return {rel: parse_page(site_dir / rel) for rel in site_pages}


# -- The local server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(url: str, timeout: float = 30) -> tuple[int, bytes]:
    """GET ``url``; the status and the body, also for HTTP errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


@pytest.fixture(scope="session")
def site_url(site_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (ending in ``/``) of the site served by ``python -m http.server`` on 127.0.0.1."""
    prefix = served_prefix(site_dir)
    root = site_dir
    if prefix != "/":
        # Mount the site under the path its 404 page expects, as a project site is hosted.
        root = tmp_path_factory.mktemp("webroot")
        mount = root / prefix.strip("/")
        mount.parent.mkdir(parents=True, exist_ok=True)
        mount.symlink_to(site_dir, target_is_directory=True)
    port = _free_port()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    server = subprocess.Popen(
        [*command, "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}{prefix}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                pytest.fail(f"`{' '.join(command)}` exited with {server.returncode}")
            with contextlib.suppress(OSError):
                if fetch(base + "index.html", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the site server did not answer at {base}index.html within 20 s")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- The browser -----------------------------------------------------------------------------------


@dataclass
class PageLog:
    """What one page did on the network and the console."""

    requests: int = 0
    offsite: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


class Tab:
    """One browser tab; each ``goto`` starts a new :class:`PageLog` for the page it opens."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.log = PageLog()
        self.pending: set[Request] = set()

    def goto(self, rel: str) -> Response | None:
        """Open a page of the site (a path from its root) and wait for its load event."""
        self.settle()
        self.log = PageLog()
        return self.page.goto(self.base_url + rel, wait_until="load")

    def settle(self) -> None:
        """Wait until the page's requests have all finished (leaving would cancel them)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while self.pending and time.monotonic() < deadline:
            self.page.wait_for_timeout(20)
        self.log.failed += [
            f"{request.url}: unfinished after {SETTLE_TIMEOUT_S} s" for request in self.pending
        ]
        self.pending.clear()


class SiteBrowser:
    """Opens the served site in browser tabs, offline, in a given theme."""

    def __init__(self, browser: Browser, base_url: str, stats: Counter[str]) -> None:
        self.browser = browser
        self.base_url = base_url
        self.stats = stats

    def url(self, rel: str) -> str:
        return self.base_url + rel

    def rel(self, url: str) -> str:
        """A URL of the site as a path relative to its root (query and fragment dropped)."""
        path = urlsplit(url).path
        base_path = urlsplit(self.base_url).path
        return path[len(base_path) :] if path.startswith(base_path) else url

    @contextlib.contextmanager
    def open(self, theme: str = "light") -> Iterator[Tab]:
        """A tab in a new browser context, with furo's stored theme and the OS preference set.

        Like a reader's browser, the context keeps its cache from page to page within the tab.
        """
        context = self.browser.new_context(
            color_scheme="dark" if theme == "dark" else "light",
            viewport={"width": 1280, "height": 900},
        )
        # furo reads localStorage "theme" ("light", "dark" or "auto") into body[data-theme].
        context.add_init_script(f"localStorage.setItem('theme', {json.dumps(theme)});")
        tab = Tab(context.new_page(), self.base_url)

        def block(route: Route) -> None:
            tab.log.offsite.append(route.request.url)
            self.stats["requests blocked (left the site)"] += 1
            route.abort()

        def on_request(request: Request) -> None:
            tab.log.requests += 1
            tab.pending.add(request)
            self.stats["requests made"] += 1

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location
                tab.log.console_errors.append(
                    f"console error: {message.text} "
                    f"({where.get('url', '')}:{where.get('lineNumber', '')})"
                )

        def on_failed(request: Request) -> None:
            tab.pending.discard(request)
            if request.url in tab.log.offsite:
                return
            # The browser cancels a late request (the favicon) when the tab moves on; a missing
            # file shows as an HTTP error instead. Fetch the file again to tell the two apart.
            if request.failure == "net::ERR_ABORTED" and fetch(request.url)[0] == 200:
                self.stats["requests cancelled by the browser (file fetched again: 200)"] += 1
                return
            tab.log.failed.append(f"{request.url}: {request.failure}")

        def on_response(response: Response) -> None:
            if response.status >= 400:
                tab.log.failed.append(f"{response.url}: HTTP {response.status}")

        # Only requests to other hosts are intercepted (the pattern is matched by the browser
        # driver); the site's own requests go straight through and are counted as they start.
        context.route(OFFSITE, block)
        tab.page.on("request", on_request)
        tab.page.on("console", on_console)
        tab.page.on("pageerror", lambda error: tab.log.console_errors.append(f"uncaught: {error}"))
        tab.page.on("requestfailed", on_failed)
        tab.page.on("requestfinished", lambda request: tab.pending.discard(request))
        tab.page.on("response", on_response)
        try:
            yield tab
            tab.settle()
        finally:
            context.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    reason = missing_browser()
    if reason:
        pytest.fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def site_browser(chromium: Browser, site_url: str, stats: Counter[str]) -> SiteBrowser:
    return SiteBrowser(chromium, site_url, stats)


# -- Visiting every page in both themes ------------------------------------------------------------

# Math on the page: Sphinx's .math elements, MathJax's output, and raw TeX delimiters left in text
# a reader sees (code blocks, where a backslash-paren is Python, are not prose).
MATH_PROBE = r"""() => {
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest(skip) || !el.checkVisibility()) continue;
    const at = node.nodeValue.search(/\\\(|\\\[/);
    if (at >= 0) raw.push(node.nodeValue.slice(Math.max(0, at - 20), at + 50).trim());
  }
  const math = Array.from(document.querySelectorAll(".math"));
  return {
    elements: math.length,
    untypeset: math.filter((m) => !m.querySelector("mjx-container"))
                   .map((m) => m.textContent.trim().slice(0, 60)),
    containers: document.querySelectorAll("mjx-container").length,
    errors: Array.from(document.querySelectorAll("mjx-merror"))
                 .map((e) => e.textContent.trim().slice(0, 60)),
    raw,
  };
}"""

# Every <img>: a shown one must load and decode (lazy ones are made eager first); one hidden in
# this theme (furo's only-light / only-dark) is loaded the way the browser would when it is shown.
IMAGE_PROBE = r"""async () => {
  const within = (promise, ms) =>
    Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(null), ms))]);
  const probe = (src) => new Promise((resolve) => {
    const image = new Image();
    image.onload = () => resolve(image.naturalWidth);
    image.onerror = () => resolve(0);
    image.src = src;
  });
  const out = [];
  for (const img of Array.from(document.images)) {
    const src = img.currentSrc || img.src;
    const shown = img.checkVisibility();
    const containerShown = img.parentElement ? img.parentElement.checkVisibility() : false;
    let width = 0;
    if (shown) {
      img.loading = "eager";
      await within(img.decode().catch(() => null), 10000);
      width = img.complete ? img.naturalWidth : 0;
    } else {
      width = (await within(probe(src), 10000)) || 0;
    }
    const alt = img.getAttribute("alt");
    out.push({src, alt, classes: Array.from(img.classList), shown, containerShown, width});
  }
  return out;
}"""

THEME_PROBE = """() => ({
  theme: document.body.dataset.theme,
  background: getComputedStyle(document.body).backgroundColor,
})"""


@dataclass
class PageReport:
    rel: str
    theme: str
    log: PageLog
    math: dict[str, Any]
    mathjax_started: bool | None  # None: no math on the page
    images: list[dict[str, Any]]
    body: dict[str, str]
    status: int | None
    axe: list[dict[str, Any]] | None  # axe-core's violations; None: axe-core is not installed


# axe-core's violations on the page as the reader sees it (theme applied, math typeset), with each
# offending element's selector and axe's summary of what fails there.
AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({
      target: n.target.join(" "),
      summary: (n.failureSummary || "").split("\\n").slice(1, 2).join("").trim(),
    })),
  }));
}"""


def run_axe(page: Page) -> list[dict[str, Any]]:
    """Inject the installed axe-core into ``page`` and run every rule it enables by default."""
    page.add_script_tag(path=str(AXE_JS))
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    return violations


def wait_for_mathjax(page: Page) -> bool:
    """Wait until MathJax has started and typeset the page; False if it never started."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
            timeout=MATHJAX_TIMEOUT_MS,
        )
    except PlaywrightTimeoutError:
        return False
    page.evaluate("() => MathJax.startup.promise.then(() => true)")
    return True


def visit(tab: Tab, rel: str, theme: str) -> PageReport:
    """Open ``rel`` in ``tab`` and record what a reader would meet there."""
    response = tab.goto(rel)
    page = tab.page
    math = page.evaluate(MATH_PROBE)
    started = None
    if math["elements"] or math["containers"] or math["raw"]:
        started = wait_for_mathjax(page)
        math = page.evaluate(MATH_PROBE)
    # MathJax's web fonts are fetched after typesetting: let them finish before moving on.
    page.evaluate("() => document.fonts.ready.then(() => true)")
    images = page.evaluate(IMAGE_PROBE)
    body = page.evaluate(THEME_PROBE)
    axe = run_axe(page) if AXE_JS.is_file() else None
    tab.settle()
    return PageReport(
        rel=rel,
        theme=theme,
        log=tab.log,
        math=math,
        mathjax_started=started,
        images=images,
        body=body,
        status=response.status if response else None,
        axe=axe,
    )


@pytest.fixture(scope="session")
def page_reports(
    site_browser: SiteBrowser, site_pages: list[str], stats: Counter[str]
) -> dict[tuple[str, str], PageReport]:
    """Every page of the site opened once in the light and once in the dark theme."""
    start = time.perf_counter()
    reports = {}
    for theme in THEMES:
        # One tab per theme walks through every page, as a reader browsing the site would.
        with site_browser.open(theme) as tab:
            for rel in site_pages:
                reports[rel, theme] = visit(tab, rel, theme)
    stats["pages checked (each in light and dark)"] = len(site_pages)
    stats["page loads"] += len(reports)
    stats["pages with math"] = sum(
        report.mathjax_started is not None
        for (_, theme), report in reports.items()
        if theme == "light"
    )
    stats["seconds spent loading pages"] = round(time.perf_counter() - start)
    return reports


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    counters = config.stash.get(STATS, None)
    shots = config.stash.get(SCREENSHOTS, None)
    if not counters and not shots:
        return
    terminalreporter.write_sep("-", "vecgrad site checks")
    for name, value in (counters or {}).items():
        terminalreporter.write_line(f"{name}: {value}")
    for path in shots or []:
        terminalreporter.write_line(f"screenshot: {path}")

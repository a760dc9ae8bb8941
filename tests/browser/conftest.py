"""The built site served on 127.0.0.1 and visited in Debian's Chromium through pytest-playwright.

Every request to another host is aborted and recorded, so a page that needs the network fails.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page
from vecgrad_site import CHROMIUM, served_prefix

OFFLINE = ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
OFFSITE = re.compile(r"^(?!http://127\.0\.0\.1[:/]|blob:|data:)")  # blob: and data: are the page's
AXE = Axe()  # axe-core, as axe-playwright-python ships it
# Math: Sphinx's .math elements, MathJax's output and errors, and TeX delimiters left in text a
# reader sees (not code, where a backslash-paren is Python). Images: every <img> made eager and
# decoded, furo's only-light / only-dark ones included whichever theme hides them.
PROBE = r"""async () => {
  const raw = [], skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement, at = node.nodeValue.search(/\\\(|\\\[/);
    if (el && !el.closest(skip) && el.checkVisibility() && at >= 0)
      raw.push(node.nodeValue.slice(Math.max(0, at - 20), at + 50).trim());
  }
  const text = (sel) => Array.from(document.querySelectorAll(sel), (m) => m.textContent.trim());
  const images = [];
  for (const img of Array.from(document.images)) {
    img.loading = "eager";
    await Promise.race([img.decode().catch(() => null), new Promise((r) => setTimeout(r, 1e4))]);
    images.push({src: img.currentSrc || img.src, alt: img.getAttribute("alt"), width:
      img.complete ? img.naturalWidth : 0, classes: Array.from(img.classList), shown:
      img.checkVisibility(), containerShown: !!img.parentElement?.checkVisibility()});
  }
  return {math: {elements: text(".math").length, untypeset: text(".math:not(:has(mjx-container))"),
                 containers: text("mjx-container").length, errors: text("mjx-merror"), raw},
          images, theme: document.body.dataset.theme,
          background: getComputedStyle(document.body).backgroundColor};
}"""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", *OFFLINE]
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": args}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def base_url(site_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The site served on 127.0.0.1, under the path its 404 page expects, as a host mounts it."""
    prefix, root = served_prefix(site_dir), site_dir
    if prefix != "/":
        root = tmp_path_factory.mktemp("webroot")
        (root / prefix.strip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / prefix.strip("/")).symlink_to(site_dir, target_is_directory=True)
    handler = functools.partial(QuietHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}"
        server.shutdown()


@dataclass
class PageLog:
    """What one page did on the network and the console."""

    requests: int = 0
    offsite: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions


def watch(context: BrowserContext, site_dir: Path, theme: str = "light") -> list[PageLog]:
    """Set furo's theme, block requests to other hosts, log what goes wrong in ``context``.

    Events go to the last log of the list returned: append one for each page.
    """
    logs, prefix = [PageLog()], served_prefix(site_dir)

    def on_failed(request: Any) -> None:
        # Leaving a page cancels a late request (the favicon): fine for a file of the site.
        path = urlsplit(request.url).path.removeprefix(prefix)
        late = request.failure == "net::ERR_ABORTED" and (site_dir / path).is_file()
        if request.url not in logs[-1].offsite and not late:
            logs[-1].failed.append(f"{request.url}: {request.failure}")

    def on_console(message: Any) -> None:
        if message.type == "error":
            where = f"{message.location['url']}:{message.location['lineNumber']}"
            logs[-1].errors.append(f"console error: {message.text} ({where})")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            logs[-1].failed.append(f"{response.url}: HTTP {response.status}")

    def block(route: Any) -> None:
        logs[-1].offsite.append(route.request.url)
        route.abort()

    # furo reads localStorage "theme" ("light", "dark" or "auto") into body[data-theme].
    theme_js = f"localStorage.setItem('theme', {json.dumps(theme)})"
    context.add_init_script(f"if (location.protocol === 'http:') {theme_js};")
    context.route(OFFSITE, block)
    context.on("request", lambda _: setattr(logs[-1], "requests", logs[-1].requests + 1))
    context.on("requestfailed", on_failed)
    context.on("console", on_console)
    context.on("weberror", lambda error: logs[-1].errors.append(f"uncaught: {error.error}"))
    context.on("response", on_response)
    return logs


def wait_for_mathjax(page: Page) -> bool:
    """Wait until MathJax has started and typeset the page; False if it never started."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function("() => window.MathJax?.startup?.promise", timeout=15_000)
    except PlaywrightTimeoutError:
        return False
    return bool(page.evaluate("() => MathJax.startup.promise.then(() => true)"))


@dataclass
class PageReport:
    log: PageLog
    status: int | None
    mathjax_started: bool | None  # None: no math on the page
    found: dict[str, Any]  # PROBE's answer: math, images, theme, background
    axe: list[dict[str, Any]]  # axe-core's violations


def visit(page: Page, logs: list[PageLog], rel: str) -> PageReport:
    """Open ``rel`` and record what a reader meets there; axe-core checks the page as shown."""
    logs.append(PageLog())
    response = page.goto(rel, wait_until="load")
    math = page.evaluate(PROBE)["math"]
    started = wait_for_mathjax(page) if any(math.values()) else None
    # MathJax's web fonts are fetched after typesetting: let them finish before moving on.
    page.evaluate("() => document.fonts.ready.then(() => true)")
    found, axe = page.evaluate(PROBE), AXE.run(page).response["violations"]
    return PageReport(logs[-1], response.status if response else None, started, found, axe)


@pytest.fixture(scope="session")
def page_reports(
    browser: Browser,
    browser_context_args: dict[str, Any],
    site_dir: Path,
    site_pages: list[str],
    stats: Counter[str],
) -> dict[tuple[str, str], PageReport]:
    """Every page of the site opened once in the light and once in the dark theme."""
    reports = {}
    for theme in ("light", "dark"):
        # One tab per theme walks through every page, as a reader browsing the site would.
        context = browser.new_context(**browser_context_args, color_scheme=theme)
        logs, page = watch(context, site_dir, theme), context.new_page()
        reports |= {(rel, theme): visit(page, logs, rel) for rel in site_pages}
        context.close()
    stats["pages checked (each in light and dark)"] = len(site_pages)
    stats["page loads"] = len(reports)
    stats["requests made"] = sum(report.log.requests for report in reports.values())
    math = [
        rel
        for (rel, theme), r in reports.items()
        if theme == "light" and r.mathjax_started is not None
    ]
    stats["pages with math"] = len(math)
    return reports

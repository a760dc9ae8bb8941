"""The not-found page renders with the site's styles, at /404.html and for a missing deep URL.

Static hosts (GitHub Pages, Read the Docs) answer a missing URL with the site's 404.html at that
URL, so its links must work from any depth; the second test plays the host's part.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import SiteBrowser, Tab

if TYPE_CHECKING:
    from playwright.sync_api import Route

pytestmark = pytest.mark.browser

STYLED = """() => ({
  sheets: Array.from(document.querySelectorAll('link[rel="stylesheet"]')).map((link) => ({
    href: link.href,
    rules: link.sheet ? link.sheet.cssRules.length : -1,
  })),
  layout: document.querySelector(".page")
    ? getComputedStyle(document.querySelector(".page")).display : null,
  heading: document.querySelector("h1") ? document.querySelector("h1").innerText : null,
})"""


def check_rendered(tab: Tab, where: str) -> dict[str, Any]:
    """The page in ``tab`` has its styles, furo's layout and a heading; no errors but its own."""
    state: dict[str, Any] = tab.page.evaluate(STYLED)
    problems = [f"stylesheet {s['href']} not applied" for s in state["sheets"] if s["rules"] <= 0]
    if not state["sheets"]:
        problems.append("no stylesheet")
    if state["layout"] != "flex":
        problems.append(f"furo's page layout is not applied (.page display {state['layout']})")
    if not state["heading"]:
        problems.append("no heading")
    document = tab.page.url
    # The not-found answer itself is expected: the browser logs it, as it should.
    problems += [
        error
        for error in tab.log.console_errors
        if not (error.endswith(f"({document}:0)") and "404" in error)
    ]
    problems += tab.log.offsite
    problems += [failure for failure in tab.log.failed if not failure.startswith(document + ":")]
    assert not problems, f"{where}:\n  " + "\n  ".join(problems)
    return state


def test_404_page_renders_at_its_own_address(site_browser: SiteBrowser) -> None:
    with site_browser.open() as tab:
        response = tab.goto("404.html")
        assert response is not None
        assert response.status == 200, f"404.html: HTTP {response.status}"
        check_rendered(tab, "404.html")


def test_404_page_renders_for_a_missing_deep_url(site_browser: SiteBrowser, site_dir: Path) -> None:
    body = (site_dir / "404.html").read_bytes()
    missing = "no/such/folder/page.html"

    def answer_like_a_static_host(route: Route) -> None:
        route.fulfill(status=404, body=body, content_type="text/html; charset=utf-8")

    with site_browser.open("dark") as tab:
        tab.page.route(site_browser.url(missing), answer_like_a_static_host)
        response = tab.goto(missing)
        assert response is not None
        assert response.status == 404, f"{missing}: HTTP {response.status}"
        check_rendered(tab, f"404.html served at {missing}")

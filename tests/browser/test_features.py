"""The site's own features in Chromium: the not-found page and screenshots (search: test_search).

Static hosts (GitHub Pages, Read the Docs) answer a missing URL with the site's 404.html at that
URL, so its links must work from any depth. The screenshots (light and dark, of the start page
and a gallery example) go to pytest's temporary folder, named in the counts printed at the end of
the run, for a person to look at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from PIL import Image, ImageStat
from playwright.sync_api import BrowserContext

from .conftest import wait_for_mathjax, watch

pytestmark = pytest.mark.browser

STYLED = """() => ({
  sheets: Array.from(document.querySelectorAll('link[rel="stylesheet"]'),
    (link) => ({href: link.href, rules: link.sheet ? link.sheet.cssRules.length : -1})),
  layout: getComputedStyle(document.querySelector(".page") || document.body).display,
  heading: document.querySelector("h1")?.innerText,
})"""


@pytest.mark.parametrize(
    ("url", "status", "theme"),
    [("404.html", 200, "light"), ("no/such/folder/page.html", 404, "dark")],
    ids=["at-its-own-address", "for-a-missing-deep-url"],
)
def test_404_page_renders(
    context: BrowserContext, site_dir: Path, base_url: str, url: str, status: int, theme: str
) -> None:
    """Styles, furo's layout and a heading, at any depth; no error but the not-found itself."""
    log, page, body = watch(context, site_dir, theme)[-1], context.new_page(), b""
    if status == 404:  # a static host answers a missing URL with the site's 404.html
        body = (site_dir / "404.html").read_bytes()
        page.route(
            base_url + url,
            lambda route: route.fulfill(
                status=404, body=body, content_type="text/html; charset=utf-8"
            ),
        )
    response = page.goto(url)
    assert response is not None
    assert response.status == status, f"{url}: HTTP {response.status}"
    state = page.evaluate(STYLED)
    problems = [f"stylesheet {s['href']} not applied" for s in state["sheets"] if s["rules"] <= 0]
    problems += [] if state["sheets"] else ["no stylesheet"]
    problems += [] if state["layout"] == "flex" else [f"no furo layout: {state['layout']}"]
    problems += [] if state["heading"] else ["no heading"]
    # The not-found answer itself is expected: the browser logs it, as it should.
    problems += [e for e in log.errors if not (e.endswith(f"({page.url}:0)") and "404" in e)]
    problems += log.offsite + [f for f in log.failed if not f.startswith(page.url + ":")]
    assert not problems, f"{page.url}:\n  " + "\n  ".join(problems)


def test_screenshots_light_and_dark(
    new_context: Callable[..., BrowserContext],
    site_dir: Path,
    parsed_pages: dict[str, BeautifulSoup],
    tmp_path_factory: pytest.TempPathFactory,
    stats: Counter[str],
) -> None:
    """Dark screenshots are darker than light ones, as a look at them would tell."""
    example = next(
        rel
        for rel, page in parsed_pages.items()
        if rel.startswith("gallery/")
        and page.select("img.only-light")
        and page.select("a.download")
    )
    folder, problems = tmp_path_factory.mktemp("screenshots"), []
    for rel in ("index.html", example):
        levels = {}
        for theme in ("light", "dark"):
            path = folder / f"{rel.removesuffix('.html').replace('/', '_')}-{theme}.png"
            context = new_context(color_scheme=theme)
            log, page = watch(context, site_dir, theme)[-1], context.new_page()
            page.goto(rel)
            if page.evaluate("() => document.querySelector('.math') !== null"):
                assert wait_for_mathjax(page), f"{rel}: MathJax did not start"
            page.evaluate("() => document.fonts.ready.then(() => true)")
            page.screenshot(path=str(path), full_page=True)
            problems += [f"{rel} [{theme}]: {p}" for p in log.errors + log.failed]
            with Image.open(path) as image:
                levels[theme] = ImageStat.Stat(image.convert("L")).mean[0]
        if not levels["dark"] < levels["light"] - 60:
            problems.append(
                f"{rel}: mean brightness light {levels['light']:.0f}, dark {levels['dark']:.0f}"
            )
    stats[f"screenshots (in {folder})"] = len(list(folder.glob("*.png")))
    assert not problems, "\n".join(problems)

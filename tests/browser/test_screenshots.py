"""Light and dark screenshots of the start page and a gallery example, for a person to look at.

The files go to pytest's temporary folder; their paths are printed at the end of the run. The test
also checks what a look would: the dark shots are darker than the light ones.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest

from .conftest import SCREENSHOTS, ParsedPage, SiteBrowser, wait_for_mathjax

pytestmark = pytest.mark.browser


def gallery_example(parsed_pages: dict[str, ParsedPage]) -> str:
    """The first gallery example page (it offers a script) that shows a figure."""
    for rel, page in parsed_pages.items():
        figures = [url for tag, url in page.refs if tag == "img" and "_images/" in url]
        scripts = [href for href in page.downloads if href.endswith(".py")]
        if rel.startswith("gallery/") and figures and scripts:
            return rel
    pytest.fail("no gallery example page with a figure")


def brightness(path: Path) -> float:
    from PIL import Image, ImageStat  # pillow comes with the docs dependencies

    with Image.open(path) as image:
        return float(ImageStat.Stat(image.convert("L")).mean[0])


def test_screenshots_light_and_dark(
    site_browser: SiteBrowser,
    parsed_pages: dict[str, ParsedPage],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    folder = tmp_path_factory.mktemp("screenshots")
    shots = request.config.stash.setdefault(SCREENSHOTS, [])
    problems = []
    for rel in ("index.html", gallery_example(parsed_pages)):
        levels = {}
        for theme in ("light", "dark"):
            path = folder / f"{posixpath.splitext(rel)[0].replace('/', '_')}-{theme}.png"
            with site_browser.open(theme) as tab:
                tab.goto(rel)
                if tab.page.evaluate("() => document.querySelector('.math') !== null"):
                    assert wait_for_mathjax(tab.page), f"{rel}: MathJax did not start"
                tab.page.evaluate("() => document.fonts.ready.then(() => true)")
                tab.page.screenshot(path=str(path), full_page=True)
            problems += [f"{rel} [{theme}]: {p}" for p in tab.log.console_errors + tab.log.failed]
            shots.append(str(path))
            print(f"screenshot: {path}")
            levels[theme] = brightness(path)
        if not levels["dark"] < levels["light"] - 60:
            problems.append(
                f"{rel}: mean brightness light {levels['light']:.0f}, dark {levels['dark']:.0f}"
            )
    assert not problems, "\n".join(problems)

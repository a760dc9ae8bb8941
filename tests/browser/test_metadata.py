"""What hosts, search engines and link previews read: sitemap, titles, descriptions, Open Graph.

A page "from a document" is one with a source in ``docs/`` (hand-written, or written there by
autosummary and sphinx-gallery during the build); pages Sphinx makes by itself (genindex, search,
404, highlighted module source) have no description to give.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest

from .conftest import REPO_ROOT, ParsedPage

pytestmark = pytest.mark.browser

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
SOURCE_SUFFIXES = (".rst", ".md", ".ipynb")


def from_document(rel: str) -> bool:
    stem = REPO_ROOT / "docs" / rel.removesuffix(".html")
    return any(stem.with_name(stem.name + suffix).is_file() for suffix in SOURCE_SUFFIXES)


def noindex(page: ParsedPage) -> bool:
    return "noindex" in page.meta.get("robots", "")


@pytest.fixture(scope="module")
def base_url(parsed_pages: dict[str, ParsedPage]) -> str:
    """The hosted site's address, from the start page's canonical link."""
    canonical = parsed_pages["index.html"].canonical
    assert canonical.endswith("/index.html"), (
        f"index.html has canonical link {canonical!r}: is html_baseurl set?"
    )
    return canonical.removesuffix("index.html")


def test_every_page_has_a_title(parsed_pages: dict[str, ParsedPage]) -> None:
    problems = [
        f"{rel}: title {page.title!r}"
        for rel, page in parsed_pages.items()
        if not page.title or "<no title>" in page.title
    ]
    assert not problems, "\n".join(problems)


def test_document_pages_have_one_title_heading(parsed_pages: dict[str, ParsedPage]) -> None:
    """One <h1> per page: furo's navigation lists further top-level headings as sibling pages."""
    problems = [
        f"{rel}: {page.h1} <h1> headings"
        for rel, page in parsed_pages.items()
        if from_document(rel) and page.h1 != 1
    ]
    assert not problems, "\n".join(problems)


def test_document_pages_have_description_and_open_graph(
    parsed_pages: dict[str, ParsedPage], base_url: str, stats: Counter[str]
) -> None:
    documents = {
        rel: page for rel, page in parsed_pages.items() if from_document(rel) and not noindex(page)
    }
    problems = []
    for rel, page in documents.items():
        for key in ("description", "og:title", "og:description", "og:url"):
            if not page.meta.get(key, "").strip():
                problems.append(f"{rel}: no <meta> {key}")
        if page.meta.get("og:url", base_url + rel) != base_url + rel:
            problems.append(f"{rel}: og:url {page.meta['og:url']!r}, expected {base_url + rel!r}")
    stats["pages with description and og tags checked"] = len(documents)
    assert len(documents) > 1, f"found no documents among {sorted(parsed_pages)}"
    assert not problems, f"{len(problems)} missing tags:\n  " + "\n  ".join(problems)


def test_sitemap_lists_the_pages(
    site_dir: Path, parsed_pages: dict[str, ParsedPage], base_url: str
) -> None:
    sitemap = site_dir / "sitemap.xml"
    assert sitemap.is_file(), "no sitemap.xml in the build"
    locations = [loc.text or "" for loc in ElementTree.parse(sitemap).iter(f"{SITEMAP_NS}loc")]
    problems = [f"listed twice: {loc}" for loc, n in Counter(locations).items() if n > 1]
    listed = set()
    for loc in locations:
        if not loc.startswith(base_url):
            problems.append(f"{loc} is not under the site's address {base_url}")
            continue
        rel = loc.removeprefix(base_url)
        listed.add(rel)
        if rel not in parsed_pages:
            problems.append(f"{loc} is listed but no such page was built")
        elif rel == "404.html" or noindex(parsed_pages[rel]):
            problems.append(f"{loc} is listed but is a not-found or noindex page")
    problems += [
        f"{rel} is missing from the sitemap"
        for rel, page in parsed_pages.items()
        if from_document(rel) and not noindex(page) and rel not in listed
    ]
    assert not problems, f"{len(problems)} sitemap problems:\n  " + "\n  ".join(problems)

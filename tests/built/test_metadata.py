"""What hosts, search engines and link previews read: sitemap, titles, descriptions, Open Graph.

A page "from a document" has a source in ``docs/`` (hand-written, or written there by autosummary
and sphinx-gallery during the build); pages Sphinx makes by itself (genindex, search, 404,
highlighted module source) have no description to give.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest
from bs4 import BeautifulSoup
from vecgrad_site import ROOT, no_problems

Pages = dict[str, BeautifulSoup]


def from_document(rel: str) -> bool:
    stem = ROOT / "docs" / rel.removesuffix(".html")
    return any(stem.with_name(stem.name + suffix).is_file() for suffix in (".rst", ".md", ".ipynb"))


def meta(page: BeautifulSoup, key: str) -> str:
    tag = page.find("meta", attrs={"name": key}) or page.find("meta", attrs={"property": key})
    return str(tag.get("content", "")) if tag else ""


def indexed(pages: Pages, documents: bool = True) -> Pages:
    """Pages (from a document, unless ``documents`` is false) without robots noindex."""
    return {
        rel: page
        for rel, page in pages.items()
        if (from_document(rel) or not documents) and "noindex" not in meta(page, "robots")
    }


@pytest.fixture(scope="module")
def base_url(parsed_pages: Pages) -> str:
    """The hosted site's address, from the start page's canonical link."""
    link = parsed_pages["index.html"].find("link", rel="canonical")
    canonical = str(link.get("href", "")) if link else ""
    assert canonical.endswith("/index.html"), f"index.html: canonical {canonical!r}: html_baseurl?"
    return canonical.removesuffix("index.html")


def test_every_page_has_a_title_and_each_document_one_h1(parsed_pages: Pages) -> None:
    """One <h1> per page: furo's navigation lists further top-level headings as sibling pages."""
    titles = {
        rel: " ".join(p.title.get_text().split()) if p.title else ""
        for rel, p in parsed_pages.items()
    }
    problems = [f"{rel}: title {t!r}" for rel, t in titles.items() if not t or "<no title>" in t]
    problems += [
        f"{rel}: {len(page.find_all('h1'))} <h1> headings"
        for rel, page in parsed_pages.items()
        if from_document(rel) and len(page.find_all("h1")) != 1
    ]
    no_problems(problems, "pages without a title or without exactly one <h1>")


def test_document_pages_have_description_and_open_graph(
    parsed_pages: Pages, base_url: str, stats: Counter[str]
) -> None:
    documents = indexed(parsed_pages)
    problems = [
        f"{rel}: no <meta> {key}"
        for rel, page in documents.items()
        for key in ("description", "og:title", "og:description", "og:url")
        if not meta(page, key).strip()
    ]
    problems += [
        f"{rel}: og:url {meta(page, 'og:url')!r}, expected {base_url + rel!r}"
        for rel, page in documents.items()
        if meta(page, "og:url") not in ("", base_url + rel)
    ]
    stats["pages with description and og tags checked"] = len(documents)
    assert len(documents) > 1, f"found no documents among {sorted(parsed_pages)}"
    no_problems(problems, "missing tags")


def test_sitemap_lists_the_pages(site_dir: Path, parsed_pages: Pages, base_url: str) -> None:
    """Every indexable document is listed once; nothing else but other indexable pages."""
    tree = ElementTree.parse(site_dir / "sitemap.xml")
    locations = [
        loc.text or "" for loc in tree.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")
    ]
    listed = {loc.removeprefix(base_url) for loc in locations}
    allowed = set(indexed(parsed_pages, documents=False)) - {"404.html"}
    problems = [f"listed twice: {loc}" for loc, n in Counter(locations).items() if n > 1]
    problems += [
        f"{loc} is not under {base_url}" for loc in locations if not loc.startswith(base_url)
    ]
    problems += [f"{rel}: listed, not an indexable page" for rel in sorted(listed - allowed)]
    problems += [f"{rel} is missing" for rel in sorted(set(indexed(parsed_pages)) - listed)]
    no_problems(problems, "sitemap problems")

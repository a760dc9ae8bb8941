"""Every internal link and anchor of the built HTML resolves (a static crawl, no browser).

For each ``<a href>``, ``<img src>``, ``<link href>``, ``<script src>`` and ``<source src>`` of
every page that points inside the site, the target file exists, and a ``#fragment`` into an HTML
page names an element ``id`` (or an ``<a name>``) of that page.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from .conftest import ParsedPage, parse_page, served_prefix

pytestmark = pytest.mark.browser


def resolve(page: str, url: str, prefix: str) -> tuple[str | None, str]:
    """The site path and fragment ``url`` on ``page`` points to; None for another site."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None, ""
    path = unquote(parts.path)
    if not path:
        target = page
    elif path.startswith("/"):
        # Absolute paths (the 404 page's) are relative to where the site is mounted.
        if not path.startswith(prefix):
            return f"(outside the site) {path}", ""
        target = posixpath.normpath(path[len(prefix) :] or ".")
    else:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
    if target == "." or path.endswith("/"):
        target = posixpath.join(target, "index.html") if target != "." else "index.html"
    if target.startswith("../"):
        return f"(outside the site) {target}", ""
    return target, unquote(parts.fragment)


def test_internal_links_and_anchors_resolve(
    site_dir: Path, parsed_pages: dict[str, ParsedPage], stats: Counter[str]
) -> None:
    prefix = served_prefix(site_dir)
    pages = dict(parsed_pages)
    problems = []
    counts: Counter[str] = Counter()
    for rel, page in parsed_pages.items():
        for tag, url in page.refs:
            counts["references"] += 1
            target, fragment = resolve(rel, url, prefix)
            if target is None:
                counts["to other sites"] += 1
                continue
            counts["internal"] += 1
            if target.startswith("(outside") or not (site_dir / target).is_file():
                problems.append(f"{rel}: <{tag}> {url} -> missing {target}")
                continue
            if not fragment or not target.endswith(".html"):
                continue
            counts["anchors"] += 1
            if target not in pages:
                pages[target] = parse_page(site_dir / target)
            if fragment not in pages[target].ids:
                problems.append(f"{rel}: <{tag}> {url} -> no id {fragment!r} in {target}")
    stats["links crawled (all)"] = counts["references"]
    stats["links crawled (internal)"] = counts["internal"]
    stats["anchors checked"] = counts["anchors"]
    assert counts["internal"] > len(parsed_pages), f"too few internal links found: {counts}"
    assert not problems, f"{len(problems)} broken internal links:\n  " + "\n  ".join(problems)


def test_no_page_fetches_from_another_site(parsed_pages: dict[str, ParsedPage]) -> None:
    """Scripts, styles, icons and images all come from the site (it works offline)."""
    problems = []
    for rel, page in parsed_pages.items():
        for tag, url in page.refs:
            if tag == "a" or not (urlsplit(url).scheme or urlsplit(url).netloc):
                continue
            if tag == "link" and url not in page.fetched_links:
                continue
            problems.append(f"{rel}: <{tag}> {url}")
    assert not problems, f"{len(problems)} resources from other hosts:\n  " + "\n  ".join(problems)

"""Every internal link and anchor of the built HTML resolves, and no page loads from another site.

For each ``<a href>``, ``<img src>``, ``<link href>``, ``<script src>`` and ``<source src>`` of
every page that points inside the site, the target file exists, and a ``#fragment`` into an HTML
page names an element ``id`` (or an ``<a name>``) of that page.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bs4 import BeautifulSoup
from vecgrad_site import no_problems, parse, resolve, served_prefix

LINKING = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src"}
# <link rel=...> values that make the browser fetch the URL (canonical, next, prev... do not).
FETCHED_RELS = {"stylesheet", "icon", "preload", "modulepreload", "manifest"}


def refs(page: BeautifulSoup) -> list[tuple[str, str, list[str]]]:
    """(tag, URL, rel) of every reference of the page, in document order."""
    return [
        (tag.name, tag[LINKING[tag.name]], tag.get("rel") or [])
        for tag in page.find_all(LINKING)
        if tag.has_attr(LINKING[tag.name])
    ]


def anchors(page: BeautifulSoup) -> set[str]:
    return {tag["id"] for tag in page.find_all(id=True)} | {
        tag["name"] for tag in page.find_all("a", attrs={"name": True})
    }


def test_internal_links_and_anchors_resolve(
    site_dir: Path, parsed_pages: dict[str, BeautifulSoup], stats: Counter[str]
) -> None:
    prefix = served_prefix(site_dir)
    ids = {rel: anchors(page) for rel, page in parsed_pages.items()}
    problems = []
    counts: Counter[str] = Counter()
    for rel, page in parsed_pages.items():
        for tag, url, _ in refs(page):
            counts["references"] += 1
            target, fragment = resolve(rel, url, prefix)
            if target is None:
                continue
            counts["internal"] += 1
            if target.startswith("(outside") or not (site_dir / target).is_file():
                problems.append(f"{rel}: <{tag}> {url} -> missing {target}")
            elif fragment and target.endswith(".html"):
                counts["anchors"] += 1
                if target not in ids:
                    ids[target] = anchors(parse(site_dir / target))
                if fragment not in ids[target]:
                    problems.append(f"{rel}: <{tag}> {url} -> no id {fragment!r} in {target}")
    stats["links crawled (all)"] = counts["references"]
    stats["links crawled (internal)"] = counts["internal"]
    stats["anchors checked"] = counts["anchors"]
    assert counts["internal"] > len(parsed_pages), f"too few internal links found: {counts}"
    no_problems(problems, "broken internal links")


def test_no_page_fetches_from_another_site(parsed_pages: dict[str, BeautifulSoup]) -> None:
    """Scripts, styles, icons and images all come from the site (it works offline)."""
    problems = [
        f"{rel}: <{tag}> {url}"
        for rel, page in parsed_pages.items()
        for tag, url, rels in refs(page)
        if tag != "a"
        and (tag != "link" or FETCHED_RELS & set(rels))
        and resolve(rel, url)[0] is None
    ]
    no_problems(problems, "resources from other hosts")

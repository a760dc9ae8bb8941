"""The site's own search page (Sphinx's search index, no server) finds API and gallery pages."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .conftest import SiteBrowser

pytestmark = pytest.mark.browser

FINISHED = """() => {
  const summary = document.querySelector("#search-results .search-summary");
  return summary !== null && summary.textContent.trim().length > 0;
}"""


def search(site_browser: SiteBrowser, query: str) -> tuple[list[str], str]:
    """Run ``search.html?q=query``; the result pages (site paths) and the summary line."""
    with site_browser.open() as tab:
        tab.goto(f"search.html?q={quote(query)}")
        # Sphinx fills the summary once the last result has been listed.
        tab.page.wait_for_function(FINISHED, timeout=20_000)
        hrefs = tab.page.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map((a) => a.href)"
        )
        summary = tab.page.inner_text("#search-results .search-summary")
    problems = tab.log.console_errors + tab.log.failed + tab.log.offsite
    assert not problems, f"search page for {query!r}: {problems}"
    return [site_browser.rel(href) for href in hrefs], summary


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("jacobian", "api/generated/vecgrad.jacobian.html"),
        ("per_sample_grads", "api/generated/vecgrad.per_sample_grads.html"),
    ],
)
def test_search_finds_the_api_page(site_browser: SiteBrowser, query: str, expected: str) -> None:
    results, summary = search(site_browser, query)
    assert expected in results, f"search for {query!r} ({summary}) listed {results}"


def test_search_for_a_topic_finds_an_example(site_browser: SiteBrowser) -> None:
    results, summary = search(site_browser, "Hessian")
    examples = [
        rel
        for rel in results
        if rel.startswith("gallery/")
        and not rel.endswith(("/index.html", "sg_execution_times.html"))
    ]
    assert examples, f"search for 'Hessian' ({summary}) found no gallery example: {results}"

"""axe-core on every page of the built site, once in the light and once in the dark theme.

axe-core (the npm package, installed by ``nox -s tests``) is injected into each page after its math
is typeset, so it checks what a reader gets: contrast in both themes, image alternatives, heading
order, names of controls. No violation of impact "serious" or "critical" is allowed; each
"moderate" one that remains is listed in ``MODERATE`` with the reason it stays.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from .conftest import AXE_JS, REQUIRED, PageReport

pytestmark = pytest.mark.browser

Reports = dict[tuple[str, str], PageReport]
Violation = dict[str, Any]

# axe rule id -> why its "moderate" violations stay.
MODERATE: dict[str, str] = {
    "landmark-unique": (
        "furo's page template has two <aside> landmarks, the site navigation drawer and the page "
        "contents drawer, with no aria-label: naming them means overriding furo's whole page.html "
        "template, and a reader tells them apart by their content (navigation, 'On this page')"
    ),
    "page-has-heading-one": (
        "search.html is Sphinx's search page as furo renders it: its title is the <title> and the "
        "search box, with no <h1>; every content page has exactly one <h1> (test_metadata)"
    ),
}


@pytest.fixture(scope="session")
def axe_results(
    page_reports: Reports, stats: Counter[str]
) -> dict[tuple[str, str], list[Violation]]:
    """axe-core's violations of every page in each theme (the page visits run it)."""
    if not AXE_JS.is_file():
        reason = f"axe-core is not installed at {AXE_JS} (`nox -s tests` installs it with npm)"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    results = {key: report.axe or [] for key, report in page_reports.items()}
    for violations in results.values():
        for violation in violations:
            stats[f"axe violations ({violation['impact']}), elements"] += len(violation["nodes"])
    stats["axe runs (pages x themes)"] = len(results)
    return results


def listing(results: dict[tuple[str, str], list[Violation]], impacts: set[str]) -> list[str]:
    """One line per offending element: page, theme, rule, the element and what fails."""
    return [
        f"{rel} [{theme}] {v['impact']} {v['id']} ({v['help']}): {node['target']}: "
        f"{node['summary']}"
        for (rel, theme), violations in results.items()
        for v in violations
        if v["impact"] in impacts
        for node in v["nodes"]
    ]


def test_axe_ran_on_every_page(page_reports: Reports, axe_results: dict[Any, Any]) -> None:
    assert set(axe_results) == set(page_reports)
    assert all(report.axe is not None for report in page_reports.values())


def test_no_serious_or_critical_violations(axe_results: dict[Any, list[Violation]]) -> None:
    problems = listing(axe_results, {"serious", "critical"})
    assert not problems, f"{len(problems)} serious or critical:\n  " + "\n  ".join(problems)


def test_moderate_violations_are_justified(axe_results: dict[Any, list[Violation]]) -> None:
    problems = [
        line
        for line in listing(axe_results, {"moderate"})
        if line.split("] moderate ", 1)[1].split(" ", 1)[0] not in MODERATE
    ]
    assert not problems, f"{len(problems)} moderate, not in MODERATE:\n  " + "\n  ".join(problems)


def test_every_justified_moderate_rule_still_occurs(
    axe_results: dict[Any, list[Violation]],
) -> None:
    seen = {v["id"] for violations in axe_results.values() for v in violations}
    stale = sorted(set(MODERATE) - seen)
    assert not stale, f"no longer violated, remove from MODERATE: {stale}"


def test_gallery_figures_say_what_they_show(page_reports: Reports) -> None:
    """axe accepts any alt text: a gallery figure's must describe it (title, axes), not number."""
    figures = [
        (rel, image["alt"] or "")
        for (rel, theme), report in page_reports.items()
        if theme == "light"
        for image in report.images
        if "sphx-glr-single-img" in image["classes"]
    ]
    assert figures, "no gallery figure on any page"
    problems = [
        f"{rel}: {alt!r}"
        for rel, alt in figures
        if len(alt.split()) < 3 or re.fullmatch(r"(figure|image)\b.*\d+.*", alt, re.IGNORECASE)
    ]
    assert not problems, f"{len(problems)} figures without a description:\n  " + "\n  ".join(
        problems
    )

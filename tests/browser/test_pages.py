"""Every page of the built site in Chromium, once in the light and once in the dark theme.

A reader offline gets every page without console errors or failed requests, with no request to any
other host, its math typeset by the site's own MathJax, every image loaded, and the theme applied
to the page and its figures. axe-core checks each page as it is shown (contrast in both themes,
image alternatives, heading order, names of controls): no violation of impact "serious" or
"critical"; each "moderate" one that remains is in ``MODERATE`` with the reason it stays.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

import pytest
from vecgrad_site import no_problems

from .conftest import PageReport

pytestmark = pytest.mark.browser
Reports = dict[tuple[str, str], PageReport]

# axe rule id -> why its "moderate" violations stay.
MODERATE = {
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


def per_visit(reports: Reports, found: Callable[[PageReport], Iterable[object]]) -> list[str]:
    """``page [theme]: item`` for every item ``found`` lists in each visit's report."""
    return [f"{rel} [{theme}]: {item}" for (rel, theme), r in reports.items() for item in found(r)]


def test_no_console_errors(page_reports: Reports) -> None:
    no_problems(per_visit(page_reports, lambda r: r.log.errors), "console errors")


def test_no_failed_requests(page_reports: Reports) -> None:
    status = per_visit(page_reports, lambda r: [] if r.status == 200 else [f"HTTP {r.status}"])
    no_problems(per_visit(page_reports, lambda r: r.log.failed) + status, "failed requests")


def test_no_request_leaves_the_site(page_reports: Reports) -> None:
    offsite = per_visit(page_reports, lambda r: r.log.offsite)
    no_problems(offsite, "requests to other hosts (CDN, fonts, analytics?) were blocked")
    assert all(report.log.requests > 0 for report in page_reports.values())


def test_math_is_typeset(page_reports: Reports) -> None:
    def problems(r: PageReport) -> list[str]:
        math = r.found["math"]
        started = [] if r.mathjax_started else ["has math but MathJax never started"]
        output = [] if math["containers"] else ["has math but no MathJax output (mjx-container)"]
        return [*started, *output, *(f"math left as TeX: {t[:60]!r}" for t in math["untypeset"])]

    with_math = {key: r for key, r in page_reports.items() if r.mathjax_started is not None}
    no_problems(per_visit(with_math, problems), "math problems")
    no_problems(per_visit(page_reports, lambda r: r.found["math"]["raw"]), "raw TeX delimiters")
    no_problems(per_visit(page_reports, lambda r: r.found["math"]["errors"]), "MathJax errors")
    # A site about Jacobians has math; finding none means the probe is broken, not the site fine.
    assert with_math, "no page of the site has math (.math elements or TeX delimiters)"


def test_images_load(page_reports: Reports, stats: Counter[str]) -> None:
    images = [(key, image) for key, r in page_reports.items() for image in r.found["images"]]
    stats["images checked (both themes)"] = len(images)
    broken = [f"{rel} [{theme}]: {i['src']}" for (rel, theme), i in images if i["width"] <= 0]
    no_problems(broken, "images did not load")
    assert images, "no image on any page: the gallery's figures are missing"


def luminance(css_color: str) -> float:
    red, green, blue = (int(value) for value in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def test_theme_switches_page_and_figures(page_reports: Reports, stats: Counter[str]) -> None:
    """furo shows only-light images in the light theme and only-dark ones in the dark theme."""
    problems, figures = [], Counter[str]()
    for (rel, theme), report in page_reports.items():
        where, found = f"{rel} [{theme}]", report.found
        if found["theme"] != theme or (luminance(found["background"]) < 0.5) != (theme == "dark"):
            problems.append(
                f"{where}: data-theme {found['theme']}, background {found['background']}"
            )
        counts = Counter[str]()
        for image in found["images"]:
            for variant in [v for v in ("light", "dark") if f"only-{v}" in image["classes"]]:
                counts[variant] += 1
                # An image inside a collapsed block is hidden in both themes: nothing to compare.
                if image["containerShown"] and image["shown"] != (variant == theme):
                    problems.append(
                        f"{where}: only-{variant} {image['src']} shown {image['shown']}"
                    )
        if rel.startswith("gallery/"):
            if counts["light"] != counts["dark"]:
                problems.append(
                    f"{where}: {counts['light']} only-light, {counts['dark']} only-dark"
                )
            figures += counts if theme == "light" else Counter()
    stats["gallery figures (light + dark copies)"] = figures.total()
    no_problems(problems, "theme problems")
    assert {"light", "dark"} <= figures.keys(), f"gallery only-light/only-dark figures: {figures}"


def test_accessibility(page_reports: Reports, stats: Counter[str]) -> None:
    """axe-core: nothing serious or critical; every moderate rule left is justified in MODERATE."""
    stats["axe runs (pages x themes)"] = len(page_reports)
    found = [
        (v["impact"], v["id"], f"{rel} [{theme}] {v['id']} ({v['help']}): {node['target']}")
        for (rel, theme), r in page_reports.items()
        for v in r.axe
        for node in v["nodes"]
    ]
    stats.update(f"axe violations ({impact}), elements" for impact, _, _ in found)
    no_problems([line for impact, _, line in found if impact in ("serious", "critical")], "serious")
    moderate = [
        line for impact, rule, line in found if impact == "moderate" and rule not in MODERATE
    ]
    no_problems(moderate, "moderate violations not in MODERATE")
    stale = set(MODERATE) - {rule for _, rule, _ in found}
    assert not stale, f"no longer violated, remove from MODERATE: {sorted(stale)}"


def test_gallery_figures_say_what_they_show(page_reports: Reports) -> None:
    """axe accepts any alt text: a gallery figure's must describe it (title, axes), not number."""
    alts = [
        (rel, image["alt"] or "")
        for (rel, theme), r in page_reports.items()
        if theme == "light"
        for image in r.found["images"]
        if "sphx-glr-single-img" in image["classes"]
    ]
    assert alts, "no gallery figure on any page"
    numbered = re.compile(r"(figure|image)\b.*\d+.*", re.IGNORECASE)
    bad = [
        f"{rel}: {alt!r}" for rel, alt in alts if len(alt.split()) < 3 or numbered.fullmatch(alt)
    ]
    no_problems(bad, "figures without a description")

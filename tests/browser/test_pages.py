"""Every page of the built site in Chromium, once in the light and once in the dark theme.

A reader offline gets every page without console errors or failed requests, with no request to any
other host, with its math typeset by the site's own MathJax, and with every image loaded. The visits
are made once (the ``page_reports`` fixture) and each test reads its part of them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

import pytest

from .conftest import PageReport

pytestmark = pytest.mark.browser

Reports = dict[tuple[str, str], PageReport]


def _listing(problems: list[str]) -> str:
    return "\n  " + "\n  ".join(problems)


def _per_visit(page_reports: Reports, found: Callable[[PageReport], Iterable[object]]) -> list[str]:
    """``page [theme]: item`` for every item ``found`` lists in each visit's report."""
    return [
        f"{rel} [{theme}]: {item}"
        for (rel, theme), report in page_reports.items()
        for item in found(report)
    ]


def test_no_console_errors(page_reports: Reports) -> None:
    problems = _per_visit(page_reports, lambda report: report.log.console_errors)
    assert not problems, f"{len(problems)} console errors:{_listing(problems)}"


def test_no_failed_requests(page_reports: Reports) -> None:
    problems = _per_visit(page_reports, lambda report: report.log.failed)
    problems += _per_visit(
        page_reports,
        lambda report: (
            [] if report.status == 200 else [f"the page itself answered {report.status}"]
        ),
    )
    assert not problems, f"{len(problems)} failed requests:{_listing(problems)}"


def test_no_request_leaves_the_site(page_reports: Reports) -> None:
    problems = _per_visit(page_reports, lambda report: report.log.offsite)
    assert not problems, (
        f"{len(problems)} requests to other hosts (CDN, fonts, analytics?) were blocked:"
        f"{_listing(problems)}"
    )
    assert all(report.log.requests > 0 for report in page_reports.values())


def test_math_is_typeset(page_reports: Reports) -> None:
    problems = []
    math_pages = set()
    for (rel, theme), report in page_reports.items():
        if report.mathjax_started is None:
            continue
        math_pages.add(rel)
        where = f"{rel} [{theme}]"
        math = report.math
        if not report.mathjax_started:
            problems.append(f"{where}: has math but MathJax never started")
        if not math["containers"]:
            problems.append(f"{where}: has math but no MathJax output (mjx-container)")
        problems += [f"{where}: math left as TeX: {tex!r}" for tex in math["untypeset"]]
        problems += [f"{where}: raw TeX delimiter in the text: {text!r}" for text in math["raw"]]
        problems += [f"{where}: MathJax error: {error!r}" for error in math["errors"]]
    assert not problems, f"{len(problems)} math problems:{_listing(problems)}"
    # A site about Jacobians has math; finding none means the probe is broken, not the site fine.
    assert math_pages, "no page of the site has math (.math elements or TeX delimiters)"


def test_images_load(page_reports: Reports, stats: Counter[str]) -> None:
    problems = []
    checked = 0
    for (rel, theme), report in page_reports.items():
        for image in report.images:
            checked += 1
            if image["width"] <= 0:
                state = "shown" if image["shown"] else "hidden in this theme, loaded on its own"
                problems.append(f"{rel} [{theme}]: {image['src']} did not load ({state})")
    stats["images checked (both themes)"] = checked
    assert not problems, f"{len(problems)} images did not load:{_listing(problems)}"
    assert checked, "no image on any page: the gallery's figures are missing"


def _luminance(css_color: str) -> float:
    red, green, blue = (int(value) for value in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def test_theme_switches_page_and_figures(page_reports: Reports, stats: Counter[str]) -> None:
    """furo shows only-light images in the light theme and only-dark ones in the dark theme."""
    problems = []
    themed: Counter[str] = Counter()
    for (rel, theme), report in page_reports.items():
        where = f"{rel} [{theme}]"
        if report.body["theme"] != theme:
            problems.append(f"{where}: body[data-theme] is {report.body['theme']!r}")
        luminance = _luminance(report.body["background"])
        if (luminance < 0.5) != (theme == "dark"):
            problems.append(f"{where}: page background {report.body['background']} in {theme}")
        counts: Counter[str] = Counter()
        for image in report.images:
            for variant in ("light", "dark"):
                if f"only-{variant}" not in image["classes"]:
                    continue
                counts[variant] += 1
                # An image inside a collapsed block is hidden in both themes: nothing to compare.
                if image["containerShown"] and image["shown"] != (variant == theme):
                    state = "shown" if image["shown"] else "hidden"
                    problems.append(f"{where}: only-{variant} image {image['src']} is {state}")
        if rel.startswith("gallery/") and counts["light"] != counts["dark"]:
            problems.append(
                f"{where}: {counts['light']} only-light figures but {counts['dark']} only-dark"
            )
        if rel.startswith("gallery/") and theme == "light":
            themed.update(counts)
    stats["gallery figures (light + dark copies)"] = themed["light"] + themed["dark"]
    assert not problems, f"{len(problems)} theme problems:{_listing(problems)}"
    assert themed["light"] > 0, "the gallery has no only-light figure"
    assert themed["dark"] > 0, "the gallery has no only-dark figure"

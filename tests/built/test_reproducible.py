"""Two cold builds of the same commit give the same site, but for an explicit allow-list.

The test makes one cold build (every example and notebook executed) of a copy of the checkout in a
temporary folder, and compares it with the site in ``docs/_build/html`` (built first when it is not
current). Compared: every HTML page (after the allow-list's substitutions), the set of pages,
``sitemap.xml`` and the bytes of every image. Not compared: search index, downloads (the zips hold
file times), build info.

It takes one cold build (about a minute on 2 cores); ``-m "not site_build"`` leaves it out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from vecgrad_site import build, copy_checkout

pytestmark = pytest.mark.site_build


# Pages that time code while the site is built and print or plot what they measured.
MEASURING = r"choosing\.html|gallery/.*"
# (pages, pattern replaced by a placeholder before comparing, why it may differ); everything else
# must be byte-identical once these are masked.
ALLOWED = (
    (
        r"gallery/.*",
        r"Total running time of the script:</strong> \([^)]*\)",
        "sphinx-gallery reports how long each example ran: wall time, different every run",
    ),
    (
        MEASURING,  # with the padding before it: a column of timings is aligned to its widest
        r"\s*\b\d+(?:\.\d+)?(?:e-?\d+)?\s?(?:ms|µs|us|ns|s)\b",
        "durations measured while the page was built (wall time on a busy machine)",
    ),
    (
        MEASURING,
        r"\b\d+(?:\.\d+)?x\b|(?<= / )([^=<>\n]{1,40} = )[\d.]+",
        "ratios of two measured durations ('832x slower', 'forward / reverse = 14.2')",
    ),
    (
        r"choosing\.html",
        r"_images/[0-9a-f]{64}\.png",
        "the page's timing plot: myst-nb names an image by the hash of its content",
    ),
    (
        r".*",
        r"(?<=/mystnb\.[0-9a-f]{64}\.css)(?:\?v=[0-9a-f]{8})?(?=\")",
        "Sphinx adds a checksum to a stylesheet link only once the file is in the output; myst-nb "
        "writes its stylesheet late in a cold build, so pages a later rebuild wrote have ?v=...",
    ),
)
# Gallery figures that plot measured durations (and the thumbnail drawn from one): their pixels
# follow the timings. Every other figure must come out byte-identical.
TIMING_FIGURES = re.compile(
    r"_images/sphx_glr_(?:plot_01_batch_jacobian_003|plot_01_hessians_003"
    r"|plot_01_reconstruct_jacobian_002|plot_02_masked_backward_002"
    r"|plot_03_forward_mode_(?:001|thumb)|plot_02_composing_transforms_(?:001|thumb)"
    r"|plot_02_newton_pde_(?:002|thumb)|plot_03_divergence_laplacian_002"
    r"|plot_02_network_curvature_002)"
    r"(?:_dark)?\.png"
)


def measured_images(site: Path) -> set[str]:
    """Images that plot timings: the gallery's timing figures and the plot on choosing.html."""
    hashed = set(re.findall(ALLOWED[3][1], (site / "choosing.html").read_text(encoding="utf-8")))
    return {rel for rel in site_files(site, "_images/*") if TIMING_FIGURES.fullmatch(rel)} | hashed


def masked(rel: str, text: str) -> str:
    for pages, pattern, _ in ALLOWED:
        if re.fullmatch(pages, rel):
            text = re.sub(pattern, "<allowed>", text)
    return text


def site_files(site: Path, pattern: str) -> dict[str, Path]:
    skip = ("_sources/", "_downloads/", "_static/")
    return {
        path.relative_to(site).as_posix(): path
        for path in sorted(site.rglob(pattern))
        if not path.relative_to(site).as_posix().startswith(skip)
    }


@pytest.fixture(scope="module")
def sites(site_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The current site and a fresh cold build of a copy of the checkout."""
    fresh = copy_checkout(tmp_path_factory.mktemp("fresh") / "repo")
    build(fresh, capture=True)
    return site_dir, fresh / "docs" / "_build" / "html"


def test_pages_identical_but_for_the_allow_list(sites: tuple[Path, Path]) -> None:
    reference, fresh = sites
    old, new = site_files(reference, "*.html"), site_files(fresh, "*.html")
    assert sorted(old) == sorted(new), (
        f"only in {reference}: {sorted(set(old) - set(new))}; only in the fresh build: "
        f"{sorted(set(new) - set(old))} (a stale page of an incremental build? remove docs/_build)"
    )
    old["sitemap.xml"], new["sitemap.xml"] = reference / "sitemap.xml", fresh / "sitemap.xml"
    problems = []
    for rel in sorted(set(old) & set(new)):
        a = masked(rel, old[rel].read_text(encoding="utf-8")).splitlines()
        b = masked(rel, new[rel].read_text(encoding="utf-8")).splitlines()
        differing = [(x, y) for x, y in zip(a, b, strict=False) if x != y]
        if len(a) != len(b):
            problems.append(f"{rel}: {len(a)} lines, then {len(b)}")
        problems += [
            f"{rel}:\n  - {x.strip()[:300]}\n  + {y.strip()[:300]}" for x, y in differing[:3]
        ]
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)


def test_images_identical(sites: tuple[Path, Path]) -> None:
    """Figures are seeded and saved without a timestamp or version: same bytes every build."""
    reference, fresh = sites
    old, new = site_files(reference, "_images/*"), site_files(fresh, "_images/*")
    allowed = measured_images(reference) | measured_images(fresh)
    assert sorted(set(old) - allowed) == sorted(set(new) - allowed)
    compared = sorted(set(old) - allowed)
    differing = [rel for rel in compared if old[rel].read_bytes() != new[rel].read_bytes()]
    assert not differing, f"images differ between two builds: {differing}"
    # Most figures must match; an allow-list grown to cover them all would hide every change.
    assert len(compared) > len(allowed), f"compared {compared}, allowed {sorted(allowed)}"

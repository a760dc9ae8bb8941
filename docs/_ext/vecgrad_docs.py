"""Site machinery for the vecgrad docs: offline MathJax and light/dark gallery figures."""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib.colors as mcolors
from sphinx.application import Sphinx

# furo's dark background and body text colours.
DARK_BACKGROUND = "#131416"
DARK_FOREGROUND = "#cfd0d0"


# -- MathJax served from the site ------------------------------------------------------------------


def mathjax_source() -> Path:
    """The MathJax 3 ``es5`` folder shipped by the ``django-static-mathjax`` distribution."""
    import mathjax  # the import name of django-static-mathjax

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def copy_mathjax(app: Sphinx) -> None:
    """Copy MathJax's combined TeX/CHTML component and its fonts into ``_static/mathjax``."""
    if app.builder.format != "html":
        return
    src = mathjax_source()
    dest = Path(app.outdir) / "_static" / "mathjax"
    fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
    if (dest / "tex-mml-chtml.js").exists() and (dest / fonts).is_dir():
        return
    (dest / fonts).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "tex-mml-chtml.js", dest / "tex-mml-chtml.js")
    shutil.copytree(src / fonts, dest / fonts, dirs_exist_ok=True)


# -- Gallery figures in light and dark -------------------------------------------------------------


def _is_dark(color: Any) -> bool:
    if isinstance(color, str) and color.lower() == "none":
        return False
    r, g, b, a = mcolors.to_rgba(color)
    return a > 0 and 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.35


def _is_white(color: Any) -> bool:
    if isinstance(color, str) and color.lower() == "none":
        return False
    r, g, b, a = mcolors.to_rgba(color)
    return a > 0 and min(r, g, b) > 0.9


def recolor_for_dark(fig: Any) -> None:
    """Turn a figure drawn with matplotlib's light defaults into one that reads on a dark page.

    Dark text, spines, ticks and lines become light; white backgrounds become the page colour.
    Data colours (colour maps, the default cycle) are left alone.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.spines import Spine
    from matplotlib.text import Text

    fig.patch.set_facecolor(DARK_BACKGROUND)
    for ax in fig.axes:
        if _is_white(ax.get_facecolor()):
            ax.set_facecolor(DARK_BACKGROUND)
        ax.tick_params(which="both", colors=DARK_FOREGROUND)
        for spine in ax.spines.values():
            spine.set_edgecolor(DARK_FOREGROUND)
    for artist in fig.findobj():
        if isinstance(artist, Text) and _is_dark(artist.get_color()):
            artist.set_color(DARK_FOREGROUND)
        elif isinstance(artist, Line2D):
            if _is_dark(artist.get_color()):
                artist.set_color(DARK_FOREGROUND)
            if _is_dark(artist.get_markeredgecolor()):
                artist.set_markeredgecolor(DARK_FOREGROUND)
        elif isinstance(artist, Patch) and not isinstance(artist, Spine):
            if _is_white(artist.get_facecolor()):
                artist.set_facecolor(DARK_BACKGROUND)
            if _is_dark(artist.get_edgecolor()):
                artist.set_edgecolor(DARK_FOREGROUND)


def describe_figure(fig: Any) -> str:
    """Alt text from what a figure shows: its title, then each panel's title, axes and legend."""
    parts = [fig.get_suptitle()]
    for ax in fig.axes:
        labels = (ax.get_xlabel(), ax.get_ylabel())
        panel = [ax.get_title(), *(f"{n} axis {t}" for n, t in zip("xy", labels, strict=True) if t)]
        legend = ax.get_legend()
        if legend:
            panel.append("legend: " + "; ".join(text.get_text() for text in legend.get_texts()))
        parts.append(", ".join(filter(None, panel)))
    # TeX in titles ($\tanh(Ax)$) is read as its plain letters.
    text = ". ".join(filter(None, parts)) or "Figure"
    return " ".join(text.replace("$", "").replace("\\", "").split())


def light_dark_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """sphinx-gallery scraper: save every open figure twice, for furo's light and dark themes."""
    import matplotlib.pyplot as plt

    image_paths: Iterator[str] = iter(block_vars["image_path_iterator"])
    src_dir = Path(gallery_conf["src_dir"])
    rst = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        light = Path(next(image_paths))
        dark = light.with_name(f"{light.stem}_dark{light.suffix}")
        fig.savefig(light, dpi=110, bbox_inches="tight")
        recolor_for_dark(fig)
        fig.savefig(dark, dpi=110, bbox_inches="tight", facecolor=DARK_BACKGROUND)
        for path, theme in ((light, "only-light"), (dark, "only-dark")):
            rel = "/" + path.relative_to(src_dir).as_posix()
            alt = describe_figure(fig)
            rst.append(
                f".. image:: {rel}\n   :alt: {alt}\n   :class: sphx-glr-single-img {theme}\n"
            )
    plt.close("all")
    return "\n" + "\n".join(rst) + "\n" if rst else ""


# -- Gallery execution -----------------------------------------------------------------------------

_warmed_up = False


def warm_up_torch(gallery_conf: dict[str, Any], fname: str, when: str) -> None:
    """Pay torch's one-time costs before the first example, not inside it.

    The first ``torch.testing.assert_close`` imports ``torch.distributed`` and the first
    ``torch.func`` transform imports ``torch._dynamo`` (a second or more each); without this, the
    timing shown for whichever example runs first would include them. Runs only when examples
    are executed, so a rebuild with nothing to execute never imports torch.
    """
    global _warmed_up
    if _warmed_up or when != "before":
        return
    import torch
    import torch.func
    import torch.testing

    torch.testing.assert_close(torch.zeros(1), torch.zeros(1))
    torch.func.vjp(torch.sin, torch.zeros(1))
    _warmed_up = True


# -- Pages that work offline and describe themselves ----------------------------------------------

# sphinx-gallery's computation-time pages load jQuery and DataTables from CDNs to sort their table;
# the site loads nothing from other hosts, so that raw HTML block goes and the plain table stays.
_CDN_TABLE_SCRIPTS = re.compile(r"^  \.\. raw:: html\n(?:\n|    .*\n)*", re.MULTILINE)


def drop_cdn_scripts(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname.rsplit("/", 1)[-1] == "sg_execution_times":
        source[0] = _CDN_TABLE_SCRIPTS.sub("", source[0], count=1)


def describe_api_page(app: Sphinx, docname: str, source: list[str]) -> None:
    """Give each API page its docstring's summary as description (search engines, link previews).

    sphinxext-opengraph skips object descriptions, so an autosummary page would otherwise be
    described by whatever text follows the signature, or not at all.
    """
    prefix = "api/generated/"
    if not docname.startswith(prefix):
        return
    module, _, name = docname.removeprefix(prefix).rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return
    summary = " ".join((inspect.getdoc(obj) or "").split("\n\n", 1)[0].split())
    summary = re.sub(r":[\w:]+:`~?([^`<]+?)\s*(<[^>]*>)?`", r"\1", summary)
    summary = summary.replace("``", "").replace('"', "'")
    if summary:
        text = source[0].lstrip("\ufeff")
        source[0] = f":og:description: {summary}\n\n.. meta::\n   :description: {summary}\n\n{text}"


# Pages search engines should not index.
SITEMAP_EXCLUDES = {"404", "search", "genindex"}


def write_sitemap(app: Sphinx, exception: Exception | None) -> None:
    """Write ``sitemap.xml`` listing every page of the site.

    Built from all documents of the environment, so an incremental build (which writes only the
    pages that changed) still produces a complete sitemap.
    """
    if exception is not None or app.builder.format != "html":
        return
    base = app.config.html_baseurl.rstrip("/") + "/"
    pages = sorted(
        app.builder.get_target_uri(doc) for doc in app.env.all_docs if doc not in SITEMAP_EXCLUDES
    )
    urls = "".join(f"  <url><loc>{escape(base + page)}</loc></url>\n" for page in pages)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{urls}</urlset>\n"
    )
    (Path(app.outdir) / "sitemap.xml").write_text(xml, encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", copy_mathjax)
    app.connect("source-read", drop_cdn_scripts)
    app.connect("source-read", describe_api_page)
    app.connect("build-finished", write_sitemap)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

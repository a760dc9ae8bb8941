"""Site machinery for the vecgrad docs: offline MathJax and light/dark gallery figures.

Only what no stock extension does lives here. The sitemap comes from sphinx-sitemap, page
descriptions from sphinxext-opengraph and the gallery's timing options from sphinx-gallery itself
(see ``conf.py``). Sphinx's MathJax support only links a URL, and no extension serves MathJax 3
offline without copying megabytes per build; sphinx-gallery's matplotlib scraper saves one image
per figure, and furo's dark theme needs a second, recoloured one; sphinxext-opengraph gives an
API page no description (see :func:`describe_object_page`); sphinx-sitemap lists only the pages
an incremental build wrote (see :func:`complete_sitemap`); myst-nb's ``nb_merge_streams`` can
add a blank line where the kernel split a print (see :func:`install_stream_merge`); Sphinx
writes ``Callable[..., T]`` as ``Callable[[...], T]`` (see :func:`ellipsis_callables`).
"""

from __future__ import annotations

import dis
import gc
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.pycode import ModuleAnalyzer
from vecgrad_streams import Output, join_streams

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


def _rgba(color: Any) -> tuple[float, float, float, float]:
    # Imported here: a build that executes no example never needs matplotlib.
    import matplotlib.colors as mcolors

    return mcolors.to_rgba(color)


def _is_dark(color: Any) -> bool:
    if isinstance(color, str) and color.lower() == "none":
        return False
    r, g, b, a = _rgba(color)
    return a > 0 and 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.35


def _is_white(color: Any) -> bool:
    if isinstance(color, str) and color.lower() == "none":
        return False
    r, g, b, a = _rgba(color)
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


# PNG files that depend only on the figure: no "Software" text chunk naming matplotlib's version
# (matplotlib writes no timestamp into a PNG), so two builds give the same bytes.
SAVEFIG: dict[str, Any] = {
    "format": "png",
    "dpi": 110,
    "bbox_inches": "tight",
    "metadata": {"Software": None},
}


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
        fig.savefig(light, **SAVEFIG)
        recolor_for_dark(fig)
        fig.savefig(dark, **SAVEFIG, facecolor=DARK_BACKGROUND)
        for path, theme in ((light, "only-light"), (dark, "only-dark")):
            rel = "/" + path.relative_to(src_dir).as_posix()
            alt = describe_figure(fig)
            rst.append(
                f".. image:: {rel}\n   :alt: {alt}\n   :class: sphx-glr-single-img {theme}\n"
            )
    plt.close("all")
    return "\n" + "\n".join(rst) + "\n" if rst else ""


# -- Descriptions of API pages --------------------------------------------------------------------


def ellipsis_callables(app: Sphinx, doctree: nodes.document) -> None:
    """Write ``Callable[..., T]`` in signatures as it is spelt, not ``Callable[[...], T]``.

    Sphinx 9 stringifies ``Callable[..., T]`` with brackets around the ellipsis, a parameter
    list that does not exist; the signature's punctuation nodes ``[``, ``[``, ``...``, ``]``
    lose the inner pair.
    """
    for signature in doctree.findall(addnodes.desc_signature):
        for parent in list(signature.findall(nodes.Element)):
            marks = [
                child.astext() if isinstance(child, addnodes.desc_sig_punctuation) else None
                for child in parent.children
            ]
            # From the end, so that removing two children keeps the earlier indices valid.
            for k in range(len(marks) - 4, -1, -1):
                if marks[k : k + 4] == ["[", "[", "...", "]"]:
                    parent.remove(parent.children[k + 3])
                    parent.remove(parent.children[k + 1])


def describe_object_page(app: Sphinx, doctree: nodes.document) -> None:
    """Describe a page that documents one object by the first paragraph of its docstring.

    sphinxext-opengraph describes every other page. It skips object descriptions (Sphinx's ``desc``
    node is an admonition to it), so an API page would be described by the heading of its example
    list, or not at all. Only pages whose first content is an object description are touched.
    """
    section = doctree.next_node(nodes.section)
    if section is None:
        return
    body = [
        child
        for child in section.children[1:]
        if not isinstance(child, (addnodes.index, nodes.target))
    ]
    if not body or not isinstance(body[0], addnodes.desc):
        return
    paragraph = body[0].next_node(nodes.paragraph)
    if paragraph is None:
        return
    summary = " ".join(paragraph.astext().split())
    app.env.metadata[app.env.docname].setdefault("og:description", summary)
    doctree.insert(0, nodes.meta("", name="description", content=summary))


# -- A complete sitemap from an incremental build --------------------------------------------------


def complete_sitemap(app: Sphinx, exception: Exception | None) -> None:
    """Hand sphinx-sitemap every page, in a fixed order, before it writes ``sitemap.xml``.

    sphinx-sitemap lists the pages written by this build (jdillard/sphinx-sitemap#13), so an
    incremental build would publish a sitemap of the edited pages only; and parallel writing
    would shuffle their order from build to build. The pages come from the environment instead.
    """
    queue = getattr(app.env.app, "sitemap_links", None)
    if exception is not None or queue is None or app.builder.format != "html":
        return
    from sphinx_sitemap import is_excluded

    links = {}
    while not queue.empty():
        link, last_updated = queue.get_nowait()
        links[link] = last_updated
    for docname in app.env.all_docs:
        link = app.builder.get_target_uri(docname)
        if not is_excluded(link, app.config.sitemap_excludes):
            links.setdefault(link, None)
    for link in sorted(links):
        queue.put((link, links[link]))


def vecgrad_source(app: Sphinx, modname: str) -> tuple[str, dict[str, Any]] | None:
    """viewcode's source of a vecgrad module, read from its file without importing it.

    viewcode otherwise finds a module's file with ``importlib.util.find_spec``, which imports
    the package, and so torch, on every build: 1.5 s of a 4 s rebuild with nothing to do.
    """
    if modname != "vecgrad" and not modname.startswith("vecgrad."):
        return None
    package = Path(app.srcdir).parent / "src"
    path = package.joinpath(*modname.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    if not path.is_file():
        return None
    analyzer = ModuleAnalyzer.for_string(path.read_text(encoding="utf-8"), modname, str(path))
    analyzer.find_tags()
    return analyzer.code, analyzer.tags


def skip_final_collection(app: Sphinx, exception: Exception | None) -> None:
    """Spare the interpreter's exit a full garbage collection of the build's objects.

    Once torch has been imported (any build that runs an example), Python's final collection
    of the environment, doctrees and torch's objects takes 1.5 s, a fifth of a rebuild after
    editing one example; frozen objects are left to the operating system to reclaim.
    """
    gc.freeze()


# -- Stream outputs merged as they were written ---------------------------------------------------


def merge_streams_as_written(outputs: list[Output]) -> list[Output]:
    """myst-nb's stream merge, given each stream's messages already joined as written.

    myst-nb then sees one message per stream and only does the rest of its merge: carriage
    returns and backspaces applied, trailing whitespace trimmed, stdout put before stderr.
    """
    from myst_nb.core.utils import coalesce_streams

    return coalesce_streams(join_streams(outputs))


def _stream(text: str) -> dict[str, str]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def install_stream_merge() -> None:
    """Make ``nb_merge_streams`` give the same text however the kernel split a cell's output.

    Why: myst-nb 1.4.0's merge strips every later message and adds a newline, so a print flushed
    as two messages gains a blank line, in some builds only (``vecgrad_streams``).

    myst-nb's renderer (``MditRenderMixin._get_nb_code_cell_outputs``) merges by calling the
    name ``coalesce_streams`` of ``myst_nb.core.render``; that name is pointed at
    :func:`merge_streams_as_written`. If myst-nb no longer merges there, or the replacement
    does not give the split and the whole form the same text, the build stops with an
    :class:`~sphinx.errors.ExtensionError` rather than go on with the lossy merge.
    """
    try:
        import myst_nb
        from myst_nb.core import render, utils

        method = render.MditRenderMixin._get_nb_code_cell_outputs
        current = render.coalesce_streams
        lossy = utils.coalesce_streams
    except (ImportError, AttributeError) as err:
        raise ExtensionError(
            "vecgrad_docs: myst-nb's stream merge is not where it was in myst-nb 1.4.0 "
            f"({err}); update install_stream_merge, or remove it if myst-nb now joins a "
            "cell's stream messages as written"
        ) from err
    # Rebinding the name helps only if the renderer reads it from render's globals on each call.
    looked_up = method.__globals__ is vars(render) and any(
        op.opname == "LOAD_GLOBAL" and op.argval == "coalesce_streams"
        for op in dis.get_instructions(method)
    )
    if current is not merge_streams_as_written:
        if current is not lossy or not looked_up:
            raise ExtensionError(
                f"vecgrad_docs: myst-nb {myst_nb.__version__}'s renderer no longer merges "
                "stream outputs through myst_nb.core.render.coalesce_streams, so it cannot be "
                "made lossless there; update install_stream_merge, or remove it if myst-nb "
                "now joins a cell's stream messages as written"
            )
        render.coalesce_streams = merge_streams_as_written
    split = render.coalesce_streams([_stream("printed"), _stream("\nnext line\n")])
    whole = render.coalesce_streams([_stream("printed\nnext line\n")])
    if split != whole:
        raise ExtensionError(
            f"vecgrad_docs: with myst-nb {myst_nb.__version__}, a print split into two stream "
            f"messages still renders differently from the whole: {split} != {whole}"
        )


def setup(app: Sphinx) -> dict[str, Any]:
    # myst-nb 1.4.0's nb_merge_streams adds a blank line where the kernel split a print.
    install_stream_merge()
    app.connect("builder-inited", copy_mathjax)
    app.connect("viewcode-find-source", vecgrad_source)
    app.connect("doctree-read", describe_object_page)
    app.connect("doctree-read", ellipsis_callables)
    # Before sphinx-sitemap's own build-finished handler (default priority 500) writes the file.
    app.connect("build-finished", complete_sitemap, priority=400)
    app.connect("build-finished", skip_final_collection, priority=1000)  # after every other
    return {"parallel_read_safe": True, "parallel_write_safe": True}

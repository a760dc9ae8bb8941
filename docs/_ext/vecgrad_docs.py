"""What no stock extension does for the vecgrad site (each stock one is configured in conf.py).

- MathJax 3 served from the site: Sphinx only links a URL (a CDN), and the offline package copies
  24 MB per build.
- Gallery figures in light and dark, with alt text that says what they show: sphinx-gallery's
  scraper saves one image per figure, furo's dark theme needs a recoloured second one.
- API pages described by their docstring's first paragraph: sphinxext-opengraph skips objects.
- A sitemap of every page after an incremental build: sphinx-sitemap lists only the pages the
  build wrote (jdillard/sphinx-sitemap#13).
- ``Callable[..., T]`` in signatures as it is spelt: Sphinx 9 writes ``Callable[[...], T]``.
- myst-nb's ``nb_merge_streams`` made lossless (:func:`join_streams`).
- Four speed devices, kept for the build goals: viewcode reads vecgrad's source without importing
  torch, and writes a module's page again only when the module or its API pages changed; the
  notebook pages run in one kernel while sphinx-gallery runs the examples, in two worker
  processes when there are several; and the exit skips a final garbage collection
  (benchmarks/docs_build.py measures them).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import shutil
import threading
import time
from collections.abc import Iterable, MutableMapping
from pathlib import Path, PurePosixPath
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging as sphinx_logging
from sphinx.util.osutil import _last_modified_time

DARK_BACKGROUND, DARK_FOREGROUND = "#131416", "#cfd0d0"  # furo's dark page and text colours
# PNGs that depend only on the figure: no "Software" chunk naming matplotlib's version.
SAVEFIG: dict[str, Any] = {
    "format": "png",
    "dpi": 110,
    "bbox_inches": "tight",
    "metadata": {"Software": None},
}


def copy_mathjax(app: Sphinx) -> None:
    """MathJax's TeX/CHTML component and fonts, from django-static-mathjax, to _static/mathjax."""
    import mathjax  # the import name of django-static-mathjax

    src = Path(mathjax.__file__).parent / "static/mathjax/es5"
    dest, fonts = Path(app.outdir) / "_static/mathjax", "output/chtml/fonts/woff-v2"
    if app.builder.format == "html" and not (dest / "tex-mml-chtml.js").exists():
        shutil.copytree(src / fonts, dest / fonts, dirs_exist_ok=True)
        shutil.copy2(src / "tex-mml-chtml.js", dest)  # last: its presence means a whole copy


def _shade(color: Any) -> str:
    """ "dark" (luminance < 0.35), "white" (every channel > 0.9) or "" for a matplotlib colour."""
    import matplotlib.colors as mcolors  # here: a build that runs no example never needs it

    if isinstance(color, str) and color.lower() == "none":
        return ""
    r, g, b, a = mcolors.to_rgba(color)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "" if a == 0 else "dark" if luminance < 0.35 else "white" if min(r, g, b) > 0.9 else ""


def recolor_for_dark(fig: Any) -> None:
    """Dark text, spines, ticks and lines become light, white backgrounds the page colour; data
    colours (colour maps, the default cycle) stay."""
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.spines import Spine
    from matplotlib.text import Text

    fig.patch.set_facecolor(DARK_BACKGROUND)
    for ax in fig.axes:
        ax.tick_params(which="both", colors=DARK_FOREGROUND)
        for spine in ax.spines.values():
            spine.set_edgecolor(DARK_FOREGROUND)
    for artist in fig.findobj():
        # (colour property, the shade to replace, its replacement) for each kind of artist.
        if isinstance(artist, Text | Line2D):
            attrs = [("color", "dark", DARK_FOREGROUND)]
            attrs += [("markeredgecolor", "dark", DARK_FOREGROUND)] * isinstance(artist, Line2D)
        elif isinstance(artist, Patch) and not isinstance(artist, Spine):
            attrs = [
                ("facecolor", "white", DARK_BACKGROUND),
                ("edgecolor", "dark", DARK_FOREGROUND),
            ]
        else:
            attrs = [("facecolor", "white", DARK_BACKGROUND)] * isinstance(artist, Axes)
        for attr, shade, new in attrs:
            if _shade(getattr(artist, f"get_{attr}")()) == shade:
                getattr(artist, f"set_{attr}")(new)


def describe_figure(fig: Any) -> str:
    """Alt text from what a figure shows: its title, then each panel's title, axes and legend."""
    parts = [fig.get_suptitle()]
    for ax in fig.axes:
        labels = zip("xy", (ax.get_xlabel(), ax.get_ylabel()), strict=True)
        axes = [f"{n} axis {t}" for n, t in labels if t]
        legend = (
            "; ".join(t.get_text() for t in ax.get_legend().get_texts()) if ax.get_legend() else ""
        )
        parts.append(
            ", ".join(filter(None, [ax.get_title(), *axes, legend and f"legend: {legend}"]))
        )
    text = ". ".join(filter(None, parts)) or "Figure"
    return " ".join(text.replace("$", "").replace("\\", "").split())  # TeX read as its letters


def light_dark_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """sphinx-gallery scraper: save every open figure twice, for furo's light and dark themes."""
    import matplotlib.pyplot as plt

    paths, rst = iter(block_vars["image_path_iterator"]), []
    for num in plt.get_fignums():
        fig, light = plt.figure(num), Path(next(paths))
        dark = light.with_name(f"{light.stem}_dark{light.suffix}")
        fig.savefig(light, **SAVEFIG)
        alt = describe_figure(fig)
        recolor_for_dark(fig)
        fig.savefig(dark, **SAVEFIG, facecolor=DARK_BACKGROUND)
        for path, theme in ((light, "only-light"), (dark, "only-dark")):
            rel = "/" + path.relative_to(gallery_conf["src_dir"]).as_posix()
            rst.append(
                f".. image:: {rel}\n   :alt: {alt}\n   :class: sphx-glr-single-img {theme}\n"
            )
    plt.close("all")
    return "\n" + "\n".join(rst) + "\n" if rst else ""


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
    """A page whose first content is an object description is described by its first paragraph."""
    section = doctree.next_node(nodes.section)
    body = [
        c for c in section or [] if not isinstance(c, nodes.title | addnodes.index | nodes.target)
    ]
    paragraph = (
        body[0].next_node(nodes.paragraph) if body and isinstance(body[0], addnodes.desc) else None
    )
    if paragraph is not None:
        summary = " ".join(paragraph.astext().split())
        app.env.metadata[app.env.docname].setdefault("og:description", summary)
        doctree.insert(0, nodes.meta("", name="description", content=summary))


def complete_sitemap(app: Sphinx, exception: Exception | None) -> None:
    """Hand sphinx-sitemap every page of the environment, sorted, before it writes sitemap.xml."""
    queue = getattr(app.env.app, "sitemap_links", None)
    if exception is None and queue is not None and app.builder.format == "html":
        from sphinx_sitemap import is_excluded

        links = {}
        while not queue.empty():
            link, last_updated = queue.get_nowait()
            links[link] = last_updated
        for link in map(app.builder.get_target_uri, app.env.all_docs):
            if not is_excluded(link, app.config.sitemap_excludes):
                links.setdefault(link, None)
        for link in sorted(links):
            queue.put((link, links[link]))


def module_file(app: Sphinx, modname: str) -> Path | None:
    """The source file of a vecgrad module, None for any other module."""
    path = Path(app.srcdir).parent / "src" / Path(*modname.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return path if modname.split(".")[0] == "vecgrad" and path.is_file() else None


def vecgrad_source(app: Sphinx, modname: str) -> tuple[str, dict[str, Any]] | None:
    """viewcode's source of a vecgrad module, read from its file: viewcode's own lookup imports
    the package, and so torch, on every build (1.5 s of a no-change rebuild)."""
    path = module_file(app, modname)
    if path is None:
        return None
    analyzer = ModuleAnalyzer.for_string(path.read_text(encoding="utf-8"), modname, str(path))
    analyzer.find_tags()
    return analyzer.code, analyzer.tags


def skip_current_module_pages(app: Sphinx) -> list[tuple[str, dict[str, Any], str]]:
    """Keep viewcode from writing again a module page newer than its module and than the pages
    that document it (their doctrees). viewcode skips such a page only for a module it imports
    itself; given the source by :func:`vecgrad_source`, it writes every page on every build
    (0.6 s of a no-change rebuild). Connected before viewcode's handler, once the environment
    is saved."""
    modules = getattr(app.env, "_viewcode_modules", {})
    for modname, entry in modules.items():
        page = Path(app.outdir, "_modules", *modname.split(".")).with_suffix(".html")
        source = module_file(app, modname)
        if not entry or source is None or not page.is_file():
            continue
        documented = (Path(app.doctreedir, f"{doc}.doctree") for doc in entry[2].values())
        if all(
            path.is_file() and _last_modified_time(path) <= _last_modified_time(page)
            for path in (source, *documented)
        ):
            modules[modname] = False  # viewcode skips an entry without code
    return []  # no page of its own


# Run once in the pages' kernel: what every page may import, and the state a fresh kernel has.
KERNEL_SETUP = """
import logging, os, sys, types, warnings
get_ipython().run_line_magic("matplotlib", "inline")
import matplotlib, matplotlib.pyplot, numpy, torch, vecgrad
fresh = sys.modules["_vecgrad_fresh"] = types.ModuleType("_vecgrad_fresh")
fresh.rc = {k: v for k, v in matplotlib.rcParams.items() if k != "backend"}
fresh.filters, fresh.environ, fresh.path = list(warnings.filters), dict(os.environ), list(sys.path)
fresh.numpy, fresh.threads = numpy.get_printoptions(), torch.get_num_threads()
fresh.log = logging.root.level, list(logging.root.handlers)
"""
# Run before each page: a fresh kernel's names, counter and settings, in the page's folder. Not
# covered: other process-wide state a page changes, threads it leaves running, and modules an
# earlier page imported (a page that uses one without importing it runs here, not alone).
KERNEL_RESET = """
get_ipython().reset(new_session=True)
import logging, os, sys, warnings, matplotlib, matplotlib.pyplot, numpy, torch
fresh = sys.modules["_vecgrad_fresh"]
os.chdir({cwd!r}); os.environ.clear(); os.environ.update(fresh.environ)
sys.path[:], warnings.filters[:] = fresh.path, fresh.filters
logging.root.setLevel(fresh.log[0]); logging.root.handlers[:] = fresh.log[1]
matplotlib.pyplot.close("all"); matplotlib.rcParams.update(fresh.rc)
numpy.set_printoptions(**fresh.numpy); get_ipython().run_line_magic("precision", "")
torch.set_default_dtype(torch.float32); torch.set_default_device(None)
torch.set_grad_enabled(True); torch.autograd.set_detect_anomaly(False)
torch.set_num_threads(fresh.threads); torch.set_float32_matmul_precision("highest")
torch.use_deterministic_algorithms(False); torch.set_printoptions(profile="default")
get_ipython().reset(new_session=True)
"""


def run_pages_early(app: Sphinx) -> None:
    """Run the notebook pages this build must execute on a second thread, while sphinx-gallery
    runs the examples on this one, and store them in myst-nb's jupyter-cache: reading finds
    them there.

    The pages share one kernel, which imports torch once instead of once a page: before each,
    its names, execution counter, folder, environment, ``sys.path``, warning filters, logging,
    print options, matplotlib figures and settings, and torch's default dtype and device, grad
    and anomaly modes, threads, matmul precision and determinism are reset to a fresh kernel's
    (``KERNEL_RESET``, which says what it does not cover; the site's pages give the same output
    either way, timings aside). A page that fails is not stored, and reading runs it again in a
    kernel of its own and reports it. Pages that myst-nb would not run in a plain kernel of the
    first page's kind (their own ``mystnb`` settings, ``execution_in_temp``, an excluded or
    other kernel) are left to it. Connected before sphinx-gallery's handler (conf.py lists this
    extension before it); reading waits for the thread.
    """
    env, config = app.env, getattr(app.env, "mystnb_config", None)
    if app.builder.format != "html" or config is None or config.execution_mode != "cache":
        return
    paths = map(env.doc2path, sorted(app.project.discover(app.config.exclude_patterns)))
    # The pages Sphinx will read: new, or changed since the last build.
    pages = [
        path
        for path in paths
        if path.suffix == ".md"
        and _last_modified_time(path) > env.all_docs.get(env.path2doc(path) or "", 0)
    ]
    if not pages:
        return

    def run() -> None:
        from jupyter_cache import get_cache
        from jupyter_cache.base import CacheBundleIn
        from jupyter_client.manager import KernelManager
        from myst_nb.core.read import create_nb_reader
        from nbclient import NotebookClient
        from nbformat import v4

        cache, kernel = get_cache(config.execution_cache_path or ".jupyter_cache"), None
        log = sphinx_logging.getLogger(__name__)
        setup = KERNEL_SETUP
        try:
            for path in pages:
                text = path.read_text(encoding="utf-8")
                reader = create_nb_reader(str(path), env.myst_config, config, text)
                if reader is None:
                    continue
                notebook = reader.read(text)
                # As myst-nb runs it (its page settings, kernel); else myst-nb runs it when read.
                overrides = dict(notebook.metadata.get(config.metadata_key, {}))
                overrides.pop("output_folder", None)  # as myst-nb: not set by a page
                try:
                    page = config.copy(**overrides)
                except Exception:  # myst-nb warns when it reads the page
                    continue
                name = notebook.metadata.get("kernelspec", {}).get("name")
                if (
                    page.execution_mode != "cache"
                    or page.execution_in_temp
                    or page.kernel_rgx_aliases
                    or "execution" in notebook.metadata  # jupyter-cache's own overrides
                    or any(
                        PurePosixPath(path.as_posix()).match(p)
                        for p in page.execution_excludepatterns
                    )
                    or name != (kernel.kernel_name if kernel else name)
                ):
                    continue
                with contextlib.suppress(KeyError):
                    cache.match_cache_notebook(notebook)
                    continue  # stored by an earlier build
                if kernel is None:
                    # nbclient awaits its client: a blocking one waits for the kernel's next
                    # message with no timeout, forever once the kernel has died.
                    kernel = KernelManager(
                        kernel_name=name,
                        client_class="jupyter_client.asynchronous.AsyncKernelClient",
                    )
                    # nbclient's own kernels keep their history in memory too.
                    kernel.start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"])
                # The page's cells after one that makes the kernel fresh, dropped afterwards.
                run = copy.deepcopy(notebook)
                reset = setup + KERNEL_RESET.format(cwd=str(path.parent))
                run.cells.insert(0, v4.new_code_cell(reset))
                log.info(f"{path}: Executing notebook in the pages' kernel")
                start = time.perf_counter()
                client = NotebookClient(
                    run,
                    km=kernel,
                    timeout=page.execution_timeout,
                    allow_errors=page.execution_allow_errors,
                    record_timing=False,
                )
                try:
                    client.execute()
                except Exception:  # reported when reading runs the page again
                    kernel.restart_kernel(now=True)
                    setup = KERNEL_SETUP
                    continue
                finally:
                    if client.kc is not None:
                        client.kc.stop_channels()
                setup, seconds = "", time.perf_counter() - start
                del run.cells[0]  # with the kernel's language_info, as stored by myst-nb
                for cell in run.cells:  # nbclient counted the first cell
                    if cell.get("execution_count"):
                        cell.execution_count -= 1
                uri = cache.add_nb_to_project(str(path), read_data=reader.read_fmt).uri
                bundle = CacheBundleIn(run, uri, data={"execution_seconds": seconds})
                cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
                log.info(f"{path}: Executed notebook in {seconds:.2f} seconds")
        except Exception as err:  # the pages left run when read
            log.info(f"the pages' kernel stopped: {err!r}")
        finally:
            if kernel is not None and kernel.has_kernel:
                kernel.shutdown_kernel(now=True)

    thread = threading.Thread(target=run, name="vecgrad-pages", daemon=True)
    thread.start()
    # The pages are stored before Sphinx reads them (and forks its reading processes).
    app.connect("env-before-read-docs", lambda *_: thread.join())


def parallel_examples(app: Sphinx) -> None:
    """sphinx-gallery's two worker processes (``parallel``) when more than three examples must
    run, as in a cold build, beside the pages' kernel (36 s instead of 42 s on 2 cores); else
    the examples run in this process, as each worker imports torch and starts even when it has
    nothing to run (an edited example took 11 s instead of 7 s).

    Set here, not in conf.py: a value that differs between builds would make Sphinx write
    every page again.
    """
    conf = getattr(app.config, "sphinx_gallery_conf", None)
    if app.builder.format != "html" or conf is None:
        return
    from sphinx_gallery.utils import get_md5sum

    stale = 0
    for examples, gallery in zip(conf["examples_dirs"], conf["gallery_dirs"], strict=True):
        src, out = Path(app.srcdir, examples), Path(app.srcdir, gallery)
        for path in src.glob("**/plot_*.py"):
            md5 = out / f"{path.relative_to(src)}.md5"  # written once an example has run
            stale += not md5.is_file() or md5.read_text() != get_md5sum(path, mode="t")
    if stale > 3:
        conf["parallel"] = 2


Output = MutableMapping[str, Any]


def join_streams(outputs: Iterable[Output]) -> list[Output]:
    """Each stream's messages (``stdout``, ``stderr``) joined, as written, into its first.

    ipykernel flushes printed text on a timer, so one ``print`` can reach the notebook as
    ``"text"`` then ``"\\nnext\\n"``; myst-nb 1.4.0's merge strips each later message and adds a
    newline, a blank line in some builds only. Other outputs keep their place; the outputs
    passed in are left as they were.
    """
    joined: list[Output] = []
    streams: dict[str, Output] = {}
    for output in outputs:
        if output["output_type"] != "stream":
            joined.append(output)
        elif output["name"] in streams:
            streams[output["name"]]["text"] += output["text"]
        else:
            joined.append(streams.setdefault(output["name"], copy.copy(output)))
    return joined


def install_stream_merge() -> None:
    """Point the name myst-nb's renderer merges streams with at a merge of joined streams; stop
    the build if myst-nb no longer merges there (tests/built/test_stream_merge.py)."""
    from myst_nb.core import render, utils

    if getattr(render, "coalesce_streams", None) not in (utils.coalesce_streams, merge_streams):
        raise ExtensionError(
            "vecgrad_docs: myst-nb's renderer no longer merges stream outputs through "
            "myst_nb.core.render.coalesce_streams; update install_stream_merge, or remove it "
            "if myst-nb now joins a cell's stream messages as written"
        )
    render.coalesce_streams = merge_streams


def merge_streams(outputs: list[Output]) -> list[Output]:
    from myst_nb.core.utils import coalesce_streams

    return coalesce_streams(join_streams(outputs))


def setup(app: Sphinx) -> dict[str, Any]:
    install_stream_merge()
    app.connect("builder-inited", copy_mathjax)
    app.connect("builder-inited", run_pages_early)
    app.connect("builder-inited", parallel_examples)
    app.connect("viewcode-find-source", vecgrad_source)
    app.connect("html-collect-pages", skip_current_module_pages, priority=400)
    app.connect("doctree-read", describe_object_page)
    app.connect("doctree-read", ellipsis_callables)
    # Before sphinx-sitemap's build-finished handler (priority 500) writes the file; the final
    # collection of the build's objects (1.5 s once torch is imported) is left to the OS.
    app.connect("build-finished", complete_sitemap, priority=400)
    app.connect("build-finished", lambda app, exc: gc.freeze(), priority=1000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

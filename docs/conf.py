"""Sphinx configuration for the vecgrad documentation site.

The build is offline: intersphinx reads inventories committed under ``_intersphinx/`` and MathJax is
served from the site itself (see ``_ext/vecgrad_docs.py``).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# One thread for torch (read when it is imported) in this process, which runs the examples, and in
# the kernels of the notebook pages, which inherit it: the two run side by side, and with a second
# thread each parallel region of an example's many small operations waits for a busy core (a
# training loop ran four times slower). Timings on the pages are of one thread already.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# -- Project ---------------------------------------------------------------------------------------

project = "vecgrad"
author = "the vecgrad developers"
copyright = "2026, the vecgrad developers"
# Read without importing vecgrad (and torch): a rebuild with nothing to execute stays fast.
release = metadata.version("vecgrad")
version = release

# -- General ---------------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.linkcode",
    "myst_nb",  # loads myst_parser itself: do not list it too
    # Between the two: it starts the notebook pages once myst-nb is configured, before
    # sphinx-gallery runs the examples (both at builder-inited).
    "vecgrad_docs",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "sphinx_design",
    "sphinxext.opengraph",
    "notfound.extension",
    "sphinx_sitemap",
    "sphinx_llms_txt",
    "vecgrad_reader",
]

exclude_patterns = [
    "_build",
    "_ext",
    "_intersphinx",
    "**.ipynb_checkpoints",
    # sphinx-gallery writes a notebook beside each example page; myst-nb must not read it.
    "gallery/**/*.ipynb",
    "gallery/*.ipynb",
    # Timing pages are not written (write_computation_times below); ignore copies left by an
    # older build in a working tree, whose CDN scripts would break the offline site.
    "sg_execution_times.rst",
    "gallery/**/sg_execution_times.rst",
]
templates_path = ["_templates"]
root_doc = "index"
# Every cross-reference must resolve: with -W a broken one fails the build.
nitpicky = True

# -- Autodoc / autosummary / napoleon --------------------------------------------------------------

# The API stub pages are committed (`nox -s api_stubs`; tests/built/test_api_stubs.py): generating
# them imports vecgrad, and so torch, on every build (a third more CPU for a no-change rebuild).
autosummary_generate = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = True
# Words the docstrings use as types, linked to where they are defined.
napoleon_type_aliases = {
    "Tensor": "~torch.Tensor",
    "callable": ":term:`callable`",
    "iterable": ":term:`iterable`",
    "mapping": ":term:`mapping`",
}

# -- Doctest ---------------------------------------------------------------------------------------

doctest_global_setup = """
import torch
import vecgrad as vg
torch.manual_seed(0)
"""

# -- Intersphinx (offline) -------------------------------------------------------------------------

intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", str(DOCS / "_intersphinx" / "python.inv")),
    # Derived from the installed torch by _intersphinx/make_torch_inv.py.
    "torch": ("https://docs.pytorch.org/docs/stable/", str(DOCS / "_intersphinx" / "torch.inv")),
}
intersphinx_timeout = 1

# -- MyST / myst-nb --------------------------------------------------------------------------------

myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
# jupyter-cache reruns a page only when its code changed; pages run while read, so `-j N` runs N
# pages at once (one kernel each).
nb_execution_mode = os.environ.get("VECGRAD_NB_EXECUTION", "cache")
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 180
nb_execution_excludepatterns = ["gallery/**/*.ipynb", "gallery/*.ipynb"]
nb_merge_streams = True

# -- sphinx-gallery --------------------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": ["../gallery"],
    "gallery_dirs": ["gallery"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("vecgrad",),
    "backreferences_dir": "api/generated/backreferences",
    "image_scrapers": ("vecgrad_docs.light_dark_scraper",),
    "download_all_examples": True,
    "remove_config_comments": True,
    "min_reported_time": 0,
    # "parallel" is set by _ext/vecgrad_docs.py. No sg_execution_times pages: they load scripts
    # from CDNs and change every run; each example page shows its own running time.
    "write_computation_times": False,
    "show_signature": False,
    # Only printed output appears on the page; a trailing expression is never echoed.
    "capture_repr": (),
    "reset_modules": ("matplotlib",),
}


# -- Search: title and heading matches rank first; snippets show math as text ----------------------

html_search_scorer = str(DOCS / "_static" / "vecgrad_search.js")

# -- HTML ------------------------------------------------------------------------------------------

html_theme = "furo"
html_title = "vecgrad"
html_static_path = ["_static"]
html_css_files = ["vecgrad.css"]
html_favicon = "_static/favicon.svg"
html_logo = None
html_show_sourcelink = False
# The page sources are copied: llms-full.txt (sphinx-llms-txt) is made from them.
html_copy_source = True
html_theme_options = {
    "navigation_with_keys": True,
}
# MathJax 3, copied from the django-static-mathjax distribution into _static/mathjax at build time.
mathjax_path = "mathjax/tex-mml-chtml.js"

# Where the site is hosted: the sitemap (sphinx-sitemap), canonical links, link previews and the 404
# page use it.
html_baseurl = os.environ.get(
    "READTHEDOCS_CANONICAL_URL",
    os.environ.get("VECGRAD_DOCS_URL", "https://vecgrad.github.io/vecgrad/"),
)
# One URL per page, with no language or version folder (the site is hosted unversioned).
sitemap_url_scheme = "{link}"
# Pages search engines should not index. Module-source pages (viewcode) are not content pages.
sitemap_excludes = ["404.html", "search.html", "genindex.html", "_modules/*"]
ogp_site_url = html_baseurl
ogp_site_name = "vecgrad"
ogp_description_length = 200
ogp_enable_meta_description = True
ogp_social_cards = {"enable": False}
# The 404 page links assets absolutely; a local build serves the site from "/".
notfound_urls_prefix = (
    urlparse(html_baseurl).path
    if ("READTHEDOCS" in os.environ or "VECGRAD_DOCS_URL" in os.environ)
    else "/"
)
notfound_context = {
    "title": "Page not found",
    "body": (
        "<h1>Page not found</h1><p>No page lives at this address. Try the search box, "
        f'<a href="{notfound_urls_prefix}index.html">the start page</a> or '
        f'<a href="{notfound_urls_prefix}gallery/index.html">the examples</a>.</p>'
    ),
}


# -- What a reader gets beyond the pages (_ext/vecgrad_reader.py) ----------------------------------
# One install line, source links, the version stamp, notebooks and Colab links, llms.txt. Every
# address comes from the Source URL in pyproject.toml's [project.urls].

from vecgrad_reader import (  # noqa: F401
    INSTALL,
    NOTEBOOK_CELL,
    REPOSITORY,
    linkcode_resolve,
    source_commit,
    stamp,
)

vecgrad_commit = source_commit()  # what the [GitHub] links of API entries point at

# The first cell of every notebook sphinx-gallery writes (pages' notebooks get it too).
sphinx_gallery_conf["first_notebook_cell"] = NOTEBOOK_CELL
html_context = {"vecgrad_stamp": stamp(release)}
html_theme_options |= {
    # furo's "view" and "edit" buttons on every page built from a file of the repository.
    "source_repository": REPOSITORY + "/",
    "source_branch": "main",
    "source_directory": "docs/",
    "footer_icons": [
        {
            "name": "vecgrad on GitHub",
            "url": REPOSITORY,
            "class": "",
            "html": (
                '<svg stroke="currentColor" fill="currentColor" stroke-width="0" '
                'viewBox="0 0 16 16" aria-hidden="true"><path fill-rule="evenodd" d="M8 0C3.58 0 '
                "0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49"
                "-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63"
                "-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64"
                "-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82"
                ".64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 "
                "1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 "
                "1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0 0 16 8c0-4.42-"
                '3.58-8-8-8z"></path></svg>'
            ),
        }
    ],
}
html_js_files = ["vecgrad.js"]
llms_txt_summary = (
    "vecgrad: PyTorch autograd for vector-valued functions (VJPs, JVPs, Jacobians, per-sample "
    "gradients, Hessians), a guide with executed examples and a small typed library. "
    f"Install: {INSTALL}"
)

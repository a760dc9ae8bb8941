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
    "myst_nb",  # loads myst_parser itself: do not list it too
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "sphinx_design",
    "sphinxext.opengraph",
    "notfound.extension",
    "sphinx_sitemap",
    "vecgrad_docs",
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
    # Examples run one after another: "parallel" re-imports torch per worker (3 s less for a cold
    # build on 2 cores, 0.5 s more for every rebuild). No sg_execution_times pages: they load
    # scripts from CDNs and change every run; each example page shows its own running time.
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
html_copy_source = False
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

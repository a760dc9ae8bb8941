"""What a reader of the vecgrad site gets beyond the pages: install line, source, notebooks.

Every address comes from the ``Source`` URL of ``pyproject.toml``'s ``[project.urls]``
(:data:`REPOSITORY`). The install line (:data:`INSTALL`) is the same in the README, on the landing
page and the gallery index (the ``vecgrad-install`` directive) and in the first cell of every
notebook. The build writes a ``notebooks/`` folder into the site: each gallery example's notebook
and one for each executed MyST page, every one starting with that cell. The Pages workflow
publishes the folder to the :data:`NOTEBOOK_BRANCH` branch, where the "Open in Colab" links point
(Colab opens notebooks from GitHub only). Also here: the stamp in every page's footer
(:func:`stamp`), the commit that API entries link to (:func:`revision`, :func:`linkcode_resolve`),
furo's view/edit buttons for pages built from gallery sources, and dark copies of the gallery's
thumbnails.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
import json
import os
import platform
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "urls"
]["Source"].rstrip("/")
# torch imports numpy when it is there and warns "Failed to initialize NumPy" when it is not;
# matplotlib draws the figures and scipy is used by one example.
PACKAGES = ("torch", "numpy", "scipy", "matplotlib", f"git+{REPOSITORY}")
INSTALL = "python -m pip install " + " ".join(PACKAGES)
NOTEBOOK_CELL = "%pip install " + " ".join(PACKAGES)
NOTEBOOK_BRANCH = "notebooks"  # .github/workflows/docs.yml pushes docs/_build/html/notebooks there
NOTEBOOKS = "notebooks"  # the folder of the site that holds them
SLUG = REPOSITORY.removeprefix("https://github.com/")


def colab_url(notebook: str) -> str:
    """Colab's address of ``notebook``, a path inside the site's ``notebooks/`` folder."""
    return f"https://colab.research.google.com/github/{SLUG}/blob/{NOTEBOOK_BRANCH}/{notebook}"


# -- The commit and date the site is built from ---------------------------------------------------


def revision(root: Path = ROOT) -> dict[str, str]:
    """``VECGRAD_COMMIT`` and ``SOURCE_DATE_EPOCH`` (its commit time) of the checkout at ``root``.

    Empty outside a git checkout. ``vecgrad_site.build`` passes them to Sphinx, so a copy of
    the checkout without ``.git`` builds the same pages as the checkout.
    """
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%H %ct"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return {}
    commit, _, epoch = done.stdout.strip().partition(" ")
    return {"VECGRAD_COMMIT": commit, "SOURCE_DATE_EPOCH": epoch} if epoch else {}


def source_commit() -> str:
    """The commit API entries link to: the environment's, else the checkout's, else main."""
    return os.environ.get("VECGRAD_COMMIT") or revision().get("VECGRAD_COMMIT", "main")


def stamp(release: str) -> str:
    """ "vecgrad X.Y.Z · examples executed with torch A.B.C (cpu), Python 3.x.y · built DATE".

    Read without importing torch (a rebuild with nothing to run stays fast). The examples run on
    the default device, the CPU; a CUDA build of torch is named as such. The date is the commit's
    (``SOURCE_DATE_EPOCH``), so two builds of one commit give the same pages.
    """
    version, _, local = metadata.version("torch").partition("+")
    build = "cpu" if local in ("", "cpu") else f"{local} build, run on the cpu"
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or revision().get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.UTC) if epoch else None
    day = when.date().isoformat() if when else "from an uncommitted copy"
    return (
        f"vecgrad {release} · examples executed with torch {version} ({build}), "
        f"Python {platform.python_version()} · built {day}"
    )


# -- API entries linked to their code on GitHub ---------------------------------------------------


def linkcode_resolve(domain: str, info: dict[str, str]) -> str | None:
    """``sphinx.ext.linkcode``: the lines of a vecgrad object at the commit the site is built from.

    A dataclass field has no source of its own: it links to its line in the class. autodoc has
    imported vecgrad by the time an API page is read, so this costs no import.
    """
    if domain != "py" or not info["module"].startswith("vecgrad"):
        return None
    owner: Any = None
    obj: Any = importlib.import_module(info["module"])
    for part in info["fullname"].split("."):
        owner, obj = obj, getattr(obj, part, None)
    field = info["fullname"].rpartition(".")[2]
    try:
        source = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
        lines, start = inspect.getsourcelines(source)
    except TypeError:  # a field or a value
        if not inspect.isclass(owner):
            return None
        source, (lines, start) = owner, inspect.getsourcelines(owner)
        found = [i for i, line in enumerate(lines) if re.match(rf"\s+{field}\s*:", line)]
        if not found:
            return None
        start, lines = start + found[0], lines[found[0] : found[0] + 1]
    path = Path(inspect.getsourcefile(source) or "").resolve()
    package = Path(importlib.import_module("vecgrad").__file__ or "").parent.resolve()
    rel = path.relative_to(package.parent).as_posix()
    return f"{REPOSITORY}/blob/{source_commit()}/src/{rel}#L{start}-L{start + len(lines) - 1}"


def label_github_links(app: Sphinx, doctree: nodes.document) -> None:
    """Name linkcode's links "[GitHub]": viewcode's "[source]" (the code on this site) stays."""
    for ref in doctree.findall(nodes.reference):
        if ref.get("refuri", "").startswith(f"{REPOSITORY}/blob/") and ref.children:
            inline = ref.children[0]
            if isinstance(inline, nodes.inline) and "viewcode-link" in inline["classes"]:
                inline.children = [nodes.Text("[GitHub]")]
                inline["classes"].append("vecgrad-github-link")


# -- The install line ------------------------------------------------------------------------------


class InstallDirective(Directive):
    """``vecgrad-install``: the install line as a shell code block."""

    def run(self) -> list[nodes.Node]:
        block = nodes.literal_block(INSTALL, INSTALL, language="bash")
        return [block]


# -- Links to notebooks and Colab, source buttons --------------------------------------------------


def gallery_source(docname: str) -> str | None:
    """The repository path of the gallery file a page is built from, or None."""
    if not docname.startswith("gallery/"):
        return None
    rel = docname.removeprefix("gallery/")
    if (ROOT / "gallery" / f"{rel}.py").is_file():
        return f"gallery/{rel}.py"
    readme = rel.removesuffix("index") + "README.rst"
    return (
        f"gallery/{readme}"
        if rel.endswith("index") and (ROOT / "gallery" / readme).is_file()
        else None
    )


def executed_page(app: Sphinx, docname: str) -> bool:
    """A MyST page executed by myst-nb (front matter ``file_format: mystnb``)."""
    path = Path(app.srcdir) / f"{docname}.md"
    return path.is_file() and "file_format: mystnb" in path.read_text(encoding="utf-8")[:300]


def _link(text: str, uri: str, *classes: str) -> nodes.reference:
    return nodes.reference("", text, refuri=uri, classes=list(classes))


def add_notebook_links(app: Sphinx, doctree: nodes.document) -> None:
    """ "Open in Colab" on gallery examples; notebook download and Colab on executed pages."""
    docname = app.env.docname
    source = gallery_source(docname)
    if source and source.endswith(".py"):
        colab = colab_url(f"{docname}.ipynb")
        for footer in doctree.findall(nodes.container):
            if "sphx-glr-footer" in footer["classes"]:
                item = nodes.container(classes=["sphx-glr-download", "vecgrad-colab"])
                item += nodes.paragraph("", "", _link("Open in Colab", colab))
                footer += item
                break
        for note in doctree.findall(nodes.note):
            if "sphx-glr-download-link-note" in note["classes"]:
                paragraph = note.next_node(nodes.paragraph)
                if paragraph is not None:
                    paragraph += [
                        nodes.Text(" Or "),
                        _link("open it in Colab", colab),
                        nodes.Text("."),
                    ]
                break
    elif executed_page(app, docname):
        up = "../" * docname.count("/")
        links = nodes.paragraph(classes=["vecgrad-notebook-links"])
        links += nodes.Text("Run this page yourself: ")
        links += _link("download it as a notebook", f"{up}{NOTEBOOKS}/{docname}.ipynb", "download")
        links += nodes.Text(", or ")
        links += _link("open it in Colab", colab_url(f"{docname}.ipynb"))
        links += nodes.Text(".")
        section = doctree.next_node(nodes.section)
        if section is not None:
            title = section.next_node(nodes.title)
            section.insert(section.index(title) + 1 if title is not None else 0, links)


def source_buttons(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """furo's view/edit buttons on gallery pages point at the example or README they come from
    (the ``.rst`` pages that sphinx-gallery writes are not in the repository)."""
    source = "CHANGELOG.md" if pagename == "changelog" else gallery_source(pagename)
    if source and context.get("page_source_suffix"):
        context["theme_source_view_link"] = f"{REPOSITORY}/blob/main/{source}?plain=true"
        context["theme_source_edit_link"] = f"{REPOSITORY}/edit/main/{source}"


# -- The notebooks folder --------------------------------------------------------------------------


ROLE = re.compile(r"\{(?P<role>[a-z:]+)\}`(?P<text>[^`]+)`")


def plain_role(found: re.Match[str]) -> str:
    """A MyST role as Jupyter shows it: its text; code (``{func}``, ...) as inline code."""
    text = found["text"]
    shown = re.sub(r"\s*<[^>]*>$", "", text) if text.endswith(">") else text
    if shown.startswith("~"):
        shown = shown.rpartition(".")[2]
    return shown if found["role"] in ("term", "ref", "doc", "math") else f"`{shown}`"


def page_notebook(path: Path) -> dict[str, Any]:
    """A MyST page as a notebook (myst-nb's own reader), the install cell first; roles, which
    Jupyter does not know, become their text."""
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook

    notebook = read_myst_markdown_notebook(path.read_text(encoding="utf-8"))
    notebook.metadata.pop("file_format", None)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = ROLE.sub(plain_role, cell.source)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(NOTEBOOK_CELL))
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number}"  # fixed ids: the same file from every build
    nbformat.validate(notebook)
    return dict(notebook)


def write_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Write ``notebooks/`` into the site: the gallery's notebooks and the executed pages'."""
    if exception is not None or app.builder.format != "html":
        return
    out, src = Path(app.outdir) / NOTEBOOKS, Path(app.srcdir)
    for docname in sorted(app.env.found_docs):
        target = out / f"{docname}.ipynb"
        gallery = src / f"{docname}.ipynb"
        if gallery_source(docname) and gallery.is_file():
            text = gallery.read_text(encoding="utf-8")
        elif executed_page(app, docname):
            text = json.dumps(page_notebook(src / f"{docname}.md"), indent=1, ensure_ascii=False)
        else:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")


# -- Gallery thumbnails in light and dark ----------------------------------------------------------

THUMB = re.compile(r"(?P<folder>.*)/images/thumb/sphx_glr_(?P<name>.+)_thumb\.png")


def dark_thumbnails(app: Sphinx, doctree: nodes.document) -> None:
    """Give every gallery thumbnail a dark twin, drawn from the example's dark figure.

    sphinx-gallery scales the example's chosen figure into its thumbnail; the same is done here
    with the dark copy the scraper saved (``vecgrad_docs.light_dark_scraper``). Runs before
    Sphinx collects the page's images, so the new file is copied like any other.
    """
    from sphinx_gallery.gen_rst import scale_image

    conf = getattr(app.config, "sphinx_gallery_conf", {})
    width, height = conf.get("thumbnail_size", (400, 280))
    for image in list(doctree.findall(nodes.image)):
        found = THUMB.fullmatch(image["uri"])
        if not found or "only-light" in image["classes"]:
            continue
        folder = Path(app.srcdir) / found["folder"].lstrip("/")
        script = (
            ROOT / "gallery" / Path(found["folder"]).relative_to("/gallery") / f"{found['name']}.py"
        )
        number = (
            re.search(r"sphinx_gallery_thumbnail_number\s*=\s*(\d+)", script.read_text())
            if script.is_file()
            else None
        )
        figure = (
            folder
            / "images"
            / f"sphx_glr_{found['name']}_{int(number[1]) if number else 1:03d}_dark.png"
        )
        if not figure.is_file():
            continue  # no figure: sphinx-gallery's placeholder serves both themes
        dark = folder / "images" / "thumb" / f"sphx_glr_{found['name']}_thumb_dark.png"
        if not dark.is_file() or dark.stat().st_mtime < figure.stat().st_mtime:
            partial = dark.with_suffix(f".{os.getpid()}.png")
            scale_image(str(figure), str(partial), width, height)
            partial.replace(dark)  # atomic: parallel readers share thumbnails
        twin = image.deepcopy()
        twin["uri"] = image["uri"].replace("_thumb.png", "_thumb_dark.png")
        twin["classes"].append("only-dark")
        image["classes"].append("only-light")
        image.parent.insert(image.parent.index(image) + 1, twin)


def setup(app: Sphinx) -> dict[str, Any]:
    # The API pages' [GitHub] links name the commit (conf.py sets it): a new commit re-reads
    # every page (nothing is executed again: sphinx-gallery and jupyter-cache key on the code).
    app.add_config_value("vecgrad_commit", "main", "env", types=frozenset({str}))
    app.add_directive("vecgrad-install", InstallDirective)
    # Before Sphinx's image collector (priority 500) copies the page's images.
    app.connect("doctree-read", dark_thumbnails, priority=400)
    app.connect("doctree-read", add_notebook_links)
    # After sphinx.ext.linkcode's own handler (priority 500) added the links.
    app.connect("doctree-read", label_github_links, priority=600)
    app.connect("html-page-context", source_buttons)
    app.connect("build-finished", write_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

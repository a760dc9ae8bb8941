"""What a reader gets beyond the pages: one install line, source links, the stamp, notebooks.

The install line and every address come from ``vecgrad_reader`` (``docs/_ext``), which reads the
repository's URL from ``pyproject.toml``. Checked here: the line is the same in the README, on the
site and in the first cell of every notebook, and that cell installs every package the notebook
imports; every Colab link points at a notebook the build wrote and the Pages workflow publishes;
every page from a document links its source and shows the stamp; API entries link their lines on
GitHub; thumbnails have dark twins; llms.txt, CITATION.cff and the changelog are there; and one
executed page's notebook runs top to bottom (nbclient).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import yaml
from bs4 import BeautifulSoup
from vecgrad_reader import (
    INSTALL,
    NOTEBOOK_BRANCH,
    NOTEBOOK_CELL,
    NOTEBOOKS,
    PACKAGES,
    REPOSITORY,
    ROLE,
    colab_url,
)
from vecgrad_site import ROOT, no_problems, resolve

from .test_metadata import from_document

# Import name -> what the install line installs for it.
PROVIDES = {"torch": "torch", "numpy": "numpy", "scipy": "scipy", "matplotlib": "matplotlib"}
PROVIDES["vecgrad"] = f"git+{REPOSITORY}"
EXECUTED = ("index", "choosing", "pitfalls", "concepts/composing", "concepts/graph")
EXECUTED += ("concepts/jacobians",)


def notebooks(site_dir: Path) -> dict[str, nbformat.NotebookNode]:
    """Every notebook of the site's notebooks folder, by its path in that folder."""
    folder = site_dir / NOTEBOOKS
    return {
        path.relative_to(folder).as_posix(): nbformat.read(path, as_version=4)
        for path in sorted(folder.rglob("*.ipynb"))
    }


def imported(notebook: nbformat.NotebookNode) -> set[str]:
    """Top-level names of the modules a notebook's code cells import (magics left out)."""
    names = set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                names |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.partition(".")[0])
    return names - set(sys.stdlib_module_names)


def test_install_line_is_the_same_everywhere(parsed_pages: dict[str, BeautifulSoup]) -> None:
    """README, start page and gallery index show the line; no other line installs vecgrad."""
    assert INSTALL in (ROOT / "README.md").read_text(encoding="utf-8"), "README: not the line"
    shown = {
        rel: [pre.get_text().strip() for pre in page.select("pre")]
        for rel, page in parsed_pages.items()
    }
    shown_on = ("index.html", "gallery/index.html")
    problems = [f"{rel}: no {INSTALL!r}" for rel in shown_on if INSTALL not in shown[rel]]
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    lines = [("README.md", line.strip()) for line in readme]
    lines += [
        (rel, line.strip())
        for rel, blocks in shown.items()
        for b in blocks
        for line in b.splitlines()
    ]
    problems += [
        f"{where}: {line!r}"
        for where, line in lines
        if "pip install" in line and f"git+{REPOSITORY}" in line and line != INSTALL
    ]
    no_problems(problems, "install lines that differ from vecgrad_reader.INSTALL")


def test_every_notebook_starts_by_installing_what_it_imports(
    site_dir: Path, stats: Counter[str]
) -> None:
    found = notebooks(site_dir)
    gallery = sorted(
        p.relative_to(ROOT).with_suffix(".ipynb").as_posix()
        for p in (ROOT / "gallery").rglob("plot_*.py")
    )
    missing = sorted({*gallery, *(f"{doc}.ipynb" for doc in EXECUTED)} - set(found))
    assert not missing, f"not in {NOTEBOOKS}/: {missing}"
    problems = []
    for rel, notebook in found.items():
        first = notebook.cells[0]
        if first.cell_type != "code" or first.source.strip() != NOTEBOOK_CELL:
            problems.append(f"{rel}: first cell {first.source[:80]!r}")
        needed = {PROVIDES.get(name, f"(unknown: {name})") for name in imported(notebook)}
        problems += [f"{rel}: imports need {n}, not installed" for n in needed - set(PACKAGES)]
        markdown = "".join(c.source for c in notebook.cells if c.cell_type == "markdown")
        problems += [f"{rel}: MyST role {m[0]!r} left" for m in ROLE.finditer(markdown)][:3]
    stats["notebooks checked (install cell, imports)"] = len(found)
    no_problems(problems, "notebooks that do not install what they need")


def test_colab_links_open_the_built_notebooks(
    site_dir: Path, parsed_pages: dict[str, BeautifulSoup], stats: Counter[str]
) -> None:
    """Gallery examples and executed pages link Colab and the notebook; each target is built."""
    built, prefix = set(notebooks(site_dir)), colab_url("")
    problems, links = [], 0
    for rel, page in parsed_pages.items():
        doc = rel.removesuffix(".html")
        colab = {a["href"] for a in page.select("a[href]") if "colab.research" in a["href"]}
        links += len(colab)
        for href in colab:
            target = href.removeprefix(prefix)
            if not href.startswith(prefix) or target not in built:
                problems.append(f"{rel}: {href} -> no {NOTEBOOKS}/{target} in the site")
        example = (ROOT / f"{doc}.py").is_file() and doc.startswith("gallery/")
        if (example or doc in EXECUTED) and colab_url(f"{doc}.ipynb") not in colab:
            problems.append(f"{rel}: no Open in Colab link")
        if doc in EXECUTED:
            local = [resolve(rel, a["href"])[0] for a in page.select("a.download[href]")]
            if f"{NOTEBOOKS}/{doc}.ipynb" not in local:
                problems.append(f"{rel}: no download of {NOTEBOOKS}/{doc}.ipynb ({local})")
    stats["Colab links checked"] = links
    no_problems(problems, "Colab and notebook link problems")


def test_pages_workflow_publishes_the_notebooks_where_colab_looks() -> None:
    """docs.yml uploads the site's notebooks folder and pushes it to the branch of the links."""
    workflow = (ROOT / ".github/workflows/docs.yml").read_text(encoding="utf-8")
    assert f"path: docs/_build/html/{NOTEBOOKS}" in workflow
    assert f"HEAD:{NOTEBOOK_BRANCH}" in workflow
    assert f"/blob/{NOTEBOOK_BRANCH}/" in colab_url("x.ipynb")


def test_pages_link_their_source_and_show_the_stamp(
    parsed_pages: dict[str, BeautifulSoup], stats: Counter[str]
) -> None:
    version = metadata.version("vecgrad")
    pattern = re.compile(
        rf"vecgrad {re.escape(version)} · examples executed with torch \d+\.\d+\.\d+ \(cpu\), "
        r"Python 3\.\d+\.\d+ · built \d{4}-\d\d-\d\d"
    )
    problems = []
    for rel, page in parsed_pages.items():
        stamp = page.select_one(".vecgrad-stamp")
        if stamp is None or not pattern.fullmatch(stamp.get_text().strip()):
            problems.append(f"{rel}: stamp {stamp.get_text() if stamp else None!r}")
        if not page.select(f'footer .icons a[href="{REPOSITORY}"]'):
            problems.append(f"{rel}: no repository icon in the footer")
        if not from_document(rel):
            continue
        for kind, verb in (("view", "blob"), ("edit", "edit")):
            link = page.select_one(f".{kind}-this-page a[href]")
            href = str(link["href"]) if link else ""
            path = urlsplit(href).path.removeprefix(urlsplit(REPOSITORY).path + f"/{verb}/main/")
            if not href.startswith(f"{REPOSITORY}/{verb}/main/") or not (ROOT / path).is_file():
                problems.append(f"{rel}: {kind} link {href!r}")
    stats["pages checked for source links and stamp"] = len(parsed_pages)
    no_problems(problems, "pages without source links or stamp")


def test_api_entries_link_their_lines_on_github(
    parsed_pages: dict[str, BeautifulSoup], stats: Counter[str]
) -> None:
    line_range = re.compile(
        rf"{re.escape(REPOSITORY)}/blob/(?:[0-9a-f]{{40}}|main)/(src/vecgrad/\w+\.py)#L(\d+)-L(\d+)"
    )
    problems, checked = [], 0
    for rel, page in parsed_pages.items():
        if not rel.startswith("api/generated/"):
            continue
        for signature in page.select("dt.sig[id]"):
            name = str(signature["id"]).rpartition(".")[2]
            links = [a["href"] for a in signature.select("a[href]") if "github.com" in a["href"]]
            found = line_range.fullmatch(links[0]) if len(links) == 1 else None
            if found is None:
                problems.append(f"{rel}: {signature['id']}: GitHub links {links}")
                continue
            checked += 1
            lines = (ROOT / found[1]).read_text(encoding="utf-8").splitlines()
            code = "\n".join(lines[int(found[2]) - 1 : int(found[3])])
            if not re.search(rf"\b(?:def|class) {name}\b|^\s*{name}\b", code, re.MULTILINE):
                problems.append(f"{rel}: {links[0]} does not hold {name}")
    stats["API entries linked to GitHub"] = checked
    assert checked > 10, f"only {checked} API entries link to GitHub"
    no_problems(problems, "API entries without a correct GitHub link")


def test_thumbnails_have_dark_twins(site_dir: Path, parsed_pages: dict[str, BeautifulSoup]) -> None:
    """Every gallery thumbnail drawn from a figure has a recoloured only-dark twin."""
    problems, twins = [], 0
    for rel, page in parsed_pages.items():
        for light in page.select(".sphx-glr-thumbcontainer img.only-light"):
            dark = light.find_next_sibling("img")
            light_file = site_dir / str(resolve(rel, light["src"])[0])
            dark_file = site_dir / str(resolve(rel, dark["src"])[0]) if dark else None
            if (
                dark is None
                or "only-dark" not in dark.get("class", [])
                or dark_file is None
                or not dark_file.is_file()
                or dark_file.read_bytes() == light_file.read_bytes()
            ):
                problems.append(f"{rel}: {light['src']} has no dark twin")
            twins += 1
    api = [
        rel for rel, p in parsed_pages.items() if rel.startswith("api/") and p.select(".only-dark")
    ]
    assert api, "no API page shows a dark thumbnail"
    assert twins > 20, f"only {twins} thumbnails with a dark twin"
    no_problems(problems, "thumbnails without a dark twin")


def test_llms_txt_citation_and_changelog(
    site_dir: Path, parsed_pages: dict[str, BeautifulSoup]
) -> None:
    llms = (site_dir / "llms.txt").read_text(encoding="utf-8")
    full = (site_dir / "llms-full.txt").read_text(encoding="utf-8")
    assert llms.startswith("# vecgrad"), llms[:500]
    assert "pitfalls" in llms, llms[:500]
    assert "Reconstructing a full Jacobian" in full
    assert "jacobian_sparsity" in full
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["version"] == metadata.version("vecgrad")
    assert citation["repository-code"] == REPOSITORY
    changelog = parsed_pages["changelog.html"].get_text()
    heading = next(
        line
        for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    )
    assert heading.removeprefix("## ") in changelog


def test_code_blocks_scroll_instead_of_wrapping(parsed_pages: dict[str, BeautifulSoup]) -> None:
    """A wrapped line would restart at column 0; scrolling blocks get a tab stop (vecgrad.js)."""
    css = (ROOT / "docs/_static/vecgrad.css").read_text(encoding="utf-8")
    rule = re.search(r"\.highlight pre \{([^}]*)\}", css)
    assert rule
    assert "white-space: pre;" in rule[1]
    assert "overflow-x: auto" in rule[1]
    assert "pre-wrap" not in css
    without = [
        rel
        for rel, page in parsed_pages.items()
        if page.select("div.highlight pre")
        and not any(
            urlsplit(s.get("src", "")).path.endswith("vecgrad.js") for s in page.select("script")
        )
    ]
    no_problems(without, "pages with code but without vecgrad.js")


def test_an_executed_page_runs_as_a_notebook(site_dir: Path, tmp_path: Path) -> None:
    """The downloaded concepts/jacobians notebook runs top to bottom in a fresh kernel.

    Its first cell installs from the network; here vecgrad and torch are installed already, so
    the test checks that cell and runs the rest.
    """
    from nbclient import NotebookClient

    notebook = nbformat.read(site_dir / NOTEBOOKS / "concepts/jacobians.ipynb", as_version=4)
    assert notebook.cells[0].source == NOTEBOOK_CELL
    notebook.cells = notebook.cells[1:]
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 5
    assert all(cell.get("execution_count") for cell in code)
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors


def test_pre_commit_pins_match_the_constraints() -> None:
    """The ruff and mypy hooks run the versions `nox -s lint` installs from constraints.txt."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    revs = {repo["repo"].rpartition("/")[2]: repo["rev"] for repo in config["repos"]}
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line
    )
    assert revs["ruff-pre-commit"] == f"v{pins['ruff']}"
    assert revs["mirrors-mypy"] == f"v{pins['mypy']}"
    mypy = next(repo for repo in config["repos"] if repo["repo"].endswith("mirrors-mypy"))
    extra = dict(dep.split("==") for dep in mypy["hooks"][0]["additional_dependencies"])
    assert extra == {name: pins[name] for name in extra}

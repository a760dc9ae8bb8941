"""The gallery's downloads, fetched over HTTP from the served site as a reader gets them.

Every example page offers its ``.py`` and ``.ipynb``; the gallery offers zips of all of them.
Each download answers 200 with content, the notebooks are notebooks, the zips hold the examples,
and every downloaded script runs to completion on its own, assertions included.
"""

from __future__ import annotations

import io
import json
import posixpath
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, ParsedPage, checkout_env, fetch

pytestmark = pytest.mark.browser

EXAMPLE_TIMEOUT_S = 120
DOWNLOAD_SUFFIXES = (".py", ".ipynb", ".zip")


def _target(page: str, href: str) -> str:
    """A relative href of ``page`` as a path from the site root."""
    path = href.split("#", 1)[0].split("?", 1)[0]
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), path))


@pytest.fixture(scope="module")
def offered(parsed_pages: dict[str, ParsedPage]) -> dict[str, list[str]]:
    """Gallery page -> the site paths of the files it offers for download."""
    return {
        rel: [_target(rel, href) for href in page.downloads]
        for rel, page in parsed_pages.items()
        if rel.startswith("gallery/") and page.downloads
    }


@pytest.fixture(scope="module")
def downloads(
    offered: dict[str, list[str]], site_url: str, stats: Counter[str]
) -> dict[str, tuple[int, bytes]]:
    """Every offered file fetched from the local server: site path -> (status, body)."""
    targets = sorted({target for targets in offered.values() for target in targets})
    fetched = {target: fetch(site_url + target) for target in targets}
    stats["downloads fetched"] = len(fetched)
    return fetched


def _examples(offered: dict[str, list[str]]) -> dict[str, list[str]]:
    """Example pages: gallery pages offering a script."""
    return {
        rel: targets for rel, targets in offered.items() if any(t.endswith(".py") for t in targets)
    }


def test_every_example_offers_its_script_and_notebook(offered: dict[str, list[str]]) -> None:
    examples = _examples(offered)
    problems = [
        f"{rel}: no {suffix} download (offers {targets})"
        for rel, targets in examples.items()
        for suffix in (".py", ".ipynb")
        if not any(target.endswith(suffix) for target in targets)
    ]
    assert not problems, "\n".join(problems)
    # Every script under gallery/ is an example page offering that very file.
    sources = sorted(p.name for p in (REPO_ROOT / "gallery").rglob("*.py"))
    scripts = sorted(
        posixpath.basename(t) for ts in examples.values() for t in ts if t.endswith(".py")
    )
    assert scripts == sources, f"gallery scripts {sources} but pages offer {scripts}"
    assert examples, "no gallery page offers a .py download"
    zips = [t for targets in offered.values() for t in targets if t.endswith(".zip")]
    index_zips = [t for t in offered.get("gallery/index.html", []) if t.endswith(".zip")]
    assert index_zips, f"gallery/index.html offers no zip of all examples (zips seen: {zips})"


def test_downloads_are_served(
    offered: dict[str, list[str]], downloads: dict[str, tuple[int, bytes]]
) -> None:
    problems = [
        f"{target}: HTTP {status}, {len(body)} bytes"
        for target, (status, body) in downloads.items()
        if status != 200 or not body
    ]
    problems += [
        f"{target}: unexpected download type"
        for target in downloads
        if not target.endswith(DOWNLOAD_SUFFIXES)
    ]
    assert not problems, f"{len(problems)} broken downloads:\n  " + "\n  ".join(problems)


def _notebook_problems(raw: bytes) -> list[str]:
    try:
        notebook = json.loads(raw)
    except ValueError as err:
        return [f"not JSON: {err}"]
    if not isinstance(notebook, dict):
        return ["not a JSON object"]
    problems = []
    if not isinstance(notebook.get("nbformat"), int):
        problems.append("no integer nbformat")
    cells = notebook.get("cells")
    if not isinstance(cells, list) or not cells:
        return [*problems, "no cells list"]
    kinds = Counter(cell.get("cell_type") for cell in cells if isinstance(cell, dict))
    if not kinds["code"]:
        problems.append(f"no code cell (cell types {dict(kinds)})")
    problems += [
        f"cell {i} lacks cell_type/source"
        for i, cell in enumerate(cells)
        if not isinstance(cell, dict) or "cell_type" not in cell or "source" not in cell
    ]
    return problems


def test_notebooks_are_notebooks(downloads: dict[str, tuple[int, bytes]]) -> None:
    notebooks = {t: body for t, (_, body) in downloads.items() if t.endswith(".ipynb")}
    problems = [
        f"{target}: {problem}"
        for target, body in notebooks.items()
        for problem in _notebook_problems(body)
    ]
    assert notebooks, "no notebook offered"
    assert not problems, "\n".join(problems)


def test_zips_hold_every_example(downloads: dict[str, tuple[int, bytes]]) -> None:
    scripts = {body for t, (_, body) in downloads.items() if t.endswith(".py")}
    notebooks = {t for t in downloads if t.endswith(".ipynb")}
    problems = []
    zipped_scripts: set[bytes] = set()
    zipped_notebooks: set[str] = set()
    for target, (_, body) in downloads.items():
        if not target.endswith(".zip"):
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                if archive.testzip() is not None or not archive.namelist():
                    problems.append(f"{target}: corrupt or empty")
                    continue
                for name in archive.namelist():
                    if name.endswith(".py"):
                        zipped_scripts.add(archive.read(name))
                    elif name.endswith(".ipynb"):
                        zipped_notebooks.add(posixpath.basename(name))
        except zipfile.BadZipFile as err:
            problems.append(f"{target}: not a zip ({err})")
    if scripts - zipped_scripts:
        problems.append(f"{len(scripts - zipped_scripts)} example scripts are in no zip")
    missing = {posixpath.basename(t) for t in notebooks} - zipped_notebooks
    if missing:
        problems.append(f"notebooks in no zip: {sorted(missing)}")
    assert not problems, "\n".join(problems)


def test_downloaded_examples_run(
    downloads: dict[str, tuple[int, bytes]],
    tmp_path: Path,
    stats: Counter[str],
) -> None:
    """Each downloaded script runs in an empty folder with ``python -W error``; no -O."""
    scripts = {t: body for t, (_, body) in downloads.items() if t.endswith(".py")}
    assert scripts, "no script offered"
    env = checkout_env(MPLBACKEND="Agg")
    problems = []
    start = time.perf_counter()
    for number, (target, body) in enumerate(sorted(scripts.items())):
        folder = tmp_path / f"example{number}"
        workdir = folder / "cwd"
        workdir.mkdir(parents=True)
        script = folder / posixpath.basename(target)
        script.write_bytes(body)
        try:
            result = subprocess.run(
                [sys.executable, "-W", "error", str(script)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=EXAMPLE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            problems.append(f"{target}: still running after {EXAMPLE_TIMEOUT_S} s")
            continue
        if result.returncode != 0:
            problems.append(f"{target}: exit {result.returncode}\n{result.stderr[-2000:]}")
        written = sorted(p.name for p in workdir.iterdir())
        if written:
            problems.append(f"{target}: wrote files into its working folder: {written}")
    stats["example scripts run"] = len(scripts)
    stats["seconds running example scripts"] = round(time.perf_counter() - start)
    assert not problems, "\n".join(problems)

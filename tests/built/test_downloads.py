"""The gallery's downloads: every example page offers its ``.py`` and ``.ipynb``, the gallery index
zips of all of them; the notebooks are valid notebooks, the zips hold every example, and every
offered script runs to completion on its own, assertions included.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import nbformat
import pytest
from bs4 import BeautifulSoup
from vecgrad_site import ROOT, no_problems, resolve


@pytest.fixture(scope="module")
def offered(parsed_pages: dict[str, BeautifulSoup]) -> dict[str, list[str]]:
    """Gallery page -> the site paths of the files it offers for download."""
    return {
        rel: found
        for rel, page in parsed_pages.items()
        if rel.startswith("gallery/")
        and (
            found := [
                str(resolve(rel, a["href"])[0]) for a in page.select("a[download], a.download")
            ]
        )
    }


@pytest.fixture(scope="module")
def downloads(
    offered: dict[str, list[str]], site_dir: Path, stats: Counter[str]
) -> dict[str, bytes]:
    """Every offered file: site path -> its bytes (empty when it is missing)."""
    files = {site_dir / target: target for targets in offered.values() for target in targets}
    stats["downloads checked"] = len(files)
    return {target: path.read_bytes() if path.is_file() else b"" for path, target in files.items()}


def named(downloads: dict[str, bytes], suffix: str) -> dict[str, bytes]:
    """The downloads of one type, by file name."""
    return {PurePosixPath(t).name: body for t, body in downloads.items() if t.endswith(suffix)}


def test_every_example_offers_its_script_and_notebook(offered: dict[str, list[str]]) -> None:
    examples = {rel: ts for rel, ts in offered.items() if any(t.endswith(".py") for t in ts)}
    problems = [
        f"{rel}: no {suffix} download (offers {targets})"
        for rel, targets in examples.items()
        for suffix in (".py", ".ipynb")
        if not any(target.endswith(suffix) for target in targets)
    ]
    no_problems(problems, "examples without their downloads")
    # Every script under gallery/ is an example page offering that very file.
    offered_scripts = sorted(
        PurePosixPath(t).name for ts in examples.values() for t in ts if t.endswith(".py")
    )
    assert offered_scripts == sorted(path.name for path in (ROOT / "gallery").rglob("*.py"))
    assert any(t.endswith(".zip") for t in offered.get("gallery/index.html", [])), "no zip of all"


def test_downloads_are_there(downloads: dict[str, bytes]) -> None:
    problems = [f"{target}: missing or empty" for target, body in downloads.items() if not body]
    odd = [t for t in downloads if not t.endswith((".py", ".ipynb", ".zip"))]
    no_problems(problems + [f"{t}: unexpected download type" for t in odd], "broken downloads")


def test_notebooks_are_notebooks(downloads: dict[str, bytes]) -> None:
    problems = []
    for name, body in named(downloads, ".ipynb").items():
        try:
            notebook = nbformat.reads(body.decode(), as_version=nbformat.NO_CONVERT)
            nbformat.validate(notebook)
        except (ValueError, nbformat.ValidationError) as err:
            problems.append(f"{name}: {err}")
        else:
            problems += (
                [] if any(c.cell_type == "code" for c in notebook.cells) else [f"{name}: no code"]
            )
    no_problems(problems, "invalid notebooks")
    assert named(downloads, ".ipynb"), "no notebook offered"


def test_zips_hold_every_example(downloads: dict[str, bytes]) -> None:
    zipped: dict[str, bytes] = {}
    for target, body in downloads.items():
        if target.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                assert archive.testzip() is None, f"{target}: corrupt"
                zipped |= {
                    PurePosixPath(name).name: archive.read(name) for name in archive.namelist()
                }
    offered = named(downloads, ".py") | named(downloads, ".ipynb")
    no_problems([name for name in offered if name not in zipped], "examples in no zip")
    no_problems(
        [name for name in named(downloads, ".py") if zipped[name] != offered[name]],
        "zipped scripts differ",
    )


def run_alone(script: Path) -> str | None:
    """Run ``script`` from an empty folder with ``python -W error``: what went wrong, or None."""
    (workdir := script.parent / "cwd").mkdir()
    try:
        done = subprocess.run(
            [sys.executable, "-W", "error", str(script)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return "still running after 300 s"
    written = sorted(path.name for path in workdir.iterdir())
    if done.returncode:
        return f"exit {done.returncode}\n{done.stderr[-2000:]}"
    return f"wrote files into its working folder: {written}" if written else None


def test_downloaded_examples_run(
    downloads: dict[str, bytes],
    tmp_path: Path,
    stats: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each offered script alone, two at a time (the two cores of the machines it runs on)."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("PYTHONOPTIMIZE", raising=False)
    scripts = [tmp_path / name / name for name in named(downloads, ".py")]
    for script in scripts:
        script.parent.mkdir()
        script.write_bytes(named(downloads, ".py")[script.name])
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = zip(scripts, pool.map(run_alone, scripts), strict=True)
        problems = [f"{script.name}: {problem}" for script, problem in outcomes if problem]
    stats["example scripts run"] = len(scripts)
    no_problems(problems, "examples failed on their own")
    assert scripts, "no script offered"

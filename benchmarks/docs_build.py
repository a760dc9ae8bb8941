"""Time the documentation build: cold, no change, one example edited, one page edited.

Each run works on a temporary copy of the checkout (the working tree is never touched) and builds
with the project's command (``sphinx-build -W --keep-going -b html``, ``-j auto`` unless told
otherwise). The log of each build says what it executed, so the script also checks that an edit
re-executes exactly the edited example or page. Prints each median against its goal::

    python benchmarks/docs_build.py            # 3 rounds
    python benchmarks/docs_build.py --rounds 1 --jobs 1
    nox -s bench_docs -- --rounds 1
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a checkout holds that the build does not read, and what a build writes.
IGNORE = shutil.ignore_patterns(
    ".git", ".nox", ".venv", "__pycache__", ".*_cache", "_build", "*.egg-info"
)
# The API stub pages in docs/api/generated are sources (committed); their backreferences are not.
GENERATED = ("docs/_build", "docs/gallery", "docs/api/generated/backreferences")
EXAMPLE = "gallery/02_jacobians/plot_01_reconstruct_jacobian.py"
PAGE = "docs/concepts/graph.md"
# Goals in seconds on 2 cores; None: no time goal, only "re-executes just the edited file".
GOALS: dict[str, float | None] = {
    "cold": 30.0,
    "no change": 3.0,
    "one example edited": 8.0,
    "one page edited": None,
}
EXECUTED_PAGE = re.compile(r"(\S+\.md): Executing notebook")


class BuildError(RuntimeError):
    """sphinx-build failed; the message ends with its log."""


@dataclass
class Build:
    seconds: float
    examples: list[str]  # example scripts executed
    pages: list[str]  # notebook pages executed


def copy_checkout(dest: Path) -> Path:
    """A copy of the checkout's sources at ``dest``, with nothing a build wrote (a cold build)."""
    shutil.copytree(ROOT, dest, ignore=IGNORE, symlinks=True)
    for rel in GENERATED:
        shutil.rmtree(dest / rel, ignore_errors=True)
    return dest


def checksums(copy: Path) -> dict[Path, int]:
    """sphinx-gallery writes ``<example>.py.md5`` beside its copy of each example it executes."""
    return {path: path.stat().st_mtime_ns for path in (copy / "docs").glob("gallery/**/*.py.md5")}


def sphinx(copy: Path, jobs: str) -> Build:
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html"]
    if jobs != "1":
        command += ["-j", jobs]
    command += ["-d", "docs/_build/doctrees", "docs", "docs/_build/html"]
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "MPLBACKEND": "Agg"}
    before = checksums(copy)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise BuildError(
            f"{' '.join(command)} failed in {copy} (exit {result.returncode}):\n{log[-4000:]}"
        )
    executed = [path for path, mtime in checksums(copy).items() if before.get(path) != mtime]
    return Build(
        seconds,
        sorted(path.name.removesuffix(".md5") for path in executed),
        sorted(Path(p).name for p in set(EXECUTED_PAGE.findall(log))),
    )


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def one_round(jobs: str, number: int) -> dict[str, Build]:
    """One cold build, then the three incremental ones, on a fresh copy."""
    builds = {}
    with tempfile.TemporaryDirectory(prefix="vecgrad-docs-bench-") as tmp:
        copy = copy_checkout(Path(tmp) / "repo")
        builds["cold"] = sphinx(copy, jobs)
        builds["no change"] = sphinx(copy, jobs)
        # A change to the code makes sphinx-gallery's checksum of the script differ.
        append(copy / EXAMPLE, f"\nprint('edited {number}')\n")
        builds["one example edited"] = sphinx(copy, jobs)
        # A new code cell changes the notebook's code, which is what jupyter-cache hashes.
        append(copy / PAGE, f"\n```{{code-cell}} ipython3\nedited = {number}\n```\n")
        builds["one page edited"] = sphinx(copy, jobs)
    return builds


def check_executed(name: str, build: Build) -> list[str]:
    expected: dict[str, tuple[list[str], list[str]]] = {
        "no change": ([], []),
        "one example edited": ([Path(EXAMPLE).name], []),
        "one page edited": ([], [Path(PAGE).name]),
    }
    if name not in expected:
        return []
    examples, pages = expected[name]
    problems = []
    if build.examples != examples:
        problems.append(f"{name}: executed examples {build.examples}, expected {examples}")
    if build.pages != pages:
        problems.append(f"{name}: executed pages {build.pages}, expected {pages}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh copies to build (median)")
    parser.add_argument("--jobs", default="auto", help="sphinx-build -j (1: serial)")
    args = parser.parse_args()
    rounds = []
    for number in range(args.rounds):
        try:
            rounds.append(one_round(args.jobs, number))
        except BuildError as err:
            print(err, file=sys.stderr)
            return 2
        times = ", ".join(f"{name} {b.seconds:.1f} s" for name, b in rounds[-1].items())
        print(f"round {number + 1}/{args.rounds}: {times}", flush=True)
    cold = rounds[0]["cold"]
    print(f"\ncold build executed {len(cold.examples)} examples and {len(cold.pages)} pages")
    print(
        f"{'build':<20} {'median':>8} {'goal':>8}  result   (sphinx-build -j {args.jobs}, "
        f"{os.cpu_count()} cores, median of {args.rounds})"
    )
    problems = []
    for name, goal in GOALS.items():
        median = statistics.median(r[name].seconds for r in rounds)
        mark = "-" if goal is None else ("met" if median <= goal else "MISSED")
        goal_text = "-" if goal is None else f"{goal:.1f} s"
        print(f"{name:<20} {median:>6.1f} s {goal_text:>8}  {mark}")
        for r in rounds:
            problems += check_executed(name, r[name])
    for problem in problems:
        print(f"re-execution: {problem}")
    if not problems:
        print("re-execution: each edit re-executed only the edited example or page")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Time the documentation build: cold, no change, one example edited, one page edited.

Each round builds a fresh temporary copy of the checkout as ``nox -s docs`` does
(``vecgrad_site.build``), then edits it. The logs say what each build executed, so the script also
checks that an edit re-executes exactly the edited example or page. Prints each median (wall time,
and the CPU time of the build's processes) against its goal::

    nox -s bench_docs                         # 3 rounds
    nox -s bench_docs -- --rounds 1 -- -j 1   # extra sphinx-build options after --
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from vecgrad_site import BuildError, build, copy_checkout

EXAMPLE = "gallery/02_jacobians/plot_01_reconstruct_jacobian.py"
PAGE = "docs/concepts/graph.md"
# Goals in seconds on 2 cores, and what each build may execute (examples, pages).
GOALS = {
    "cold": (40.0, None),
    "no change": (3.0, ([], [])),
    "one example edited": (8.0, ([Path(EXAMPLE).name], [])),
    "one page edited": (None, ([], [Path(PAGE).name])),
}
EXECUTED_PAGE = re.compile(r"(\S+\.md): Executing notebook")


class Build(NamedTuple):
    seconds: float
    cpu: float  # user + system time of the build's processes
    executed: tuple[list[str], list[str]]  # example scripts, notebook pages


def timed_build(copy: Path, options: list[str]) -> Build:
    # sphinx-gallery writes ``<example>.py.md5`` beside its copy of each example it executes.
    def checksums() -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in (copy / "docs").glob("gallery/**/*.py.md5")}

    before, cpu, start = (
        checksums(),
        resource.getrusage(resource.RUSAGE_CHILDREN),
        time.perf_counter(),
    )
    log = build(copy, *options, capture=True)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    examples = sorted(
        p.name.removesuffix(".md5") for p, t in checksums().items() if before.get(p) != t
    )
    pages = sorted({Path(p).name for p in EXECUTED_PAGE.findall(log)})
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return Build(seconds, used, (examples, pages))


def one_round(number: int, options: list[str]) -> dict[str, Build]:
    """One cold build, then the three incremental ones, on a fresh copy."""
    with tempfile.TemporaryDirectory(prefix="vecgrad-docs-bench-") as tmp:
        copy = copy_checkout(Path(tmp) / "repo")
        builds = {"cold": timed_build(copy, options), "no change": timed_build(copy, options)}
        # A change to the code makes sphinx-gallery's checksum of the script differ.
        with (copy / EXAMPLE).open("a", encoding="utf-8") as example:
            example.write(f"\nprint('edited {number}')\n")
        builds["one example edited"] = timed_build(copy, options)
        # A new code cell changes the notebook's code, which is what jupyter-cache hashes.
        with (copy / PAGE).open("a", encoding="utf-8") as page:
            page.write(f"\n```{{code-cell}} ipython3\nedited = {number}\n```\n")
        builds["one page edited"] = timed_build(copy, options)
    return builds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh copies to build (median)")
    parser.add_argument("options", nargs="*", help="extra sphinx-build options (after --)")
    args = parser.parse_args()
    rounds = []
    for number in range(args.rounds):
        try:
            rounds.append(one_round(number, args.options))
        except BuildError as err:
            print(err, file=sys.stderr)
            return 2
        times = ", ".join(f"{name} {b.seconds:.1f} s" for name, b in rounds[-1].items())
        print(f"round {number + 1}/{args.rounds}: {times}", flush=True)
    examples, pages = rounds[0]["cold"].executed
    print(f"\ncold build executed {len(examples)} examples and {len(pages)} pages")
    setup = f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, median of {args.rounds}"
    print(f"{'build':<20} {'median':>8} {'cpu':>8} {'goal':>8}  result   ({setup} {args.options})")
    problems = []
    for name, (goal, executes) in GOALS.items():
        median = statistics.median(r[name].seconds for r in rounds)
        cpu = statistics.median(r[name].cpu for r in rounds)
        mark, goal_text = (
            ("-", "-") if goal is None else ("met" if median <= goal else "MISSED", f"{goal:.1f} s")
        )
        print(f"{name:<20} {median:>6.1f} s {cpu:>6.1f} s {goal_text:>8}  {mark}")
        problems += [
            f"{name}: executed {r[name].executed}, expected {executes}"
            for r in rounds
            if executes is not None and r[name].executed != executes
        ]
    print(
        "\n".join(problems) or "re-execution: each edit re-executed only the edited example or page"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Time the documentation build: cold, no change, one example edited, one page edited.

Each round builds a fresh temporary copy of the checkout as ``nox -s docs`` does
(``vecgrad_site.build``), then edits it, and checks from the logs that each edit re-executed
exactly the edited example or page. Prints each median (wall time, and the CPU time of the
build's processes) against its goal::

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

from vecgrad_site import BuildError, build, copy_checkout

EXAMPLE = "gallery/02_jacobians/plot_01_reconstruct_jacobian.py"
PAGE = "docs/concepts/graph.md"
# Goals in seconds on 2 cores, and what each build may execute (examples, pages); the edit that
# leads to it: a line printed (sphinx-gallery hashes the script), a code cell (jupyter-cache
# hashes the code).
GOALS = {
    "cold": (40.0, None, None, ""),
    "no change": (3.0, ([], []), None, ""),
    "one example edited": (8.0, ([Path(EXAMPLE).name], []), EXAMPLE, "\nprint('edited')\n"),
    "one page edited": (None, ([], [Path(PAGE).name]), PAGE, "\n```{code-cell} ipython3\n1\n```\n"),
}


def timed_build(copy: Path, options: list[str]) -> tuple[float, float, tuple[list[str], ...]]:
    """Wall time, CPU time of the build's processes, and the examples and pages it executed."""

    # sphinx-gallery writes ``<example>.py.md5`` beside its copy of each example it executes.
    def md5() -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in copy.glob("docs/gallery/**/*.py.md5")}

    before, cpu, start = md5(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    log = build(copy, *options, capture=True)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    examples = sorted(p.name.removesuffix(".md5") for p, t in md5().items() if before.get(p) != t)
    pages = sorted({Path(p).name for p in re.findall(r"(\S+\.md): Executing notebook", log)})
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return seconds, used, (examples, pages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh copies to build (median)")
    parser.add_argument("options", nargs="*", help="extra sphinx-build options (after --)")
    args, rounds = parser.parse_args(), []
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="vecgrad-docs-bench-") as tmp:
            copy, builds = copy_checkout(Path(tmp) / "repo"), {}
            for name, (_, _, edited, text) in GOALS.items():
                if edited:
                    with (copy / edited).open("a", encoding="utf-8") as file:
                        file.write(text)
                try:
                    builds[name] = timed_build(copy, args.options)
                except BuildError as err:
                    print(err, file=sys.stderr)
                    return 2
        rounds.append(builds)
        times = ", ".join(f"{name} {b[0]:.1f} s" for name, b in builds.items())
        print(f"round {number + 1}/{args.rounds}: {times}", flush=True)
    examples, pages = rounds[0]["cold"][2]
    print(f"\ncold build executed {len(examples)} examples and {len(pages)} pages")
    setup = f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, median of {args.rounds}"
    print(f"{'build':<20} {'median':>8} {'cpu':>8} {'goal':>8}  result   ({setup} {args.options})")
    problems = []
    for name, (goal, executes, _, _) in GOALS.items():
        median, cpu = (statistics.median(r[name][i] for r in rounds) for i in (0, 1))
        result = "-" if goal is None else "met" if median <= goal else "MISSED"
        goal_text = "-" if goal is None else f"{goal:.1f} s"
        print(f"{name:<20} {median:>6.1f} s {cpu:>6.1f} s {goal_text:>8}  {result}")
        problems += [
            f"{name}: executed {r[name][2]}, expected {executes}"
            for r in rounds
            if executes is not None and r[name][2] != executes
        ]
    print("\n".join(problems) or "re-execution: each edit re-executed only the edited file")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

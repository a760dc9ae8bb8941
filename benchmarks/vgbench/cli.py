"""Speed and memory of vecgrad against the plain PyTorch ways of computing the same derivatives.

Run ``python benchmarks/bench.py`` for the full run, ``--quick`` for a smoke run on tiny sizes
and ``--json PATH`` to also write the results. Every method is first checked against an
analytic reference (gradients through vecgrad's results against torch's route in float64);
then each case prints medians, the ratio of every method to the vecgrad method of that case,
and whether the speed and memory goals are met. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

import torch

import vecgrad as vg

from . import batched, curvature, estimators, graph_costs, jacobians, memory, per_sample, sparse
from .harness import RUN_TIME, Goal, Timing, family_goals, print_case, print_goals, time_case

# The families of timed cases, in the order they run; each has `cases(quick, device)`.
TIMED = (jacobians, batched, per_sample, curvature, estimators, graph_costs, sparse)
# The order their goals print in, with the memory goals (the memory table prints last). The
# sparse family also colours a large pattern and measures memory (`sparse.extras`) after its cases.
GOAL_ORDER = (jacobians, batched, per_sample, curvature, memory, estimators, graph_costs, sparse)


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one rep: a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--only",
        choices=[family.__name__.rsplit(".", 1)[1] for family in GOAL_ORDER],
        help="run one family of cases (with its goals) instead of all",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(
        f"vecgrad {vg.__version__}, torch {torch.__version__}, python {platform.python_version()}"
    )
    print(f"threads: {torch.get_num_threads()} (cpu: {cpu_name()}, {os.cpu_count()} logical cores)")
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "not available"
    print(f"devices: {', '.join(map(str, devices))} (cuda: {cuda})")

    timings: list[Timing] = []
    goals: list[Goal] = []
    memory_rows: dict[str, list[memory.MemoryRow]] = {}
    for device in devices:
        print(f"\n===== {device} =====")
        chosen = [f for f in TIMED if args.only in (None, f.__name__.rsplit(".", 1)[1])]
        families = {family: family.cases(args.quick, device) for family in chosen}
        found: dict[ModuleType, list[Goal]] = {}
        for family, cases in families.items():
            family_timings = []
            for case in cases:
                case_started = time.perf_counter()
                case_timings = time_case(case, RUN_TIME[args.quick], device)
                print_case(case, case_timings, time.perf_counter() - case_started)
                family_timings += case_timings
            found[family] = family_goals(str(device), cases, family_timings)
            timings += family_timings
            if family is batched:  # the grid's forward / reverse table, after its cases
                batched.print_grid(cases, family_timings)
        if sparse in found:
            found[sparse] += sparse.extras(args.quick, device, timings)
        if args.only in (None, "memory"):
            rows = memory.measure(args.quick, device)
            memory.print_table(device, args.quick, rows)
            memory_rows[str(device)] = rows
            found[memory] = memory.goals(str(device), rows)
        goals += [goal for family in GOAL_ORDER for goal in found.get(family, [])]
    print_goals(goals, args.quick)
    total = time.perf_counter() - started
    print(f"\ntotal time: {total:.1f} s")

    if args.json:
        results = {
            "torch": torch.__version__,
            "vecgrad": vg.__version__,
            "threads": torch.get_num_threads(),
            "devices": [str(d) for d in devices],
            "quick": args.quick,
            "timings": [asdict(t) for t in timings],
            "memory": {d: [asdict(r) for r in rows] for d, rows in memory_rows.items()},
            "goals": [asdict(g) for g in goals],
            "total_seconds": total,
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any(t.note.startswith("WRONG") for t in timings) else 0

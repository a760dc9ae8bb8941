"""Peak memory of chunked Jacobians: vg.jacobian (reverse and forward) and torch.func.jacrev
for each chunk size, and the goal that vg.jacobian's peak falls as the chunks shrink.

On the CPU the rows are measured in a fresh child process, which runs this module
(``python -m vgbench.memory [--quick]``) and prints them as JSON.
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.func import jacrev

import vecgrad as vg

from .harness import Func, Goal, Result, synchronize, wrong
from .problems import JACREV, mlp

MIB = 2**20


@dataclass(frozen=True)
class Sizes:
    size: int  # inputs and outputs of the Jacobian
    hidden: int  # so that a row's intermediate values outweigh the row itself
    chunk_sizes: tuple[int | None, ...]


SIZES = {  # True: --quick
    False: Sizes(size=512, hidden=2048, chunk_sizes=(None, 256, 64, 16)),
    True: Sizes(size=64, hidden=256, chunk_sizes=(None, 64, 16, 4)),
}

METHODS: dict[str, Callable[[Func, Tensor, int | None], Result]] = {
    "vg.jacobian(reverse)": lambda f, x, k: vg.jacobian(f, x, strategy="reverse", chunk_size=k),
    "vg.jacobian(forward)": lambda f, x, k: vg.jacobian(f, x, strategy="forward", chunk_size=k),
    JACREV: lambda f, x, k: jacrev(f, chunk_size=k)(x),
}


@dataclass
class MemoryRow:
    method: str
    chunk_size: int | None
    peak_bytes: int | None  # None when the method failed its check (not measured)
    note: str = ""


def _proc_status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise KeyError(key)


def peak_bytes(fn: Callable[[], Result], device: torch.device) -> tuple[int, Result]:
    """Peak memory of `fn()` above what was in use when it started, and its result.

    CUDA: torch's allocator statistics. CPU: the resident-set high-water mark (VmHWM), reset
    just before the call through /proc/self/clear_refs (Linux); see `rows_in_child`.
    """
    gc.collect()  # or garbage of earlier calls may be freed during this one
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base, result
    Path("/proc/self/clear_refs").write_text("5")  # "5" resets the high-water mark to the RSS
    base = _proc_status_bytes("VmRSS")
    result = fn()
    return _proc_status_bytes("VmHWM") - base, result


def rows_here(sizes: Sizes, device: torch.device) -> list[MemoryRow]:
    """Peak memory of each chunked Jacobian method for every chunk size, checking each result."""
    f, x, jac = mlp(sizes.size, sizes.size, sizes.hidden, device)
    rows = []
    for name, method in METHODS.items():
        method(f, x, None)  # warm-up: what a first call sets up once is not counted
        for k in sizes.chunk_sizes:
            try:
                peak, result = peak_bytes(functools.partial(method, f, x, k), device)
                torch.testing.assert_close(result, jac)
            except Exception as exc:
                rows.append(MemoryRow(name, k, None, wrong(exc)))
            else:
                rows.append(MemoryRow(name, k, peak))
    return rows


def rows_in_child(quick: bool, module: str = __name__) -> list[MemoryRow]:
    """`rows_here` on the CPU in a fresh process, where nothing else has touched memory:
    ``python -m module [--quick]``, which prints its rows as JSON on its last line.

    glibc's malloc is told to map every block of 64 KiB or more on its own and unmap it when
    freed, so memory released by the warm-up call leaves the resident set and the measured
    call's peak shows up in the high-water mark.
    """
    if not Path("/proc/self/clear_refs").exists():
        return []
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    probe = [sys.executable, "-m", module, *(["--quick"] if quick else [])]
    package_parent = Path(__file__).resolve().parents[1]  # where -m finds this package
    done = subprocess.run(
        probe, env=env, cwd=package_parent, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe ({' '.join(probe)}) failed:\n{done.stderr}")
    return [MemoryRow(**row) for row in json.loads(done.stdout.splitlines()[-1])]


def measure(quick: bool, device: torch.device) -> list[MemoryRow]:
    return rows_in_child(quick) if device.type == "cpu" else rows_here(SIZES[quick], device)


def peaks_mib(rows: Sequence[MemoryRow], method: str) -> list[float | None]:
    return [
        None if r.peak_bytes is None else r.peak_bytes / MIB for r in rows if r.method == method
    ]


def print_table(device: torch.device, quick: bool, rows: Sequence[MemoryRow]) -> None:
    sizes = SIZES[quick]
    n, h = sizes.size, sizes.hidden
    how = "max_memory_allocated" if device.type == "cuda" else "peak RSS, fresh process"
    print(
        f"\nmemory: Jacobian {n}->{n} (hidden {h}, float32; J itself is {n * n * 4 / MIB:.3g} MiB)"
    )
    print(f"  peak MiB above the memory in use before the call ({how})")
    if not rows:
        print("  not measured: needs CUDA or Linux /proc/self/clear_refs")
        return
    print(f"  {'method':<24}" + "".join(f"{'chunk ' + str(k):>12}" for k in sizes.chunk_sizes))
    for name in METHODS:
        cells = ("WRONG" if p is None else f"{p:.1f}" for p in peaks_mib(rows, name))
        print(f"  {name:<24}" + "".join(f"{c:>12}" for c in cells))
    for r in rows:
        if r.note:
            print(f"  {r.method}, chunk {r.chunk_size}: {r.note}")


def goals(device: str, rows: Sequence[MemoryRow]) -> list[Goal]:
    """vg.jacobian's peak falls as chunk_size falls: no step up by more than 1 MiB (allocator
    noise), and the smallest chunk below no chunking."""
    found = []
    for name in (n for n in METHODS if n.startswith("vg.")):
        measured_peaks = peaks_mib(rows, name)
        peaks = [p for p in measured_peaks if p is not None]
        falls = len(peaks) == len(measured_peaks) > 0 and peaks[-1] < peaks[0]
        falls = falls and all(b <= a + 1 for a, b in itertools.pairwise(peaks))
        chunks = ", ".join(str(r.chunk_size) for r in rows if r.method == name)
        measured = ", ".join(f"{p:.1f}" for p in peaks) + f" MiB at chunk_size {chunks}"
        found.append(
            Goal(
                device,
                f"{name}: peak falls as chunk_size falls",
                measured if peaks else "not measured",
                falls,
            )
        )
    return found


if __name__ == "__main__":  # the child process of rows_in_child
    measured = rows_here(SIZES["--quick" in sys.argv[1:]], torch.device("cpu"))
    print(json.dumps([asdict(r) for r in measured]))

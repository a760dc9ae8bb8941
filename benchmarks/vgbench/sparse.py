"""Sparse Jacobians (issue 18): vg.sparse_jacobian against the best of jacrev and jacfwd on a
tridiagonal function and a 2-D 5-point stencil, sparse-only times at about 10^5 inputs, the
colouring of a 10^6-point stencil, and the peak memory of sparse and dense Jacobians; and
vg.sparse_hessian with a star colouring against torch.func.hessian on an arrow Hessian.

On the CPU the memory rows are measured in a fresh child process, which runs this module
(``python -m vgbench.sparse [--quick]``) and prints them as JSON, as ``memory`` does.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import jacfwd, jacrev

import vecgrad as vg

from .harness import (
    Case,
    Func,
    Goal,
    Method,
    RatioGoal,
    Result,
    Timing,
    time_calls,
    wrong,
)
from .memory import MIB, MemoryRow, peak_bytes, rows_in_child
from .problems import JACFWD, JACREV

REUSED = "vg.sparse_jacobian(reused colouring)"
ONE_SHOT = "vg.sparse_jacobian(COO pattern, one-shot)"
DENSE = (JACREV, JACFWD)


@dataclass(frozen=True)
class Sizes:
    n: int  # tridiagonal inputs, and the stencil's grid is side x side with side^2 = n
    arrow_n: int  # inputs of the arrow-shaped Hessian
    side: int
    large_n: int  # sparse only: dense does not fit
    large_side: int
    coloring_side: int  # the stencil whose pattern is coloured, coloring_side^2 points
    coloring_reps: int


SIZES = {  # True: --quick
    False: Sizes(
        n=4096,
        side=64,
        arrow_n=2049,
        large_n=100_000,
        large_side=316,
        coloring_side=1000,
        coloring_reps=3,
    ),
    True: Sizes(
        n=64, side=8, arrow_n=65, large_n=1000, large_side=32, coloring_side=100, coloring_reps=1
    ),
}


@dataclass(frozen=True)
class Problem:
    name: str
    f: Func
    x: Tensor
    pattern: Tensor  # sparse COO bool, coalesced, built from indices (never dense)
    jacobian: Tensor  # the analytic Jacobian: sparse COO float32, the pattern's indices


def grid_pattern(
    height: int, width: int, offsets: Sequence[tuple[int, int]], device: torch.device
) -> Tensor:
    """COO bool pattern of a stencil on a height x width grid flattened row by row: output
    point p depends on input p + (di, dj) for each offset inside the grid."""
    points = torch.arange(height * width, device=device)
    i, j = points // width, points % width
    rows, cols = [], []
    for di, dj in offsets:
        ii, jj = i + di, j + dj
        inside = (ii >= 0) & (ii < height) & (jj >= 0) & (jj < width)
        rows.append(points[inside])
        cols.append((ii * width + jj)[inside])
    indices = torch.stack([torch.cat(rows), torch.cat(cols)])
    values = torch.ones(indices.shape[1], dtype=torch.bool, device=device)
    n = height * width
    return torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=False).coalesce()


def analytic(pattern: Tensor, diagonal: Tensor) -> Tensor:
    """The stencils' Jacobian: `diagonal` (float64) on the diagonal, 1 at the neighbours."""
    rows, cols = pattern.indices()
    values = torch.where(rows == cols, diagonal[rows], 1.0).float()
    return torch.sparse_coo_tensor(
        pattern.indices(), values, pattern.shape, check_invariants=False
    ).coalesce()


def tridiagonal(n: int, device: torch.device) -> Problem:
    """f(x)_i = x_{i-1} - 2 x_i + x_{i+1} + sin(x_i), with x_{-1} = x_n = 0."""
    torch.manual_seed(0)
    x = torch.randn(n, device=device)

    def f(x: Tensor) -> Tensor:
        padded = F.pad(x, (1, 1))
        return padded[:-2] - 2 * x + padded[2:] + torch.sin(x)

    pattern = grid_pattern(1, n, ((0, -1), (0, 0), (0, 1)), device)
    jac = analytic(pattern, -2 + torch.cos(x.double()))
    return Problem(f"tridiagonal, n={n}", f, x, pattern, jac)


def stencil(side: int, device: torch.device) -> Problem:
    """A nonlinear discrete Laplacian on a side x side grid, zero outside: lap(u) + u^3."""
    torch.manual_seed(0)
    x = torch.randn(side * side, device=device)

    def f(x: Tensor) -> Tensor:
        u = x.view(side, side)
        p = F.pad(u, (1, 1, 1, 1))
        lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * u
        return (lap + u**3).reshape(-1)

    offsets = ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))
    pattern = grid_pattern(side, side, offsets, device)
    jac = analytic(pattern, -4 + 3 * x.double() ** 2)
    return Problem(f"5-point stencil, {side}x{side} grid, n={side * side}", f, x, pattern, jac)


def sparse_methods(problem: Problem, dense: bool) -> tuple[Method, ...]:
    """vg.sparse_jacobian with a colouring made once (outside the timed call) and one-shot from
    the COO pattern; `dense`: checked as `.to_dense()` against the dense Jacobian."""
    f, x, pattern = problem.f, problem.x, problem.pattern
    coloring = vg.color_jacobian(pattern)
    expected = problem.jacobian.to_dense() if dense else problem.jacobian

    def densify(result: Result) -> Result:
        return result.to_dense() if dense and isinstance(result, Tensor) else result

    return (
        Method(
            REUSED, lambda: vg.sparse_jacobian(f, x, sparsity=coloring), expected, compare=densify
        ),
        Method(
            ONE_SHOT, lambda: vg.sparse_jacobian(f, x, sparsity=pattern), expected, compare=densify
        ),
    )


def dense_case(problem: Problem) -> Case:
    """Sparse against the best of jacrev and jacfwd: >= 300x with a reused colouring, >= 30x
    one-shot."""
    jac = problem.jacobian.to_dense()
    f, x = problem.f, problem.x
    methods = (
        Method(JACREV, lambda: jacrev(f)(x), jac),
        Method(JACFWD, lambda: jacfwd(f)(x), jac),
        *sparse_methods(problem, dense=True),
    )
    name = f"sparse Jacobian, {problem.name}"
    goals = (
        RatioGoal(f"{name}: best of jacrev, jacfwd / reused", DENSE, (REUSED,), 300, most=False),
        RatioGoal(f"{name}: best of jacrev, jacfwd / one-shot", DENSE, (ONE_SHOT,), 30, most=False),
    )
    return Case(name, "float32", methods, REUSED, goals)


def large_case(problem: Problem) -> Case:
    """Sparse only (the dense Jacobian does not fit), checked against the analytic one."""
    details = "float32; sparse only, checked against the analytic sparse Jacobian"
    methods = sparse_methods(problem, dense=False)
    return Case(f"sparse Jacobian, {problem.name}", details, methods, REUSED)


def arrow_hessian_case(n: int, device: torch.device) -> Case:
    """f(x) = sum_i softplus(x_0 x_i) + |x|^2 / 2, i >= 1: one global variable x_0 coupled to
    each local one, an arrow-shaped Hessian. The star colouring needs 2 colours where a column
    colouring needs n; checked against the analytic Hessian, ratios printed (no goal)."""
    torch.manual_seed(0)
    x = torch.randn(n, device=device)

    def f(x: Tensor) -> Tensor:
        return F.softplus(x[0] * x[1:]).sum() + x.square().sum() / 2

    # With s = sigmoid(x_0 x_i) and s' = s (1 - s): H_ii = 1 + s' x_0^2, H_0i = s + s' x_0 x_i,
    # H_00 = 1 + sum_i s' x_i^2.
    xd = x.double()
    s = torch.sigmoid(xd[0] * xd[1:])
    ds = s * (1 - s)
    hess = torch.diag(torch.cat([(1 + (ds * xd[1:] ** 2).sum()).view(1), 1 + ds * xd[0] ** 2]))
    hess[0, 1:] = hess[1:, 0] = s + ds * xd[0] * xd[1:]
    pattern = hess != 0
    coloring = vg.color_jacobian(pattern.to_sparse(), strategy="symmetric")
    methods = (
        Method("torch.func.hessian", lambda: torch.func.hessian(f)(x), hess.float()),
        Method("vg.hessian", lambda: vg.hessian(f, x), hess.float()),
        Method(
            f"vg.sparse_hessian(star, {coloring.num_colors} colours)",
            lambda: vg.sparse_hessian(f, x, sparsity=coloring),
            hess.float(),
            compare=lambda r: r.to_dense() if isinstance(r, Tensor) else r,
        ),
    )
    name = f"sparse Hessian, arrow, n={n}"
    return Case(name, "float32; no goal", methods, methods[2].name)


def cases(quick: bool, device: torch.device) -> list[Case]:
    sizes = SIZES[quick]
    return [
        dense_case(tridiagonal(sizes.n, device)),
        dense_case(stencil(sizes.side, device)),
        large_case(tridiagonal(sizes.large_n, device)),
        large_case(stencil(sizes.large_side, device)),
        arrow_hessian_case(sizes.arrow_n, device),
    ]


# --------------------------------------------------------------------------------------------
# Colouring a 10^6-point stencil, and peak memory


def coloring_goals(quick: bool, device: torch.device) -> list[Goal]:
    """Colour the 5-point stencil's COO pattern (built from indices, never dense) with
    color_jacobian's default 'auto' (both modes); print the time, colours and lower bound."""
    side, reps = SIZES[quick].coloring_side, SIZES[quick].coloring_reps
    offsets = ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))
    pattern = grid_pattern(side, side, offsets, device)
    times, coloring = [], None
    for _ in range(reps):
        took, coloring = time_calls(functools.partial(vg.color_jacobian, pattern), 1, device)
        times.append(took)
    assert isinstance(coloring, vg.JacobianColoring)
    seconds = statistics.median(times)
    threads = torch.get_num_threads()
    name = f"colouring, 5-point stencil {side}x{side} (n={side * side}, nnz={pattern._nnz()})"
    print(f"\n{name}")
    print(
        f"  color_jacobian: median {seconds:.3g} s of {reps} (min {min(times):.3g} s, "
        f"{threads} threads); mode {coloring.mode}, {coloring.num_colors} colours, "
        f"lower bound {coloring.lower_bound}"
    )
    ratio = coloring.num_colors / coloring.lower_bound
    return [
        Goal(
            str(device),
            f"{name}: colours <= 1.5 x lower bound",
            f"{coloring.num_colors} colours, lower bound {coloring.lower_bound} ({ratio:.2f}x)",
            ratio <= 1.5,
        ),
        Goal(
            str(device),
            f"{name}: colouring time <= 5 s (a reported figure, {threads} threads)",
            f"{seconds:.3g} s (median of {reps})",
            seconds <= 5.0,
        ),
    ]


def memory_methods(problem: Problem) -> dict[str, Callable[[], Result]]:
    f, x, pattern = problem.f, problem.x, problem.pattern
    coloring = vg.color_jacobian(pattern)
    return {
        JACREV: lambda: jacrev(f)(x),
        JACFWD: lambda: jacfwd(f)(x),
        REUSED: lambda: vg.sparse_jacobian(f, x, sparsity=coloring),
        ONE_SHOT: lambda: vg.sparse_jacobian(f, x, sparsity=pattern),
    }


def rows_here(quick: bool, device: torch.device) -> list[MemoryRow]:
    """Peak memory of each method on both problems at n, after one warm-up call; each result
    is checked (a sparse one made dense) against the analytic Jacobian."""
    sizes = SIZES[quick]
    rows = []
    for problem in (tridiagonal(sizes.n, device), stencil(sizes.side, device)):
        jac = problem.jacobian.to_dense()
        for name, method in memory_methods(problem).items():
            label = f"{problem.name}: {name}"
            try:
                method()  # warm-up
                peak, result = peak_bytes(method, device)
                assert isinstance(result, Tensor)
                torch.testing.assert_close(result.to_dense(), jac)
            except Exception as exc:
                rows.append(MemoryRow(label, None, None, wrong(exc)))
            else:
                rows.append(MemoryRow(label, None, peak))
    return rows


def memory_rows(quick: bool, device: torch.device) -> list[MemoryRow]:
    if device.type == "cpu":
        return rows_in_child(quick, module=__name__)
    return rows_here(quick, device)


def print_memory(device: torch.device, quick: bool, rows: Sequence[MemoryRow]) -> None:
    n = SIZES[quick].n
    how = "max_memory_allocated" if device.type == "cuda" else "peak RSS, fresh process"
    dense_mib = n * n * 4 / MIB
    print(f"\nmemory: sparse and dense Jacobians, n={n} (float32; dense J is {dense_mib:.3g} MiB)")
    print(f"  peak MiB above the memory in use before the call ({how})")
    if not rows:
        print("  not measured: needs CUDA or Linux /proc/self/clear_refs")
    for r in rows:
        peak = "WRONG" if r.peak_bytes is None else f"{r.peak_bytes / MIB:.2f}"
        print(f"  {r.method:<72}{peak:>10}  {r.note}")
    # Per problem: the smaller dense peak over each sparse peak (a page, 4 KiB, at least).
    peaks = {r.method: r.peak_bytes for r in rows}
    for problem in dict.fromkeys(r.method.split(": ")[0] for r in rows):
        dense = [peaks.get(f"{problem}: {name}") for name in DENSE]
        sparse = {name: peaks.get(f"{problem}: {name}") for name in (REUSED, ONE_SHOT)}
        if None in dense or None in sparse.values():
            continue
        best = min(cast(int, d) for d in dense)
        ratios = ", ".join(
            f"{name.split('(')[1][:-1]} {best / max(cast(int, b), 4096):.0f}x"
            for name, b in sparse.items()
        )
        print(f"  {problem}: smaller dense peak / sparse peak: {ratios}")


def fastest_goals(device: torch.device, timings: Sequence[Timing]) -> list[Goal]:
    """The speed goals again, on the fastest call of each method (min of k blocks).

    The dense methods outlast a round's share of the run, so they get one block each and the
    paired ratios of the speed goals are of one round: one pair of blocks, which a load that
    jumps within the round can move by an order of magnitude on a busy machine. The fastest
    calls are the least disturbed by other processes on both sides.
    """
    by_case: dict[str, dict[str, Timing]] = {}
    for t in timings:
        if t.device == str(device) and t.min_s is not None:
            by_case.setdefault(t.case, {})[t.method] = t
    found = []
    for case, methods in by_case.items():
        dense = [methods[name] for name in DENSE if name in methods]
        if not dense or not case.startswith("sparse Jacobian"):
            continue
        best = min(dense, key=lambda t: cast(float, t.min_s))
        name = case.split(" (")[0]
        for method, limit, label in ((REUSED, 300, "reused"), (ONE_SHOT, 30, "one-shot")):
            if method not in methods:
                continue
            fastest = cast(float, methods[method].min_s)
            ratio = cast(float, best.min_s) / fastest
            found.append(
                Goal(
                    str(device),
                    f"{name}: fastest of jacrev, jacfwd / {label}, fastest calls",
                    f"{ratio:.3g}x ({best.method} {best.min_s * 1e3:.4g} ms / "
                    f"{fastest * 1e3:.4g} ms) (>= {limit}x)",
                    ratio >= limit,
                )
            )
    return found


def extras(quick: bool, device: torch.device, timings: Sequence[Timing]) -> list[Goal]:
    """What the family measures besides its timed cases: the speed goals on the fastest calls,
    the colouring and the memory table."""
    found = fastest_goals(device, timings) + coloring_goals(quick, device)
    print_memory(device, quick, memory_rows(quick, device))
    return found


if __name__ == "__main__":  # the child process of rows_in_child
    measured = rows_here("--quick" in sys.argv[1:], torch.device("cpu"))
    print(json.dumps([asdict(r) for r in measured]))

"""Methods and cases, how they are checked and timed, their goals, and the printed tables."""

from __future__ import annotations

import functools
import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

Func = Callable[[Tensor], Tensor]
Result = Tensor | tuple[Tensor, ...]

ROUNDS = 10  # a case's methods are timed in this many interleaved rounds of blocks
RUN_TIME = {False: 0.5, True: 0.01}  # seconds of timed blocks per method; True: --quick
NOISY = 3.0  # a median this many times the fastest call means the machine was busy


@dataclass(frozen=True)
class Method:
    """One way of computing a case's derivative; `run()` must return `expected`.

    A method that computes only part of the result (some rows of a Jacobian, some samples)
    has `expected` cut to that part and `scale` set to undo the cut in its reported time.
    `graph`, when set, is whether every tensor of the result must carry the autograd graph
    (`requires_grad`); it is checked with the values. `compare`, when set, turns the result
    into what is compared with `expected` (a sparse result made dense), outside the timing.
    """

    name: str
    run: Callable[[], Result]
    expected: Result
    scale: float = 1.0
    note: str = ""
    graph: bool | None = None
    compare: Callable[[Result], Result] | None = None


@dataclass(frozen=True)
class RatioGoal:
    """The paired ratio of `numerator` to whichever of `denominators` has the smallest median
    is at most `limit` (`most`), or at least `limit`. A tuple of numerators: the one of them
    with the smallest median (the best of several slow ways)."""

    text: str
    numerator: str | tuple[str, ...]
    denominators: tuple[str, ...]
    limit: float
    most: bool = True


@dataclass(frozen=True)
class Case:
    name: str
    details: str
    methods: tuple[Method, ...]
    baseline: str  # the vecgrad method every ratio is taken against
    goals: tuple[RatioGoal, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.name} ({self.details})"


def versus_case(
    name: str, details: str, methods: tuple[Method, ...], baseline: str, limit: float
) -> Case:
    """A case whose vecgrad method `baseline` takes at most `limit` times each other method."""
    goals = tuple(
        RatioGoal(f"{name}: {baseline} / {m.name}", baseline, (m.name,), limit)
        for m in methods
        if m.name != baseline
    )
    return Case(name, details, methods, baseline, goals)


@dataclass
class Timing:
    device: str
    case: str
    method: str
    median_s: float | None  # None when the method failed its check (not timed)
    min_s: float | None
    reps: int
    ratio: float | None  # paired ratio to the case's vecgrad baseline (see `paired_ratio`)
    note: str
    blocks: list[float]  # time per call of each timed block, in the order of the rounds


@dataclass(frozen=True)
class Goal:
    device: str
    text: str
    measured: str
    passed: bool


def pairs(timing: Timing, reference: Timing) -> list[float]:
    """`timing`'s block / `reference`'s block, round by round.

    Blocks of one round run one after the other, so the ratio of a pair sees one load of the
    machine; rounds are paired from the first while both methods have blocks.
    """
    return [a / b for a, b in zip(timing.blocks, reference.blocks, strict=False)]


def paired_ratio(timing: Timing, reference: Timing) -> float | None:
    """Median over rounds of `timing`'s block / `reference`'s block of the same round."""
    ratios = pairs(timing, reference)
    return statistics.median(ratios) if ratios else None


# --------------------------------------------------------------------------------------------
# Checking and timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    run: Callable[[], Result], number: int, device: torch.device
) -> tuple[float, Result]:
    """Seconds that `number` calls of `run()` take one after the other, and the last result.

    The one way methods are timed: their checking call, the calls that size their blocks and
    the blocks themselves. As in `timeit`, garbage collection is off meanwhile; on CUDA the
    clock waits for the queued work at both ends.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        synchronize(device)
        started = time.perf_counter()
        for _ in range(number - 1):
            run()
        result = run()
        synchronize(device)
        return time.perf_counter() - started, result
    finally:
        if collecting:
            gc.enable()


def wrong(exc: Exception) -> str:
    return f"WRONG: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"


def tensors(result: Result) -> tuple[Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


def check(method: Method, device: torch.device) -> tuple[str | None, float]:
    """Run the method once (this is also its warm-up): why it is wrong, or None, and how long
    the call took."""
    try:
        took, result = time_calls(method.run, 1, device)
        if method.compare is not None:
            result = method.compare(result)
        torch.testing.assert_close(result, method.expected)
        if method.graph is not None:
            carried = [t.requires_grad for t in tensors(result)]
            if carried != [method.graph] * len(carried):
                raise AssertionError(f"requires_grad of the results: {carried}")
    except Exception as exc:  # a method that raises is reported like one that is wrong
        return wrong(exc), 0.0
    return None, took


def block_size(
    run: Callable[[], Result], device: torch.device, first_call: float, target: float, limit: float
) -> int:
    """Calls per block, so that a block takes about ``target`` seconds.

    ``first_call`` is the duration of the checking call: a method that took ``limit`` seconds
    or more gets one call per block without another call to calibrate it.
    """
    if first_call >= limit:
        return 1
    number = 1
    while (took := time_calls(run, number, device)[0]) < target / 10:
        number *= 10
    return max(1, round(number * target / took))


def measure_case(
    methods: Sequence[tuple[Method, float]], run_time: float, device: torch.device
) -> dict[str, tuple[list[float], int]]:
    """Time per call of every block (scaled by ``method.scale``) and the calls per block.

    ``methods`` pairs each method with the duration of its checking call. The methods of a
    case are timed in turn, one block of calls each per round, until each has had
    ``run_time`` seconds of blocks: about ``ROUNDS`` rounds, fewer for methods whose single
    call outlasts a block. Interleaving makes every method of a case see the same load on a
    shared machine, and lets ratios be taken round by round (`paired_ratio`). A block is
    timed by `time_calls`.
    """
    target = run_time / ROUNDS
    numbers = {m.name: block_size(m.run, device, first, target, run_time) for m, first in methods}
    blocks: dict[str, list[float]] = {m.name: [] for m, _ in methods}
    spent = dict.fromkeys(blocks, 0.0)
    while pending := [m for m, _ in methods if spent[m.name] < run_time]:
        for m in pending:
            took, _ = time_calls(m.run, numbers[m.name], device)
            spent[m.name] += took
            blocks[m.name].append(took / numbers[m.name] * m.scale)
    return {name: (times, numbers[name]) for name, times in blocks.items()}


def time_case(case: Case, run_time: float, device: torch.device) -> list[Timing]:
    """Check every method against its reference, then time the correct ones together."""
    checked = {m.name: check(m, device) for m in case.methods}
    correct = [(m, checked[m.name][1]) for m in case.methods if checked[m.name][0] is None]
    measured = measure_case(correct, run_time, device)
    timings = []
    for m in case.methods:
        blocks, number = measured.get(m.name, ([], 0))
        timings.append(
            Timing(
                device=str(device),
                case=case.title,
                method=m.name,
                median_s=statistics.median(blocks) if blocks else None,
                min_s=min(blocks) if blocks else None,
                reps=number * len(blocks),
                ratio=None,
                note=checked[m.name][0] or m.note,
                blocks=blocks,
            )
        )
    (base,) = (t for t in timings if t.method == case.baseline)
    for t in timings:
        t.ratio = paired_ratio(t, base)
    return timings


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3g}"


def print_case(case: Case, timings: Sequence[Timing], elapsed: float) -> None:
    print(f"\n{case.title}   [{elapsed:.1f} s; ratio: paired with {case.baseline}]")
    print(f"  {'method':<42}{'median ms':>11}{'min ms':>10}{'reps':>6}{'ratio':>8}  note")
    for t in timings:
        ratio = "-" if t.ratio is None else f"{t.ratio:.2f}"
        print(
            f"  {t.method:<42}{fmt_ms(t.median_s):>11}{fmt_ms(t.min_s):>10}{t.reps:>6}"
            f"{ratio:>8}  {t.note}"
        )


# --------------------------------------------------------------------------------------------
# Goals


def ratio_goal(device: str, goal: RatioGoal, timings: Mapping[str, Timing]) -> Goal:
    """Whether `goal` is met by the `timings` of its case's methods, and the measured ratio."""
    numerators = (goal.numerator,) if isinstance(goal.numerator, str) else goal.numerator
    used = [timings.get(name) for name in (*numerators, *goal.denominators)]
    measured_used = [t for t in used if t is not None and t.median_s is not None]
    if len(measured_used) < len(used):
        return Goal(device, goal.text, "not measured", False)
    fastest = functools.partial(min, key=lambda t: cast(float, t.median_s))
    tops, others = measured_used[: len(numerators)], measured_used[len(numerators) :]
    ratios = pairs(fastest(tops), fastest(others))
    if not ratios:
        return Goal(device, goal.text, "not measured", False)
    value = statistics.median(ratios)
    passed = value <= goal.limit if goal.most else value >= goal.limit
    rounds = f"{len(ratios)} round{'' if len(ratios) == 1 else 's'}"
    measured = f"{value:.3f}x ({'<=' if goal.most else '>='} {goal.limit:g}x; {rounds})"
    if any(t.median_s > NOISY * t.min_s for t in used if t and t.median_s and t.min_s):
        measured += f"  [noisy: a median is over {NOISY:g}x its fastest call]"
    return Goal(device, goal.text, measured, passed)


def family_goals(device: str, cases: Sequence[Case], timings: Sequence[Timing]) -> list[Goal]:
    """The goals of a family's `cases`: first those that cap vecgrad's time (at most), then
    those that it beats a slow way by (at least), each kind in the order of the cases."""
    declared = [(case, goal) for case in cases for goal in case.goals]
    declared.sort(key=lambda pair: not pair[1].most)
    return [
        ratio_goal(device, goal, {t.method: t for t in timings if t.case == case.title})
        for case, goal in declared
    ]


def print_goals(goals: Sequence[Goal], quick: bool) -> None:
    print("\ngoals" + ("  (tiny sizes: meaningful only for the full run)" if quick else ""))
    for g in goals:
        print(f"  {'PASS' if g.passed else 'MISS'}  [{g.device}] {g.text}: {g.measured}")

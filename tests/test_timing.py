"""vg.time_call: a median time per call, and its argument checks."""

from __future__ import annotations

import math
import time

import pytest

import vecgrad as vg


def test_time_call_counts_calls_and_returns_a_positive_time() -> None:
    calls = []
    seconds = vg.time_call(lambda: calls.append(1), min_run_time=0.01)
    # The timer warms up, then times blocks of calls: fn runs many times, never zero.
    assert len(calls) > 1
    assert math.isfinite(seconds)
    assert seconds > 0


def test_time_call_reflects_the_work_done() -> None:
    # A call that sleeps 2 ms must take at least that long, and far more than an empty call.
    slow = vg.time_call(lambda: time.sleep(0.002), min_run_time=0.05)
    fast = vg.time_call(lambda: None, min_run_time=0.05)
    assert slow >= 0.002
    assert fast < slow


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fn": 3}, TypeError, r"vecgrad\.time_call: `fn` must be callable; got int"),
        (
            {"min_run_time": "1"},
            TypeError,
            r"vecgrad\.time_call: `min_run_time` must be a positive number of seconds; got str",
        ),
        (
            {"min_run_time": True},
            TypeError,
            r"`min_run_time` must be a positive number of seconds; got bool",
        ),
        (
            {"min_run_time": 0.0},
            ValueError,
            r"vecgrad\.time_call: `min_run_time` must be a positive number of seconds; got 0\.0",
        ),
        (
            {"min_run_time": math.inf},
            ValueError,
            r"`min_run_time` must be a positive number of seconds; got inf",
        ),
        (
            {"num_threads": 1.0},
            TypeError,
            r"vecgrad\.time_call: `num_threads` must be a positive int; got float",
        ),
        (
            {"num_threads": 0},
            ValueError,
            r"vecgrad\.time_call: `num_threads` must be a positive int; got 0",
        ),
    ],
)
def test_time_call_refuses_bad_arguments(
    kwargs: dict[str, object], error: type, match: str
) -> None:
    args = {"fn": lambda: None, **kwargs}
    fn = args.pop("fn")
    with pytest.raises(error, match=match):
        vg.time_call(fn, **args)  # type: ignore[arg-type]

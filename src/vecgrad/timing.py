"""Wall time of a call, measured with torch's own benchmark timer."""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.benchmark import Timer

from vecgrad._api import public
from vecgrad._checks import check_no_arguments, positive_float, positive_int


@public
def time_call(
    fn: Callable[[], object], *, min_run_time: float = 0.2, num_threads: int = 1
) -> float:
    r"""Median wall time of one call ``fn()``, in seconds.

    Parameters
    ----------
    fn : callable
        Called with no arguments, e.g. ``lambda: vg.jacobian(f, x)``.
    min_run_time : float, optional
        Seconds to keep measuring for (default 0.2); longer gives a steadier median.
    num_threads : int, optional
        Threads torch may use while timing (default 1: small tensors gain little from more, and
        one thread gives steadier times on a busy machine).

    Returns
    -------
    float
        The median over blocks of calls of the time per call, in seconds.

    Raises
    ------
    TypeError
        If ``fn`` is not callable or needs arguments, ``min_run_time`` is not a number or
        ``num_threads`` not an int.
    ValueError
        If ``min_run_time`` is not positive and finite or ``num_threads < 1``.

    Notes
    -----
    :class:`torch.utils.benchmark.Timer` warms ``fn`` up, picks how many calls to time in one
    block so that the clock's resolution does not matter, and repeats blocks for
    ``min_run_time`` seconds (:meth:`~torch.utils.benchmark.Timer.blocked_autorange`); the
    median of the blocks is robust to the odd slow block. Times are a measurement, not a
    result: compare methods measured in the same run, and never assert on them.

    See Also
    --------
    torch.utils.benchmark.Timer : The timer used, with more options (e.g. CUDA synchronisation).

    Examples
    --------
    >>> import torch
    >>> import vecgrad as vg
    >>> x = torch.randn(100)
    >>> seconds = vg.time_call(lambda: torch.sin(x), min_run_time=0.01)
    >>> 0 < seconds < 1
    True
    """
    check_no_arguments(fn)
    seconds = positive_float("min_run_time", min_run_time, "a positive number of seconds")
    threads = positive_int("num_threads", num_threads)
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    return float(timer.blocked_autorange(min_run_time=seconds).median)

"""What the benchmark scripts share: the machine they ran on, timing tiny calls, printing times."""

import os
import platform
import timeit
from pathlib import Path


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows.

    >>> isinstance(cpu_model(), str)
    True
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nproc():
    """What ``nproc`` prints: the number of CPUs this process may run on.

    >>> nproc() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def best_per_call(fn, args, budget, repeat=9, min_number=1):
    """The best time of one call of ``fn(*args)``: ``timeit``, best of ``repeat`` repeats of
    as many calls (at least ``min_number``) as fit in about ``budget`` seconds.

    >>> best_per_call(abs, (-1,), 0.01) > 0
    True
    """
    timer = timeit.Timer(lambda: fn(*args))
    per_call = max(min(timer.repeat(3, 100)) / 100, 1e-9)
    number = max(min_number, int(budget / repeat / per_call))
    return min(timer.repeat(repeat, number)) / number


def fmt_time(seconds):
    """``seconds`` in the unit that reads best, or a dash for no measurement.

    >>> fmt_time(0.00125)
    '1.25 ms'
    """
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"

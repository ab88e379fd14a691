"""What the benchmark reports say about the machine they ran on."""
import os
import platform
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

"""Calling a compiled function many times does not grow the process's memory.

``python -m tests.test_memory 1000000`` runs the long count (on the functions that do not
check, which are fast enough) and prints the growth.
"""

import sys

import numpy as np

import exprc as ex


def resident_bytes():
    """The process's resident set size now (not its peak)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def _functions():
    """A function of one C call (the direct path), one of NumPy steps between kernels, a
    checked one, and one with several outputs, with their arguments."""
    x, y = ex.matrix("x"), ex.vector("y")
    a, b = np.random.default_rng(0).random((8, 5)), np.ones(5)
    one_call = ex.function([x, y], ex.exp(-(x**2)).sum(axis=1) + y[:1])
    steps = ex.function([x, y], ex.tanh(ex.exp(x) @ y) * 2)
    several = ex.function([x, y], [x * y, (x + y).max(axis=0), x.T @ x])
    checked = ex.function([x, y], ex.sin(x).sum(axis=0) * y, mode="check")
    return [(one_call, (a, b)), (steps, (a, b)), (several, (a, b)), (checked, (a, b))]


def growth(calls, functions=None):
    """The resident memory gained over ``calls`` calls of each function, after a warm-up."""
    functions = functions or _functions()
    for f, args in functions:
        for _ in range(1000):
            f(*args)
    before = resident_bytes()
    for f, args in functions:
        for _ in range(calls):
            f(*args)
    return resident_bytes() - before


def test_calls_do_not_grow_memory():
    functions = _functions()
    growth(200, functions)  # allocator pools settle
    grown = growth(20_000, functions)
    # A leak of even one 40-byte result per call would be 3 MB over these 80,000 calls.
    assert grown < 1 << 20, f"memory grew by {grown / 2**20:.1f} MiB over 20,000 calls of each function"


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    plain = _functions()[:3]  # the checked function runs the reference too: far slower per call
    start = resident_bytes()
    grown = growth(count, plain)
    print(
        f"{count} calls of each of {len(plain)} functions: resident memory {start / 2**20:.1f} MiB before, "
        f"grew by {grown / 2**20:.2f} MiB"
    )

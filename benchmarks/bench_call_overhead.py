"""Per-call overhead of a compiled exprc function on tiny inputs, against bare NumPy.

On tiny arrays the arithmetic costs next to nothing, so the time of a call is
almost all overhead: checking the arguments, walking the graph, and handing
the results back. This measures it for graphs of 1, 3 and 10 elementwise ops,
each next to the same expression written directly in NumPy, and writes a
Markdown table to ``benchmarks/results/call_overhead.md``.

    python benchmarks/bench_call_overhead.py [--budget SECONDS] [--repeat N] [--output PATH]

Each timing is ``timeit`` with ``--repeat`` repeats of an automatically chosen
number of calls; the table gives the best and the median time per call. The
whole run takes about ``--budget`` seconds (20 by default).
"""

import argparse
import datetime
import platform
import statistics
import sys
import time
import timeit
from pathlib import Path

import numpy as np
from _report import nproc  # noqa: E402 - beside this script

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout, installed with pip install -e

import exprc as ex  # noqa: E402

# name -> (number of ops as written, the expression written once for both ``ex`` and ``np``)
GRAPHS = {
    "x + 1": (1, lambda m, x: x + 1.0),
    "exp(2x + 1)": (3, lambda m, x: m.exp(x * 2.0 + 1.0)),
    "10-op chain": (
        10,
        lambda m, x: m.tanh(m.exp(-(x * 2.0 + 1.0)) * x - 3.0) + m.sqrt(m.abs(x)),
    ),
}
SIZE = 8  # elements in the input vector: tiny on purpose


def time_call(fn, repeat, seconds):
    """Best and median seconds per call of ``fn()``: ``repeat`` runs taking about ``seconds`` in all."""
    timer = timeit.Timer(fn)
    once = min(timer.repeat(repeat=3, number=1))
    number = max(1, int(seconds / repeat / max(once, 1e-9)))
    runs = [t / number for t in timer.repeat(repeat=repeat, number=number)]
    return min(runs), statistics.median(runs), number


def measure(budget, repeat):
    x = ex.vector("x")
    data = np.linspace(0.1, 1.0, SIZE)
    deadline = time.perf_counter() + budget
    timings_left = 2 * len(GRAPHS)
    rows = []

    def timed(fn):
        # Share what is left of the budget among the timings still to do, so a
        # slow (loaded) machine shortens the later timings instead of overrunning.
        nonlocal timings_left
        seconds = max(deadline - time.perf_counter(), 0.0) / timings_left
        timings_left -= 1
        return time_call(fn, repeat, seconds)

    for name, (written, build) in GRAPHS.items():
        f = ex.function([x], build(ex, x), backend="numpy")
        # what the function runs: the rewrites may leave fewer ops than were written
        n_ops = len(ex.toposort(f.graph))
        assert n_ops <= written, f"{name}: {written} ops written, {n_ops} run: {f.source}"
        expected = build(np, data)
        assert np.allclose(f(data), expected), f"{name}: exprc and NumPy disagree"
        numpy_best, numpy_median, numpy_number = timed(lambda: build(np, data))
        exprc_best, exprc_median, exprc_number = timed(lambda: f(data))
        rows.append(
            {
                "name": name,
                "ops": n_ops,
                "numpy": (numpy_best, numpy_median),
                "exprc": (exprc_best, exprc_median),
                "calls": (numpy_number, exprc_number),
            }
        )
        print(
            f"{name:<14} {n_ops:>2} ops: NumPy {numpy_median * 1e6:7.2f} us, "
            f"exprc {exprc_median * 1e6:7.2f} us per call (median of {repeat})",
            flush=True,
        )
    return rows


def report(rows, repeat, budget):
    us = lambda seconds: f"{seconds * 1e6:.2f}"  # noqa: E731
    now = datetime.datetime.now().astimezone()
    lines = [
        '# Call overhead: exprc.function(..., backend="numpy") vs bare NumPy',
        "",
        f"- date: {now:%Y-%m-%d %H:%M %Z}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, exprc {ex.__version__}",
        f"- machine: {platform.machine()}, {platform.system()} {platform.release()}, nproc = {nproc()}",
        f"- input: a float64 vector of {SIZE} elements; `timeit`, {repeat} repeats per timing, "
        f"about {budget:g} s of timing in all",
        "- command: `python benchmarks/bench_call_overhead.py`",
        "",
        "Times are microseconds per call. Overhead is the exprc median minus the NumPy median;",
        "calls per repeat is the `timeit` number for NumPy / for exprc.",
        "",
        "| graph | ops | NumPy best | NumPy median | exprc best | exprc median | overhead | exprc / NumPy | calls per repeat |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        (nb, nm), (eb, em) = row["numpy"], row["exprc"]
        lines.append(
            f"| `{row['name']}` | {row['ops']} | {us(nb)} | {us(nm)} | {us(eb)} | {us(em)} "
            f"| {us(em - nm)} | {em / nm:.1f}x | {row['calls'][0]} / {row['calls'][1]} |"
        )
    lines += [
        "",
        "The NumPy reference back end runs one NumPy call per op, so its time grows with the",
        "number of ops on top of a fixed cost per call for checking the arguments and",
        "returning the results.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds for all timings (default 20)")
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats per timing (default 7)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "call_overhead.md")
    args = parser.parse_args(argv)
    rows = measure(args.budget, args.repeat)
    text = report(rows, args.repeat, args.budget)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()

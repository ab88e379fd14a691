"""Fused expressions on the C back end, side by side with NumPy (and numexpr when installed).

For each expression and size (1e3 to 1e7 elements) it times:

- ``exprc c``: ``exprc.function(..., backend="c")``;
- ``exprc numpy``: the NumPy reference back end, node by node;
- ``NumPy``: the expression written directly in NumPy;
- ``numexpr``: the same with numexpr, where numexpr can express it.

It also times calls on tiny inputs, which are almost all overhead: ``x + 1``
on one element, and workload W3, ``x*y + 1.0`` on float64 vectors of 10
elements, both through ``exprc.function`` (which checks and converts every
argument in Python) and through the C back end's own call path
(``f._program.run``, what the back end adds), with ``timeit`` (best of
several repeats of many calls). Every result is checked against NumPy before
it is timed. The report goes to ``benchmarks/results/elementwise.md`` with the
date and the machine.

    python benchmarks/bench_elementwise.py [--sizes 1e3,1e5,1e7] [--budget SECONDS] [--output PATH]
"""

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _report import best_per_call, cpu_model, fmt_time, nproc  # noqa: E402 - beside this script

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout, installed with pip install -e

import exprc as ex  # noqa: E402

try:
    import numexpr
except ImportError:  # an optional peer
    numexpr = None

ROW = 1000  # row length of the 2-d inputs


def _softmax_np(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _cases():
    """name -> (build(ex) -> (inputs, output), make(n, rng) -> arrays, numpy fn, numexpr fn or None)."""

    def gauss_sum():
        x = ex.matrix("x")
        return [x], ex.exp(-(x**2)).sum(axis=1)

    def softmax():
        x = ex.matrix("x")
        return [x], ex.softmax(x, axis=1)

    def axpby():
        a, x, b, y = ex.scalar("a"), ex.vector("x"), ex.scalar("b"), ex.vector("y")
        return [a, x, b, y], a * x + b * y

    def rows(n, rng):
        return [rng.uniform(-2, 2, (max(n // ROW, 1), min(n, ROW)))]

    def vectors(n, rng):
        return [np.float64(0.5), rng.uniform(-1, 1, n), np.float64(2.0), rng.uniform(-1, 1, n)]

    ne_gauss = (lambda x: numexpr.evaluate("sum(exp(-x**2), axis=1)")) if numexpr else None
    ne_axpby = (lambda a, x, b, y: numexpr.evaluate("a*x + b*y")) if numexpr else None
    return {
        "exp(-x**2).sum(axis=1)": (gauss_sum, rows, lambda x: np.exp(-(x**2)).sum(axis=1), ne_gauss),
        "softmax(x, axis=1)": (softmax, rows, _softmax_np, None),
        "a*x + b*y": (axpby, vectors, lambda a, x, b, y: a * x + b * y, ne_axpby),
    }


def best_time(fn, args, budget):
    """The best time of one call, over repeats taking about ``budget`` seconds (at least 3)."""
    fn(*args)
    times, start = [], time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < 1000):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6,1e7")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of repeats per timing")
    parser.add_argument("--output", default=str(HERE / "results" / "elementwise.md"))
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    rows = []
    for name, (build, make, np_fn, ne_fn) in _cases().items():
        inputs, output = build()
        t0 = time.perf_counter()
        fc = ex.function(inputs, output, backend="c")
        compile_s = time.perf_counter() - t0
        fn = ex.function(inputs, output, backend="numpy")
        for n in sizes:
            data = make(n, rng)
            expected = np_fn(*data)
            np.testing.assert_allclose(fc(*data), expected, rtol=1e-12, atol=1e-14)
            timings = {
                "exprc c": best_time(fc, data, args.budget),
                "exprc numpy": best_time(fn, data, args.budget),
                "NumPy": best_time(np_fn, data, args.budget),
                "numexpr": None,
            }
            if ne_fn is not None:
                np.testing.assert_allclose(ne_fn(*data), expected, rtol=1e-12, atol=1e-14)
                timings["numexpr"] = best_time(ne_fn, data, args.budget)
            rows.append((name, n, timings))
            print(f"{name:28s} n={n:>9,d}  " + "  ".join(f"{k}: {fmt_time(v)}" for k, v in timings.items()), flush=True)
        print(f"{name:28s} first build (compile or disk cache): {compile_s:.2f} s")

    # Call overhead: tiny inputs, so the time is almost all Python and the crossing into C.
    x, y = ex.vector("x"), ex.vector("y")
    tiny = [np.ones(1)]
    f1 = ex.function([x], x + 1.0, backend="c")
    overhead = {
        "exprc c": best_per_call(f1, tiny, args.budget),
        "exprc c, back end only": best_per_call(lambda v: f1._program.run([v]), tiny, args.budget),
        "exprc numpy": best_per_call(ex.function([x], x + 1.0, backend="numpy"), tiny, args.budget),
        "NumPy": best_per_call(lambda v: v + 1.0, tiny, args.budget),
    }
    print("call overhead (x + 1, one element): " + "  ".join(f"{k}: {fmt_time(v)}" for k, v in overhead.items()))
    w3_data = [rng.uniform(-1, 1, 10), rng.uniform(-1, 1, 10)]
    w3 = ex.function([x, y], x * y + 1.0, backend="c")
    np.testing.assert_allclose(w3(*w3_data), w3_data[0] * w3_data[1] + 1.0, rtol=1e-15)
    w3_times = {
        "exprc c": best_per_call(w3, w3_data, args.budget),
        "exprc c, back end only": best_per_call(lambda a, b: w3._program.run([a, b]), w3_data, args.budget),
        "exprc numpy": best_per_call(ex.function([x, y], x * y + 1.0, backend="numpy"), w3_data, args.budget),
        "NumPy": best_per_call(lambda a, b: a * b + 1.0, w3_data, args.budget),
    }
    print("W3 (x*y + 1.0, 10 float64): " + "  ".join(f"{k}: {fmt_time(v)}" for k, v in w3_times.items()))

    lines = [
        "# Fused elementwise and reduction expressions",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {os.cpu_count()} CPUs (`nproc`: {nproc()}), {cpu_model()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, numexpr {numexpr.__version__ if numexpr else 'not installed'}",
        f"- command: `python benchmarks/bench_elementwise.py --sizes {args.sizes} --budget {args.budget}`",
        f"- load average at the end (other processes compete for the cores): {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
        "- best time per call; 2-d inputs have rows of 1000 elements",
        "",
        "| expression | elements | exprc c | exprc numpy | NumPy | numexpr | NumPy / exprc c |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, t in rows:
        speedup = t["NumPy"] / t["exprc c"]
        lines.append(
            f"| `{name}` | {n:,d} | {fmt_time(t['exprc c'])} | {fmt_time(t['exprc numpy'])} | {fmt_time(t['NumPy'])} "
            f"| {fmt_time(t['numexpr'])} | {speedup:.2f}× |"
        )
    lines += [
        "",
        'Per-call time on tiny inputs (`timeit`, best of 9 repeats). "back end only" calls',
        "`f._program.run([arrays])`, skipping the argument checks and conversions of",
        "`exprc.function`'s `__call__`, which run in Python in the front end.",
        "",
        "| workload | exprc c | exprc c, back end only | exprc numpy | NumPy |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in (("`x + 1`, 1 element", overhead), ("W3: `x*y + 1.0`, 10 float64", w3_times)):
        lines.append(
            f"| {name} | {fmt_time(t['exprc c'])} | {fmt_time(t['exprc c, back end only'])} "
            f"| {fmt_time(t['exprc numpy'])} | {fmt_time(t['NumPy'])} |"
        )
    lines.append("")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Warm starts of two source trees of exprc, alternating in one run.

Each tree gets a cache of its own, filled by one cold process per case; then, round after
round, a fresh process per tree and case builds the function again with the cache full:

- ``w4``: the logistic-regression cost and its gradient (W4, built with ``ex.grad``);
- ``w4-cost``: W4's cost alone;
- ``many``: 30 small distinct functions in one process (30 libraries and rewritten graphs
  loaded from the cache).

::

    python benchmarks/bench_warm_compare.py --before /tmp/exprc-before --after . \\
        --output benchmarks/results/warm-start.md

A tree is a checkout of this repository; for one other than the installed checkout, the
link ``exprc/codegen -> ../codegen`` (what the install's ``package_dir`` does) is made in it
when missing. The processes of :mod:`bench_compile` time the first two cases.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_compile
from _report import cpu_model, nproc

_MANY = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
import numpy as np
import exprc as ex
from exprc.codegen.c import build
x = ex.vector("x")
start = time.perf_counter()
fs = [ex.function([x], ex.exp(x) * k - ex.tanh(x) + k * 0.5, backend="c") for k in range(int(sys.argv[1]))]
seconds = time.perf_counter() - start
assert np.allclose(fs[3](np.array([0.5])), np.exp(0.5) * 3 - np.tanh(0.5) + 1.5)
print(json.dumps({"seconds": seconds, "stats": build.stats}))
"""
CASES = ("w4", "w4-cost", "many")
MANY = 30


def _many(tree, cache_dir, pycache):
    env = bench_compile._env(cache_dir, pycache)
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run(
        [sys.executable, "-c", _MANY, str(MANY), str(tree)], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode:
        raise RuntimeError(f"many ({tree}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _case(case, mode, tree, cache_dir, pycache):
    """``(seconds, compiled)`` of one process of ``case`` for ``tree``."""
    if case == "many":
        result = _many(tree, cache_dir, pycache)
    else:
        bench_compile.ROOT = tree
        result = bench_compile._run(case, mode, cache_dir, pycache)
    return result["seconds"], result["stats"]["compiled"]


def _prepare(tree):
    link = tree / "exprc" / "codegen"
    if tree != bench_compile.ROOT.resolve() and not link.exists():
        link.symlink_to(Path("..") / "codegen")
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--short", "--untracked-files=no", "--", "exprc", "codegen"],
        capture_output=True,
        text=True,
    )
    return commit.stdout.strip() + (" with changes" if dirty.stdout.strip() else "")


def measure(trees, rounds):
    """``{tree name: {case: [seconds of each warm process]}}``, the trees alternating."""
    times = {name: {case: [] for case in CASES} for name in trees}
    with tempfile.TemporaryDirectory(prefix="exprc-warm-") as scratch:
        pycache = Path(scratch) / "pyc"
        caches = {name: Path(scratch) / name for name in trees}
        for name, tree in trees.items():
            for case in CASES:
                _case(case, "cold", tree, caches[name], pycache)
        for r in range(rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in order:
                for case in CASES:
                    seconds, compiled = _case(case, "warm", trees[name], caches[name], pycache)
                    if compiled:
                        raise RuntimeError(f"{name} {case}: a warm process compiled {compiled} libraries")
                    times[name][case].append(seconds)
            print(f"round {r + 1}/{rounds}", flush=True)
    return times


def report(trees, commits, times, rounds):
    ms = lambda s: f"{s * 1e3:.1f} ms"  # noqa: E731
    lines = [
        "# Warm starts of two trees, alternating in one run",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {cpu_model()}, {nproc()} CPUs; load average at the end {os.getloadavg()[0]:.2f}",
        f"- command: `python benchmarks/bench_warm_compare.py --rounds {rounds}` with "
        + ", ".join(f"{name}: {commits[name]}" for name in trees),
        f"- each cell: min / median of {rounds} fresh processes with the cache full (the trees alternating "
        "round by round); `many` builds 30 small distinct functions in one process",
        "",
        "| case | " + " | ".join(trees) + " |",
        "|---|" + "---:|" * len(trees),
    ]
    for case in CASES:
        cells = [f"{ms(min(times[n][case]))} / {ms(statistics.median(times[n][case]))}" for n in trees]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, type=Path, help="a checkout of exprc to compare with")
    parser.add_argument("--after", default=bench_compile.ROOT, type=Path, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    commits = {name: _prepare(tree) for name, tree in trees.items()}
    text = report(trees, commits, measure(trees, args.rounds), args.rounds)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()

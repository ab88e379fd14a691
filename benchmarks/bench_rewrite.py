"""Time spent rewriting (``exprc.simplify``, the pipeline ``exprc.function`` runs first).

Graphs:

- a 1,000-node elementwise graph: ten float64 vectors combined at random (seed 0)
  by add, subtract, multiply, true_divide, exp, log1p and tanh, each new node
  taking earlier nodes as inputs, until its output depends on 1,000 nodes;
- the W4 gradient graph: ``[cost, exprc.grad(cost, w)]`` with
  ``cost = mean(log1p(exp(-t * (X @ w)))) + 0.01 * sum(w ** 2)``.

Each measurement runs in a new process (building the graph is not timed; the
first ``simplify`` in a process pays for SymPy's first use, as a user's first
compile does), best of ``--repeat``. The report gives the node counts before
and after and goes to ``benchmarks/results/rewrite.md``.

    python benchmarks/bench_rewrite.py [--repeat N] [--output PATH]
"""

import argparse
import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

from _report import cpu_model, nproc  # noqa: E402 - beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_BUILD = {
    "1,000-node elementwise graph": """
import numpy as np
rng = np.random.default_rng(0)
nodes = [ex.vector(f"v{i}") for i in range(10)]
binary = [ex.add, ex.subtract, ex.multiply, ex.true_divide]
unary = [ex.exp, ex.log1p, ex.tanh]
while len(ex.toposort(nodes[-1:])) < 1000:
    a, b = rng.integers(len(nodes), size=2)
    if rng.random() < 0.75:
        nodes.append(binary[rng.integers(len(binary))](nodes[a], nodes[b]))
    else:
        nodes.append(unary[rng.integers(len(unary))](nodes[a]))
outputs = [nodes[-1]]
""",
    "W4 cost and gradient": """
X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w ** 2)
outputs = [cost, ex.grad(cost, w)]
""",
}

_TIMED = """
import json, sys, time
sys.path.insert(0, {root!r})
import exprc as ex
{build}
before = len(ex.toposort(outputs))
t0 = time.perf_counter()
simplified, report = ex.simplify(outputs, report=True)
elapsed = time.perf_counter() - t0
print(json.dumps({{"seconds": elapsed, "before": before, "after": len(ex.toposort(simplified)),
                  "fired": len(report)}}))
"""


def measure(build, repeat):
    runs = []
    for _ in range(repeat):
        code = _TIMED.format(root=str(ROOT), build=build)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-1000:])
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "rewrite.md")
    args = parser.parse_args()
    lines = [
        "# Rewriting time: `exprc.simplify`",
        "",
        f"{datetime.date.today().isoformat()}, {cpu_model()} ({nproc()} cores), Python {platform.python_version()}.",
        f"Command: `python benchmarks/bench_rewrite.py --repeat {args.repeat}`; each time the best of "
        f"{args.repeat} new processes, the first `simplify` in each (SymPy's first use included).",
        "",
        "| graph | nodes before | nodes after | rewrites fired | time |",
        "|---|---|---|---|---|",
    ]
    for name, build in _BUILD.items():
        r = measure(build, args.repeat)
        row = f"| {name} | {r['before']} | {r['after']} | {r['fired']} | {r['seconds'] * 1e3:.1f} ms |"
        print(row, flush=True)
        lines.append(row)
    lines += ["", "Target (issue: rewrites): a 1,000-node graph simplified in at most 1 s."]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

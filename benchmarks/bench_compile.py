"""Compile time of the C back end: a cold ``exprc.function`` (empty cache, C compiler run)
and a warm one (a second process that finds the library in the disk cache).

Workloads:

- W4, logistic regression: ``X`` (10000, 100) float64, ``w`` (100,), ``t`` (10000,);
  ``cost = mean(log1p(exp(-t * (X @ w)))) + 0.01 * sum(w ** 2)``, compiled with
  outputs ``[cost, exprc.grad(cost, w)]``;
- a big gradient program, as ``tests/grad/test_backends.py`` builds them: every
  binary elementwise op on two broadcast matrices, ``cost = (out ** 2).sum()``,
  outputs ``[cost] + exprc.grad(cost, [x, y])``.

Every measurement runs in a process of its own, so imports count as a user sees
them. A cold run gets a fresh ``EXPRC_CACHE_DIR``; it reports the time of the
``exprc.function`` call, split into the C compiler's part (the build, as
``exprc.codegen.c.build`` runs it) and the rest (lowering, rendering, loading), and the
size of the generated C. A warm run uses the cache the cold run filled and
reports the time of the ``exprc.function`` call, whether the compiler ran, and
whether SymPy was imported (W4 itself takes a gradient, which needs SymPy, so
the check is made on a graph without one: ``exprc.function`` with W4's cost
alone). The processes keep bytecode (``PYTHONPYCACHEPREFIX`` in a temporary
directory, one untimed warm-up process first), as an installed exprc would.
Every compiled result is checked against the NumPy back end first.

    python benchmarks/bench_compile.py [--repeat N] [--output PATH] [--skip-big]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import cpu_model, nproc  # noqa: E402 - beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_CHILD = r"""
import json, sys, time
workload, mode = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
import numpy as np
import exprc as ex
from exprc.codegen.c import build

compile_seconds = []
_compile = build._compile


def timed_compile(*args, **kwargs):
    start = time.perf_counter()
    try:
        return _compile(*args, **kwargs)
    finally:
        compile_seconds.append(time.perf_counter() - start)


build._compile = timed_compile
rng = np.random.default_rng(0)
if workload == "w4":
    X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
    cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w ** 2)
    inputs, outputs = [X, w, t], [cost, ex.grad(cost, w)]
    values = [rng.normal(size=(10000, 100)), rng.normal(size=100) * 0.1, np.sign(rng.normal(size=10000))]
elif workload == "w4-cost":
    X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
    inputs = [X, w, t]
    outputs = [ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w ** 2)]
    values = [rng.normal(size=(10000, 100)), rng.normal(size=100) * 0.1, np.sign(rng.normal(size=10000))]
else:
    from tests.grad.test_backends import _binary_all
    x, y = ex.matrix("x"), ex.matrix("y")
    cost = (_binary_all(x, y) ** 2).sum()
    inputs, outputs = [x, y], [cost] + list(ex.grad(cost, [x, y]))
    values = [rng.uniform(-0.95, 0.95, (3, 1)), rng.uniform(-0.95, 0.95, (3, 4))]
sympy_before = "sympy" in sys.modules
start = time.perf_counter()
f = ex.function(inputs, outputs, backend="c")
seconds = time.perf_counter() - start
sympy_after = "sympy" in sys.modules
ok = True
if mode == "cold":  # the oracle: the NumPy back end
    for got, expected in zip(f(*values), ex.function(inputs, outputs, backend="numpy")(*values)):
        ok = ok and np.allclose(got, expected, rtol=1e-9, atol=1e-12)
source = f.source
print(json.dumps({
    "seconds": seconds, "compile_seconds": sum(compile_seconds), "stats": build.stats, "ok": bool(ok),
    "lines": source.count("\n"), "bytes": len(source), "kernels": len(f._program.program.kernels),
    "segments": len(f._program.compiled.segments),
    "sympy_imported_by_call": (not sympy_before) and sympy_after, "sympy_loaded": sympy_after,
}))
"""


def _env(cache_dir, pycache):
    env = dict(os.environ, EXPRC_CACHE_DIR=str(cache_dir), PYTHONPYCACHEPREFIX=str(pycache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    return env


def _run(workload, mode, cache_dir, pycache):
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, workload, mode, str(ROOT)],
        env=_env(cache_dir, pycache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{workload} {mode} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise RuntimeError(f"{workload}: the C back end disagrees with the NumPy back end")
    return result


def _ms(seconds):
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def _summary(values):
    return f"{_ms(min(values))} (median {_ms(statistics.median(values))})"


def measure(workload, repeat, pycache, warm_workloads=()):
    """Cold and warm timings of ``workload``; ``warm_workloads`` also run warm on its cache."""
    cold, warm, extra = [], [], {w: [] for w in warm_workloads}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="exprc-bench-cache-") as cache_dir:
            cold.append(_run(workload, "cold", cache_dir, pycache))
            for other in warm_workloads:  # fill the cache for it too
                _run(other, "cold", cache_dir, pycache)
            warm.append(_run(workload, "warm", cache_dir, pycache))
            for other in warm_workloads:
                extra[other].append(_run(other, "warm", cache_dir, pycache))
    return cold, warm, extra


def _compiler_version():
    cc = os.environ.get("CC") or "cc"
    try:
        done = subprocess.run(cc.split() + ["--version"], capture_output=True, text=True, timeout=60)
        return done.stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="cold/warm process pairs per workload")
    parser.add_argument("--output", default=str(HERE / "results" / "compile.md"))
    parser.add_argument("--skip-big", action="store_true", help="only W4")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from exprc.codegen.c import build

    rows, checks = [], []
    with tempfile.TemporaryDirectory(prefix="exprc-bench-pycache-") as pycache:
        with tempfile.TemporaryDirectory(prefix="exprc-bench-cache-") as warmup:  # bytecode for every module
            _run("w4", "cold", warmup, pycache)
        workloads = [("W4: logistic regression, [cost, grad(cost, w)]", "w4", ("w4-cost",))]
        if not args.skip_big:
            workloads.append(("gradient of every binary op (tests/grad/test_backends.py)", "big", ()))
        for title, workload, warm_others in workloads:
            cold, warm, extra = measure(workload, args.repeat, pycache, warm_others)
            first = cold[0]
            rows.append((title, first, cold, warm))
            print(
                f"{workload}: cold {_summary([r['seconds'] for r in cold])}, of which the C compiler "
                f"{_summary([r['compile_seconds'] for r in cold])}; warm {_summary([r['seconds'] for r in warm])}; "
                f"{first['lines']} lines of C, {first['kernels']} kernels, {first['segments']} entry points"
            )
            for r in warm:
                if r["stats"]["compiled"]:
                    raise RuntimeError(f"{workload}: the warm process ran the compiler")
            for other, results in extra.items():
                checks.append((other, results))
                print(
                    f"{other} warm: {_summary([r['seconds'] for r in results])}, SymPy imported: "
                    f"{any(r['sympy_loaded'] for r in results)}"
                )

    command = "python benchmarks/bench_compile.py " + " ".join(sys.argv[1:])
    lines = [
        "# Compile time of the C back end",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {os.cpu_count()} CPUs (`nproc`: {nproc()}), {cpu_model()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, compiler: {_compiler_version()}",
        f"- flags: `{' '.join(build.FLAGS + tuple(build.libraries()))}`",
        f"- command: `{command.strip()}`",
        f"- load average at the end (other processes compete for the cores): {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- best of {args.repeat} processes each (median in parentheses)",
        "",
        'Cold: a fresh `EXPRC_CACHE_DIR`, the whole `exprc.function(..., backend="c")` call, of which',
        '"C compiler" is the build of the library; warm: a second process, same call, library',
        "from the disk cache (the compiler never runs).",
        "",
        "| program | C source | cold `exprc.function` | of which C compiler | warm `exprc.function` |",
        "|---|---|---:|---:|---:|",
    ]
    for title, first, cold, warm in rows:
        size = f"{first['lines']} lines, {first['kernels']} kernels, {first['segments']} entry points"
        lines.append(
            f"| {title} | {size} | {_summary([r['seconds'] for r in cold])} | "
            f"{_summary([r['compile_seconds'] for r in cold])} | {_summary([r['seconds'] for r in warm])} |"
        )
    for _other, results in checks:
        lines += [
            "",
            f"Warm process, W4's cost alone (no gradient, so nothing needs SymPy): `exprc.function` "
            f"{_summary([r['seconds'] for r in results])}; SymPy imported: "
            f"{'yes' if any(r['sympy_loaded'] for r in results) else 'no'}.",
        ]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

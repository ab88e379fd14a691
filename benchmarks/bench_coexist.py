"""exprc beside PyTorch, JAX and a busy core: W1, W2, W4 and W5 in five kinds of process (issue 21).

Each scenario runs in a fresh Python process of its own:

- (a) alone: the process holds exprc and NumPy only;
- (b) ``import torch`` and a torch matrix product first, then exprc;
- (c) JAX imported and a jitted function run first, then exprc;
- (d) as (a), while a busy process (a Python loop, pinned with ``os.sched_setaffinity``)
  holds one core for the whole scenario;
- (e) as (a), with ``EXPRC_PARALLEL=openmp`` in the environment: the same kernels built
  on OpenMP instead of exprc's own thread pool.

The workloads are those of ``workloads.py`` and ``bench_training.py``, with their graph
builders and NumPy versions imported from there: W1
``exp(-x*x)*sin(y) + log1p(z*z)*tanh(x)`` on 10,000,000 float64, W2 row softmax
(2000, 2000) float64, W4 logistic-regression cost and gradient (X (10000, 100)) and
W5 one SGD step of the 784-256-10 float32 MLP. In every process each exprc result
is first checked against NumPy's; then exprc and NumPy's hand-written version are
timed in the same process, alternating: ``--rounds`` rounds, each a batch of exprc
calls and a batch of NumPy calls (about ``--budget`` seconds each, the order swapped
every round). The report gives the median time per call and its min–max over the
rounds, the ratio exprc/NumPy of each round, and whether the issue's targets are met.
It goes to ``benchmarks/results/coexist.md``.

    python benchmarks/bench_coexist.py [--quick] [--rounds N] [--budget SECONDS]
                                       [--only W1,W4] [--scenarios a,b] [--output PATH]
"""

# Only the standard library at the top: the same file runs each scenario's process,
# which must set up PyTorch or JAX before exprc, NumPy's BLAS and the peers load.
import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import cpu_model, fmt_time, nproc  # noqa: E402 - beside this script; standard library only

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SCENARIOS = {
    "a": "alone",
    "b": "after torch",
    "c": "after JAX",
    "d": "one core busy",
    "e": "with OpenMP",
}
SCENARIO_NEEDS = {"b": "torch", "c": "jax"}
WORKLOADS = {  # as the full run has them; --quick shrinks each to a few thousand elements
    "W1": "`exp(-x*x)*sin(y) + log1p(z*z)*tanh(x)`, 10,000,000 float64",
    "W2": "row softmax of a (2000, 2000) float64 matrix",
    "W4": "logistic regression, cost and gradient, X (10000, 100) float64",
    "W5": "one SGD step of the 784-256-10 tanh MLP, batch 512, float32, parameters updated in place",
}
PEERS = ("torch", "jax", "pytensor", "numexpr")
SAME_AS_ALONE = 1.15  # the bound on (b) and (c) against (a)


# ---------------------------------------------------------------- one scenario's process


def _setup(scenario):
    """Run what the scenario puts in the process before exprc; return what it did, in words."""
    if scenario == "b":
        import torch

        a = torch.randn(1024, 1024)
        (a @ a).sum().item()
        return f"torch {torch.__version__}: (1024, 1024) float32 matrix product, {torch.get_num_threads()} threads"
    if scenario == "c":
        import jax
        import jax.numpy as jnp

        f = jax.jit(lambda x: jnp.tanh(x @ x).sum())
        f(jnp.ones((512, 512), jnp.float32)).block_until_ready()
        return f"jax {jax.__version__}: jit of tanh(x @ x).sum() on (512, 512) float32, run once"
    return ""


def _openmp_libraries():
    """The OpenMP run times mapped into this process (libgomp, Intel's libiomp), by path."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return ["(unknown: no /proc/self/maps)"]
    paths = {line.split()[-1] for line in maps.splitlines() if "/lib" in line and ("gomp" in line or "iomp" in line)}
    # the environment's own copies (PyTorch ships one) by their place in it, the system's by full path
    return sorted(path.replace(sys.prefix, "$VENV") for path in paths)


def _workloads(quick):
    """name -> a maker of (exprc function, NumPy function, arguments), which first checks exprc's
    result against NumPy's (W5: the loss after ``STEPS_CHECKED`` steps, as bench_training.py does)."""
    import numpy as np
    from bench_elementwise import _cases
    from bench_gpu import _w1_numpy
    from bench_training import STEPS_CHECKED, exprc_step, numpy_step, problem
    from workloads import _w4_exprc_graph, w4_numpy

    import exprc as ex

    rng = np.random.default_rng(0)

    def w1():
        x, y, z = (ex.vector(name) for name in "xyz")
        fc = ex.function([x, y, z], ex.exp(-x * x) * ex.sin(y) + ex.log1p(z * z) * ex.tanh(x), backend="c")
        data = [rng.uniform(-2, 2, 10_000 if quick else 10_000_000) for _ in range(3)]
        np.testing.assert_allclose(fc(*data), _w1_numpy(*data), rtol=1e-10, atol=1e-12, err_msg="W1")
        return fc, _w1_numpy, data

    def w2():
        build, _, softmax_numpy, _ = _cases()["softmax(x, axis=1)"]
        fc = ex.function(*build(), backend="c")
        data = [rng.standard_normal((50, 50) if quick else (2000, 2000))]
        np.testing.assert_allclose(fc(*data), softmax_numpy(*data), rtol=1e-10, atol=1e-15, err_msg="W2")
        return fc, softmax_numpy, data

    def w4():
        fc = ex.function(*_w4_exprc_graph(), backend="c")
        n, d = (200, 10) if quick else (10000, 100)
        data = [rng.standard_normal((n, d)), 0.1 * rng.standard_normal(d), rng.choice([-1.0, 1.0], n)]
        (cost, grad), (my_cost, my_grad) = w4_numpy(*data), fc(*data)
        np.testing.assert_allclose(np.asarray(my_cost), cost, rtol=1e-10, err_msg="W4 cost")
        np.testing.assert_allclose(np.asarray(my_grad), grad, rtol=1e-8, atol=1e-12, err_msg="W4 gradient")
        return fc, w4_numpy, data

    def w5():
        X, Y, params = problem()
        if quick:
            X, Y = X[:32], Y[:32]
        mine, theirs = exprc_step(params), numpy_step(params)
        expected = [float(theirs(X, Y)) for _ in range(STEPS_CHECKED)]
        got = [float(mine(X, Y)) for _ in range(STEPS_CHECKED)]
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg="W5: exprc's losses against NumPy's")
        return mine, theirs, [X, Y]

    return {"W1": w1, "W2": w2, "W4": w4, "W5": w5}


def _timed_rounds(impls, args, rounds, budget):
    """Per-call seconds of each implementation in each round: a batch of calls of each, about
    ``budget`` seconds, alternating, the order swapped every round so neither always goes first."""
    number = {}
    for name, fn in impls.items():
        fn(*args)  # the first call loads and warms up
        t0 = time.perf_counter()
        fn(*args)
        number[name] = max(1, round(budget / max(time.perf_counter() - t0, 1e-7)))
    times = {name: [] for name in impls}
    names = list(impls)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = impls[name]
            t0 = time.perf_counter()
            for _ in range(number[name]):
                fn(*args)
            times[name].append((time.perf_counter() - t0) / number[name])
    return times


def child(scenario, only, rounds, budget, quick):
    """One scenario's process: set up, check, time; print the results as JSON on the last line."""
    setup = _setup(scenario)
    # workloads.py and bench_elementwise.py import every peer they find; a None in sys.modules
    # makes those imports fail, so the process holds only the peers its scenario put there.
    for name in PEERS:
        sys.modules.setdefault(name, None)
    sys.path.insert(0, str(HERE))
    makers = _workloads(quick)
    results = {}
    for name in only:
        fc, fn, data = makers[name]()
        times = _timed_rounds({"exprc": fc, "NumPy": fn}, data, rounds, budget)
        results[name] = {"times": times}
        print(
            f"  ({scenario}) {name}: exprc {fmt_time(statistics.median(times['exprc']))}, "
            f"NumPy {fmt_time(statistics.median(times['NumPy']))}",
            file=sys.stderr,
            flush=True,
        )
    info = {
        "setup": setup,
        "openmp": _openmp_libraries(),
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
    }
    print(json.dumps({"results": results, "info": info}))


# ---------------------------------------------------------------- the driver


_BUSY = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def run_scenario(scenario, args):
    """Run one scenario's process (with the busy process beside it for (d)); its JSON, or why not."""
    needs = SCENARIO_NEEDS.get(scenario)
    if needs is not None and importlib.util.find_spec(needs) is None:
        return {"error": f"{needs} not installed"}
    env = dict(os.environ)
    if scenario == "e":
        env["EXPRC_PARALLEL"] = "openmp"
    else:
        env.pop("EXPRC_PARALLEL", None)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", scenario, "--only", ",".join(args.only)]
    command += ["--rounds", str(args.rounds), "--budget", str(args.budget)] + (["--quick"] if args.quick else [])
    busy = None
    if scenario == "d":
        core = max(os.sched_getaffinity(0))
        busy = subprocess.Popen([sys.executable, "-c", _BUSY, str(core)])
    try:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            try:
                code = subprocess.run(command, env=env, stdout=out, stderr=err, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                code = None
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print(stderr, end="", flush=True)  # the scenario's progress, or its error
    if code is None:
        return {"error": f"no result within {args.timeout:.0f} s"}
    if code != 0 or not stdout.strip():
        lines = [line.strip() for line in stderr.splitlines() if line.strip()] or ["no message"]
        errors = [line for line in lines if re.match(r"[\w.]+(Error|Exception)\b", line)]
        return {"error": f"failed, exit status {code}: {(errors or lines)[-1][:200]}"}
    result = json.loads(stdout.strip().splitlines()[-1])
    if busy is not None:
        result["info"]["busy_core"] = core
    return result


def _spread(values, show):
    return f"{show(statistics.median(values))} ({show(min(values))}–{show(max(values))})"


def _ratios(times):
    return [m / n for m, n in zip(times["exprc"], times["NumPy"])]


def _ratio_text(value):
    return f"{value:.2f}"


def _verdicts(workload, runs):
    """The issue's four targets for one workload, each 'met (...)', 'not met (...)' or why not checked."""

    def times(s):
        run = runs.get(s, {})
        return run.get("results", {}).get(workload, {}).get("times")

    base = times("a")
    verdicts = {}
    for s in ("b", "c"):
        mine = times(s)
        if base is None or mine is None:
            verdicts[s] = "not checked (no run of " + ("(a)" if base is None else f"({s})") + ")"
            continue
        factor = statistics.median(mine["exprc"]) / statistics.median(base["exprc"])
        verdicts[s] = f"{'met' if factor <= SAME_AS_ALONE else 'not met'} ({factor:.2f}× (a))"
    busy = times("d")
    if base is None or busy is None:
        verdicts["d"] = "not checked (no run of " + ("(a)" if base is None else "(d)") + ")"
    else:
        mine, alone = statistics.median(_ratios(busy)), statistics.median(_ratios(base))
        verdicts["d"] = f"{'met' if mine <= alone else 'not met'} ({mine:.2f} against {alone:.2f})"
    openmp = times("e")
    if base is None or openmp is None:
        verdicts["e"] = "not checked (no run of " + ("(a)" if base is None else "(e)") + ")"
    else:
        alone, other = statistics.median(base["exprc"]), statistics.median(openmp["exprc"])
        verdicts["e"] = f"{'met' if alone <= other else 'not met'} ({fmt_time(alone)} against {fmt_time(other)})"
    return verdicts


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit():
    """The checkout's commit, and the paths of the library that differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "exprc", "codegen", "setup.cfg"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    paths = [line[3:] for line in changed.stdout.splitlines()]
    if not paths:
        return f"{head.stdout.strip()}, no changes to exprc/ or codegen/"
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"{head.stdout.strip()} with uncommitted changes to {shown}"


def _build_line(runs):
    """Which parallel run time the default build used, as the alone process shows it."""
    alone = runs.get("a", {}).get("info")
    if alone is None:
        return "unknown (no run of (a))"
    if alone["openmp"]:
        return (
            f"OpenMP: the process of (a) had {', '.join(alone['openmp'])} mapped, so its kernels ran on "
            "OpenMP and (e) measures the same build as (a)"
        )
    return "exprc's own thread pool: no OpenMP run time was mapped in the process of (a)"


def write_report(path, runs, args, load_start, elapsed):
    command = "python benchmarks/bench_coexist.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))
    scenarios = [s for s in SCENARIOS if s in runs]
    heads = [f"({s}) {SCENARIOS[s]}" for s in scenarios]
    versions = ", ".join(
        f"{label} {_version(dist)}"
        for label, dist in (("exprc", "exprc"), ("NumPy", "numpy"), ("torch", "torch"), ("JAX", "jax"))
    )
    threads = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in ("EXPRC_NUM_THREADS", "OMP_NUM_THREADS"))
    processes = (
        f" ({args.passes} of them, run in turn with the others', their rounds pooled)" if args.passes > 1 else ""
    )
    lines = [
        "# exprc beside PyTorch, JAX and a busy core (issue 21)",
        "",
        f"- build measured: commit {_commit()}; the default build's parallel run time: {_build_line(runs)}",
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- machine: `nproc` {nproc()}, {cpu_model()}; {platform.system()} {platform.release()}",
        f"- versions: Python {platform.python_version()}, {versions}",
        f"- command: `{command}`"
        + (" (--quick: tiny sizes, a smoke run; these times mean nothing)" if args.quick else ""),
        f"- load average at the start / end (the machine is shared): "
        f"{' '.join(f'{v:.2f}' for v in load_start)} / {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- environment: {threads}; whole run took {elapsed:.0f} s",
        f"- each scenario a fresh process{processes}; in it, after a check against NumPy, {args.rounds} rounds of one batch "
        f"of exprc calls and one of NumPy calls (about {args.budget} s each, the order swapped every round). "
        "Cells: median time per call (min–max over the rounds); exprc/NumPy: the ratio within each round, "
        "median (min–max)",
        *(f"- {w}: {WORKLOADS[w]}" for w in args.only),
        "",
        "| workload | | " + " | ".join(heads) + " |",
        "|---|---|" + "---:|" * len(scenarios),
    ]
    for w in args.only:
        for label, show in (("exprc", fmt_time), ("NumPy", fmt_time), ("exprc/NumPy", _ratio_text)):
            cells = []
            for s in scenarios:
                run = runs[s]
                times = run.get("results", {}).get(w, {}).get("times")
                if times is None:
                    cells.append("no run" if "error" in run else "—")
                else:
                    cells.append(_spread(_ratios(times) if label == "exprc/NumPy" else times[label], show))
            lines.append(f"| {w if label == 'exprc' else ''} | {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Targets",
        "",
        f"| workload | (b) exprc within {SAME_AS_ALONE}× of (a) | (c) exprc within {SAME_AS_ALONE}× of (a) "
        "| (d) exprc/NumPy no more than in (a) | (a) exprc no slower than (e) |",
        "|---|---|---|---|---|",
    ]
    verdicts = {w: _verdicts(w, runs) for w in args.only}
    for w in args.only:
        lines.append(f"| {w} | " + " | ".join(verdicts[w][s] for s in "bcde") + " |")
    lines += ["", "In words:", ""]
    for s, target in (
        ("b", f"(b) exprc after torch within {SAME_AS_ALONE}× of its time alone"),
        ("c", f"(c) exprc after JAX within {SAME_AS_ALONE}× of its time alone"),
        ("d", "(d) exprc no slower relative to NumPy with one core busy than alone"),
        ("e", "(a) exprc alone no slower than the same kernels on OpenMP (e)"),
    ):
        met = [w for w in args.only if verdicts[w][s].startswith("met")]
        unmet = [f"{w} {verdicts[w][s][len('not met ') :]}" for w in args.only if verdicts[w][s].startswith("not met")]
        unchecked = [w for w in args.only if verdicts[w][s].startswith("not checked")]
        words = [f"met for {', '.join(met)}" if met else ""]
        words += [f"not met for {'; '.join(unmet)}" if unmet else ""]
        words += [f"not checked for {', '.join(unchecked)}" if unchecked else ""]
        lines.append(f"- {target}: {'; '.join(w for w in words if w)}.")
    lines += [
        "",
        "## The processes",
        "",
        "| scenario | set up first | OpenMP run times mapped | CPUs |",
        "|---|---|---|---|",
    ]
    for s in scenarios:
        info = runs[s].get("info")
        if info is None:
            lines.append(f"| ({s}) {SCENARIOS[s]} | {runs[s].get('error', '')} | | |")
            continue
        setup = info["setup"] or "nothing"
        if s == "d":
            setup = f"a Python busy loop pinned to CPU {info.get('busy_core')}, beside the whole process"
        if s == "e":
            setup = "`EXPRC_PARALLEL=openmp`"
        lines.append(
            f"| ({s}) {SCENARIOS[s]} | {setup} | {', '.join(info['openmp']) or 'none'} "
            f"| {','.join(map(str, info['cpus']))} |"
        )
    lines.append("")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {path}")


def _pool(runs, scenario, run):
    """Add one process's rounds to the scenario's; the first process that ran describes it."""
    kept = runs.setdefault(scenario, run)
    if kept is run or "error" in run:
        return
    if "error" in kept:
        runs[scenario] = run
        return
    for workload, result in run["results"].items():
        for name, times in result["times"].items():
            kept["results"][workload]["times"][name] += times


def _names(text, known, what):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(f"--{what}: expected a comma-separated list of {', '.join(known)}; got {text!r}")
    return [n for n in known if n in names]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, 2 rounds of 0.01 s batches")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of exprc and NumPy batches (default 9)")
    parser.add_argument("--passes", type=int, default=1, help="processes per scenario, run in turn; rounds pooled")
    parser.add_argument("--budget", type=float, default=None, help="seconds per batch of calls (default 0.25)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads, e.g. W1,W4")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="scenarios, e.g. a,b")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per scenario's process")
    parser.add_argument("--output", default=str(HERE / "results" / "coexist.md"))
    parser.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.only = _names(args.only, list(WORKLOADS), "only")
    if args.rounds is None:
        args.rounds = 2 if args.quick else 9
    if args.budget is None:
        args.budget = 0.01 if args.quick else 0.25
    if args.rounds < 1 or args.passes < 1:
        raise SystemExit(f"--rounds and --passes: expected at least 1; got {args.rounds} and {args.passes}")
    if args.child:
        child(args.child, args.only, args.rounds, args.budget, args.quick)
        return
    scenarios = _names(args.scenarios, list(SCENARIOS), "scenarios")
    load_start, start = os.getloadavg(), time.perf_counter()
    runs = {}
    # Passes go through all the scenarios in turn, so that a stretch of load on the shared
    # machine falls on every scenario alike rather than on one; their rounds are pooled.
    for p in range(args.passes):
        for s in scenarios:
            print(f"({s}) {SCENARIOS[s]}" + (f", pass {p + 1}" if args.passes > 1 else ""), flush=True)
            run = run_scenario(s, args)
            if "error" in run:
                print(f"  ({s}): {run['error']}", flush=True)
            _pool(runs, s, run)
    write_report(args.output, runs, args, load_start, time.perf_counter() - start)


if __name__ == "__main__":
    main()

"""Compile time of the C back end, cold (empty cache, C compiler run) and warm (a new process that
finds the library in the disk cache), beside JAX (``jax.jit``, first call) and PyTensor (C).

Cases (issue 24), each built from scratch in a process of its own:

- W6: W4's graph, ``cost = mean(log1p(exp(-t * (X @ w)))) + 0.01 * sum(w ** 2)`` with ``X``
  (10000, 100), compiled with outputs ``[cost, ex.grad(cost, w)]``;
- the chains ``y = sin(y) * c_k + x * 0.5`` of 100 and 300 steps (``y`` starts as ``x``, a
  vector of 100; ``c_k = 0.5 + k / 1000``), outputs ``[sum(y), ex.grad(sum(y), x)]``;
- a 10,000-deep elementwise chain (``+ 1.0`` and ``sin`` alternately, as ``tests/test_graph.py``);
- a 5,000-term sum ``sin(x * c_1) + ... + sin(x * c_5000)``;
- the gradient of the 1,000-deep chain's sum;
- W5, the training step of ``bench_training.py`` (784-256-10 MLP, updates of shared variables);
- an RNN of 50 steps, ``h = tanh(W @ h + U @ X[t] + b)`` (64 units, 32 inputs), outputs
  ``[sum(h ** 2)] + ex.grad(..., [W, U, b])``.

The 10,000-deep chain, the 5,000-term sum and the 1,000-deep gradient are the big cases
(``--skip-big`` leaves them out; they run once whatever ``--repeat`` says).

An exprc process times the graph's construction (``ex.grad`` included) and, inside it, the
``exprc.function`` call, of which the C compiler's part (as ``exprc.codegen.c.build`` runs
it); it counts the C lines and the kernels, and the distinct kernels (their C the same but for
their names and comments). A cold process gets a fresh ``EXPRC_CACHE_DIR``; a warm one reuses
it and records whether SymPy was imported. JAX is timed from the first call of the jitted
function (tracing, compiling, running) in a new process; PyTensor from its graph's
construction to its ``pytensor.function``, with a fresh ``compiledir`` (cold) and the same one
(warm). A case
that runs past ``--timeout`` is recorded as "over N s". The processes keep bytecode
(``PYTHONPYCACHEPREFIX`` in a temporary directory, one untimed warm-up process first), as an
installed exprc would. Every compiled result is checked against NumPy (the NumPy back end; for
W5, ``bench_training``'s hand-written step) before it counts.

    python benchmarks/bench_compile.py [--repeat N] [--skip-big] [--quick] [--timeout SECONDS]
                                       [--output PATH]
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import cpu_model, nproc  # noqa: E402 - beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# One case of exprc per process: argv is case[:size], mode, the checkout's root.
_CHILD = r"""
import json, re, sys, time
workload, mode, root = sys.argv[1], sys.argv[2], sys.argv[3]
name, _, size = workload.partition(":")
n = int(size or 0)
sys.path[:0] = [root, root + "/benchmarks"]
import numpy as np
import exprc as ex
from exprc.codegen.c import build

compile_seconds, function_seconds = [], []
_compile, _function = build._compile, ex.function


def timed(record, fn):
    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            record.append(time.perf_counter() - start)
    return call


build._compile = timed(compile_seconds, _compile)
ex.function = timed(function_seconds, _function)
rng = np.random.default_rng(0)
check = None
if name == "w5":
    import bench_training
    X_, Y_, params = bench_training.problem()
sympy_before = "sympy" in sys.modules
start = time.perf_counter()
if name in ("w4", "w4-cost"):
    X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
    cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w ** 2)
    inputs, outputs = [X, w, t], [cost, ex.grad(cost, w)] if name == "w4" else [cost]
    values = [rng.normal(size=(10000, 100)), rng.normal(size=100) * 0.1, np.sign(rng.normal(size=10000))]
elif name == "chain":
    x = y = ex.vector("x")
    for k in range(n):
        y = ex.sin(y) * (0.5 + k / 1000) + x * 0.5
    inputs, outputs = [x], [ex.sum(y), ex.grad(ex.sum(y), x)]
    values = [rng.uniform(-1, 1, 100)]
elif name in ("deep", "graddeep"):
    x = z = ex.vector("x")
    for i in range(n):
        z = ex.sin(z) if i % 2 else z + 1.0
    inputs, outputs = [x], [z] if name == "deep" else [ex.grad(ex.sum(z), x)]
    values = [rng.uniform(-1, 1, 100)]
elif name == "sum":
    x = ex.vector("x")
    inputs, outputs = [x], [sum(ex.sin(x * (1 + k / n)) for k in range(n))]
    values = [rng.uniform(-1, 1, 100)]
elif name == "rnn":
    W, U, b, X = ex.matrix("W"), ex.matrix("U"), ex.vector("b"), ex.matrix("X")
    h = ex.tanh(U @ X[0] + b)
    for step in range(1, n):
        h = ex.tanh(W @ h + U @ X[step] + b)
    cost = ex.sum(h ** 2)
    inputs, outputs = [W, U, b, X], [cost] + list(ex.grad(cost, [W, U, b]))
    values = [rng.normal(size=(64, 64)) * 0.1, rng.normal(size=(64, 32)) * 0.1, rng.normal(size=64) * 0.1,
              rng.normal(size=(n, 32))]
elif name == "w5":
    f = bench_training.exprc_step(params)
    expected = bench_training.numpy_step(params)(X_, Y_)
    check = lambda: np.allclose(f(X_, Y_), expected, rtol=1e-5)
else:
    raise SystemExit(f"unknown case {workload!r}")
if name != "w5":
    f = ex.function(inputs, outputs, backend="c")
total = time.perf_counter() - start
seconds = sum(function_seconds)
sympy_after = "sympy" in sys.modules
ex.function = _function
if mode != "cold":
    ok = True
elif check is not None:
    ok = check()
else:  # the oracle: the NumPy back end
    got, want = f(*values), ex.function(inputs, outputs, backend="numpy")(*values)
    ok = all(np.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(got, want))
program = f._program
# A kernel whose C is an earlier one's calls it ("the same code as"): one body for both.
bodies = {re.sub(r"/\*.*?\*/", "", text, flags=re.S).replace(kname, "K")
          for kname, text in program.kernel_sources.items() if "the same code as" not in text}
print(json.dumps({
    "seconds": seconds, "total_seconds": total, "compile_seconds": sum(compile_seconds), "stats": build.stats,
    "ok": bool(ok), "lines": f.source.count("\n"), "bytes": len(f.source),
    "kernels": len(program.program.kernels), "distinct": len(bodies), "segments": len(program.compiled.segments),
    "sympy_imported_by_call": (not sympy_before) and sympy_after, "sympy_loaded": sympy_after,
}))
"""

# The peers: the same graphs, timed from the first call of the jitted function (JAX, which
# traces, compiles and runs there) or from the pytensor.function call (PyTensor).
_JAX = r"""
import json, sys, time
workload, root = sys.argv[1], sys.argv[2]
name, _, size = workload.partition(":")
n = int(size or 0)
sys.path[:0] = [root, root + "/benchmarks"]
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
rng = np.random.default_rng(0)
if name == "w4":
    def loss(w, X, t):
        return jnp.mean(jnp.log1p(jnp.exp(-t * (X @ w)))) + 0.01 * jnp.sum(w ** 2)
    fn = jax.jit(jax.value_and_grad(loss))
    args = (rng.normal(size=100) * 0.1, rng.normal(size=(10000, 100)), np.sign(rng.normal(size=10000)))
elif name == "chain":
    def loss(x):
        y = x
        for k in range(n):
            y = jnp.sin(y) * (0.5 + k / 1000) + x * 0.5
        return jnp.sum(y)
    fn, args = jax.jit(jax.value_and_grad(loss)), (rng.uniform(-1, 1, 100),)
elif name in ("deep", "graddeep"):
    def chain(x):
        for i in range(n):
            x = jnp.sin(x) if i % 2 else x + 1.0
        return x
    fn = jax.jit(chain if name == "deep" else jax.grad(lambda x: jnp.sum(chain(x))))
    args = (rng.uniform(-1, 1, 100),)
elif name == "sum":
    fn = jax.jit(lambda x: sum(jnp.sin(x * (1 + k / n)) for k in range(n)))
    args = (rng.uniform(-1, 1, 100),)
elif name == "rnn":
    def loss(W, U, b, X):
        h = jnp.tanh(U @ X[0] + b)
        for step in range(1, n):
            h = jnp.tanh(W @ h + U @ X[step] + b)
        return jnp.sum(h ** 2)
    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    args = (rng.normal(size=(64, 64)) * 0.1, rng.normal(size=(64, 32)) * 0.1, rng.normal(size=64) * 0.1,
            rng.normal(size=(n, 32)))
elif name == "w5":
    import bench_training
    X, Y, params = bench_training.problem()
    fn, args = bench_training.jax_step(params), (X, Y)
start = time.perf_counter()
jax.block_until_ready(fn(*args))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

_PYTENSOR = r"""
import json, sys, time
workload, root = sys.argv[1], sys.argv[2]
name, _, size = workload.partition(":")
n = int(size or 0)
sys.path[:0] = [root, root + "/benchmarks"]
import numpy as np
import pytensor, pytensor.tensor as pt
start = time.perf_counter()
if name == "w4":
    X, w, t = pt.dmatrix("X"), pt.dvector("w"), pt.dvector("t")
    cost = pt.mean(pt.log1p(pt.exp(-t * (X @ w)))) + 0.01 * pt.sum(w ** 2)
    pytensor.function([X, w, t], [cost, pytensor.grad(cost, w)])
elif name == "chain":
    x = y = pt.dvector("x")
    for k in range(n):
        y = pt.sin(y) * (0.5 + k / 1000) + x * 0.5
    pytensor.function([x], [pt.sum(y), pytensor.grad(pt.sum(y), x)])
elif name == "w5":
    import bench_training
    X, Y, params = bench_training.problem()
    start = time.perf_counter()
    bench_training.pytensor_step(params)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
_PYTENSOR_CASES = ("w4", "chain", "w5")


def _env(cache_dir, pycache):
    env = dict(os.environ, EXPRC_CACHE_DIR=str(cache_dir), PYTHONPYCACHEPREFIX=str(pycache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    return env


def _process(code, argv, env, timeout):
    """The last line of the process's output as JSON, or None when it ran past ``timeout``.

    Its own session, so that a time-out ends the C compilers it started too.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _run(workload, mode, cache_dir, pycache, timeout=None):
    """One exprc process of ``workload`` (``mode`` "cold" checks its results); with a ``timeout``,
    None where it ran past it; without one, an error after 600 s."""
    result = _process(_CHILD, [workload, mode, str(ROOT)], _env(cache_dir, pycache), timeout or 600)
    if result is None and timeout is None:
        raise RuntimeError(f"{workload} {mode}: over 600 s")
    if result is not None and not result["ok"]:
        raise RuntimeError(f"{workload}: the C back end disagrees with NumPy")
    return result


def _peer(code, workload, env, timeout):
    result = _process(code, [workload, str(ROOT)], env, timeout)
    return None if result is None else result["seconds"]


def _ms(seconds):
    if seconds >= 10:
        return f"{seconds:.1f} s"
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def _summary(values, timeout):
    """Best and median, "over N s" where a process timed out, "—" where none ran."""
    done = [v for v in values if v is not None]
    if not values:
        return "—"
    if not done:
        return f"over {timeout:.0f} s"
    text = _ms(min(done)) + (f" (median {_ms(statistics.median(done))})" if len(done) > 2 else "")
    return text + (f", {len(values) - len(done)} over {timeout:.0f} s" if len(done) < len(values) else "")


def cases(quick, skip_big):
    """``(title, workload, big)``; ``--quick`` makes the chains and the RNN ten times shorter."""
    short = 10 if quick else 1
    chain1, chain2, rnn = 100 // short, 300 // short, 50 // short
    found = [
        ("W6: logistic regression (W4), cost and `ex.grad`", "w4", False),
        (f"chain `y = sin(y) * c_k + x * 0.5`, {chain1} steps, with gradient", f"chain:{chain1}", False),
        (f"the same chain, {chain2} steps, with gradient", f"chain:{chain2}", False),
        ("10,000-deep elementwise chain", "deep:10000", True),
        ("5,000-term sum", "sum:5000", True),
        ("gradient of a 1,000-deep chain", "graddeep:1000", True),
        ("W5: MLP training step (784-256-10, float32, updates)", "w5", False),
        (f"RNN unrolled over {rnn} steps, with gradient", f"rnn:{rnn}", False),
    ]
    return [c for c in found if not (c[2] and (skip_big or quick))]


def measure(workload, repeat, pycache, timeout, peers):
    """Cold and warm exprc processes (None where one timed out), then each peer's."""
    cold, warm, peer_times = [], [], {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="exprc-bench-cache-") as cache_dir:
            cold.append(_run(workload, "cold", cache_dir, pycache, timeout))
            if cold[-1] is None:
                break  # no cache to start warm from, and another try would take as long
            warm.append(_run(workload, "warm", cache_dir, pycache, timeout))
    name = workload.partition(":")[0]
    if "jax" in peers:
        peer_times["jax"] = [_peer(_JAX, workload, dict(os.environ), timeout) for _ in range(repeat)]
    if "pytensor" in peers and name in _PYTENSOR_CASES:
        cold_pt, warm_pt = [], []
        with tempfile.TemporaryDirectory(prefix="pytensor-cache-") as scratch:
            for i in range(repeat):
                env = dict(os.environ)
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                flags = env.get("PYTENSOR_FLAGS", "")
                env["PYTENSOR_FLAGS"] = (flags + "," if flags else "") + f"compiledir={scratch}/cold{i}"
                cold_pt.append(_peer(_PYTENSOR, workload, env, timeout))
                warm_pt.append(_peer(_PYTENSOR, workload, env, timeout))
        peer_times["pytensor"] = (cold_pt, warm_pt)
    return cold, warm, peer_times


def _compiler_version():
    cc = os.environ.get("CC") or "cc"
    try:
        done = subprocess.run(cc.split() + ["--version"], capture_output=True, text=True, timeout=60)
        return done.stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def _installed(name):
    """The version of the peer ``name`` in this Python, or None (not imported here: JAX's import is slow)."""
    if importlib.util.find_spec(name) is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown version"


def _commit():
    """This checkout's commit, and whether exprc's sources differ from it (others' edits count)."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        git + ["status", "--short", "--untracked-files=no", "--", "exprc", "codegen"], capture_output=True, text=True
    ).stdout.strip()
    return (commit or "unknown") + (" with uncommitted changes to exprc or codegen" if dirty else "")


def _row(title, cold, warm, peer_times, timeout):
    done = [r for r in cold if r is not None]
    first = done[0] if done else None
    size = f"{first['lines']:,} / {first['kernels']} / {first['distinct']}" if first else "—"
    cold_cell = _summary([r and r["total_seconds"] for r in cold], timeout)
    if done:
        cold_cell += (
            f"; function {_summary([r['seconds'] for r in done], timeout)}, of which C compiler "
            f"{_summary([r['compile_seconds'] for r in done], timeout)}"
        )
    warm_done = [r for r in warm if r is not None]
    warm_cell = _summary([r and r["total_seconds"] for r in warm], timeout)
    if warm_done:
        warm_cell += f"; function {_summary([r['seconds'] for r in warm_done], timeout)}"
        if any(r["stats"]["compiled"] for r in warm_done):
            warm_cell += " (the compiler ran!)"
    sympy = ("yes" if any(r["sympy_loaded"] for r in warm_done) else "no") if warm_done else "—"
    jax_cell = _summary(peer_times["jax"], timeout) if "jax" in peer_times else "not installed"
    if "pytensor" in peer_times:
        cold_pt, warm_pt = peer_times["pytensor"]
        pt_cell = f"{_summary(cold_pt, timeout)} / {_summary(warm_pt, timeout)}"
    else:
        pt_cell = "—"
    return f"| {title} | {size} | {cold_cell} | {warm_cell} | {sympy} | {jax_cell} | {pt_cell} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="cold/warm process pairs per case (big cases: 1)")
    parser.add_argument("--output", default=str(HERE / "results" / "compile.md"))
    parser.add_argument("--skip-big", action="store_true", help="leave out the big cases")
    parser.add_argument("--quick", action="store_true", help="a smoke run: chains and RNN 10x shorter, no big cases")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per process, then 'over N s'")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from exprc.codegen.c import build

    load_start, commit = os.getloadavg(), _commit()
    versions = {name: _installed(name) for name in ("jax", "pytensor")}
    peers = [name for name, v in versions.items() if v is not None]
    rows = []
    with tempfile.TemporaryDirectory(prefix="exprc-bench-pycache-") as pycache:
        with tempfile.TemporaryDirectory(prefix="exprc-bench-cache-") as warmup:  # bytecode for every module
            _run("w4-cost", "cold", warmup, pycache)
        for title, workload, big in cases(args.quick, args.skip_big):
            cold, warm, peer_times = measure(workload, 1 if big else repeat, pycache, args.timeout, peers)
            rows.append(_row(title, cold, warm, peer_times, args.timeout))
            print(rows[-1], flush=True)
        with tempfile.TemporaryDirectory(prefix="exprc-bench-cache-") as cache_dir:  # W4's cost, no gradient
            _run("w4-cost", "cold", cache_dir, pycache)
            cost_alone = [_run("w4-cost", "warm", cache_dir, pycache) for _ in range(repeat)]

    command = "python benchmarks/bench_compile.py " + " ".join(sys.argv[1:])
    peer_line = ", ".join(f"{name} {v}" if v else f"{name} not installed" for name, v in versions.items())
    lines = [
        "# Compile time of the C back end",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs (`nproc`: {nproc()}), {cpu_model()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, compiler: {_compiler_version()}; {peer_line}",
        f"- flags: `{' '.join(build.FLAGS + tuple(build.libraries()))}`",
        f"- command: `{command.strip()}`, at commit {commit}",
        f"- load average at the start and at the end (other processes compete for the cores): "
        f"{' '.join(f'{x:.2f}' for x in load_start)}; {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- best of {repeat} processes each (median in parentheses from 3 on); the big cases once; "
        f"a process stopped after {args.timeout:.0f} s",
        "",
        "Every cell is a new process. exprc cold: a fresh `EXPRC_CACHE_DIR`; the time from the first",
        "node of the graph to the compiled function (`ex.grad` included), then the `exprc.function` call",
        "alone and the C compiler's part of it. Warm: the same in a new process with the cache full;",
        '"SymPy" says whether that process imported it. C source: lines / kernels / distinct kernels',
        "(their C the same but for names and comments). JAX: the first call of the jitted function",
        "(trace, compile, run). PyTensor (C linker): `pytensor.function`, cold / warm compiledir.",
        "",
        "| case | C source | exprc cold | exprc warm | SymPy (warm) | JAX `jit`, first call | PyTensor cold / warm |",
        "|---|---:|---:|---:|:-:|---:|---:|",
        *rows,
        "",
        f"Warm process, W4's cost alone (no gradient): `exprc.function` "
        f"{_summary([r['seconds'] for r in cost_alone], args.timeout)}; SymPy imported: "
        f"{'yes' if any(r['sympy_loaded'] for r in cost_alone) else 'no'}.",
    ]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

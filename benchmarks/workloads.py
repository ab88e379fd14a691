"""The named workloads W1-W4 and W6, for exprc and each installed peer, side by side in one run.

Each workload runs on the C back end of exprc (``backend="c"``), on NumPy, and
on each peer that imports (numexpr, PyTensor, JAX, PyTorch; all optional, the
``bench`` extra installs them):

- W1: ``exp(-x*x)*sin(y) + log1p(z*z)*tanh(x)`` on 10,000,000 elements
  (1,000,000 with ``--small``), float64 and float32;
- W2: row softmax of a (2000, 2000) float64 matrix;
- W3: ``x*y + 1.0`` on float64 vectors of 10 elements (per-call time, ``timeit``);
- W4: logistic regression, ``[cost, d cost/dw]`` with X (10000, 100), w (100,),
  t (10000,) of +-1, cost = mean(log1p(exp(-t*(X@w)))) + 0.01*sum(w**2):
  exprc uses ``ex.grad``, NumPy a hand-written gradient, JAX
  ``jax.jit(jax.value_and_grad(...))``, PyTensor ``pytensor.grad``, PyTorch autograd;
- W6: compile time of the W4 graph: cold (``exprc.function`` with a fresh,
  empty ``EXPRC_CACHE_DIR``) and warm (a new process reusing that cache), each
  in its own subprocess timing only the ``function`` call, with Python's
  bytecode cache on, as for an installed package; the same for PyTensor (fresh
  ``compiledir``) when it is installed.

Every result is checked against NumPy (``assert_allclose``) before it is
timed; an implementation whose result disagrees is reported as failed, not
timed. Timings are the best of at least 3 repeats, about ``--budget``
seconds per implementation, taken round-robin (one call of each implementation
per round) so that load from other processes on a shared machine hits all of
them alike; the best is the least disturbed run.
The report goes to ``benchmarks/results/workloads.md``, with the date, the
machine, the library versions, the command and, for each workload with a
target, whether it was met.

    python benchmarks/workloads.py [--small] [--budget SECONDS] [--compile-repeat N] [--output PATH]
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import best_per_call, cpu_model, fmt_time, nproc  # noqa: E402 - beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # this checkout, installed with pip install -e

import exprc as ex  # noqa: E402

PEERS = ("numexpr", "PyTensor", "JAX", "torch")
COLUMNS = ("exprc c", "NumPy") + PEERS


def _optional(name):
    try:
        return __import__(name)
    except Exception:  # an optional peer: absent or broken is the same here
        return None


numexpr = _optional("numexpr")
jax = _optional("jax")
if jax is not None:
    jax.config.update("jax_enable_x64", True)  # W1-W4 are float64 (W1 also float32)
    import jax.numpy as jnp
pytensor = _optional("pytensor")
if pytensor is not None:
    import pytensor.tensor as pt
    from pytensor.tensor.special import softmax as pt_softmax
torch = _optional("torch")


# ---------------------------------------------------------------- timing


class Row:
    """One line of the table: a time (or a status) per column, a target and its verdict."""

    def __init__(self, name):
        self.name = name
        self.cells = {}  # column -> seconds, or a short string ("failed: ...", "n/a")
        self.target = ""
        self.verdict = ""

    def time(self, column):
        value = self.cells.get(column)
        return value if isinstance(value, float) else None

    def show(self):
        print(
            f"{self.name:34s} "
            + "  ".join(f"{c}: {fmt_time(v) if isinstance(v, float) else v}" for c, v in self.cells.items()),
            flush=True,
        )


def best_times_interleaved(impls, data, budget):
    """Best time of one call for each implementation, timed round-robin (one call of each per
    round, at least 3 rounds, about ``budget`` seconds per implementation in all), so that a
    burst of load from other processes hits every implementation alike."""
    for fn in impls.values():
        fn(*data)  # warm up
    best = {column: float("inf") for column in impls}
    rounds, start = 0, time.perf_counter()
    while rounds < 3 or (time.perf_counter() - start < budget * len(impls) and rounds < 1000):
        for column, fn in impls.items():
            t0 = time.perf_counter()
            fn(*data)
            best[column] = min(best[column], time.perf_counter() - t0)
        rounds += 1
    return best


def run_impls(row, impls, data, check, budget, per_call=False):
    """Check each implementation's result with ``check``, then time those that agree
    (round-robin, or one after another with ``timeit`` for microsecond calls)."""
    ok = {}
    for column, fn in impls.items():
        try:
            check(fn(*data))
        except Exception as exc:  # a wrong answer or an unsupported op: report, don't time
            row.cells[column] = f"failed ({type(exc).__name__})"
            print(f"  {row.name} / {column}: {type(exc).__name__}: {str(exc).strip()[:300]}", flush=True)
            continue
        ok[column] = fn
    if per_call:
        row.cells.update(
            {column: best_per_call(fn, data, budget, repeat=7, min_number=10) for column, fn in ok.items()}
        )
    else:
        row.cells.update(best_times_interleaved(ok, data, budget))
    row.show()


def speedup_verdict(row, base, factor, label=None):
    """'met (5.2× NumPy)' when ``base`` takes at least ``factor`` times as long as exprc."""
    label = label or base
    mine, theirs = row.time("exprc c"), row.time(base)
    if theirs is None:
        return f"not checked ({label} {'not installed' if base not in row.cells else 'failed'})"
    if mine is None:
        return "not met (exprc failed)"
    ratio = theirs / mine
    return f"{'met' if ratio >= factor else 'not met'} ({ratio:.2f}× {label})"


# ---------------------------------------------------------------- W1


def w1(n, dtype, budget, rng):
    row = Row(f"W1 {n:,d} {dtype}")
    x, y, z = (ex.tensor(name, dtype=dtype, shape=(None,)) for name in "xyz")
    fc = ex.function([x, y, z], ex.exp(-x * x) * ex.sin(y) + ex.log1p(z * z) * ex.tanh(x), backend="c")
    data = [rng.uniform(-2, 2, n).astype(dtype) for _ in range(3)]

    def np_fn(x, y, z):
        return np.exp(-x * x) * np.sin(y) + np.log1p(z * z) * np.tanh(x)

    impls = {"exprc c": fc, "NumPy": np_fn}
    if numexpr is not None:
        impls["numexpr"] = lambda x, y, z: numexpr.evaluate("exp(-x*x)*sin(y) + log1p(z*z)*tanh(x)")
    if pytensor is not None:
        px, py, pz = (pt.vector(name, dtype=dtype) for name in "xyz")
        impls["PyTensor"] = pytensor.function(
            [px, py, pz], pt.exp(-px * px) * pt.sin(py) + pt.log1p(pz * pz) * pt.tanh(px)
        )
    if jax is not None:
        jf = jax.jit(lambda x, y, z: jnp.exp(-x * x) * jnp.sin(y) + jnp.log1p(z * z) * jnp.tanh(x))
        impls["JAX"] = lambda x, y, z: jf(x, y, z).block_until_ready()
    if torch is not None:

        def torch_fn(x, y, z):
            x, y, z = (torch.from_numpy(a) for a in (x, y, z))
            return (torch.exp(-x * x) * torch.sin(y) + torch.log1p(z * z) * torch.tanh(x)).numpy()

        impls["torch"] = torch_fn

    # The reference is computed in float64 from the same (possibly float32) inputs;
    # a float32 result is allowed float32 rounding (values are of order 1).
    expected = np_fn(*(a.astype(np.float64) for a in data))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=1e-5)

    def check(out):
        out = np.asarray(out)
        assert out.dtype == np.dtype(dtype), f"dtype {out.dtype}, expected {dtype}"
        np.testing.assert_allclose(out, expected, **tol)

    run_impls(row, impls, data, check, budget)
    row.target = "≥4× faster than NumPy, ≥2× faster than JAX"
    row.verdict = f"{speedup_verdict(row, 'NumPy', 4)}; {speedup_verdict(row, 'JAX', 2)}"
    return row


# ---------------------------------------------------------------- W2


def w2(budget, rng):
    row = Row("W2 softmax (2000, 2000) float64")
    x = ex.matrix("x")
    fc = ex.function([x], ex.softmax(x, axis=1), backend="c")
    data = [rng.standard_normal((2000, 2000))]

    def np_fn(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    impls = {"exprc c": fc, "NumPy": np_fn}
    if pytensor is not None:
        px = pt.dmatrix("x")
        impls["PyTensor"] = pytensor.function([px], pt_softmax(px, axis=1))
    if jax is not None:
        jf = jax.jit(lambda x: jax.nn.softmax(x, axis=1))
        impls["JAX"] = lambda x: jf(x).block_until_ready()
    if torch is not None:
        impls["torch"] = lambda x: torch.softmax(torch.from_numpy(x), dim=1).numpy()
    expected = np_fn(*data)
    run_impls(row, impls, data, lambda out: np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-15), budget)
    row.cells.setdefault("numexpr", "n/a")
    row.target = "≥2× faster than NumPy"
    row.verdict = speedup_verdict(row, "NumPy", 2)
    return row


# ---------------------------------------------------------------- W3


def w3(budget, rng):
    row = Row("W3 x*y + 1.0, 10 float64 (per call)")
    x, y = ex.vector("x"), ex.vector("y")
    fc = ex.function([x, y], x * y + 1.0, backend="c")
    data = [rng.uniform(-1, 1, 10), rng.uniform(-1, 1, 10)]
    impls = {"exprc c": fc, "NumPy": lambda x, y: x * y + 1.0}
    if numexpr is not None:
        impls["numexpr"] = lambda x, y: numexpr.evaluate("x*y + 1.0")
    if pytensor is not None:
        px, py = pt.dvector("x"), pt.dvector("y")
        impls["PyTensor"] = pytensor.function([px, py], px * py + 1.0)
    if jax is not None:
        jf = jax.jit(lambda x, y: x * y + 1.0)
        impls["JAX"] = lambda x, y: jf(x, y).block_until_ready()
    if torch is not None:
        impls["torch"] = lambda x, y: (torch.from_numpy(x) * torch.from_numpy(y) + 1.0).numpy()
    expected = data[0] * data[1] + 1.0
    run_impls(
        row,
        impls,
        data,
        lambda out: np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0),
        budget,
        per_call=True,
    )
    mine = row.time("exprc c")
    row.target = "≤1.5 µs per call"
    row.verdict = (
        "not met (exprc failed)" if mine is None else f"{'met' if mine <= 1.5e-6 else 'not met'} ({fmt_time(mine)})"
    )
    return row


# ---------------------------------------------------------------- W4


def _w4_exprc_graph():
    X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
    cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w**2)
    return [X, w, t], [cost, ex.grad(cost, w)]


def _w4_pytensor_graph():
    X, w, t = pt.dmatrix("X"), pt.dvector("w"), pt.dvector("t")
    cost = pt.mean(pt.log1p(pt.exp(-t * (X @ w)))) + 0.01 * pt.sum(w**2)
    return [X, w, t], [cost, pytensor.grad(cost, w)]


def w4_numpy(X, w, t):
    """cost and d cost/dw written by hand: d/dm log1p(exp(-t m)) = -t sigmoid(-t m)."""
    e = np.exp(-t * (X @ w))
    cost = np.mean(np.log1p(e)) + 0.01 * np.sum(w**2)
    grad = X.T @ (-t * (e / (1.0 + e)) / X.shape[0]) + 0.02 * w
    return cost, grad


def w4(budget, rng):
    row = Row("W4 logistic regression cost+grad")
    fc = ex.function(*_w4_exprc_graph(), backend="c")
    data = [rng.standard_normal((10000, 100)), 0.1 * rng.standard_normal(100), rng.choice([-1.0, 1.0], 10000)]
    impls = {"exprc c": fc, "NumPy": w4_numpy}
    if pytensor is not None:
        impls["PyTensor"] = pytensor.function(*_w4_pytensor_graph())
    if jax is not None:

        def jloss(w, X, t):
            return jnp.mean(jnp.log1p(jnp.exp(-t * (X @ w)))) + 0.01 * jnp.sum(w**2)

        jf = jax.jit(jax.value_and_grad(jloss))

        def jax_fn(X, w, t):
            return jax.block_until_ready(jf(w, X, t))

        impls["JAX"] = jax_fn
    if torch is not None:

        def torch_fn(X, w, t):
            X, t = torch.from_numpy(X), torch.from_numpy(t)
            w = torch.from_numpy(w).requires_grad_(True)
            cost = torch.mean(torch.log1p(torch.exp(-t * (X @ w)))) + 0.01 * torch.sum(w**2)
            (grad,) = torch.autograd.grad(cost, w)
            return cost.detach().numpy(), grad.numpy()

        impls["torch"] = torch_fn
    cost, grad = w4_numpy(*data)

    def check(out):
        got_cost, got_grad = out
        np.testing.assert_allclose(np.asarray(got_cost), cost, rtol=1e-10)
        np.testing.assert_allclose(np.asarray(got_grad), grad, rtol=1e-8, atol=1e-12)

    run_impls(row, impls, data, check, budget)
    row.cells.setdefault("numexpr", "n/a")
    row.target = "≥1.5× faster than NumPy (hand-written gradient)"
    row.verdict = speedup_verdict(row, "NumPy", 1.5)
    return row


# ---------------------------------------------------------------- GP


def gp(budget, rng):
    """A Gaussian process's negative log marginal likelihood and its gradient (n = 1000):
    the cases of bench_gp.py, which checks them against NumPy's hand-written gradient."""
    import bench_gp

    row = Row("GP likelihood+grad, n = 1000 float64")
    columns = {"exprc": "exprc c", "PyTorch": "torch"}
    impls = {columns.get(k, k): call for k, call in bench_gp.cases(1000).items()}
    x, y = bench_gp.data(1000)
    data = [x, y, bench_gp.THETA]
    nll, grad = bench_gp.numpy_nll_and_grad(*data)

    def check(out):
        got_nll, got_grad = out
        np.testing.assert_allclose(np.asarray(got_nll), nll, rtol=1e-8)
        np.testing.assert_allclose(np.asarray(got_grad), grad, rtol=1e-6, atol=1e-9)

    run_impls(row, impls, data, check, budget)
    row.cells.setdefault("numexpr", "n/a")
    row.target = "a row of the issue (no target)"
    row.verdict = "n/a"
    return row


# ---------------------------------------------------------------- W6

_COMPILE_SNIPPET = {
    # Self-contained, so that the process imports only the library being timed.
    "exprc": """
import json, sys, time
sys.path.insert(0, {root!r})
import exprc as ex
X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w ** 2)
outputs = [cost, ex.grad(cost, w)]
t0 = time.perf_counter(); ex.function([X, w, t], outputs, backend="c"); elapsed = time.perf_counter() - t0
print(json.dumps({{"seconds": elapsed}}))
""",
    "pytensor": """
import json, time
import pytensor, pytensor.tensor as pt
X, w, t = pt.dmatrix("X"), pt.dvector("w"), pt.dvector("t")
cost = pt.mean(pt.log1p(pt.exp(-t * (X @ w)))) + 0.01 * pt.sum(w ** 2)
outputs = [cost, pytensor.grad(cost, w)]
t0 = time.perf_counter(); pytensor.function([X, w, t], outputs); elapsed = time.perf_counter() - t0
print(json.dumps({{"seconds": elapsed}}))
""",
}


def _compile_once(lib, env, timeout):
    code = _COMPILE_SNIPPET[lib].format(root=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-500:])
    return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


def _compile_times(lib, repeat, timeout):
    """(best cold, best warm) seconds of the compile call, each in a new process.
    Cold: a fresh empty cache per repeat; warm: a new process reusing the last cold cache."""
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix=f"{lib}-cache-") as tmp:
        for i in range(repeat):
            cache = Path(tmp) / f"cold{i}"
            cache.mkdir()
            env = dict(os.environ)
            # As an installed package runs: Python's bytecode cache on (an environment that
            # turns it off makes every process recompile the library's modules first).
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if lib == "exprc":
                env["EXPRC_CACHE_DIR"] = str(cache)
            else:
                flags = env.get("PYTENSOR_FLAGS", "")
                env["PYTENSOR_FLAGS"] = (flags + "," if flags else "") + f"compiledir={cache}"
            cold.append(_compile_once(lib, env, timeout))
        for _ in range(repeat):
            warm.append(_compile_once(lib, env, timeout))
    return min(cold), min(warm)


def w6(repeat, pytensor_repeat, timeout):
    rows = [Row("W6 compile W4 graph, cold"), Row("W6 compile W4 graph, warm (new process)")]
    libs = [("exprc c", "exprc", repeat)]
    if pytensor is not None:
        libs.append(("PyTensor", "pytensor", pytensor_repeat))
    for column, lib, n in libs:
        try:
            cold, warm = _compile_times(lib, n, timeout)
        except Exception as exc:
            print(f"  W6 / {column}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            for r in rows:
                r.cells[column] = f"failed ({type(exc).__name__})"
            continue
        rows[0].cells[column], rows[1].cells[column] = cold, warm
    for r in rows:
        for column in COLUMNS:
            if column in ("NumPy", "numexpr") or (column in ("JAX", "torch") and column not in r.cells):
                r.cells.setdefault(column, "n/a")
        r.show()
    for r, limit in zip(rows, (1.0, 0.030)):
        mine = r.time("exprc c")
        r.target = f"≤{fmt_time(limit)}"
        r.verdict = (
            "not met (exprc failed)" if mine is None else f"{'met' if mine <= limit else 'not met'} ({fmt_time(mine)})"
        )
    return rows


# ---------------------------------------------------------------- report


def _compiler():
    cc = os.environ.get("CC", "cc")
    try:
        first = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        first = "not found"
    return f"`{cc}`: {first}"


def _pytensor_linker():
    if pytensor is None:
        return "(not installed)"
    x = pt.dvector("x")
    return f"`{type(pytensor.function([x], x + 1.0).maker.linker).__name__}`"


def _versions():
    parts = [f"Python {platform.python_version()}", f"NumPy {np.__version__}", f"exprc {ex.__version__}"]
    for label, mod in (("numexpr", numexpr), ("PyTensor", pytensor), ("JAX", jax), ("torch", torch)):
        parts.append(f"{label} {mod.__version__ if mod is not None else 'not installed'}")
    if jax is not None:
        import jaxlib

        parts.append(f"jaxlib {jaxlib.__version__}")
    return ", ".join(parts)


def write_report(path, rows, args, load_start, elapsed):
    command = "python benchmarks/workloads.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))
    lines = [
        "# Workloads W1–W4 and W6: exprc against NumPy and the installed peers",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- machine: `nproc` {nproc()}, {cpu_model()}; {platform.system()} {platform.release()}",
        f"- versions: {_versions()}",
        f"- C compiler: {_compiler()}",
        f"- command: `{command}` ({'--small: W1 on 1,000,000 elements' if args.small else 'full size: W1 on 10,000,000 elements'})",
        f"- load average at the start / end (the machine is shared; other work competes for the cores): "
        f"{' '.join(f'{v:.2f}' for v in load_start)} / {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; whole run took {elapsed:.0f} s",
        f"- times: best of at least 3 repeats, about {args.budget} s per cell, taken round-robin across the libraries (W3: `timeit`, best of 7 "
        f"repeats of many calls); W6: best of {args.compile_repeat} cold and {args.compile_repeat} warm "
        f"subprocesses for exprc, {args.pytensor_compile_repeat} each for PyTensor, timing only the "
        "`function` call, with Python's bytecode cache on",
        "- every result was checked against NumPy (`assert_allclose`) before timing; "
        '"failed" means it disagreed or raised, "—" means not installed, "n/a" means not run for that library',
        "",
        "| workload | " + " | ".join(COLUMNS) + " | target | met? |",
        "|---|" + "---:|" * len(COLUMNS) + "---|---|",
    ]
    for r in rows:
        cells = [fmt_time(r.cells[c]) if isinstance(r.cells.get(c), float) else r.cells.get(c, "—") for c in COLUMNS]
        lines.append(f"| {r.name} | " + " | ".join(cells) + f" | {r.target} | {r.verdict} |")
    lines += [
        "",
        'Columns: `exprc c` is `exprc.function(..., backend="c")` called as users call it; NumPy',
        "is the expression written in NumPy (W4: a hand-written gradient); numexpr `evaluate`; PyTensor",
        "`pytensor.function` with its default mode; JAX `jax.jit` (with `jax_enable_x64`, results",
        "waited for with `block_until_ready`); torch on CPU tensors sharing NumPy's memory.",
        "Speed-ups in the last column are the peer's best time divided by exprc's.",
        f"PyTensor's default mode here uses the {_pytensor_linker()}; W6 for PyTensor sets a fresh",
        "`compiledir` for the cold process, which a linker that compiles in memory does not use.",
        "",
    ]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines))
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="W1 on 1,000,000 elements instead of 10,000,000")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of repeats per timing (at least 3 repeats)")
    parser.add_argument("--compile-repeat", type=int, default=3, help="W6: cold and warm processes for exprc")
    parser.add_argument(
        "--pytensor-compile-repeat",
        type=int,
        default=1,
        help="W6: cold and warm processes for PyTensor (a cold PyTensor build is slow)",
    )
    parser.add_argument("--compile-timeout", type=float, default=300, help="W6: seconds allowed per subprocess")
    parser.add_argument("--output", default=str(HERE / "results" / "workloads.md"))
    args = parser.parse_args()

    load_start, start = os.getloadavg(), time.perf_counter()
    rng = np.random.default_rng(0)
    n = 1_000_000 if args.small else 10_000_000
    rows = [
        w1(n, "float64", args.budget, rng),
        w1(n, "float32", args.budget, rng),
        w2(args.budget, rng),
        w3(args.budget, rng),
        w4(args.budget, rng),
        gp(args.budget, rng),
    ]
    rows += w6(args.compile_repeat, args.pytensor_compile_repeat, args.compile_timeout)
    write_report(args.output, rows, args, load_start, time.perf_counter() - start)


if __name__ == "__main__":
    main()

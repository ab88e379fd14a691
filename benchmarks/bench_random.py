"""Random numbers: 10^7 float32 uniforms and normals, and dropout on a 10^7 float32 array,
exprc (``ex.random.RandomStream``, C back end) beside NumPy's Generator (PCG64 and Philox),
JAX (``jax.random`` under ``jit``) and PyTorch, where installed.

Each exprc result is first checked: the uniforms against the NumPy reference of the same
draw (bit for bit), the normals and the dropout mask by their moments. Run from the
repository root; writes ``benchmarks/results/random.md``.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import cpu_model, fmt_time, nproc  # noqa: E402

import exprc as ex  # noqa: E402
from exprc.ops.random import draw_values  # noqa: E402

KEEP = 0.8


def _best(fn, args, repeat):
    """The best time of ``repeat`` calls (each call here takes milliseconds at least)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def _exprc(n):
    srng = ex.random.RandomStream(seed=1)
    uniform = ex.function([], srng.uniform(size=(n,), dtype="float32"), updates=srng.updates())
    normal = ex.function([], srng.normal(size=(n,), dtype="float32"), updates=srng.updates())
    x = ex.vector("x", dtype="float32")
    mask = srng.bernoulli(KEEP, size=x.shape)
    dropout = ex.function([x], x * mask / np.float32(KEEP), updates=srng.updates())
    data = np.ones(n, np.float32)
    calls = int(srng.state.get_value()[1])
    got = uniform()
    draw = uniform.outputs[0].owner.op.draw
    expected = draw_values(
        "uniform", draw, "float32", np.array([1, calls], np.uint64), (n,), [np.float32(0), np.float32(1)]
    )
    assert np.array_equal(got, expected), "exprc's uniforms are not the reference's"
    z = normal()
    assert z.dtype == np.float32 and abs(z.mean()) < 1e-2 and abs(z.std() - 1) < 1e-2
    d = dropout(data)
    assert d.dtype == np.float32 and abs((d != 0).mean() - KEEP) < 1e-2
    return {"uniform": (uniform, ()), "normal": (normal, ()), "dropout": (dropout, (data,))}


def _exprc_routine(n):
    """The C routine a draw node's step is (codegen/c/random.run_draw), called directly:
    what a compiled function spends once the C program calls its lowering's step."""
    from exprc.codegen.c import random as c_random

    calls = {"n": 0}
    x = ex.vector("x", dtype="float32")
    m = ex.vector("m", dtype="bool")
    scale = ex.function([x, m], x * m / np.float32(KEEP))

    def draw(dist, dtype, params):
        calls["n"] += 1
        return c_random.draw(dist, 0, dtype, np.array([1, calls["n"]], np.uint64), (n,), params)

    one, zero = np.float32(1), np.float32(0)
    data = np.ones(n, np.float32)
    return {
        "uniform": (lambda: draw("uniform", "float32", [zero, one]), ()),
        "normal": (lambda: draw("normal", "float32", [zero, one]), ()),
        "dropout": (lambda d: scale(d, draw("bernoulli", "bool", [np.float64(KEEP)])), (data,)),
    }


def _numpy(n, bit_generator):
    g = np.random.Generator(bit_generator(1))
    data = np.ones(n, np.float32)
    keep = np.float32(KEEP)
    return {
        "uniform": (lambda: g.random(n, dtype=np.float32), ()),
        "normal": (lambda: g.standard_normal(n, dtype=np.float32), ()),
        "dropout": (lambda x: x * (g.random(n, dtype=np.float32) < keep) / keep, (data,)),
    }


def _jax(n):
    import jax
    import jax.numpy as jnp

    state = {"key": jax.random.PRNGKey(1)}

    @jax.jit
    def uniform(key):
        key, sub = jax.random.split(key)
        return key, jax.random.uniform(sub, (n,), jnp.float32)

    @jax.jit
    def normal(key):
        key, sub = jax.random.split(key)
        return key, jax.random.normal(sub, (n,), jnp.float32)

    @jax.jit
    def dropout(key, x):
        key, sub = jax.random.split(key)
        return key, jnp.where(jax.random.bernoulli(sub, KEEP, x.shape), x / KEEP, 0)

    def run(fn):
        def call(*args):
            state["key"], out = fn(state["key"], *args)
            return out.block_until_ready()

        return call

    data = jnp.ones(n, jnp.float32)
    return {"uniform": (run(uniform), ()), "normal": (run(normal), ()), "dropout": (run(dropout), (data,))}


def _torch(n):
    import torch

    g = torch.Generator().manual_seed(1)
    data = torch.ones(n, dtype=torch.float32)
    return {
        "uniform": (lambda: torch.rand(n, generator=g), ()),
        "normal": (lambda: torch.randn(n, generator=g), ()),
        "dropout": (lambda x: torch.nn.functional.dropout(x, 1 - KEEP, training=True), (data,)),
    }


def _peers(n):
    peers = {
        "exprc": _exprc(n),
        "exprc's C routine": _exprc_routine(n),
        "NumPy PCG64": _numpy(n, np.random.PCG64),
        "NumPy Philox": _numpy(n, np.random.Philox),
    }
    for name, make in (("JAX (jit)", _jax), ("PyTorch", _torch)):
        try:
            peers[name] = make(n)
        except ImportError:
            print(f"{name}: not installed, left out")
    return peers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10**7, help="elements per draw (default 10^7)")
    parser.add_argument("--repeat", type=int, default=7, help="calls timed per case (the best is kept)")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "random.md"))
    args = parser.parse_args(argv)
    peers = _peers(args.size)
    cases = ("uniform", "normal", "dropout")
    times = {}
    for peer, table in peers.items():
        for case in cases:
            fn, fn_args = table[case]
            fn(*fn_args)  # compile, warm up
            times[peer, case] = _best(fn, fn_args, args.repeat)
            print(f"{peer:14} {case:8} {fmt_time(times[peer, case])}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Random numbers: 10^7 float32 draws and dropout",
        "",
        f"{datetime.date.today()}, commit {commit}, Python {platform.python_version()}, NumPy {np.__version__}, "
        f"{nproc()} CPUs ({cpu_model()}), load average {load:.1f} at the end, exprc's threads: "
        f"{ex.get_num_threads()}. `python benchmarks/bench_random.py` (best of {args.repeat} calls per case).",
        "",
        f"Size: {args.size} elements. Dropout keeps {KEEP} of a float32 array and scales by 1/{KEEP}.",
        "exprc: a compiled function drawing from `ex.random.RandomStream` (C back end). On this",
        "commit the C program runs a draw node's NumPy reference (vectorized Philox in NumPy), since",
        "it does not call its lowering's step (`Lowering.run`) yet; \"exprc's C routine\" is that",
        "step, codegen/c/philox.c called directly (for dropout: the mask, then a compiled",
        "`x * mask / 0.8`), which is what the function spends once the program calls it.",
        "",
        "| | " + " | ".join(cases) + " |",
        "|---|" + "---|" * len(cases),
    ]
    for peer in peers:
        lines.append(f"| {peer} | " + " | ".join(fmt_time(times[peer, c]) for c in cases) + " |")
    ours = "exprc's C routine"
    lines += ["", f"Speed-up of {ours} (time of the other / its time):", "", "| | " + " | ".join(cases) + " |"]
    lines.append("|---|" + "---|" * len(cases))
    for peer in peers:
        if peer != ours:
            lines.append(f"| {peer} | " + " | ".join(f"{times[peer, c] / times[ours, c]:.2f}x" for c in cases) + " |")
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

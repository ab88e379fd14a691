"""The host's share of a call on device="cuda", measured without a GPU.

A call of a GPU function costs Python time before the GPU does anything: the
input checks, then per kernel its shapes, launch shape and packed arguments,
or, for inputs of a layout seen before, a replay of the recorded call
(``codegen/cuda/replay.py``). On small arrays that time is the call's time, so
it decides W3 (at most 10 µs per call) and whether a training step beats
PyTorch's eager mode. This script measures it on any machine, over the test
suite's stand-in driver (``tests/codegen/cuda_fake.py``): each function's
results are first checked against NumPy through the stand-in, which computes
every launch; then launches are made to do nothing, and the calls are timed
with ``timeit``, step by step (replays off) and replayed.

Workloads: W3 (``x*y + 1.0`` on 10 float64), a row softmax of (64, 64)
float32, and the W5 SGD step (784-256-10 tanh MLP, batch 512, float32).
The GPU's own launch cost (a few µs per kernel in the driver) comes on top.

    python benchmarks/bench_gpu_host.py [--repeat N] [--output PATH]
"""

import argparse
import datetime
import os
import platform
import sys
import timeit
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout, installed with pip install -e

from bench_training import RATE, problem  # noqa: E402 - beside this script

import exprc as ex  # noqa: E402


def _stand_in():
    """The stand-in driver, patched in for the rest of the process, and a switch that makes
    its launches do nothing."""
    import pytest

    from exprc.codegen.cuda import driver as cuda_driver
    from tests.codegen.cuda_fake import FakeGpu

    patch = pytest.MonkeyPatch()
    gpu = FakeGpu(patch)
    computing = {"on": True}
    call = gpu.call
    patch.setattr(
        cuda_driver,
        "call",
        lambda name, *args: None if name == "cuLaunchKernel" and not computing["on"] else call(name, *args),
    )
    return patch, computing, gpu


def _workloads():
    """``(name, function, inputs, NumPy's results)``."""
    rng = np.random.default_rng(0)
    x, y = ex.vector("x"), ex.vector("y")
    a, b = rng.standard_normal(10), rng.standard_normal(10)
    yield "W3 x*y + 1.0, 10 float64", ex.function([x, y], x * y + 1.0, device="cuda"), (a, b), a * b + 1.0

    m = ex.fmatrix("m")
    v = rng.standard_normal((64, 64)).astype(np.float32)
    e = np.exp(v - v.max(axis=1, keepdims=True))
    yield (
        "softmax (64, 64) float32",
        ex.function([m], ex.softmax(m, axis=1), device="cuda"),
        (v,),
        e / e.sum(1, keepdims=True),
    )

    X, Y, params = problem()
    shared = [ex.shared(p, name=n) for p, n in zip(params, ("W1", "b1", "W2", "b2"))]
    W1, b1, W2, b2 = shared
    xs, ys = ex.fmatrix("X"), ex.fmatrix("Y")
    loss = -(ys * ex.log_softmax(ex.tanh(xs @ W1 + b1) @ W2 + b2, axis=1)).sum(axis=1).mean()
    grads = ex.grad(loss, shared)
    step = ex.function(
        [xs, ys], loss, updates=[(p, p - np.float32(RATE) * g) for p, g in zip(shared, grads)], device="cuda"
    )
    z = np.tanh(X @ params[0] + params[1]) @ params[2] + params[3]
    z = z - z.max(axis=1, keepdims=True)
    first_loss = -(Y * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))).sum(axis=1).mean()
    yield "W5 MLP SGD step, batch 512 float32", step, (X, Y), first_loss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "gpu_host.md")
    args = parser.parse_args(argv)
    from exprc.codegen.cuda import nvrtc
    from exprc.codegen.cuda import program as cuda

    if nvrtc.unavailable_reason() is not None:
        print("bench_gpu_host: skipped, NVRTC is missing: " + nvrtc.unavailable_reason())
        return 0
    patch, computing, gpu = _stand_in()
    rows = []
    for name, f, host, expected in _workloads():
        device = [ex.cuda.to_device(h) for h in host]
        gpu.launches.clear()
        got = f(*device)
        np.testing.assert_allclose(got.get(), expected, rtol=1e-5, atol=1e-6)
        launches = len(gpu.launches)
        computing["on"] = False
        times = {}
        for mode in ("step by step", "replayed"):
            with patch.context() as local:
                if mode == "step by step":
                    local.setattr(cuda, "signature", lambda arrays: None)
                number = max(10, int(0.2 / max(1e-6, min(timeit.repeat(lambda: f(*device), number=3, repeat=2)) / 3)))
                times[mode] = min(timeit.repeat(lambda: f(*device), number=number, repeat=args.repeat)) / number
        computing["on"] = True
        rows.append((name, launches, times["step by step"], times["replayed"]))
        print(
            f"{name:40s} {times['step by step'] * 1e6:9.1f} µs step by step {times['replayed'] * 1e6:8.1f} µs replayed"
        )
    lines = [
        '# Host time of a call on device="cuda" (no GPU: launches do nothing)',
        "",
        f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {platform.machine()} with {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, exprc {ex.__version__}.",
        "",
        f"Command: `python benchmarks/bench_gpu_host.py --repeat {args.repeat}`. Best of the repeats of a "
        "`timeit` loop; each function's results were checked against NumPy first, through the stand-in "
        "driver. The driver's own launch cost comes on top on a GPU.",
        "",
        "| workload | launches per call | step by step | replayed |",
        "|---|---:|---:|---:|",
    ]
    for name, launches, stepwise, replayed in rows:
        lines.append(f"| {name} | {launches} | {stepwise * 1e6:.1f} µs | {replayed * 1e6:.1f} µs |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    patch.undo()
    return 0


if __name__ == "__main__":
    sys.exit(main())

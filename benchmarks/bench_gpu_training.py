"""Training on the GPU: exprc's device="cuda" beside PyTorch (eager and torch.compile) and JAX.

Workloads (the CPU ones of bench_training.py and workloads.py, on the GPU):

- W4: logistic regression, ``[cost, d cost/dw]`` with X (10000, 100) and w
  (100,), float64, X already on the device;
- W5: one SGD step of a 784-256-10 tanh MLP, batch 512, float32, softmax
  cross-entropy, parameters on the device and updated there;
- GEMM: square float32 products of 4096 and 8192, exprc's kernel exact and
  with TF32 allowed, beside ``torch.matmul`` with TF32 off and on; and square
  float16 and bfloat16 products of the same sizes on the tensor cores, exprc's
  pipelined kernels run on PyTorch's memory (NumPy has no bfloat16), beside
  ``torch.matmul``, with each result's error relative to NumPy's float64.

Every implementation's result is checked against NumPy before it is timed.
Times are the best of several repeats, each synchronized with the GPU (the
work is done, not just queued). The report goes to
``benchmarks/results/gpu_training.md``.

Needs a GPU: where exprc finds none (``exprc.cuda.is_available()``) the script
prints why and exits 0 without writing anything. The peers are optional;
those not installed, or without a GPU, are left out of the table.

    python benchmarks/bench_gpu_training.py [--repeat N] [--output PATH]
"""

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout, installed with pip install -e

from bench_training import RATE, _optional  # noqa: E402 - beside this script
from bench_training import problem as mlp_problem  # noqa: E402 - after the path setup above

import exprc as ex  # noqa: E402


def _sync_exprc():
    from exprc.codegen.cuda.array import _synchronize

    _synchronize(0)


def device_name():
    """The name of GPU 0, as its driver gives it."""
    from exprc.codegen.cuda import driver as cuda_driver

    name = cuda_driver.ffi().new("char[]", 256)
    cuda_driver.call("cuDeviceGetName", name, 256, cuda_driver.device(0))
    return cuda_driver.ffi().string(name).decode()


def best_time(fn, sync, repeat):
    """The best wall time of ``fn()`` followed by ``sync()``, after one warm-up call."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------- W5: an MLP step


def numpy_mlp_loss(X, Y, params):
    W1, b1, W2, b2 = params
    z = np.tanh(X @ W1 + b1) @ W2 + b2
    z = z - z.max(axis=1, keepdims=True)
    return float(-(Y * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))).sum(axis=1).mean())


def exprc_mlp(X, Y, params):
    shared = [ex.shared(p, name=n) for p, n in zip(params, ("W1", "b1", "W2", "b2"))]
    W1, b1, W2, b2 = shared
    x, y = ex.fmatrix("X"), ex.fmatrix("Y")
    logits = ex.tanh(x @ W1 + b1) @ W2 + b2
    loss = -(y * ex.log_softmax(logits, axis=1)).sum(axis=1).mean()
    grads = ex.grad(loss, shared)
    step = ex.function(
        [x, y], loss, updates=[(p, p - np.float32(RATE) * g) for p, g in zip(shared, grads)], device="cuda"
    )
    dx, dy = ex.cuda.to_device(X), ex.cuda.to_device(Y)
    first = float(step(dx, dy).get())
    return (lambda: step(dx, dy)), _sync_exprc, first


def torch_mlp(X, Y, params, compiled):
    torch = _optional("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    dev = torch.device("cuda")
    x, y = torch.from_numpy(X).to(dev), torch.from_numpy(Y).to(dev)
    ps = [torch.from_numpy(p.copy()).to(dev).requires_grad_() for p in params]

    def step():
        W1, b1, W2, b2 = ps
        loss = -(y * torch.log_softmax(torch.tanh(x @ W1 + b1) @ W2 + b2, dim=1)).sum(dim=1).mean()
        grads = torch.autograd.grad(loss, ps)
        with torch.no_grad():
            for p, g in zip(ps, grads):
                p.sub_(RATE * g)
        return loss

    run = torch.compile(step) if compiled else step
    first = float(run().item())
    return run, torch.cuda.synchronize, first


def jax_mlp(X, Y, params):
    jax = _optional("jax")
    if jax is None or not any(d.platform == "gpu" for d in jax.devices()):
        return None
    jnp = jax.numpy

    def loss_fn(ps, x, y):
        W1, b1, W2, b2 = ps
        return -(y * jax.nn.log_softmax(jnp.tanh(x @ W1 + b1) @ W2 + b2, axis=1)).sum(axis=1).mean()

    @jax.jit
    def step(ps, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(ps, x, y)
        return loss, [p - RATE * g for p, g in zip(ps, grads)]

    state = {"ps": [jnp.asarray(p) for p in params]}
    x, y = jnp.asarray(X), jnp.asarray(Y)

    def run():
        loss, state["ps"] = step(state["ps"], x, y)
        state["loss"] = loss
        return loss

    first = float(run())
    return run, lambda: state["loss"].block_until_ready(), first


# ---------------------------------------------------------------- W4: logistic regression


def w4_problem(seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((10000, 100))
    t = (rng.uniform(size=10000) < 0.5).astype(np.float64)
    return X, rng.standard_normal(100) * 0.1, t


def numpy_w4(X, w, t):
    z = X @ w
    p = 1 / (1 + np.exp(-z))
    return float(np.mean(np.logaddexp(0, -z) * t + np.logaddexp(0, z) * (1 - t))), X.T @ (p - t) / len(t)


def exprc_w4(X, w, t):
    x, wv, tv = ex.matrix("X"), ex.vector("w"), ex.vector("t")
    p = ex.sigmoid(x @ wv)
    cost = -(tv * ex.log(p) + (1 - tv) * ex.log(1 - p)).mean()
    f = ex.function([x, wv, tv], [cost, ex.grad(cost, wv)], device="cuda")
    args = [ex.cuda.to_device(a) for a in (X, w, t)]
    first = float(f(*args)[0].get())
    return (lambda: f(*args)), _sync_exprc, first


def torch_w4(X, w, t):
    torch = _optional("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    x, tt = torch.from_numpy(X).cuda(), torch.from_numpy(t).cuda()
    wv = torch.from_numpy(w).cuda().requires_grad_()

    def run():
        cost = torch.nn.functional.binary_cross_entropy_with_logits(x @ wv, tt)
        return cost, torch.autograd.grad(cost, wv)[0]

    first = float(run()[0].item())
    return run, torch.cuda.synchronize, first


# ---------------------------------------------------------------- GEMM


def gemm_rows(repeat, rows):
    from exprc.codegen.cuda.matmul import matmul

    torch = _optional("torch")
    for n in (4096, 8192):
        rng = np.random.default_rng(n)
        a, b = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
        da, db = ex.cuda.to_device(a), ex.cuda.to_device(b)
        probe = slice(0, 64)
        expected = a[probe].astype(np.float64) @ b
        for tf32 in (False, True):
            got = matmul(da, db, allow_tf32=tf32).get()[probe]
            ok = np.allclose(got, expected, rtol=1e-2 if tf32 else 1e-4, atol=1e-1 if tf32 else 1e-3)
            seconds = best_time(lambda: matmul(da, db, allow_tf32=tf32), _sync_exprc, repeat)
            rows.append(
                (f"GEMM {n} float32" + (" TF32" if tf32 else ""), "exprc", seconds, ok, 2 * n**3 / seconds / 1e12)
            )
            if torch is not None and torch.cuda.is_available():
                torch.backends.cuda.matmul.allow_tf32 = tf32
                ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
                ok = np.allclose(
                    (ta @ tb)[probe].cpu().numpy(), expected, rtol=1e-2 if tf32 else 1e-4, atol=1e-1 if tf32 else 1e-3
                )
                seconds = best_time(lambda: ta @ tb, torch.cuda.synchronize, repeat)
                rows.append(
                    (
                        f"GEMM {n} float32" + (" TF32" if tf32 else ""),
                        "torch.matmul",
                        seconds,
                        ok,
                        2 * n**3 / seconds / 1e12,
                    )
                )


def half_gemm_rows(repeat, rows):
    from exprc.codegen.cuda.matmul import launch_gemm

    torch = _optional("torch")
    if torch is None or not torch.cuda.is_available():
        rows.append(("GEMM float16/bfloat16", "exprc", None, "skipped: the operands live in PyTorch's memory", None))
        return
    probe = slice(0, 64)
    for n in (4096, 8192):
        rng = np.random.default_rng(n)
        a, b = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
        for dtype, tolerance in (("float16", 2e-3), ("bfloat16", 1e-2)):
            ta, tb = (torch.from_numpy(v).to(device="cuda", dtype=getattr(torch, dtype)) for v in (a, b))
            tc = torch.empty((n, n), dtype=ta.dtype, device="cuda")
            expected = ta[probe].double().cpu().numpy() @ tb.double().cpu().numpy()
            operands = [(t.data_ptr(), (0, *t.stride())) for t in (ta, tb, tc)]
            kernel = launch_gemm(dtype, 1, n, n, n, *operands)
            torch.cuda.synchronize()
            for name, fn, result in (
                (f"exprc {kernel.name}", lambda: launch_gemm(dtype, 1, n, n, n, *operands), tc),
                ("torch.matmul", lambda: ta @ tb, None),
            ):
                got = (ta @ tb if result is None else result)[probe].double().cpu().numpy()
                error = float(np.abs(got - expected).max() / np.abs(expected).max())
                seconds = best_time(fn, torch.cuda.synchronize, repeat)
                rows.append(
                    (
                        f"GEMM {n} {dtype}",
                        name,
                        seconds,
                        f"{error < tolerance} (relative error {error:.1e})",
                        2 * n**3 / seconds / 1e12,
                    )
                )


# ---------------------------------------------------------------- the report


def run_workload(label, impls, expected, repeat, rows, rtol):
    for name, build in impls:
        try:
            made = build()
        except Exception as err:  # noqa: BLE001 - a peer that fails is reported, not fatal
            rows.append((label, name, None, f"failed: {type(err).__name__}: {err}", None))
            continue
        if made is None:
            continue
        fn, sync, first = made
        ok = bool(np.isclose(first, expected, rtol=rtol))
        rows.append((label, name, best_time(fn, sync, repeat), ok, None))


def write_report(path, rows, device_name):
    lines = [
        "# Training on the GPU: exprc against PyTorch and JAX",
        "",
        f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {device_name}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, exprc {ex.__version__}.",
        "",
        "Best of the repeats, each synchronized with the GPU. `checked`: the first result agrees with NumPy.",
        "",
        "| workload | implementation | time | checked | TFLOP/s |",
        "|---|---|---:|---|---:|",
    ]
    for label, name, seconds, ok, tflops in rows:
        shown = "—" if seconds is None else f"{seconds * 1e3:.3f} ms"
        lines.append(f"| {label} | {name} | {shown} | {ok} | {'' if tflops is None else f'{tflops:.1f}'} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "gpu_training.md")
    args = parser.parse_args(argv)
    if not ex.cuda.is_available():
        print("bench_gpu_training: skipped, this machine cannot run exprc on a GPU: " + "; ".join(ex.cuda.missing()))
        return 0
    rows = []
    X, Y, params = mlp_problem()
    run_workload(
        "W5 MLP SGD step (float32)",
        [
            ("exprc device=cuda", lambda: exprc_mlp(X, Y, params)),
            ("torch eager", lambda: torch_mlp(X, Y, params, compiled=False)),
            ("torch.compile", lambda: torch_mlp(X, Y, params, compiled=True)),
            ("jax.jit", lambda: jax_mlp(X, Y, params)),
        ],
        numpy_mlp_loss(X, Y, params),
        args.repeat,
        rows,
        rtol=1e-4,
    )
    Xw, w, t = w4_problem()
    run_workload(
        "W4 logistic regression cost+grad (float64)",
        [
            ("exprc device=cuda", lambda: exprc_w4(Xw, w, t)),
            ("torch eager", lambda: torch_w4(Xw, w, t)),
        ],
        numpy_w4(Xw, w, t)[0],
        args.repeat,
        rows,
        rtol=1e-10,
    )
    gemm_rows(max(3, args.repeat // 4), rows)
    half_gemm_rows(max(3, args.repeat // 4), rows)
    write_report(args.output, rows, device_name())
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

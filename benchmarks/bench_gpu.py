"""W1, W2 and W3 on the GPU: exprc's device="cuda" beside CuPy, PyTorch and JAX, in one run.

- W1: ``exp(-x*x)*sin(y) + log1p(z*z)*tanh(x)`` on 1e8 elements, float32 and
  float64, inputs already on the device. Its bandwidth (three arrays read, one
  written, over the time) is set beside a device-to-device copy's, measured in
  the same run: the target is 80% of the copy's.
- W2: row softmax of a (8192, 8192) float32 matrix on the device; the target
  is to be faster than ``torch.softmax``.
- W3: ``x*y + 1.0`` on float64 vectors of 10 elements on the device, the time
  per call of a loop of calls (synchronized once at its end, as a program
  issuing many small calls runs); the target is at most 10 µs.

Every implementation's result is checked against NumPy before it is timed; a
peer that is not installed, or has no GPU, is left out. Times are the best of
``--repeat`` runs, each synchronized with the GPU (the work is done, not just
queued). The report goes to ``benchmarks/results/gpu.md``, with the device,
the date and the versions.

Needs a GPU: where exprc finds none (``exprc.cuda.is_available()``) the script
prints why and exits 0 without writing anything.

    python benchmarks/bench_gpu.py [--repeat N] [--n N] [--output PATH]
"""

import argparse
import datetime
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout, installed with pip install -e

from bench_gpu_training import _sync_exprc, best_time, device_name  # noqa: E402 - beside this script
from bench_training import _optional  # noqa: E402

import exprc as ex  # noqa: E402

W3_CALLS = 2000  # calls per timed loop of W3


def _peers():
    """The installed peers that see a GPU: name -> (module, synchronize)."""
    found = {}
    cupy = _optional("cupy")
    if cupy is not None:
        try:
            if cupy.cuda.runtime.getDeviceCount() > 0:
                found["CuPy"] = (cupy, cupy.cuda.Device().synchronize)
        except Exception:  # noqa: BLE001 - no driver, no device: left out
            pass
    torch = _optional("torch")
    if torch is not None and torch.cuda.is_available():
        found["torch"] = (torch, torch.cuda.synchronize)
    jax = _optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)  # W1 and W3 have float64 rows
        if any(d.platform == "gpu" for d in jax.devices()):
            found["JAX"] = (jax, lambda: None)  # its functions block until their result is ready
    return found


def _w1_numpy(x, y, z):
    return np.exp(-x * x) * np.sin(y) + np.log1p(z * z) * np.tanh(x)


# ---------------------------------------------------------------- W1


def w1(n, dtype, peers, repeat, rows):
    rng = np.random.default_rng(1)
    host = [rng.uniform(-2, 2, n).astype(dtype) for _ in range(3)]
    probe = slice(0, 1 << 16)
    expected = _w1_numpy(*(a[probe].astype(np.float64) for a in host))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-6, atol=2e-6)
    label = f"W1 {n:,d} {dtype}"
    moved = 4 * n * np.dtype(dtype).itemsize  # three arrays read, one written

    x, y, z = (ex.tensor(name, dtype=dtype, shape=(None,)) for name in "xyz")
    f = ex.function([x, y, z], ex.exp(-x * x) * ex.sin(y) + ex.log1p(z * z) * ex.tanh(x), device="cuda")
    dev = [ex.cuda.to_device(a) for a in host]
    impls = {"exprc": (lambda: f(*dev), _sync_exprc, lambda out: out.get()[probe])}
    if "CuPy" in peers:
        cp, sync = peers["CuPy"]
        cx, cy, cz = (cp.asarray(a) for a in host)
        impls["CuPy"] = (
            lambda: cp.exp(-cx * cx) * cp.sin(cy) + cp.log1p(cz * cz) * cp.tanh(cx),
            sync,
            lambda out: cp.asnumpy(out[probe]),
        )
        fused = cp.fuse(lambda x, y, z: cp.exp(-x * x) * cp.sin(y) + cp.log1p(z * z) * cp.tanh(x))
        impls["CuPy fuse"] = (lambda: fused(cx, cy, cz), sync, lambda out: cp.asnumpy(out[probe]))
    if "torch" in peers:
        torch, sync = peers["torch"]
        tx, ty, tz = (torch.from_numpy(a).cuda() for a in host)

        def eager():
            return torch.exp(-tx * tx) * torch.sin(ty) + torch.log1p(tz * tz) * torch.tanh(tx)

        impls["torch eager"] = (eager, sync, lambda out: out[probe].cpu().numpy())
        compiled = torch.compile(eager)
        impls["torch.compile"] = (compiled, sync, lambda out: out[probe].cpu().numpy())
    if "JAX" in peers:
        jax, _ = peers["JAX"]
        jnp = jax.numpy
        jf = jax.jit(lambda x, y, z: jnp.exp(-x * x) * jnp.sin(y) + jnp.log1p(z * z) * jnp.tanh(x))
        jx, jy, jz = (jax.device_put(a) for a in host)
        impls["jax.jit"] = (
            lambda: jf(jx, jy, jz).block_until_ready(),
            lambda: None,
            lambda out: np.asarray(out[probe]),
        )

    # The yardstick: a device-to-device copy of one input, n elements read and n written.
    from exprc.codegen.cuda import driver as cuda_driver

    target = ex.cuda.to_device(np.empty_like(host[0]))
    nbytes = host[0].nbytes
    seconds = best_time(
        lambda: cuda_driver.call("cuMemcpyDtoD_v2", target.ptr, dev[0].ptr, nbytes), _sync_exprc, repeat
    )
    copy_bandwidth = 2 * nbytes / seconds
    rows.append(
        dict(
            workload=label,
            impl="device-to-device copy (cuMemcpyDtoD)",
            seconds=seconds,
            checked="—",
            extra=f"{copy_bandwidth / 1e9:.0f} GB/s",
        )
    )
    mine = _time_all(label, impls, expected, tol, repeat, rows, lambda s: f"{moved / s / 1e9:.0f} GB/s")
    if mine is None:
        return f"{label}: not met (exprc failed)"
    share = moved / mine / copy_bandwidth
    return f"{label}: {'met' if share >= 0.8 else 'not met'} ({share:.0%} of the copy's bandwidth; target 80%)"


# ---------------------------------------------------------------- W2


def w2(peers, repeat, rows):
    rng = np.random.default_rng(2)
    host = rng.standard_normal((8192, 8192)).astype(np.float32)
    probe = slice(0, 64)
    sample = host[probe].astype(np.float64)
    e = np.exp(sample - sample.max(axis=1, keepdims=True))
    expected = e / e.sum(axis=1, keepdims=True)
    tol = dict(rtol=1e-5, atol=1e-9)
    label = "W2 softmax (8192, 8192) float32"

    x = ex.fmatrix("x")
    f = ex.function([x], ex.softmax(x, axis=1), device="cuda")
    dx = ex.cuda.to_device(host)
    impls = {"exprc": (lambda: f(dx), _sync_exprc, lambda out: out.get()[probe])}
    if "CuPy" in peers:
        cp, sync = peers["CuPy"]
        cx = cp.asarray(host)

        def cupy_softmax():
            e = cp.exp(cx - cx.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        impls["CuPy"] = (cupy_softmax, sync, lambda out: cp.asnumpy(out[probe]))
    if "torch" in peers:
        torch, sync = peers["torch"]
        tx = torch.from_numpy(host).cuda()
        impls["torch.softmax"] = (lambda: torch.softmax(tx, dim=1), sync, lambda out: out[probe].cpu().numpy())
    if "JAX" in peers:
        jax, _ = peers["JAX"]
        jf = jax.jit(lambda x: jax.nn.softmax(x, axis=1))
        jx = jax.device_put(host)
        impls["jax.jit"] = (lambda: jf(jx).block_until_ready(), lambda: None, lambda out: np.asarray(out[probe]))
    mine = _time_all(label, impls, expected, tol, repeat, rows, lambda s: f"{2 * host.nbytes / s / 1e9:.0f} GB/s")
    theirs = next((r["seconds"] for r in rows if r["workload"] == label and r["impl"] == "torch.softmax"), None)
    if mine is None:
        return f"{label}: not met (exprc failed)"
    if theirs is None:
        return f"{label}: not checked (PyTorch not installed or without a GPU)"
    return f"{label}: {'met' if mine < theirs else 'not met'} ({theirs / mine:.2f}× torch.softmax's speed)"


# ---------------------------------------------------------------- W3


def w3(peers, repeat, rows):
    rng = np.random.default_rng(3)
    hx, hy = rng.uniform(-1, 1, 10), rng.uniform(-1, 1, 10)
    expected = hx * hy + 1.0
    label = f"W3 x*y + 1.0, 10 float64 (per call, {W3_CALLS} calls)"
    x, y = ex.vector("x"), ex.vector("y")
    f = ex.function([x, y], x * y + 1.0, device="cuda")
    dx, dy = ex.cuda.to_device(hx), ex.cuda.to_device(hy)
    impls = {"exprc": (lambda: f(dx, dy), _sync_exprc, lambda out: out.get())}
    if "CuPy" in peers:
        cp, sync = peers["CuPy"]
        cx, cy = cp.asarray(hx), cp.asarray(hy)
        impls["CuPy"] = (lambda: cx * cy + 1.0, sync, cp.asnumpy)
    if "torch" in peers:
        torch, sync = peers["torch"]
        tx, ty = torch.from_numpy(hx).cuda(), torch.from_numpy(hy).cuda()
        impls["torch eager"] = (lambda: tx * ty + 1.0, sync, lambda out: out.cpu().numpy())
    if "JAX" in peers:
        jax, _ = peers["JAX"]
        jf = jax.jit(lambda x, y: x * y + 1.0)
        jx, jy = jax.device_put(hx), jax.device_put(hy)
        impls["jax.jit"] = (lambda: jf(jx, jy), lambda: jf(jx, jy).block_until_ready(), np.asarray)
    looped = {name: (_loop(fn), sync, read) for name, (fn, sync, read) in impls.items()}
    mine = _time_all(label, looped, expected, dict(rtol=1e-15, atol=0), repeat, rows, None, per=W3_CALLS, first=impls)
    if mine is None:
        return f"{label}: not met (exprc failed)"
    per_call = mine / W3_CALLS
    return f"{label}: {'met' if per_call <= 10e-6 else 'not met'} ({per_call * 1e6:.1f} µs per call; target 10 µs)"


def _loop(fn):
    def calls():
        for _ in range(W3_CALLS):
            fn()

    return calls


# ---------------------------------------------------------------- timing and the report


def _time_all(label, impls, expected, tol, repeat, rows, rate, per=1, first=None):
    """Check then time each implementation (``name -> (run, synchronize, read a probe)``);
    adds a row per implementation and returns exprc's seconds (None if it failed)."""
    mine = None
    for name, (fn, sync, read) in impls.items():
        try:
            out = (first or impls)[name][0]()
            sync()
            np.testing.assert_allclose(np.asarray(read(out), dtype=np.float64), expected, **tol)
        except Exception as err:  # noqa: BLE001 - a peer that fails or disagrees is reported, not timed
            rows.append(
                dict(
                    workload=label,
                    impl=name,
                    seconds=None,
                    checked=f"failed: {type(err).__name__}",
                    extra=str(err).strip().splitlines()[0][:120] if str(err).strip() else "",
                )
            )
            continue
        seconds = best_time(fn, sync, repeat)
        rows.append(
            dict(workload=label, impl=name, seconds=seconds / per, checked="yes", extra=rate(seconds) if rate else "")
        )
        if name == "exprc":
            mine = seconds
        print(f"{label:45s} {name:24s} {_fmt(seconds / per)}", flush=True)
    return mine


def _fmt(seconds):
    return "—" if seconds is None else (f"{seconds * 1e6:.2f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms")


def write_report(path, rows, verdicts, device, args):
    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}", f"exprc {ex.__version__}"]
    for name in ("cupy", "torch", "jax"):
        module = sys.modules.get(name)
        if module is not None:
            versions.append(f"{name} {getattr(module, '__version__', '?')}")
    lines = (
        [
            "# W1, W2 and W3 on the GPU: exprc against CuPy, PyTorch and JAX",
            "",
            f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {device}; {', '.join(versions)}.",
            "",
            f"Command: `python benchmarks/bench_gpu.py --repeat {args.repeat} --n {args.n}`. Best of the repeats, "
            "each synchronized with the GPU; `checked`: the result agrees with NumPy.",
            "",
            "## Targets",
            "",
        ]
        + [f"- {v}" for v in verdicts]
        + [
            "",
            "## Times",
            "",
            "| workload | implementation | time | checked | bandwidth / note |",
            "|---|---|---:|---|---|",
        ]
    )
    for r in rows:
        lines.append(f"| {r['workload']} | {r['impl']} | {_fmt(r['seconds'])} | {r['checked']} | {r['extra']} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--n", type=int, default=10**8, help="W1's number of elements")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "gpu.md")
    args = parser.parse_args(argv)
    if not ex.cuda.is_available():
        print("bench_gpu: skipped, this machine cannot run exprc on a GPU: " + "; ".join(ex.cuda.missing()))
        return 0
    peers = _peers()
    rows, verdicts = [], []
    for dtype in ("float32", "float64"):
        verdicts.append(w1(args.n, dtype, peers, args.repeat, rows))
    verdicts.append(w2(peers, args.repeat, rows))
    verdicts.append(w3(peers, args.repeat, rows))
    write_report(args.output, rows, verdicts, device_name(), args)
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

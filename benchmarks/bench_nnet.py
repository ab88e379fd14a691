"""ex.nnet: a LeNet-5-style training step and a 3x3 convolution's forward pass, exprc beside PyTorch
(eager and torch.compile), JAX (jit) and PyTensor.

LeNet step (issue 27): batch 64 of 1x28x28 float32 images, conv 5x5x20, max pool 2, tanh, conv
5x5x50, max pool 2, tanh, dense 800-500 tanh, dense 500-10, softmax cross-entropy, SGD; every
implementation starts from the same parameters and its losses over the first steps are checked
against PyTorch eager's before timing. Convolution: (64, 64, 32, 32) float32 images by 64 3x3
filters, padding 1, forward only, checked against PyTorch.

Two exprc columns: ``exprc`` (ex.nnet.conv2d, whose ops run as NumPy host steps between the C
program's kernels: im2col plus one matrix product) and ``exprc composed`` (the same convolution
built from existing ops: 25 or 9 slices stacked, a reshape and a matmul, which the C back end
compiles; its gradient comes from those ops' gradients). Times are the best single call of
round-robin rounds; the machine may be shared (the load average is reported).

    python benchmarks/bench_nnet.py [--budget SECONDS] [--output PATH]
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from _report import cpu_model, fmt_time, nproc  # noqa: E402 - beside this script

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout, installed with pip install -e

import exprc as ex  # noqa: E402

BATCH, RATE, STEPS_CHECKED = 64, 0.05, 3
CONV_SHAPE, CONV_FILTERS = (64, 64, 32, 32), (64, 64, 3, 3)


def _optional(name):
    try:
        return __import__(name)
    except Exception:  # an optional peer: absent or broken is the same here
        return None


def lenet_problem(seed=0):
    """The data and the starting parameters (float32): W1, b1, W2, b2, W3, b3, W4, b4."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)

    def init(*shape, fan_in):
        return (rng.uniform(-1, 1, shape) * np.sqrt(3 / fan_in)).astype(np.float32)

    params = [
        init(20, 1, 5, 5, fan_in=25),
        np.zeros(20, np.float32),
        init(50, 20, 5, 5, fan_in=500),
        np.zeros(50, np.float32),
        init(800, 500, fan_in=800),
        np.zeros(500, np.float32),
        init(500, 10, fan_in=500),
        np.zeros(10, np.float32),
    ]
    return X, y, params


# ---------------------------------------------------------------- exprc


def conv2d_composed(x, w, kernel, pad):
    """Cross-correlation built from existing ops: im2col by slices, stacked, then one matmul."""
    if pad:
        n, c = x.shape[0], x.shape[1]
        h, wd = x.type.shape[2], x.type.shape[3]
        padded = ex.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=x.dtype)
        x = ex.set_subtensor(padded[:, :, pad : pad + h, pad : pad + wd], x)
    kh, kw = kernel
    oh, ow = x.type.shape[2] - kh + 1, x.type.shape[3] - kw + 1
    slices = [x[:, :, a : a + oh, b : b + ow] for a in range(kh) for b in range(kw)]
    cols = ex.stack(slices, axis=2)  # (N, C, K, OH, OW)
    cols = cols.reshape((x.shape[0], -1, oh * ow))  # (N, C*K, OH*OW)
    out = w.reshape((w.shape[0], -1)) @ cols  # (N, O, OH*OW)
    return out.reshape((x.shape[0], w.shape[0], oh, ow))


def _lenet_loss(x, t, params, composed):
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    nn = ex.nnet

    def conv(h, w, k):
        if composed:
            return conv2d_composed(h, w, (k, k), 0)
        return nn.conv2d(h, w, filter_flip=False)

    h = ex.tanh(nn.pool_2d(conv(x, W1, 5), (2, 2)) + b1.dimshuffle("x", 0, "x", "x"))
    h = ex.tanh(nn.pool_2d(conv(h, W2, 5), (2, 2)) + b2.dimshuffle("x", 0, "x", "x"))
    h = ex.tanh(h.reshape((h.shape[0], 800)) @ W3 + b3)
    logits = h @ W4 + b4
    return -(nn.one_hot(t, 10, "float32") * nn.log_softmax(logits)).sum(axis=1).mean()


def exprc_lenet(params, composed=False):
    shared = [ex.shared(p.copy()) for p in params]
    x = ex.tensor("x", dtype="float32", shape=(None, 1, 28, 28))
    t = ex.vector("t", dtype="int64")
    loss = _lenet_loss(x, t, shared, composed)
    grads = ex.grad(loss, shared)
    return ex.function([x, t], loss, updates=[(p, p - np.float32(RATE) * g) for p, g in zip(shared, grads)])


def exprc_conv(w, composed=False):
    x = ex.tensor("x", dtype="float32", shape=(None,) + CONV_SHAPE[1:])
    if composed:
        return ex.function([x], conv2d_composed(x, ex.constant(w), (3, 3), 1))
    return ex.function([x], ex.nnet.conv2d(x, ex.constant(w), border_mode="half", filter_flip=False))


# ---------------------------------------------------------------- PyTorch


def _torch_loss(F, W1, b1, W2, b2, W3, b3, W4, b4, X, y):
    h = (F.max_pool2d(F.conv2d(X, W1), 2) + b1[None, :, None, None]).tanh()
    h = (F.max_pool2d(F.conv2d(h, W2), 2) + b2[None, :, None, None]).tanh()
    h = (h.reshape(h.shape[0], 800) @ W3 + b3).tanh()
    return F.cross_entropy(h @ W4 + b4, y)


def torch_lenet(params, compiled=False):
    import torch
    import torch.nn.functional as F

    weights = [torch.tensor(p, requires_grad=True) for p in params]
    loss_fn = (lambda *a: _torch_loss(F, *a)) if not compiled else torch.compile(lambda *a: _torch_loss(F, *a))

    def step(X, y):
        X, y = torch.from_numpy(X), torch.from_numpy(y)
        loss = loss_fn(*weights, X, y)
        grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            for w, g in zip(weights, grads):
                w -= RATE * g
        return loss.item()

    return step


def torch_conv(w, compiled=False):
    import torch
    import torch.nn.functional as F

    weight = torch.from_numpy(w)
    fn = (
        (lambda x: F.conv2d(x, weight, padding=1))
        if not compiled
        else torch.compile(lambda x: F.conv2d(x, weight, padding=1))
    )

    def run(x):
        with torch.no_grad():
            return fn(torch.from_numpy(x)).numpy()

    return run


# ---------------------------------------------------------------- JAX


def jax_lenet(params):
    import jax
    import jax.numpy as jnp

    def conv(h, w):
        return jax.lax.conv_general_dilated(h, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss_fn(p, X, y):
        W1, b1, W2, b2, W3, b3, W4, b4 = p
        h = jnp.tanh(pool(conv(X, W1)) + b1[None, :, None, None])
        h = jnp.tanh(pool(conv(h, W2)) + b2[None, :, None, None])
        h = jnp.tanh(h.reshape(h.shape[0], 800) @ W3 + b3)
        logp = jax.nn.log_softmax(h @ W4 + b4)
        return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()

    @jax.jit
    def update(p, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, X, y)
        return loss, [w - RATE * g for w, g in zip(p, grads)]

    state = [[jnp.asarray(p) for p in params]]

    def step(X, y):
        loss, state[0] = update(state[0], X, y)
        return float(jax.block_until_ready(loss))

    return step


def jax_conv(w):
    import jax

    weight = jax.numpy.asarray(w)

    @jax.jit
    def fn(x):
        return jax.lax.conv_general_dilated(
            x, weight, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
        )

    return lambda x: np.asarray(jax.block_until_ready(fn(x)))


def pytensor_missing():
    """Why PyTensor has no column, or None where it could have one."""
    if _optional("pytensor") is None:
        return "not installed"
    try:
        from pytensor.tensor.conv import conv2d  # noqa: F401
        from pytensor.tensor.signal import pool  # noqa: F401 - Theano's pooling, where it survives
    except Exception:
        import pytensor

        return f"{pytensor.__version__}: no conv2d / pool_2d (only signal.convolve1d/2d of single signals)"
    return None


# ---------------------------------------------------------------- running


def checked(makers, run_args, reference, rtol, what):
    """Each implementation that runs, after its results were checked against ``reference``."""
    ready, status = {}, {}
    for column, (module, make) in makers.items():
        if module is not None and _optional(module) is None:
            status[column] = "not installed"
            continue
        try:
            t0 = time.perf_counter()
            fn = make()
            got = run_args(fn)
            status[column] = f"{time.perf_counter() - t0:.1f} s"
            np.testing.assert_allclose(got, reference, rtol=rtol, atol=rtol)
        except Exception as exc:  # a wrong answer or a failure: report, don't time
            status[column] = f"failed ({type(exc).__name__})"
            print(f"  {what} / {column}: {type(exc).__name__}: {str(exc).strip()[:400]}", flush=True)
            continue
        ready[column] = fn
    return ready, status


def best_times(calls, budget):
    best = {column: float("inf") for column in calls}
    rounds, start = 0, time.perf_counter()
    while rounds < 3 or (time.perf_counter() - start < budget * len(calls) and rounds < 500):
        for column, call in calls.items():
            t0 = time.perf_counter()
            call()
            best[column] = min(best[column], time.perf_counter() - t0)
        rounds += 1
    return best, rounds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of calls per implementation (at least 3)")
    parser.add_argument("--output", default=str(HERE / "results" / "nnet.md"))
    args = parser.parse_args()
    load_start = os.getloadavg()

    X, y, params = lenet_problem()
    torch_reference = torch_lenet(params)
    expected = [torch_reference(X, y) for _ in range(STEPS_CHECKED)]
    lenet_makers = {
        "exprc": (None, lambda: exprc_lenet(params)),
        "exprc composed": (None, lambda: exprc_lenet(params, composed=True)),
        "PyTorch eager": ("torch", lambda: torch_lenet(params)),
        "torch.compile": ("torch", lambda: torch_lenet(params, compiled=True)),
        "JAX jit": ("jax", lambda: jax_lenet(params)),
    }
    lenet, lenet_status = checked(
        lenet_makers, lambda step: [float(step(X, y)) for _ in range(STEPS_CHECKED)], expected, 2e-3, "LeNet"
    )
    lenet_times, lenet_rounds = best_times({c: (lambda s=s: s(X, y)) for c, s in lenet.items()}, args.budget)

    rng = np.random.default_rng(1)
    images = rng.standard_normal(CONV_SHAPE).astype(np.float32)
    w = (rng.standard_normal(CONV_FILTERS) / 24).astype(np.float32)
    reference = torch_conv(w)(images)
    conv_makers = {
        "exprc": (None, lambda: exprc_conv(w)),
        "exprc composed": (None, lambda: exprc_conv(w, composed=True)),
        "PyTorch eager": ("torch", lambda: torch_conv(w)),
        "torch.compile": ("torch", lambda: torch_conv(w, compiled=True)),
        "JAX jit": ("jax", lambda: jax_conv(w)),
    }
    convs, conv_status = checked(conv_makers, lambda fn: fn(images), reference, 1e-3, "conv")
    conv_times, conv_rounds = best_times({c: (lambda f=f: f(images)) for c, f in convs.items()}, args.budget)

    columns = [*lenet_makers, "PyTensor"]
    missing = pytensor_missing()
    for status in (lenet_status, conv_status):
        status["PyTensor"] = "—"

    def row(name, times, status):
        return (
            f"| {name} | "
            + " | ".join(fmt_time(times[c]) if c in times else status.get(c, "—") for c in columns)
            + " |"
        )

    eager, mine = lenet_times.get("PyTorch eager"), lenet_times.get("exprc")
    verdict = "not checked"
    if eager and mine:
        verdict = f"{'met' if mine <= eager else 'not met'}: exprc {mine / eager:.2f}× PyTorch eager's time"
    command = "python benchmarks/bench_nnet.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))
    lines = [
        "# ex.nnet: LeNet-5-style training step and a 3x3 convolution, exprc beside its peers",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- machine: `nproc` {nproc()}, {cpu_model()}; {platform.system()} {platform.release()}",
        f"- versions: Python {platform.python_version()}, NumPy {np.__version__}, exprc {ex.__version__}",
        f"- command: `{command}`",
        f"- load average at the start / end (the machine is shared): "
        f"{' '.join(f'{v:.2f}' for v in load_start)} / {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; times: best single call of "
        f"{lenet_rounds} (LeNet) and {conv_rounds} (convolution) rounds taken round-robin",
        f"- LeNet: batch {BATCH}, float32, SGD at {RATE}; each implementation's losses over its first "
        f"{STEPS_CHECKED} steps match PyTorch eager's ({', '.join(f'{v:.5f}' for v in expected)}) to 2e-3",
        f"- convolution: {CONV_SHAPE} float32 by {CONV_FILTERS} filters, padding 1, forward; checked against PyTorch",
        "",
        "| | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
        row("LeNet training step", lenet_times, lenet_status),
        row("3x3 conv forward", conv_times, conv_status),
        f"| LeNet: building, compiling and the first {STEPS_CHECKED} steps | "
        + " | ".join(lenet_status.get(c, "—") for c in columns)
        + " |",
        "",
        f"PyTensor: {missing or 'has conv2d and pool_2d, not yet timed here'}.",
        "",
        f"Target (issue 27): the LeNet step at most PyTorch eager's time: {verdict}.",
        "",
    ]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

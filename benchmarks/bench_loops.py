"""Loops (issue 25): an LSTM's forward and backward pass, and a 10,000-step scalar recurrence,
for exprc and each installed peer, side by side.

(a) LSTM: batch 32, input 64, hidden 128, 100 steps, float32; the loss is the sum of the
    hidden states times a fixed random tensor, and one call computes the loss and its
    gradients with respect to W (64, 512), U (128, 512) and b (512,):
    exprc ``ex.scan`` with ``ex.grad``; JAX ``lax.scan`` under ``jit`` with ``value_and_grad``;
    PyTensor ``scan`` with ``pytensor.grad``; torch, an eager loop with autograd, and
    ``nn.LSTM`` (its own gate order, the weights copied over) as the hand-tuned reference.
(b) ``y_t = 0.999 * y_{t-1} + x_t`` over 10,000 float64 steps, every ``y_t`` returned:
    exprc ``ex.scan``; JAX ``lax.scan`` under ``jit``; PyTensor ``scan``; a torch eager loop.

Each result is checked against a NumPy loop before timing (float32 LSTM: rtol 1e-3 on the
loss and the gradients). "cold" is the time from building the graph to the first result
(exprc with an empty disk cache of its own); "per call" is the best of several calls.
The report goes to ``benchmarks/results/loops.md``.

    python benchmarks/bench_loops.py [--budget SECONDS] [--output PATH]
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout, installed with pip install -e
os.environ.setdefault("EXPRC_CACHE_DIR", tempfile.mkdtemp(prefix="exprc-bench-loops-"))

import numpy as np  # noqa: E402
from _report import cpu_model, fmt_time, nproc  # noqa: E402 - beside this script

import exprc as ex  # noqa: E402

B, D, H, T = 32, 64, 128, 100
STEPS = 10_000
DECAY = 0.999
#: The environment variables that set the libraries' thread counts, named in the report.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "EXPRC_NUM_THREADS")


def _optional(name):
    try:
        return __import__(name)
    except Exception:  # an optional peer: absent or broken is the same here
        return None


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_problem(seed=0):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    x = rng.standard_normal((T, B, D)).astype(f32)
    h0, c0 = np.zeros((B, H), f32), np.zeros((B, H), f32)
    W = (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype(f32)
    U = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(f32)
    b = np.zeros(4 * H, f32)
    R = rng.standard_normal((T, B, H)).astype(f32)
    return x, h0, c0, W, U, b, R


def lstm_numpy(x, h0, c0, W, U, b, R):
    """The loss and its gradients, by a NumPy loop and back-propagation written out."""
    h, c, cache = h0, c0, []
    loss = 0.0
    for t in range(T):
        z = x[t] @ W + h @ U + b
        i, f, o, g = (
            _sigmoid(z[:, :H]),
            _sigmoid(z[:, H : 2 * H]),
            _sigmoid(z[:, 2 * H : 3 * H]),
            np.tanh(z[:, 3 * H :]),
        )
        c_prev, h_prev = c, h
        c = f * c + i * g
        h = o * np.tanh(c)
        loss += (h * R[t]).sum()
        cache.append((h_prev, c_prev, i, f, o, g, c))
    gW, gU, gb = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    gh, gc = np.zeros_like(h0), np.zeros_like(c0)
    for t in reversed(range(T)):
        h_prev, c_prev, i, f, o, g, c = cache[t]
        gh = gh + R[t]
        tc = np.tanh(c)
        go = gh * tc
        gc = gc + gh * o * (1 - tc**2)
        gi, gf, gg = gc * g, gc * c_prev, gc * i
        gz = np.concatenate([gi * i * (1 - i), gf * f * (1 - f), go * o * (1 - o), gg * (1 - g**2)], axis=1)
        gW += x[t].T @ gz
        gU += h_prev.T @ gz
        gb += gz.sum(axis=0)
        gh = gz @ U.T
        gc = gc * f
    return np.float32(loss), gW, gU, gb


def lstm_exprc(x, h0, c0, W, U, b, R):
    Wv, Uv, bv = ex.shared(W, name="W"), ex.shared(U, name="U"), ex.shared(b, name="b")
    X, Rs = ex.tensor3("x", dtype="float32"), ex.tensor3("R", dtype="float32")
    H0, C0 = ex.matrix("h0", dtype="float32"), ex.matrix("c0", dtype="float32")

    def step(x_t, h, c):
        z = x_t @ Wv + h @ Uv + bv
        i, f = ex.sigmoid(z[:, :H]), ex.sigmoid(z[:, H : 2 * H])
        o, g = ex.sigmoid(z[:, 2 * H : 3 * H]), ex.tanh(z[:, 3 * H :])
        c = f * c + i * g
        return o * ex.tanh(c), c

    (hs, _), _ = ex.scan(step, sequences=X, outputs_info=[H0, C0], name="lstm")
    loss = (hs * Rs).sum()
    f = ex.function([X, H0, C0, Rs], [loss, *ex.grad(loss, [Wv, Uv, bv])])
    return lambda: f(x, h0, c0, R)


def lstm_jax(x, h0, c0, W, U, b, R):
    jax = _optional("jax")
    if jax is None:
        return None
    jnp = jax.numpy

    def loss_fn(params, x, h0, c0, R):
        W, U, b = params

        def step(carry, inputs):
            h, c = carry
            x_t, r_t = inputs
            z = x_t @ W + h @ U + b
            i, f = jax.nn.sigmoid(z[:, :H]), jax.nn.sigmoid(z[:, H : 2 * H])
            o, g = jax.nn.sigmoid(z[:, 2 * H : 3 * H]), jnp.tanh(z[:, 3 * H :])
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), (h * r_t).sum()

        _, losses = jax.lax.scan(step, (h0, c0), (x, R))
        return losses.sum()

    fn = jax.jit(jax.value_and_grad(loss_fn))
    args = [jnp.asarray(a) for a in (x, h0, c0, R)]
    params = [jnp.asarray(a) for a in (W, U, b)]

    def call():
        loss, grads = fn(params, *args)
        return [np.asarray(loss), *(np.asarray(g) for g in grads)]

    return call


def lstm_pytensor(x, h0, c0, W, U, b, R):
    pytensor = _optional("pytensor")
    if pytensor is None:
        return None
    import pytensor.tensor as pt

    Wv, Uv, bv = (pytensor.shared(a) for a in (W, U, b))
    X, Rs = pt.tensor3("x", dtype="float32"), pt.tensor3("R", dtype="float32")
    H0, C0 = pt.matrix("h0", dtype="float32"), pt.matrix("c0", dtype="float32")

    def step(x_t, h, c):
        z = pt.dot(x_t, Wv) + pt.dot(h, Uv) + bv
        i, f = pt.sigmoid(z[:, :H]), pt.sigmoid(z[:, H : 2 * H])
        o, g = pt.sigmoid(z[:, 2 * H : 3 * H]), pt.tanh(z[:, 3 * H :])
        c = f * c + i * g
        return o * pt.tanh(c), c

    (hs, _), _ = pytensor.scan(step, sequences=X, outputs_info=[H0, C0])
    loss = (hs * Rs).sum()
    f = pytensor.function([X, H0, C0, Rs], [loss, *pytensor.grad(loss, [Wv, Uv, bv])])
    return lambda: f(x, h0, c0, R)


def lstm_torch(x, h0, c0, W, U, b, R):
    torch = _optional("torch")
    if torch is None:
        return None
    xs, h0t, c0t, Rt = (torch.from_numpy(a) for a in (x, h0, c0, R))

    def call():
        Wt, Ut, bt = (torch.tensor(a, requires_grad=True) for a in (W, U, b))
        h, c, loss = h0t, c0t, 0
        for t in range(T):
            z = xs[t] @ Wt + h @ Ut + bt
            i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H : 2 * H])
            o, g = torch.sigmoid(z[:, 2 * H : 3 * H]), torch.tanh(z[:, 3 * H :])
            c = f * c + i * g
            h = o * torch.tanh(c)
            loss = loss + (h * Rt[t]).sum()
        loss.backward()
        return [loss.detach().numpy(), Wt.grad.numpy(), Ut.grad.numpy(), bt.grad.numpy()]

    return call


def lstm_torch_nn(x, h0, c0, W, U, b, R):
    torch = _optional("torch")
    if torch is None:
        return None
    module = torch.nn.LSTM(D, H)
    # torch's gate order is (i, f, g, o); ours is (i, f, o, g). b goes to bias_ih, bias_hh is 0.
    order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(W[:, order].T.copy()))
        module.weight_hh_l0.copy_(torch.from_numpy(U[:, order].T.copy()))
        module.bias_ih_l0.copy_(torch.from_numpy(b[order]))
        module.bias_hh_l0.zero_()
    xs, h0t, c0t, Rt = (torch.from_numpy(a) for a in (x, h0, c0, R))

    def call():
        module.zero_grad()
        hs, _ = module(xs, (h0t[None], c0t[None]))
        loss = (hs * Rt).sum()
        loss.backward()
        back = np.argsort(order)
        return [
            loss.detach().numpy(),
            module.weight_ih_l0.grad.numpy().T[:, back],
            module.weight_hh_l0.grad.numpy().T[:, back],
            module.bias_ih_l0.grad.numpy()[back],
        ]

    return call


def recurrence_numpy(x):
    y, out = 0.0, np.empty_like(x)
    for t, v in enumerate(x):
        y = DECAY * y + v
        out[t] = y
    return out


def recurrence_exprc(x):
    xs = ex.vector("x")
    ys, _ = ex.scan(lambda v, y: DECAY * y + v, sequences=xs, outputs_info=ex.constant(0.0), name="decay")
    f = ex.function([xs], ys)
    return lambda: f(x)


def recurrence_jax(x):
    jax = _optional("jax")
    if jax is None:
        return None
    jax.config.update("jax_enable_x64", True)

    def run(xs):
        def step(y, v):
            y = DECAY * y + v
            return y, y

        return jax.lax.scan(step, jax.numpy.float64(0.0), xs)[1]

    fn = jax.jit(run)
    xj = jax.numpy.asarray(x)
    return lambda: np.asarray(fn(xj))


def recurrence_pytensor(x):
    pytensor = _optional("pytensor")
    if pytensor is None:
        return None
    import pytensor.tensor as pt

    xs = pt.vector("x", dtype="float64")
    ys, _ = pytensor.scan(lambda v, y: DECAY * y + v, sequences=xs, outputs_info=pt.constant(np.float64(0.0)))
    f = pytensor.function([xs], ys)
    return lambda: f(x)


def recurrence_torch(x):
    torch = _optional("torch")
    if torch is None:
        return None
    xt = torch.from_numpy(x)

    def call():
        y, out = torch.zeros((), dtype=torch.float64), torch.empty_like(xt)
        for t in range(len(xt)):
            y = DECAY * y + xt[t]
            out[t] = y
        return out.numpy()

    return call


def _check(got, expected, rtol):
    got = [got] if not isinstance(got, (list, tuple)) else got
    expected = [expected] if not isinstance(expected, (list, tuple)) else expected
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), e, rtol=rtol, atol=rtol * np.abs(e).max())


def measure(cases, expected, rtol, budget):
    """``{name: (cold seconds, best per call, status)}`` for ``{name: builder}``."""
    results = {}
    for name, build in cases.items():
        try:
            start = time.perf_counter()
            call = build()
            if call is None:
                results[name] = (None, None, "not installed")
                continue
            first = call()
            cold = time.perf_counter() - start
            _check(first, expected, rtol)
            best, spent, runs = float("inf"), 0.0, 0
            while runs < 3 or (spent < budget and runs < 50):
                t0 = time.perf_counter()
                call()
                took = time.perf_counter() - t0
                best, spent, runs = min(best, took), spent + took, runs + 1
            results[name] = (cold, best, "ok")
        except Exception as err:  # noqa: BLE001 - a peer's failure is reported, not fatal
            results[name] = (None, None, f"failed: {type(err).__name__}: {str(err)[:120]}")
        print(
            f"{name:28s} cold {fmt_time(results[name][0]):>10s}  per call {fmt_time(results[name][1]):>10s}  "
            f"{results[name][2]}",
            flush=True,
        )
    return results


def _table(results):
    lines = ["| implementation | cold (build + first call) | per call (best) | status |", "|---|---|---|---|"]
    for name, (cold, best, status) in results.items():
        lines.append(f"| {name} | {fmt_time(cold)} | {fmt_time(best)} | {status} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of repeated calls per implementation")
    parser.add_argument("--output", default=str(HERE / "results" / "loops.md"))
    args = parser.parse_args()
    load = os.getloadavg()[0]

    problem = lstm_problem()
    print(f"(a) LSTM, batch {B}, input {D}, hidden {H}, {T} steps, float32: loss and gradients")
    a = measure(
        {
            "exprc (scan, C back end)": lambda: lstm_exprc(*problem),
            "JAX (lax.scan, jit)": lambda: lstm_jax(*problem),
            "PyTensor (scan)": lambda: lstm_pytensor(*problem),
            "torch (eager loop)": lambda: lstm_torch(*problem),
            "torch (nn.LSTM)": lambda: lstm_torch_nn(*problem),
        },
        list(lstm_numpy(*problem)),
        1e-3,
        args.budget,
    )
    x = np.random.default_rng(1).standard_normal(STEPS)
    print(f"(b) y_t = {DECAY} * y_(t-1) + x_t, {STEPS} float64 steps")
    b = measure(
        {
            "exprc (scan, C back end)": lambda: recurrence_exprc(x),
            "JAX (lax.scan, jit)": lambda: recurrence_jax(x),
            "PyTensor (scan)": lambda: recurrence_pytensor(x),
            "torch (eager loop)": lambda: recurrence_torch(x),
        },
        recurrence_numpy(x),
        1e-9,
        args.budget,
    )
    threads = ", ".join(f"{k}={os.environ[k]}" for k in THREAD_VARIABLES if k in os.environ) or "none set"
    commit = os.popen(f"git -C {shlex.quote(str(HERE.parent))} rev-parse --short HEAD").read().strip()
    lines = [
        "# Loops",
        "",
        f"`python benchmarks/bench_loops.py` on {datetime.date.today()}, commit {commit}: {cpu_model()}, "
        f"{nproc()} CPUs (load average {load:.1f} at the start, shared with other work), Python "
        f"{platform.python_version()}, NumPy {np.__version__}; thread settings: {threads}. Every result was checked "
        "against a NumPy loop first.",
        "",
        f"## (a) LSTM forward and backward (batch {B}, input {D}, hidden {H}, {T} steps, float32)",
        "",
        "Targets (issue 25): at most JAX's time per call, at most 1 s cold.",
        "",
        *_table(a),
        "",
        f"## (b) {STEPS:,}-step scalar recurrence (float64)",
        "",
        "Target (issue 25): under 1 ms per call (no Python per step).",
        "",
        *_table(b),
        "",
        "## Reading these numbers",
        "",
        "exprc's loops run as a host step of the compiled program: the body is run by the NumPy",
        "reference, one Python call per node per step, so (b) costs tens of microseconds per step and",
        "neither target is met yet. The loop in the generated C (no Python per step) is the next step",
        "of issue 25 (see docs/loops.md).",
    ]
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

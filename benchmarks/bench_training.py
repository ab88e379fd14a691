"""W5: one SGD step of a 784-256-10 tanh MLP, for exprc and each installed peer, side by side.

X is (512, 784) float32 with one-hot targets Y (512, 10); the loss is the mean
softmax cross-entropy, written stably by each library's own means (exprc:
``-(Y * ex.log_softmax(logits, axis=1)).sum(axis=1).mean()``); learning rate
0.1; parameters W1 (784, 256), b1, W2 (256, 10), b2 start from the same
values everywhere.

- exprc: shared variables and ``exprc.function(..., updates=...)`` with the
  gradients from ``exprc.grad``; one call is one step;
- NumPy: the forward pass and the gradient written by hand, parameters
  updated in place;
- JAX: ``jax.jit`` of a step taking and returning the parameters (donated);
- PyTensor: shared variables and ``pytensor.function(..., updates=...)``;
- torch: autograd, then an in-place update under ``torch.no_grad``.

Before timing, each implementation runs five steps from the starting values
and its fifth loss is checked against NumPy's (float32, ``rtol=1e-5``). The
timings are the best of many single steps taken round-robin across the
libraries (one step of each per round), so that load from other processes hits
all alike. The report goes to ``benchmarks/results/training.md``.

    python benchmarks/bench_training.py [--budget SECONDS] [--output PATH]
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

N, D, H, K = 512, 784, 256, 10
RATE = 0.1
STEPS_CHECKED = 5


def _optional(name):
    try:
        return __import__(name)
    except Exception:  # an optional peer: absent or broken is the same here
        return None


def problem(seed=0):
    """The data and the starting parameters, all float32."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D)).astype(np.float32)
    Y = np.eye(K, dtype=np.float32)[rng.integers(0, K, N)]
    params = [
        (rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32),
        np.zeros(H, np.float32),
        (rng.standard_normal((H, K)) / np.sqrt(H)).astype(np.float32),
        np.zeros(K, np.float32),
    ]
    return X, Y, params


# ---------------------------------------------------------------- the implementations


def exprc_step(params):
    W1, b1, W2, b2 = shared = [ex.shared(p, name=n) for p, n in zip(params, ("W1", "b1", "W2", "b2"))]
    X, Y = ex.fmatrix("X"), ex.fmatrix("Y")
    logits = ex.tanh(X @ W1 + b1) @ W2 + b2
    loss = -(Y * ex.log_softmax(logits, axis=1)).sum(axis=1).mean()
    grads = ex.grad(loss, shared)
    return ex.function([X, Y], loss, updates=[(p, p - np.float32(RATE) * g) for p, g in zip(shared, grads)])


def numpy_step(params):
    W1, b1, W2, b2 = [p.copy() for p in params]

    def step(X, Y):
        nonlocal W1, b1, W2, b2  # updated in place by -=
        h = np.tanh(X @ W1 + b1)
        z = h @ W2 + b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = -(Y * (z - np.log(s))).sum(axis=1).mean()
        dz = (e / s - Y) / X.shape[0]
        dh = (dz @ W2.T) * (1 - h * h)
        W2 -= RATE * (h.T @ dz)
        b2 -= RATE * dz.sum(axis=0)
        W1 -= RATE * (X.T @ dh)
        b1 -= RATE * dh.sum(axis=0)
        return loss

    return step


def jax_step(params):
    import jax
    import jax.numpy as jnp

    def loss_fn(p, X, Y):
        W1, b1, W2, b2 = p
        logits = jnp.tanh(X @ W1 + b1) @ W2 + b2
        return -(Y * jax.nn.log_softmax(logits, axis=1)).sum(axis=1).mean()

    @jax.jit
    def update(p, X, Y):
        loss, grads = jax.value_and_grad(loss_fn)(p, X, Y)
        return loss, [w - RATE * g for w, g in zip(p, grads)]

    update = jax.jit(update, donate_argnums=0)
    state = [[jnp.asarray(p) for p in params]]

    def step(X, Y):
        loss, state[0] = update(state[0], X, Y)
        return jax.block_until_ready(loss)

    return step


def pytensor_step(params):
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax

    shared = [pytensor.shared(p.copy(), name=n) for p, n in zip(params, ("W1", "b1", "W2", "b2"))]
    W1, b1, W2, b2 = shared
    X, Y = pt.fmatrix("X"), pt.fmatrix("Y")
    logits = pt.tanh(X @ W1 + b1) @ W2 + b2
    loss = -(Y * log_softmax(logits, axis=1)).sum(axis=1).mean()
    grads = pytensor.grad(loss, shared)
    return pytensor.function([X, Y], loss, updates=[(p, p - np.float32(RATE) * g) for p, g in zip(shared, grads)])


def torch_step(params):
    import torch

    weights = [torch.tensor(p, requires_grad=True) for p in params]

    def step(X, Y):
        X, Y = torch.from_numpy(X), torch.from_numpy(Y)
        W1, b1, W2, b2 = weights
        logits = torch.tanh(X @ W1 + b1) @ W2 + b2
        loss = -(Y * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
        grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            for w, g in zip(weights, grads):
                w -= RATE * g
        return loss.item()

    return step


MAKERS = {"exprc c": exprc_step, "NumPy": numpy_step, "JAX": jax_step, "PyTensor": pytensor_step, "torch": torch_step}
PEER_MODULES = {"JAX": "jax", "PyTensor": "pytensor", "torch": "torch"}


# ---------------------------------------------------------------- running


def checked_steps(X, Y, params):
    """Each installed implementation, after its first five steps were checked against NumPy's."""
    reference = numpy_step(params)
    expected = [float(reference(X, Y)) for _ in range(STEPS_CHECKED)]
    steps, status = {}, {}
    for column, make in MAKERS.items():
        module = PEER_MODULES.get(column)
        if module is not None and _optional(module) is None:
            status[column] = "—"
            continue
        try:
            step = make(params)
            losses = [float(step(X, Y)) for _ in range(STEPS_CHECKED)]
            np.testing.assert_allclose(losses, expected, rtol=1e-5)
        except Exception as exc:  # a wrong answer or a failure: report, don't time
            status[column] = f"failed ({type(exc).__name__})"
            print(f"  W5 / {column}: {type(exc).__name__}: {str(exc).strip()[:300]}", flush=True)
            continue
        steps[column], status[column] = step, f"{losses[-1]:.6f}"
    return steps, status, expected[-1]


def best_step_times(steps, X, Y, budget):
    best = {column: float("inf") for column in steps}
    rounds, start = 0, time.perf_counter()
    while rounds < 5 or (time.perf_counter() - start < budget * len(steps) and rounds < 2000):
        for column, step in steps.items():
            t0 = time.perf_counter()
            step(X, Y)
            best[column] = min(best[column], time.perf_counter() - t0)
        rounds += 1
    return best, rounds


def write_report(path, times, status, expected, rounds, args, load_start):
    command = "python benchmarks/bench_training.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))
    columns = list(MAKERS)
    mine, jax_time = times.get("exprc c"), times.get("JAX")
    if mine is None:
        verdict = "not met (exprc failed)"
    elif jax_time is None:
        verdict = f"not checked (JAX {status.get('JAX', 'not installed')})"
    else:
        verdict = f"{'met' if jax_time > mine else 'not met'} ({jax_time / mine:.2f}× JAX)"
    lines = [
        "# W5: one SGD step of a 784-256-10 tanh MLP (float32), exprc against NumPy and the installed peers",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- machine: `nproc` {nproc()}, {cpu_model()}; {platform.system()} {platform.release()}",
        f"- versions: Python {platform.python_version()}, NumPy {np.__version__}, exprc {ex.__version__}",
        f"- command: `{command}`",
        f"- load average at the start / end (the machine is shared): "
        f"{' '.join(f'{v:.2f}' for v in load_start)} / {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; times: best single step of {rounds} "
        "rounds taken round-robin across the libraries",
        f"- the loss after {STEPS_CHECKED} steps from the same start, NumPy's hand-written step: {expected:.6f}",
        "",
        "| | " + " | ".join(columns) + " | target | met? |",
        "|---|" + "---:|" * len(columns) + "---|---|",
        "| W5 step | "
        + " | ".join(fmt_time(times[c]) if c in times else status.get(c, "—") for c in columns)
        + f" | faster than JAX | {verdict} |",
        f"| loss after {STEPS_CHECKED} steps | " + " | ".join(status.get(c, "—") for c in columns) + " | NumPy's | |",
        "",
    ]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of steps per library (at least 5)")
    parser.add_argument("--output", default=str(HERE / "results" / "training.md"))
    args = parser.parse_args()
    load_start = os.getloadavg()
    X, Y, params = problem()
    steps, status, expected = checked_steps(X, Y, params)
    times, rounds = best_step_times(steps, X, Y, args.budget)
    write_report(args.output, times, status, expected, rounds, args, load_start)


if __name__ == "__main__":
    main()

"""A Gaussian process's negative log marginal likelihood and its gradient in the three
hyperparameters (n = 1000 points), exprc beside NumPy (the gradient written by hand), JAX
and PyTorch where installed; writes ``benchmarks/results/gp.md``.

The Cholesky factorization and the solves are most of the time; in exprc they run as host
steps through NumPy's LAPACK. Usage: ``python benchmarks/bench_gp.py [--n 1000]``. The row
the issue asks for in ``benchmarks/workloads.py`` can call :func:`cases`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import cpu_model, fmt_time, nproc  # noqa: E402

import exprc as ex  # noqa: E402

THETA = np.array([0.1, -0.2, -1.0])  # log lengthscale, log signal scale, log noise scale


def data(n: int):
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-5, 5, n))
    return x, np.sin(x) + 0.1 * rng.standard_normal(n)


def exprc_case(n: int):
    x, y, theta = ex.vector("x"), ex.vector("y"), ex.vector("theta")
    d2 = (x[:, None] - x[None, :]) ** 2
    k = ex.exp(2 * theta[1]) * ex.exp(-d2 / (2 * ex.exp(2 * theta[0]))) + ex.exp(2 * theta[2]) * ex.eye(x.shape[0])
    lower = ex.linalg.cholesky(k)
    alpha = ex.linalg.cho_solve((lower, True), y)
    nll = 0.5 * (y @ alpha) + ex.log(ex.einsum("ii->i", lower)).sum() + 0.5 * x.shape[0] * np.log(2 * np.pi)
    return ex.function([x, y, theta], [nll, ex.grad(nll, theta)])


def numpy_nll_and_grad(x, y, theta):
    l2, s2, e2 = np.exp(2 * theta)
    d2 = (x[:, None] - x[None, :]) ** 2
    kern = s2 * np.exp(-d2 / (2 * l2))
    k = kern + e2 * np.eye(len(x))
    lower = np.linalg.cholesky(k)
    alpha = np.linalg.solve(lower.T, np.linalg.solve(lower, y))
    nll = 0.5 * y @ alpha + np.log(np.diag(lower)).sum() + 0.5 * len(x) * np.log(2 * np.pi)
    k_inv = np.linalg.solve(lower.T, np.linalg.solve(lower, np.eye(len(x))))
    w = 0.5 * (k_inv - np.outer(alpha, alpha))  # d nll / dK
    dk = [kern * d2 / l2, 2 * kern, 2 * e2 * np.eye(len(x))]
    return nll, np.array([(w * d).sum() for d in dk])


def jax_case():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def nll(theta, x, y):
        d2 = (x[:, None] - x[None, :]) ** 2
        k = jnp.exp(2 * theta[1]) * jnp.exp(-d2 / (2 * jnp.exp(2 * theta[0]))) + jnp.exp(2 * theta[2]) * jnp.eye(len(x))
        lower = jnp.linalg.cholesky(k)
        alpha = jax.scipy.linalg.cho_solve((lower, True), y)
        return 0.5 * y @ alpha + jnp.log(jnp.diag(lower)).sum() + 0.5 * len(x) * jnp.log(2 * jnp.pi)

    f = jax.jit(jax.value_and_grad(nll))

    def call(x, y, theta):
        value, grad = f(theta, x, y)
        return float(value), np.asarray(grad)

    return call


def torch_case():
    import torch

    def call(x, y, theta):
        t = torch.tensor(theta, requires_grad=True)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        d2 = (xt[:, None] - xt[None, :]) ** 2
        k = torch.exp(2 * t[1]) * torch.exp(-d2 / (2 * torch.exp(2 * t[0]))) + torch.exp(2 * t[2]) * torch.eye(
            len(x), dtype=torch.float64
        )
        lower = torch.linalg.cholesky(k)
        alpha = torch.cholesky_solve(yt[:, None], lower)[:, 0]
        nll = 0.5 * yt @ alpha + torch.log(torch.diagonal(lower)).sum() + 0.5 * len(x) * np.log(2 * np.pi)
        nll.backward()
        return float(nll.detach()), t.grad.numpy()

    return call


def cases(n: int):
    """``{name: call(x, y, theta) -> (nll, gradient)}`` for the peers that are installed."""
    f = exprc_case(n)
    found = {"exprc": lambda x, y, t: tuple(f(x, y, t)), "NumPy": numpy_nll_and_grad}
    for name, make in (("JAX", jax_case), ("PyTorch", torch_case)):
        try:
            found[name] = make()
        except ImportError:
            pass
    return found


def best_of(call, args, repeat):
    """The best wall time of ``repeat`` calls (each call is a large fraction of a second)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per case (the best is kept)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "gp.md"))
    args = parser.parse_args(argv)
    x, y = data(args.n)
    reference = numpy_nll_and_grad(x, y, THETA)
    rows = []
    for name, call in cases(args.n).items():
        value, grad = call(x, y, THETA)
        assert np.isclose(value, reference[0], rtol=1e-8), (name, value, reference[0])
        assert np.allclose(grad, reference[1], rtol=1e-6, atol=1e-8), (name, grad, reference[1])
        rows.append((name, best_of(call, (x, y, THETA), args.repeat)))
        print(f"{name:8} {fmt_time(rows[-1][1])}", flush=True)
    lines = [
        "# Gaussian process: negative log marginal likelihood and its gradient",
        "",
        f"n = {args.n} points, RBF kernel with noise, the gradient in 3 hyperparameters; float64;",
        f"{cpu_model()}, {nproc()} CPUs; `python benchmarks/bench_gp.py --n {args.n}`. Every result",
        "is checked against NumPy's (the gradient written by hand) before it is timed. exprc runs",
        "`cholesky` and the triangular solves as host steps through NumPy's LAPACK (its `solve`,",
        "which does not use the triangle: O(n^3) where a triangular solve is O(n^2)). Measured on",
        "a shared machine whose cores other processes were using: compare the rows, not the times.",
        "",
        "| implementation | best time per call |",
        "|---|---|",
        *(f"| {name} | {fmt_time(t)} |" for name, t in rows),
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

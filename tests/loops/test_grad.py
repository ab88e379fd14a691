"""Gradients through loops against finite differences (ex.verify_grad) on every back end."""

import numpy as np
import pytest

import exprc as ex
from tests.ops import _oracle

from ._loops import lstm, rnn_step, run, same


def check_grad(fn, points):
    """``ex.verify_grad`` on the back end under test; on CUDA, the compiled gradient against
    the NumPy reference's (which verify_grad checks)."""
    backend = _oracle.current_backend()
    if backend != "cuda":
        ex.verify_grad(fn, points, n_tests=1, rng=0, backend=backend)
        return
    ex.verify_grad(fn, points, n_tests=1, rng=0)
    inputs = [ex.tensor(f"p{i}", dtype=p.dtype.name, shape=(None,) * p.ndim) for i, p in enumerate(points)]
    grads = ex.grad(ex.sum(fn(*inputs) ** 2), inputs)
    feeds = dict(zip(inputs, points))
    expected = ex.function(inputs, grads, backend="numpy")(*points)
    for got, want in zip(run(grads, feeds), expected):
        same(got, want, rtol=1e-9, atol=1e-12)


def _cumsum(x):
    return ex.scan(lambda v, acc: acc + v, sequences=x, outputs_info=ex.constant(0.0))[0]


def _cumprod(x):
    return ex.scan(lambda v, acc: acc * v, sequences=x, outputs_info=ex.constant(1.0))[0]


def test_cumulative_sum_and_product():
    a = np.array([0.5, -1.5, 2.0, 0.75])
    check_grad(_cumsum, [a])
    check_grad(_cumprod, [a])


def test_fibonacci_taps_and_its_initial_values():
    def fib(x0, w):
        return ex.scan(lambda a, b: a * w + b, outputs_info=dict(initial=x0, taps=[-2, -1]), n_steps=5)[0]

    check_grad(fib, [np.array([0.3, 0.7]), np.array(0.9)])


def test_initial_values_longer_than_the_taps():
    def fib(x0):
        return ex.scan(lambda a, b: a * b + 1, outputs_info=dict(initial=x0, taps=[-3, -1]), n_steps=4)[0]

    check_grad(fib, [np.array([2.0, 0.3, 0.7, 0.5])])


def test_sequence_taps():
    def smooth(x, w):
        return ex.scan(lambda a, b, c: (a + w * b) * c, sequences=dict(input=x, taps=[-2, 0, 1]))[0]

    check_grad(smooth, [np.array([0.5, 1.0, -0.5, 2.0, 1.5, 0.25]), np.array(0.5)])


def test_vanilla_rnn(rng):
    def rnn(x, h0, W, U, b):
        return ex.scan(rnn_step, sequences=x, outputs_info=h0, non_sequences=[W, U, b])[0]

    points = [rng.normal(size=s) * 0.5 for s in ((3, 2, 2), (2, 3), (2, 3), (3, 3), (3,))]
    check_grad(rnn, points)


def test_lstm(rng):
    def forward(x, h0, c0, W, U, b):
        hs, c_last = lstm(x, h0, c0, W, U, b, 2)
        return hs.sum() + c_last.sum() * 0.5

    points = [rng.normal(size=s) * 0.5 for s in ((3, 2, 2), (2, 2), (2, 2), (2, 8), (2, 8), (8,))]
    check_grad(forward, points)


def test_until():
    def grow(x, w):
        return ex.scan(lambda v, acc: (acc * w + v, ex.until(acc > 2.0)), sequences=x, outputs_info=ex.constant(0.5))[0]

    check_grad(grow, [np.array([0.5, 1.0, 1.5, 2.0, 2.5]), np.array(1.1)])


def test_go_backwards_and_map():
    def backwards(x, w):
        ys = ex.scan(lambda v, acc: acc * w + v, sequences=x, outputs_info=ex.constant(0.0), go_backwards=True)[0]
        return ys + ex.map(lambda v: ex.sin(v) * w, x)[0]

    check_grad(backwards, [np.array([0.5, -1.0, 2.0]), np.array(0.7)])


def test_nested_scans():
    def table(x, y):
        def row(v):
            return ex.scan(lambda u, acc: acc * v + u, sequences=y, outputs_info=ex.constant(0.0))[0]

        return ex.scan(row, sequences=x)[0]

    check_grad(table, [np.array([0.5, 1.5]), np.array([1.0, -0.5, 0.25])])


def test_reduce_keeps_only_the_last_value():
    def last(x, w):
        return ex.reduce(lambda v, acc: ex.tanh(acc * w + v), x, ex.constant(0.1))[0]

    check_grad(last, [np.array([0.5, -1.0, 2.0]), np.array(0.8)])


def test_fori_loop_and_while_loop_with_max_steps():
    def fori(x, w):
        return ex.fori_loop(0, 4, lambda i, c: ex.sin(c) * w + i, x)

    def solver(a):
        return ex.while_loop(lambda x: abs(x * x - a) > 1e-9, lambda x: (x + a / x) / 2, a * 1.0, max_steps=30)

    check_grad(fori, [np.array([0.5, 1.0]), np.array(0.9)])
    check_grad(solver, [np.array(2.0)])


def test_ifelse():
    def choose(x, s):
        return ex.ifelse(s > 0, ex.exp(x) * s, x * x)

    check_grad(choose, [np.array([0.5, -1.0]), np.array(0.5)])
    check_grad(choose, [np.array([0.5, -1.0]), np.array(-0.5)])


def test_truncate_gradient():
    x, a = ex.vector("x"), ex.scalar("a")
    hs, _ = ex.scan(lambda v, h: h * a + v, sequences=x, outputs_info=ex.constant(0.5), truncate_gradient=2)
    gx, ga = ex.grad(hs.sum(), [x, a])
    xv, av = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 0.5
    h = [0.5]
    for v in xv:
        h.append(h[-1] * av + v)
    # Theano's rule: the backward pass runs over the last 2 steps only (t = 3, 4).
    pending, expected_gx, expected_ga = 0.0, np.zeros(5), 0.0
    for t in (4, 3):
        g = 1.0 + pending
        expected_gx[t] = g
        expected_ga += g * h[t]
        pending = g * av
    got = run([gx, ga], {x: xv, a: np.array(av)})
    same(got[0], expected_gx)
    same(got[1], np.float64(expected_ga))


def test_a_while_loop_without_max_steps_is_not_differentiable():
    a = ex.scalar("a")
    y = ex.while_loop(lambda x: x < 10.0, lambda x: x * a, ex.constant(1.0))
    with pytest.raises(NotImplementedError, match="max_steps"):
        ex.grad(y, a)


def test_the_gradient_of_a_scan_is_a_backward_scan():
    x = ex.vector("x")
    hs, _ = ex.scan(lambda v, h: h * v, sequences=x, outputs_info=ex.constant(1.0), name="prod")
    g = ex.grad(hs.sum(), x)
    names = {node.op.name for node in ex.toposort([g]) if isinstance(node.op, ex.ops.loops.Scan)}
    assert names == {"prod", "grad of prod"}


def test_second_order_through_a_scan():
    def forward(t):
        return ex.scan(lambda v, acc: ex.sin(acc * v) + v, sequences=t, outputs_info=ex.constant(0.3))[0]

    check_grad(lambda t: ex.grad(forward(t).sum(), t), [np.array([0.5, 1.2, -0.4])])
    x = ex.vector("x")
    a = np.array([0.5, 1.2, -0.4])
    hessian = ex.hessian(forward(x).sum(), x).eval({x: a})
    gradient = ex.function([x], ex.grad(forward(x).sum(), x), backend="numpy")
    steps = np.eye(3) * 1e-6
    numeric = np.stack([(gradient(a + d) - gradient(a - d)) / 2e-6 for d in steps])
    np.testing.assert_allclose(hessian, numeric, rtol=1e-6, atol=1e-8)

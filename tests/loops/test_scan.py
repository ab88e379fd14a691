"""Loops against NumPy loops, on every back end: scan and its helpers, fori_loop, while_loop, ifelse."""

import dataclasses

import numpy as np
import pytest

import exprc as ex
from tests.ops import _oracle

from ._loops import lstm, lstm_numpy, rnn_numpy, rnn_step, run, same


def test_cumulative_sum_and_product():
    x = ex.vector("x")
    sums, _ = ex.scan(lambda v, acc: acc + v, sequences=x, outputs_info=ex.constant(0.0))
    prods, _ = ex.scan(lambda v, acc: acc * v, sequences=x, outputs_info=ex.constant(1.0))
    a = np.array([0.5, -2.0, 3.0, 1.5])
    got = run([sums, prods], {x: a})
    same(got[0], np.cumsum(a))
    same(got[1], np.cumprod(a))


def test_fibonacci_with_two_taps():
    x0 = ex.vector("x0")
    fib, _ = ex.scan(lambda a, b: a + b, outputs_info=dict(initial=x0, taps=[-2, -1]), n_steps=8)
    expected = [0.0, 1.0]
    for _ in range(8):
        expected.append(expected[-2] + expected[-1])
    same(run(fib, {x0: np.array([0.0, 1.0])}), np.array(expected[2:]))
    assert fib.type.shape == (8,)


def test_sequence_taps_read_around_the_step():
    x = ex.vector("x")
    diffs, _ = ex.scan(lambda prev, here, nxt: nxt - 2 * here + prev, sequences=dict(input=x, taps=[-1, 0, 1]))
    a = np.array([1.0, 4.0, 9.0, 16.0, 30.0])
    same(run(diffs, {x: a}), a[2:] - 2 * a[1:-1] + a[:-2])


def test_vanilla_rnn_forward(rng):
    x, h0, W, U, b = ex.tensor3("x"), ex.matrix("h0"), ex.matrix("W"), ex.matrix("U"), ex.vector("b")
    hs, _ = ex.scan(rnn_step, sequences=x, outputs_info=h0, non_sequences=[W, U, b])
    values = [rng.normal(size=s) for s in ((5, 2, 3), (2, 4), (3, 4), (4, 4), (4,))]
    same(run(hs, dict(zip([x, h0, W, U, b], values))), rnn_numpy(*values))


def test_lstm_forward(rng):
    x, h0, c0 = ex.tensor3("x"), ex.matrix("h0"), ex.matrix("c0")
    W, U, b = ex.matrix("W"), ex.matrix("U"), ex.vector("b")
    hs, c_last = lstm(x, h0, c0, W, U, b, 3)
    values = [rng.normal(size=s) for s in ((4, 2, 2), (2, 3), (2, 3), (2, 12), (3, 12), (12,))]
    got = run([hs, c_last], dict(zip([x, h0, c0, W, U, b], values)))
    expected_hs, expected_c = lstm_numpy(*values)
    same(got[0], expected_hs)
    same(got[1], expected_c)


def test_until_stops_after_the_step_where_it_holds():
    x = ex.vector("x")
    ys, _ = ex.scan(lambda v, acc: (acc + v, ex.until(acc + v > 4)), sequences=x, outputs_info=ex.constant(0.0))
    same(run(ys, {x: np.array([1.0, 2.0, 3.0, 4.0, 5.0])}), np.array([1.0, 3.0, 6.0]))
    same(run(ys, {x: np.array([1.0, 1.0])}), np.array([1.0, 2.0]))


def test_until_with_n_steps_alone():
    x = ex.scalar("x")
    ys, _ = ex.scan(lambda c: (c * 2, ex.until(c * 2 > x)), outputs_info=ex.constant(1.0), n_steps=100)
    same(run(ys, {x: np.array(20.0)}), np.array([2.0, 4.0, 8.0, 16.0, 32.0]))


def test_a_body_updating_a_shared_variable():
    total = ex.shared(np.float64(0.0), name="total")
    x = ex.vector("x")
    ys, updates = ex.scan(lambda v: (v * total, {total: total + v}), sequences=x)
    assert list(updates) == [total]
    got = run(ys, {x: np.array([1.0, 2.0, 3.0])}, updates=updates)
    # As in Theano, each step reads the value the step before it wrote: v * (1 + ... + previous v).
    same(got, np.array([1.0 * 0.0, 2.0 * 1.0, 3.0 * 3.0]))
    same(total.get_value(), np.float64(6.0))
    same(run(ys, {x: np.array([1.0])}, updates=updates), np.array([6.0]))


def test_go_backwards():
    x = ex.vector("x")
    ys, _ = ex.scan(lambda v, acc: acc * 10 + v, sequences=x, outputs_info=ex.constant(0.0), go_backwards=True)
    same(run(ys, {x: np.array([1.0, 2.0, 3.0])}), np.array([3.0, 32.0, 321.0]))


def test_nested_scans():
    x, y = ex.vector("x"), ex.vector("y")

    def row(v):
        inner, _ = ex.scan(lambda u, acc: acc + u * v, sequences=y, outputs_info=ex.constant(0.0))
        return inner

    table, _ = ex.scan(row, sequences=x)
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.25])
    same(run(table, {x: a, y: b}), np.cumsum(np.outer(a, b), axis=1))


def test_shortest_sequence_wins_and_n_steps_bounds():
    x, y = ex.vector("x"), ex.vector("y")
    ys, _ = ex.scan(lambda u, v: u * v, sequences=[x, y])
    capped, _ = ex.scan(lambda u, v: u * v, sequences=[x, y], n_steps=2)
    got = run([ys, capped], {x: np.arange(5.0), y: np.arange(3.0)})
    same(got[0], np.arange(3.0) ** 2)
    same(got[1], np.arange(2.0) ** 2)


def test_zero_length_sequences():
    x, h0 = ex.matrix("x"), ex.vector("h0")
    hs, _ = ex.scan(lambda v, h: h + v, sequences=x, outputs_info=h0)
    last, _ = ex.reduce(lambda v, h: h + v, x, h0)
    mapped, _ = ex.map(lambda v: v * 2, x)
    got = run([hs, last, mapped], {x: np.zeros((0, 3)), h0: np.ones(3)})
    same(got[0], np.zeros((0, 3)))
    same(got[1], np.ones(3))
    assert got[2].shape[0] == 0


def test_map_reduce_foldl_foldr():
    x = ex.vector("x")
    mapped, _ = ex.map(lambda v: v**2, x)
    total, _ = ex.reduce(lambda v, acc: acc + v, x, ex.constant(0.0))
    left, _ = ex.foldl(lambda v, acc: acc * 2 + v, x, ex.constant(0.0))
    right, _ = ex.foldr(lambda v, acc: acc * 2 + v, x, ex.constant(0.0))
    a = np.array([1.0, 0.0, 1.0, 1.0])
    got = run([mapped, total, left, right], {x: a})
    same(got[0], a**2)
    same(got[1], np.float64(3.0))
    same(got[2], np.float64(11.0))
    same(got[3], np.float64(13.0))


def test_fori_loop_with_a_tuple_carry():
    x = ex.scalar("x")
    a, b = ex.fori_loop(1, 5, lambda i, c: (c[0] * x, c[1] + i), (ex.constant(1.0), ex.constant(np.int64(0))))
    got = run([a, b], {x: np.array(2.0)})
    same(got[0], np.float64(16.0))
    same(got[1], np.int64(10))


def test_fori_loop_with_symbolic_bounds():
    n, x = ex.lscalar("n"), ex.scalar("x")
    y = ex.fori_loop(0, n, lambda i, c: c + x, ex.constant(0.0))
    same(run(y, {n: np.array(4, dtype=np.int64), x: np.array(0.5)}), np.float64(2.0))
    same(run(y, {n: np.array(-3, dtype=np.int64), x: np.array(0.5)}), np.float64(0.0))


def test_while_loop_newton_solver():
    a = ex.scalar("a")
    root = ex.while_loop(lambda x: abs(x * x - a) > 1e-12, lambda x: (x + a / x) / 2, ex.constant(1.0))
    bounded = ex.while_loop(lambda x: x < 100.0, lambda x: x * 2, ex.constant(1.0), max_steps=3)
    got = run([root, bounded], {a: np.array(2.0)})
    same(got[0], np.sqrt(np.float64(2.0)))
    same(got[1], np.float64(8.0))


def test_while_loop_whose_condition_fails_at_once():
    a = ex.scalar("a")
    same(run(ex.while_loop(lambda x: x < 0.0, lambda x: x - 1, a), {a: np.array(3.0)}), np.float64(3.0))


@dataclasses.dataclass(frozen=True)
class _Counted(ex.Op):
    """Its input times 1, counting each run (in ``calls``)."""

    calls: list = dataclasses.field(default_factory=list, compare=False, hash=False)

    def make_node(self, x):
        return ex.Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        self.calls.append(1)
        return [np.asarray(inputs[0]) * 1]


def test_ifelse_runs_only_the_chosen_branch():
    x = ex.vector("x")
    counted = _Counted()
    y = ex.ifelse(x.sum() > 0, ex.log(x), counted(x) * 2)
    same(run(y, {x: np.array([1.0, 2.0])}), np.log([1.0, 2.0]))
    assert counted.calls == []
    same(run(y, {x: np.array([-1.0, -2.0])}), np.array([-2.0, -4.0]))
    assert counted.calls == [1]


def test_ifelse_of_tuples():
    x, s = ex.vector("x"), ex.scalar("s")
    a, b = ex.ifelse(s > 0, (x * s, s), (x, -s))
    got = run([a, b], {x: np.array([1.0, 2.0]), s: np.array(3.0)})
    same(got[0], np.array([3.0, 6.0]))
    same(got[1], np.float64(3.0))


def test_the_loop_runs_as_a_host_step_on_compiled_back_ends():
    if _oracle.current_backend() != "c":
        pytest.skip("the generated C of the C back end")
    x = ex.vector("x")
    ys, _ = ex.scan(lambda v, acc: acc + v, sequences=x, outputs_info=ex.constant(0.0))
    source = ex.function([x], ys * 2, backend="c").source
    assert "NumPy Scan{<lambda>}" in source

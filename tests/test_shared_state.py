"""Shared state that stays consistent: calls updating shared variables from several threads
apply each update whole, and variables (or inputs) sharing memory are never updated in place
over each other. The GPU's side of both is in tests/codegen/test_cuda_training.py."""

import threading

import numpy as np
import pytest

import exprc as ex

BACKENDS = ["c", "numpy"]


def _in_threads(*jobs, timeout=120):
    """Run each ``job()`` in a thread of its own, all at once; re-raise the first error."""
    errors, start = [], threading.Barrier(len(jobs))

    def run(job):
        try:
            start.wait()
            job()
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "the calls deadlocked"
    if errors:
        raise errors[0]


def _repeat(f, n):
    def job():
        for _ in range(n):
            f()

    return job


# --- finding 6: calls updating shared variables are atomic -------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_updates_from_several_threads_are_each_applied_whole(backend):
    w = ex.shared(np.zeros(100_000), name="w")
    step = ex.function([], [], updates={w: w + 1.0}, backend=backend)
    _in_threads(*[_repeat(step, 400) for _ in range(4)])
    np.testing.assert_array_equal(w.get_value(), np.full(100_000, 1600.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_functions_updating_one_variable_from_two_threads(backend):
    w = ex.shared(np.zeros(50_000), name="w")
    b = ex.shared(np.zeros(3), name="b")
    add_one = ex.function([], [], updates={w: w + 1.0}, backend=backend)
    add_ten = ex.function([], [], updates=[(b, b + 1.0), (w, w + 10.0)], backend=backend)
    _in_threads(_repeat(add_one, 500), _repeat(add_ten, 500))
    np.testing.assert_array_equal(w.get_value(), np.full(50_000, 5500.0))
    np.testing.assert_array_equal(b.get_value(), np.full(3, 500.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_variables_updated_in_opposite_orders_do_not_deadlock(backend):
    a, b = ex.shared(np.zeros(1000), name="a"), ex.shared(np.zeros(1000), name="b")
    ab = ex.function([], [], updates=[(a, a + 1.0), (b, b + 2.0)], backend=backend)
    ba = ex.function([], [], updates=[(b, b + 3.0), (a, a + 4.0)], backend=backend)
    _in_threads(_repeat(ab, 300), _repeat(ba, 300))
    np.testing.assert_array_equal(a.get_value(), np.full(1000, 1500.0))
    np.testing.assert_array_equal(b.get_value(), np.full(1000, 1500.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_readers_and_get_value_never_see_an_update_half_written(backend):
    # Every update keeps the elements of w equal, so a value with two different elements
    # is an update caught half written (the C back end computes this one in place).
    w = ex.shared(np.zeros(100_000), name="w")
    step = ex.function([], [], updates={w: w + 1.0}, backend=backend)
    spread = ex.function([], w.max() - w.min(), backend=backend)
    seen = []

    def read():
        for _ in range(300):
            seen.append(float(spread()))
            value = w.get_value()
            seen.append(value.max() - value.min())

    _in_threads(_repeat(step, 600), read)
    assert seen == [0.0] * 600
    np.testing.assert_array_equal(w.get_value(), np.full(100_000, 600.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_value_while_another_thread_updates(backend):
    w = ex.shared(np.zeros(100_000), name="w")
    step = ex.function([], [], updates={w: w + 1.0}, backend=backend)

    def reset():
        for k in range(100):
            w.set_value(np.full(100_000, -1e6 * k))

    _in_threads(_repeat(step, 600), reset)
    value = w.get_value()
    # The last reset wrote -99e6 whole; the updates after it added 1 at a time, to every element.
    assert value.min() == value.max()
    assert -99e6 <= value[0] <= -99e6 + 600


# --- finding 7: no update written in place over memory another input reads ----------------------


def _run_on(backend, build):
    """Build shared variables and a function with ``build(backend)``, call it once and return
    the variables' values and the call's result."""
    variables, f, args = build(backend)
    result = f(*args)
    return [v.get_value() for v in variables], result


@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_variables_borrowing_one_array(backend):
    a0 = np.arange(4.0)
    a, b = ex.shared(a0, borrow=True), ex.shared(a0, borrow=True)
    f = ex.function([], [], updates=[(a, a + b[::-1]), (b, b * 2.0)], backend=backend)
    f()
    np.testing.assert_array_equal(a.get_value(), np.arange(4.0) + np.arange(4.0)[::-1])
    np.testing.assert_array_equal(b.get_value(), np.arange(4.0) * 2.0)
    f()  # no longer sharing memory: the next call may write in place, and stays right
    np.testing.assert_array_equal(a.get_value(), [3.0 + 6.0, 3.0 + 4.0, 3.0 + 2.0, 3.0])
    np.testing.assert_array_equal(b.get_value(), np.arange(4.0) * 4.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_variables_over_overlapping_slices_of_one_base(backend):
    base = np.arange(5.0)
    expected_base = base.copy()
    a, b = ex.shared(base[:4], borrow=True), ex.shared(base[1:], borrow=True)
    f = ex.function([], [], updates=[(a, a * 2.0 + 1.0), (b, b - a)], backend=backend)
    f()
    np.testing.assert_array_equal(a.get_value(), expected_base[:4] * 2.0 + 1.0)
    np.testing.assert_array_equal(b.get_value(), expected_base[1:] - expected_base[:4])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("view", ["itself", "reversed", "a slice"])
def test_a_borrowed_input_aliasing_the_updated_variable(backend, view):
    w = ex.shared(np.arange(6.0), name="w")
    x = ex.vector("x")
    f = ex.function([x], (x * 1.0).sum(), updates=[(w, w * 3.0 + x[::-1])], backend=backend)
    f(np.ones(6))  # a call like a training loop's first, before the argument that aliases
    own = w.get_value(borrow=True)
    arg = {"itself": own, "reversed": own[::-1], "a slice": own[:6]}[view]
    before, arg_before = own.copy(), arg.copy()
    total = f(arg)
    np.testing.assert_array_equal(total, arg_before.sum())
    np.testing.assert_array_equal(w.get_value(), before * 3.0 + arg_before[::-1])
    if backend == "c":  # computed into a fresh array, not over the argument's memory
        assert not np.shares_memory(w.get_value(borrow=True), own)


def test_the_c_back_end_agrees_with_the_numpy_back_end_on_aliases():
    def build(backend):
        base = np.arange(8.0)
        a, b = ex.shared(base[:6], borrow=True), ex.shared(base[2:], borrow=True)
        c = ex.shared(base[:6], borrow=True)
        x = ex.vector("x")
        f = ex.function([x], a.sum(), updates=[(a, a + b[::-1] + x), (b, b * 2.0), (c, c - x)], backend=backend)
        return [a, b, c], f, [base[1:7]]

    got, got_sum = _run_on("c", build)
    expected, expected_sum = _run_on("numpy", build)
    np.testing.assert_array_equal(got_sum, expected_sum)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_updates_are_still_written_in_place_without_aliases():
    # The check for aliases only takes away the in-place write where memory is shared.
    w, v = ex.shared(np.zeros(5), name="w"), ex.shared(np.ones(5), name="v")
    step = ex.function([], [], updates=[(w, w + v), (v, v * 2.0)], backend="c")
    step()
    own = w.get_value(borrow=True)
    step()
    assert w.get_value(borrow=True) is own
    np.testing.assert_array_equal(w.get_value(), np.full(5, 3.0))

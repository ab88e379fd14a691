"""Shared variables, updates and givens, on both back ends."""

import numpy as np
import pytest

import exprc as ex

BACKENDS = ("numpy", "c")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def test_value_is_copied_unless_borrowed():
    data = np.arange(3.0)
    w = ex.shared(data, name="w")
    data[0] = 99.0
    assert w.get_value()[0] == 0.0
    w.get_value()[1] = 99.0  # a copy: the shared value is untouched
    assert w.get_value()[1] == 1.0
    borrowed = ex.shared(data, borrow=True)
    assert borrowed.get_value(borrow=True) is data


def test_set_value_checks_dtype_and_shape():
    w = ex.shared(np.zeros(3, dtype=np.float32), name="w")
    w.set_value([1, 2, 3])  # Python numbers take the variable's dtype
    assert w.get_value().dtype == np.float32
    with pytest.raises(TypeError, match="shared variable 'w'.*float32"):
        w.set_value(np.zeros(3))  # float64 data would lose precision
    with pytest.raises(ex.ShapeError, match=r"shared variable 'w'.*\(3,\).*shape=\(None,\)"):
        w.set_value(np.zeros(4, dtype=np.float32))
    loose = ex.shared(np.zeros(3), shape=(None,))
    loose.set_value(np.ones(5))
    assert loose.get_value().shape == (5,)


def test_shared_constructor_errors():
    with pytest.raises(TypeError, match="symbolic"):
        ex.shared(ex.vector("x"))
    with pytest.raises(TypeError, match="numeric"):
        ex.shared(["a", "b"], name="s")
    with pytest.raises(ValueError, match="2 axes"):
        ex.shared(np.zeros(3), shape=(None, None))


def test_shared_is_read_implicitly(backend):
    w = ex.shared(np.array([1.0, 2.0]), name="w")
    x = ex.vector("x")
    f = ex.function([x], (x * w).sum(), backend=backend)
    assert f([3.0, 4.0]) == 11.0
    w.set_value([0.0, 1.0])
    assert f([3.0, 4.0]) == 4.0


def test_updates_see_the_values_before_the_call(backend):
    a = ex.shared(np.array([1.0, 2.0]), name="a")
    b = ex.shared(np.array([3.0, 4.0]), name="b")
    swap = ex.function([], [a + b], updates=[(a, b), (b, a)], backend=backend)
    (total,) = swap()
    np.testing.assert_array_equal(total, [4.0, 6.0])
    np.testing.assert_array_equal(a.get_value(), [3.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    swap()
    np.testing.assert_array_equal(a.get_value(), [1.0, 2.0])


def test_no_stale_aliasing_between_outputs_and_shared_values(backend):
    a = ex.shared(np.array([1.0, 2.0]), name="a")
    b = ex.shared(np.array([3.0, 4.0]), name="b")
    # b takes a's value, and the output is the very expression stored in a.
    new_a = a * 2
    f = ex.function([], [new_a, a], updates=[(a, new_a), (b, a)], backend=backend)
    out_new, out_old = f()
    values = [a.get_value(borrow=True), b.get_value(borrow=True), out_new, out_old]
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert not np.shares_memory(values[i], values[j]), (i, j)
    out_new[:] = -1.0  # the caller owns what it gets
    out_old[:] = -1.0
    np.testing.assert_array_equal(a.get_value(), [2.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])


def test_sgd_step_matches_numpy(backend):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=50)
    w = ex.shared(np.zeros(4), name="w")
    x_in, y_in = ex.matrix("X"), ex.vector("y")
    cost = ((x_in @ w - y_in) ** 2).mean()
    step = ex.function([x_in, y_in], cost, updates=[(w, w - 0.1 * ex.grad(cost, w))], backend=backend)
    w_np = np.zeros(4)
    for _ in range(5):
        loss = step(X, y)
        expected = ((X @ w_np - y) ** 2).mean()
        w_np = w_np - 0.1 * (2 * X.T @ (X @ w_np - y) / len(y))
        np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(w.get_value(), w_np, rtol=1e-12)


def test_function_without_outputs_returns_an_empty_list(backend):
    count = ex.shared(np.int64(0), name="count")
    tick = ex.function([], [], updates={count: count + 1}, backend=backend)
    assert tick() == [] and tick() == []
    assert count.get_value() == 2


def test_givens_replace_inputs(backend):
    data = ex.shared(np.arange(12.0).reshape(6, 2), name="data")
    index = ex.lscalar("i")
    x = ex.matrix("x")
    batch = ex.function([index], x.sum(axis=1), givens={x: data[index * 2 : (index + 1) * 2]}, backend=backend)
    np.testing.assert_array_equal(batch(1), [9.0, 13.0])


@pytest.mark.parametrize(
    "update, error, match",
    [
        (lambda w: w[:2], ex.ShapeError, r"update of shared variable w.*axis 0 must have length 3"),
        (lambda w: w.astype("float32"), TypeError, r"update of shared variable w.*float32, expected float64.*astype"),
        (lambda w: w.sum(), TypeError, r"update of shared variable w.*0 dimensions, expected 1"),
    ],
)
def test_wrong_update_is_refused_when_building(update, error, match):
    w = ex.shared(np.zeros(3), name="w")
    with pytest.raises(error, match=match):
        ex.function([], [], updates=[(w, update(w))])


def test_update_with_unknown_length_is_checked_when_called():
    w = ex.shared(np.zeros(3), name="w")
    x = ex.vector("x")
    f = ex.function([x], [], updates=[(w, w + x)])  # x's length is only known at the call
    f(np.ones(1))  # broadcasts: fine
    with pytest.raises((ValueError, ex.ShapeError)):
        f(np.ones(4))  # (3,) and (4,) do not broadcast
    loose = ex.shared(np.zeros(3), name="loose", shape=(None,))
    fixed = ex.shared(np.zeros(3), name="fixed")
    g = ex.function([], [], updates=[(loose, ex.concatenate([loose, loose])), (fixed, fixed + 1)])
    g()
    assert loose.get_value().shape == (6,)
    h = ex.function([], [], updates=[(fixed, fixed + loose[:3]), (loose, loose[:5])])
    h()
    assert loose.get_value().shape == (5,)


def test_shared_value_of_unknown_length_must_fit_at_the_call():
    fixed = ex.shared(np.zeros(2), name="fixed")
    loose = ex.shared(np.zeros(2), name="loose", shape=(None,))
    f = ex.function([], [], updates=[(fixed, loose * 2)])
    loose.set_value(np.ones(3))
    with pytest.raises(ex.ShapeError, match="no update was written"):
        f()
    np.testing.assert_array_equal(fixed.get_value(), [0.0, 0.0])


@pytest.mark.parametrize(
    "updates, error, match",
    [
        (lambda w, x: [(x, x + 1)], TypeError, "only shared variables"),
        (lambda w, x: [(w, w + 1), (w, w + 2)], ValueError, "updated twice"),
        (lambda w, x: [(w,)], TypeError, "pair"),
        (lambda w, x: w, TypeError, "list of"),
    ],
)
def test_malformed_updates(updates, error, match):
    w, x = ex.shared(np.zeros(3), name="w"), ex.vector("x")
    with pytest.raises(error, match=match):
        ex.function([x], [], updates=updates(w, x))


def test_shared_variable_cannot_be_an_input():
    w = ex.shared(np.zeros(3), name="w")
    with pytest.raises(TypeError, match="shared variable.*implicitly"):
        ex.function([w], w + 1)


def test_sgd_update_is_written_in_place_on_the_c_back_end():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(30, 5)), rng.normal(size=30)
    w = ex.shared(np.zeros(5), name="w")
    x_in, y_in = ex.matrix("X"), ex.vector("y")
    cost = ((x_in @ w - y_in) ** 2).mean()
    step = ex.function([x_in, y_in], cost, updates=[(w, w - 0.1 * ex.grad(cost, w))], backend="c")
    assert step._program.in_place  # the update was found safe to write over w
    before = w.get_value(borrow=True)
    w_np = np.zeros(5)
    for _ in range(3):
        step(X, y)
        w_np = w_np - 0.1 * (2 * X.T @ (X @ w_np - y) / len(y))
    assert w.get_value(borrow=True) is before  # the same array, written over
    np.testing.assert_allclose(w.get_value(), w_np, rtol=1e-12)


@pytest.mark.parametrize("case", ["transposed read", "old value returned", "read after", "view returned"])
def test_updates_that_cannot_be_written_in_place_stay_correct(case):
    start = np.arange(9.0).reshape(3, 3)
    w = ex.shared(start, name="w")
    if case == "transposed read":  # each element needs another element's old value
        outputs, new = [], w - w.T
    elif case == "old value returned":
        outputs, new = [w.sum(axis=1)], w * 2
    elif case == "read after":  # a later step reads the old w
        new = w + 1
        outputs = [(new @ w).sum()]
    else:
        outputs, new = [w.T], w * 2
    f = ex.function([], outputs, updates=[(w, new)], backend="c")
    got = f()
    expected = {
        "transposed read": ([], start - start.T),
        "old value returned": ([start.sum(axis=1)], start * 2),
        "read after": ([((start + 1) @ start).sum()], start + 1),
        "view returned": ([start.T], start * 2),
    }[case]
    for a, b in zip(got, expected[0]):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(w.get_value(), expected[1])
    for a in got:
        assert not np.shares_memory(a, w.get_value(borrow=True))


@pytest.mark.parametrize("mode", ["check", "nanguard"])
def test_updates_in_checking_modes(mode):
    w = ex.shared(np.array([1.0, 2.0]), name="w")
    x = ex.vector("x")
    cost = ((x * w) ** 2).sum()
    step = ex.function([x], cost, updates=[(w, w - 0.1 * ex.grad(cost, w))], backend="c", mode=mode)
    assert step([1.0, 1.0]) == 5.0
    np.testing.assert_allclose(w.get_value(), [1.0 - 0.2, 2.0 - 0.4])


def test_a_shared_variable_is_true_and_a_symbolic_comparison_has_no_truth_value():
    W = ex.shared(np.zeros(2), name="W")
    assert W and not (not W)
    with pytest.raises(TypeError, match="truth value of symbolic tensor W > 0 is unknown"):
        bool(W > 0)
    x = ex.vector("x")
    with pytest.raises(TypeError, match="truth value"):
        bool(x)

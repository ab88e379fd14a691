"""Gradients that are zero whatever the inputs (through ``//``, ``floor``, ``sign``, ...) stay
out of the gradient graph: no zeros are broadcast, multiplied or summed, yet the variable
keeps its zero gradient (with its shape and dtype) and is not reported as disconnected."""

import numpy as np
import pytest

import exprc as ex
from exprc.grad import is_symbolic_zero
from exprc.graph import toposort

# Each is piecewise constant in x: its gradient is zero.
STEPS = {
    "floor_divide": lambda x: x // 3.0,
    "floor": ex.floor,
    "ceil": ex.ceil,
    "trunc": ex.trunc,
    "rint": ex.rint,
    "round": ex.round,
    "sign": ex.sign,
    "stop_gradient": ex.stop_gradient,
}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_zero_term_leaves_the_gradient_graph_unchanged(name):
    x = ex.matrix("x")
    smooth = (ex.sin(x) * x).sum()
    with_zero = smooth + STEPS[name](ex.exp(x) * 2.0).sum()
    # Graphs are hash-consed: the very same gradient, not merely an equal one.
    assert ex.grad(with_zero, x) is ex.grad(smooth, x)


@pytest.mark.parametrize("name", sorted(set(STEPS) - {"stop_gradient"}))
def test_only_a_zero_gradient_gives_zeros_of_the_variables_type(name):
    x = ex.tensor("x", dtype="float32", shape=(None, 3))
    g = ex.grad(STEPS[name](ex.exp(x)).sum(), x)
    assert is_symbolic_zero(g)
    assert (g.dtype, g.type.shape) == ("float32", (None, 3))
    value = g.eval({x: np.ones((2, 3), np.float32)})
    assert value.dtype == np.float32 and value.shape == (2, 3) and not value.any()


def test_a_zero_gradient_is_connected_stop_gradient_is_not():
    x = ex.vector("x")
    assert is_symbolic_zero(ex.grad(ex.floor(x).sum(), x))
    with pytest.raises(ex.DisconnectedInputError):
        ex.grad(ex.stop_gradient(x).sum(), x)
    with pytest.raises(ex.DisconnectedInputError):
        ex.grad(x.astype("int64").sum().astype("float64"), x)


def test_zero_through_a_broadcast_input_keeps_the_inputs_shape():
    x, b = ex.matrix("x"), ex.vector("b")
    g = ex.grad((x * b).sum() + ((x + b) // 2.0).sum(), b)
    xv, bv = np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(g.eval({x: xv, b: bv}), xv.sum(axis=0))
    assert not any(is_symbolic_zero(v) for node in toposort([g]) for v in node.inputs if v.ndim)


def test_zero_and_nonzero_paths_to_one_variable():
    # x reaches the cost through floor (zero) and through the product (not).
    x = ex.vector("x")
    g = ex.grad((ex.floor(x) * x).sum(), x)
    xv = np.array([0.5, 1.5, -2.5])
    np.testing.assert_array_equal(g.eval({x: xv}), np.floor(xv))


@pytest.mark.parametrize("value, expected", [(np.zeros(3), True), (np.array([0.0, -0.0]), True), (np.ones(2), False)])
def test_is_symbolic_zero_reads_constants_through_views_and_casts(value, expected):
    c = ex.constant(value)
    assert is_symbolic_zero(ex.broadcast_to(c[None, :], (4, c.type.shape[0])).astype("float32")) is expected
    assert is_symbolic_zero(ex.constant(np.array([0.0, np.nan]))) is False


# Each reaches the cost only through a comparison, an integer or boolean value, or
# stop_gradient: no gradient flows, and none is built.
NO_GRADIENT = {
    "greater": lambda a: (a > 0.5).astype("float64"),
    "equal_times": lambda a: ex.equal(a, 1.0) * 3.0,
    "isfinite": lambda a: ex.isfinite(a) * 1.0,
    "where_condition": lambda a: ex.where(a > 0, 1.0, -1.0),
    "integer_cast": lambda a: a.astype("int32").astype("float64"),
    "integer_floor_divide": lambda a: (a.astype("int64") // 2).astype("float64"),
    "integer_mod": lambda a: (a.astype("int64") % 3).astype("float64"),
    "boolean_and": lambda a: ((a > 0) & (a < 2)).astype("float64"),
    "argmax": lambda a: ex.argmax(a, axis=1).astype("float64"),
    "stop_gradient_times": lambda a: ex.stop_gradient(a) * 2.0,
}


@pytest.mark.parametrize("name", sorted(NO_GRADIENT))
def test_paths_without_gradient_add_no_node(name):
    x = ex.matrix("x")
    smooth = (ex.sin(x) * x).sum()
    g = ex.grad(smooth + NO_GRADIENT[name](ex.exp(x) * 2.0).sum(), x)
    assert len(toposort([g])) == len(toposort([ex.grad(smooth, x)]))
    xv = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    np.testing.assert_allclose(g.eval({x: xv}), np.sin(xv) + xv * np.cos(xv), rtol=1e-15)


def test_float_mod_keeps_its_gradient():
    # x % y = x - floor(x / y) * y: its slope in x is 1 and in y -floor(x / y), not 0.
    x, y = ex.vector("x"), ex.vector("y")
    gx, gy = ex.grad((x % y).sum(), [x, y])
    xv, yv = np.array([5.5, -2.5, 7.0]), np.array([2.0, 2.0, -3.0])
    np.testing.assert_array_equal(gx.eval({x: xv, y: yv}), np.ones(3))
    np.testing.assert_array_equal(gy.eval({x: xv, y: yv}), -np.floor(xv / yv))

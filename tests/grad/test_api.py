"""ex.grad's options and errors, stop_gradient, higher order (jacobian, hessian, hvp), and
verify_grad itself (it must fail on a wrong gradient)."""

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

import exprc as ex
from exprc.graph import Apply, Op


def test_structure_of_wrt_is_kept():
    x, y = ex.vector("x"), ex.vector("y")
    cost = (x * y).sum()
    assert isinstance(ex.grad(cost, x), ex.TensorVariable)
    assert isinstance(ex.grad(cost, [x, y]), list) and len(ex.grad(cost, [x, y])) == 2
    assert isinstance(ex.grad(cost, (x, y)), tuple)


def test_gradient_of_shared_subexpression_adds_up():
    x = ex.vector("x")
    e = ex.exp(x)
    g = ex.grad((e * e + e).sum(), x)
    values = np.array([0.5, -1.0])
    np.testing.assert_allclose(g.eval({x: values}), 2 * np.exp(2 * values) + np.exp(values))


def test_grad_with_respect_to_an_intermediate_variable():
    x = ex.vector("x")
    h = ex.sin(x)
    g = ex.grad((h**2).sum(), h)
    np.testing.assert_allclose(g.eval({x: [0.3, 1.0]}), 2 * np.sin([0.3, 1.0]))


def test_non_scalar_cost_is_an_error():
    x = ex.vector("x")
    with pytest.raises(TypeError, match=r"cost must be a scalar.*exp\(x\).*\(\?,\)"):
        ex.grad(ex.exp(x), x)


def test_integer_cost_is_an_error():
    n = ex.ivector("n")
    with pytest.raises(TypeError, match="floating-point"):
        ex.grad(n.sum(), ex.vector("x"))


def test_disconnected_input_raises_naming_it():
    x, unused = ex.vector("x"), ex.vector("unused")
    with pytest.raises(ex.DisconnectedInputError, match="does not depend on 'unused'"):
        ex.grad(x.sum(), [x, unused])


def test_disconnected_through_argmax_or_comparison():
    x = ex.vector("x")
    with pytest.raises(ex.DisconnectedInputError, match="'x'"):
        ex.grad(ex.where(x > 0, 1.0, 2.0).sum() + ex.argmax(x).astype("float64"), x)


def test_disconnected_warn_and_ignore_give_zeros():
    x, unused = ex.vector("x"), ex.matrix("unused")
    with pytest.warns(UserWarning, match="'unused'"):
        g = ex.grad(x.sum(), unused, disconnected_inputs="warn")
    np.testing.assert_array_equal(g.eval({unused: np.ones((2, 3))}), np.zeros((2, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = ex.grad(x.sum(), unused, disconnected_inputs="ignore")
    assert g.type.shape == (None, None)
    assert ex.grad(x.sum(), unused, disconnected_inputs="ignore", return_disconnected="none") is None
    with pytest.raises(ValueError, match="disconnected_inputs"):
        ex.grad(x.sum(), x, disconnected_inputs="silent")


def test_integer_wrt_is_an_error_naming_it():
    x, n = ex.vector("x"), ex.ivector("n")
    with pytest.raises(TypeError, match="'n'.*int32"):
        ex.grad((x * n).sum(), [x, n])
    b = ex.bvector("mask")
    with pytest.raises(TypeError, match="'mask'.*bool"):
        ex.grad(ex.where(b, x, 0.0).sum(), b)


def test_consider_constant():
    x = ex.vector("x")
    y = x**2
    g = ex.grad((y * x).sum(), x, consider_constant=[y])
    np.testing.assert_array_equal(g.eval({x: [2.0, 3.0]}), [4.0, 9.0])


def test_stop_gradient():
    x = ex.vector("x")
    g = ex.grad((ex.stop_gradient(x**2) * x).sum(), x)
    np.testing.assert_array_equal(g.eval({x: [2.0, 3.0]}), [4.0, 9.0])
    assert ex.stop_gradient(x).eval({x: [1.5]}).tolist() == [1.5]
    assert "stop_gradient(x)" in str(ex.stop_gradient(x) + 1)
    with pytest.raises(ex.DisconnectedInputError):
        ex.grad(ex.stop_gradient(x).sum(), x)


def test_known_grads():
    x = ex.vector("x")
    h = ex.exp(x)
    g = ex.grad(None, x, known_grads={h: ex.as_tensor([1.0, 2.0])})
    np.testing.assert_allclose(g.eval({x: [0.0, 1.0]}), [1.0, 2.0 * np.e])
    # added to the gradient from the cost
    g2 = ex.grad(h.sum(), x, known_grads={h: ex.as_tensor([1.0, 1.0])})
    np.testing.assert_allclose(g2.eval({x: [0.0, 1.0]}), [2.0, 2.0 * np.e])
    with pytest.raises(ValueError, match="known_grads"):
        ex.grad(None, x, known_grads={h: ex.as_tensor(1.0)})


def test_gradient_of_grad_is_the_second_derivative():
    x = ex.scalar("x")
    d1 = ex.grad(x**4, x)
    d2 = ex.grad(d1, x)
    d3 = ex.grad(d2, x)
    f = ex.function([x], [d1, d2, d3])
    np.testing.assert_allclose(f(2.0), [32.0, 48.0, 48.0])


SECOND_ORDER = {
    "exp": (ex.exp, (-2, 2)),
    "log": (ex.log, (0.5, 3)),
    "tanh": (ex.tanh, (-2, 2)),
    "sigmoid": (ex.sigmoid, (-3, 3)),
    "softplus": (ex.softplus, (-3, 3)),
    "softmax": (lambda x: ex.softmax(x) * np.arange(1.0, 5.0), (-2, 2)),
    "logsumexp": (lambda x: ex.logsumexp(x, axis=1, keepdims=True), (-2, 2)),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_derivatives(rng, name):
    fn, (low, high) = SECOND_ORDER[name]
    weights = rng.uniform(0.5, 1.5, size=(3, 4))
    ex.verify_grad(lambda x: ex.grad((fn(x) * weights).sum(), x), [rng.uniform(low, high, (3, 4))], rng=rng)


def test_second_derivative_of_matmul(rng):
    def gradient(a, b):
        return ex.grad((ex.tanh(a @ b) ** 2).sum(), a)

    ex.verify_grad(gradient, [rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 2))], rng=rng)


def test_hessian_of_quadratic_form_is_the_matrix(rng):
    a = rng.uniform(-1, 1, (4, 4))
    x = ex.vector("x")
    h = ex.function([x], ex.hessian(0.5 * (x @ a @ x), x))(rng.uniform(-1, 1, 4))
    np.testing.assert_allclose(h, (a + a.T) / 2, rtol=1e-12, atol=1e-14)
    m = ex.matrix("m")
    sym = a + a.T
    hm = ex.function([x, m], ex.hessian(0.5 * (x @ m @ x), x))(np.zeros(4), sym)
    np.testing.assert_allclose(hm, sym, rtol=1e-12)


def test_hessian_list_and_matrix_variable(rng):
    x, w = ex.vector("x"), ex.matrix("w")
    cost = (ex.tanh(w @ x) ** 2).sum()
    hx, hw = ex.hessian(cost, [x, w])
    assert hx.ndim == 2 and hw.ndim == 4
    xv, wv = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, (2, 3))
    hxv, hwv = ex.function([x, w], [hx, hw])(xv, wv)
    assert hwv.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(hxv, hxv.T, atol=1e-12)
    # against finite differences of the gradient
    g = ex.function([x, w], ex.grad(cost, x))
    eps = 1e-6
    numeric = np.stack([(g(xv + eps * e, wv) - g(xv - eps * e, wv)) / (2 * eps) for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(hxv, numeric, rtol=1e-6, atol=1e-8)


def test_jacobian_is_one_graph_matching_finite_differences(rng):
    x = ex.vector("x")
    y = ex.outer(ex.sin(x), x[:2]) * 3
    j = ex.jacobian(y, x)
    rows = [n for n in ex.toposort([j]) if isinstance(n.op, ex.Rows)]
    assert len(rows) == 1
    f = ex.function([x], j)
    fy = ex.function([x], y)
    xv = rng.uniform(-1, 1, 3)
    got = f(xv)
    assert got.shape == (3, 2, 3)
    eps = 1e-6
    numeric = np.stack([(fy(xv + eps * e) - fy(xv - eps * e)) / (2 * eps) for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-9)


def test_jacobian_of_elementwise_is_diagonal_and_of_scalar_is_grad():
    x = ex.vector("x")
    np.testing.assert_allclose(ex.jacobian(ex.exp(x), x).eval({x: [0.0, 1.0]}), np.diag([1.0, np.e]))
    np.testing.assert_allclose(ex.jacobian((x**2).sum(), x).eval({x: [1.0, 2.0]}), [2.0, 4.0])
    empty = ex.jacobian(ex.exp(x), x).eval({x: np.zeros(0)})
    assert empty.shape == (0, 0)


def test_hvp_equals_hessian_times_vector(rng):
    x, v = ex.vector("x"), ex.vector("v")
    cost = ex.logsumexp(ex.sin(x) * x) + (x**4).sum()
    f = ex.function([x, v], [ex.hvp(cost, x, v), ex.hessian(cost, x)])
    xv, vv = rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5)
    hv, h = f(xv, vv)
    np.testing.assert_allclose(hv, h @ vv, rtol=1e-10, atol=1e-12)
    assert not any(isinstance(n.op, ex.Rows) for n in ex.toposort([ex.hvp(cost, x, v)]))


def test_hvp_of_linear_cost_is_zero():
    x, v = ex.vector("x"), ex.vector("v")
    np.testing.assert_array_equal(ex.hvp((3 * x).sum(), x, v).eval({x: [1.0, 2.0], v: [1.0, 1.0]}), [0.0, 0.0])


# --- verify_grad ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrongSquare(Op):
    """x ** 2 with a gradient that is off by a factor, to check that verify_grad notices."""

    def make_node(self, x):
        return Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        return [np.square(inputs[0])]

    def grad(self, node, output_grads):
        return [output_grads[0] * node.inputs[0] * 2.01]


def test_verify_grad_fails_on_a_wrong_gradient(rng):
    with pytest.raises(ex.GradientError, match=r"input 0 \(shape \(3,\), float64\).*relative error"):
        ex.verify_grad(WrongSquare(), [rng.uniform(1, 2, 3)], rng=rng)
    ex.verify_grad(lambda x: WrongSquare()(x), [rng.uniform(1, 2, 3)], rng=rng, rel_tol=0.01)


def test_verify_grad_names_the_input_that_is_wrong(rng):
    with pytest.raises(ex.GradientError, match="input 1"):
        ex.verify_grad(
            lambda a, b: a.sum() * 2 + WrongSquare()(b), [rng.uniform(1, 2, 3), rng.uniform(1, 2, 2)], rng=rng
        )


def test_verify_grad_rejects_integer_points():
    with pytest.raises(TypeError, match="point 0"):
        ex.verify_grad(lambda x: x * 2, [np.arange(3)])


def test_op_without_gradient_rule():
    @dataclass(frozen=True)
    class NoGrad(Op):
        def make_node(self, x):
            return Apply(self, [x], [x.type])

    x = ex.vector("x")
    with pytest.raises(NotImplementedError, match="NoGrad"):
        ex.grad(NoGrad()(x).sum(), x)


def test_sum_to():
    from exprc.ops.reduction import sum_to

    g, x = ex.tensor3("g"), ex.matrix("x")
    f = ex.function([g, x], sum_to(g, x))
    np.testing.assert_array_equal(f(np.ones((2, 3, 4)), np.ones((1, 4))), np.full((1, 4), 6.0))
    np.testing.assert_array_equal(f(np.ones((2, 3, 4)), np.ones((3, 4))), np.full((3, 4), 2.0))
    np.testing.assert_array_equal(f(np.ones((2, 3, 1)), np.ones((3, 1))), np.full((3, 1), 2.0))

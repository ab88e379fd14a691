"""One case per rewrite rule: it fires on its pattern, gives the expected graph, and the
compiled result agrees with NumPy computing the graph as written, wherever both are finite."""

import numpy as np
import pytest

import exprc as ex
from exprc.rewrite import RULES

x, y = ex.vector("x"), ex.vector("y")
m = ex.matrix("m")
A, v = ex.matrix("A"), ex.vector("v")
i = ex.ivector("i")

# The gradient of (m - A) * A for m: sum_to of what reaches m - A, then of what reaches m.
SUM_TO_OF_SUM_TO = ex.ops.reduction.sum_to(ex.ops.reduction.sum_to((m - A) * A, m - A), m)

#: rule -> (inputs, expression, the expression after rewriting)
CASES = {
    "fold_constants": ([x], x + ex.constant(2.0) * ex.constant(3.0), "x + 6.0"),
    "shape_from_source": ([x], ex.exp(x).shape[0] * x, "x.shape[0] * x"),
    "broadcast_implied_by_other_inputs": ([x], ex.broadcast_to(ex.constant(2.0), x.shape) * x, "2.0 * x"),
    "sum_to_shape_resolved": ([x], ex.ops.reduction.sum_to(ex.exp(x), x), "exp(x)"),
    "dimshuffle_of_dimshuffle": ([m], m.T.T + 1.0, "m + 1.0"),
    "reshape_of_reshape": ([m], m.reshape((-1,)).reshape((7, -1)), "m.reshape((7, -1))"),
    "reshape_to_own_shape": ([m], m.reshape(m.shape), "m"),
    "matrix_vector_product": ([A, v], ex.squeeze(A @ v[:, None], axis=1), "A @ v"),
    "multiply_by_one": ([x], x * 1.0, "x"),
    "stop_gradient_is_identity": ([x], ex.exp(ex.stop_gradient(x)), "exp(x)"),
    "add_zero": ([x], 0.0 + x, "x"),
    "subtract_zero": ([x], x - 0, "x"),
    "divide_or_power_by_one": ([x], x / 1.0, "x"),
    "double_negation": ([x], -(-x), "x"),  # noqa: B002 - on purpose
    "multiply_by_minus_one": ([x], x * -1.0, "-x"),
    "subtract_from_zero": ([x], 0.0 - x, "-x"),
    "add_negation": ([x, y], x + (-y), "x - y"),
    "negations_cancel": ([x, y], (-x) * (-y), "x * y"),
    "subtract_self": ([x], ex.exp(x) - ex.exp(x), "broadcast_to(0.0, (x.shape[0],))"),
    "divide_self": ([x], ex.sin(x) / ex.sin(x), "broadcast_to(1.0, (x.shape[0],))"),
    "multiply_by_zero": ([x], x * 0.0, "broadcast_to(0.0, (x.shape[0],))"),
    "inverse_functions": ([x], ex.log(ex.exp(x)), "x"),
    "simplify_product": ([x, y], ex.exp(x) * y * ex.sigmoid(-x), "y * sigmoid(x)"),
    "log_one_plus": ([x], ex.log(1 + x), "log1p(x)"),
    "exp_minus_one": ([x], ex.exp(x) - 1, "expm1(x)"),
    "log1p_of_exp": ([x], ex.log1p(ex.exp(x)), "softplus(x)"),
    "sigmoid_formula": ([x], 1 / (1 + ex.exp(-x)), "sigmoid(x)"),
    "one_minus_sigmoid": ([x], 1 - ex.sigmoid(x), "sigmoid(-x)"),
    "log_sigmoid": ([x], ex.log(ex.sigmoid(x)), "-softplus(-x)"),
    "log1p_minus_sigmoid": ([x], ex.log1p(-ex.sigmoid(x)), "-softplus(x)"),
    "sqrt_of_square": ([x], ex.sqrt(ex.square(x)), "abs(x)"),
    "log_sum_exp": ([m], ex.log(ex.exp(m).sum(axis=1)), str(ex.simplify(ex.logsumexp(m, axis=1)))),
    "log_of_softmax": ([m], ex.log(ex.exp(m) / ex.exp(m).sum(axis=1, keepdims=True)), None),
    "softmax_formula": ([m], ex.exp(m) / ex.exp(m).sum(axis=1, keepdims=True), str(ex.simplify(ex.softmax(m, axis=1)))),
    "user_softmax_formula": (
        [m],
        (m - m.max(axis=1, keepdims=True))
        - ex.log(ex.exp(m - m.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)),
        str(ex.simplify(ex.log_softmax(m, axis=1))),
    ),
    "sum_of_broadcast": ([x, m], ex.broadcast_to(x, m.shape).sum(axis=0), None),
    "power_two": ([x], x**2, "square(x)"),
    "power_half": ([x], x**0.5, "sqrt(x)"),
    "power_minus_one": ([x], x**-1, "1.0 / x"),
    "broadcast_of_broadcast": ([x], ex.broadcast_to(ex.broadcast_to(x, (3, x.shape[0])), (2, 3, x.shape[0])), None),
    "dimshuffle_of_broadcast_scalar": ([x], ex.broadcast_to(x[0], x.shape)[:, None], None),
    "sum_to_of_sum_to": (
        [m, A],
        SUM_TO_OF_SUM_TO,
        "sum_to((m - A) * A, axis=(0, 1), lengths=(m.shape[0], m.shape[1],))",
    ),
    "multiply_zeros": ([x], x[0] * ex.zeros_like(x), "broadcast_to(0.0, (x.shape[0],))"),
    "matmul_zeros": ([A, v], A @ ex.zeros_like(v), "broadcast_to(0.0, (A.shape[0],))"),
    "sum_of_zeros": ([m], ex.zeros_like(m).sum(axis=0), "broadcast_to(0.0, (m.shape[1],))"),
}


def _values(inputs, rng):
    """Random arguments: vectors of 7, matrices of 3 x 7 (A @ v: 3 x 7 and 7)."""
    out = []
    for var in inputs:
        shape = (3, 7) if var.ndim == 2 else (7,)
        out.append(rng.uniform(0.1, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape))
    return out


def test_every_rule_has_a_case():
    assert sorted(r.name for r in RULES) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_fires_and_keeps_values(name):
    inputs, expr, expected = CASES[name]
    simplified, report = ex.simplify(expr, report=True)
    assert name in report.rules(), str(report)
    if expected is not None:
        assert str(simplified) == expected
    rng = np.random.default_rng(len(name))
    args = _values(inputs, rng)
    if name in ("inverse_functions", "sqrt_of_square", "power_half"):
        args = [np.abs(a) for a in args]
    want = ex.function(inputs, expr, backend="numpy", rewrites=None)(*args)
    for backend in ("numpy", "c"):
        got = ex.function(inputs, expr, backend=backend)(*args)
        assert got.shape == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact_mode_runs_only_exact_rules(name):
    inputs, expr, _ = CASES[name]
    (rule,) = [r for r in RULES if r.name == name]
    _, report = ex.simplify(expr, report=True, rewrites="exact")
    assert (name in report.rules()) == rule.exact


def test_exact_mode_keeps_exp_of_log_where_it_differs():
    f_exact = ex.function([x], ex.exp(ex.log(x)), rewrites="exact")
    f_fast = ex.function([x], ex.exp(ex.log(x)))
    assert np.isnan(f_exact([-1.0])[0])
    assert f_fast([-1.0])[0] == -1.0  # the documented price of "fast"
    assert f_fast.rewrites.rules() == ["inverse_functions"] and not f_exact.rewrites


def test_no_rewrite_with_rewrites_none():
    f = ex.function([x], ex.log(1 + x) * 1.0, rewrites=None)
    assert not f.rewrites
    assert str(f.graph[0]) == "log(1 + x) * 1.0"


def test_unknown_rewrite_level_is_refused():
    with pytest.raises(ValueError, match="rewrites='quick' is not known"):
        ex.function([x], x, rewrites="quick")


# --- where a rule must not fire ------------------------------------------------------------


def test_identity_that_would_change_the_dtype_is_kept():
    # int32 * 1.0 is float64: dropping the 1.0 would change the result's dtype.
    simplified = ex.simplify(i * 1.0)
    assert simplified.dtype == "float64" and str(simplified) == "i * 1.0"


def test_identity_that_would_change_the_shape_is_kept():
    s = ex.scalar("s")
    simplified = ex.simplify(s * ex.ones(3))
    assert simplified.type.shape == (3,)


def test_broadcast_that_widens_is_kept():
    # Nothing else gives the output x's length on axis 0: the broadcast decides the shape.
    s = ex.scalar("s")
    expr = ex.broadcast_to(s, x.shape) + 1.0
    assert "broadcast_to" in str(ex.simplify(expr))


def test_sum_to_that_may_sum_is_kept():
    # x * y: x's length might be 1 where y's is not, so the sum stays a run-time decision.
    g = ex.ops.reduction.sum_to(x * y, x)
    assert "sum_to" in str(ex.simplify(g))


def test_log_of_something_else_is_kept():
    assert str(ex.simplify(ex.log(2 + x))) == "log(2 + x)"


def test_logsumexp_is_not_rewritten_again():
    lse = ex.logsumexp(m, axis=1)
    # only the marks that keep gradients out of its shift go
    assert ex.simplify(lse, report=True)[1].rules() == ["stop_gradient_is_identity"]


def test_stable_results_where_numpy_overflows():
    big = np.array([[1000.0, 0.0, -1000.0]])
    naive = ex.log(ex.exp(m) / ex.exp(m).sum(axis=1, keepdims=True))
    with np.errstate(all="ignore"):
        oracle = naive.eval({m: big})
    assert np.isnan(oracle).any()
    got = ex.function([m], naive)(big)
    np.testing.assert_allclose(got, [[0.0, -1000.0, -2000.0]])


def test_common_subexpressions_become_one_node():
    expr = ex.exp(x) * 1.0 + ex.exp(x + 0.0)
    simplified = ex.simplify(expr)
    assert str(simplified) == "exp(x) + exp(x)"
    a, b = simplified.owner.inputs
    assert a is b

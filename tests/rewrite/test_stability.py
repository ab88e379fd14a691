"""Naive formulas where NumPy overflows or loses every digit: compiled, they give the right,
finite value (the reference values are computed by hand, not by the naive formula)."""

import math

import numpy as np
import pytest

import exprc as ex

x = ex.vector("x")
m = ex.matrix("m")


def _naive(expr, var, value):
    with np.errstate(all="ignore"):
        return expr.eval({var: value})


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_log_of_one_plus_tiny(backend):
    expr = ex.log(1 + x)
    data = np.array([1e-20, -1e-18])
    assert np.all(_naive(expr, x, data) == 0.0)  # every digit lost
    np.testing.assert_allclose(ex.function([x], expr, backend=backend)(data), [1e-20, -1e-18], rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_logsumexp_of_large_values(backend):
    expr = ex.log(ex.exp(x).sum())
    data = np.array([1000.0, 1000.0])
    assert np.isinf(_naive(expr, x, data))
    np.testing.assert_allclose(ex.function([x], expr, backend=backend)(data), 1000.0 + math.log(2.0), rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_log_sigmoid_of_very_negative(backend):
    expr = ex.log(1 / (1 + ex.exp(-x)))
    data = np.array([-800.0, 0.0, 40.0])
    assert np.isinf(_naive(expr, x, data)[0])
    want = [-800.0, -math.log(2.0), -math.log1p(math.exp(-40.0))]
    np.testing.assert_allclose(ex.function([x], expr, backend=backend)(data), want, rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_log_one_minus_sigmoid(backend):
    expr = ex.log(1 - ex.sigmoid(x))
    data = np.array([800.0, 40.0])
    assert np.isinf(_naive(expr, x, data)[0])
    want = [-800.0, -40.0 - math.log1p(math.exp(-40.0))]
    np.testing.assert_allclose(ex.function([x], expr, backend=backend)(data), want, rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_expm1_of_tiny(backend):
    expr = ex.exp(x) - 1
    np.testing.assert_allclose(ex.function([x], expr, backend=backend)(np.array([1e-20])), [1e-20], rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_softmax_cross_entropy_with_large_logits(backend):
    labels = ex.matrix("labels")
    probabilities = ex.exp(m) / ex.exp(m).sum(axis=1, keepdims=True)
    loss = -(labels * ex.log(probabilities)).sum(axis=1)
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    onehot = np.array([[0.0, 1.0], [0.0, 1.0]])
    with np.errstate(all="ignore"):
        assert np.isnan(loss.eval({m: logits, labels: onehot})).all()
    got = ex.function([m, labels], loss, backend=backend)(logits, onehot)
    np.testing.assert_allclose(got, [1000.0, 0.0], atol=1e-12)

"""A softmax or log-softmax written by hand (shifted by the row maximum) is differentiated
as the library's own: ex.grad gives the same gradient graph, without the gradient through
the maximum (zero, as the shift changes nothing), and the same values as NumPy."""

import numpy as np
import pytest

import exprc as ex
from exprc.grad import user_softmax
from exprc.graph import toposort


def by_hand(x, log):
    z = x - x.max(axis=1, keepdims=True)
    if log:
        return z - ex.log(ex.exp(z).sum(axis=1, keepdims=True))
    return ex.exp(z) / ex.exp(z).sum(axis=1, keepdims=True)


def numpy_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("log", [True, False])
def test_recognised_as_the_librarys_formula(log):
    x = ex.matrix("x")
    library = ex.log_softmax(x, axis=1) if log else ex.softmax(x, axis=1)
    assert user_softmax(by_hand(x, log)) is library
    assert ex.simplify(by_hand(x, log)) is ex.simplify(library)


def test_other_shifts_and_axes_are_not_recognised():
    x = ex.matrix("x")
    z = x - x.max(axis=1, keepdims=True)
    assert user_softmax(z - ex.log(ex.exp(z).sum(axis=0, keepdims=True))) is None
    w = x - x.min(axis=1, keepdims=True)
    assert user_softmax(w - ex.log(ex.exp(w).sum(axis=1, keepdims=True))) is None
    assert user_softmax(z - ex.log(ex.exp(x).sum(axis=1, keepdims=True))) is None


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_cross_entropy_gradient_is_the_librarys(backend):
    x, y = ex.matrix("x"), ex.matrix("y")
    cost = -(y * by_hand(x, log=True)).sum(axis=1).mean()
    library = -(y * ex.log_softmax(x, axis=1)).sum(axis=1).mean()
    g = ex.grad(cost, x)
    assert g is ex.grad(library, x)
    f = ex.function([x, y], [cost, g], backend=backend)
    assert len(toposort(f.graph)) == len(toposort(ex.function([x, y], [library, ex.grad(library, x)]).graph))
    rng = np.random.default_rng(3)
    xv, yv = 20 * rng.standard_normal((6, 5)), np.eye(5)[rng.integers(0, 5, 6)]
    got_cost, got = f(xv, yv)
    p = numpy_softmax(xv)
    np.testing.assert_allclose(got_cost, -(yv * np.log(p)).sum(axis=1).mean(), rtol=1e-13)
    np.testing.assert_allclose(got, (p - yv) / 6, rtol=1e-12, atol=1e-17)


def test_softmax_gradient_against_numpy():
    x, v = ex.matrix("x"), ex.matrix("v")
    g = ex.grad((by_hand(x, log=False) * v).sum(), x)
    assert g is ex.grad((ex.softmax(x, axis=1) * v).sum(), x)
    rng = np.random.default_rng(4)
    xv, vv = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    p = numpy_softmax(xv)
    want = p * (vv - (p * vv).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(ex.function([x, v], g)(xv, vv), want, rtol=1e-12, atol=1e-15)


def test_a_gradient_asked_inside_the_formula_keeps_it():
    # The gradient with respect to the shifted z itself: the formula is left as written.
    x, y = ex.matrix("x"), ex.matrix("y")
    z = x - x.max(axis=1, keepdims=True)
    cost = -(y * (z - ex.log(ex.exp(z).sum(axis=1, keepdims=True)))).sum()
    gz = ex.grad(cost, z)
    rng = np.random.default_rng(5)
    xv, yv = rng.standard_normal((3, 4)), np.eye(4)[[0, 3, 1]]
    p = numpy_softmax(xv)
    np.testing.assert_allclose(gz.eval({x: xv, y: yv}), p * yv.sum(axis=1, keepdims=True) - yv, rtol=1e-12)


def test_a_constant_computed_from_the_formula_stays_constant():
    # consider_constant names the hand-written log-softmax (or a value computed from it):
    # the formula is left as written, and no gradient flows through the constant.
    x = ex.matrix("x")
    log_p = by_hand(x, log=True)
    scaled = 2.0 * log_p
    cost = (x * scaled).sum()
    xv = np.random.default_rng(6).standard_normal((3, 4))
    want = 2.0 * (xv - xv.max(axis=1, keepdims=True))
    want -= 2.0 * np.log(np.exp(want / 2.0).sum(axis=1, keepdims=True))
    for constant in (log_p, scaled):
        g = ex.grad(cost, x, consider_constant=[constant])
        np.testing.assert_allclose(g.eval({x: xv}), want, rtol=1e-12)

"""Rop and Lop against finite differences of NumPy-computed values."""

import numpy as np
import pytest

import exprc as ex
from exprc import forward

RNG = np.random.default_rng(20261208)


def _jacobian(fn, x, eps=1e-6):
    """The Jacobian of ``fn`` at ``x`` by central differences: shape out.shape + x.shape."""
    out = np.asarray(fn(x))
    jac = np.zeros(out.shape + x.shape)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        jac[(...,) + i] = (np.asarray(fn(x + step)) - np.asarray(fn(x - step))) / (2 * eps)
    return jac


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# (name, builds the expression from x (3, 4) and a fixed matrix m (4, 2), the same in NumPy)
CASES = {
    "elementwise, broadcast": (lambda x, m: ex.tanh(x) * x[0] + 2.0, lambda x, m: np.tanh(x) * x[0] + 2.0),
    "matmul": (lambda x, m: x @ m, lambda x, m: x @ m),
    "matmul with itself": (lambda x, m: x.T @ x, lambda x, m: x.T @ x),
    "tensordot": (lambda x, m: ex.tensordot(x, m, axes=1), lambda x, m: np.tensordot(x, m, axes=1)),
    "views and sums": (
        lambda x, m: (x.T.reshape((2, 6)) * 3).sum(axis=1),
        lambda x, m: (x.T.reshape(2, 6) * 3).sum(axis=1),
    ),
    "max (through grad)": (lambda x, m: x.max(axis=0) * x.sum(), lambda x, m: x.max(axis=0) * x.sum()),
    "softmax": (
        lambda x, m: (
            ex.exp(x - x.max(axis=1, keepdims=True))
            / ex.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
        ),
        lambda x, m: _softmax(x),
    ),
    "indexing and writes": (
        lambda x, m: ex.set_subtensor(x[1:, ::2], x[:2, 1::2] ** 2)[[0, 2]],
        lambda x, m: _set(x),
    ),
    "concatenate": (lambda x, m: ex.concatenate([x, ex.sin(x)], axis=0), lambda x, m: np.concatenate([x, np.sin(x)])),
}


def _set(x):
    y = x.copy()
    y[1:, ::2] = x[:2, 1::2] ** 2
    return y[[0, 2]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_rop_is_the_jacobian_times_the_vector(name):
    build, numpy_fn = CASES[name]
    x, v = ex.matrix("x"), ex.matrix("v")
    xv, vv, m = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
    jv = ex.function([x, v], forward.Rop(build(x, m), x, v))(xv, vv)
    jac = _jacobian(lambda a: numpy_fn(a, m), xv)
    np.testing.assert_allclose(jv, np.tensordot(jac, vv, axes=2), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CASES))
def test_lop_is_the_vector_times_the_jacobian(name):
    build, numpy_fn = CASES[name]
    x = ex.matrix("x")
    xv, m = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
    out_shape = np.shape(numpy_fn(xv, m))
    u = ex.tensor("u", shape=(None,) * len(out_shape))
    uv = RNG.normal(size=out_shape)
    got = ex.function([x, u], forward.Lop(build(x, m), x, u))(xv, uv)
    jac = _jacobian(lambda a: numpy_fn(a, m), xv)
    np.testing.assert_allclose(got, np.tensordot(uv, jac, axes=len(out_shape)), rtol=1e-6, atol=1e-7)


def test_elementwise_and_matrix_products_go_forward_without_reverse_passes(monkeypatch):
    def refuse(node, ts):
        raise AssertionError(f"{node.op} went through its grad")

    monkeypatch.setattr(forward, "_through_grad", refuse)
    W, x, v = ex.matrix("W"), ex.vector("x"), ex.matrix("v")
    y = ex.tanh(W @ x + 1.0).sum() * ex.exp(W).T[0]
    jv = ex.Rop(y, W, v)
    Wv, xv, vv = RNG.normal(size=(2, 3)), RNG.normal(size=3), RNG.normal(size=(2, 3))
    jac = _jacobian(lambda a: np.tanh(a @ xv + 1).sum() * np.exp(a).T[0], Wv)
    np.testing.assert_allclose(jv.eval({W: Wv, x: xv, v: vv}), np.tensordot(jac, vv, axes=2), rtol=1e-6)


def test_several_variables_and_outputs_and_a_constant_output():
    x, y, vx, vy = ex.vector("x"), ex.vector("y"), ex.vector("vx"), ex.vector("vy")
    a, b, c = ex.Rop([x * y, ex.exp(x), y.shape[0] * 1.0 + ex.zeros(2)], [x, y], [vx, vy])
    xv, yv, vxv, vyv = (RNG.normal(size=2) for _ in range(4))
    f = ex.function([x, y, vx, vy], [a, b, c], backend="c")
    ga, gb, gc = f(xv, yv, vxv, vyv)
    np.testing.assert_allclose(ga, vxv * yv + xv * vyv)
    np.testing.assert_allclose(gb, np.exp(xv) * vxv)
    np.testing.assert_array_equal(gc, np.zeros(2))


def test_float32_stays_float32_and_bad_points_are_refused():
    x, v = ex.vector("x", dtype="float32"), ex.vector("v", dtype="float32")
    assert ex.Rop(ex.sin(x) * 2, x, v).dtype == "float32"
    with pytest.raises(ValueError, match="Rop: the eval point .* has 2 dimensions, expected 1"):
        ex.Rop(ex.sin(x), x, ex.matrix("m"))
    with pytest.raises(ValueError, match="Rop: 1 variables in wrt but 2 eval_points"):
        ex.Rop(ex.sin(x), [x], [v, v])
    with pytest.raises(ValueError, match="Lop: 1 outputs in f but 2 eval_points"):
        ex.Lop([ex.sin(x)], x, [v, v])

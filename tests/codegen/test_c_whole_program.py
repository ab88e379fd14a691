"""Whole programs in one C call: views, lengths, sums back to a shape and matrix products
run inside a segment (codegen/c/ops.c, blas.c), checked against NumPy."""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c import blas, ops
from exprc.codegen.c.program import CProgram
from exprc.codegen.ir.steps import NumpyStep
from exprc.shapes import ShapeError

needs_blas = pytest.mark.skipif(blas.missing() is not None, reason=str(blas.missing()))


def _items(inputs, outputs):
    return CProgram(inputs, outputs).compiled


@needs_blas
def test_w5_step_is_one_entry_call_with_products_from_c():
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(np.float32) for s in ((20, 8), (8,), (8, 3), (3,))]
    W1, b1, W2, b2 = shared = [ex.shared(p) for p in params]
    X, Y = ex.fmatrix("X"), ex.fmatrix("Y")
    logits = ex.tanh(X @ W1 + b1) @ W2 + b2
    loss = -(Y * ex.log_softmax(logits, axis=1)).sum(axis=1).mean()
    grads = ex.grad(loss, shared)
    f = ex.function([X, Y], loss, updates=[(p, p - np.float32(0.1) * g) for p, g in zip(shared, grads)])
    compiled = f._program.compiled
    (segment,) = compiled.items
    products = [s for s in segment.steps if isinstance(s, NumpyStep) and ops.is_product(segment.forms[s.node])]
    assert len(products) <= 6
    assert not any(isinstance(item, NumpyStep) for item in compiled.items)
    x = rng.standard_normal((5, 20)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0]]
    h = np.tanh(x @ params[0] + params[1])
    z = h @ params[2] + params[3]
    z = z - z.max(1, keepdims=True)
    expected = -(y * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1).mean()
    np.testing.assert_allclose(f(x, y), expected, rtol=1e-5)


@needs_blas
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((3, 4), (4, 5)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 3, 4), (4, 5)),
        ((1, 3, 4), (2, 4, 5)),
        ((3, 0), (0, 5)),
        ((0, 4), (4, 5)),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_from_c_matches_numpy(shape_a, shape_b, dtype):
    rng = np.random.default_rng(1)
    a = ex.tensor("a", dtype=dtype, shape=(None,) * len(shape_a))
    b = ex.tensor("b", dtype=dtype, shape=(None,) * len(shape_b))
    f = ex.function([a, b], ex.exp(a @ b) + 1, backend="c")
    va, vb = rng.standard_normal(shape_a).astype(dtype), rng.standard_normal(shape_b).astype(dtype)
    np.testing.assert_allclose(f(va, vb), np.exp(va @ vb) + 1, rtol=1e-5 if dtype == "float32" else 1e-12)
    # strided and transposed operands: passed with their leading dimension or packed
    big = rng.standard_normal((6, 8)).astype(dtype)
    m = ex.tensor("m", dtype=dtype, shape=(None, None))
    g = ex.function([m], (m.T @ m) * 2, backend="c")
    for value in (big, big[::2, ::3], big.T, big[:, ::-1]):
        np.testing.assert_allclose(g(value), (value.T @ value) * 2, rtol=1e-5 if dtype == "float32" else 1e-12)


@needs_blas
def test_matmul_shape_error_names_the_product_and_its_inputs():
    a, b = ex.matrix("a"), ex.matrix("b")
    f = ex.function([a, b], ex.exp(a @ b), backend="c")
    with pytest.raises(ShapeError, match=r"a @ b.*a \(3, 4\).*b \(5, 2\)"):
        f(np.ones((3, 4)), np.ones((5, 2)))


def test_views_lengths_and_sums_in_one_call():
    x, v = ex.matrix("x"), ex.vector("v")
    y = (x.T * 2 + v).reshape((-1,)) + ex.shape_i(x, 0)
    compiled = _items([x, v], [y])
    assert len(compiled.items) == 1
    xv, vv = np.arange(6.0).reshape(2, 3), np.arange(2.0)
    np.testing.assert_allclose(CProgram([x, v], [y]).run([xv, vv])[0], (xv.T * 2 + vv).reshape(-1) + 2)
    with pytest.raises(ShapeError):
        CProgram([x, v], [y]).run([xv, np.arange(3.0)])


def test_without_blas_the_product_is_a_numpy_step_and_the_source_says_why(monkeypatch):
    from exprc.codegen.c import program

    monkeypatch.setenv(blas.ENV, "0")
    blas._library.cache_clear()
    program.clear_memo()
    try:
        a, b = ex.matrix("a"), ex.matrix("b")
        compiled = _items([a, b], [ex.exp(a @ b)])
        assert isinstance(compiled.items[0], NumpyStep)
        assert "EXPRC_BLAS=0" in compiled.source
        va, vb = np.ones((2, 3)), np.ones((3, 4))
        np.testing.assert_allclose(CProgram([a, b], [ex.exp(a @ b)]).run([va, vb])[0], np.exp(va @ vb))
    finally:
        monkeypatch.delenv(blas.ENV)
        blas._library.cache_clear()
        program.clear_memo()

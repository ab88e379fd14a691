"""Building arrays against NumPy: arange (constant and symbolic bounds), linspace, eye,
identity, diag, diagonal, trace, tril, triu, meshgrid, and Theano's alloc, xlogx, xlogy0."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import LAYOUTS, check, checks_in_one_program, current_backend, declare, make, shape_id


def _grad_backend():
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c; the CUDA back end runs the same graphs")
    return current_backend()


# --- arange -----------------------------------------------------------------------

ARANGES = [(5,), (0,), (-3,), (2, 7), (7, 2, -2), (1.0, 2.0, 0.25), (0, 1, 0.1), (3, 3), (-2.5, 4)]


@pytest.mark.parametrize("args", ARANGES, ids=str)
def test_arange_with_constant_bounds(args):
    with checks_in_one_program():
        check(ex.arange(*args), {}, np.arange(*args))
        check(ex.arange(*args, dtype="float32"), {}, np.arange(*args, dtype="float32"))
    assert ex.arange(*args).type.shape == np.arange(*args).shape


@pytest.mark.parametrize("shape", [(4, 2), (0, 3), (1, 1)], ids=shape_id)
def test_arange_of_a_symbolic_length(shape):
    x_value = make(shape, "float32", "strided")
    x, n = declare("x", x_value), ex.lscalar("n")
    expr = ex.arange(x.shape[0])
    assert expr.type.shape == (None,)
    with checks_in_one_program():
        check(expr, {x: x_value}, np.arange(shape[0]))
        check(ex.arange(x.shape[1], x.shape[0] + 5, 2), {x: x_value}, np.arange(shape[1], shape[0] + 5, 2))
    f = ex.function([n], ex.arange(1, n) * 0.5, backend=current_backend())
    for length in (0, 1, 6):
        np.testing.assert_array_equal(f(length), np.arange(1, length) * 0.5)


def test_arange_dtype_follows_numpy():
    i, f32 = ex.iscalar("i"), ex.fscalar("f")
    check(ex.arange(i), {i: np.int32(4)}, np.arange(np.int32(4)))
    check(ex.arange(f32, 3), {f32: np.float32(0.5)}, np.arange(np.float32(0.5), 3))


@pytest.mark.backend_independent
def test_arange_errors_name_the_op():
    with pytest.raises(ZeroDivisionError, match="arange: step is 0"):
        ex.arange(0, 5, 0)
    with pytest.raises(TypeError, match="arange: stop"):
        ex.arange(ex.vector("v"))
    step = ex.lscalar("s")
    with pytest.raises(ZeroDivisionError, match="arange.*step is 0"):
        ex.function([step], ex.arange(0, 5, step), backend="numpy")(0)


def test_the_tutorials_negative_log_likelihood_and_its_gradient():
    """``-T.mean(T.log(p)[T.arange(y.shape[0]), y])`` of the Theano tutorials' logistic regression."""
    rng = np.random.default_rng(3)
    p_value = rng.uniform(0.05, 1.0, (6, 4))
    y_value = rng.integers(0, 4, 6)
    p, y = ex.matrix("p"), ex.lvector("y")
    cost = -ex.mean(ex.log(p)[ex.arange(y.shape[0]), y])
    rows = np.arange(6)
    expected_grad = np.zeros_like(p_value)
    np.add.at(expected_grad, (rows, y_value), -1.0 / (6 * p_value[rows, y_value]))
    with checks_in_one_program():
        check(cost, {p: p_value, y: y_value}, -np.mean(np.log(p_value)[rows, y_value]))
        check(ex.grad(cost, p), {p: p_value, y: y_value}, expected_grad)


# --- linspace, eye, identity ------------------------------------------------------------


@pytest.mark.parametrize("num,endpoint", [(5, True), (5, False), (1, True), (0, True), (2, False)])
def test_linspace(num, endpoint):
    with checks_in_one_program():
        check(ex.linspace(-1.0, 2.0, num, endpoint), {}, np.linspace(-1.0, 2.0, num, endpoint=endpoint))
        check(ex.linspace(3, 0, num, endpoint), {}, np.linspace(3, 0, num, endpoint=endpoint))
        start = np.float32(0.5)
        check(ex.linspace(start, 1, num, endpoint), {}, np.linspace(start, 1, num, endpoint=endpoint))


def test_linspace_with_symbolic_bounds_and_count():
    a, n = ex.scalar("a"), ex.lscalar("n")
    f = ex.function([a, n], ex.linspace(a, 2 * a, n), backend=current_backend())
    for count in (0, 1, 4):
        np.testing.assert_allclose(f(1.5, count), np.linspace(1.5, 3.0, count), rtol=1e-12)


@pytest.mark.parametrize("N,M,k", [(3, None, 0), (2, 4, 1), (4, 2, -1), (3, 3, 5), (0, 2, 0)], ids=str)
def test_eye_and_identity(N, M, k):
    with checks_in_one_program():
        check(ex.eye(N, M, k), {}, np.eye(N, M, k))
        check(ex.eye(N, M, k, dtype="int32"), {}, np.eye(N, M, k, dtype="int32"))
        check(ex.identity(N), {}, np.identity(N))
    n = ex.lscalar("n")
    check(ex.eye(n, M, k), {n: N}, np.eye(N, M, k))


# --- diagonals and triangles --------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k", [0, 1, -2])
def test_diag_of_a_vector_and_of_a_matrix(k, layout):
    v_value = make((3,), "float64", layout)
    m_value = make((3, 4), "int32", layout)
    v, m = declare("v", v_value), declare("m", m_value, "partial")
    with checks_in_one_program():
        check(ex.diag(v, k), {v: v_value}, np.diag(v_value, k))
        check(ex.diag(m, k), {m: m_value}, np.diag(m_value, k))


def test_diag_of_zero_size_and_bool():
    e, b = np.zeros((0,)), np.array([True, False])
    ev, bv = declare("e", e), declare("b", b)
    with checks_in_one_program():
        check(ex.diag(ev), {ev: e}, np.diag(e))
        check(ex.diag(ev, 2), {ev: e}, np.diag(e, 2))
        check(ex.diag(bv, -1), {bv: b}, np.diag(b, -1))


@pytest.mark.parametrize(
    "shape,offset,axis1,axis2",
    [
        ((3, 4), 0, 0, 1),
        ((3, 4), 2, 0, 1),
        ((3, 4), -1, 1, 0),
        ((2, 3, 4), 1, 2, 0),
        ((2, 3, 4), -5, -1, 1),
        ((0, 3), 0, 0, 1),
    ],
    ids=str,
)
@pytest.mark.parametrize("static", ["static", "dynamic"])
def test_diagonal_and_trace(shape, offset, axis1, axis2, static):
    x_value = make(shape, "float32", "transposed")
    x = declare("x", x_value, static)
    with checks_in_one_program():
        check(ex.diagonal(x, offset, axis1, axis2), {x: x_value}, np.diagonal(x_value, offset, axis1, axis2))
        check(ex.trace(x, offset, axis1, axis2), {x: x_value}, np.trace(x_value, offset, axis1, axis2))


@pytest.mark.backend_independent
def test_diagonal_errors_name_the_op():
    with pytest.raises(ValueError, match="diagonal: expected at least 2"):
        ex.diagonal(ex.vector("v"))
    with pytest.raises(ValueError, match="diagonal: axis1 and axis2"):
        ex.diagonal(ex.matrix("m"), 0, 1, -1)
    with pytest.raises(np.exceptions.AxisError, match="diagonal"):
        ex.diagonal(ex.matrix("m"), 0, 0, 2)
    with pytest.raises(ValueError, match="diag: expected a 1-d or 2-d"):
        ex.diag(ex.tensor3("t"))
    with pytest.raises(TypeError, match="diag: the diagonal offset"):
        ex.diag(ex.vector("v"), 1.5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3), (5,), (0, 2)], ids=shape_id)
def test_tril_and_triu(shape, layout):
    x_value = make(shape, "int64", layout)
    x = declare("x", x_value, "partial")
    with checks_in_one_program():
        for k in (0, 1, -2):
            check(ex.tril(x, k), {x: x_value}, np.tril(x_value, k))
            check(ex.triu(x, k), {x: x_value}, np.triu(x_value, k))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sparse", [False, True])
def test_meshgrid(indexing, sparse):
    a, b, c = make((3,), "float64", "strided"), make((2,), "int32"), make((0,), "float64")
    va, vb, vc = declare("a", a), declare("b", b), declare("c", c)
    with checks_in_one_program():
        for got, want in zip(
            ex.meshgrid(va, vb, indexing=indexing, sparse=sparse), np.meshgrid(a, b, indexing=indexing, sparse=sparse)
        ):
            check(got, {va: a, vb: b}, want)
        three = ex.meshgrid(va, vb, vc, indexing=indexing, sparse=sparse)
        for got, want in zip(three, np.meshgrid(a, b, c, indexing=indexing, sparse=sparse)):
            check(got, {va: a, vb: b, vc: c}, want)


# --- Theano's names ------------------------------------------------------------------------


def test_alloc_xlogx_xlogy0():
    x_value = np.array([0.0, 0.5, 2.0, 0.0])
    y_value = np.array([0.0, 3.0, 0.25, 2.0])
    x, y, n = declare("x", x_value), declare("y", y_value), ex.lscalar("n")
    with np.errstate(all="ignore"):
        xlogx = np.where(x_value == 0, 0.0, x_value * np.log(x_value))
        xlogy0 = np.where(x_value == 0, 0.0, x_value * np.log(y_value))
    with checks_in_one_program():
        check(ex.xlogx(x), {x: x_value}, xlogx)
        check(ex.xlogy0(x, y), {x: x_value, y: y_value}, xlogy0)
        check(ex.alloc(x[1], n, 2), {x: x_value, n: 3}, np.full((3, 2), x_value[1]))


@pytest.mark.parametrize(
    "name",
    ["diag_vector", "diag_matrix", "diagonal", "trace", "tril", "triu", "xlogx", "xlogy0", "linspace", "arange"],
)
def test_gradients(name):
    backend = _grad_backend()
    rng = np.random.default_rng(5)
    m = make((3, 4), "float64", "strided", rng)
    v = rng.uniform(0.5, 2.0, 4)
    cases = {
        "diag_vector": (lambda t: ex.diag(t, -1), [v]),
        "diag_matrix": (lambda t: ex.diag(t, 1), [m]),
        "diagonal": (lambda t: ex.diagonal(t.T, -1), [m]),
        "trace": (lambda t: ex.trace(t, 1), [m]),
        "tril": (lambda t: ex.tril(t, -1), [m]),
        "triu": (lambda t: ex.triu(t, 1), [m]),
        "xlogx": (ex.xlogx, [v]),
        "xlogy0": (ex.xlogy0, [v - 1.0, v]),
        "linspace": (lambda a, b: ex.linspace(a, b, 5), [np.array(0.5), np.array(2.0)]),
        "arange": (lambda a, s: ex.arange(a, 4.0, s) ** 2, [np.array(0.5), np.array(0.75)]),
    }
    fn, points = cases[name]
    ex.verify_grad(fn, points, backend=backend, rng=0)

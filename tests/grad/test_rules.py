"""Every differentiable op's gradient against central finite differences (float64, random
points), on contiguous, strided, transposed and broadcast inputs, through the NumPy back end.
The C back end runs the same gradient graphs in test_backends.py."""

import numpy as np
import pytest

import exprc as ex
from tests.helpers import in_layout

# name -> (domain low, high) for the unary elementwise functions
UNARY = {
    "negative": (-3, 3),
    "abs": (0.2, 3),
    "exp": (-2, 2),
    "exp2": (-2, 2),
    "expm1": (-2, 2),
    "log": (0.3, 3),
    "log2": (0.3, 3),
    "log10": (0.3, 3),
    "log1p": (-0.5, 3),
    "sqrt": (0.3, 3),
    "square": (-3, 3),
    "sin": (-3, 3),
    "cos": (-3, 3),
    "tan": (-1.2, 1.2),
    "arcsin": (-0.9, 0.9),
    "arccos": (-0.9, 0.9),
    "arctan": (-3, 3),
    "sinh": (-2, 2),
    "cosh": (-2, 2),
    "tanh": (-2, 2),
    "arcsinh": (-3, 3),
    "arccosh": (1.2, 3),
    "arctanh": (-0.9, 0.9),
    "sigmoid": (-4, 4),
    "softplus": (-4, 4),
    "erf": (-2, 2),
    "erfc": (-2, 2),
    "gammaln": (0.3, 4),
    "floor": (-3, 3),
    "ceil": (-3, 3),
    "trunc": (-3, 3),
    "rint": (-3, 3),
    "sign": (-3, 3),
}

# name -> (fn, domains of x and y); shapes (3, 1) and (4,) broadcast to (3, 4)
BINARY = {
    "add": (ex.add, (-2, 2), (-2, 2)),
    "subtract": (ex.subtract, (-2, 2), (-2, 2)),
    "multiply": (ex.multiply, (-2, 2), (-2, 2)),
    "true_divide": (ex.true_divide, (-2, 2), (0.5, 2)),
    "power": (ex.power, (0.5, 2), (-2, 2)),
    "maximum": (ex.maximum, (-2, 2), (-2, 2)),
    "minimum": (ex.minimum, (-2, 2), (-2, 2)),
    "arctan2": (ex.arctan2, (-2, 2), (0.5, 2)),
    "hypot": (ex.hypot, (0.5, 2), (-2, 2)),
    "mod": (ex.mod, (0.1, 3), (0.7, 1.3)),
    "floor_divide": (ex.floor_divide, (0.1, 3), (0.7, 1.3)),
}


def uniform(rng, shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("layout", ["contiguous", "strided", "transposed"])
def test_unary(rng, name, layout):
    fn = ex.ELEMWISE_FUNCTIONS[name]
    x = in_layout(uniform(rng, (3, 4), *UNARY[name]), layout)
    ex.verify_grad(fn, [x], rng=rng)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast(rng, name):
    fn, dx, dy = BINARY[name]
    ex.verify_grad(fn, [uniform(rng, (3, 1), *dx), uniform(rng, (4,), *dy)], rng=rng)
    # lengths unknown when built that are 1 at run time broadcast too, and their gradient is summed
    ex.verify_grad(fn, [uniform(rng, (1, 4), *dx), in_layout(uniform(rng, (3, 4), *dy), "strided")], rng=rng)


def test_scalar_operands(rng):
    ex.verify_grad(lambda x, s: x * s + s**2 / (1 + x * x), [uniform(rng, (2, 3)), uniform(rng, ())], rng=rng)
    ex.verify_grad(lambda x: 2.0**x + x**3 - 1 / x, [uniform(rng, (5,), 0.5, 2)], rng=rng)


def test_where_and_clip(rng):
    cond = rng.random((3, 4)) < 0.5
    ex.verify_grad(lambda a, b: ex.where(cond, a, b), [uniform(rng, (3, 4)), uniform(rng, (4,))], rng=rng)
    ex.verify_grad(
        lambda x, lo, hi: ex.clip(x, lo, hi),
        [uniform(rng, (3, 4), -3, 3), uniform(rng, (4,), -1.5, -0.5), uniform(rng, (3, 1), 0.5, 1.5)],
        rng=rng,
    )
    ex.verify_grad(lambda x: ex.clip(x, -1.0, None) + ex.clip(x, None, 1.0), [uniform(rng, (6,), -3, 3)], rng=rng)


def test_ties_go_to_the_chosen_input():
    x, y = ex.vector("x"), ex.vector("y")
    for out, gx_expected, gy_expected in [
        (ex.maximum(x, y), [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]),
        (ex.minimum(x, y), [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]),
    ]:
        gx, gy = ex.function([x, y], ex.grad(out.sum(), [x, y]))([3.0, 1.0, 0.0], [2.0, 1.0, 1.0])
        np.testing.assert_array_equal(gx, gx_expected)
        np.testing.assert_array_equal(gy, gy_expected)
    # clip at a bound: the gradient goes to x
    g = ex.grad(ex.clip(x, 0.0, 1.0).sum(), x)
    np.testing.assert_array_equal(g.eval({x: [-1.0, 0.0, 0.5, 1.0, 2.0]}), [0, 1, 1, 1, 0])


def test_abs_and_step_functions_at_zero():
    x = ex.vector("x")
    np.testing.assert_array_equal(ex.grad(ex.abs(x).sum(), x).eval({x: [-2.0, 0.0, 3.0]}), [-1, 0, 1])
    g = ex.grad((ex.floor(x) + ex.sign(x) + ex.round(x)).sum(), x)
    np.testing.assert_array_equal(g.eval({x: [-2.0, 0.0, 0.5]}), [0, 0, 0])


def test_stable_sigmoid_and_softplus_gradients():
    x = ex.vector("x")
    g = ex.grad((ex.sigmoid(x) + ex.softplus(x)).sum(), x)
    got = g.eval({x: [-1000.0, 0.0, 1000.0]})
    np.testing.assert_allclose(got, [0.0, 0.75, 1.0])


def test_casts(rng):
    x = ex.vector("x")
    g = ex.grad((x.astype("float32") * 2).astype("float64").sum(), x)
    assert g.dtype == "float64"
    np.testing.assert_array_equal(g.eval({x: [1.0, 2.0]}), [2.0, 2.0])
    f = ex.fvector("f")
    gf = ex.grad((f.astype("float64") ** 2).sum(), f)
    assert gf.dtype == "float32"
    np.testing.assert_allclose(gf.eval({f: np.array([1.5, -2.0], dtype="float32")}), [3.0, -4.0])


def test_float32_verify_grad(rng):
    ex.verify_grad(lambda x: ex.tanh(x) * x + ex.exp(x).sum(), [uniform(rng, (3, 4)).astype("float32")], rng=rng)


# --- reductions --------------------------------------------------------------------------------

REDUCTIONS = {
    "sum": lambda x: x.sum(axis=1) * x.sum(axis=(0, 2), keepdims=True).sum() + x.sum(),
    "prod": lambda x: x.prod(axis=1) + x.prod(axis=(0, 2), keepdims=True).sum(),
    "mean": lambda x: x.mean(axis=(0, 2)) + x.mean(),
    "var": lambda x: x.var(axis=1) + x.var(axis=(0, 2), ddof=1).sum(),
    "std": lambda x: x.std(axis=-1) + x.std(),
    "max": lambda x: x.max(axis=1) + x.max(axis=(0, 2), keepdims=True).sum() + x.max(),
    "min": lambda x: x.min(axis=0) + x.min(),
    "logsumexp": lambda x: ex.logsumexp(x, axis=1) + ex.logsumexp(x),
    "softmax": lambda x: ex.softmax(x) * ex.softmax(x, axis=0),
    "log_softmax": lambda x: ex.log_softmax(x, axis=1),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_reductions(rng, name, layout):
    low = 0.5 if name == "prod" else -2.0
    x = in_layout(uniform(rng, (2, 3, 4), low, 2.0), layout)
    ex.verify_grad(REDUCTIONS[name], [x], rng=rng)


def test_prod_with_zeros():
    x = ex.matrix("x")
    g = ex.grad(x.prod(axis=1).sum(), x)
    values = np.array([[2.0, 3.0, 4.0], [2.0, 0.0, 4.0], [0.0, 0.0, 4.0]])
    expected = np.array([[12.0, 8.0, 6.0], [0.0, 8.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(g.eval({x: values}), expected)


def test_max_ties_share_the_gradient():
    x = ex.matrix("x")
    g = ex.grad(x.max(axis=1).sum() + 10 * x.min(), x)
    got = g.eval({x: [[1.0, 3.0, 3.0], [2.0, 0.0, 0.0]]})
    np.testing.assert_array_equal(got, [[0.0, 0.5, 0.5], [1.0, 5.0, 5.0]])


def test_logsumexp_and_softmax_gradients_do_not_overflow():
    x = ex.vector("x")
    g = ex.grad(ex.logsumexp(x) + ex.log_softmax(x)[0], x)
    got = g.eval({x: [1000.0, 1000.0]})
    np.testing.assert_allclose(got, [0.5 + 0.5, 0.5 - 0.5])


# --- linear algebra ----------------------------------------------------------------------------

MATMULS = [
    ((3, 4), (4, 2)),
    ((4,), (4, 2)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
]


@pytest.mark.parametrize("shapes", MATMULS, ids=str)
def test_matmul(rng, shapes):
    a, b = (uniform(rng, s) for s in shapes)
    ex.verify_grad(ex.matmul, [a, in_layout(b, "transposed")], rng=rng)


def test_matmul_batch_axis_of_runtime_length_one(rng):
    ex.verify_grad(ex.matmul, [uniform(rng, (1, 3, 4)), uniform(rng, (5, 4, 2))], rng=rng)


def test_dot_outer_tensordot(rng):
    ex.verify_grad(ex.dot, [uniform(rng, (2, 3, 4)), uniform(rng, (5, 4, 2))], rng=rng)
    ex.verify_grad(ex.outer, [uniform(rng, (3,)), uniform(rng, (2, 2))], rng=rng)
    ex.verify_grad(
        lambda a, b: ex.tensordot(a, b, axes=([2, 0], [0, 2])),
        [uniform(rng, (3, 4, 5)), uniform(rng, (5, 2, 3))],
        rng=rng,
    )
    ex.verify_grad(lambda a, b: ex.tensordot(a, b, axes=0), [uniform(rng, (2,)), uniform(rng, (3,))], rng=rng)


# --- shapes ------------------------------------------------------------------------------------

SHAPES = {
    "reshape": lambda x: x.reshape((4, 6)) * 2,
    "reshape_symbolic": lambda x: x.reshape((x.shape[0], -1)) ** 2,
    "transpose": lambda x: x.transpose((2, 0, 1)) ** 2,
    "T": lambda x: x.T.sum(axis=0) ** 2,
    "dimshuffle": lambda x: x.dimshuffle(1, "x", 2, 0) ** 2,
    "expand_squeeze": lambda x: ex.squeeze(ex.expand_dims(x, (0, 2)) ** 2, axis=0),
    "flatten": lambda x: ex.flatten(x) ** 2,
    "concatenate": lambda x: ex.concatenate([x, x**2, x[:, :1]], axis=1),
    "stack": lambda x: ex.stack([x, ex.sin(x)], axis=1),
    "broadcast_to": lambda x: ex.broadcast_to(x[:, :1, :], (5, 2, 3, 4)) ** 2,
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_ops(rng, name):
    ex.verify_grad(SHAPES[name], [in_layout(uniform(rng, (2, 3, 4)), "strided")], rng=rng)


def test_broadcast_to_runtime_length_one(rng):
    ex.verify_grad(lambda x: ex.broadcast_to(x, (3, 4)) ** 2, [uniform(rng, (1, 4))], rng=rng)
    ex.verify_grad(lambda x: ex.broadcast_to(x, (3, 4)) ** 2, [uniform(rng, (3, 4))], rng=rng)


def test_squeeze_of_runtime_length_one(rng):
    ex.verify_grad(lambda x: ex.squeeze(x, axis=0) ** 2, [uniform(rng, (1, 4))], rng=rng)


# --- indexing ----------------------------------------------------------------------------------

INDEXING = {
    "slices": lambda x: x[1:, ::-2] ** 2,
    "int": lambda x: x[1] * x[-1, 2],
    "newaxis": lambda x: x[None, :, 1] ** 2,
    "array_repeated": lambda x: x[[0, 2, 2, 0]] ** 2,
    "array_2d": lambda x: x[np.array([[0, 1], [1, 1]]), np.array([3, 3])],
    "array_and_slice": lambda x: x[1:, [0, 0, 3]] ** 2,
    "set_subtensor": lambda x: ex.set_subtensor(x[1:, ::2], x[:2, 1:3] ** 2),
    "inc_subtensor": lambda x: ex.inc_subtensor(x[:, 1], ex.exp(x[0, :3])),
    "set_array": lambda x: ex.set_subtensor(x[[2, 0]], x[1] ** 2),
    "inc_array_repeated": lambda x: ex.inc_subtensor(x[[1, 1, 0]], ex.sin(x[:, :1])),
}


@pytest.mark.parametrize("name", sorted(INDEXING))
def test_indexing(rng, name):
    ex.verify_grad(INDEXING[name], [in_layout(uniform(rng, (3, 4)), "strided")], rng=rng)


def test_dynamic_index_and_scatter_add():
    x, i = ex.vector("x"), ex.lscalar("i")
    g = ex.grad(x[i : i + 2].sum() + x[[0, 0, 0]].sum(), x)
    np.testing.assert_array_equal(ex.function([x, i], g)([1.0, 2.0, 3.0, 4.0], 1), [3.0, 1.0, 1.0, 0.0])


def test_write_gradient_of_value_broadcast(rng):
    ex.verify_grad(
        lambda x, y: ex.set_subtensor(x[:, 1:3], y) * x, [uniform(rng, (3, 4)), uniform(rng, (1, 2))], rng=rng
    )
    ex.verify_grad(
        lambda x, y: ex.inc_subtensor(x[[0, 0, 2]], y) ** 2, [uniform(rng, (3, 4)), uniform(rng, (4,))], rng=rng
    )


def test_integer_parts_get_no_gradient(rng):
    x, n = ex.vector("x"), ex.ivector("n")
    g = ex.grad((x * n).sum() + x[ex.argmax(x)], x)
    np.testing.assert_array_equal(ex.function([x, n], g)([1.0, 5.0, 2.0], [2, 3, 4]), [2.0, 4.0, 4.0])

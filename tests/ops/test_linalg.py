"""Linear algebra of the NumPy reference back end against NumPy: dot, matmul / @,
outer and tensordot, and the errors for operands that do not line up."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import DTYPES, LAYOUTS, check, checks_in_one_program, current_backend, declare, make, shape_id

DTYPE_PAIRS = [
    ("float32", "float32"),
    ("float64", "float64"),
    ("int32", "int32"),
    ("int64", "int64"),
    ("float32", "float64"),
    ("int32", "float32"),
    ("int64", "float64"),
    ("bool", "bool"),
    ("bool", "int32"),
    ("int32", "int64"),
]


def _pair_id(pair):
    return f"{shape_id(pair[0])}-by-{shape_id(pair[1])}"


def _compare_binary(build, oracle, a_value, b_value, static):
    a, b = declare("a", a_value, static), declare("b", b_value, static)
    expected = np.asarray(oracle(a_value, b_value))
    expr = build(a, b)
    check(expr, {a: a_value, b: b_value}, expected)
    if static == "static":
        assert expr.type.shape == expected.shape
    return expr


def _operands(shapes, dtypes, layouts, seed):
    rng = np.random.default_rng(seed)
    return [make(s, d, lay, rng) for s, d, lay in zip(shapes, dtypes, layouts)]


# --- matmul and @ ---------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((1, 1), (1, 1)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((5, 1, 2, 3), (4, 3, 2)),
    ((1, 2, 3), (6, 3, 1)),
    ((4, 2, 3), (4, 3, 2)),
    ((0, 2, 3), (3, 4)),
    ((2, 0), (0, 3)),
    ((0,), (0,)),
    ((2, 3), (3, 0)),
    ((0, 3), (3,)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=_pair_id)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids="-".join)
def test_matmul(dtypes, shapes):
    a_value, b_value = _operands(shapes, dtypes, ["contiguous", "contiguous"], 40)
    with checks_in_one_program():
        for static in ("static", "dynamic"):
            _compare_binary(lambda a, b: a @ b, np.matmul, a_value, b_value, static)


@pytest.mark.parametrize("layouts", [(la, lb) for la in LAYOUTS for lb in LAYOUTS], ids="-".join)
@pytest.mark.parametrize("shapes", [((4, 3), (3, 5)), ((2, 4, 3), (1, 3, 5)), ((3, 4), (4,))], ids=_pair_id)
def test_matmul_layouts(shapes, layouts):
    with checks_in_one_program():
        for dtypes in [("float64", "float64"), ("float32", "int32")]:
            a_value, b_value = _operands(shapes, dtypes, layouts, 41)
            _compare_binary(lambda a, b: ex.matmul(a, b), np.matmul, a_value, b_value, "partial")


def test_matmul_with_constants_and_lists():
    a_value = make((2, 3), "float32", "transposed")
    a = declare("a", a_value)
    b_value = np.arange(6, dtype=np.float32).reshape(3, 2)
    check(a @ b_value, {a: a_value}, a_value @ b_value)
    check(ex.matmul(b_value.T, a.T), {a: a_value}, b_value.T @ a_value.T)
    check(ex.matmul([1.0, 2.0, 3.0], a.T), {a: a_value}, np.matmul([1.0, 2.0, 3.0], a_value.T))
    check(ex.matmul(a, [1, 2, 3]), {a: a_value}, np.matmul(a_value, [1, 2, 3]))


def test_rmatmul_with_a_numpy_array_on_the_left():
    a_value = make((3, 2), "float64", "strided")
    a = declare("a", a_value)
    left = np.ones((4, 3))
    check(left @ a, {a: a_value}, left @ a_value)


# --- dot ---------------------------------------------------------------------------------

DOT_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((), (3,)),
    ((2, 3), ()),
    ((), ()),
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (5, 4, 6)),
    ((3,), (2, 3, 4)),
    ((4, 3), (2, 3, 5)),
    ((0, 3), (3, 4)),
    ((2, 0), (0, 4)),
    ((2, 0, 3), (3, 1)),
]


@pytest.mark.parametrize("shapes", DOT_SHAPES, ids=_pair_id)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids="-".join)
def test_dot(dtypes, shapes):
    a_value, b_value = _operands(shapes, dtypes, ["contiguous", "contiguous"], 42)
    with checks_in_one_program():
        for static in ("static", "dynamic"):
            _compare_binary(ex.dot, np.dot, a_value, b_value, static)


@pytest.mark.parametrize("layouts", [(la, lb) for la in LAYOUTS for lb in LAYOUTS], ids="-".join)
@pytest.mark.parametrize("shapes", [((4, 3), (3, 5)), ((2, 4, 3), (5, 3, 2)), ((3,), (3,))], ids=_pair_id)
def test_dot_layouts(shapes, layouts):
    a_value, b_value = _operands(shapes, ("float32", "float32"), layouts, 43)
    _compare_binary(lambda a, b: a.dot(b), np.dot, a_value, b_value, "partial")


# --- outer ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layouts", [("contiguous", "strided"), ("transposed", "broadcast")], ids="-".join)
@pytest.mark.parametrize(
    "shapes", [((3,), (4,)), ((2, 2), (3,)), ((), (3,)), ((0,), (3,)), ((2, 3), (0, 2)), ((1,), (1,))], ids=_pair_id
)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids="-".join)
def test_outer(dtypes, shapes, layouts):
    a_value, b_value = _operands(shapes, dtypes, layouts, 44)
    with checks_in_one_program():
        for static in ("static", "dynamic"):
            _compare_binary(ex.outer, np.outer, a_value, b_value, static)


# --- tensordot ---------------------------------------------------------------------------------

TENSORDOTS = [
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3, 4), (4, 5), 1),
    ((2, 3), (4,), 0),
    ((3, 4), (3, 4), 2),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])),
    ((2, 3, 4), (5, 2), (0, 1)),
    ((2, 3, 4), (4, 2), ([-1, 0], [0, -1])),
    ((2, 3), (3, 2), ([], [])),
    ((3,), (3,), 1),
    ((), (2, 2), 0),
    ((0, 3), (3, 2), 1),
    ((2, 0), (0, 3), 1),
    ((3, 4), (4, 3), ([1], [0])),
    ((2, 3, 4), (2, 3, 4), 3),
]


def _tensordot_id(case):
    a, b, axes = case
    return f"{shape_id(a)}-by-{shape_id(b)}-axes={axes}".replace(" ", "")


@pytest.mark.parametrize("case", TENSORDOTS, ids=_tensordot_id)
@pytest.mark.parametrize(
    "dtypes", [("float32", "float32"), ("float64", "int32"), ("int64", "int64"), ("bool", "bool")], ids="-".join
)
def test_tensordot(dtypes, case):
    a_shape, b_shape, axes = case
    a_value, b_value = _operands((a_shape, b_shape), dtypes, ["contiguous", "contiguous"], 45)
    with checks_in_one_program():
        for static in ("static", "dynamic"):
            _compare_binary(
                lambda a, b: ex.tensordot(a, b, axes), lambda a, b: np.tensordot(a, b, axes), a_value, b_value, static
            )


@pytest.mark.parametrize("layouts", [(la, lb) for la in LAYOUTS for lb in LAYOUTS], ids="-".join)
def test_tensordot_layouts(layouts):
    a_value, b_value = _operands(((2, 3, 4), (4, 3, 5)), ("float64", "float32"), layouts, 46)
    with checks_in_one_program():
        for axes in (([1, 2], [1, 0]), 1):
            if axes == 1:
                b_value = b_value.transpose(0, 2, 1)
            _compare_binary(
                lambda a, b: ex.tensordot(a, b, axes),
                lambda a, b: np.tensordot(a, b, axes),
                a_value,
                b_value,
                "partial",
            )


def test_tensordot_default_axes_is_two():
    a_value, b_value = _operands(((2, 3, 4), (3, 4, 2)), ("float64", "float64"), ["strided", "transposed"], 47)
    _compare_binary(ex.tensordot, np.tensordot, a_value, b_value, "static")


@pytest.mark.backend_independent
@pytest.mark.parametrize("axes", [3, ([0, 1], [0]), ([0, 0], [0, 1]), ([2], [0])], ids=str)
def test_tensordot_bad_axes(axes):
    with pytest.raises((ValueError, IndexError)):
        np.tensordot(np.zeros((2, 2)), np.zeros((2, 2)), axes)
    with pytest.raises((ValueError, TypeError)):
        ex.tensordot(ex.matrix("a"), ex.matrix("b"), axes)


# --- result dtypes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("b_dtype", DTYPES + ("int8", "uint8", "float16"))
@pytest.mark.parametrize("a_dtype", DTYPES)
def test_product_dtype_is_numpy_dtype(a_dtype, b_dtype):
    a_value, b_value = _operands(((2, 3), (3, 2)), (a_dtype, b_dtype), ["contiguous", "strided"], 48)
    a, b = declare("a", a_value), declare("b", b_value)
    feeds = {a: a_value, b: b_value}
    with checks_in_one_program():
        for expr, expected in [
            (a @ b, a_value @ b_value),
            (ex.dot(a, b), np.dot(a_value, b_value)),
            (ex.tensordot(a, b, 1), np.tensordot(a_value, b_value, 1)),
            (ex.outer(a, b), np.outer(a_value, b_value)),
        ]:
            assert expr.dtype == expected.dtype.name
            check(expr, feeds, expected)


# --- operands that do not line up ---------------------------------------------------------------------

MISALIGNED = [
    ("matmul", lambda a, b: a @ b, (2, 3), (4, 5)),
    ("matmul-vector", lambda a, b: ex.matmul(a, b), (3,), (4,)),
    ("matmul-vector-matrix", lambda a, b: ex.matmul(a, b), (3,), (4, 2)),
    ("dot", ex.dot, (2, 3), (2, 3)),
    ("dot-3d", ex.dot, (2, 3, 4), (5, 3, 2)),
    ("tensordot", lambda a, b: ex.tensordot(a, b, 1), (2, 3), (4, 5)),
    ("tensordot-pairs", lambda a, b: ex.tensordot(a, b, ([0], [1])), (2, 3), (4, 5)),
]


@pytest.mark.parametrize("name,build,a_shape,b_shape", MISALIGNED, ids=[m[0] for m in MISALIGNED])
def test_misaligned_static_shapes_name_both_shapes(name, build, a_shape, b_shape):
    a, b = ex.tensor("a", shape=a_shape), ex.tensor("b", shape=b_shape)
    with pytest.raises(ex.ShapeError) as info:
        build(a, b)
    message = str(info.value)
    assert ex.shapes.fmt_shape(a_shape) in message and ex.shapes.fmt_shape(b_shape) in message, message
    # with lengths unknown until run, NumPy's error comes then
    a, b = ex.tensor("a", ndim=len(a_shape)), ex.tensor("b", ndim=len(b_shape))
    expr = build(a, b)
    with pytest.raises(ValueError):
        ex.function([a, b], expr, backend=current_backend())(np.zeros(a_shape), np.zeros(b_shape))


def test_matmul_batch_axes_that_do_not_broadcast():
    with pytest.raises(ValueError):
        np.matmul(np.zeros((2, 2, 3)), np.zeros((3, 3, 4)))
    with pytest.raises(ex.ShapeError):
        ex.tensor("a", shape=(2, 2, 3)) @ ex.tensor("b", shape=(3, 3, 4))
    a, b = ex.tensor3("a"), ex.tensor3("b")
    with pytest.raises(ValueError):
        ex.function([a, b], a @ b, backend=current_backend())(np.zeros((2, 2, 3)), np.zeros((3, 3, 4)))


@pytest.mark.backend_independent
def test_matmul_of_a_0d_operand_is_an_error():
    with pytest.raises(ValueError):
        np.matmul(np.float64(2.0), np.zeros(3))
    with pytest.raises(ValueError):
        ex.scalar("s") @ ex.vector("v")
    with pytest.raises(ValueError):
        ex.matmul(ex.vector("v"), 2.0)

"""Shape ops of the NumPy reference back end against NumPy: reshape, transpose,
dimshuffle, expand_dims, squeeze, flatten, concatenate, stack, broadcast_to, the
constructors (zeros, ones, full and their ..._like), astype, and x.shape / x.size."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import DTYPES, LAYOUTS, check, current_backend, declare, make, numpy_result, shape_id

STATIC = ["static", "dynamic"]


def modes(layout):
    """How to declare an input in this layout: every way for contiguous data, and with the
    first length unknown otherwise (the layout matters when run, the declaration when built)."""
    return ("static", "dynamic") if layout == "contiguous" else ("partial",)


#: (layout, declaration) pairs covering every layout and declaration.
LAYOUT_MODES = [(layout, static) for layout in LAYOUTS for static in modes(layout)]


def _compare_unary(build, oracle, x_value, static="dynamic"):
    """``build(x)`` against ``oracle(x_value)``."""
    x = declare("x", x_value, static)
    return check(build(x), {x: x_value}, oracle(x_value))


# --- reshape ----------------------------------------------------------------------

RESHAPES = [
    ((2, 3, 4), (6, 4)),
    ((2, 3, 4), (4, -1)),
    ((2, 3, 4), (-1,)),
    ((2, 3, 4), (3, 2, 2, 2)),
    ((2, 3, 4), (24,)),
    ((2, 3, 4), (1, -1, 1)),
    ((6,), (2, 3)),
    ((6,), (-1, 1)),
    ((), (1,)),
    ((), (1, 1)),
    ((1,), ()),
    ((1, 1), (-1,)),
    ((0, 3), (3, 0)),
    ((0, 3), (-1,)),
    ((2, 0), (0,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,new_shape", [pytest.param(s, n, id=f"{shape_id(s)}-to-{'x'.join(map(str, n)) or '0d'}") for s, n in RESHAPES]
)
def test_reshape(shape, new_shape, dtype):
    for layout, static in LAYOUT_MODES:
        x_value = make(shape, dtype, layout, np.random.default_rng(10))
        x = declare("x", x_value, static)
        expr = x.reshape(new_shape)
        check(expr, {x: x_value}, np.reshape(x_value, new_shape))
        if static == "static":  # every length is known when the graph is built
            assert expr.type.shape == np.reshape(x_value, new_shape).shape


def test_reshape_takes_lengths_as_separate_arguments_and_a_single_int():
    x_value = make((3, 4), "float64", "transposed")
    x = declare("x", x_value)
    check(x.reshape(4, 3), {x: x_value}, x_value.reshape(4, 3))
    check(x.reshape(12), {x: x_value}, x_value.reshape(12))
    check(ex.reshape(x, -1), {x: x_value}, x_value.reshape(-1))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(2, 3, 4), (0, 3, 2), (3, 0, 2), (1, 1, 1)], ids=shape_id)
def test_reshape_with_symbolic_lengths(shape, layout):
    x_value = make(shape, "float32", layout, np.random.default_rng(11))
    x = declare("x", x_value)
    cases = [
        (x.reshape((x.shape[0], -1)), (shape[0], -1)),
        (x.reshape((x.shape[0] * x.shape[1], x.shape[2])), (shape[0] * shape[1], shape[2])),
        (x.reshape((x.shape[2], x.shape[1], x.shape[0])), shape[::-1]),
        (x.reshape((x.size,)), (int(np.prod(shape)),)),
        (x.reshape((-1, x.shape[2])), (-1, shape[2])),
    ]
    for expr, numpy_shape in cases:
        try:
            expected = x_value.reshape(numpy_shape)
        except ValueError:  # NumPy cannot infer -1 next to a zero length: neither can exprc
            with pytest.raises(ValueError):
                ex.function([x], expr, backend=current_backend())(x_value)
            continue
        check(expr, {x: x_value}, expected)


def test_reshape_with_a_symbolic_int_input():
    x_value = make((4, 6), "int32", "strided")
    x, n = declare("x", x_value), ex.lscalar("n")
    expr = x.reshape((n, -1))
    f = ex.function([x, n], expr, backend=current_backend())
    for length in (1, 2, 3, 8, 24):
        got = f(x_value, length)
        expected = x_value.reshape(length, -1)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype
    with pytest.raises(ValueError):
        f(x_value, 5)


@pytest.mark.parametrize("static", STATIC)
@pytest.mark.parametrize(
    "shape,new_shape",
    [
        pytest.param(s, n, id=f"{shape_id(s)}-to-{n}")
        for s, n in [((2, 3), (4, 2)), ((2, 3), (4, -1)), ((0, 3), (0, -1)), ((2, 3), (7,)), ((), (2,))]
    ],
)
def test_reshape_to_a_different_size_raises_like_numpy(shape, new_shape, static):
    x_value = make(shape, "float64")
    with pytest.raises(ValueError):
        np.reshape(x_value, new_shape)
    x = declare("x", x_value, static)
    with pytest.raises(ValueError):  # ShapeError (a ValueError) when built, or NumPy's error when run
        ex.function([x], x.reshape(new_shape), backend=current_backend())(x_value)


@pytest.mark.backend_independent
def test_reshape_static_error_names_both_shapes():
    x = ex.tensor("x", shape=(2, 3))
    with pytest.raises(ex.ShapeError, match=r"\(2, 3\).*\(4, 2\)"):
        x.reshape((4, 2))


@pytest.mark.backend_independent
def test_reshape_with_two_unknown_lengths():
    with pytest.raises(ValueError):
        np.reshape(np.zeros((2, 2)), (-1, -1))
    with pytest.raises(ValueError):
        ex.matrix("x").reshape((-1, -1))


# --- transpose, .T, dimshuffle ------------------------------------------------------

TRANSPOSES = {
    "T": (lambda x: x.T, lambda a: a.T),
    "transpose()": (lambda x: x.transpose(), lambda a: a.transpose()),
    "transpose-1-0-2": (lambda x: ex.transpose(x, (1, 0, 2)), lambda a: np.transpose(a, (1, 0, 2))),
    "transpose-args-2-0-1": (lambda x: x.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    "transpose-negative": (lambda x: x.transpose((-1, 0, -2)), lambda a: a.transpose((-1, 0, -2))),
    "dimshuffle-1-x-2-0": (lambda x: x.dimshuffle(1, "x", 2, 0), lambda a: a.transpose(1, 2, 0)[:, None]),
    "dimshuffle-x-x-0-1-2": (lambda x: x.dimshuffle(("x", "x", 0, 1, 2)), lambda a: a[None, None]),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4), (0, 3, 1), (1, 1, 1)], ids=shape_id)
def test_transpose(shape, dtype, layout):
    x_value = make(shape, dtype, layout, np.random.default_rng(12))
    for build, oracle in TRANSPOSES.values():
        for static in modes(layout):
            _compare_unary(build, oracle, x_value, static)


@pytest.mark.parametrize("shape", [(), (5,), (0,), (3, 4)], ids=shape_id)
def test_transpose_of_low_dimensional(shape):
    x_value = make(shape, "float64", "strided" if shape else "contiguous")
    _compare_unary(lambda x: x.T, np.transpose, x_value, "static")
    _compare_unary(lambda x: ex.transpose(x), np.transpose, x_value, "dynamic")


def test_dimshuffle_drops_a_broadcastable_axis():
    x_value = make((3, 1, 4), "int64", "transposed")
    x = ex.tensor("x", dtype="int64", shape=(None, 1, None))
    check(x.dimshuffle(2, 0), {x: x_value}, x_value[:, 0, :].T)
    with pytest.raises(ex.ShapeError):
        ex.tensor("y", shape=(3, 2)).dimshuffle(0)


def test_dimshuffle_drop_of_a_runtime_length_other_than_one_raises():
    x = ex.matrix("x")
    expr = x.dimshuffle(1)
    check(expr, {x: np.ones((1, 3))}, np.ones(3))
    with pytest.raises(ValueError):
        ex.function([x], expr, backend=current_backend())(np.ones((2, 3)))


@pytest.mark.backend_independent
@pytest.mark.parametrize("axes", [(0, 0, 1), (0, 1), (0, 1, 3)], ids=str)
def test_transpose_bad_axes(axes):
    with pytest.raises(ValueError):
        np.transpose(np.zeros((1, 2, 3)), axes)
    with pytest.raises(ValueError):
        ex.tensor3("x").transpose(axes)


# --- expand_dims, squeeze, flatten / ravel --------------------------------------------

EXPAND = [0, 1, -1, 2, (0, 1), (0, -1), (1, 3)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_expand_dims(dtype, layout):
    x_value = make((3, 2), dtype, layout, np.random.default_rng(13))
    for axis in EXPAND:
        for static in modes(layout):
            _compare_unary(lambda x: ex.expand_dims(x, axis), lambda a: np.expand_dims(a, axis), x_value, static)


@pytest.mark.parametrize("axis", [0, -1, (0, 1)], ids=str)
def test_expand_dims_of_0d_and_zero_size(axis):
    for shape in [(), (0,)]:
        x_value = make(shape, "bool")
        if len(shape) + (len(axis) if isinstance(axis, tuple) else 1) <= max(
            axis if isinstance(axis, tuple) else (axis,)
        ):
            continue
        _compare_unary(lambda x: ex.expand_dims(x, axis), lambda a: np.expand_dims(a, axis), x_value)


@pytest.mark.backend_independent
def test_expand_dims_out_of_range():
    with pytest.raises(np.exceptions.AxisError):
        np.expand_dims(np.zeros(3), 3)
    with pytest.raises(np.exceptions.AxisError):
        ex.expand_dims(ex.vector("x"), 3)


SQUEEZES = [
    ((1, 3, 1), None),
    ((1, 3, 1), 0),
    ((1, 3, 1), -1),
    ((1, 3, 1), (0, 2)),
    ((1,), None),
    ((1,), 0),
    ((1, 1), None),
    ((0, 1), 1),
    ((3,), None),
    ((), None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [pytest.param(s, a, id=f"{shape_id(s)}-axis={a}") for s, a in SQUEEZES])
def test_squeeze(shape, axis, dtype):
    for layout in LAYOUTS:
        x_value = make(shape, dtype, layout, np.random.default_rng(14))
        # squeeze() with no axis removes the axes known to have length 1; with static lengths that is NumPy's
        _compare_unary(lambda x: x.squeeze(axis), lambda a: np.squeeze(a, axis), x_value, "static")
        if axis is not None:
            _compare_unary(lambda x: ex.squeeze(x, axis), lambda a: np.squeeze(a, axis), x_value, "dynamic")


def test_squeeze_of_an_axis_whose_length_is_not_one():
    with pytest.raises(ValueError):
        np.squeeze(np.zeros((2, 3)), 0)
    with pytest.raises(ex.ShapeError):
        ex.tensor("x", shape=(2, 3)).squeeze(0)
    x = ex.matrix("x")
    with pytest.raises(ValueError):
        ex.function([x], x.squeeze(0), backend=current_backend())(np.zeros((2, 3)))


FLATTENS = {
    "flatten": (lambda x: x.flatten(), lambda a: a.flatten()),
    "ravel": (lambda x: x.ravel(), np.ravel),
    "ex.flatten": (lambda x: ex.flatten(x), lambda a: a.reshape(-1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2), (0, 3), (), (1,), (5,)], ids=shape_id)
def test_flatten(shape, dtype):
    for layout, static in LAYOUT_MODES:
        x_value = make(shape, dtype, layout, np.random.default_rng(15))
        for build, oracle in FLATTENS.values():
            got = _compare_unary(build, oracle, x_value, static)
            assert got.flags.c_contiguous


@pytest.mark.parametrize("shape", [(2, 3, 4), (0, 3, 2), (2, 1, 0)], ids=shape_id)
def test_flatten_to_ndim_keeps_the_leading_axes(shape):
    for layout, static in LAYOUT_MODES:
        x_value = make(shape, "float64", layout, np.random.default_rng(16))
        for ndim in (1, 2, 3):
            _compare_unary(
                lambda x, n=ndim: x.flatten(n),
                lambda a, n=ndim: a.reshape(a.shape[: n - 1] + (int(np.prod(a.shape[n - 1 :])),)),
                x_value,
                static,
            )


@pytest.mark.backend_independent
def test_flatten_refuses_an_ndim_it_cannot_make():
    with pytest.raises(ValueError, match=r"flatten\(x, ndim=3\): ndim must be an int from 1 to 2"):
        ex.matrix("x").flatten(3)


# --- concatenate and stack ---------------------------------------------------------------


@pytest.mark.parametrize(
    "layouts,static",
    [(("contiguous", "transposed", "strided"), "static"), (("broadcast", "strided", "transposed"), "dynamic")],
    ids=["contiguous-transposed-strided", "broadcast-strided-transposed"],
)
@pytest.mark.parametrize(
    "dtypes",
    [
        ("float64",) * 3,
        ("float32",) * 3,
        ("int32", "int32", "int32"),
        ("bool",) * 3,
        ("int32", "float32", "int64"),
        ("bool", "int32", "int32"),
        ("float32", "int64", "bool"),
    ],
    ids="-".join,
)
@pytest.mark.parametrize("axis", [0, 1, -1, -2], ids=lambda a: f"axis={a}")
def test_concatenate(axis, dtypes, layouts, static):
    rng = np.random.default_rng(16)
    lengths = [2, 0, 3]
    values = []
    for length, dtype, layout in zip(lengths, dtypes, layouts):
        shape = [4, 4]
        shape[axis] = length
        values.append(make(shape, dtype, layout, rng))
    xs = [declare(f"x{i}", v, static) for i, v in enumerate(values)]
    check(ex.concatenate(xs, axis=axis), dict(zip(xs, values)), np.concatenate(values, axis=axis))


@pytest.mark.parametrize("shape", [(3,), (0, 2), (2, 0), (2, 1, 3)], ids=shape_id)
def test_concatenate_shapes(shape):
    rng = np.random.default_rng(17)
    for axis in range(-len(shape), len(shape)):
        values = [make(shape, "float32", "strided", rng), make(shape, "float32", "contiguous", rng)]
        xs = [declare(f"x{i}", v, "static") for i, v in enumerate(values)]
        check(ex.concatenate(xs, axis=axis), dict(zip(xs, values)), np.concatenate(values, axis=axis))


def test_concatenate_a_single_tensor_and_constants():
    x_value = make((2, 3), "int64", "transposed")
    x = declare("x", x_value)
    check(ex.concatenate([x]), {x: x_value}, np.concatenate([x_value]))
    extra = np.arange(3).reshape(1, 3)
    check(ex.concatenate([x, extra, [[7, 8, 9]]]), {x: x_value}, np.concatenate([x_value, extra, [[7, 8, 9]]]))


def test_concatenate_errors():
    with pytest.raises(ex.ShapeError):
        ex.concatenate([ex.tensor("a", shape=(2, 3)), ex.tensor("b", shape=(2, 4))], axis=0)
    with pytest.raises(ValueError):
        ex.concatenate([ex.matrix("a"), ex.vector("b")])
    with pytest.raises(ValueError):
        np.concatenate([np.zeros(()), np.zeros(())])
    with pytest.raises(ValueError):
        ex.concatenate([ex.scalar("a"), ex.scalar("b")])
    with pytest.raises(np.exceptions.AxisError):
        ex.concatenate([ex.matrix("a"), ex.matrix("b")], axis=2)
    a, b = ex.matrix("a"), ex.matrix("b")
    with pytest.raises(ValueError):  # lengths that only disagree when run
        ex.function([a, b], ex.concatenate([a, b]), backend=current_backend())(np.zeros((2, 3)), np.zeros((2, 4)))


@pytest.mark.parametrize("static", STATIC)
@pytest.mark.parametrize(
    "dtypes", [("float64", "float64"), ("float32", "int32"), ("bool", "int64"), ("int32", "bool")], ids="-".join
)
@pytest.mark.parametrize("shape", [(), (3,), (0,), (2, 3), (0, 2)], ids=shape_id)
def test_stack(shape, dtypes, static):
    rng = np.random.default_rng(18)
    values = [
        make(shape, dtypes[0], "strided", rng),
        make(shape, dtypes[1], "transposed", rng),
        make(shape, dtypes[0], "broadcast", rng),
    ]
    xs = [declare(f"x{i}", v, static) for i, v in enumerate(values)]
    for axis in range(-len(shape) - 1, len(shape) + 1):
        check(ex.stack(xs, axis=axis), dict(zip(xs, values)), np.stack(values, axis=axis))
    check(ex.stack(xs[:1]), {xs[0]: values[0]}, np.stack(values[:1]))


def test_stack_of_symbolic_scalars_and_lists():
    a, b = ex.scalar("a"), ex.lscalar("b")
    check(ex.stack([a, b, 2.5]), {a: 1.5, b: 3}, np.stack([np.float64(1.5), np.int64(3), 2.5]))
    check(ex.as_tensor([a, b]), {a: 1.5, b: 3}, np.array([1.5, 3.0]))


@pytest.mark.backend_independent
def test_stack_errors():
    with pytest.raises(ValueError):
        ex.stack([ex.matrix("a"), ex.vector("b")])
    with pytest.raises(ValueError):
        ex.stack([])
    with pytest.raises(np.exceptions.AxisError):
        ex.stack([ex.vector("a"), ex.vector("b")], axis=2)


# --- broadcast_to ---------------------------------------------------------------------------

BROADCASTS = [
    ((3,), (4, 3)),
    ((1,), (5,)),
    ((1, 3), (2, 4, 3)),
    ((3, 1), (3, 4)),
    ((), (2, 2)),
    ((), ()),
    ((1,), (0,)),
    ((0,), (2, 0)),
    ((2, 3), (2, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,target", [pytest.param(s, t, id=f"{shape_id(s)}-to-{shape_id(t)}") for s, t in BROADCASTS]
)
def test_broadcast_to(shape, target, dtype):
    for layout, static in LAYOUT_MODES:
        x_value = make(shape, dtype, layout, np.random.default_rng(19))
        got = _compare_unary(
            lambda x: ex.broadcast_to(x, target), lambda a: np.broadcast_to(a, target), x_value, static
        )
        assert got.shape == target


def test_broadcast_to_symbolic_shape():
    v_value, m_value = make((3,), "float32", "strided"), make((4, 1), "float64", "transposed")
    v, m = declare("v", v_value), declare("m", m_value)
    check(ex.broadcast_to(v, (m.shape[0], v.shape[0])), {v: v_value, m: m_value}, np.broadcast_to(v_value, (4, 3)))
    check(ex.broadcast_to(m, (m.shape[0], 3)), {m: m_value}, np.broadcast_to(m_value, (4, 3)))
    n = ex.lscalar("n")
    check(ex.broadcast_to(v, (n, 2, 3)), {v: v_value, n: 2}, np.broadcast_to(v_value, (2, 2, 3)))


@pytest.mark.parametrize("shape,target", [((3,), (4, 2)), ((2, 3), (3,)), ((2, 1), (3, 1))], ids=str)
def test_broadcast_to_incompatible(shape, target):
    with pytest.raises(ValueError):
        np.broadcast_to(np.zeros(shape), target)
    with pytest.raises(ex.ShapeError):
        ex.broadcast_to(ex.tensor("x", shape=shape), target)
    x = ex.tensor("x", shape=(None,) * len(shape))
    with pytest.raises(ValueError):
        ex.function([x], ex.broadcast_to(x, target), backend=current_backend())(np.zeros(shape))


# --- zeros, ones, full and the _like constructors --------------------------------------------

CONSTRUCT_SHAPES = [(3,), (2, 3), (0, 3), (), 4]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CONSTRUCT_SHAPES, ids=lambda s: shape_id(s) if isinstance(s, tuple) else f"int{s}")
def test_zeros_ones_full(shape, dtype):
    check(ex.zeros(shape, dtype=dtype), {}, np.zeros(shape, dtype=dtype))
    check(ex.ones(shape, dtype=dtype), {}, np.ones(shape, dtype=dtype))
    check(ex.full(shape, 2, dtype=dtype), {}, np.full(shape, 2, dtype=dtype))
    if dtype != "bool":
        check(ex.full(shape, -1.75, dtype=dtype), {}, np.full(shape, -1.75).astype(dtype))


def test_zeros_and_ones_default_to_float64():
    check(ex.zeros((2, 2)), {}, np.zeros((2, 2)))
    check(ex.ones(3), {}, np.ones(3))


@pytest.mark.parametrize("fill", [7, 7.5, True, np.float32(1.5), np.int32(3)], ids=repr)
def test_full_takes_the_dtype_of_its_value(fill):
    check(ex.full((2, 3), fill), {}, np.full((2, 3), fill))


def test_constructors_with_symbolic_shapes():
    x_value = make((3, 0, 2), "float32", "strided")
    x, n = declare("x", x_value), ex.lscalar("n")
    check(ex.zeros((x.shape[0], x.shape[2]), dtype="int32"), {x: x_value}, np.zeros((3, 2), dtype="int32"))
    check(ex.ones(x.shape), {x: x_value}, np.ones(x_value.shape))
    check(ex.full((n, 2), 4.0, dtype="float32"), {n: 5}, np.full((5, 2), 4.0, dtype="float32"))
    check(ex.zeros(n), {n: 0}, np.zeros(0))


def test_full_with_a_symbolic_fill_value():
    s, x_value = ex.scalar("s"), make((2, 3), "float32", "transposed")
    x = declare("x", x_value)
    check(ex.full((2, 2), s), {s: 1.25}, np.full((2, 2), 1.25))
    check(ex.full((2, 2), s, dtype="float32"), {s: 1.25}, np.full((2, 2), 1.25, dtype="float32"))
    check(ex.full_like(x, s), {x: x_value, s: 1.25}, np.full_like(x_value, 1.25))


LIKES = {
    "zeros_like": (ex.zeros_like, np.zeros_like, ()),
    "ones_like": (ex.ones_like, np.ones_like, ()),
    "full_like-2": (ex.full_like, np.full_like, (2,)),
    "full_like-2.75": (ex.full_like, np.full_like, (2.75,)),
    "full_like-True": (ex.full_like, np.full_like, (True,)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LIKES))
def test_like_constructors(name, dtype):
    build, oracle, args = LIKES[name]
    rng = np.random.default_rng(20)
    for i, (shape, out_dtype) in enumerate(
        [(s, d) for s in [(2, 3), (0, 3), ()] for d in [None, "float32", "int64", "bool"]]
    ):
        layout = LAYOUTS[i % len(LAYOUTS)]
        x_value = make(shape, dtype, layout, rng)
        x = declare("x", x_value, STATIC[i % 2])
        expected = oracle(x_value, *args, dtype=out_dtype)
        check(build(x, *args, dtype=out_dtype), {x: x_value}, expected)


# --- astype ----------------------------------------------------------------------------------


@pytest.mark.parametrize("to", DTYPES + ("int8", "uint8", "float16"))
@pytest.mark.parametrize("dtype", DTYPES)
def test_astype(dtype, to):
    values = []
    for layout in LAYOUTS:
        x_value = make((3, 4), dtype, layout, np.random.default_rng(21), low=-100, high=100)
        if np.dtype(to).kind == "u" or to == "int8":  # in range: NumPy's wrap-around is not portable
            x_value = np.abs(x_value) % 100 if dtype != "bool" else x_value
        values.append(("dynamic", x_value))
    values += [("static", values[0][1]), ("dynamic", values[0][1][:0]), ("static", values[0][1][0, 0])]
    for static, value in values:
        x = declare("x", value, static)
        expr = x.astype(to)
        assert expr.dtype == np.dtype(to).name
        check(expr, {x: value}, value.astype(to))
        check(ex.astype(x, np.dtype(to)), {x: value}, value.astype(to))


@pytest.mark.backend_independent
def test_astype_to_the_same_dtype_is_the_input():
    x = ex.fmatrix("x")
    assert x.astype("float32") is x


@pytest.mark.backend_independent
def test_astype_unsupported_dtype():
    with pytest.raises(TypeError, match="complex128"):
        ex.matrix("x").astype("complex128")


# --- x.shape, x.size, len(x) -------------------------------------------------------------------


@pytest.mark.parametrize("static", ["static", "dynamic", "partial"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(2, 3, 4), (0, 3), (5,), (), (1, 1)], ids=shape_id)
def test_shape_and_size(shape, layout, static):
    x_value = make(shape, "float32", layout, np.random.default_rng(22))
    x = declare("x", x_value, static)
    assert len(x.shape) == len(shape)
    for axis, length in enumerate(x.shape):
        check(length, {x: x_value}, np.asarray(x_value.shape[axis]))
        if static == "static":
            assert isinstance(length, ex.TensorConstant) and int(length.value) == shape[axis]
    check(x.size, {x: x_value}, np.asarray(x_value.size))
    check(ex.size(x), {x: x_value}, np.asarray(np.size(x_value)))
    if shape:
        check(x.shape[-1] * 2 + 1, {x: x_value}, np.asarray(x_value.shape[-1] * 2 + 1))
        # a length is a Python int to NumPy: it does not promote float32
        check(x.sum(axis=0) / x.shape[0], {x: x_value}, numpy_result(lambda a: a.sum(axis=0) / a.shape[0], x_value))
    if static == "static":
        assert isinstance(x.size, ex.TensorConstant) and int(x.size.value) == x_value.size


def test_lengths_and_python_scalars_stack_and_expand():
    """Lengths and Python scalars are weak 0-d values; shape ops take them like any 0-d tensor."""
    x_value = make((2, 0, 3), "int32", "transposed")
    x = declare("x", x_value)
    check(ex.stack([x.shape[0], x.shape[2]]), {x: x_value}, np.array([2, 3]))
    check(ex.as_tensor([x.shape[2], x.size, 7]), {x: x_value}, np.array([3, 0, 7]))
    check(ex.expand_dims(x.shape[0], 0), {x: x_value}, np.expand_dims(2, 0))
    check(ex.reshape(x.shape[2], (1, 1)), {x: x_value}, np.reshape(3, (1, 1)))
    check(ex.broadcast_to(x.shape[2], (2,)), {x: x_value}, np.broadcast_to(3, (2,)))
    check(ex.expand_dims(2.5, (0, 1)), {}, np.expand_dims(2.5, (0, 1)))
    check(ex.constant(1.5)[None], {}, np.float64(1.5)[None])


@pytest.mark.backend_independent
def test_len_of_a_static_axis():
    x = ex.tensor("x", shape=(4, None))
    assert len(x) == 4
    with pytest.raises(TypeError):
        len(ex.matrix("y"))
    with pytest.raises(TypeError):
        len(ex.scalar("s"))

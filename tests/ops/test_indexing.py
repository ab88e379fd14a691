"""Indexing of the NumPy reference back end against NumPy: basic slicing, integer-array
indexing, set_subtensor / inc_subtensor, and the errors for indices exprc refuses."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import DTYPES, LAYOUTS, check, current_backend, declare, make

E = Ellipsis


class _Index:
    """``I[1:, ::-2]`` is the index tuple ``(slice(1, None), slice(None, None, -2))``."""

    def __getitem__(self, index):
        return index


I = _Index()  # noqa: E741 - reads as NumPy index notation, I[1:, ::2]


def _index_id(index):
    """A readable id: ``[1:,::-2]``."""

    def part(e):
        if isinstance(e, slice):
            text = ":".join("" if v is None else str(v) for v in (e.start, e.stop, e.step))
            return text[:-1] if text.endswith(":") and e.step is None else text
        if e is None:
            return "None"
        if e is Ellipsis:
            return "..."
        if isinstance(e, np.ndarray):
            return f"arr{e.tolist()}".replace(" ", "")
        return str(e).replace(" ", "")

    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ",".join(part(e) for e in parts) + "]"


def modes(layout):
    """How to declare an input: with static lengths and without for contiguous data, and
    with the first length unknown for the other layouts."""
    return ("static", "dynamic") if layout == "contiguous" else ("partial",)


#: (layout, declaration) pairs covering every layout and declaration.
LAYOUT_MODES = [(layout, static) for layout in LAYOUTS for static in modes(layout)]


def _compare_index(x_value, index, static):
    x = declare("x", x_value, static)
    expected = np.asarray(x_value[index])
    got = check(x[index], {x: x_value}, expected)
    if static == "static":  # a constant index into static lengths gives static lengths
        assert x[index].type.shape == expected.shape
    return got


# --- basic indexing ---------------------------------------------------------------------

BASIC_3D = [
    I[1],
    I[-1],
    I[0, 2],
    I[1, -2, 3],
    I[1:3],
    I[::2],
    I[::-1],
    I[-2:],
    I[:-1, ::-2],
    I[::-2, 1:, ::3],
    I[10:],
    I[-10:2],
    I[2:1],
    I[1:-1:-1],
    I[:, 1],
    I[:, :, -1],
    I[None],
    I[:, None, 1],
    I[1, None, :, None],
    I[E],
    I[E, 1],
    I[1, E],
    I[E, None],
    I[None, E, ::-1],
    I[0, E, 2],
    I[:],
    I[:, :],
    I[()],
    I[np.int32(1), np.int64(-1)],
    I[5:0:-2, :, 1:4:2],
]


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("index", BASIC_3D, ids=_index_id)
def test_basic_indexing(index, dtype):
    for layout, static in LAYOUT_MODES:
        x_value = make((4, 3, 5), dtype, layout, np.random.default_rng(30))
        _compare_index(x_value, index, static)


@pytest.mark.parametrize("dtype", DTYPES)
def test_basic_indexing_every_dtype(dtype):
    x_value = make((6, 4), dtype, "strided", np.random.default_rng(31))
    for index in [I[1:5:2, ::-1], I[-1], I[::-3, 2], I[None, ::2]]:
        _compare_index(x_value, index, "static")
        _compare_index(x_value, index, "dynamic")


@pytest.mark.parametrize("static", ["static", "dynamic"])
@pytest.mark.parametrize("index", [I[()], I[E], I[None], I[None, None], I[E, None]], ids=_index_id)
def test_indexing_a_0d_tensor(index, static):
    _compare_index(np.array(2.5), index, static)


@pytest.mark.parametrize("static", ["static", "dynamic"])
@pytest.mark.parametrize("index", [I[1:], I[:, 1], I[::-1], I[:, ::-2], I[None, :0], I[-5:5, 2]], ids=_index_id)
def test_indexing_zero_size(index, static):
    _compare_index(make((0, 3), "int32"), index, static)


@pytest.mark.parametrize("step", [1, 2, 3, -1, -2, -7], ids=lambda s: f"step={s}")
def test_slices_of_every_start_and_stop(step):
    """All starts and stops from -7 to 7 (in range, negative and past either end) on a length-5 axis."""
    x_value = make((5,), "float64", "strided", np.random.default_rng(32))
    for start in [None, *range(-7, 8)]:
        for stop in [None, *range(-7, 8)]:
            _compare_index(x_value, I[start:stop:step], "static")


def test_symbolic_int_index_and_slice_bounds():
    x_value = make((6, 4), "float32", "transposed", np.random.default_rng(33))
    x = declare("x", x_value, "partial")
    i, j, s = ex.lscalar("i"), ex.iscalar("j"), ex.lscalar("s")
    cases = [
        (lambda: x[i], lambda i, j, s: x_value[i]),
        (lambda: x[-i], lambda i, j, s: x_value[-i]),
        (lambda: x[:, j], lambda i, j, s: x_value[:, j]),
        (lambda: x[i, j], lambda i, j, s: x_value[i, j]),
        (lambda: x[i : i + 2], lambda i, j, s: x_value[i : i + 2]),
        (lambda: x[i:, j:], lambda i, j, s: x_value[i:, j:]),
        (lambda: x[::s], lambda i, j, s: x_value[::s]),
        (lambda: x[j::s, ::-1], lambda i, j, s: x_value[j::s, ::-1]),
        (lambda: x[i:-1:s, 1], lambda i, j, s: x_value[i:-1:s, 1]),
        (lambda: x[x.shape[0] - 2 :], lambda i, j, s: x_value[x_value.shape[0] - 2 :]),
        (lambda: x[None, i, 1:j], lambda i, j, s: x_value[None, i, 1:j]),
    ]
    for build, oracle in cases:
        expr = build()
        f = ex.function([x, i, j, s], expr, backend=current_backend())
        for iv, jv, sv in [(0, 0, 1), (1, 3, 2), (2, -1, -1), (3, 1, -3), (-2, 2, 4), (5, -4, 1)]:
            expected = np.asarray(oracle(iv, jv, sv))
            got = f(x_value, iv, jv, sv)
            np.testing.assert_array_equal(got, expected)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert expr.ndim == expected.ndim


def test_symbolic_index_out_of_range_when_run():
    x = ex.vector("x")
    i = ex.lscalar("i")
    f = ex.function([x, i], x[i], backend=current_backend())
    with pytest.raises(IndexError):
        np.zeros(3)[3]
    with pytest.raises(IndexError):
        f(np.zeros(3), 3)
    with pytest.raises(IndexError):
        f(np.zeros(3), -4)


def test_symbolic_slice_step_of_zero_when_run():
    x, s = ex.vector("x"), ex.lscalar("s")
    with pytest.raises(ValueError):
        ex.function([x, s], x[::s], backend=current_backend())(np.zeros(3), 0)


# --- integer-array indexing ----------------------------------------------------------------

ADVANCED_3D = [
    I[[0, 2, 2]],
    I[[-1, 0]],
    I[np.array([[0, 1], [3, 0]])],
    I[[]],
    I[:, [1, 0, 1]],
    I[::-1, [2]],
    I[:, :, [4, 0, -1]],
    I[[0, 1], [1, 2]],
    I[[[0], [3]], [0, 2, 1]],  # adjacent arrays stay in place
    I[:, [0, 1], [1, 4]],
    I[1:3, [0, 2], [[1], [3]]],
    I[:, 1, [0, 2]],  # ... after leading slices
    I[[0, 1], :, [1, 4]],
    I[[1, 3], ::-1, 2],
    I[2, :, [[0, 1]]],  # non-adjacent: axes go first
    I[E, [0, -1]],
    I[[1, 0], E],
    I[[0, 1], [1, 2], [3, 4]],
    I[[2], [0], 1:],
    I[np.array([1, 0], dtype=np.int32), 1:3, np.array([4], dtype=np.uint8)],
]


@pytest.mark.parametrize("dtype", ["float64", "int32", "bool"])
@pytest.mark.parametrize("index", ADVANCED_3D, ids=_index_id)
def test_integer_array_indexing(index, dtype):
    for layout, static in LAYOUT_MODES:
        x_value = make((4, 3, 5), dtype, layout, np.random.default_rng(34))
        _compare_index(x_value, index, static)


AXIS_PLACEMENT_4D = [
    I[:, [0, 1], :, [2, 3]],
    I[:, 1, :, [0, 5]],
    I[::-1, [[0], [2]], 1:4, [1, 2]],  # separated: indexed axes first
    I[:, [0, 1], [2, 3]],
    I[1:, :, [0, -1], [[1], [0]]],
    I[:, 2, [0, 4]],
    I[..., [1], [5, 0]],  # together: in place
]


@pytest.mark.parametrize("index", AXIS_PLACEMENT_4D, ids=_index_id)
def test_where_numpy_puts_the_indexed_axes(index):
    """Index arrays (ints count as 0-d arrays) next to each other replace their axes in place;
    separated by a slice, their axes go first."""
    x_value = make((3, 4, 5, 6), "float32", "strided", np.random.default_rng(40))
    _compare_index(x_value, index, "static")
    _compare_index(x_value, index, "dynamic")


@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_array_indexing_every_dtype(dtype):
    x_value = make((5, 4), dtype, "transposed", np.random.default_rng(35))
    for index in [I[[4, 0, 0]], I[:, [3, -4]], I[[1, 2], [3, 0]], I[::-2, [1]]]:
        _compare_index(x_value, index, "static")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("idx_dtype", ["int32", "int64"])
def test_symbolic_index_arrays(idx_dtype, layout):
    rng = np.random.default_rng(36)
    x_value = make((4, 3, 5), "float32", layout, rng)
    v_value = np.array([0, 2, -1, 1], dtype=idx_dtype)
    m_value = make((2, 3), idx_dtype, layout, rng, low=-3, high=2)
    x = declare("x", x_value, "partial")
    v = ex.tensor("v", dtype=idx_dtype, shape=(None,))
    m = ex.tensor("m", dtype=idx_dtype, shape=(None, None))
    cases = [
        (x[v], x_value[v_value]),
        (x[:, v[:2]], x_value[:, v_value[:2]]),
        (x[m], x_value[m_value]),
        (x[::-1, m, 1:4], x_value[::-1, m_value, 1:4]),
        (x[m, :, v[0]], x_value[m_value, :, v_value[0]]),
        (x[m[:, :1], 1, :], x_value[m_value[:, :1], 1, :]),
        (x[[0, 3], v[:1]], x_value[[0, 3], v_value[:1]]),
        (x[m, v[:3]], x_value[m_value, v_value[:3]]),
        (x[m.T, E, v[1:3]], x_value[m_value.T, ..., v_value[1:3]]),
    ]
    for expr, expected in cases:
        check(expr, {x: x_value, v: v_value, m: m_value}, expected)
    empty = np.array([], dtype=idx_dtype)
    check(x[v], {x: x_value, v: empty}, x_value[empty])
    check(x[1:, v, ::2], {x: x_value, v: empty}, x_value[1:, empty, ::2])


def test_index_arrays_that_do_not_broadcast():
    with pytest.raises(IndexError):
        np.zeros((3, 3))[[0, 1], [0, 1, 2]]
    with pytest.raises(ex.ShapeError):
        ex.matrix("x")[[0, 1], [0, 1, 2]]
    x, a, b = ex.matrix("x"), ex.lvector("a"), ex.lvector("b")
    with pytest.raises(IndexError):
        ex.function([x, a, b], x[a, b], backend=current_backend())(np.zeros((3, 3)), [0, 1], [0, 1, 2])


def test_symbolic_index_array_out_of_range_when_run():
    x, v = ex.matrix("x"), ex.lvector("v")
    f = ex.function([x, v], x[:, v], backend=current_backend())
    with pytest.raises(IndexError):
        f(np.zeros((2, 3)), [0, 3])
    with pytest.raises(IndexError):
        f(np.zeros((2, 3)), [-4])


# --- set_subtensor and inc_subtensor ---------------------------------------------------------


def _numpy_write(x_value, index, y_value, set_instead_of_inc):
    out = np.array(x_value, copy=True)
    if set_instead_of_inc:
        out[index] = y_value
    else:
        np.add.at(out, index, y_value)  # accumulates at repeated indices
    return out


WRITES = [
    # basic indices
    (I[1:3], "slice"),
    (I[::2], "slice"),
    (I[::-1, 1], "row"),
    (I[-1], "row"),
    (I[2, -1], "scalar"),
    (I[:, ::-2], "slice"),
    (I[E, 0], "row"),
    (I[5:], "slice"),
    (I[:], "slice"),
    # integer arrays, with repeats, negatives and slices
    (I[[0, 2]], "slice"),
    (I[[1, 1, 1]], "slice"),
    (I[[-1, 3]], "slice"),
    (I[:, [0, 2, 0]], "slice"),
    (I[[0, 0, 3], [1, 1, 2]], "scalar"),
    (I[[[0], [3]], [0, 0]], "scalar"),
    (I[1:, [2, -1]], "slice"),
]


def _update_value(kind, target_shape, dtype, rng):
    """The value written: the whole indexed shape, its last row (broadcast), or a scalar."""
    if kind == "scalar":
        return make((), dtype, rng=rng)
    if kind == "row":
        return make(target_shape[-1:], dtype, "strided", rng)
    return make(target_shape, dtype, "transposed", rng)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("op", ["set", "inc"])
@pytest.mark.parametrize("index,kind", [pytest.param(i, k, id=f"{_index_id(i)}-{k}") for i, k in WRITES])
def test_set_and_inc_subtensor(index, kind, op, dtype):
    write = ex.set_subtensor if op == "set" else ex.inc_subtensor
    for layout, static in LAYOUT_MODES:
        rng = np.random.default_rng(38)
        x_value = make((4, 3), dtype, layout, rng)
        y_value = _update_value(kind, x_value[index].shape, dtype, rng)
        x_before = x_value.copy()
        x, y = declare("x", x_value, static), declare("y", y_value, static)
        expr = write(x[index], y)
        assert expr.type == x.type
        check(expr, {x: x_value, y: y_value}, _numpy_write(x_value, index, y_value, op == "set"))
        np.testing.assert_array_equal(x_value, x_before)  # the input is not written


@pytest.mark.parametrize("op", ["set", "inc"])
def test_writes_with_python_scalars_and_symbolic_indices(op):
    write = ex.set_subtensor if op == "set" else ex.inc_subtensor
    x_value = make((5, 3), "float32", "strided", np.random.default_rng(39))
    x, i, v = declare("x", x_value), ex.lscalar("i"), ex.lvector("v")
    i_value, v_value = 2, np.array([1, 0, 1])
    for sub, index in [
        (x[i], I[i_value]),
        (x[i:, ::-1], I[i_value:, ::-1]),
        (x[v], I[v_value]),
        (x[v, 1:], I[v_value, 1:]),
        (x[:, v[:2]], I[:, v_value[:2]]),
        (x[-i, v], I[-i_value, v_value]),
    ]:
        for value in (2, 0.5):
            expr = write(sub, value)
            assert expr.dtype == "float32"
            expected = _numpy_write(x_value, index, np.float32(value), op == "set")
            check(expr, {x: x_value, i: i_value, v: v_value}, expected)


def test_inc_subtensor_accumulates_like_add_at():
    x, y = ex.vector("x"), ex.vector("y")
    idx = np.array([0, 1, 0, 0, 3])
    x_value, y_value = np.zeros(4), np.arange(5.0)
    got = check(ex.inc_subtensor(x[idx], y), {x: x_value, y: y_value}, _numpy_write(x_value, idx, y_value, False))
    plain = x_value.copy()
    plain[idx] += y_value  # buffered: repeats do not accumulate, which inc_subtensor must not copy
    assert not np.array_equal(got, plain)


def test_set_subtensor_with_repeats_matches_numpy_assignment():
    x, y = ex.vector("x"), ex.vector("y")
    idx = [2, 0, 2, 2]
    x_value, y_value = np.zeros(3), np.array([1.0, 2.0, 3.0, 4.0])
    check(ex.set_subtensor(x[idx], y), {x: x_value, y: y_value}, _numpy_write(x_value, idx, y_value, True))


def test_set_subtensor_of_a_full_slice_writes_into_the_sliced_tensor():
    """``b = a[1:]``; ``set_subtensor(b[:], 0)`` is a copy of b, not of a."""
    a_value = np.arange(5.0)
    a = declare("a", a_value)
    b = a[1:]
    for write, index in [(ex.set_subtensor, I[:]), (ex.inc_subtensor, I[...])]:
        expected = _numpy_write(a_value[1:], index, 7.0, write is ex.set_subtensor)
        check(write(b[index], 7.0), {a: a_value}, expected)


def test_writes_into_zero_size_and_0d():
    x = ex.matrix("x")
    x_value = np.zeros((0, 3))
    check(ex.set_subtensor(x[:, 1], 1.0), {x: x_value}, x_value.copy())
    check(ex.inc_subtensor(x[[]], 1.0), {x: x_value}, x_value.copy())
    s = ex.scalar("s")
    for write in (ex.set_subtensor, ex.inc_subtensor):
        check(write(s[()], 2.0), {s: 1.5}, _numpy_write(np.array(1.5), (), 2.0, write is ex.set_subtensor))


def test_write_errors():
    x = ex.tensor("x", shape=(4, 3))
    with pytest.raises(ex.ShapeError):  # the value does not broadcast to x[1:3]
        ex.set_subtensor(x[1:3], ex.tensor("y", shape=(3, 3)))
    with pytest.raises(ex.ShapeError):
        ex.inc_subtensor(x[[0, 1]], ex.tensor("y", shape=(2, 2, 3)))
    with pytest.raises(TypeError):  # a float into an int tensor would be a lossy cast
        ex.set_subtensor(ex.imatrix("k")[0], 1.5)
    with pytest.raises(TypeError):  # not an indexed tensor
        ex.set_subtensor(ex.exp(x), 0.0)
    with pytest.raises(TypeError):
        ex.inc_subtensor(x, 1.0)
    m, y = ex.matrix("m"), ex.matrix("y")
    with pytest.raises(ValueError):  # lengths that only disagree when run
        ex.function([m, y], ex.set_subtensor(m[1:], y), backend=current_backend())(np.zeros((3, 2)), np.zeros((3, 2)))


# --- indices exprc refuses -------------------------------------------------------------------


@pytest.mark.parametrize("index", [I[4], I[-5], I[0, 3], I[:, -4], I[[0, 4]], I[:, [-4]], I[E, 3]], ids=_index_id)
def test_constant_index_out_of_range(index):
    with pytest.raises(IndexError):
        np.zeros((4, 3))[index]
    with pytest.raises(IndexError, match="out of bounds"):
        ex.tensor("x", shape=(4, 3))[index]
    x = ex.matrix("x")  # lengths unknown until run: NumPy's IndexError then
    with pytest.raises(IndexError):
        ex.function([x], x[index], backend=current_backend())(np.zeros((4, 3)))


@pytest.mark.parametrize(
    "mask",
    [
        pytest.param(lambda x: x > 0, id="symbolic"),
        pytest.param(lambda x: np.array([True, False, True]), id="numpy"),
        pytest.param(lambda x: [True, False, True], id="list"),
        pytest.param(lambda x: ex.bvector("b"), id="bvector"),
    ],
)
@pytest.mark.backend_independent
def test_boolean_mask_is_a_clear_error(mask):
    x = ex.vector("x")
    with pytest.raises(IndexError, match="boolean"):
        x[mask(x)]


@pytest.mark.backend_independent
@pytest.mark.parametrize("index", [I[0, 0, 0], I[:, :, :], I[1, E, 2, 0], I[[0], [0], [0]]], ids=_index_id)
def test_too_many_indices(index):
    with pytest.raises(IndexError):
        np.zeros((2, 2))[index]
    with pytest.raises(IndexError, match="too many indices"):
        ex.matrix("x")[index]


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(1.0, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(I[1.5:], id="float-slice"),
        pytest.param(I[[0.0, 1.0]], id="float-array"),
        pytest.param(I[E, E], id="two-ellipses"),
        pytest.param("a", id="string"),
    ],
)
@pytest.mark.backend_independent
def test_bad_indices(index):
    with pytest.raises((IndexError, TypeError)):
        ex.vector("x")[index]


@pytest.mark.backend_independent
def test_slice_step_of_zero():
    with pytest.raises(ValueError):
        np.zeros(3)[::0]
    with pytest.raises(ValueError):
        ex.vector("x")[::0]
    with pytest.raises(ValueError):
        ex.matrix("m")[[0], ::0]

"""Rearranging against NumPy: tile, repeat, pad, roll, flip, moveaxis, swapaxes, split, take,
take_along_axis, put_along_axis, and Theano's specify_shape, specify_broadcastable,
shape_padleft, shape_padright."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import LAYOUTS, check, checks_in_one_program, current_backend, declare, make, shape_id


def _grad_backend():
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c; the CUDA back end runs the same graphs")
    return current_backend()


SHAPES = [(3, 4), (2, 3, 2), (0, 3), (4,), ()]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_views_flip_moveaxis_swapaxes_and_padding_axes(shape, layout):
    x_value = make(shape, "float32", layout)
    x = declare("x", x_value, "partial")
    nd = len(shape)
    with checks_in_one_program():
        check(ex.flip(x), {x: x_value}, np.flip(x_value))
        check(ex.shape_padleft(x, 2), {x: x_value}, x_value[None, None])
        check(ex.shape_padright(x), {x: x_value}, x_value[..., None])
        if nd:
            check(ex.flip(x, -1), {x: x_value}, np.flip(x_value, -1))
            check(ex.moveaxis(x, 0, -1), {x: x_value}, np.moveaxis(x_value, 0, -1))
            check(ex.swapaxes(x, 0, -1), {x: x_value}, np.swapaxes(x_value, 0, -1))
        if nd == 3:
            check(ex.flip(x, (0, 2)), {x: x_value}, np.flip(x_value, (0, 2)))
            check(ex.moveaxis(x, [0, 1], [2, 0]), {x: x_value}, np.moveaxis(x_value, [0, 1], [2, 0]))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_tile_and_repeat(shape, layout):
    x_value = make(shape, "int32", layout)
    x = declare("x", x_value, "partial")
    with checks_in_one_program():
        for reps in (2, (2, 1), (1, 3, 2), 0):
            check(ex.tile(x, reps), {x: x_value}, np.tile(x_value, reps))
        check(ex.repeat(x, 3), {x: x_value}, np.repeat(x_value, 3))
        if shape:
            check(ex.repeat(x, 2, axis=-1), {x: x_value}, np.repeat(x_value, 2, axis=-1))
            check(ex.repeat(x, [2], axis=0), {x: x_value}, np.repeat(x_value, [2], axis=0))


def test_repeat_with_counts_per_element_and_a_symbolic_count():
    x_value = make((3, 2), "float64", "strided")
    x, r = declare("x", x_value, "partial"), ex.lscalar("r")
    xs = ex.tensor("xs", shape=(3, None))
    with checks_in_one_program():
        check(ex.repeat(xs, [1, 0, 3], axis=0), {xs: x_value}, np.repeat(x_value, [1, 0, 3], axis=0))
        check(ex.repeat(x, [2, 1], axis=1), {x: x_value}, np.repeat(x_value, [2, 1], axis=1))
    f = ex.function([x, r], ex.repeat(x, r, axis=0), backend=current_backend())
    for count in (0, 2):
        np.testing.assert_array_equal(f(x_value, count), np.repeat(x_value, count, axis=0))


@pytest.mark.backend_independent
def test_tile_and_repeat_errors_name_the_op():
    x = ex.matrix("x")
    with pytest.raises(TypeError, match="repeat: repeats must be integers"):
        ex.repeat(x, 1.5)
    with pytest.raises(TypeError, match="repeat: repeats must be integers"):
        ex.repeat(x, [1.0, 2.0], axis=0)
    with pytest.raises(ValueError, match="repeat: repeats must be non-negative"):
        ex.repeat(x, -1)
    with pytest.raises(ex.ShapeError, match="repeat: one count per element needs axis 0"):
        ex.repeat(x, [1, 2], axis=0)
    with pytest.raises(ValueError, match="repeat: 2 repeats for axis 0"):
        ex.repeat(ex.tensor("t", shape=(3,)), [1, 2])
    with pytest.raises(TypeError, match="tile: reps must be integers"):
        ex.tile(x, (2.0, 1))


MODES = ["constant", "edge", "reflect", "symmetric", "wrap"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_pad(mode, layout):
    x_value = make((3, 4), "float64", layout)
    x = declare("x", x_value, "partial")
    v_value = make((1,), "float64")
    v = declare("v", v_value)
    with checks_in_one_program():
        for width in (1, (2, 0), ((1, 2), (0, 3)), ((5, 7), (2, 9))):
            check(ex.pad(x, width, mode), {x: x_value}, np.pad(x_value, width, mode))
        check(ex.pad(v, (2, 3), mode), {v: v_value}, np.pad(v_value, (2, 3), mode))


def test_pad_constant_values_zero_size_and_0d():
    x_value, e_value, s_value = make((2, 3), "int32", "transposed"), np.zeros((0, 2)), np.float32(1.5)
    x, e, s = declare("x", x_value), declare("e", e_value), declare("s", s_value)
    with checks_in_one_program():
        check(ex.pad(x, 1, constant_values=7), {x: x_value}, np.pad(x_value, 1, constant_values=7))
        check(ex.pad(e, ((1, 1), (0, 2))), {e: e_value}, np.pad(e_value, ((1, 1), (0, 2))))
        check(ex.pad(e, ((0, 0), (1, 2)), "edge"), {e: e_value}, np.pad(e_value, ((0, 0), (1, 2)), "edge"))
        check(ex.pad(s, 3), {s: s_value}, np.pad(s_value, 3))


@pytest.mark.backend_independent
def test_pad_errors_name_the_op():
    x = ex.matrix("x")
    with pytest.raises(ValueError, match="pad: pad widths must be non-negative"):
        ex.pad(x, -1)
    with pytest.raises(TypeError, match="pad: pad_width must hold integers"):
        ex.pad(x, 1.5)
    with pytest.raises(ValueError, match="pad: mode 'mean' is not one of"):
        ex.pad(x, 1, "mean")
    with pytest.raises(ValueError, match="pad: pad_width"):
        ex.pad(x, ((1, 2, 3),))
    with pytest.raises(ValueError, match="pad: cannot pad the empty axis 0"):
        ex.pad(ex.tensor("e", shape=(0, 2)), 1, "reflect")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(3, 4), (0, 2), (5,), ()], ids=shape_id)
def test_roll(shape, layout):
    x_value = make(shape, "float32", layout)
    x = declare("x", x_value, "partial")
    with checks_in_one_program():
        for shift in (1, -7, 0):
            check(ex.roll(x, shift), {x: x_value}, np.roll(x_value, shift))
            if shape:
                check(ex.roll(x, shift, axis=-1), {x: x_value}, np.roll(x_value, shift, axis=-1))
        if len(shape) == 2:
            check(ex.roll(x, (1, -2), (0, 1)), {x: x_value}, np.roll(x_value, (1, -2), (0, 1)))
            check(ex.roll(x, (2, 3), (1, 1)), {x: x_value}, np.roll(x_value, (2, 3), (1, 1)))


def test_roll_by_a_symbolic_shift():
    x_value, s = make((5,), "int64", "strided"), ex.lscalar("s")
    x = declare("x", x_value)
    f = ex.function([x, s], ex.roll(x, s), backend=current_backend())
    for shift in (-6, 0, 3):
        np.testing.assert_array_equal(f(x_value, shift), np.roll(x_value, shift))


@pytest.mark.parametrize("static", ["static", "dynamic"])
@pytest.mark.parametrize(
    "shape,how,axis", [((6, 2), 3, 0), ((2, 6), [1, 4], 1), ((2, 6), [0, 7, 2], -1), ((0, 2), 2, 0)], ids=str
)
def test_split(shape, how, axis, static):
    x_value = make(shape, "float64", "transposed")
    x = declare("x", x_value, static)
    parts, expected = ex.split(x, how, axis), np.split(x_value, how, axis)
    assert len(parts) == len(expected)
    with checks_in_one_program():
        for got, want in zip(parts, expected):
            check(got, {x: x_value}, want)


@pytest.mark.backend_independent
def test_split_errors_name_the_op():
    with pytest.raises(ValueError, match="split: axis 0 .* length 5, which 2 sections do not divide"):
        ex.split(ex.tensor("t", shape=(5,)), 2)
    with pytest.raises(ValueError, match="split: the number of sections must be positive"):
        ex.split(ex.vector("v"), 0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float64", "int32", "bool"])
def test_take_and_take_along_axis(dtype, layout):
    x_value = make((3, 4), dtype, layout)
    x = declare("x", x_value, "partial")
    idx = np.array([[0, 3, -1], [2, 2, 1]])
    along = np.array([[1, 0], [3, 3], [0, 2]])
    i = ex.lmatrix("i")
    with checks_in_one_program():
        check(ex.take(x, [2, -1, 0]), {x: x_value}, np.take(x_value, [2, -1, 0]))
        check(ex.take(x, idx, axis=1), {x: x_value}, np.take(x_value, idx, axis=1))
        check(ex.take(x, 1, axis=0), {x: x_value}, np.take(x_value, 1, axis=0))
        check(ex.take(x, i, axis=0), {x: x_value, i: idx[:, :2] % 3}, np.take(x_value, idx[:, :2] % 3, axis=0))
        check(ex.take_along_axis(x, along, axis=1), {x: x_value}, np.take_along_axis(x_value, along, axis=1))
        down = np.array([[0, 2, 1, 1], [2, -1, 0, 1]])
        check(ex.take_along_axis(x, down, 0), {x: x_value}, np.take_along_axis(x_value, down, 0))
        check(ex.take_along_axis(x, [5, 0], None), {x: x_value}, np.take_along_axis(x_value, np.array([5, 0]), None))


def test_take_along_axis_of_zero_size_and_broadcast_indices():
    e_value, x_value = np.zeros((2, 0)), make((2, 3), "float32")
    e, x = declare("e", e_value), declare("x", x_value)
    with checks_in_one_program():
        none = np.zeros((2, 0), dtype=np.int64)
        check(ex.take_along_axis(e, none, 1), {e: e_value}, np.take_along_axis(e_value, none, 1))
        check(ex.take_along_axis(x, [[2]], 1), {x: x_value}, np.take_along_axis(x_value, np.array([[2]]), 1))


def _put(arr, idx, values, axis):
    out = arr.copy()
    np.put_along_axis(out, idx, values, axis)
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_put_along_axis(layout):
    x_value = make((3, 4), "float64", layout)
    x = declare("x", x_value, "partial")
    idx = np.argsort(make((3, 4), "float64", rng=np.random.default_rng(1)), axis=1)[:, :2]
    values = make((3, 2), "float64", rng=np.random.default_rng(2))
    added = x_value.copy()
    np.add.at(added, (np.arange(3)[:, None], np.array([[0, 0]] * 3)), 1.0)
    with checks_in_one_program():
        check(ex.put_along_axis(x, idx, values, 1), {x: x_value}, _put(x_value, idx, values, 1))
        down = np.array([[0, 2, 1, 1], [2, 0, 0, 2]])
        check(ex.put_along_axis(x, down, -1.0, 0), {x: x_value}, _put(x_value, down, -1.0, 0))
        check(ex.put_along_axis(x, [0, 11], 5.0, None), {x: x_value}, _put(x_value, np.array([0, 11]), 5.0, None))
        check(ex.put_along_axis(x, [[0, 0]] * 3, 1.0, 1, inc=True), {x: x_value}, added)


def test_specify_shape_and_specify_broadcastable():
    x_value = make((3, 1), "float64", "strided")
    x = declare("x", x_value)
    fixed = ex.specify_shape(x, (3, None))
    assert fixed.type.shape == (3, None)
    assert ex.specify_broadcastable(x, 1).type.shape == (None, 1)
    with checks_in_one_program():
        check(fixed * 2.0, {x: x_value}, x_value * 2.0)
        check(ex.specify_broadcastable(x, -1) + 1.0, {x: x_value}, x_value + 1.0)
    f = ex.function([x], ex.specify_shape(x, (2, None)) + 1.0, backend=current_backend())
    with pytest.raises(ex.ShapeError, match=r"specify_shape: .*shape \(3, 1\), expected \(2, \?\)"):
        f(x_value)


@pytest.mark.backend_independent
def test_specify_shape_errors_when_built():
    t = ex.tensor("t", shape=(2, None))
    with pytest.raises(ex.ShapeError, match="specify_shape: axis 0 of t has length 2, not 3"):
        ex.specify_shape(t, (3, None))
    with pytest.raises(ValueError, match="specify_shape: 1 lengths for t"):
        ex.specify_shape(t, (2,))
    with pytest.raises(TypeError, match="specify_shape: each length"):
        ex.specify_shape(t, (2.0, None))


@pytest.mark.parametrize(
    "name",
    ["flip", "tile", "repeat", "pad_reflect", "pad_constant", "roll", "split", "take_along_axis", "put", "specify"],
)
def test_gradients(name):
    backend = _grad_backend()
    m = make((3, 4), "float64", "transposed", np.random.default_rng(7))
    idx = np.array([[1, 0], [3, 3], [0, 2]])
    cases = {
        "flip": lambda t: ex.flip(t, 1),
        "tile": lambda t: ex.tile(t, (2, 1, 2)),
        "repeat": lambda t: ex.repeat(t, 2, axis=0),
        "pad_reflect": lambda t: ex.pad(t, ((1, 4), (2, 0)), "reflect"),
        "pad_constant": lambda t: ex.pad(t, 2, constant_values=1.0),
        "roll": lambda t: ex.roll(t, (1, -1), (0, 1)),
        "split": lambda t: ex.split(t, [1, 3], axis=1)[1],
        "take_along_axis": lambda t: ex.take_along_axis(t, idx, 1),
        "put": lambda t: ex.put_along_axis(t, [[0, 2], [3, 1], [2, 0]], t[:, :2] * 3.0, 1),
        "specify": lambda t: ex.specify_shape(t, (3, 4)) ** 2,
    }
    ex.verify_grad(cases[name], [m], backend=backend, rng=0)

"""Ordering and searching against NumPy: sort, argsort (stable), topk, partition,
argpartition, searchsorted, and unique's refusal."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import LAYOUTS, check, checks_in_one_program, current_backend, declare, in_layout, make, shape_id


def _grad_backend():
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c; the CUDA back end runs the same graphs")
    return current_backend()


def _with_ties_and_nan(values):
    """``values`` with repeated elements (and a NaN for floats), where sorting must be stable."""
    values = np.array(values)
    flat = values.reshape(-1)
    if flat.size >= 4:
        flat[1] = flat[3]
        if values.dtype.kind == "f":
            flat[2] = np.nan
    return values


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "uint8", "bool"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2), (0, 3), (5,)], ids=shape_id)
def test_sort_and_argsort(shape, dtype, layout):
    x_value = in_layout(_with_ties_and_nan(make(shape, dtype)), layout)
    x = declare("x", x_value, "partial")
    with checks_in_one_program():
        for axis in range(-len(shape), len(shape)):
            check(ex.sort(x, axis), {x: x_value}, np.sort(x_value, axis, kind="stable"))
            check(ex.argsort(x, axis), {x: x_value}, np.argsort(x_value, axis, kind="stable"))
        check(ex.sort(x, None), {x: x_value}, np.sort(x_value, None))
        check(ex.argsort(x, None), {x: x_value}, np.argsort(x_value, None, kind="stable"))


def test_sort_of_0d_with_axis_none():
    s_value = np.float32(2.5)
    s = declare("s", s_value)
    with checks_in_one_program():
        check(ex.sort(s, None), {s: s_value}, np.sort(s_value, None))
        check(ex.argsort(s, None), {s: s_value}, np.argsort(s_value, None))


@pytest.mark.backend_independent
def test_sort_errors_name_the_op():
    with pytest.raises(np.exceptions.AxisError, match="sort: axis 2 is out of bounds"):
        ex.sort(ex.matrix("m"), 2)
    with pytest.raises(np.exceptions.AxisError, match="argsort: axis -1 is out of bounds"):
        ex.argsort(ex.scalar("s"))
    with pytest.raises(TypeError, match="sort: axis must be an int or None"):
        ex.sort(ex.matrix("m"), (0, 1))
    assert ex.sort(ex.tensor("t", shape=(None, 3))).type.shape == (None, 3)
    assert ex.argsort(ex.tensor("t", shape=(2, 3)), None).type.shape == (6,)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [1, 3, 0])
def test_topk(k, largest):
    x_value = make((3, 5), "float64", "strided")
    x = declare("x", x_value, "partial")
    values, indices = ex.topk(x, k, axis=1, largest=largest)
    order = np.argsort(x_value, axis=1, kind="stable")
    expected = np.flip(order, 1)[:, :k] if largest else order[:, :k]
    with checks_in_one_program():
        check(values, {x: x_value}, np.take_along_axis(x_value, expected, 1))
        check(indices, {x: x_value}, expected)
    n = ex.lscalar("n")
    values0, _ = ex.topk(x, n, axis=0, largest=largest)
    sorted0 = np.sort(x_value, axis=0)
    f = ex.function([x, n], values0, backend=current_backend())
    for count in (2, 5):  # k past the length gives the whole axis, in order
        np.testing.assert_array_equal(f(x_value, count), np.flip(sorted0, 0)[:count] if largest else sorted0[:count])


@pytest.mark.parametrize("kth", [0, 2, -1, (1, 3)], ids=str)
def test_partition_and_argpartition_partition(kth):
    x_value = make((3, 5), "float32", "transposed")
    x = declare("x", x_value)
    got_values = ex.function([x], ex.partition(x, kth), backend=current_backend())(x_value)
    got_indices = ex.function([x], ex.argpartition(x, kth), backend=current_backend())(x_value)
    expected = np.partition(x_value, kth)
    for k in np.atleast_1d(kth) % 5:
        # NumPy fixes only the elements at kth and which side of them the others lie
        np.testing.assert_array_equal(got_values[:, k], expected[:, k])
        np.testing.assert_array_equal(np.take_along_axis(x_value, got_indices, 1)[:, k], expected[:, k])
        assert (got_values[:, :k] <= got_values[:, k : k + 1]).all()
        assert (got_values[:, k + 1 :] >= got_values[:, k : k + 1]).all()
    assert got_indices.dtype == np.argpartition(x_value, kth).dtype


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_searchsorted(side, dtype):
    a_value = np.sort(make((6,), dtype, "strided"))
    a_value[2] = a_value[3]
    v_value = make((2, 3), dtype, "transposed", np.random.default_rng(4))
    a, v, s = declare("a", a_value), declare("v", v_value), declare("s", np.float64(0.5))
    shuffled = a_value[::-1].copy()
    sorter = np.argsort(shuffled, kind="stable")
    b = declare("b", shuffled)
    with checks_in_one_program():
        check(ex.searchsorted(a, v, side), {a: a_value, v: v_value}, np.searchsorted(a_value, v_value, side))
        check(ex.searchsorted(a, a, side), {a: a_value}, np.searchsorted(a_value, a_value, side))
        check(ex.searchsorted(a, s, side), {a: a_value, s: np.float64(0.5)}, np.searchsorted(a_value, 0.5, side))
        check(
            ex.searchsorted(b, v, side, sorter=sorter),
            {b: shuffled, v: v_value},
            np.searchsorted(shuffled, v_value, side, sorter=sorter),
        )
        empty = np.zeros((0,), dtype=dtype)
        e = declare("e", empty)
        check(ex.searchsorted(e, v, side), {e: empty, v: v_value}, np.searchsorted(empty, v_value, side))


@pytest.mark.backend_independent
def test_searchsorted_and_unique_errors():
    with pytest.raises(ValueError, match="searchsorted: a must be 1-d"):
        ex.searchsorted(ex.matrix("m"), 1.0)
    with pytest.raises(ValueError, match="searchsorted: side must be 'left' or 'right'"):
        ex.searchsorted(ex.vector("a"), 1.0, side="middle")
    with pytest.raises(NotImplementedError, match="unique of v: the length of its result depends on the values"):
        ex.unique(ex.vector("v"))
    with pytest.raises(TypeError, match="topk: k must be an int"):
        ex.topk(ex.vector("v"), 1.5)
    with pytest.raises(ValueError, match="topk: k = 4 is not within the length 3 of axis 0"):
        ex.topk(ex.tensor("t", shape=(3,)), 4)


@pytest.mark.parametrize("axis", [0, 1, None])
def test_sort_gradient(axis):
    backend = _grad_backend()
    m = make((3, 4), "float64", "strided", np.random.default_rng(8))
    ex.verify_grad(
        lambda t: ex.sort(t, axis) * np.arange(1.0, 13.0).reshape(-1)[: 12 if axis is None else 4],
        [m],
        backend=backend,
        rng=0,
    )
    ex.verify_grad(lambda t: ex.topk(t, 2, axis=0 if axis is None else axis)[0], [m], backend=backend, rng=0)

"""Cumulative ops against NumPy: cumsum, cumprod, cummax, cummin (``np.maximum.accumulate``,
``np.minimum.accumulate``) along every axis and flattened, and diff."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import LAYOUTS, check, checks_in_one_program, current_backend, declare, make, numpy_result, shape_id

OPS = {
    "cumsum": (ex.cumsum, np.cumsum),
    "cumprod": (ex.cumprod, np.cumprod),
    "cummax": (ex.cummax, np.maximum.accumulate),
    "cummin": (ex.cummin, np.minimum.accumulate),
}


def _flat(numpy_fn):
    """NumPy's function with ``axis=None`` flattening, as ``cumsum`` does (the ufuncs' accumulate does not)."""
    return lambda x, axis: numpy_fn(np.reshape(x, -1), axis=0) if axis is None else numpy_fn(x, axis=axis)


def _grad_backend():
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c; the CUDA back end runs the same graphs")
    return current_backend()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "uint8", "bool"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 0, 3), (5,), ()], ids=shape_id)
def test_cumulative_ops(shape, dtype, layout):
    x_value = make(shape, dtype, layout, low=-2, high=2)
    x = declare("x", x_value, "partial")
    with checks_in_one_program():
        for ours, theirs in OPS.values():
            theirs = _flat(theirs)
            for axis in [None, *range(-len(shape), len(shape))]:
                check(ours(x, axis), {x: x_value}, numpy_result(theirs, x_value, axis))


@pytest.mark.backend_independent
def test_cumulative_types_and_errors():
    for name, (ours, theirs) in OPS.items():
        for dtype in ("int8", "int32", "uint16", "bool", "float32"):
            x = ex.tensor("x", dtype=dtype, shape=(2, None))
            expected = theirs(np.ones((2, 1), dtype=dtype), axis=1).dtype
            assert ours(x, 1).dtype == expected, (name, dtype)
            assert ours(x, 1).type.shape == (2, None)
        assert ours(x).type.shape == (None,)
        with pytest.raises(np.exceptions.AxisError, match=f"{name}: axis 2 is out of bounds"):
            ours(ex.matrix("m"), 2)
        with pytest.raises(TypeError, match=f"{name}: axis must be an int or None"):
            ours(ex.matrix("m"), (0, 1))


def test_cumsum_of_a_broadcast_input_and_in_a_dtype():
    v_value = make((3,), "float64", "strided")
    v = declare("v", v_value)
    with checks_in_one_program():
        check(ex.cumsum(ex.broadcast_to(v, (2, 3)), 0), {v: v_value}, np.cumsum(np.broadcast_to(v_value, (2, 3)), 0))
        check(ex.cumprod(v * 2.0 + 1.0), {v: v_value}, np.cumprod(v_value * 2.0 + 1.0))
        check(ex.cumsum(v, dtype="float32"), {v: v_value}, np.cumsum(v_value, dtype="float32"))
        check(ex.cumprod(v > 0, 0, "int32"), {v: v_value}, np.cumprod(v_value > 0, 0, "int32"))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "int64", "uint8", "bool"])
def test_diff(dtype, layout):
    x_value = make((3, 5), dtype, layout)
    x = declare("x", x_value, "partial")
    e_value = np.zeros((2, 0), dtype=dtype)
    e = declare("e", e_value)
    with checks_in_one_program():
        for n in (0, 1, 2, 6):
            for axis in (-1, 0):
                check(ex.diff(x, n, axis), {x: x_value}, np.diff(x_value, n, axis))
        check(ex.diff(e, 1, 0), {e: e_value}, np.diff(e_value, 1, 0))
        check(ex.diff(e), {e: e_value}, np.diff(e_value))
        check(ex.diff(x, 1, 0, prepend=0), {x: x_value}, np.diff(x_value, 1, 0, prepend=0))
        edge = x_value[:, :2]
        check(ex.diff(x, 2, append=edge, prepend=1), {x: x_value}, np.diff(x_value, 2, append=edge, prepend=1))


@pytest.mark.backend_independent
def test_diff_errors_name_the_op():
    with pytest.raises(ValueError, match="diff: order n must be non-negative"):
        ex.diff(ex.vector("v"), -1)
    with pytest.raises(TypeError, match="diff: order n must be an int"):
        ex.diff(ex.vector("v"), 1.5)
    with pytest.raises(ValueError, match="diff: expected at least 1 dimension"):
        ex.diff(ex.scalar("s"))
    with pytest.raises(np.exceptions.AxisError, match="diff"):
        ex.diff(ex.vector("v"), 1, 1)


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "cummax", "cummin", "diff"])
@pytest.mark.parametrize("axis", [0, 1, None])
def test_gradients(name, axis):
    backend = _grad_backend()
    rng = np.random.default_rng(9)
    m = make((3, 4), "float64", "transposed", rng)
    m = np.where(np.abs(m) < 0.3, 0.5, m)  # away from zero for cumprod's division
    if name == "diff":
        fn = lambda t: ex.diff(t, 2, -1 if axis is None else axis)  # noqa: E731
    else:
        fn = lambda t: OPS[name][0](t, axis) * 1.0  # noqa: E731
    ex.verify_grad(fn, [m], backend=backend, rng=0)


def test_cummax_gradient_goes_to_the_input_it_copies():
    x_value = np.array([[1.0, 3.0, 2.0, 5.0, 4.0], [0.0, -1.0, -2.0, 7.0, 6.0]])
    x = declare("x", x_value)
    g = ex.grad((ex.cummax(x, 1) * np.arange(1.0, 6.0)).sum(), x)
    gmin = ex.grad(ex.cummin(x, 1).sum(), x)
    with checks_in_one_program():
        check(g, {x: x_value}, np.array([[1.0, 5.0, 0.0, 9.0, 0.0], [6.0, 0.0, 0.0, 9.0, 0.0]]))
        check(gmin, {x: x_value}, np.array([[5.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 3.0, 0.0, 0.0]]))

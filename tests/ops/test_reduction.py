"""Reductions of the NumPy reference back end against NumPy: sum, prod, mean, var,
std, max, min, argmax, argmin, all, any, logsumexp, softmax and log_softmax."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import (
    DTYPES,
    FLOATS,
    LAYOUTS,
    NUMERIC,
    check,
    checks_in_one_program,
    current_backend,
    declare,
    make,
    numpy_result,
    shape_id,
)

# name -> (how exprc spells it, how NumPy spells it)
REDUCTIONS = {
    "sum": (lambda x, **kw: x.sum(**kw), np.sum),
    "prod": (lambda x, **kw: ex.prod(x, **kw), np.prod),
    "mean": (lambda x, **kw: x.mean(**kw), np.mean),
    "var": (lambda x, **kw: ex.var(x, **kw), np.var),
    "std": (lambda x, **kw: x.std(**kw), np.std),
    "max": (lambda x, **kw: x.max(**kw), np.max),
    "min": (lambda x, **kw: ex.min(x, **kw), np.min),
    "argmax": (lambda x, **kw: x.argmax(**kw), np.argmax),
    "argmin": (lambda x, **kw: ex.argmin(x, **kw), np.argmin),
    "all": (lambda x, **kw: x.all(**kw), np.all),
    "any": (lambda x, **kw: ex.any(x, **kw), np.any),
}
ARG_REDUCTIONS = ("argmax", "argmin")
# NumPy has no identity for these, so reducing a zero-size axis is an error.
NO_IDENTITY = ("max", "min", "argmax", "argmin")


def _takes(name, axis):
    """Whether NumPy's reduction ``name`` accepts ``axis`` (the arg-reductions take one axis or None)."""
    return not (name in ARG_REDUCTIONS and isinstance(axis, tuple))


def _axis_id(axis, keepdims=False):
    text = "all" if axis is None else "_".join(map(str, axis)) if isinstance(axis, tuple) else str(axis)
    return f"axis={text}" + ("-keepdims" if keepdims else "")


def _compare(name, x_value, axis, keepdims, static="dynamic"):
    build, oracle = REDUCTIONS[name]
    x = declare("x", x_value, static)
    expected = numpy_result(oracle, x_value, axis=axis, keepdims=keepdims)
    check(build(x, axis=axis, keepdims=keepdims), {x: x_value}, expected)


# --- every reduction, every dtype and layout ----------------------------------

AXES_3D = [(None, False), (0, False), (-1, True), ((0, 2), False), ((-1, 0, 1), True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name,axis,keepdims",
    [
        pytest.param(name, axis, keepdims, id=f"{name}-{_axis_id(axis, keepdims)}")
        for name in REDUCTIONS
        for axis, keepdims in AXES_3D
        if _takes(name, axis)
    ],
)
def test_reduction_matches_numpy(name, axis, keepdims, dtype):
    """Contiguous, transposed, strided and broadcast inputs."""
    with checks_in_one_program():
        for layout in LAYOUTS:
            x_value = make((3, 4, 5), dtype, layout, np.random.default_rng(1), low=-3, high=4)
            _compare(name, x_value, axis, keepdims, static="partial")


# --- edge shapes: zero-size, 0-d, length 1 -------------------------------------

EDGE_CASES = [
    ((), None),
    ((), ()),
    ((0,), None),
    ((0,), 0),
    ((0, 3), None),
    ((0, 3), 0),
    ((0, 3), 1),
    ((0, 3), -1),
    ((3, 0), 0),
    ((3, 0), 1),
    ((1, 1), None),
    ((1, 1), 0),
    ((2, 0, 3), (0, 2)),
    ((2, 0, 3), (1,)),
]


def _edge_id(case):
    shape, axis = case
    return f"{shape_id(shape)}-{_axis_id(axis)}"


def _reduces_empty(shape, axis):
    """Whether some output element is a reduction over no elements."""
    if not shape:
        return False
    axes = range(len(shape)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    return any(shape[a] == 0 for a in axes)


@pytest.mark.parametrize(
    "name,case",
    [
        pytest.param(name, case, id=f"{name}-{_edge_id(case)}")
        for name in REDUCTIONS
        for case in EDGE_CASES
        if _takes(name, case[1])
    ],
)
def test_reduction_edge_shapes(name, case):
    """Zero-size, 0-d and length-1 inputs, declared with static lengths and without."""
    shape, axis = case
    build, oracle = REDUCTIONS[name]
    with checks_in_one_program():
        for dtype, static, keepdims in [
            ("float32", "static", False),
            ("int64", "dynamic", True),
            ("bool", "static", True),
            ("float64", "dynamic", False),
        ]:
            x_value = make(shape, dtype, rng=np.random.default_rng(2))
            x = declare("x", x_value, static)
            try:
                expected = numpy_result(oracle, x_value, axis=axis, keepdims=keepdims)
            except ValueError:
                # max, min, argmax, argmin of a zero-size axis: NumPy raises, so must exprc.
                assert name in NO_IDENTITY and _reduces_empty(shape, axis)
                expr = build(x, axis=axis, keepdims=keepdims)
                with pytest.raises(ValueError):
                    ex.function([x], expr, backend=current_backend())(x_value)
                continue
            check(build(x, axis=axis, keepdims=keepdims), {x: x_value}, expected)


@pytest.mark.backend_independent
@pytest.mark.parametrize("axis", [0, -1, (0,)], ids=str)
@pytest.mark.parametrize("name", list(REDUCTIONS) + ["logsumexp", "softmax", "log_softmax"])
def test_reduction_of_0d_along_an_axis_is_an_axis_error(name, axis):
    """A 0-d tensor has no axis 0. (NumPy lets sum, max, all and a few others take axis=0 or -1
    on a 0-d array, but not mean, var, std or argmax; exprc refuses them all alike.)"""
    if name in ARG_REDUCTIONS and isinstance(axis, tuple):
        return
    with pytest.raises(np.exceptions.AxisError):
        np.mean(np.zeros(()), axis=axis)
    build = REDUCTIONS[name][0] if name in REDUCTIONS else getattr(ex, name)
    with pytest.raises(np.exceptions.AxisError, match="0 dimensions"):
        build(ex.scalar("x"), axis=axis)


@pytest.mark.backend_independent
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_axis_out_of_range(name):
    build, _ = REDUCTIONS[name]
    x = ex.matrix("x")
    with pytest.raises(np.exceptions.AxisError):
        build(x, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        build(x, axis=-3)


@pytest.mark.backend_independent
@pytest.mark.parametrize("name", ["sum", "prod", "mean", "var", "std", "max", "min", "all", "any"])
def test_reduction_repeated_axis_is_an_error(name):
    build, oracle = REDUCTIONS[name]
    with pytest.raises(ValueError):
        oracle(np.ones((2, 2)), axis=(0, 0))
    with pytest.raises(ValueError):
        build(ex.matrix("x"), axis=(0, -2))


@pytest.mark.backend_independent
@pytest.mark.parametrize("name", ARG_REDUCTIONS)
def test_arg_reduction_rejects_tuple_axis(name):
    build, _ = REDUCTIONS[name]
    with pytest.raises(TypeError):
        build(ex.matrix("x"), axis=(0, 1))


# --- NaN, infinities and ties --------------------------------------------------


@pytest.mark.parametrize("axis", [None, 0, 1], ids=_axis_id)
@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin", "sum", "mean", "all", "any"])
def test_reduction_nan_and_inf(name, axis):
    x_value = np.array([[1.0, np.nan, 3.0, -np.inf], [2.0, 2.0, np.inf, 0.0], [5.0, 5.0, -1.0, np.nan]])
    with checks_in_one_program():
        _compare(name, x_value, axis, False)
        _compare(name, x_value[:, ::-1], axis, True)


@pytest.mark.parametrize("name", ARG_REDUCTIONS)
def test_arg_reduction_ties_take_the_first(name):
    x_value = np.array([[3, 1, 3, 1], [2, 2, 2, 2]], dtype="int32")
    with checks_in_one_program():
        for axis in (None, 0, 1):
            _compare(name, x_value, axis, False)
            _compare(name, x_value.T, axis, False)


# --- dtype= for sum and prod, and result dtypes ---------------------------------


@pytest.mark.parametrize("out_dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("in_dtype", DTYPES)
@pytest.mark.parametrize("name", ["sum", "prod"])
def test_sum_prod_dtype_argument(name, in_dtype, out_dtype):
    build, oracle = REDUCTIONS[name]
    x_value = make((3, 4), in_dtype, "strided", np.random.default_rng(3), low=-3, high=4)
    x = declare("x", x_value)
    for axis in (None, 1):
        expected = numpy_result(oracle, x_value, axis=axis, dtype=out_dtype)
        expr = build(x, axis=axis, dtype=out_dtype)
        assert expr.dtype == out_dtype
        check(expr, {x: x_value}, expected)


@pytest.mark.parametrize("dtype", DTYPES + ("int8", "uint8", "int16", "uint32", "float16"))
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_static_dtype_is_numpy_dtype(name, dtype):
    """The dtype known when the graph is built is the dtype NumPy returns (np.sum of int32
    is int64, the mean of ints is float64, float32 stays float32, ...)."""
    build, oracle = REDUCTIONS[name]
    x_value = make((2, 3), dtype, rng=np.random.default_rng(4), low=0, high=3)
    expected = numpy_result(oracle, x_value, axis=0)
    x = declare("x", x_value)
    assert build(x, axis=0).dtype == expected.dtype.name
    check(build(x, axis=0), {x: x_value}, expected)


# --- var and std: ddof ------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,axis",
    [
        pytest.param(shape, axis, id=f"{shape_id(shape)}-{_axis_id(axis)}")
        for shape, axis in [((4, 3), 0), ((4, 3), None), ((1, 3), 0), ((2, 3), (0, 1)), ((0, 3), 0)]
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_ddof(name, dtype, shape, axis):
    """Dividing by ``n - ddof``; NumPy gives inf or NaN where that is zero or negative."""
    build, oracle = REDUCTIONS[name]
    x_value = make(shape, dtype, "transposed", np.random.default_rng(5))
    x = declare("x", x_value)
    with checks_in_one_program():
        for ddof, keepdims in [(0, False), (1, True), (2, False), (5, False)]:
            expected = numpy_result(oracle, x_value, axis=axis, keepdims=keepdims, ddof=ddof)
            check(build(x, axis=axis, keepdims=keepdims, ddof=ddof), {x: x_value}, expected)


def test_mean_of_constant_and_python_list():
    values = [[1, 2, 3], [4, 5, 7]]
    for axis in (None, 0, -1):
        expr = ex.mean(ex.as_tensor(values), axis=axis)
        check(expr, {}, np.mean(np.array(values), axis=axis))


# --- logsumexp, softmax, log_softmax ---------------------------------------------
# The oracles follow SciPy's algorithms in float64: subtract the max, treating an
# infinite max as 0 (logsumexp, log_softmax), so rows of -inf give -inf, not NaN.


def _finite_max(x, axis):
    if x.size == 0:
        return np.zeros(np.sum(x, axis=axis, keepdims=True).shape)
    m = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0)


def ref_logsumexp(x, axis=None, keepdims=False):
    x = np.asarray(x, dtype=np.float64)
    m = _finite_max(x, axis)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=tuple(range(x.ndim)) if axis is None else axis)


def ref_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - (np.max(x, axis=axis, keepdims=True) if x.size else 0))
    return e / np.sum(e, axis=axis, keepdims=True)


def ref_log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    shifted = x - _finite_max(x, axis)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _exp_dtype(dtype):
    """The dtype NumPy's formula ``log(sum(exp(x)))`` has for ``x`` of ``dtype``."""
    return np.exp(np.ones((), dtype=dtype)).dtype


STABLE = {
    "logsumexp": (lambda x, axis: ex.logsumexp(x, axis=axis), lambda x, axis: ref_logsumexp(x, axis)),
    "logsumexp-keepdims": (
        lambda x, axis: ex.logsumexp(x, axis=axis, keepdims=True),
        lambda x, axis: ref_logsumexp(x, axis, keepdims=True),
    ),
    "softmax": (lambda x, axis: ex.softmax(x, axis=axis), ref_softmax),
    "log_softmax": (lambda x, axis: ex.log_softmax(x, axis=axis), ref_log_softmax),
}


def _check_stable(name, x_value, axis, static="dynamic"):
    build, oracle = STABLE[name]
    x = declare("x", x_value, static)
    expected = numpy_result(oracle, x_value, axis).astype(_exp_dtype(x_value.dtype))
    return check(build(x, axis), {x: x_value}, expected)


STABLE_AXES = [None, 0, -1, 1, (0, 2), (-1, 1)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("name", list(STABLE))
def test_stable_reduction_matches_reference(name, dtype, layout):
    x_value = make((3, 4, 5), dtype, layout, np.random.default_rng(6))
    with checks_in_one_program():
        for axis in STABLE_AXES:
            if name in ("softmax", "log_softmax") and axis is None:
                axis = (0, 1, 2)
            _check_stable(name, x_value, axis, "partial")


@pytest.mark.parametrize(
    "shape,axis",
    [
        pytest.param(shape, axis, id=f"{shape_id(shape)}-{_axis_id(axis)}")
        for shape, axis in [
            ((), None),
            ((), ()),
            ((1,), 0),
            ((1, 1), None),
            ((0, 3), -1),
            ((0, 3), 0),
            ((3, 0), -1),
            ((3, 0), None),
            ((0,), 0),
            ((2, 0, 3), (0, 2)),
        ]
    ],
)
@pytest.mark.parametrize("static", ["static", "dynamic"])
@pytest.mark.parametrize("name", list(STABLE))
def test_stable_reduction_edge_shapes(name, static, shape, axis):
    """0-d, length-1 and zero-size inputs; reducing nothing gives -inf, as SciPy does."""
    if name in ("softmax", "log_softmax") and axis is None:
        axis = tuple(range(len(shape)))
    x_value = make(shape, "float64", rng=np.random.default_rng(7))
    _check_stable(name, x_value, axis, static)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(STABLE))
def test_stable_reduction_large_inputs_stay_finite(name, dtype):
    x_value = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1000.5], [0.0, 88.0, 89.0]], dtype=dtype)
    for axis in (-1, 0):
        got = _check_stable(name, x_value, axis)
        assert np.all(np.isfinite(got)), got


@pytest.mark.parametrize("name", list(STABLE))
def test_stable_reduction_with_infinite_rows(name):
    """Rows holding -inf, as SciPy handles them: logsumexp of a row of -inf is -inf,
    softmax gives 0 where the input is -inf."""
    inf = np.inf
    x_value = np.array([[-inf, -inf, -inf], [-inf, 0.0, 1.0], [2.0, -inf, 1000.0], [3.0, 3.0, 3.0]])
    got = _check_stable(name, x_value, -1)
    if name.startswith("logsumexp"):
        assert np.ravel(got)[0] == -inf
    if name == "softmax":
        assert got[1, 0] == 0.0 and got[2, 1] == 0.0


def test_logsumexp_of_int_and_bool_promotes_like_exp():
    """Integers and bools are computed in the dtype np.exp gives them (float64, float16 for bool)."""
    with checks_in_one_program():
        for dtype in ("int32", "int64", "int8", "bool"):
            x_value = make((2, 3), dtype, rng=np.random.default_rng(8))
            for name in STABLE:
                _check_stable(name, x_value, -1)


def test_softmax_default_axis_is_last():
    x_value = make((3, 4), "float64", "strided", np.random.default_rng(9))
    x = declare("x", x_value)
    check(ex.softmax(x), {x: x_value}, ref_softmax(x_value, -1))
    check(ex.log_softmax(x), {x: x_value}, ref_log_softmax(x_value, -1))

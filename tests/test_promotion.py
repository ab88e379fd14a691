"""Dtype promotion against NumPy 2 (NEP 50).

For every pair of supported dtypes, a set of binary ops must give, when the
graph is built, the dtype NumPy gives for arrays of those dtypes, and the
compiled function must return arrays of that dtype holding NumPy's values.
Python scalars are *weak* (they take the tensor's dtype when their kind fits,
and an out-of-range int is an OverflowError when the graph is built), and so
are the lengths in ``x.shape``. Unary float functions, reductions and
``astype`` follow NumPy too.
"""

import itertools
import warnings

import numpy as np
import pytest

import exprc as ex
from exprc.dtypes import SUPPORTED

PAIRS = list(itertools.product(SUPPORTED, SUPPORTED))

#: exprc function name -> NumPy function (the oracle).
BINARY = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "true_divide": np.true_divide,
    "floor_divide": np.floor_divide,
    "mod": np.mod,
    "power": np.power,
    "maximum": np.maximum,
    "less": np.less,
    "equal": np.equal,
    "bitwise_and": np.bitwise_and,
    "logical_and": np.logical_and,
}


def _data(dtype, values):
    return np.asarray(values).astype(dtype)


# Values valid for every op on every dtype: no division by zero, small powers.
LEFT = [0, 1, 2, 3]
RIGHT = [1, 1, 2, 3]


def numpy_outcome(fn, *args):
    """What NumPy does: ``("ok", result)`` or ``("error", exception type)``."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", np.asarray(fn(*args))
    except (TypeError, OverflowError, ValueError) as err:
        return "error", type(err)


def _expected_error(err_type):
    """The exception exprc raises where NumPy raises ``err_type``: NumPy's UFuncTypeError
    is a TypeError; integers to negative integer powers are a ValueError in both."""
    for base in (OverflowError, TypeError, ValueError):
        if issubclass(err_type, base):
            return base
    return err_type


def run(inputs, output, *values):
    """The value of ``output``, by the NumPy reference back end: promotion is decided when the
    graph is built, the same for every back end (the op tests check the C back end's values
    and dtypes against NumPy for every dtype)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ex.function(inputs, output, backend="numpy")(*values)


# --- tensor op tensor, every pair of dtypes ----------------------------------------


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("a,b", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_binary_op_dtype_matches_numpy(name, a, b):
    fn = BINARY[name]
    x = ex.tensor("x", dtype=a, shape=(None,))
    y = ex.tensor("y", dtype=b, shape=(None,))
    xv, yv = _data(a, LEFT), _data(b, RIGHT)
    status, expected = numpy_outcome(fn, xv, yv)
    if status == "error":
        # NumPy refuses (e.g. bitwise_and of floats): exprc refuses when the graph is built.
        with pytest.raises(_expected_error(expected)):
            getattr(ex, name)(x, y)
        return
    z = getattr(ex, name)(x, y)
    assert z.dtype == expected.dtype.name, f"{name}({a}, {b}) built as {z.dtype}, NumPy gives {expected.dtype}"
    got = run([x, y], z, xv, yv)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_op_of_every_dtype_pair_in_one_c_program(name):
    """The C back end computes every pair NumPy accepts with NumPy's dtype and values: one
    program per op, all pairs as its outputs (one compile, not 144)."""
    fn = BINARY[name]
    inputs = {
        d: (ex.tensor(f"x_{d}", dtype=d, shape=(None,)), ex.tensor(f"y_{d}", dtype=d, shape=(None,))) for d in SUPPORTED
    }
    outputs, expected = [], []
    for a, b in PAIRS:
        status, value = numpy_outcome(fn, _data(a, LEFT), _data(b, RIGHT))
        if status == "ok":
            outputs.append(getattr(ex, name)(inputs[a][0], inputs[b][1]))
            expected.append(value)
    symbols = [v for pair in inputs.values() for v in pair]
    values = [_data(d, values) for d in SUPPORTED for values in (LEFT, RIGHT)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ex.function(symbols, outputs, backend="c")(*values)
    for out, g, e in zip(outputs, got, expected):
        assert g.dtype == e.dtype, f"{out}: {g.dtype}, NumPy gives {e.dtype}"
        np.testing.assert_array_equal(g, e, err_msg=str(out))


@pytest.mark.parametrize(
    "build,fn",
    [
        (lambda x, y: x + y, np.add),
        (lambda x, y: x - y, np.subtract),
        (lambda x, y: x * y, np.multiply),
        (lambda x, y: x / y, np.true_divide),
        (lambda x, y: x // y, np.floor_divide),
        (lambda x, y: x % y, np.mod),
        (lambda x, y: x**y, np.power),
        (lambda x, y: x < y, np.less),
        (lambda x, y: x >= y, np.greater_equal),
    ],
    ids=["+", "-", "*", "/", "//", "%", "**", "<", ">="],
)
@pytest.mark.parametrize(
    "a,b",
    [
        ("int8", "uint8"),
        ("int32", "float32"),
        ("uint64", "int64"),
        ("bool", "float16"),
        ("float16", "int16"),
        ("uint32", "float32"),
    ],
)
def test_operators_promote_like_numpy(build, fn, a, b):
    x = ex.tensor("x", dtype=a, shape=(None,))
    y = ex.tensor("y", dtype=b, shape=(None,))
    xv, yv = _data(a, LEFT), _data(b, RIGHT)
    _, expected = numpy_outcome(fn, xv, yv)
    z = build(x, y)
    assert z.dtype == expected.dtype.name
    assert run([x, y], z, xv, yv).dtype == expected.dtype


def test_bitwise_operators_on_floats_fail_when_built():
    with pytest.raises(TypeError, match="bitwise_and"):
        ex.fvector("f") & ex.ivector("i")


# --- Python scalars are weak (NEP 50) ----------------------------------------------

SCALARS = [
    True,
    False,
    0,
    1,
    -1,
    2,
    127,
    128,
    -128,
    -129,
    255,
    256,
    300,
    40000,
    70000,
    2**31,
    2**32,
    2**63 - 1,
    2**63,
    -(2**63),
    0.5,
    1.5,
    -2.5,
    1e10,
    1e300,
]
SCALAR_OPS = ["add", "subtract", "multiply", "true_divide", "power", "maximum", "less", "bitwise_and"]


@pytest.mark.parametrize("name", SCALAR_OPS)
@pytest.mark.parametrize("dtype", SUPPORTED)
def test_python_scalar_promotion_matches_numpy(dtype, name):
    """Every Python scalar, on either side: the same dtype as NumPy, or the same error."""
    fn = BINARY[name]
    x = ex.tensor("x", dtype=dtype, shape=(None,))
    xv = _data(dtype, [1, 2])
    mismatches = []
    for scalar, left in itertools.product(SCALARS, (True, False)):
        args = (xv, scalar) if left else (scalar, xv)
        status, expected = numpy_outcome(fn, *args)
        sym = (x, scalar) if left else (scalar, x)
        try:
            z = getattr(ex, name)(*sym)
        except (TypeError, OverflowError, ValueError) as err:
            if status != "error" or not isinstance(err, _expected_error(expected)):
                mismatches.append(f"{name}{sym}: exprc raised {type(err).__name__}, NumPy gave {expected!r}")
            continue
        if status == "error":
            mismatches.append(f"{name}{sym}: built as {z.dtype}, NumPy raised {expected.__name__}")
        elif z.dtype != expected.dtype.name:
            mismatches.append(f"{name}{sym}: built as {z.dtype}, NumPy gives {expected.dtype}")
        else:
            got = run([x], z, xv)
            if got.dtype != expected.dtype:
                mismatches.append(f"{name}{sym}: computed {got.dtype}, NumPy gives {expected.dtype}")
            elif not np.array_equal(got, expected, equal_nan=expected.dtype.kind == "f"):
                mismatches.append(f"{name}{sym}: computed {got}, NumPy gives {expected}")
    assert not mismatches, "\n".join(mismatches)


def test_float32_times_python_float_stays_float32():
    x = ex.fvector("x")
    y = x * 2.0
    assert y.dtype == "float32"
    assert (2.0 * x).dtype == "float32"
    got = y.eval({x: np.array([1.5, -2.0], dtype=np.float32)})
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array([3.0, -4.0], dtype=np.float32))


@pytest.mark.parametrize(
    "build", [lambda x: x + 300, lambda x: 300 + x, lambda x: x * -129, lambda x: ex.maximum(x, 300)]
)
def test_int8_with_out_of_range_python_int_overflows_when_built(build):
    x = ex.tensor("x", dtype="int8", shape=(None,))
    with pytest.raises(OverflowError) as info:
        build(x)
    message = str(info.value)
    assert "int8" in message and ("300" in message or "-129" in message)


def test_int8_with_python_int_in_range_stays_int8():
    x = ex.tensor("x", dtype="int8", shape=(None,))
    y = x + 127
    assert y.dtype == "int8"
    got = y.eval({x: np.array([0, -1], dtype=np.int8)})
    np.testing.assert_array_equal(got, np.array([0, -1], dtype=np.int8) + 127)
    assert got.dtype == np.int8


def test_unsigned_minus_python_int():
    u = ex.tensor("u", dtype="uint8", shape=(None,))
    assert (u - 1).dtype == "uint8"
    with pytest.raises(OverflowError):
        u + (-1)  # as np.uint8 array + -1


def test_int32_plus_python_float_is_float64():
    i = ex.ivector("i")
    y = i + 1.5
    assert y.dtype == "float64"
    got = y.eval({i: np.array([1, 2], dtype=np.int32)})
    np.testing.assert_array_equal(got, np.array([1, 2], dtype=np.int32) + 1.5)
    assert got.dtype == np.float64


def test_bool_plus_python_int_is_int64():
    b = ex.bvector("b")
    y = b + 1
    assert y.dtype == "int64"
    got = y.eval({b: np.array([True, False])})
    np.testing.assert_array_equal(got, np.array([True, False]) + 1)
    assert got.dtype == np.int64
    assert (b + True).dtype == "bool"
    assert (b * 1.0).dtype == "float64"


def test_python_int_too_large_for_any_int_dtype_overflows():
    with pytest.raises(OverflowError):
        ex.lvector("l") + 2**64
    with pytest.raises(OverflowError):
        np.ones(2, dtype=np.int64) + 2**64


def test_constant_with_explicit_dtype_is_strong():
    x = ex.fvector("x")
    assert (x * ex.constant(2.0)).dtype == "float32"  # weak, like the Python float
    assert (x * ex.constant(2.0, dtype="float64")).dtype == "float64"
    with pytest.raises(OverflowError):
        ex.constant(300, dtype="int8")  # as np.asarray(300, dtype=np.int8)


@pytest.mark.parametrize(
    "scalar,dtype",
    [
        (np.float64(2.0), "float32"),
        (np.float32(2.0), "float64"),
        (np.float32(2.0), "float16"),
        (np.int16(1), "int8"),
        (np.int64(1), "float32"),
        (np.uint8(1), "int8"),
        (np.bool_(True), "int16"),
    ],
    ids=repr,
)
def test_numpy_scalars_are_strong(scalar, dtype):
    x = ex.tensor("x", dtype=dtype, shape=(None,))
    xv = _data(dtype, [1, 2])
    expected = np.asarray(xv * scalar)
    z = x * scalar
    assert z.dtype == expected.dtype.name
    got = z.eval({x: xv})
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert (scalar * x).dtype == expected.dtype.name


# --- the lengths in x.shape are weak, like Python ints --------------------------


def test_float32_divided_by_a_length_stays_float32():
    x = ex.fvector("x")
    y = x / x.shape[0]
    assert y.dtype == "float32"
    xv = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    got = y.eval({x: xv})
    expected = xv / len(xv)  # NumPy: a Python int is weak
    assert got.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_static_length_is_weak_too():
    x = ex.tensor("x", dtype="float32", shape=(4,))
    assert (x / x.shape[0]).dtype == "float32"
    h = ex.tensor("h", dtype="float16", shape=(None, 3))
    assert (h * h.shape[1]).dtype == "float16"
    assert (h + h.size).dtype == "float16"


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "float16", "float32", "bool"])
def test_length_promotes_like_a_python_int(dtype):
    x = ex.tensor("x", dtype=dtype, shape=(None,))
    xv = _data(dtype, [1, 0, 1])
    for build, fn in [
        (lambda v, n: v * n, np.multiply),
        (lambda v, n: v / n, np.true_divide),
        (lambda v, n: v + n * 0.5, lambda v, n: v + n * 0.5),
    ]:
        expected = np.asarray(fn(xv, len(xv)))
        z = build(x, x.shape[0])
        assert z.dtype == expected.dtype.name, (dtype, z)
        got = z.eval({x: xv})
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_length_types():
    x = ex.matrix("x")
    n = x.shape[0]
    assert n.dtype == "int64" and n.type.weak and n.ndim == 0
    assert (n / x.shape[1]).type.weak  # int / int is a Python float
    assert (n / x.shape[1]).dtype == "float64"
    assert (ex.fvector("v") * (n / x.shape[1])).dtype == "float32"
    assert not (ex.ivector("i") + n).type.weak  # a strong input makes the result strong
    assert (ex.ivector("i") + n).dtype == "int32"


# --- unary float functions, reductions, astype ----------------------------------------

FLOAT_FUNCTIONS = ["exp", "sqrt", "log", "log1p", "expm1", "sin", "cos", "tanh", "arctan", "arcsinh", "exp2", "log2"]
NUMPY_LACKS = ["sigmoid", "softplus", "erf", "erfc", "gammaln"]  # dtype as np.exp gives


@pytest.mark.parametrize("name", FLOAT_FUNCTIONS + NUMPY_LACKS)
@pytest.mark.parametrize("dtype", SUPPORTED)
def test_unary_float_function_dtype_matches_numpy(name, dtype):
    fn = getattr(np, name, np.exp)
    x = ex.tensor("x", dtype=dtype, shape=(None,))
    xv = _data(dtype, [1, 2])
    with np.errstate(all="ignore"):
        expected_dtype = np.asarray(fn(xv)).dtype
    z = getattr(ex, name)(x)
    assert z.dtype == expected_dtype.name
    got = run([x], z, xv)
    assert got.dtype == expected_dtype
    if name in FLOAT_FUNCTIONS:
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(got, fn(xv))


def test_exp_and_sqrt_of_small_ints_are_float16_like_numpy():
    for small in ("int8", "uint8", "bool"):
        x = ex.tensor("x", dtype=small, shape=(None,))
        assert ex.exp(x).dtype == ex.sqrt(x).dtype == "float16"
        assert np.exp(np.ones(1, dtype=small)).dtype == np.float16
    for wide in ("int32", "int64", "uint32", "uint64"):
        x = ex.tensor("x", dtype=wide, shape=(None,))
        assert ex.exp(x).dtype == ex.sqrt(x).dtype == "float64"
    assert ex.exp(ex.tensor("x", dtype="int16", shape=())).dtype == "float32"
    xv = np.array([1, 4, 9], dtype=np.int8)
    x = ex.tensor("x", dtype="int8", shape=(None,))
    got = ex.sqrt(x).eval({x: xv})
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, np.sqrt(xv))


@pytest.mark.parametrize(
    "name", ["negative", "abs", "square", "floor", "ceil", "rint", "isnan", "logical_not", "invert"]
)
@pytest.mark.parametrize("dtype", SUPPORTED)
def test_other_unary_dtypes_match_numpy(name, dtype):
    x = ex.tensor("x", dtype=dtype, shape=(None,))
    xv = _data(dtype, [1, 0])
    status, expected = numpy_outcome(getattr(np, name), xv)
    if status == "error":
        with pytest.raises(TypeError):
            getattr(ex, name)(x)
        return
    z = getattr(ex, name)(x)
    assert z.dtype == expected.dtype.name
    got = run([x], z, xv)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


REDUCTIONS = {
    "sum": np.sum,
    "prod": np.prod,
    "mean": np.mean,
    "var": np.var,
    "std": np.std,
    "max": np.max,
    "min": np.min,
    "argmax": np.argmax,
    "argmin": np.argmin,
    "all": np.all,
    "any": np.any,
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@pytest.mark.parametrize("dtype", SUPPORTED)
def test_reduction_dtype_matches_numpy(name, dtype):
    fn = REDUCTIONS[name]
    x = ex.tensor("x", dtype=dtype, shape=(None, None))
    xv = _data(dtype, [[1, 2, 0], [3, 1, 1]])
    for axis in (None, 0, 1):
        expected = np.asarray(fn(xv, axis=axis))
        z = getattr(ex, name)(x, axis=axis)
        assert z.dtype == expected.dtype.name, f"{name}({dtype}, axis={axis}) built as {z.dtype}"
        got = run([x], z, xv)
        assert got.dtype == expected.dtype
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=1e-3 if expected.dtype == np.float16 else 1e-6)
        else:
            np.testing.assert_array_equal(got, expected)


def test_sum_of_small_ints_accumulates_in_64_bits():
    i = ex.ivector("i")
    assert i.sum().dtype == "int64"
    assert ex.sum(ex.bvector("b")).dtype == "int64"
    assert ex.sum(ex.tensor("u", dtype="uint8", shape=(None,))).dtype == "uint64"
    assert ex.mean(i).dtype == "float64"
    assert ex.mean(ex.tensor("h", dtype="float16", shape=(None,))).dtype == "float16"
    big = np.full(3, 2**30, dtype=np.int32)  # the sum overflows int32 but not int64
    got = i.sum().eval({i: big})
    assert got.dtype == np.int64 and got == np.sum(big) == 3 * 2**30


@pytest.mark.parametrize("target", SUPPORTED)
@pytest.mark.parametrize("name", ["sum", "prod"])
def test_reduction_with_dtype_argument(name, target):
    x = ex.tensor("x", dtype="int16", shape=(None,))
    xv = np.array([1, 2, 3], dtype=np.int16)
    expected = getattr(np, name)(xv, dtype=target)
    z = getattr(ex, name)(x, dtype=target)
    assert z.dtype == np.dtype(target).name
    got = z.eval({x: xv})
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("source,target", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_astype_matches_numpy(source, target):
    x = ex.tensor("x", dtype=source, shape=(None,))
    xv = _data(source, [0, 1, 2, 100])
    y = x.astype(target)
    assert y.dtype == target
    assert ex.astype(x, np.dtype(target)).dtype == target
    expected = xv.astype(target)
    got = run([x], y, xv)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_astype_to_the_same_dtype_is_the_same_variable():
    x = ex.fvector("x")
    assert x.astype("float32") is x
    assert x.astype(np.float32) is x


def test_astype_to_an_unsupported_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="complex64"):
        ex.fvector("x").astype("complex64")


@pytest.mark.parametrize("dtype", SUPPORTED)
def test_inputs_keep_their_dtype(dtype):
    x = ex.tensor("x", dtype=dtype, shape=(None,))
    assert x.dtype == dtype
    xv = _data(dtype, [1, 0])
    got = ex.function([x], x)(xv)
    assert got.dtype == np.dtype(dtype)

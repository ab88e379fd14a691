"""Calling a compiled function: binding arguments, checking and converting them,
and what comes back.

Every error a caller can provoke must name the input it is about and say both
what was expected and what came. NumPy is the oracle for values.
"""

import numpy as np
import pytest

import exprc as ex


def message(excinfo):
    """The exception's text with its notes, as a traceback would show it."""
    err = excinfo.value
    return "\n".join([str(err), *getattr(err, "__notes__", [])])


@pytest.fixture
def f_xy():
    x, y = ex.fvector("x"), ex.vector("y")
    return ex.function([x, y], x * 2 + y)


# --- binding arguments --------------------------------------------------------------


def test_positional_and_keyword_arguments(f_xy):
    xv, yv = np.array([1.0, 2.0], dtype=np.float32), np.array([10.0, 20.0])
    expected = xv * 2 + yv
    for got in (f_xy(xv, yv), f_xy(xv, y=yv), f_xy(x=xv, y=yv), f_xy(y=yv, x=xv)):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_too_many_positional_arguments(f_xy):
    with pytest.raises(TypeError) as info:
        f_xy(np.ones(2, np.float32), np.ones(2), np.ones(2))
    text = message(info)
    assert "2 inputs" in text and "x" in text and "y" in text  # expected
    assert "3 positional" in text  # came


def test_unknown_keyword(f_xy):
    with pytest.raises(TypeError) as info:
        f_xy(np.ones(2, np.float32), z=np.ones(2))
    text = message(info)
    assert "'z'" in text  # came
    assert "'x'" in text and "'y'" in text  # expected


def test_keyword_given_twice(f_xy):
    with pytest.raises(TypeError) as info:
        f_xy(np.ones(2, np.float32), np.ones(2), x=np.ones(2, np.float32))
    text = message(info)
    assert "'x'" in text and "twice" in text and "position" in text and "keyword" in text


@pytest.mark.parametrize(
    "call,missing,kind",
    [
        (lambda f: f(np.ones(2, np.float32)), "'y'", "float64"),
        (lambda f: f(y=np.ones(2)), "'x'", "float32"),
    ],
    ids=["positional", "keyword"],
)
def test_missing_argument(f_xy, call, missing, kind):
    with pytest.raises(TypeError) as info:
        call(f_xy)
    text = message(info)
    assert "missing" in text and missing in text
    assert kind in text and "1-d" in text  # what the missing input expects
    assert "2 inputs" in text and "got 1" in text


def test_unnamed_inputs_are_positional_only():
    a = ex.vector()
    f = ex.function([a], a + 1)
    np.testing.assert_array_equal(f(np.array([1.0])), np.array([2.0]))
    with pytest.raises(TypeError) as info:
        f()
    assert "missing" in message(info) and "float64" in message(info)
    with pytest.raises(TypeError) as info:
        f(a=np.ones(1))
    assert "'a'" in message(info)


def test_a_function_without_inputs():
    f = ex.function([], ex.constant(np.arange(3.0)) * 2)
    np.testing.assert_array_equal(f(), np.arange(3.0) * 2)
    with pytest.raises(TypeError) as info:
        f(1.0)
    assert "0 inputs" in message(info) and "1 positional" in message(info)


# --- dtypes ---------------------------------------------------------------------


def test_float64_data_for_float32_input_is_a_type_error():
    x = ex.fvector("x")
    f = ex.function([x], x + 1)
    with pytest.raises(TypeError) as info:
        f(np.array([0.1, 0.2]))
    text = message(info)
    assert "'x'" in text and "float32" in text and "float64" in text
    assert "allow_input_downcast" in text


def test_allow_input_downcast():
    x = ex.fvector("x")
    f = ex.function([x], x + 1, allow_input_downcast=True)
    data = np.array([0.1, 0.2])
    got = f(data)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, data.astype(np.float32) + np.float32(1))


@pytest.mark.parametrize(
    "data_dtype,input_dtype",
    [
        ("int32", "float64"),
        ("int8", "int32"),
        ("uint8", "int16"),
        ("bool", "int32"),
        ("bool", "float32"),
        ("float16", "float32"),
        ("float32", "float64"),
        ("int16", "float32"),
        ("uint32", "int64"),
    ],
)
def test_safe_upcasts_are_accepted(data_dtype, input_dtype):
    x = ex.tensor("x", dtype=input_dtype, shape=(None,))
    f = ex.function([x], x * 2)
    data = np.array([0, 1, 3]).astype(data_dtype)
    got = f(data)
    expected = data.astype(input_dtype) * np.asarray(2).astype(input_dtype)
    assert got.dtype == np.dtype(input_dtype)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "data_dtype,input_dtype",
    [
        ("float64", "float32"),
        ("int64", "int32"),
        ("int64", "float32"),
        ("uint64", "int64"),
        ("int32", "bool"),
        ("float32", "int64"),
        ("uint32", "int32"),
        ("int8", "uint8"),
        ("float32", "float16"),
    ],
)
def test_lossy_conversions_are_type_errors(data_dtype, input_dtype):
    x = ex.tensor("x", dtype=input_dtype, shape=(None,))
    f = ex.function([x], x)
    assert not np.can_cast(data_dtype, input_dtype, "safe")
    with pytest.raises(TypeError) as info:
        f(np.zeros(2, dtype=data_dtype))
    text = message(info)
    assert "'x'" in text and input_dtype in text and data_dtype in text


def test_list_of_ints_for_an_int32_input():
    i = ex.ivector("i")
    got = ex.function([i], i * 2)([1, 2])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.array([2, 4], dtype=np.int32))


def test_python_float_for_a_float32_input():
    s = ex.fscalar("s")
    got = ex.function([s], s * 2)(0.5)
    assert got.dtype == np.float32 and got.shape == ()
    assert got == np.float32(1.0)
    v = ex.fvector("v")
    got = ex.function([v], v)([0.5, 1, True])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array([0.5, 1.0, 1.0], dtype=np.float32))


def test_python_float_for_an_int_input_is_a_type_error():
    i = ex.iscalar("i")
    f = ex.function([i], i + 1)
    with pytest.raises(TypeError) as info:
        f(1.5)
    text = message(info)
    assert "'i'" in text and "int32" in text and "1.5" in text and "float" in text
    iv = ex.ivector("iv")
    with pytest.raises(TypeError) as info:
        ex.function([iv], iv)([1, 2.5])
    assert "'iv'" in message(info) and "int32" in message(info) and "float64" in message(info)


def test_python_int_out_of_range_is_an_overflow_error():
    c = ex.tensor("c", dtype="int8", shape=())
    f = ex.function([c], c + 1)
    with pytest.raises(OverflowError) as info:
        f(300)
    text = message(info)
    assert "'c'" in text and "int8" in text and "300" in text and "127" in text
    assert f(127 - 1) == np.int8(127)
    u = ex.tensor("u", dtype="uint8", shape=(None,))
    with pytest.raises(OverflowError) as info:
        ex.function([u], u)([1, -1])
    assert "'u'" in message(info) and "uint8" in message(info) and "-1" in message(info)


def test_python_int_for_a_bool_input_is_a_type_error():
    b = ex.bvector("b")
    f = ex.function([b], b)
    np.testing.assert_array_equal(f([True, False]), np.array([True, False]))
    with pytest.raises(TypeError) as info:
        f([1, 0])
    assert "'b'" in message(info) and "bool" in message(info) and "int64" in message(info)


def test_numpy_scalars_are_arrays_not_python_scalars():
    s = ex.fscalar("s")
    f = ex.function([s], s)
    assert f(np.float32(0.5)).dtype == np.float32
    with pytest.raises(TypeError) as info:
        f(np.float64(0.5))  # a float64 value, as a 0-d float64 array would be
    assert "'s'" in message(info) and "float32" in message(info) and "float64" in message(info)


@pytest.mark.parametrize(
    "value,came",
    [
        ("abc", "str"),
        (None, "None"),
        (np.array(["a", "b"]), "<U1"),
        (np.ones(2, complex), "complex128"),
        ([[1.0], [2.0, 3.0]], "list"),
        ({"a": 1}, "dict"),
    ],
    ids=["str", "None", "str-array", "complex", "ragged", "dict"],
)
def test_non_numeric_data_is_a_type_error(value, came):
    v = ex.vector("v")
    f = ex.function([v], v)
    with pytest.raises(TypeError) as info:
        f(value)
    text = message(info)
    assert "'v'" in text and "float64" in text and "1-d" in text and came in text


def test_symbolic_value_is_a_type_error():
    v = ex.vector("v")
    f = ex.function([v], v)
    with pytest.raises(TypeError) as info:
        f(ex.vector("w"))
    text = message(info)
    assert "'v'" in text and "symbolic" in text and "w" in text and "givens" in text


# --- number of dimensions and static shape ------------------------------------------------


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), ()])
def test_wrong_ndim_is_a_type_error(shape):
    m = ex.matrix("m")
    f = ex.function([m], m.sum())
    with pytest.raises(TypeError) as info:
        f(np.ones(shape))
    text = message(info)
    assert "'m'" in text and "2-d" in text and f"{len(shape)}-d" in text and str(shape) in text


def test_scalar_input_given_a_one_element_vector():
    s = ex.scalar("s")
    with pytest.raises(TypeError) as info:
        ex.function([s], s)(np.ones(1))
    assert "'s'" in message(info) and "0-d" in message(info) and "1-d" in message(info)


def test_static_shape_mismatch_is_a_shape_error():
    t = ex.tensor("t", shape=(None, 3))
    f = ex.function([t], t * 2)
    with pytest.raises(ex.ShapeError) as info:
        f(np.ones((2, 4)))
    text = message(info)
    assert "'t'" in text and "(?, 3)" in text and "(2, 4)" in text
    assert isinstance(info.value, ValueError)
    data = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(data), data * 2)
    np.testing.assert_array_equal(f(np.ones((0, 3))), np.ones((0, 3)))


# --- building a function ------------------------------------------------------------


def test_output_depending_on_an_undeclared_input():
    x, y = ex.vector("x"), ex.vector("y")
    with pytest.raises(ex.MissingInputError) as info:
        ex.function([x], x + y)
    text = message(info)
    assert "y" in text and "'x'" in text and "givens" in text
    with pytest.raises(ex.MissingInputError):
        ex.function([], ex.exp(x))


@pytest.mark.parametrize(
    "inputs,error",
    [
        (lambda x: x, TypeError),  # not a list
        (lambda x: [x * 2], TypeError),  # a computed expression
        (lambda x: [ex.constant(1.0)], TypeError),
        (lambda x: [x, x], ValueError),
        (lambda x: [np.ones(2)], TypeError),
    ],
    ids=["not-a-list", "expression", "constant", "twice", "data"],
)
def test_bad_input_lists(inputs, error):
    x = ex.vector("x")
    with pytest.raises(error):
        ex.function(inputs(x), x)


def test_givens_substitutes_an_expression():
    v, s = ex.vector("v"), ex.scalar("s")
    f = ex.function([v], v * s, givens={s: v.sum()})
    data = np.array([1.0, 2.0, 4.0])
    np.testing.assert_array_equal(f(data), data * data.sum())
    g = ex.function([v], v * s, givens=[(s, 2.0)])
    np.testing.assert_array_equal(g(data), data * 2.0)
    # The givens replace a declared input too.
    w = ex.vector("w")
    h = ex.function([w], v + 1, givens={v: w * 3})
    np.testing.assert_array_equal(h(data), data * 3 + 1)


def test_givens_of_another_type_is_a_type_error():
    v, s = ex.vector("v"), ex.scalar("s")
    with pytest.raises(TypeError) as info:
        ex.function([v], v * s, givens={s: ex.fscalar("q")})
    text = message(info)
    assert "s" in text and "q" in text and "float64" in text and "float32" in text


def test_outputs_single_list_tuple_and_empty():
    v = ex.vector("v")
    data = np.array([1.0, 2.0])
    single = ex.function([v], v * 2)(data)
    assert isinstance(single, np.ndarray)
    np.testing.assert_array_equal(single, data * 2)
    one = ex.function([v], [v * 2])(data)
    assert isinstance(one, list) and len(one) == 1
    np.testing.assert_array_equal(one[0], data * 2)
    two = ex.function([v], (v * 2, v.sum()))(data)
    assert isinstance(two, list) and len(two) == 2
    np.testing.assert_array_equal(two[1], data.sum())
    assert ex.function([v], [])(data) == []


def test_outputs_are_arrays_even_for_python_values():
    v = ex.vector("v")
    n = ex.function([v], v.shape[0])(np.ones(3))
    assert isinstance(n, np.ndarray) and n.dtype == np.int64 and n == 3
    c = ex.function([v], 2.0)(np.ones(3))
    assert isinstance(c, np.ndarray) and c.dtype == np.float64 and c == 2.0


# --- what comes back --------------------------------------------------------------


def test_returned_arrays_are_writeable_and_do_not_alias_constants():
    v = ex.vector("v")
    const = ex.constant(np.arange(3.0))
    f = ex.function([v], [const, const.T, ex.zeros((2, 3)), ex.broadcast_to(v, (2, 3)), v, v[::-1], v + const])
    data = np.array([1.0, 2.0, 3.0])
    results = f(data)
    for r in results:
        assert isinstance(r, np.ndarray)
        assert r.flags.writeable
        assert not np.shares_memory(r, const.value)
        assert not np.shares_memory(r, data)
    for r in results:
        r[...] = -7
    np.testing.assert_array_equal(const.value, np.arange(3.0))
    np.testing.assert_array_equal(data, [1.0, 2.0, 3.0])
    again = f(data)
    np.testing.assert_array_equal(again[0], np.arange(3.0))
    np.testing.assert_array_equal(again[2], np.zeros((2, 3)))


def test_an_output_that_is_an_input_is_a_copy():
    v = ex.vector("v")
    data = np.array([1.0, 2.0])
    got = ex.function([v], v)(data)
    assert got is not data and not np.shares_memory(got, data)
    got[0] = 100.0
    assert data[0] == 1.0


def test_the_same_output_twice_gives_two_arrays():
    v = ex.vector("v")
    a, b = ex.function([v], [v * 2, v * 2])(np.array([1.0, 2.0]))
    assert a is not b and not np.shares_memory(a, b)
    a[0] = 0.0
    np.testing.assert_array_equal(b, [2.0, 4.0])


@pytest.mark.parametrize("shape_x,shape_y", [((2, 3), (1, 3)), ((2, 3), (2, 1)), ((1, 1), (4, 5)), ((3, 1), (1, 4))])
def test_unknown_length_that_is_one_broadcasts_like_numpy(shape_x, shape_y):
    x, y = ex.matrix("x"), ex.matrix("y")
    z = x * 10 + y
    assert z.type.shape == (None, None)
    rng = np.random.default_rng(0)
    xv, yv = rng.standard_normal(shape_x), rng.standard_normal(shape_y)
    got = ex.function([x, y], z)(xv, yv)
    expected = xv * 10 + yv
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_unknown_length_one_broadcasts_against_a_static_length():
    t = ex.tensor("t", shape=(None, 3))
    v = ex.vector("v")
    z = t - v
    assert z.type.shape == (None, 3)
    tv = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(ex.function([t, v], z)(tv, np.array([5.0])), tv - 5.0)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_run_time_shape_mismatch_names_the_node(backend):
    v, w = ex.vector("v"), ex.vector("w")
    f = ex.function([v, w], (ex.exp(v) * w).sum(), backend=backend)
    with pytest.raises(ValueError) as info:
        f(np.ones(3), np.ones(4))
    if backend == "numpy":  # NumPy's own error, with a note naming the node
        text = "\n".join(getattr(info.value, "__notes__", []))
        assert "exp(v) * w" in text and "multiply" in text
    else:  # the C run time's: the fused expression it was computing
        text = str(info.value)
        assert "computing (exp(v) * w).sum(): shapes do not broadcast" in text
    assert "(3,)" in text and "(4,)" in text  # the shapes that met there
    with pytest.raises(ValueError):
        np.exp(np.ones(3)) * np.ones(4)  # NumPy refuses too


def test_eval_checks_its_inputs_too():
    x = ex.fvector("x")
    np.testing.assert_array_equal((x * 2).eval({x: [1.0, 2.0]}), np.array([2.0, 4.0], dtype=np.float32))
    with pytest.raises(TypeError) as info:
        (x * 2).eval({x: np.array([1.0, 2.0])})
    assert "'x'" in message(info) and "float32" in message(info) and "float64" in message(info)
    with pytest.raises(TypeError):
        (x * 2).eval([1.0])


def test_repeated_calls_are_independent():
    v = ex.vector("v")
    f = ex.function([v], v.sum() + v)
    first, second = np.array([1.0, 2.0]), np.array([10.0, 20.0, 30.0])
    a = f(first)
    b = f(second)
    np.testing.assert_array_equal(a, first.sum() + first)
    np.testing.assert_array_equal(b, second.sum() + second)


def test_inputs_sharing_a_name_are_passed_by_position():
    a, b = ex.vector("v"), ex.vector("v")
    f = ex.function([a, b], a - b, backend="numpy")
    np.testing.assert_array_equal(f([3.0], [1.0]), np.array([2.0]))
    with pytest.raises(TypeError, match="several inputs named 'v'; pass them by position"):
        f([3.0], v=[1.0])


def test_missing_input_that_shares_a_name_with_an_input_says_so():
    declared, other = ex.vector("w"), ex.vector("w")
    with pytest.raises(ex.MissingInputError, match="also named 'w', but it is another variable"):
        ex.function([declared], other * 2, backend="numpy")


def test_item_assignment_points_to_set_subtensor():
    x = ex.vector("x")
    with pytest.raises(TypeError, match=r"immutable.*ex\.set_subtensor\(x\[index\], value\)"):
        x[0] = 1.0


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_arrays_taken_as_they_are_still_meet_every_check(backend):
    """Arrays of exactly the declared type skip conversion; anything else still gets converted or refused."""
    x = ex.tensor("x", dtype="float64", shape=(None, 3))
    f = ex.function([x], x * 2.0, backend=backend)
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(a), a * 2.0)
    np.testing.assert_array_equal(f(a.T.copy().T), a * 2.0)
    np.testing.assert_array_equal(f(a.astype(np.int32)), a * 2.0)  # safe upcast, converted
    with pytest.raises(ex.ShapeError, match="'x'.*axis 1 must have length 3"):
        f(np.zeros((3, 2)))
    g = ex.function([v := ex.fvector("v")], v + 1, backend=backend)
    with pytest.raises(TypeError, match="'v'.*expected float32 data, got float64"):
        g(np.zeros(3))
    with pytest.raises(TypeError, match="'x'.*2-d"):
        f(np.zeros(3))

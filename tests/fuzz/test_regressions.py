"""Graphs the fuzzer found failing, as it printed them (shrunk), each with what was wrong."""

import numpy as np
import pytest

import exprc as ex
from tests.codegen.cuda_fake import FakeGpu
from tests.test_check import wrong_kernel

from .generate import Case, Input, Node
from .run import check_case, cuda_compile_available


def test_float32_rounding_inside_a_kernel_feeding_a_float64_result():
    # Case 1000189 (seed 1): mode="check" blamed the kernel for coshf's float32 rounding
    # (1 ulp from NumPy's), carried into the float64 arctan2; the step's tolerance is now
    # that of the least precise dtype it computes.
    x2 = ex.tensor("x2", dtype="float32", shape=(None, None))
    x8 = ex.tensor("x8", dtype="float64", shape=(None, None))
    v18 = ex.arctan2(ex.cosh(x2), x8)
    f = ex.function([x2, x8], [v18], backend="c", mode="check")
    x2_value = np.array(
        [[2.484182119369507, 1.331958293914795, -0.29469937086105347, -2.324267625808716]], dtype="float32"
    )
    x8_value = np.array([[-2.012554673918621]], dtype="float64")
    (got,) = f(x2_value, x8_value)
    np.testing.assert_allclose(got, np.arctan2(np.cosh(x2_value), x8_value), rtol=1e-7)


def test_a_sympy_region_that_simplifies_to_one_of_its_leaves():
    # Case 1000214 (seed 1): square(x2) / x2 is x2 to SymPy; the rewrite crashed measuring
    # the new region (AttributeError: 'NoneType' object has no attribute 'inputs').
    x2 = ex.tensor("x2", dtype="float64", shape=(None,))
    v8 = ex.square(x2) / x2
    f = ex.function([x2], [v8], backend="c", mode="check")
    x2_value = np.array([-2.298282383651916], dtype="float64")
    (got,) = f(x2_value)
    np.testing.assert_array_equal(got, x2_value)
    assert got is not x2_value  # the caller owns the result
    assert [str(o) for o in f.outputs] == ["x2"]


def test_sympy_keeps_a_leaf_that_broadcasts_the_result():
    # Case 1000227 (seed 1) crashed as above; once that was fixed, x4 + (x1 - x4) became x1,
    # which has the wrong shape when x4 broadcasts x1 at run time.
    x1 = ex.tensor("x1", dtype="float32", shape=(None, None, None))
    x4 = ex.tensor("x4", dtype="float32", shape=(None, None, None))
    v10 = x4 + ex.subtract(x1, x4)
    f = ex.function([x1, x4], [v10], backend="c", mode="check")
    x1_value = np.array([[[0.07957378029823303]]], dtype="float32")
    x4_value = np.array([[[0.23662236332893372]]], dtype="float32")
    (got,) = f(x1_value, x4_value)
    np.testing.assert_allclose(got, x4_value + (x1_value - x4_value))
    wide = np.ones((2, 3, 1), dtype="float32")
    (got,) = f(x1_value, wide)
    assert got.shape == (2, 3, 1)
    np.testing.assert_allclose(got, wide + (x1_value - wide))
    # with static shapes that already fix the result's, the leaf may go
    s, y = ex.tensor("s", shape=(3,)), ex.tensor("y", shape=(3,))
    assert [str(o) for o in ex.function([s, y], s + (y - s)).outputs] == ["y"]


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int32"])
def test_log_of_sigmoid_of_integers_is_negated_in_floating_point(dtype):
    # found by the fuzzer (case 1006003022): log(sigmoid(x.any(axis=1))) negated a bool
    x = ex.tensor("x", dtype=dtype, shape=(None,))
    values = np.array([0, 1, 3], dtype=dtype) if dtype != "bool" else np.array([True, False, True])
    outputs = [ex.log(ex.sigmoid(x)), 1 - ex.sigmoid(x), 1 / (1 + ex.exp(x))]
    got = ex.function([x], outputs, backend="c")(values)
    expected = ex.function([x], outputs, backend="numpy", rewrites=None)(values)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype  # float16 for bool and uint8, as NumPy's exp gives
        np.testing.assert_allclose(g, e, rtol=2e-3 if e.dtype == np.float16 else 1e-6)


def test_nan_from_a_reduction_cast_to_int64():
    # Case 101000594 (seed 101): GCC folded the NaN of a max that saw a NaN, converted to
    # int64, to 0; NumPy gives the smallest int64 (x86's answer). C leaves the conversion
    # undefined, so the kernels now spell NumPy's out: see exprc.codegen.cfamily.formulas.cast_expression.
    x1 = ex.tensor("x1", dtype="int64", shape=(None, None, None))
    v7 = ex.arcsin(x1).max(axis=(0,), keepdims=True).astype("int64")
    f = ex.function([x1], [v7], backend="c", mode="check")
    x1_value = np.array([[[-3]]], dtype="int64")
    (got,) = f(x1_value)
    np.testing.assert_array_equal(got, np.full((1, 1, 1), np.iinfo(np.int64).min))


def test_one_ulp_inside_a_kernel_fed_to_an_ill_conditioned_node():
    # Case 101000846 (seed 101): the vectorized sinf is one ulp from NumPy's near -1, and
    # arctanh there turns that ulp into 0.2% (-6.8589 against -6.8726): both right, yet
    # mode="check" blamed the kernel. Values inside a kernel may now move by a few ulp.
    x1 = ex.fvector("x1")
    y = ex.arctanh(ex.sin(x1))
    x = np.full(32, 0.3, np.float32)
    x[5] = x[20] = -1.5728793144226074
    (got,) = ex.function([x1], [y], backend="c", mode="check")(x)
    np.testing.assert_allclose(got, np.arctanh(np.sin(x)), rtol=3e-3)


def test_check_still_names_a_kernel_off_by_more_than_a_few_ulp():
    x1 = ex.fvector("x1")
    f = ex.function([x1], ex.arctanh(ex.sin(x1) * np.float32(0.999)), backend="c", mode="check")
    f(np.linspace(-3, 3, 50, dtype=np.float32))  # right: passes
    hook, _ = wrong_kernel(None, "sin", "cos")
    with hook:
        wrong = ex.function([x1], ex.arctanh(ex.sin(x1) * np.float32(0.999)), backend="c", mode="check")
        with pytest.raises(ex.CheckError, match="arctanh"):
            wrong(np.linspace(-3, 3, 50, dtype=np.float32))


def test_gpu_outputs_are_compared_with_the_reference_simplified_alike(monkeypatch):
    # Case 301001056 (seed 301, over the stand-in GPU driver): the gradient of the std of a
    # scalar is 0 - 0 after the default ("fast") rewrites, NaN as written (inf * 0); the GPU
    # run was compared with the graph as written. It is now compared with the reference
    # simplified alike, as mode="check" compares each back end's own program.
    FakeGpu(monkeypatch)
    x0 = Input("x0", "float64", (), (), "contiguous", 3)
    case = Case(
        [x0],
        {
            "v1": Node("{0}.std(axis=None, keepdims=True)", ("x0",)),
            "v7": Node("ex.grad({0}.mean(), {1})", ("v1", "x0")),
        },
        ["v7"],
    )
    assert check_case(case, ("cuda",)) is None


def test_float16_rewrites_are_compared_at_float16_precision():
    # Case 101002144 (seed 101): any() gives bools, whose sigmoid is float16 as in NumPy; the
    # "fast" rewrite of log(sigmoid(.)) into -softplus(-.) differs from the graph as written by
    # one float16 ulp, which the rewrite check compared at float64's 1e-6.
    x0 = Input("x0", "float64", (1, 1, 1), (None, None, None), "contiguous", 5)
    case = Case(
        [x0],
        {
            "v3": Node("{0}.any(axis=-2, keepdims=False)", ("x0",)),
            "v4": Node("ex.sigmoid({0})", ("v3",)),
            "v5": Node("ex.log({0})", ("v4",)),
        },
        ["v5"],
    )
    assert check_case(case) is None


def test_gpu_float16_results_are_compared_at_float16_precision(monkeypatch):
    # Case 301001817 (seed 301, over the stand-in GPU driver): logsumexp of a float16
    # log_softmax is 0 in the reference and one float16 ulp of 1 on the GPU: the outputs'
    # tolerance now scales with the largest value of the output, not the value alone.
    FakeGpu(monkeypatch)
    x0 = Input("x0", "bool", (1,), (None,), "contiguous", 1)
    x1 = Input("x1", "float64", (5, 1, 3), (None, None, None), "transposed", 2)
    case = Case(
        [x0, x1],
        {
            "v2": Node("ex.where({0} > 0, {0}, {1})", ("x1", "x0")),
            "v3": Node("ex.logical_not({0})", ("v2",)),
            "v6": Node("ex.log_softmax({0}, axis=-3)", ("v3",)),
            "v8": Node("ex.logsumexp({0}, axis=-3, keepdims=False)", ("v6",)),
        },
        ["v8"],
    )
    assert check_case(case, ("cuda",)) is None


def test_equality_of_values_a_few_ulp_apart_inside_a_kernel():
    # Case 102003401 (seed 102): arccosh(cosh(cos(x))) == cos(x) is True in the kernel and
    # False in NumPy, whose arccosh lands one ulp away. The bounds of a comparison's operands
    # are now compared as intervals: a corner of them misses the one point where == holds.
    x1 = ex.tensor("x1", dtype="int64", shape=(None, None, None))
    v2 = ex.cos(x1)
    v5 = ex.equal(ex.arccosh(ex.cosh(v2)), v2)
    f = ex.function([x1], [v5], backend="c", mode="check")
    x1_value = np.array([[[-1, -3, 2]], [[-2, 0, -3]]], dtype="int64")
    (got,) = f(x1_value)
    assert got.dtype == bool and got.shape == (2, 1, 3)


def test_check_still_names_a_wrong_comparison():
    x = ex.vector("x")
    hook, _ = wrong_kernel(None, "less", "greater")
    with hook:
        f = ex.function([x], ex.where(ex.sin(x) < 0.5, x, -x), backend="c", mode="check")
        with pytest.raises(ex.CheckError):
            f(np.linspace(-3, 3, 40))


@pytest.mark.skipif(not cuda_compile_available(), reason="NVRTC is not installed")
def test_a_constant_unsigned_operand_compiles_without_warnings():
    # Case 102004725 (seed 102): isinf of integers is the constant 0, and the max over it
    # compares that unsigned 0 with the accumulator: NVRTC warned (#186), which the fuzzer
    # counts as a failure. The comparison is right as written; the warning is silenced.
    x0 = Input("x0", "int64", (1, 1), (None, None), "contiguous", 1)
    case = Case(
        [x0], {"v2": Node("ex.isinf({0})", ("x0",)), "v4": Node("{0}.max(axis=(1,), keepdims=False)", ("v2",))}, ["v4"]
    )
    assert check_case(case, ("cuda-compile",)) is None


def test_a_row_chain_whose_parts_read_inputs_that_do_not_broadcast_together(monkeypatch):
    # Case 11000085 (seed 11, on the emulated GPU): x2 - x2.reshape((2, -1)).all(keepdims=True)
    # chains the reduction of the (2, 2) reshape with the subtraction over x2 (1, 4); working
    # out one index space for the chain raised a ShapeError instead of running the parts.
    FakeGpu(monkeypatch)
    x2 = ex.tensor("x2", dtype="float64", shape=(None, None))
    v7 = x2 - x2.reshape((2, -1)).all(axis=None, keepdims=True)
    x2_value = np.array([[2.114883354602541, 0.3085929702033825, 0.8818258832430024, -1.0045810407993498]])
    (got,) = ex.function([x2], [v7], device="cuda")(x2_value)
    np.testing.assert_array_equal(got.get(), x2_value - np.all(x2_value.reshape((2, -1)), keepdims=True))


def test_a_product_with_a_dimshuffle_that_drops_an_axis_is_no_matrix_vector_product():
    # Case 41000699 (seed 41, 20 nodes): in the gradient of outer(x0 @ x1, x2).sum(), a
    # dimshuffle(0, "x") of an (n, 1) matrix (dropping its length-1 axis) passed for a
    # vector made a column, and matrix_vector_product built a matrix in place of a vector.
    x0, x2 = ex.tensor("x0", dtype="float64", shape=(None,)), ex.tensor("x2", dtype="float64", shape=(None,))
    x1 = ex.tensor("x1", dtype="float64", shape=(None, None))
    v14 = ex.grad(ex.outer(x0 @ x1, x2).sum(), x0)
    a, b, c = np.array([2.0, 0.7, 1.8, 2.7]), np.array([[2.5], [2.8], [-1.9], [-2.6]]), np.array([-0.65])
    (got,) = ex.function([x0, x1, x2], [v14], backend="c")(a, b, c)
    np.testing.assert_allclose(got, b @ np.ones((1, 1)) @ c[:, None] @ np.ones(1), rtol=1e-12)


def test_a_region_sympy_makes_complex_infinity_is_left_as_it_is():
    # Case 41000458 (seed 41, 20 nodes): the mean of a slice that is statically empty divides
    # by 0, which SymPy folds to complex infinity (zoo); building the graph back raised
    # "Cannot convert complex to float". Such a region is now kept as written.
    x0, x1 = ex.tensor("x0", dtype="float64", shape=(None,)), ex.tensor("x1", dtype="float64", shape=(None, 1))
    v13 = ex.dot(x0, x1)[:3:-1].mean(axis=(0,), keepdims=True)
    v22 = ex.grad((v13 * v13).sum(), x1)
    a, b = np.array([-2.8, -2.4, -1.8, -1.6, 1.2]), np.array([[1.8], [2.3], [1.5], [-3.0], [1.9]])
    (got,) = ex.function([x0, x1], [v22], backend="c")(a, b)
    np.testing.assert_array_equal(got, np.zeros((5, 1)))  # nothing reaches x1 through an empty slice


@pytest.mark.filterwarnings("ignore:Degrees of freedom:RuntimeWarning")  # NumPy's std of no elements
def test_zeros_of_a_weak_length_product_keep_their_type():
    # Case 1000003039 (seed 1003): the gradient rules turned 0 * x0.shape[1] (a weak int64
    # scalar, from std over an axis of static length 0) into a strong 0, and the rewrite
    # engine refused the change of type; such zeros are now left as they are.
    x0 = ex.tensor("x0", dtype="float64", shape=(0, None, None))
    x1 = ex.tensor("x1", dtype="float32", shape=(None, None, 1))
    v3 = x0.std(axis=(0, 1, 2), keepdims=True) ** x1
    f = ex.function([x0, x1], [v3], backend="c", mode="check")
    x0_value = np.zeros((0, 7, 7), dtype="float64")
    x1_value = np.array([[[2.750088930130005]]], dtype="float32")
    (got,) = f(x0_value, x1_value)
    with np.errstate(all="ignore"):
        expected = x0_value.std(axis=(0, 1, 2), keepdims=True) ** x1_value
    np.testing.assert_array_equal(got, expected)

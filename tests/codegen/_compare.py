"""Running a graph through the C back end and the NumPy reference, and comparing the results."""

import numpy as np

import exprc as ex


def both(inputs, outputs):
    """The graph compiled for the C back end and for the NumPy reference."""
    return ex.function(inputs, outputs, backend="c"), ex.function(inputs, outputs, backend="numpy")


def tolerance(dtype, ulps=8):
    """A few units in the last place: the libm and libmvec functions NumPy and C call may differ by that."""
    eps = float(np.finfo(dtype).eps)
    return {"rtol": ulps * eps, "atol": ulps * eps}


def assert_same(got, expected, label="", ulps=8):
    """``got`` has the dtype and shape of ``expected`` and its values: exactly for integers and
    bools, within a few ulp for floats, NaN where NaN and the same infinities."""
    expected = np.asarray(expected)
    assert isinstance(got, np.ndarray), f"{label}: expected an ndarray, got {type(got).__name__}"
    assert got.dtype == expected.dtype, f"{label}: dtype {got.dtype}, NumPy gives {expected.dtype}"
    assert got.shape == expected.shape, f"{label}: shape {got.shape}, NumPy gives {expected.shape}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, equal_nan=True, err_msg=label, **tolerance(expected.dtype, ulps))
    else:
        np.testing.assert_array_equal(got, expected, err_msg=label)


def check(fc, fn, args, labels=None, ulps=8):
    """Call both functions with ``args`` and compare every output."""
    got, expected = fc(*args), fn(*args)
    if not isinstance(got, list):
        got, expected = [got], [expected]
    labels = labels or [str(o) for o in fn.outputs]
    for g, e, label in zip(got, expected, labels):
        assert_same(g, e, label, ulps)
        assert g.flags.writeable, f"{label}: the result is read-only"

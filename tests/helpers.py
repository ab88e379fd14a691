"""Shared test helpers: inputs in a chosen memory layout, and comparing results with NumPy's."""

import numpy as np

#: The seed of the ``rng`` fixture (tests/conftest.py): every test draws the same values each run.
RNG_SEED = 20240521

#: The memory layouts :func:`in_layout` produces.
LAYOUTS = ("contiguous", "transposed", "strided", "broadcast")

#: The dtypes every op is tested on (where NumPy accepts them).
DTYPES = ("float32", "float64", "int32", "int64", "bool")


def in_layout(values, layout):
    """``values`` stored in ``layout``; the result has the shape and dtype of ``values``.

    - ``contiguous``: a C-contiguous copy;
    - ``transposed``: the transpose of a C-contiguous array (Fortran order), same values;
    - ``strided``: a view with steps of 2 on every axis, negative on the last, into a
      larger array, same values;
    - ``broadcast``: a read-only view with stride 0 on the first axis, repeating the
      first entry of ``values`` along it (the values change unless they already repeat).

    Arrays with fewer than two elements have only one layout; they come back contiguous
    (or, for ``strided``, still as a view into a larger array).
    """
    values = np.asarray(values)
    if layout == "contiguous":
        return np.array(values, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    if layout == "transposed":
        return np.array(values.T, order="C").T
    if layout == "strided":
        big = np.zeros(tuple(2 * n for n in values.shape), dtype=values.dtype)
        steps = [2] * values.ndim
        if steps:
            steps[-1] = -2
        view = big[tuple(slice(None, None, s) for s in steps) + (Ellipsis,)]  # a view even when 0-d
        view[...] = values
        return view
    if layout == "broadcast":
        if values.ndim == 0 or values.shape[0] == 0:
            return values.copy()
        return np.broadcast_to(values[:1], values.shape)
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


def random_array(rng, shape, dtype, low=-3.0, high=3.0):
    """Random values of ``dtype`` and ``shape``: uniform in [low, high) for floats,
    integers in [low, high] for integer dtypes, and either truth value for bool."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        values = rng.random(shape) < 0.5
    elif dtype.kind in "iu":
        values = rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1, size=shape)
    else:
        values = rng.uniform(low, high, size=shape)
    return np.asarray(values).astype(dtype)


def tolerance(dtype, ulps=4):
    """``rtol`` and ``atol`` for comparing float results of ``dtype``: a few units in the
    last place (``rtol = ulps * eps``, ``atol = eps``)."""
    eps = float(np.finfo(dtype).eps)
    return {"rtol": ulps * eps, "atol": eps}


def assert_matches_numpy(got, expected, ulps=4):
    """``got`` is an ndarray with the dtype, shape and values (within ``ulps``) of ``expected``.

    Integers and bools must match exactly. For floats, NaN matches NaN and infinities
    must match exactly, as in ``np.testing.assert_allclose``.
    """
    expected = np.asarray(expected)
    assert isinstance(got, np.ndarray), f"expected an ndarray, got {type(got).__name__}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype}, NumPy gives {expected.dtype}"
    assert got.shape == expected.shape, f"shape {got.shape}, NumPy gives {expected.shape}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, **tolerance(expected.dtype, ulps))
    else:
        np.testing.assert_array_equal(got, expected)

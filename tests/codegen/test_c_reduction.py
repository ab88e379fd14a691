"""Reductions of the C back end against the NumPy reference: sum, prod, max, min, all, any
over any axes, with keepdims, fused with the elementwise work before and after them; and
the composed ones (mean, var, std, logsumexp, softmax, log_softmax)."""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.ir.lower import KernelStep, NumpyStep
from tests.helpers import in_layout

from ._compare import both, check

AXES = [None, 1, (0, 2), -1, 0]


def _values(dtype, rng, shape):
    if dtype == "bool":
        return rng.random(shape) < 0.7
    if np.dtype(dtype).kind == "f":
        return rng.uniform(0.5, 1.5, shape).astype(dtype)
    return rng.integers(-3, 4, shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_primitive_reductions(dtype, rng):
    t = ex.tensor("t", dtype=dtype, shape=(None, None, None))
    exprs = []
    for k, axis in enumerate(AXES):
        keepdims = k % 2 == 1
        exprs += [
            t.sum(axis=axis, keepdims=keepdims),
            ex.prod(t, axis=axis, keepdims=not keepdims),
            t.max(axis=axis, keepdims=keepdims),
            ex.min(t, axis=axis, keepdims=keepdims),
            t.all(axis=axis, keepdims=keepdims),
            ex.any(t, axis=axis, keepdims=not keepdims),
        ]
    fc, fn = both([t], exprs)
    assert not any(isinstance(s, NumpyStep) for s in fc._program.program.steps)
    values = _values(dtype, rng, (4, 5, 6))
    for layout in ("contiguous", "transposed", "strided", "broadcast"):
        check(fc, fn, [in_layout(values, layout)])
    check(fc, fn, [values[:, :1]])
    check(fc, fn, [values[:1, :1, :1]])


def test_fused_prologue_and_epilogue(rng):
    x, y = ex.matrix("x"), ex.matrix("y")
    s = ex.exp(-(x**2)).sum(axis=1)
    lse_like = ex.log(ex.sum(ex.exp(x) * y, axis=0, keepdims=True)) * 2 + 1
    f, g = both([x, y], [s, lse_like, ex.sqrt((x * y).sum()) - 1])
    kernels = f._program.program.kernels
    assert len(kernels) == 3 and all(k.reduction is not None for k in kernels)
    assert all(isinstance(s, KernelStep) for s in f._program.program.steps)
    for layout in ("contiguous", "transposed", "strided"):
        check(f, g, [in_layout(rng.uniform(-1, 1, (6, 9)), layout), in_layout(rng.uniform(0, 1, (6, 9)), layout)])
    check(f, g, [rng.uniform(-1, 1, (0, 9)), rng.uniform(0, 1, (0, 9))])
    check(f, g, [rng.uniform(-1, 1, (6, 9)), rng.uniform(0, 1, (1, 9))])


def test_epilogue_that_broadcasts_falls_back(rng):
    x, y = ex.matrix("x"), ex.matrix("y")
    out = x.sum(axis=1, keepdims=True) * 0 + y.sum(axis=0)  # (n, 1) + (m,) -> (n, m)
    f, g = both([x, y], out)
    check(f, g, [rng.uniform(size=(3, 4)), rng.uniform(size=(2, 5))])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_composed_reductions(dtype, rng):
    x = ex.tensor("x", dtype=dtype, shape=(None, None))
    exprs = [
        ex.mean(x, axis=1),
        ex.var(x, axis=0),
        ex.std(x),
        ex.var(x, axis=1, ddof=1, keepdims=True),
        ex.logsumexp(x, axis=1),
        ex.logsumexp(x),
        ex.softmax(x),
        ex.softmax(x, axis=0),
        ex.log_softmax(x),
    ]
    fc, fn = both([x], exprs)
    values = rng.uniform(-4, 4, (7, 11)).astype(dtype)
    for layout in ("contiguous", "transposed", "strided"):
        check(fc, fn, [in_layout(values, layout)], ulps=16)
    big = values.copy()
    big[0, 0], big[1, :] = 1000.0, -np.inf  # overflow-prone and all -inf rows
    check(fc, fn, [big], ulps=16)


def test_softmax_and_logsumexp_passes():
    x = ex.matrix("x")
    softmax = ex.function([x], ex.softmax(x), backend="c")._program.program
    # max, sum and divide as one row chain: each row read from memory once
    assert [type(s.kernel).__name__ for s in softmax.steps] == ["RowChainKernel"]
    lse = ex.function([x], ex.logsumexp(x, axis=1, keepdims=True), backend="c")._program.program
    assert [type(s).__name__ for s in lse.steps] == ["KernelStep"] * 2  # max; sum with log and shift fused


def test_nan_and_empty(rng):
    x = ex.matrix("x")
    f, g = both([x], [x.sum(axis=1), x.max(axis=1), ex.min(x, axis=0), x.prod(axis=1), x.any(axis=1)])
    values = rng.uniform(-1, 1, (4, 5))
    values[1, 2] = np.nan
    values[2, 0] = np.inf
    values[3, :] = -np.inf
    check(f, g, [values])
    empty = ex.function([x], [x.sum(axis=1), x.prod(axis=1), x.all(axis=1)], backend="c")
    sums, prods, alls = empty(np.zeros((3, 0)))
    assert sums.tolist() == [0.0] * 3 and prods.tolist() == [1.0] * 3 and alls.tolist() == [True] * 3
    with pytest.raises(ValueError):
        f(np.zeros((3, 0)))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_reductions_over_outer_axes_run_a_block_of_results_at_a_time(dtype, rng):
    """Reducing the leading axes of a C-contiguous array (a bias gradient: the sum over a
    batch) walks the reduced axes outside and a block of consecutive results inside: results
    beyond one block (EXPRC_COLUMNS), blocks that start inside a row of the kept axes (the
    rows are shared among threads), NaN in max and min, and an epilogue reading kept values."""
    t = ex.tensor("t", dtype=dtype, shape=(None, None, None))
    exprs = [
        t.sum(axis=0),
        t.max(axis=(0, 1), keepdims=True),
        ex.min(t, axis=1),
        ex.prod(t, axis=0),
        t.any(axis=0),
        t.sum(axis=1, keepdims=True),
    ]
    if dtype.startswith("float"):
        exprs += [ex.logsumexp(t, axis=0), ex.softmax(t, axis=0), t.mean(axis=(0, 1)), (t - t.max(axis=0)).sum(axis=0)]
    fc, fn = both([t], exprs)
    assert "if (columns)" in fc.source
    for shape in [(3, 4, 600), (40, 30, 70), (300, 2, 150), (2, 1, 1)]:
        values = _values(dtype, rng, shape)
        if dtype.startswith("float"):
            values.reshape(-1)[7 % values.size] = np.nan
        # Up to 600 terms a result, added in order (NumPy's sums pair them): more ulp apart.
        check(fc, fn, [values], ulps=128)
        check(fc, fn, [np.asfortranarray(values)], ulps=128)
    empty_c, empty_n = both([t], [t.sum(axis=0), ex.prod(t, axis=1), t.any(axis=(0, 1))])
    for shape in [(0, 3, 5), (5, 0, 7)]:
        check(empty_c, empty_n, [_values(dtype, rng, shape)])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_reductions_over_short_rows_run_a_block_of_rows_at_a_time(dtype, rng):
    """Rows shorter than EXPRC_SHORT_ROW (a softmax over 10 classes) are reduced a block of
    rows at a time, loading each row's terms strided, since a SIMD loop over a row would run
    its remainder only: rows of 1 to 31 terms, more rows than a block (EXPRC_COLUMNS), several
    kept axes, a slice with a row stride that is not the row length, NaN in max and min, and
    epilogues reading kept values (logsumexp, softmax, log_softmax)."""
    t = ex.tensor("t", dtype=dtype, shape=(None, None, None))
    exprs = [
        t.sum(axis=2),
        t.max(axis=-1, keepdims=True),
        ex.min(t, axis=(1, 2)),
        ex.prod(t, axis=2),
        t.all(axis=2),
        t.any(axis=-1),
    ]
    if dtype.startswith("float"):
        exprs += [
            ex.logsumexp(t, axis=2),
            ex.softmax(t, axis=-1),
            ex.log_softmax(t, axis=2),
            ex.exp(t).sum(axis=2),
            (t - t.max(axis=2, keepdims=True)).sum(axis=2),
        ]
    fc, fn = both([t], exprs)
    assert "} else if (short_rows) {" in fc.source
    for shape in [(3, 200, 10), (2, 300, 1), (1, 7, 31), (4, 5, 3), (1, 600, 2)]:
        values = _values(dtype, rng, shape)
        if dtype.startswith("float"):
            values.reshape(-1)[11 % values.size] = np.nan
        check(fc, fn, [values], ulps=16)
        check(fc, fn, [values[:, ::2]], ulps=16)  # rows further apart than their length
    empty_c, empty_n = both([t], [t.sum(axis=2), t.any(axis=-1), ex.prod(t, axis=2)])
    for shape in [(0, 3, 5), (5, 0, 7), (2, 3, 0)]:
        check(empty_c, empty_n, [_values(dtype, rng, shape)])

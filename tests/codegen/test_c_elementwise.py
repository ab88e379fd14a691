"""Elementwise ops of the C back end against the NumPy reference: every scalar op on every
dtype, special values, casts, promotion, layouts, broadcasting, zero-size and 0-d inputs."""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.ir.lower import KernelStep, NumpyStep
from exprc.ops.scalar import SCALAR_OPS
from tests.helpers import in_layout

from ._compare import both, check

DTYPES = ("float32", "float64", "int32", "int64", "bool")


def _float_values(dtype, rng, n):
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 100.0, 1.0, -1.0, 0.5, 2.5, -2.5, 3.0, -3.0]
    values = np.concatenate([special, rng.uniform(-3, 3, n - len(special))])
    return values.astype(dtype)


def _int_values(dtype, rng, n):
    info = np.iinfo(dtype)
    special = [0, 1, -1, 2, -2, 7, -7, info.min, info.max, info.min + 1]
    return np.concatenate([special, rng.integers(-20, 21, n - len(special))]).astype(dtype)


def _values(dtype, rng, n=40):
    if dtype == "bool":
        return rng.random(n) < 0.5
    if np.dtype(dtype).kind == "f":
        return _float_values(dtype, rng, n)
    return _int_values(dtype, rng, n)


def _all_ops(x, y, z, e):
    """Every scalar op that NumPy defines for these inputs: label -> expression."""
    exprs = {}
    for name, op in SCALAR_OPS.items():
        if op.nin == 1:
            args = (x,)
        elif op.nin == 2:
            # Integer power with a negative exponent is an error in NumPy.
            args = (x, e) if name == "power" and x.dtype != "float32" and x.dtype != "float64" else (x, y)
        elif name == "where":
            args = (x > y, y, z)
        else:
            args = (x, y, z)
        try:
            exprs[name] = ex.ops.elementwise(op, *args)
        except (TypeError, ValueError):
            pass  # NumPy has no loop for this dtype
    return exprs


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_scalar_op(dtype, rng):
    x, y, z = (ex.tensor(n, dtype=dtype, shape=(None,)) for n in "xyz")
    e = ex.tensor("e", dtype=dtype, shape=(None,))
    exprs = _all_ops(x, y, z, e)
    fc, fn = both([x, y, z, e], list(exprs.values()))
    # Every op NumPy defines for the dtype becomes C, except those computing in float16
    # (NumPy's exp of a bool is float16) and a signed integer power whose exponent may be
    # negative (NumPy raises for one; test_integer_power_* check the kernels' powers).
    numpy_steps = [s.node for s in fc._program.program.steps if isinstance(s, NumpyStep)]
    assert all(
        node.outputs[0].dtype == "float16" or (node.op.scalar_op.name == "power" and dtype[0] == "i")
        for node in numpy_steps
    ), numpy_steps
    n = 40
    xv, yv, zv = _values(dtype, rng, n), np.roll(_values(dtype, rng, n), 3), _values(dtype, rng, n)
    ev = (np.arange(n) % 6).astype(dtype)
    labels = list(exprs)
    check(fc, fn, [xv, yv, zv, ev], labels)
    # Strided (negative steps), broadcast (stride 0), length-1 broadcasting and zero-size inputs.
    check(fc, fn, [xv[::-2], yv[1::2], zv[::2], ev[::2]], labels)
    check(fc, fn, [np.broadcast_to(xv[3], (n,)), yv, zv[:1], ev], labels)
    check(fc, fn, [xv[:0], yv[:0], zv[:0], ev[:0]], labels)
    check(fc, fn, [xv[:1], yv[:1], zv[:1], ev[:1]], labels)


@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_0d_inputs(dtype, rng):
    x, y = ex.tensor("x", dtype=dtype, shape=()), ex.tensor("y", dtype=dtype, shape=())
    exprs = [x + y, x * y - 3, ex.maximum(x, y), x // y, x % y, ex.exp(x), x < y, ex.where(x > y, x, 2 * y)]
    fc, fn = both([x, y], exprs)
    for a, b in [(2, 3), (-7, 2), (5, 0), (0, -3)]:
        check(fc, fn, [np.asarray(a, dtype), np.asarray(b, dtype)])


def test_casts(rng):
    targets = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")
    f = ex.tensor("f", dtype="float64", shape=(None,))
    i = ex.tensor("i", dtype="int32", shape=(None,))
    b = ex.tensor("b", dtype="bool", shape=(None,))
    exprs = [ex.astype(v, t) for v in (f, i, b) for t in targets if t != v.dtype]
    fc, fn = both([f, i, b], exprs)
    # Values every target can hold (casts out of range are undefined in C and in NumPy).
    fv = np.array([0.0, 1.0, 2.7, 100.9, 0.5, 3.0, 0.0, 126.0])
    iv = np.array([0, 1, 2, 100, 5, 3, 0, 126], dtype="int32")
    bv = np.array([True, False, True, True, False, False, True, False])
    check(fc, fn, [fv, iv, bv])


def test_promotion_and_weak_scalars(rng):
    f32 = ex.tensor("f32", dtype="float32", shape=(None,))
    i32 = ex.tensor("i32", dtype="int32", shape=(None,))
    u8 = ex.tensor("u8", dtype="uint8", shape=(None,))
    i8 = ex.tensor("i8", dtype="int8", shape=(None,))
    exprs = [
        f32 * 0.1,
        f32 + i32,
        i32 / 3,
        u8 * i8,
        u8 + 200,
        i8 - 100,
        i32 < 2.5,
        f32**2,
        i32 // 2,
        i32 % -3,
        ex.exp(i32),
        ex.sqrt(u8),
        u8 > i8,
        ex.where(i32 > 0, f32, 0.5),
        ex.astype(u8, "uint64") * 3 + ex.astype(i32, "int64"),
        ex.clip(f32, -1.0, 0.5),
    ]
    fc, fn = both([f32, i32, u8, i8], exprs)
    n = 24
    check(
        fc,
        fn,
        [
            rng.uniform(-3, 3, n).astype("float32"),
            rng.integers(-9, 9, n).astype("int32"),
            rng.integers(0, 255, n).astype("uint8"),
            rng.integers(-128, 127, n).astype("int8"),
        ],
    )


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "broadcast"])
def test_layouts_and_broadcasting(layout, rng):
    x, y = ex.matrix("x"), ex.matrix("y")
    t = ex.tensor3("t")
    v = ex.vector("v")
    exprs = [ex.exp(-(x**2)) * y + 1, x * v - ex.sin(y), (t * 2).sum(axis=1) + 1, ex.tanh(t) - t]
    fc, fn = both([x, y, t, v], exprs)
    xv = in_layout(rng.uniform(-2, 2, (5, 7)), layout)
    yv = in_layout(rng.uniform(-2, 2, (5, 7)), layout)
    tv = in_layout(rng.uniform(-2, 2, (3, 4, 6)), layout)
    vv = rng.uniform(-2, 2, 7)
    check(fc, fn, [xv, yv, tv, vv])
    # Lengths unknown when built that turn out to be 1 broadcast, as in NumPy.
    check(fc, fn, [xv, yv[:1], tv[:, :1], vv])
    check(fc, fn, [xv[:, :1], yv, tv[:1], vv])
    # Zero-size.
    check(fc, fn, [xv[:0], yv[:0], tv[:, :0], vv])


def test_fused_chain_is_one_kernel():
    x, y = ex.matrix("x"), ex.matrix("y")
    out = ex.exp(-(x**2)) * y + ex.log1p(ex.abs(y))
    f = ex.function([x, y], out, backend="c")
    steps = f._program.program.steps
    assert len(steps) == 1 and isinstance(steps[0], KernelStep)
    source = f.source_full
    # Each statement is commented with the graph node it computes.
    assert "/* exp(-square(x)) */" in source and "/* log1p(abs(y)) */" in source
    assert "#pragma omp simd" in source and "#pragma omp parallel" in source
    # The loops are written once, and run on all cores or on one by exprc_run_parts.
    assert source.count("static void k0_") == 1 and "exprc_run_parts(k0_" in source


def test_shared_values_are_stored_once():
    x = ex.vector("x")
    e = ex.exp(x)
    f, g = both([x], [e, e + 1])
    # e is an output: the second kernel reads it instead of recomputing it.
    kernels = f._program.program.kernels
    assert len(kernels) == 2 and "exp(" not in kernels[1].note.replace("exp(x) + 1", "")
    check(f, g, [np.linspace(-1, 1, 9)])


def test_runtime_broadcast_error_is_clear():
    x, y = ex.vector("x"), ex.vector("y")
    f = ex.function([x, y], x + y, backend="c")
    with pytest.raises(ValueError, match="broadcast"):
        f(np.zeros(3), np.zeros(4))


def test_results_are_fresh_arrays():
    x = ex.vector("x")
    f = ex.function([x], [x * 2, x], backend="c")
    a = np.arange(3.0)
    doubled, same = f(a)
    assert doubled.flags.writeable and doubled.flags.owndata
    same[0] = 10.0
    assert a[0] == 0.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vector_math_over_short_rows_runs_a_block_of_rows_at_a_time(dtype, rng):
    """Vector math over rows shorter than EXPRC_SHORT_ROW (exp(z - max) in a softmax over 10
    classes, broadcasting a column) runs the SIMD loop down a block of rows: rows of 1 to 31,
    more rows than a block, blocks that start inside a row of the outer axes (a large array is
    shared among threads), strided rows, special values; plain arithmetic keeps the row loops."""
    z, m = ex.tensor("z", dtype=dtype, shape=(None, None, None)), ex.tensor("m", dtype=dtype, shape=(None, None, 1))
    fc, fn = both([z, m], [ex.exp(z - m), ex.tanh(z) * m + ex.sigmoid(z), ex.log1p(ex.abs(z)) - ex.softplus(m)])
    assert "if (n2 < EXPRC_SHORT_ROW)" in fc.source
    for shape in [(2, 300, 10), (4, 1000, 10), (1, 5, 31), (3, 7, 1), (1, 600, 2)]:
        values = rng.uniform(-3, 3, shape).astype(dtype)
        values.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, 0.0][: min(4, values.size)]
        column = rng.uniform(-1, 1, shape[:2] + (1,)).astype(dtype)
        check(fc, fn, [values, column])
        check(fc, fn, [values[:, ::2], column[:, ::2]])
    plain_c, _ = both([z, m], [z * m + 1])
    assert "EXPRC_SHORT_ROW)" not in plain_c.source_full.split("#define EXPRC_SHORT_ROW")[1]

"""Whole programs on the C back end: kernels mixed with NumPy steps (matmul, slicing,
reshape, concatenate, argmax), large inputs that run on all cores, and the listing."""

import numpy as np

import exprc as ex
from exprc.codegen.c import blas
from exprc.codegen.ir.lower import KernelStep, NumpyStep
from tests.helpers import in_layout

from ._compare import both, check


def test_kernels_between_numpy_steps(rng):
    x, w, b = ex.matrix("x"), ex.matrix("w"), ex.vector("b")
    h = ex.tanh(x @ w + b)
    exprs = [
        ex.softmax(h, axis=1),
        h[::2, 1:].sum(axis=0) * 2,
        ex.reshape(ex.exp(x), (-1,)) + 1,
        ex.concatenate([x * 2, x - 1], axis=1).max(axis=0),
        ex.argmax(ex.sin(x), axis=1) + 1,
        ex.tensordot(x, w, axes=1).T * 3,
    ]
    fc, fn = both([x, w, b], exprs)
    kinds = {type(s).__name__ for s in fc._program.program.steps}
    assert kinds == {"KernelStep", "NumpyStep"}
    for layout in ("contiguous", "transposed", "strided"):
        check(
            fc,
            fn,
            [
                in_layout(rng.uniform(-1, 1, (6, 4)), layout),
                in_layout(rng.uniform(-1, 1, (4, 5)), layout),
                rng.uniform(-1, 1, 5),
            ],
        )


def test_large_inputs_run_in_parallel(rng):
    x, y = ex.matrix("x"), ex.matrix("y")
    exprs = [
        ex.exp(-(x**2)) * y,
        (x * y).sum(axis=1),
        x.sum(axis=0),
        (x * y).sum(),
        x.max(),
        ex.min(x, axis=1),
        ex.softmax(x),
    ]
    fc, fn = both([x, y], exprs)
    xv, yv = rng.uniform(-1, 1, (300, 257)), rng.uniform(-1, 1, (300, 257))
    check(fc, fn, [xv, yv], ulps=64)  # long sums: both sides round differently
    check(fc, fn, [xv.T, yv.T], ulps=64)
    ninf = np.full((300, 257), -np.inf)
    check(fc, fn, [ninf, yv])


def test_float16_stays_numpy(rng):
    h = ex.tensor("h", dtype="float16", shape=(None,))
    fc, fn = both([h], [ex.exp(h) * 2, (h * h).sum()])
    assert all(isinstance(s, NumpyStep) for s in fc._program.program.steps)
    check(fc, fn, [rng.uniform(-1, 1, 10).astype("float16")])


def test_program_without_kernels():
    x = ex.matrix("x")
    f = ex.function([x], x.T, backend="c")
    assert f._program.program.kernels == []
    np.testing.assert_array_equal(f(np.eye(2) + [[0, 1], [0, 0]]), [[1, 0], [1, 1]])


def test_listing_names_every_step():
    x, w = ex.matrix("x"), ex.matrix("w")
    f = ex.function([x, w], ex.exp(x @ w).sum(axis=1), backend="c")
    source = f.source
    product = "NumPy MatMul" if blas.missing() else "C BLAS gemm MatMul"
    assert product in source and "C kernel k0_sum_exp_matmul" in source
    assert "void k0_sum_exp_matmul" in source
    assert isinstance(f._program.program.steps[-1], KernelStep)


def test_large_strided_inputs_run_in_parallel_by_rows(rng):
    # Strides that do not merge: the parallel loops walk rows of the outer axes.
    x, y = ex.tensor3("x"), ex.tensor3("y")
    exprs = [ex.exp(-(x**2)) * y, (x * y).sum(axis=2), x.sum(axis=(1, 2)), (x * y).max(), ex.min(x, axis=0)]
    fc, fn = both([x, y], exprs)
    # positive values: long sums without cancellation compare within a few ulps
    xv, yv = rng.uniform(0.1, 1, (40, 60, 60))[:, ::2, :], rng.uniform(0.1, 1, (40, 30, 60))
    check(fc, fn, [xv, yv], ulps=64)
    check(fc, fn, [xv.transpose(2, 0, 1), yv[::-1].transpose(2, 0, 1)], ulps=64)
    xv[3, 4, 5] = np.nan
    check(fc, fn, [xv, yv], ulps=64)


def test_kernels_with_the_same_code_are_compiled_once(rng):
    x, w, v = ex.matrix("x"), ex.matrix("w"), ex.matrix("v")
    exprs = [ex.exp(x @ w) + 1.0, ex.exp(x @ v) + 1.0]
    fc, fn = both([x, w, v], exprs)
    kernels = fc._program.program.kernels
    assert len(kernels) == 2
    assert f"the same code as {kernels[0].name}" in fc.source
    assert fc.source.count(f"void {kernels[1].name}(const int64_t *args) {{ {kernels[0].name}(args); }}") == 1
    check(fc, fn, [rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 5)), rng.uniform(-1, 1, (4, 5))])


def test_source_leaves_out_the_fixed_declarations_and_source_full_has_them():
    x = ex.matrix("x")
    f = ex.function([x], [ex.exp(x).sum(axis=1), (x * 2).max()], backend="c")
    short, full = f.source, f.source_full
    assert "f.source_full shows the whole file" in short and len(short) < len(full)
    for kernel in f._program.program.kernels:  # every kernel is in both, as compiled
        assert f._program.kernel_sources[kernel.name] in short
        assert f._program.kernel_sources[kernel.name] in full
    assert "#include <math.h>" in full and "#include <math.h>" not in short
    assert short.startswith("/*\n * exprc program")  # the plan first
    assert ex.function([x], x + 1, backend="numpy").source_full == ex.function([x], x + 1, backend="numpy").source

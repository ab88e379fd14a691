"""Row passes of the C back end (codegen/ir/row_pass.py, codegen/c/row_pass.py): what lowers to
one, and its results against NumPy for every shape and layout, float32 and float64, NaN
and infinities, and the cases that must run another way."""

import os
import subprocess
import sys

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c.kernel_call import run_kernel
from exprc.codegen.c.target import TARGET as C_TARGET
from exprc.codegen.cuda.target import TARGET as CUDA_TARGET
from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.lower import KernelStep, NumpyStep, lower
from exprc.ops.linalg import MatMul
from tests.helpers import in_layout

from ._compare import assert_same, both, check


def logistic(dtype="float64"):
    """W4: the cost of logistic regression and its gradient, as exprc builds them."""
    X = ex.tensor("X", dtype=dtype, shape=(None, None))
    w, t = ex.tensor("w", dtype=dtype, shape=(None,)), ex.tensor("t", dtype=dtype, shape=(None,))
    cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w**2)
    return [X, w, t], [cost, ex.grad(cost, w)]


def logistic_truth(X, w, t):
    """The cost and gradient in float64 from the same inputs, and per output the sum of the
    magnitudes of what went into it (what its rounding error is proportional to)."""
    X, w, t = (np.asarray(a, dtype=np.float64) for a in (X, w, t))
    n = np.broadcast_shapes(t.shape, (X.shape[0],))[0]
    z = X @ w
    e = -t * z
    with np.errstate(all="ignore"):
        terms = np.logaddexp(0, e)
        g = -np.exp(-np.logaddexp(0, -e)) * t / n
        cost = terms.sum() / n + 0.01 * np.sum(w**2)
        grad = X.T @ np.broadcast_to(g, (X.shape[0],)) + 0.02 * w
        # z's own error moves each term by up to its magnitude times eps.
        zabs = np.abs(X) @ np.abs(w)
        cost_scale = (np.abs(terms) + zabs).sum() / n + 0.01 * np.sum(w**2)
        grad_scale = np.abs(X).T @ np.broadcast_to(np.abs(g) + zabs / max(n, 1), (X.shape[0],)) + 0.02 * np.abs(w)
    return (cost, cost_scale), (grad, grad_scale)


def assert_within(got, truth, scale, dtype, terms):
    """``got`` is within the rounding error of a sum of ``terms`` terms of ``truth``: a few
    eps times the terms' magnitude ``scale``, per element."""
    eps = float(np.finfo(dtype).eps)
    got = np.asarray(got, dtype=np.float64)
    bound = 4 * eps * (terms + 64) * np.asarray(scale) + np.finfo(dtype).tiny
    error = np.abs(got - truth)
    assert np.all(error <= bound), f"error {np.max(error / bound):.3g} times the bound"


def row_passes(f):
    steps = f._program.program.steps
    return [s.kernel for s in steps if isinstance(s, KernelStep) and isinstance(s.kernel, ir.RowPassKernel)]


# --- what lowers to a row pass ---------------------------------------------------------------------


def test_logistic_regression_reads_X_once():
    inputs, outputs = logistic()
    f = ex.function(inputs, outputs, backend="c")
    steps = f._program.program.steps
    (kernel,) = row_passes(f)
    # No NumPy step at all (no matmul, no transpose, no length): the whole call is one entry point.
    assert not any(isinstance(s, NumpyStep) for s in steps)
    assert len(f._program.compiled.segments) == 1
    matrix_buffers = [b for b in kernel.buffers if kernel.walks[b.name] == "matrix"]
    assert [b.name for b in matrix_buffers] == ["X"] and len(kernel.contractions) == 1 and len(kernel.sums) == 1
    # Both outputs come out of the row pass; the other kernels only prepare its scalar inputs.
    assert {v for s in steps if isinstance(s.kernel, ir.RowPassKernel) for _, v in s.outputs} == set(f._program.outputs)
    assert "int k" in f.source and "exprc_row_axpys_float64" in f.source


def test_default_lowering_has_no_row_pass():
    inputs, outputs = logistic()
    program = lower(inputs, outputs, CUDA_TARGET)  # what the CUDA renderer gets: kernels it has a form for
    assert not any(isinstance(k, ir.RowPassKernel) for k in program.kernels)
    assert any(isinstance(s, NumpyStep) and isinstance(s.node.op, MatMul) for s in program.steps)


def test_two_passes_are_not_one(rng):
    X, w = ex.matrix("X"), ex.vector("w")
    u = X @ w
    centred = X.T @ (u - ex.mean(u))  # needs the mean of every row's value before the first row's weight
    fc, fn = both([X, w], [centred])
    (kernel,) = row_passes(fc)  # X @ w and its mean; the second product is a pass of its own
    assert len(kernel.sums) == 1 and not kernel.contractions
    assert any(isinstance(s, NumpyStep) and isinstance(s.node.op, MatMul) for s in fc._program.program.steps)
    check(fc, fn, [rng.standard_normal((40, 6)), rng.standard_normal(6)], ulps=64)


def test_integer_products_stay_numpy(rng):
    X, w = ex.imatrix("X"), ex.ivector("w")
    fc, fn = both([X, w], [X.T @ (X @ w), ex.sum(X @ w)])
    assert not row_passes(fc)
    check(fc, fn, [rng.integers(-3, 4, (5, 3)).astype("int32"), rng.integers(-3, 4, 3).astype("int32")])


# --- results against NumPy -------------------------------------------------------------------------

SHAPES = [(0, 3), (1, 4), (5, 1), (7, 0), (37, 5), (300, 17), (1000, 100)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_logistic_regression_against_numpy(dtype, shape, rng):
    inputs, outputs = logistic(dtype)
    fc, fn = both(inputs, outputs)
    assert len(row_passes(fc)) == 1
    n, k = shape
    X = rng.standard_normal(shape).astype(dtype)
    w = (0.3 * rng.standard_normal(k)).astype(dtype)
    for layout in ("contiguous", "transposed", "strided", "broadcast"):
        for t in (rng.choice([-1.0, 1.0], n).astype(dtype), np.array([-1.0], dtype=dtype)):
            args = [in_layout(X, layout), in_layout(w, "strided" if layout == "strided" else "contiguous"), t]
            got, expected = fc(*args), fn(*args)
            (cost, cost_scale), (grad, grad_scale) = logistic_truth(*args)
            for g, e in zip(got, expected):
                assert g.dtype == e.dtype and g.shape == e.shape
            with np.errstate(invalid="ignore"):
                if n == 0:  # the mean of no rows
                    assert np.isnan(got[0]) and np.isnan(expected[0])
                else:
                    assert_within(got[0], cost, cost_scale, dtype, n + k)
            assert_within(got[1], grad, grad_scale, dtype, n + k)


def test_nan_and_infinity_propagate(rng):
    inputs, outputs = logistic()
    fc, fn = both(inputs, outputs)
    X, w, t = rng.standard_normal((200, 8)), rng.standard_normal(8), rng.choice([-1.0, 1.0], 200)
    X[17, 3] = np.nan
    check(fc, fn, [X, w, t], ulps=1e4)
    X[17, 3] = np.inf
    check(fc, fn, [X, w, t], ulps=1e4)
    w[2] = -np.inf
    check(fc, fn, [rng.standard_normal((200, 8)), w, t], ulps=1e4)


def test_other_forms_of_the_products(rng):
    A, w, v, c = ex.matrix("A"), ex.vector("w"), ex.vector("v"), ex.vector("c")
    u = w @ A  # the rows of the pass are A's columns
    g = ex.tanh(u) * v
    outputs = [A @ g + c, ex.dot(ex.sigmoid(u), A.T), ex.sum(g**2) / ex.shape_i(A, 1), u * 2]
    fc, fn = both([A, w, v, c], outputs)
    (kernel,) = row_passes(fc)
    assert len(kernel.contractions) == 2 and len(kernel.sums) == 1
    assert not any(isinstance(s, NumpyStep) and isinstance(s.node.op, MatMul) for s in fc._program.program.steps)
    for layout in ("contiguous", "transposed", "strided"):
        A_value = in_layout(rng.standard_normal((6, 300)), layout)
        check(fc, fn, [A_value, rng.standard_normal(6), rng.standard_normal(300), rng.standard_normal(1)], ulps=512)
        check(fc, fn, [A_value, rng.standard_normal(6), rng.standard_normal(1), rng.standard_normal(6)], ulps=512)


def test_sums_only_and_per_row_outputs(rng):
    X, w = ex.fmatrix("X"), ex.fvector("w")
    u = X @ w
    args = [rng.standard_normal((500, 70)).astype("float32"), rng.standard_normal(70).astype("float32")]
    fc, fn = both([X, w], [ex.mean(ex.softplus(u)), ex.max(u), u])  # max: not a row-pass result
    (kernel,) = row_passes(fc)
    assert len(kernel.sums) == 1 and not kernel.contractions
    check(fc, fn, args, ulps=256)
    # X @ w only for the max that follows in the same call: a temporary the run time allocates.
    fc, fn = both([X, w], [ex.mean(ex.softplus(u)), ex.max(u)])
    (segment,) = fc._program.compiled.segments
    assert [str(v) for v in segment.temporaries] == ["X @ w"]
    check(fc, fn, args, ulps=256)


# --- what runs another way ----------------------------------------------------------------------


def test_a_matrix_of_one_row_broadcast_against_longer_rows(rng):
    inputs, outputs = logistic()
    fc, fn = both(inputs, outputs)
    # X @ w has one element, t five: NumPy broadcasts, and every per-row value has five.
    check(fc, fn, [rng.standard_normal((1, 4)), rng.standard_normal(4), rng.choice([-1.0, 1.0], 5)], ulps=64)


def test_an_epilogue_that_broadcasts(rng):
    X, w, c = ex.matrix("X"), ex.vector("w"), ex.vector("c")
    fc, fn = both([X, w, c], [X.T @ ex.sin(X @ w) + c])
    assert row_passes(fc)
    check(fc, fn, [rng.standard_normal((9, 1)), rng.standard_normal(1), rng.standard_normal(4)], ulps=64)


def test_shapes_that_do_not_line_up_raise(rng):
    inputs, outputs = logistic()
    f = ex.function(inputs, outputs, backend="c")
    with pytest.raises(ValueError):
        f(rng.standard_normal((6, 3)), rng.standard_normal(4), np.ones(6))
    with pytest.raises(ValueError, match="broadcast"):
        f(rng.standard_normal((6, 3)), rng.standard_normal(3), np.ones(5))


def test_step_by_step_path(rng):
    """The path Python runs kernel by kernel (when an entry point hands a segment back)."""
    inputs, outputs = logistic()
    fc, fn = both(inputs, outputs)
    compiled = fc._program.compiled
    for args in (
        [rng.standard_normal((300, 7)).T.copy().T, rng.standard_normal(7), rng.choice([-1.0, 1.0], 300)],
        [rng.standard_normal((1, 3)), rng.standard_normal(3), np.ones(4)],
    ):
        values = dict(zip(compiled.inputs, args))
        for step in compiled.program.steps:
            run_kernel(step, values, compiled.kernel_functions[step.kernel.name], compiled.library.ffi)
        for var, expected in zip(compiled.outputs, fn(*args)):
            assert_same(np.asarray(values[var]), expected, str(var), ulps=256)


def test_same_bits_on_one_thread(rng):
    """The blocks' partial results are added in an order that does not depend on the threads."""
    inputs, outputs = logistic()
    f = ex.function(inputs, outputs, backend="c")
    X, w, t = rng.standard_normal((3000, 50)), rng.standard_normal(50), rng.choice([-1.0, 1.0], 3000)
    here = f(X, w, t)
    code = (
        "import sys, numpy as np; sys.path.insert(0, '.'); from tests.codegen.test_row_pass import logistic; "
        "import exprc as ex; d = np.load(sys.argv[1]); f = ex.function(*logistic(), backend='c'); "
        "c, g = f(d['X'], d['w'], d['t']); np.save(sys.argv[1] + '.out.npy', np.concatenate([[c], g]))"
    )
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"row_pass_{os.getpid()}.npz")
    np.savez(path, X=X, w=w, t=t)
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        subprocess.run([sys.executable, "-c", code, path], env=env, cwd=root, check=True, timeout=300)
        there = np.load(path + ".out.npy")
    finally:
        for p in (path, path + ".out.npy"):
            if os.path.exists(p):
                os.remove(p)
    assert np.array_equal(np.concatenate([[here[0]], here[1]]), there)


def test_which_results_may_be_written_over_an_input():
    """exprc.codegen.ir.row_pass.may_write_over: what the in-place writing of updates may rely on."""
    from exprc.codegen.ir.row_pass import may_write_over

    X, w, t, s = ex.matrix("X"), ex.vector("w"), ex.vector("t"), ex.scalar("s")
    u = X @ w
    new_w = w - 0.1 * (X.T @ ex.sigmoid(t * u))  # per column: after every row was read
    new_s = s + ex.sum(u)  # once, at the end; s is read before the rows
    per_row = t * ex.tanh(u)  # per row: written while other rows are read
    (step,) = lower([X, w, t, s], [new_w, new_s, per_row], C_TARGET, row_pass=True).steps
    assert may_write_over(step, new_w, w) and may_write_over(step, new_s, s)
    assert may_write_over(step, new_w, t)  # t is read by the rows only, all before the columns
    assert not may_write_over(step, per_row, t) and not may_write_over(step, new_w, X)

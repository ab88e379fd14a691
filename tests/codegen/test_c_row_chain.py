"""Row chains rendered as C (codegen/c/row_pass.py, render_row_chain): each row's reductions
and elementwise results in one pass over the row, checked against NumPy and against the
loop-nest kernels the chain replaces, compiled beside them and called directly."""

import hashlib
import subprocess

import cffi
import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c.build import FLAGS, compiler, compiler_missing, libraries
from exprc.codegen.c.kernel_call import _packed
from exprc.codegen.c.render import render_program
from exprc.codegen.c.row_pass import render_row_chain
from exprc.codegen.c.target import TARGET
from exprc.codegen.ir.call_plan import index_strides
from exprc.codegen.ir.lower import lower
from exprc.codegen.ir.row_chain import RowChainStep, chain

pytestmark = pytest.mark.skipif(compiler_missing() is not None, reason=str(compiler_missing()))


class Compiled:
    """The row chain of ``outputs`` and the kernels it replaces, in one library."""

    def __init__(self, inputs, outputs, directory):
        program = chain(lower(inputs, ex.simplify(list(outputs)), TARGET))
        (self.step,) = [s for s in program.steps if isinstance(s, RowChainStep)]
        kernels = [p.kernel for p in self.step.parts]
        source = render_program(kernels) + "\n" + render_row_chain(self.step.kernel) + "\n"
        self.source = source
        stem = directory / hashlib.sha1(source.encode()).hexdigest()[:16]
        stem.with_suffix(".c").write_text(source)
        command = [*compiler(), *FLAGS, str(stem.with_suffix(".c")), "-o", str(stem.with_suffix(".so")), *libraries()]
        subprocess.run(command, check=True, capture_output=True)
        self.ffi = cffi.FFI()
        self.ffi.cdef("\n".join(f"void {k.name}(const int64_t *args);" for k in [*kernels, self.step.kernel]))
        self.lib = self.ffi.dlopen(str(stem.with_suffix(".so")))

    def run(self, step, values):
        """Run kernel step ``step`` on ``values`` (variable -> array), adding its outputs."""
        kernel = step.kernel
        arrays = [np.asarray(values[v]) for _, v in step.inputs]
        shape = next(a.shape for (b, _), a in zip(step.inputs, arrays) if b.ndim and not b.outer)
        outs = []
        for b, var in step.outputs:
            outs.append(np.empty(var.type.shape if b.ndim == 0 else _out_shape(b, step, shape), b.dtype))
            values[var] = outs[-1]
        buffers = [*zip((b for b, _ in step.inputs), arrays), *((b, o) for (b, _), o in zip(step.outputs, outs))]
        strides = [index_strides(a, step.axes[b.name], shape) if b.ndim else None for b, a in buffers]
        args = _packed(kernel, list(shape), 0, buffers, strides)
        getattr(self.lib, kernel.name)(self.ffi.from_buffer("int64_t[]", args))

    def both(self, inputs, arrays):
        """The outputs of the chain, and those of the kernels it replaces."""
        given = dict(zip(inputs, arrays))
        # What other steps compute for the chain (a row length, say), through NumPy.
        for _, var in self.step.inputs:
            given.setdefault(var, var.eval(dict(zip(inputs, arrays))))
        chained, parts = dict(given), dict(given)
        self.run(self.step, chained)
        for part in self.step.parts:
            self.run(part, parts)
        return [chained[v] for _, v in self.step.outputs], [parts[v] for _, v in self.step.outputs]


def _out_shape(buffer, step, shape):
    if not buffer.outer:
        return tuple(shape)
    kernel = step.kernel
    kept = kernel.kept if isinstance(step, RowChainStep) else kernel.ndim - kernel.reduction.naxes
    return tuple(1 if a >= kept else n for a, n in enumerate(shape))


def numpy_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def assert_ulps(got, want, ulps):
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = np.spacing(np.maximum(np.abs(want), np.finfo(want.dtype).tiny))
    assert np.all(np.abs(got - want) <= ulps * scale), np.max(np.abs(got - want) / scale)


@pytest.fixture(scope="module")
def softmax(tmp_path_factory):
    x = ex.matrix("x")
    return x, Compiled([x], [ex.softmax(x, axis=1)], tmp_path_factory.mktemp("c_row_chain"))


def test_softmax_is_one_chain_of_its_three_kernels(softmax):
    _, compiled = softmax
    kernel = compiled.step.kernel
    assert len(compiled.step.parts) == 3 and [r.op for r in kernel.reductions] == ["max", "add"]
    text = compiled.source[compiled.source.index(f"void {kernel.name}_part") :]
    assert f"void {kernel.name}(const int64_t *args)" in text
    # exp(x - max) is computed while summing, kept in the output and read back to divide.
    assert "= exp(" not in text[text.index("the elementwise results") :]


@pytest.mark.parametrize("shape", [(3, 2), (5, 31), (4, 33), (7, 1000), (1, 100000), (3, 0), (0, 4)])
def test_softmax_rows_of_every_length(softmax, shape, rng):
    x, compiled = softmax
    value = rng.standard_normal(shape) * 30
    (got,), (parts,) = compiled.both([x], [value])
    # The same formula as the three kernels; exp rounds per element as libmvec's vector
    # lanes or libm's scalar loop tails give it, in either.
    np.testing.assert_allclose(got, parts, rtol=4 * np.finfo(float).eps, atol=0)
    if value.shape[1]:
        assert_ulps(got, numpy_softmax(value, axis=1), 8)


def test_softmax_of_strided_rows_and_special_values(softmax, rng):
    x, compiled = softmax
    value = rng.standard_normal((40, 9)).T  # rows of stride 9 items
    value[1, 3], value[2, :], value[3, 0], value[4, :] = np.nan, -np.inf, np.inf, 1e308
    (got,), (parts,) = compiled.both([x], [value])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(parts))
    np.testing.assert_allclose(got, parts, rtol=4 * np.finfo(float).eps, atol=0)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(got[5:], numpy_softmax(value, axis=1)[5:], rtol=1e-14)


def test_rows_of_two_kept_axes_and_values_stored_per_row(tmp_path, rng):
    # A layer norm of a 3-d tensor: the mean and the variance per row, then the normalised
    # rows; the mean is also an output, stored once per row.
    x = ex.tensor("x", "float32", (None, None, None))
    mean = x.mean(axis=2, keepdims=True)
    normal = (x - mean) / ex.sqrt(((x - mean) ** 2).mean(axis=2, keepdims=True) + 1e-5)
    compiled = Compiled([x], [normal, mean], tmp_path)
    assert sorted(b.outer for b, _ in compiled.step.kernel.stores) == [False, True]
    value = rng.standard_normal((3, 4, 50)).astype(np.float32)
    got, parts = compiled.both([x], [value])
    for g, p in zip(got, parts):
        np.testing.assert_array_equal(g, p)
    m = value.mean(axis=2, keepdims=True, dtype=np.float64)
    want = (value - m) / np.sqrt(((value - m) ** 2).mean(axis=2, keepdims=True) + 1e-5)
    by_buffer = {b.outer: g for (b, _), g in zip(compiled.step.kernel.stores, got)}
    np.testing.assert_allclose(by_buffer[False], want, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(by_buffer[True], m, rtol=1e-6)


@pytest.mark.parametrize("length", [1, 7, 31])
def test_short_rows_in_blocks_with_values_stored_per_row(tmp_path, rng, length):
    # Rows of fewer than EXPRC_SHORT_ROW elements run EXPRC_COLUMNS (256) rows at a time:
    # 300 rows make a full block and a partial one.
    x = ex.matrix("x")
    top = x.max(axis=1, keepdims=True)
    scaled = ex.exp(x - top) / ex.sqrt((ex.exp(x - top) ** 2).sum(axis=1, keepdims=True))
    compiled = Compiled([x], [scaled, top], tmp_path)
    assert sorted(b.outer for b, _ in compiled.step.kernel.stores) == [False, True]
    value = rng.standard_normal((300, length))
    value[5, 0], value[9, :] = np.nan, -np.inf
    got, parts = compiled.both([x], [value])
    for g, p in zip(got, parts):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(p))
        np.testing.assert_allclose(g, p, rtol=4 * np.finfo(float).eps, atol=0)
    by_buffer = {b.outer: g for (b, _), g in zip(compiled.step.kernel.stores, got)}
    with np.errstate(invalid="ignore"):
        e = np.exp(value - value.max(axis=1, keepdims=True))
        np.testing.assert_array_equal(by_buffer[True][10:], value.max(axis=1, keepdims=True)[10:])
        want = e / np.sqrt((e**2).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(by_buffer[False][10:], want[10:], rtol=1e-14)


@pytest.mark.parametrize("shape", [(2, 1), (3, 40), (1, 70)])
@pytest.mark.parametrize("axis", [None, (0, 1)])
def test_a_softmax_over_every_axis_is_not_a_row_chain_and_matches_numpy(shape, axis):
    """Fuzzer cases 1003003009, 1006003039, 1007003054: the C row chain walks rows of one
    reduced axis; a softmax over both axes of a matrix runs as its kernels."""
    x = ex.matrix("x")
    f = ex.function([x], [ex.softmax(x, axis=axis), ex.log_softmax(x, axis=axis)], backend="c", mode="check")
    a = np.random.default_rng(5).normal(size=shape)
    e = np.exp(a - a.max())
    soft, log_soft = f(a)
    np.testing.assert_allclose(soft, e / e.sum(), rtol=1e-12)
    np.testing.assert_allclose(log_soft, a - a.max() - np.log(e.sum()), rtol=1e-12, atol=1e-14)

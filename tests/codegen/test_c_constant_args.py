"""Floating-point constants as kernel arguments (exprc.codegen.ir.constants): kernels that
differ only in constants share one C function, literals stay where they steer code or the
compiler folded them, and the values are those of NumPy, bit for bit where NumPy rounds
each operation once."""

import numpy as np

import exprc as ex
from exprc.codegen.c.target import TARGET
from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.lower import lower

from ._compare import assert_same


def _consts(kernel):
    return [e.value for e in ir.walk(kernel.roots) if isinstance(e, ir.Const)]


def _scalar_args(step):
    return [(b.dtype, var.value.item()) for b, var in step.inputs if b.ndim == 0]


def test_kernels_differing_only_in_constants_share_one_function():
    a, b = ex.vector("a"), ex.vector("b")
    outputs = [a * 0.3 + b * 2.5, a * 0.7 + b * 1.25, a * -4.5 + b * 0.125]
    f = ex.function([a, b], outputs)
    source = f.source
    # One loop nest; the other two kernels call it with their own constants.
    assert source.count("_part(const int64_t *args") == 1, source
    assert source.count("the same code as k0_") == 2, source
    rng = np.random.default_rng(0)
    av, bv = rng.standard_normal(1000), rng.standard_normal(1000)
    # one rounding per operation (contraction off): NumPy's values exactly
    for got, (ca, cb) in zip(f(av, bv), [(0.3, 2.5), (0.7, 1.25), (-4.5, 0.125)]):
        assert np.array_equal(got, av * ca + bv * cb)


def test_constants_become_scalar_buffers_bound_to_graph_constants():
    x = ex.vector("x")
    (step,) = lower([x], [ex.sin(x) * 0.3 + x * 0.5], TARGET).steps
    assert _consts(step.kernel) == []
    assert sorted(_scalar_args(step)) == [("float64", 0.3), ("float64", 0.5)]
    (inline,) = lower([x], [ex.sin(x) * 0.3 + x * 0.5], TARGET, constant_args=False).steps
    assert sorted(_consts(inline.kernel)) == [0.3, 0.5]
    assert _scalar_args(inline) == []


def test_literals_that_steer_code_or_fold_stay():
    x, n = ex.vector("x"), ex.lvector("n")
    cases = {
        "0, 1 and -1": (x * 1.0 + 0.0) * -1.0,
        "a whole number": x * 2 + 3.0,
        "an exponent": x**2.5,
        "an integer": n * 3,
        "a constant-only expression": x * ex.sin(ex.constant(0.3)),
    }
    for what, out in cases.items():
        (step,) = lower([x, n], [out], TARGET).steps
        assert _scalar_args(step) == [], what
        assert _consts(step.kernel), what


def test_float32_constants_are_rounded_once_as_numpy_does():
    x = ex.fvector("x")
    f = ex.function([x], x * 0.1 + 0.7)
    (step,) = lower([x], [x * 0.1 + 0.7], TARGET).steps
    assert sorted(_scalar_args(step)) == [("float32", float(np.float32(0.1))), ("float32", float(np.float32(0.7)))]
    xv = np.random.default_rng(1).standard_normal(257).astype("float32")
    got = f(xv)
    assert got.dtype == np.float32
    assert np.array_equal(got, xv * 0.1 + 0.7)


def test_reduction_prologue_and_epilogue_constants():
    m = ex.matrix("m")
    out = (ex.exp(m * 0.3)).sum(axis=1) * 0.7 + 0.2
    (step,) = lower([m], [out], TARGET).steps
    assert sorted(v for _, v in _scalar_args(step)) == [0.2, 0.3, 0.7]
    mv = np.random.default_rng(2).standard_normal((5, 33))
    assert_same(ex.function([m], out)(mv), np.exp(mv * 0.3).sum(axis=1) * 0.7 + 0.2)


def test_functions_of_the_same_structure_keep_their_own_constants():
    x = ex.vector("x")
    xv = np.linspace(-2, 2, 101)
    for c in (0.25, 0.75, 3.5):
        assert np.array_equal(ex.function([x], x * c + 0.5)(xv), xv * c + 0.5)


def test_constants_reach_the_segment_entry_point_without_falling_back():
    x = ex.vector("x")
    f = ex.function([x], ex.sin(x * 0.3 + 0.7) * 1.5 + x * 2.5)
    runner = f._program.compiled.whole
    assert runner is not None and len(runner.segment.constants) == 4
    xv = np.linspace(-1, 1, 50)
    (got,) = runner([xv])  # None would mean the segment handed the call back to Python
    assert_same(got, np.sin(xv * 0.3 + 0.7) * 1.5 + xv * 2.5)  # sin: libmvec's, within ulps

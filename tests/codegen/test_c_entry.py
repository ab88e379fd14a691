"""The one-call entry points: a program of kernels runs in one C call that checks shapes,
allocates temporaries and runs every kernel; consecutive kernels between NumPy steps run
in one call too; what C hands back runs step by step, with the same results."""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c import program as c
from exprc.codegen.c.call import SegmentRunner, numpy_objects_readable
from exprc.codegen.ir.segments import Segment
from tests.helpers import in_layout

from ._compare import both, check


def _compiled(f):
    return f._program.compiled


def _calls(monkeypatch, runner):
    """Count the calls of the runner's C entry points (wrapping the cffi functions); the one
    that takes array objects (``_call``) counts as "objects"."""
    counts = {"objects": 0, "pointers": 0, "shapes": 0}

    def wrap(name, attribute):
        inner = getattr(runner, attribute)

        def counted(*args):
            counts[name] += 1
            return inner(*args)

        monkeypatch.setattr(runner, attribute, counted)

    wrap("pointers", "_pointer_entry")
    wrap("shapes", "_shapes_entry")
    if runner._object_entry is not None:
        wrap("objects", "_object_entry")
    return counts


def test_elementwise_program_is_one_entry_point(rng):
    x, y = ex.vector("x"), ex.vector("y")
    fc, fn = both([x, y], x * y + 1.0)
    compiled = _compiled(fc)
    (segment,) = compiled.segments
    assert compiled.whole is not None and compiled.items == [segment]
    assert f"int {segment.name}_call(intptr_t call)" in fc.source and "/* x * y + 1.0 */" in fc.source
    for n in (10, 1, 0, 100_000):
        check(fc, fn, [rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)])
    check(fc, fn, [rng.uniform(-1, 1, 7), rng.uniform(-1, 1, 1)])  # a length 1 broadcasts


def test_whole_program_call_crosses_into_c_once(rng, monkeypatch):
    x = ex.matrix("x")
    # A softmax down the columns (over rows it would be one row chain): four kernels, with temporaries.
    fc, fn = both([x], [ex.softmax(x, axis=0), ex.exp(x).sum()])
    compiled = _compiled(fc)
    (segment,) = compiled.segments
    assert len(segment.steps) == 4 and segment.temporaries
    values = rng.uniform(-2, 2, (5, 6))
    fc(values)  # the first call with these shapes asks C for the output shapes
    counts = _calls(monkeypatch, compiled.whole)
    compiled.fast_run = compiled.whole.fast_path(compiled.run)  # the fast path sees the counting wrappers
    monkeypatch.setattr(fc._program, "run", compiled.fast_run)
    monkeypatch.setattr(fc, "_direct", compiled.whole.direct_path(single=False))  # and so does the direct one
    # and the function's own __call__, which is the direct path written out
    assert type(fc) is not ex.Function and isinstance(fc, ex.Function)
    monkeypatch.setattr(type(fc), "__call__", compiled.whole.call_method(False, ex.Function._checked_call))
    check(fc, fn, [values])
    expected = (
        {"objects": 1, "pointers": 0, "shapes": 0}
        if numpy_objects_readable()
        else {"objects": 0, "pointers": 1, "shapes": 0}
    )
    assert counts == expected


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "broadcast"])
def test_layouts_through_pointer_entry_point(layout, rng, monkeypatch):
    """The generic entry point (pointers, shapes, strides) for Pythons whose arrays C cannot read."""
    x, y = ex.matrix("x"), ex.matrix("y")
    exprs = [ex.exp(-(x**2)) * y + 1, (x * y).sum(axis=0), ex.log_softmax(x, axis=1)]
    fc, fn = both([x, y], exprs)
    compiled = _compiled(fc)
    runner = SegmentRunner(compiled.segments[0], compiled.library, use_objects=False)
    monkeypatch.setattr(compiled, "whole", runner)
    monkeypatch.setattr(fc._program, "run", compiled.run)
    counts = _calls(monkeypatch, runner)
    check(fc, fn, [in_layout(rng.uniform(-1, 1, (4, 6)), layout), in_layout(rng.uniform(-1, 1, (4, 6)), layout)])
    assert counts["pointers"] == 1


def test_shape_mismatch_is_a_shape_error():
    x, y = ex.vector("x"), ex.vector("y")
    f = ex.function([x, y], x * y + 1.0, backend="c")
    assert _compiled(f).whole is not None
    for _ in range(2):  # the error is not remembered as a shape that works
        with pytest.raises(ex.ShapeError, match=r"do not broadcast: axis 0 has lengths 3 and 4 in x \(3,\), y \(4,\)"):
            f(np.zeros(3), np.zeros(4))
    np.testing.assert_array_equal(f(np.ones(4), np.ones(4)), np.full(4, 2.0))


def test_shape_mismatch_between_kernels_is_a_shape_error():
    x, y, z = ex.matrix("x"), ex.matrix("y"), ex.vector("z")
    f = ex.function([x, y, z], [ex.exp(x).sum(axis=1) * z, x + y], backend="c")
    with pytest.raises(ValueError, match="do not broadcast"):
        f(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(5))
    with pytest.raises(ex.ShapeError, match="do not broadcast"):
        f(np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(2))


def test_cases_c_hands_back(rng):
    """Unaligned data, an epilogue that broadcasts, max over an empty axis: same as NumPy."""
    x, y = ex.vector("x"), ex.matrix("y")
    fc, fn = both([x, y], [ex.exp(x) * 2, y.max(axis=1), y.sum(axis=1, keepdims=True) + x])
    raw = np.zeros(8 * 6 + 1, dtype=np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float64, count=6, offset=1)
    unaligned[:] = rng.uniform(-1, 1, 6)
    assert not unaligned.flags.aligned
    check(fc, fn, [unaligned, rng.uniform(-1, 1, (3, 6))])
    check(fc, fn, [rng.uniform(-1, 1, 6), rng.uniform(-1, 1, (1, 6))])
    with pytest.raises(ValueError):
        fc(np.zeros(3), np.zeros((3, 0)))


def test_consecutive_kernels_between_numpy_steps_are_one_call(rng):
    x, w = ex.matrix("x"), ex.matrix("w")
    h = x @ w
    exprs = [ex.softmax(ex.tanh(h + 1), axis=1), (h * 2)[::2].sum(axis=0)]
    fc, fn = both([x, w], exprs)
    compiled = _compiled(fc)
    kinds = [type(item).__name__ for item in compiled.items]
    assert "Segment" in kinds and "NumpyStep" in kinds
    assert any(len(s.steps) > 1 for s in compiled.segments)
    for layout in ("contiguous", "transposed"):
        check(fc, fn, [in_layout(rng.uniform(-1, 1, (6, 4)), layout), in_layout(rng.uniform(-1, 1, (4, 5)), layout)])


def test_array_constants_and_unused_inputs(rng):
    x, unused = ex.vector("x"), ex.vector("u")
    fc, fn = both([unused, x], ex.exp(x) * ex.constant(np.array([1.0, 2.0, 3.0])) + 1)
    compiled = _compiled(fc)
    assert compiled.segments[0].constants and compiled.picks == [1]
    check(fc, fn, [rng.uniform(size=2), rng.uniform(size=3)])
    check(fc, fn, [rng.uniform(size=2), rng.uniform(size=1)])


def test_0d_and_non_ndarray_inputs(rng):
    a, x = ex.scalar("a"), ex.vector("x")
    fc, fn = both([a, x], [a * x + 1, ex.exp(a) + 2])
    check(fc, fn, [np.float64(0.5), rng.uniform(size=4)])
    program = fc._program
    got = program.run([np.float64(0.5), rng.uniform(size=4)])  # a NumPy scalar, not an array: step by step
    assert got[1].shape == () and isinstance(got[1], np.ndarray)


def test_compiled_once_per_process(monkeypatch):
    x = ex.vector("x")
    f = ex.function([x], ex.sin(x) * 4 + 7, backend="c")

    def fail(*args):
        raise AssertionError("the graph was lowered again")

    monkeypatch.setattr(c, "lower", fail)
    g = ex.function([x], ex.sin(x) * 4 + 7, backend="c")
    assert _compiled(g) is _compiled(f)
    np.testing.assert_allclose(g(np.zeros(2)), [7.0, 7.0])


def test_shape_memo_is_bounded(monkeypatch):
    from exprc.codegen.c import call as c_call

    monkeypatch.setattr(c_call, "MEMO_LIMIT", 4)
    x = ex.vector("x")
    f = ex.function([x], x * 3 - 1, backend="c")
    runner = _compiled(f).whole
    for n in range(12):
        np.testing.assert_array_equal(f(np.ones(n)), np.full(n, 2.0))
    assert 0 < len(runner._memo) <= 4


def test_segment_slots_are_in_order():
    x, y = ex.vector("x"), ex.vector("y")
    f = ex.function([x, y], [ex.exp(x).sum() + y], backend="c")
    (segment,) = _compiled(f).segments
    assert isinstance(segment, Segment)
    assert segment.slots == segment.inputs + segment.constants + segment.outputs + segment.temporaries
    assert segment.outputs == f.outputs and len(segment.temporaries) == 1


def _zero_strided(n):
    """A vector of ``n`` ones that takes no memory (stride 0)."""
    return np.broadcast_to(np.ones(1), (n,))


def test_an_index_space_too_large_to_count_raises_as_numpy_does():
    x, y = ex.vector("x"), ex.vector("y")
    a, b = _zero_strided(2**32), _zero_strided(2**32 + 1)
    with pytest.raises(ValueError, match="iterator is too large"):
        np.multiply(a[:, None], b[None, :])
    total = ex.function([x, y], (x[:, None] * y[None, :]).sum(), backend="c")
    with pytest.raises(ValueError, match=r"\(x\[:, None\] \* y\)\.sum\(\): iterator is too large"):
        total(a, b)
    np.testing.assert_array_equal(total(_zero_strided(3), _zero_strided(4)), 12.0)  # still fine below


def test_an_output_too_big_to_allocate_raises_as_numpy_does():
    x, y = ex.vector("x"), ex.vector("y")
    a = _zero_strided(2**31)  # 2**62 elements: countable, but not their 2**65 bytes
    with pytest.raises(ValueError, match="array is too big"):
        np.empty((2**31, 2**31))
    outer = ex.function([x, y], x[:, None] * y[None, :], backend="c")
    with pytest.raises(ValueError, match="array is too big"):
        outer(a, a)

"""The direct call path: arrays like those of an earlier checked call go straight into C,
and anything else still meets every check."""

import numpy as np
import pytest

import exprc as ex


def _f():
    x, y = ex.vector("x"), ex.vector("y")
    return ex.function([x, y], x * y + 1.0)


def test_warm_calls_take_the_direct_path(monkeypatch):
    f = _f()
    a, b = np.arange(10.0), np.ones(10)
    np.testing.assert_array_equal(f(a, b), a + 1)  # checked, and remembered
    assert f._direct is not None
    monkeypatch.setattr(type(f), "_all_exact", lambda self, args: pytest.fail("the checked path ran"))
    out = f(a, b)
    np.testing.assert_array_equal(out, a + 1)
    assert out is not a and out is not b and out.flags.writeable and out.flags.owndata


def test_a_warm_call_runs_the_functions_own_call_method_alone(monkeypatch):
    # The direct path is written out as the __call__ of the function's own subclass of
    # Function: neither Function.__call__ nor the separate direct function runs.
    f = _f()
    a, b = np.arange(4.0), np.full(4, 3.0)
    f(a, b)
    assert type(f) is not ex.Function and type(f).__name__ == "Function" and isinstance(f, ex.Function)
    monkeypatch.setattr(f, "_direct", lambda args: pytest.fail("the separate direct path ran"))
    monkeypatch.setattr(ex.Function, "_checked_call", lambda self, args, kwargs: pytest.fail("the checked path ran"))
    np.testing.assert_array_equal(f(a, b), a * 3 + 1)
    monkeypatch.undo()
    np.testing.assert_array_equal(f(x=a, y=b), a * 3 + 1)  # keywords take the checked path
    np.testing.assert_array_equal(f([0.0, 1.0], [2.0, 2.0]), [1.0, 3.0])  # so do lists


def test_inputs_first_read_out_of_order_still_take_the_direct_path(monkeypatch):
    # The first kernel reads w, then X and t (logistic regression's cost and gradient): the
    # entry point still takes the arguments in the caller's order, so warm calls go direct.
    X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
    cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w**2)
    f = ex.function([X, w, t], [cost, ex.grad(cost, w)])
    rng = np.random.default_rng(0)
    Xv, wv, tv = rng.standard_normal((50, 3)), rng.standard_normal(3), rng.choice([-1.0, 1.0], 50)
    expected = f(Xv, wv, tv)
    assert f._direct is not None
    monkeypatch.setattr(type(f), "_all_exact", lambda self, args: pytest.fail("the checked path ran"))
    got = f(Xv, wv, tv)
    e = np.exp(-tv * (Xv @ wv))
    np.testing.assert_allclose(got[0], np.mean(np.log1p(e)) + 0.01 * np.sum(wv**2), rtol=1e-12)
    np.testing.assert_allclose(got[1], Xv.T @ (-tv * e / (1 + e) / 50) + 0.02 * wv, rtol=1e-10)
    np.testing.assert_array_equal(got[1], expected[1])


def test_what_the_direct_path_refuses_is_checked_as_ever():
    f = _f()
    a = np.arange(3.0)
    f(a, a)
    with pytest.raises(TypeError, match="argument 1"):
        f(a, np.arange(3.0).astype(np.complex128))
    with pytest.raises(TypeError, match="input 'y' .*2-d"):
        f(a, np.ones((3, 1)))  # another rank
    np.testing.assert_array_equal(f(a, np.arange(3, dtype=np.int32)), a * a + 1)  # converted
    np.testing.assert_array_equal(f(a, [1.0, 1.0, 1.0]), a + 1)  # a list: converted
    np.testing.assert_array_equal(f(a[::-1], a), a[::-1] * a + 1)  # strided: the shapes are known
    with pytest.raises(TypeError, match="takes 2 inputs"):
        f(a, a, a)
    with pytest.raises(ValueError, match="do not broadcast"):
        f(a, np.ones(4))


def test_static_lengths_are_checked_for_shapes_not_seen_before():
    m = ex.tensor("m", dtype="float64", shape=(None, 3))
    f = ex.function([m], m * 2)
    f(np.ones((2, 3)))
    with pytest.raises(ValueError, match="m"):
        f(np.ones((2, 4)))  # never checked before: not taken directly
    np.testing.assert_array_equal(f(np.ones((2, 3))), np.full((2, 3), 2.0))


def test_byte_swapped_data_is_converted_not_misread():
    f = _f()
    a = np.arange(4.0)
    f(a, a)
    swapped = a.astype(">f8")
    np.testing.assert_array_equal(f(swapped, a), a * a + 1)


def test_several_outputs_are_distinct_new_arrays():
    x = ex.vector("x")
    f = ex.function([x], [x + 1, x * 2])
    a = np.arange(3.0)
    f(a)
    first, second = f(a)
    np.testing.assert_array_equal(first, a + 1)
    np.testing.assert_array_equal(second, a * 2)
    assert first is not second and not np.shares_memory(first, second)


def test_a_list_of_one_output_stays_a_list():
    x = ex.vector("x")
    as_list, as_array = ex.function([x], [x * 2]), ex.function([x], x * 2)
    a = np.arange(3.0)
    for _ in range(2):  # checked, then direct
        listed, alone = as_list(a), as_array(a)
        assert isinstance(listed, list) and len(listed) == 1 and isinstance(alone, np.ndarray)
        np.testing.assert_array_equal(listed[0], alone)


def test_the_arrays_are_handed_to_c_in_one_tuple():
    """C reads the inputs, the dtypes and constants (``fixed``) and the outputs from the items
    of one tuple: one argument for cffi to convert, not one per array."""
    from exprc.codegen.c.call import tuples_readable

    x = ex.vector("x")
    weights = np.array([0.5, -1.0, 2.0])
    f = ex.function([x], [x * weights + 1.0, (x * x).sum()])  # a constant array, two outputs
    (segment,) = f._program.compiled.segments
    assert segment.constants and f"int {segment.name}_call(intptr_t call)" in f.source
    a = np.array([1.0, 2.0, 3.0])
    f(a)
    assert tuples_readable()
    for args in ((a,), [a]):
        scaled, total = f._direct(args)
        np.testing.assert_array_equal(scaled, a * weights + 1.0)
        assert total == 14.0
    x, y = ex.vector("x"), ex.vector("y")
    g = ex.function([x, y], x - 2 * y)
    b = np.full(3, 10.0)
    g(a, b)
    np.testing.assert_array_equal(g._direct((b, a)), b - 2 * a)  # the order of the items is kept

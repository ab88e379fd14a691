"""SymPy's answers for elementwise regions are remembered by the region's shape: a shape met
before, over any leaves, is simplified again without SymPy and to the same graph."""

import numpy as np
import pytest

import exprc as ex
from exprc.rewrite import algebra_sympy


@pytest.fixture
def sympy_calls(monkeypatch):
    """The regions handed to SymPy, from an empty memo."""
    monkeypatch.setattr(algebra_sympy, "_memo", {})
    calls = []
    ask = algebra_sympy._sympy_formula

    def counted(root, nodes, leaves):
        calls.append(root)
        return ask(root, nodes, leaves)

    monkeypatch.setattr(algebra_sympy, "_sympy_formula", counted)
    return calls


def test_a_region_shape_met_before_is_not_given_to_sympy_again(sympy_calls):
    a, b, c, d = ex.vector("a"), ex.vector("b"), ex.vector("c"), ex.vector("d")
    (first,) = algebra_sympy.simplify_regions([a * b + b * a - a * b])
    assert len(sympy_calls) == 1 and str(first) == "b * a"
    (second,) = algebra_sympy.simplify_regions([c * d + d * c - c * d])  # the same shape, other leaves
    assert len(sympy_calls) == 1 and str(second) == "d * c"
    assert algebra_sympy.simplify_regions([a * b + b * a - a * b]) == [first]


def test_remembered_answers_are_the_graphs_sympy_gives(sympy_calls):
    x, y = ex.matrix("x"), ex.vector("y")
    exprs = [x * y + y * x - 2.0 * x * y + x, (x * x) / x + y * 3.0 * 2.0, (y - x) + x]
    fresh = [algebra_sympy.simplify_regions([e])[0] for e in exprs]
    asked = len(sympy_calls)
    algebra_sympy._memo.clear()
    for e, expected in zip(exprs, fresh):
        assert algebra_sympy.simplify_regions([e]) == [expected]  # hash-consed: the very same graph
    assert len(sympy_calls) == 2 * asked
    for e, expected in zip(exprs, fresh):
        assert algebra_sympy.simplify_regions([e]) == [expected]
    assert len(sympy_calls) == 2 * asked
    values = {x: np.arange(6.0).reshape(2, 3) + 1, y: np.array([0.5, -1.0, 2.0])}
    for e, simplified in zip(exprs, fresh):
        np.testing.assert_allclose(simplified.eval(values), e.eval(values))


def test_shapes_differ_by_number_and_by_whether_a_leaf_has_axes(sympy_calls):
    v, s = ex.vector("v"), ex.scalar("s")
    algebra_sympy.simplify_regions([v * 0.0 + v * 2.0 + v])
    algebra_sympy.simplify_regions([v * -0.0 + v * 2.0 + v])  # -0.0 is another number
    algebra_sympy.simplify_regions([s * 0.0 + s * 2.0 + s])  # a leaf without axes
    assert len(sympy_calls) == 3


def test_the_memo_keeps_at_most_its_size(sympy_calls, monkeypatch):
    monkeypatch.setattr(algebra_sympy, "MEMO_SIZE", 2)
    v = ex.vector("v")
    for k in (4.0, 5.0, 6.0, 4.0):  # the first is forgotten by the time it comes again
        algebra_sympy.simplify_regions([v * k + v * 3.0])
    assert len(sympy_calls) == 4 and len(algebra_sympy._memo) == 2

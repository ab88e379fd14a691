"""The expression graph: hash-consing, identity semantics, walking graphs (also
deeper than Python's recursion limit), substitution, static shapes, and how
symbolic tensors behave in Python (truth value, len, NumPy on the left)."""

import sys

import numpy as np
import pytest

import exprc as ex
from exprc.graph import Apply, ancestors, graph_inputs, substitute, toposort

DEEP = 5000


def assert_topological(order, outputs):
    """Each node once, after the nodes computing its inputs, and every node the outputs need."""
    assert all(isinstance(node, Apply) for node in order)
    assert len(set(order)) == len(order), "a node is listed twice"
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for var in node.inputs:
            if var.owner is not None:
                assert var.owner in position, f"{var} is computed by a node missing from the order"
                assert position[var.owner] < position[node], f"{var} is computed after it is used"
    for out in outputs:
        if out.owner is not None:
            assert out.owner in position


def deep_chain(x, depth=DEEP):
    """sin and + 1 alternately, ``depth`` nodes deep, with NumPy's result for ``x``'s value."""
    z = x
    for i in range(depth):
        z = ex.sin(z) if i % 2 else z + 1.0
    return z


def numpy_chain(value, depth=DEEP):
    for i in range(depth):
        value = np.sin(value) if i % 2 else value + 1.0
    return value


# --- hash-consing ----------------------------------------------------------------


def test_same_subexpression_built_twice_is_one_object():
    x, y = ex.vector("x"), ex.vector("y")
    assert ex.exp(x) + 1 is ex.exp(x) + 1
    assert x * y is x * y
    assert (x * y).owner is (x * y).owner
    assert x * y is not y * x  # a different graph, though equal in value
    assert x.sum(axis=0) is x.sum(axis=-1)  # the same normalized op
    assert x.sum(axis=0) is not x.sum(axis=0, keepdims=True)
    m = ex.matrix("m")
    assert m.T is m.T and m[1:, ::2] is m[1:, ::2]


def test_inputs_with_the_same_name_are_different_variables():
    a, b = ex.vector("x"), ex.vector("x")
    assert a is not b
    assert ex.exp(a) is not ex.exp(b)
    assert graph_inputs([a + b]) == [a, b]


def test_equal_constants_are_one_node():
    assert ex.constant(2.0) is ex.constant(2.0)
    assert ex.constant([1, 2]) is ex.constant(np.array([1, 2]))
    assert ex.constant(np.arange(3.0)) is ex.constant(np.arange(3.0))
    x = ex.vector("x")
    assert (x + 1).owner.inputs[1] is ex.constant(1)
    assert (x + 1.5).owner.inputs[1] is (x * 1.5).owner.inputs[1]
    # Different dtypes, or weak and strong, are different constants.
    assert ex.constant(1) is not ex.constant(1.0)
    assert ex.constant(1) is not ex.constant(True)
    assert ex.constant(2.0) is not ex.constant(2.0, dtype="float64")
    assert ex.constant(np.array([1, 2], np.int32)) is not ex.constant(np.array([1, 2], np.int64))
    assert ex.constant([1, 2]) is not ex.constant([[1, 2]])
    assert ex.constant(0.0) is not ex.constant(-0.0)


def test_constant_values_are_read_only_copies():
    data = np.arange(3.0)
    c = ex.constant(data)
    assert not c.value.flags.writeable
    data[0] = 100.0
    assert c.value[0] == 0.0
    with pytest.raises(ValueError):
        c.value[0] = 1.0


def test_double_equals_is_identity_and_graphs_are_hashable():
    x, y = ex.vector("x"), ex.vector("y")
    assert (x == x) is True
    assert (x == y) is False
    assert (x != y) is True
    assert (ex.exp(x) == ex.exp(x)) is True  # the same object
    table = {x: "x", ex.exp(x): "exp", x + y: "sum"}
    assert table[ex.exp(x)] == "exp"
    assert table[x + y] == "sum"
    assert len({x + 1, x + 1, x + 2}) == 2
    assert hash(ex.exp(x)) == hash(ex.exp(x))


def test_elementwise_equality_is_spelled_eq():
    x, y = ex.vector("x"), ex.vector("y")
    e, n = ex.eq(x, y), ex.neq(x, y)
    assert e.dtype == n.dtype == "bool"
    xv, yv = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    f = ex.function([x, y], [e, n])
    got_e, got_n = f(xv, yv)
    np.testing.assert_array_equal(got_e, xv == yv)
    np.testing.assert_array_equal(got_n, xv != yv)


# --- walking graphs ------------------------------------------------------------------


def test_toposort_diamond():
    x = ex.vector("x")
    top = ex.exp(x)
    left, right = ex.sin(top), ex.cos(top)
    bottom = left + right
    order = toposort([bottom])
    assert len(order) == 4
    assert order[0] is top.owner and order[-1] is bottom.owner
    assert {order[1], order[2]} == {left.owner, right.owner}
    assert_topological(order, [bottom])


def test_toposort_of_several_outputs_lists_shared_nodes_once():
    x, y = ex.vector("x"), ex.vector("y")
    shared = x * y
    a, b = ex.exp(shared), shared + 1
    order = toposort([a, b, x, shared])
    assert order.count(shared.owner) == 1
    assert len(order) == 3
    assert_topological(order, [a, b])
    assert toposort([x]) == []


def test_toposort_deep_chain_does_not_recurse():
    x = ex.vector("x")
    z = deep_chain(x)
    assert DEEP > sys.getrecursionlimit()
    order = toposort([z])
    assert len(order) == DEEP
    assert order[0].inputs[0] is x and order[-1] is z.owner
    assert_topological(order, [z])


def test_deep_chain_compiles_and_matches_numpy():
    x = ex.vector("x")
    z = deep_chain(x)
    assert graph_inputs([z]) == [x]
    assert len([v for v in ancestors([z]) if v.owner is not None]) == DEEP
    data = np.array([0.0, 0.5, -2.0])
    np.testing.assert_allclose(ex.function([x], z)(data), numpy_chain(data), rtol=1e-12)


def test_graph_inputs():
    x, y, w = ex.vector("x"), ex.vector("y"), ex.vector("w")
    assert graph_inputs([x * y + x]) == [x, y]
    assert graph_inputs([y * x + x]) == [y, x]
    assert graph_inputs([x]) == [x]
    assert graph_inputs([ex.constant(1.0) + 2.0]) == []
    assert graph_inputs([x + 1, w * y]) == [x, w, y]
    assert all(not isinstance(v, ex.Constant) for v in graph_inputs([x + np.ones(3)]))


def test_ancestors_are_in_dependency_order():
    x = ex.vector("x")
    y = ex.exp(x) * 2.0 + x
    seen = set()
    result = ancestors([y])
    for v in result:
        if v.owner is not None:
            assert all(i in seen for i in v.owner.inputs)
        seen.add(v)
    assert result[-1] is y and x in seen and ex.constant(2.0) in seen


# --- substitute ------------------------------------------------------------------------


def test_substitute_rebuilds_with_hash_consing():
    x, y = ex.vector("x"), ex.vector("y")
    expr = ex.exp(x) + x
    (new,) = substitute([expr], {x: y * 2})
    assert new is ex.exp(y * 2) + y * 2
    assert str(new) == "exp(y * 2) + y * 2"
    assert graph_inputs([expr]) == [x]  # the original is untouched
    yv = np.array([0.5, -1.0])
    np.testing.assert_allclose(new.eval({y: yv}), np.exp(yv * 2) + yv * 2, rtol=1e-15)


def test_substitute_leaves_unaffected_outputs_alone():
    x, y, w = ex.vector("x"), ex.vector("y"), ex.vector("w")
    a, b = x + 1, w * 2
    new_a, new_b = substitute([a, b], {x: y})
    assert new_b is b and new_a is y + 1
    assert substitute([x], {x: y}) == [y]


def test_substitute_an_intermediate():
    x, y = ex.vector("x"), ex.vector("y")
    inner = ex.exp(x)
    (new,) = substitute([inner.sum() + x.sum()], {inner: y})
    assert new is y.sum() + x.sum()


@pytest.mark.parametrize("replacement", [lambda: ex.fvector("q"), lambda: ex.matrix("q"), lambda: ex.ivector("q")])
def test_substitute_type_mismatch(replacement):
    x = ex.vector("x")
    new = replacement()
    with pytest.raises(TypeError) as info:
        substitute([x + 1], {x: new})
    text = str(info.value)
    assert "x" in text and "q" in text and str(x.type) in text and str(new.type) in text


def test_substitute_infers_static_shapes_anew():
    x = ex.vector("x")
    (new,) = substitute([ex.exp(x) * 2], {x: ex.tensor("s", shape=(3,))})
    assert new.type.shape == (3,)
    a, b, c = ex.tensor("a", shape=(3,)), ex.tensor("b", shape=(4,)), ex.tensor("c", shape=(3,))
    with pytest.raises(ex.ShapeError):
        substitute([a + c], {a: b})


def test_substitute_deep_chain():
    x, y = ex.vector("x"), ex.vector("y")
    (new,) = substitute([deep_chain(x)], {x: y})
    assert graph_inputs([new]) == [y]
    assert new is deep_chain(y)


# --- static shapes ------------------------------------------------------------------


SHAPE_CASES = [
    # exprc expression, NumPy's, static shapes of a and b, static shape of the result
    (lambda a, b: a + b, None, [(None, 1), (3,)], (None, 3)),
    (lambda a, b: a * b, None, [(2, 1), (1, 3)], (2, 3)),
    (lambda a, b: a - b, None, [(2, None), (None,)], (2, None)),
    (lambda a, b: a / b, None, [(1,), (None,)], (None,)),
    (lambda a, b: a @ b, None, [(2, 3), (3, 5)], (2, 5)),
    (lambda a, b: a.T @ b, None, [(3, 2), (3, None)], (2, None)),
    (lambda a, b: (a + b).sum(axis=1), None, [(2, 3), (3,)], (2,)),
    (lambda a, b: (a * b).sum(axis=0, keepdims=True), None, [(2, 3), (1, 3)], (1, 3)),
    (lambda a, b: a[1:, ::2] + b, None, [(5, 4), (2,)], (4, 2)),
    (lambda a, b: a[::-1, 0], None, [(5, None), (1,)], (5,)),
    (lambda a, b: (a + b).reshape((3, -1)), None, [(2, 3), (3,)], (3, 2)),
    (lambda a, b: ex.concatenate([a, b]), lambda a, b: np.concatenate([a, b]), [(2, 3), (4, 3)], (6, 3)),
    (lambda a, b: ex.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b), [(None, 3), (2, 1)], (2, 3)),
    (lambda a, b: ex.outer(a, b), lambda a, b: np.outer(a, b), [(3,), (None,)], (3, None)),
]


@pytest.mark.parametrize("build,oracle,shapes,static", SHAPE_CASES)
def test_static_shape_propagation_matches_numpy(build, oracle, shapes, static):
    a = ex.tensor("a", shape=shapes[0])
    b = ex.tensor("b", shape=shapes[1])
    z = build(a, b)
    assert z.type.shape == static
    # Run with a length of 2 where the static one is unknown: NumPy's result agrees.
    concrete = [tuple(2 if d is None else d for d in shape) for shape in shapes]
    av = np.arange(1.0, 1.0 + np.prod(concrete[0])).reshape(concrete[0]) - 3.0
    bv = np.linspace(-1.0, 1.0, int(np.prod(concrete[1]))).reshape(concrete[1])
    got = ex.function([a, b], z)(av, bv)
    expected = (oracle or build)(av, bv)
    assert got.shape == expected.shape
    assert all(s is None or s == n for s, n in zip(static, got.shape))
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_adding_3_and_4_is_a_shape_error_when_built():
    a, b = ex.tensor("a", shape=(3,)), ex.tensor("b", shape=(4,))
    with pytest.raises(ex.ShapeError) as info:
        a + b
    text = str(info.value)
    assert "(3,)" in text and "(4,)" in text and "a" in text and "b" in text
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError):
        np.ones(3) + np.ones(4)


def test_matmul_of_unaligned_shapes_is_a_shape_error():
    with pytest.raises(ex.ShapeError) as info:
        ex.tensor("p", shape=(2, 3)) @ ex.tensor("q", shape=(2, 5))
    assert "(2, 3)" in str(info.value) and "(2, 5)" in str(info.value)


def test_lengths_are_constants_where_static():
    t = ex.tensor("t", shape=(None, 3))
    assert isinstance(t.shape[1], ex.Constant) and t.shape[1].value == 3
    assert not isinstance(t.shape[0], ex.Constant)
    assert t.shape[0].eval({t: np.ones((5, 3))}) == 5


# --- symbolic tensors in Python ---------------------------------------------------------


def test_truth_value_is_a_type_error():
    x = ex.vector("x")
    with pytest.raises(TypeError, match="truth value"):
        bool(x)
    with pytest.raises(TypeError):
        if x > 0:
            pass
    with pytest.raises(TypeError):
        x and x  # noqa: B018 - the truth test itself is what raises
    with pytest.raises(TypeError):
        not ex.scalar("s")


def test_len_and_iteration_on_static_shapes():
    t = ex.tensor("t", shape=(3, 2))
    assert len(t) == 3
    rows = list(t)
    assert len(rows) == 3 and all(r.type.shape == (2,) for r in rows)
    data = np.arange(6.0).reshape(3, 2)
    got = ex.function([t], rows)(data)
    for row, expected in zip(got, data):
        np.testing.assert_array_equal(row, expected)
    a, b, c = t  # unpacking
    assert b is t[1]


def test_len_without_a_static_length():
    with pytest.raises(TypeError, match=r"shape\[0\]"):
        len(ex.matrix("m"))
    with pytest.raises(TypeError):
        list(ex.vector("v"))
    with pytest.raises(TypeError, match="0-d"):
        len(ex.scalar("s"))
    assert len(ex.tensor("e", shape=(0, None))) == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda arr, x: arr + x,
        lambda arr, x: arr - x,
        lambda arr, x: arr * x,
        lambda arr, x: arr / x,
        lambda arr, x: arr**x,
        lambda arr, x: arr < x,
        lambda arr, x: arr >= x,
    ],
    ids=["+", "-", "*", "/", "**", "<", ">="],
)
def test_numpy_array_on_the_left_gives_a_symbolic_tensor(build):
    x = ex.vector("x")
    arr = np.array([1.0, 2.0, 3.0])
    z = build(arr, x)
    assert isinstance(z, ex.TensorVariable), type(z)
    assert z.type.shape == (3,)
    xv = np.array([0.5, 1.0, 2.0])
    np.testing.assert_array_equal(z.eval({x: xv}), build(arr, xv))


def test_numpy_matrix_and_scalar_on_the_left():
    m = ex.matrix("m")
    z = np.eye(2) @ m
    assert isinstance(z, ex.TensorVariable) and z.type.shape == (2, None)
    mv = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(z.eval({m: mv}), np.eye(2) @ mv)
    f = ex.fvector("f")
    s = np.float32(2) * f
    assert isinstance(s, ex.TensorVariable) and s.dtype == "float32"
    d = np.float64(2) * f
    assert isinstance(d, ex.TensorVariable) and d.dtype == "float64"  # NumPy scalars are strong


def test_numpy_ufunc_on_a_symbolic_tensor_is_refused():
    # NumPy must not build an object array of symbolic tensors.
    with pytest.raises(TypeError):
        np.add(np.ones(3), ex.vector("x"))

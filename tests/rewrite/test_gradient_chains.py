"""Gradient graphs after rewriting: chains of broadcasts and ``sum_to`` are one broadcast and
one ``sum_to``, and a chain whose lengths cannot be related is left as it is."""

import numpy as np

import exprc as ex
from exprc.graph import toposort
from exprc.ops.shape import BroadcastTo, DimShuffle, SumToShape
from exprc.rewrite.rules.shapes import length_of


def mlp_gradients():
    """The W5 training step's gradients (784-256-10 there; small here)."""
    X, Y = ex.fmatrix("X"), ex.fmatrix("Y")
    W1, b1 = ex.tensor("W1", "float32", (6, 5)), ex.tensor("b1", "float32", (5,))
    W2, b2 = ex.tensor("W2", "float32", (5, 3)), ex.tensor("b2", "float32", (3,))
    logits = ex.tanh(X @ W1 + b1) @ W2 + b2
    loss = -(Y * ex.log_softmax(logits, axis=1)).sum(axis=1).mean()
    return [X, Y, W1, b1, W2, b2], ex.grad(loss, [W1, b1, W2, b2])


def _through_views(var):
    while var.owner is not None and isinstance(var.owner.op, DimShuffle):
        var = var.owner.inputs[0]
    return var


def test_mlp_gradient_has_no_chained_broadcast_or_sum_to():
    _, grads = mlp_gradients()
    nodes = toposort(ex.simplify(grads))
    for node in nodes:
        inner = _through_views(node.inputs[0]) if node.inputs else None
        if isinstance(node.op, SumToShape):
            assert not (inner.owner and isinstance(inner.owner.op, SumToShape)), ex.debugprint(node.outputs[0])
        if isinstance(node.op, BroadcastTo):
            assert not (inner.owner and isinstance(inner.owner.op, BroadcastTo)), ex.debugprint(node.outputs[0])
    assert len(nodes) < len(toposort(ex.simplify(grads, rewrites="none")))


def test_mlp_gradient_values_and_types_are_kept():
    inputs, grads = mlp_gradients()
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((4, 6)), np.eye(3)[rng.integers(0, 3, 4)]]
    values += [rng.standard_normal(v.type.shape) for v in inputs[2:]]
    values = [v.astype(np.float32) for v in values]
    reference = ex.function(inputs, grads, backend="numpy", rewrites=None)(*values)
    for backend in ("numpy", "c"):
        got = ex.function(inputs, grads, backend=backend)(*values)
        for g, want, var in zip(got, reference, inputs[2:]):
            assert g.dtype == np.float32 and g.shape == var.type.shape
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


def test_sum_to_chain_with_unrelated_lengths_is_kept():
    # Summing to x's length, then to y's: nothing says y's length is 1 or x's, so the two
    # stay; with x of length 1 and y of length 5 one sum happens, and collapsing would lose it.
    m, x, y = ex.matrix("m"), ex.vector("x"), ex.vector("y")
    chain = SumToShape((0,))(SumToShape((0,))(m, x.shape[0]), y.shape[0])
    simplified = ex.simplify(chain)
    assert isinstance(simplified.owner.inputs[0].owner.op, SumToShape)
    args = (np.arange(6.0).reshape(3, 2), np.ones(1), np.ones(5))
    want = ex.function([m, x, y], chain, backend="numpy", rewrites=None)(*args)
    np.testing.assert_array_equal(ex.function([m, x, y], chain)(*args), want)
    assert want.shape == (1, 2)


def test_broadcast_chain_of_a_scalar_is_one_broadcast():
    # The gradient of mean(sum(m, axis=1)) reaching m: a scalar broadcast, shuffled, broadcast.
    m = ex.matrix("m")
    g = ex.simplify(ex.grad(ex.sum(m, axis=1).mean(), m))
    (node,) = [n for n in toposort([g]) if isinstance(n.op, BroadcastTo)]
    assert node.inputs[0].ndim == 0
    value = ex.function([m], g)(np.ones((2, 3)))
    np.testing.assert_array_equal(value, np.full((2, 3), 0.5))


def test_elementwise_inputs_of_one_length_give_the_output_that_length():
    x = ex.matrix("x")
    shifted = x - x.max(axis=1, keepdims=True)
    assert length_of(shifted, 0) is length_of(x, 0)
    assert length_of(ex.exp(shifted) / ex.exp(shifted).sum(axis=1, keepdims=True), 0) is length_of(x, 0)
    # Two inputs that may differ (one may be 1 and broadcast): no one length.
    y = ex.matrix("y")
    assert length_of(x + y, 0).owner.inputs[0] is x + y


def test_sum_to_gives_its_target_length():
    m, v = ex.matrix("m"), ex.vector("v")
    summed = SumToShape((0,))(m, v.shape[0])
    assert length_of(summed, 0) is length_of(v, 0)
    # The outer sum_to is to the length the inner one gave: nothing is left to sum.
    again = SumToShape((0,))(ex.exp(summed), v.shape[0])
    assert [type(n.op) for n in toposort([ex.simplify(again)])].count(SumToShape) == 1


def test_mlp_gradient_sums_to_the_batch_only_where_the_labels_decide():
    # The one sum_to left undoes a broadcast of the labels Y against the logits: nothing
    # says Y has the rows of X (a Y of one row broadcasts), so it stays.
    _, grads = mlp_gradients()
    nodes = toposort(ex.simplify(grads))
    sums_to = [n for n in nodes if isinstance(n.op, SumToShape)]
    assert len(sums_to) == 1
    assert any(v.name == "Y" for v in sums_to[0].inputs[0].owner.inputs)
    assert len(nodes) <= 47


def test_lengths_of_a_deep_chain_of_two_input_nodes():
    # Each node has two inputs of unrelated lengths as far as the graph says: the search
    # for one length stops after a few such nodes instead of exhausting the stack.
    x, y = ex.vector("x"), ex.vector("y")
    v = y
    for _ in range(3000):
        v = ex.sin(v) * 1.5 + x
    assert length_of(v, 0).owner.inputs[0] is v
    value = ex.function([x, y], ex.exp(v).shape[0] * v[:2], backend="numpy")(np.ones(3), np.ones(3))
    assert value.shape == (2,)

"""The contractive autoencoder of the classic deep-learning tutorials adds
``sum(J ** 2) // batch`` to its cost, J of shape (batch, visible, hidden) built from the
weights. The gradient of ``//`` is zero, so its compiled gradient must not compute J at
all: the same graph as without the term, checked against NumPy and finite differences."""

import numpy as np
import pytest

import exprc as ex
from exprc.graph import toposort

BATCH, VISIBLE, HIDDEN = 4, 12, 8
LEVEL = 0.1


def costs(x, W, b, c):
    """The reconstruction cost, and the whole cost with the contractive term."""
    y = ex.sigmoid(x @ W + b)
    z = ex.sigmoid(y @ W.T + c)
    reconstruction = ex.mean(-ex.sum(x * ex.log(z) + (1 - x) * ex.log(1 - z), axis=1))
    J = ex.reshape(y * (1 - y), (BATCH, 1, HIDDEN)) * ex.reshape(W, (1, VISIBLE, HIDDEN))
    contraction = ex.sum(J**2) // BATCH
    return reconstruction, reconstruction + LEVEL * ex.mean(contraction)


def numpy_cost_and_grads(x, W, b, c):
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    y = sigmoid(x @ W + b)
    z = sigmoid(y @ W.T + c)
    J = (y * (1 - y))[:, None, :] * W[None, :, :]
    cost = np.mean(-np.sum(x * np.log(z) + (1 - x) * np.log(1 - z), axis=1)) + LEVEL * (np.sum(J**2) // BATCH)
    dz = (z - x) / BATCH  # d cost / d (y @ W.T + c); the // term adds nothing
    dh = (dz @ W) * y * (1 - y)
    return cost, [dz.T @ y + x.T @ dh, dh.sum(axis=0), dz.sum(axis=0)]


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    x = rng.uniform(0.05, 0.95, (BATCH, VISIBLE))
    W = rng.standard_normal((VISIBLE, HIDDEN))
    return x, W, 0.1 * rng.standard_normal(HIDDEN), 0.1 * rng.standard_normal(VISIBLE)


def test_gradient_graph_holds_no_contractive_term(problem):
    x, W, b, c = ex.matrix("x"), ex.matrix("W"), ex.vector("b"), ex.vector("c")
    reconstruction, cost = costs(x, W, b, c)
    f = ex.function([x, W, b, c], ex.grad(cost, [W, b, c]))
    without = ex.function([x, W, b, c], ex.grad(reconstruction, [W, b, c]))
    nodes = toposort(f.graph)
    assert not [n for n in nodes if any(o.ndim == 3 for o in n.outputs)]
    assert len(nodes) == len(toposort(without.graph))
    _, expected = numpy_cost_and_grads(*problem)
    for got, want in zip(f(*problem), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_cost_keeps_its_contractive_term(problem):
    x, W, b, c = ex.matrix("x"), ex.matrix("W"), ex.vector("b"), ex.vector("c")
    reconstruction, cost = costs(x, W, b, c)
    f = ex.function([x, W, b, c], [reconstruction, cost])
    expected, _ = numpy_cost_and_grads(*problem)
    got_reconstruction, got = f(*problem)
    assert got - got_reconstruction >= LEVEL  # the term is at least 1 here, so it is live
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_gradient_against_finite_differences(problem):
    x, _, b, c = problem
    # Away from the jumps of //, the cost is smooth in W, and the term's derivative is 0.
    ex.verify_grad(lambda W: costs(ex.constant(x), W, ex.constant(b), ex.constant(c))[1], [problem[1]], rng=3)

"""Random draws inside a loop body: a fresh draw at every step, the stream moved on by the
loop's step count, the same bits on every back end."""

import numpy as np
import pytest

import exprc as ex


def _noisy_chain(srng, n_steps=3):
    v0 = ex.vector("v0")
    chain, updates = ex.scan(lambda v: v + srng.uniform(size=v.shape), outputs_info=[v0], n_steps=n_steps)
    return v0, chain, updates


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_each_step_draws_anew_and_the_stream_moves_on_by_the_step_count(backend):
    srng = ex.random.RandomStream(seed=5)
    v0, chain, updates = _noisy_chain(srng)
    assert list(updates) == [srng.state]
    f = ex.function([v0], chain, backend=backend)
    first, second = f(np.zeros(2)), f(np.zeros(2))
    steps = np.diff(np.concatenate([np.zeros((1, 2)), first]), axis=0)
    later = np.diff(np.concatenate([np.zeros((1, 2)), second]), axis=0)
    draws = np.concatenate([steps, later])
    assert len({tuple(row) for row in draws.round(12)}) == 6, "a step drew the same numbers as another"
    assert ((draws >= 0) & (draws < 1)).all()
    assert srng.state.get_value().tolist() == [5, 6]


def test_the_loops_updates_given_explicitly_or_by_default_are_the_same():
    values = []
    for explicit in (False, True):
        srng = ex.random.RandomStream(seed=11)
        v0, chain, updates = _noisy_chain(srng)
        f = ex.function([v0], chain, updates=updates if explicit else None, backend="c")
        values.append([f(np.zeros(3)) for _ in range(2)])
        assert srng.state.get_value().tolist() == [11, 6]
    np.testing.assert_array_equal(values[0], values[1])


def test_the_same_bits_on_every_back_end_and_none_moved_without_default_updates():
    results = {}
    for backend in ("numpy", "c"):
        srng = ex.random.RandomStream(seed=2)
        v0, chain, _ = _noisy_chain(srng, n_steps=4)
        results[backend] = ex.function([v0], chain, backend=backend)(np.zeros(5))
        frozen = ex.function([v0], chain, backend=backend, no_default_updates=True)
        np.testing.assert_array_equal(frozen(np.zeros(5)), frozen(np.zeros(5)))
    np.testing.assert_array_equal(results["numpy"], results["c"])


def test_dropout_inside_a_loop_has_the_gradient_of_its_masks():
    srng = ex.random.RandomStream(seed=9)
    w, xs = ex.vector("w"), ex.matrix("xs")

    def step(x, h):
        keep = srng.bernoulli(0.5, size=x.shape).astype("float64")
        return ex.tanh(h * w + x * keep / 0.5)

    hs, _ = ex.scan(step, sequences=xs, outputs_info=[ex.zeros(3)])
    cost = (hs[-1] ** 2).sum()
    f = ex.function([w, xs], cost, backend="c", no_default_updates=True)
    g = ex.function([w, xs], ex.grad(cost, w), backend="c", no_default_updates=True)
    rng = np.random.default_rng(3)
    wv, xv = rng.normal(size=3), rng.normal(size=(4, 3))
    eps, numeric = 1e-6, np.zeros(3)
    for i in range(3):
        d = np.zeros(3)
        d[i] = eps
        numeric[i] = (f(wv + d, xv) - f(wv - d, xv)) / (2 * eps)
    np.testing.assert_allclose(g(wv, xv), numeric, rtol=1e-5, atol=1e-8)

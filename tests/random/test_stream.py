"""Streams: state in a shared variable, reseeding, pickling, processes, bad input, and
dropout in a training step against NumPy fed the same mask."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import exprc as ex
from exprc.ops.random import draw_values

BACKENDS = ["numpy", "c"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_draws_built_alike_are_not_merged(backend):
    srng = ex.random.RandomStream(seed=1)
    a, b = srng.uniform(size=(4,)), srng.uniform(size=(4,))
    f = ex.function([], [a, b, a - b], updates=srng.updates(), backend=backend)
    x, y, d = f()
    assert not np.array_equal(x, y)
    np.testing.assert_array_equal(d, x - y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_call_moves_the_state_on_and_reseeding_repeats_the_calls(backend):
    srng = ex.random.RandomStream(seed=5)
    f = ex.function([], srng.normal(size=(3,)), updates=srng.updates(), backend=backend)
    first, second = f(), f()
    assert not np.array_equal(first, second)
    assert srng.state.get_value().tolist() == [5, 2]
    srng.seed(5)
    np.testing.assert_array_equal(f(), first)
    np.testing.assert_array_equal(f(), second)


def test_the_state_update_is_listed_and_printed():
    srng = ex.random.RandomStream(seed=5)
    u = srng.uniform(size=(2,))
    f = ex.function([], u, updates=srng.updates(), backend="numpy")
    assert [var for var, _ in f.updates] == [srng.state]
    assert "rng_state" in str(u)


def test_default_updates_finds_the_streams_a_graph_draws_from():
    one, two = ex.random.RandomStream(seed=1), ex.random.RandomStream(seed=2)
    x = ex.vector("x")
    y = x * one.bernoulli(0.5, size=x.shape) + two.normal(size=(3,))
    updates = ex.random.default_updates([y])
    assert [var for var, _ in updates] == [one.state, two.state]
    # An update given already is kept, not doubled.
    own = [(two.state, two.state)]
    assert ex.random.default_updates([y], own)[:1] == own and len(ex.random.default_updates([y], own)) == 2


def test_with_no_default_updates_every_call_draws_the_same_numbers():
    srng = ex.random.RandomStream(seed=3)
    f = ex.function([], srng.uniform(size=(3,)), backend="numpy", no_default_updates=True)
    np.testing.assert_array_equal(f(), f())
    assert srng.state.get_value().tolist() == [3, 0]


def test_same_seed_same_numbers_for_two_streams_and_two_compilations():
    runs = []
    for _ in range(2):
        srng = ex.random.RandomStream(seed=99)
        runs.append(ex.function([], srng.integers(100, size=(6,)), updates=srng.updates(), backend="c")())
    np.testing.assert_array_equal(runs[0], runs[1])


_SCRIPT = """
import numpy as np, exprc as ex
srng = ex.random.RandomStream(seed=2026)
f = ex.function([], [srng.uniform(size=(4,)), srng.binomial(9, 0.4, size=(4,))], updates=srng.updates(), backend="c")
f()
print(repr([a.tolist() for a in f()]))
"""


def test_another_process_draws_the_same_numbers():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True).stdout
    srng = ex.random.RandomStream(seed=2026)
    f = ex.function([], [srng.uniform(size=(4,)), srng.binomial(9, 0.4, size=(4,))], updates=srng.updates())
    f()
    assert out.strip() == repr([a.tolist() for a in f()])


def test_streams_and_functions_pickle_with_their_state():
    srng = ex.random.RandomStream(seed=8)
    f = ex.function([], srng.uniform(size=(3,)), updates=srng.updates(), backend="numpy")
    f()
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g(), f())
    copy = pickle.loads(pickle.dumps(srng))
    assert copy.state.get_value().tolist() == srng.state.get_value().tolist()
    h = ex.function([], copy.uniform(size=(3,)), updates=copy.updates(), backend="numpy")
    k = ex.function([], srng.uniform(size=(3,)), updates=srng.updates(), backend="numpy")
    np.testing.assert_array_equal(h(), k())


@pytest.mark.parametrize("backend", BACKENDS)
def test_probabilities_outside_0_1_are_refused_at_run_time(backend):
    srng = ex.random.RandomStream(seed=1)
    p = ex.scalar("p")
    f = ex.function([p], srng.bernoulli(p, size=(3,)), updates=srng.updates(), backend=backend)
    assert f(0.5).shape == (3,)
    with pytest.raises(ValueError, match=r"random bernoulli \(draw 0\): p must be in \[0, 1\], got 1.5"):
        f(1.5)
    g = ex.function([p], srng.binomial(4, p, size=(2,)), updates=srng.updates(), backend=backend)
    with pytest.raises(ValueError, match=r"random binomial \(draw 1\): p must be in \[0, 1\], got nan"):
        g(np.nan)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_ranges_and_sizes_are_refused(backend):
    srng = ex.random.RandomStream(seed=1)
    with pytest.raises(ValueError, match="random integers: low must be below high, got low=5 >= high=5"):
        srng.integers(5, 5)
    with pytest.raises(ValueError, match=r"random uniform: size must be non-negative, got \(2, -1\)"):
        srng.uniform(size=(2, -1))
    with pytest.raises(TypeError, match="random binomial: n must be an integer"):
        srng.binomial(2.5, 0.5)
    with pytest.raises(ValueError, match="RandomStream: seed must be an int"):
        ex.random.RandomStream(seed=-1)
    lo, n = ex.iscalar("lo"), ex.lscalar("n")
    f = ex.function([lo, n], srng.integers(lo, 10, size=(n,)), updates=srng.updates(), backend=backend)
    assert f(3, 2).shape == (2,)
    with pytest.raises(ValueError, match="low must be below high, got low=12 >= high=10"):
        f(12, 2)
    with pytest.raises(ValueError, match="size must be non-negative"):
        f(3, -2)


def test_dtype_follows_the_parameters():
    srng = ex.random.RandomStream(seed=1)
    assert srng.uniform(size=(2,)).dtype == "float64"
    assert srng.uniform(np.float32(0), np.float32(1)).dtype == "float32"
    assert srng.normal(ex.fvector("v")).dtype == "float32"
    assert srng.normal(ex.fvector("v"), dtype="float64").dtype == "float64"
    assert srng.integers(3, size=(2,), dtype="int32").dtype == "int32"


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_in_a_training_step_matches_numpy_fed_the_same_mask(backend):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 5)), rng.standard_normal((8, 2))
    W1, W2 = rng.standard_normal((5, 6)) * 0.5, rng.standard_normal((6, 2)) * 0.5
    w1, w2 = ex.shared(W1, name="w1"), ex.shared(W2, name="w2")
    srng = ex.random.RandomStream(seed=17)
    x, y = ex.matrix("x"), ex.matrix("y")
    h = ex.tanh(x @ w1)
    keep = srng.bernoulli(0.8, size=h.shape)
    cost = (((h * keep / 0.8) @ w2 - y) ** 2).mean()
    g1, g2 = ex.grad(cost, [w1, w2])
    step = ex.function(
        [x, y], cost, updates=[(w1, w1 - 0.1 * g1), (w2, w2 - 0.1 * g2)] + srng.updates(), backend=backend
    )
    for call in range(3):
        mask = draw_values("bernoulli", keep.owner.op.draw, "bool", np.array([17, call], np.uint64), (8, 6), [0.8])
        hn = np.tanh(X @ W1)
        d = hn * mask / 0.8
        err = d @ W2 - Y
        expected_cost = (err**2).mean()
        gout = 2 * err / err.size
        G2 = d.T @ gout
        G1 = X.T @ ((gout @ W2.T) * mask / 0.8 * (1 - hn**2))
        W1, W2 = W1 - 0.1 * G1, W2 - 0.1 * G2
        np.testing.assert_allclose(step(X, Y), expected_cost, rtol=1e-12)
        np.testing.assert_allclose(w1.get_value(), W1, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(w2.get_value(), W2, rtol=1e-10, atol=1e-12)

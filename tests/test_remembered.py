"""Rewritten graphs remembered in the process and in the disk cache."""

import numpy as np
import pytest

import exprc as ex
from exprc import remembered


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRC_CACHE_DIR", str(tmp_path))
    remembered.clear_memo()
    yield tmp_path
    remembered.clear_memo()


def _graph():
    x, w = ex.matrix("x"), ex.shared(np.array([0.5, -1.0]), name="w")
    cost = ex.log(ex.exp(x @ w).sum()) * 1.0
    return x, w, cost, ex.grad(cost, w)


def _no_rewriting(*args, **kwargs):
    raise AssertionError("the graph was rewritten again")


def test_a_new_process_finds_the_rewritten_graph_on_disk(own_cache, monkeypatch):
    x, w, cost, g = _graph()
    first = ex.function([x], [cost, g], updates=[(w, w - 0.1 * g)])
    assert list(own_cache.rglob("*.graph"))
    remembered.clear_memo()  # as in a new process
    monkeypatch.setattr(remembered, "rewrite", _no_rewriting)
    second = ex.function([x], [cost, g], updates=[(w, w - 0.1 * g)])
    assert [str(v) for v in second.outputs] == [str(v) for v in first.outputs]
    assert str(second.rewrites) == str(first.rewrites) and "log_sum_exp" in second.rewrites.rules()
    data = np.random.default_rng(0).normal(size=(4, 2))
    start = w.get_value()
    a = first(data)
    w.set_value(start)
    b = second(data)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


def test_the_same_graph_in_the_same_process_is_rewritten_once(own_cache, monkeypatch):
    x, w, cost, g = _graph()
    ex.function([x], cost)
    monkeypatch.setattr(remembered, "rewrite", _no_rewriting)
    ex.function([x], cost)


def test_each_mode_has_its_own_entry(own_cache):
    x, w, cost, g = _graph()
    fast = ex.function([x], cost, rewrites="fast")
    exact = ex.function([x], cost, rewrites="exact")
    assert "log_sum_exp" in fast.rewrites.rules() and "log_sum_exp" not in exact.rewrites.rules()
    assert len(list(own_cache.rglob("*.graph"))) == 2


def test_a_damaged_entry_is_only_a_miss(own_cache):
    x, w, cost, g = _graph()
    ex.function([x], cost)
    (entry,) = own_cache.rglob("*.graph")
    entry.write_bytes(b"not a pickle")
    remembered.clear_memo()
    f = ex.function([x], cost)  # rewritten again, and stored again
    assert "log_sum_exp" in f.rewrites.rules()
    data = np.ones((3, 2))
    np.testing.assert_allclose(f(data), np.log(np.exp(data @ w.get_value()).sum()))

"""Rewritten graphs remembered in the process and in the disk cache."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import exprc as ex
from exprc import remembered
from exprc.codegen.cache.disk import DiskCache


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


def _hostile_entries(marker):
    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return {
        "pickle payload": lambda good: pickle.dumps(Payload()),
        "truncated": lambda good: good[: len(good) // 2],
        "unregistered op": lambda good: good.replace(b'"Elemwise"', b'"os.system"'),
        "wrong types": lambda good: good.replace(b'"leaf",0', b'"leaf","0"'),
    }


@pytest.mark.parametrize("kind", list(_hostile_entries(None)))
def test_a_hostile_or_corrupted_entry_is_rebuilt_and_overwritten(own_cache, monkeypatch, kind):
    marker = own_cache / "marker"
    keys = []
    store = remembered._store
    monkeypatch.setattr(remembered, "_store", lambda cache, key, *args: (keys.append(key), store(cache, key, *args)))
    x, w, cost, g = _graph()
    ex.function([x], cost)
    (key,) = keys
    cache = DiskCache(own_cache)
    good = cache.lookup_entry(key)[0].read_bytes()
    bad = _hostile_entries(marker)[kind](good)
    assert bad != good
    # Stored as exprc stores entries, so its digest is right: only its content is wrong.
    cache.store(key, bad, suffix=".graph")
    assert cache.lookup_entry(key)[0].read_bytes() == bad
    remembered.clear_memo()
    rewrites = []
    rewrite = remembered.rewrite
    monkeypatch.setattr(remembered, "rewrite", lambda *args: (rewrites.append(args), rewrite(*args))[1])
    f = ex.function([x], cost)
    assert len(rewrites) == 1 and "log_sum_exp" in f.rewrites.rules()
    assert not marker.exists()
    assert cache.lookup_entry(key)[0].read_bytes() == good  # stored over
    data = np.ones((3, 2))
    np.testing.assert_allclose(f(data), np.log(np.exp(data @ w.get_value()).sum()))
    remembered.clear_memo()
    monkeypatch.setattr(remembered, "rewrite", _no_rewriting)
    ex.function([x], cost)  # the next process reads the entry written over the bad one


def test_import_exprc_leaves_the_disk_cache_and_the_graph_format_to_the_first_build():
    code = (
        "import sys, exprc as ex; "
        "print(sorted(m for m in ('exprc.graph_format', 'exprc.codegen.cache.disk') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Pickling shared variables, graphs and compiled functions."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import exprc as ex


def _trained(backend):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    w = ex.shared(np.zeros(3), name="w")
    b = ex.shared(0.0, name="b")
    x_in, y_in = ex.matrix("X"), ex.vector("y")
    cost = ((x_in @ w + b - y_in) ** 2).mean()
    gw, gb = ex.grad(cost, [w, b])
    step = ex.function([x_in, y_in], cost, updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)], backend=backend)
    for _ in range(3):
        step(X, y)
    return step, w, b, X, y


def test_shared_variable_round_trips():
    w = ex.shared(np.arange(6.0).reshape(2, 3), name="w", shape=(None, 3))
    back = pickle.loads(pickle.dumps(w))
    assert back.name == "w" and back.type == w.type
    np.testing.assert_array_equal(back.get_value(), w.get_value())


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_trained_function_and_parameters_round_trip(backend):
    step, w, b, X, y = _trained(backend)
    step2, w2, b2 = pickle.loads(pickle.dumps((step, w, b)))
    assert w2 is not w
    np.testing.assert_array_equal(w2.get_value(), w.get_value())
    # The unpickled function updates the unpickled parameters, as the original does its own.
    for _ in range(2):
        np.testing.assert_array_equal(step2(X, y), step(X, y))
    np.testing.assert_array_equal(w2.get_value(), w.get_value())
    np.testing.assert_array_equal(b2.get_value(), b.get_value())
    assert step2.rewrites.rules() == step.rewrites.rules()
    assert str(step2.rewrites) == str(step.rewrites)


def test_unpickled_graph_is_hash_consed_again():
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x) * 3 + 1, backend="numpy", rewrites=None)
    g = pickle.loads(pickle.dumps(f))
    x2 = g.inputs[0]
    assert g.outputs[0] is ex.exp(x2) * 3 + 1


def test_deep_graph_pickles_without_recursion():
    x = ex.vector("x")
    y = x
    for i in range(3000):
        y = y * 1.0001 + (i % 7)
    f = ex.function([x], y, backend="numpy", rewrites=None)
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g([1.0, 2.0]), f([1.0, 2.0]))


_TRAIN = """
import json, pickle, sys
import numpy as np
import exprc as ex
from exprc.codegen.c import build
rng = np.random.default_rng(2)
X, y = rng.normal(size=(30, 4)), rng.normal(size=30)
w = ex.shared(np.zeros(4), name="w")
x_in, y_in = ex.matrix("X"), ex.vector("y")
cost = ((ex.tanh(x_in @ w) - y_in) ** 2).mean()
step = ex.function([x_in, y_in], cost, updates=[(w, w - 0.5 * ex.grad(cost, w))], backend="c")
for _ in range(3):
    step(X, y)
with open(sys.argv[1], "wb") as f:
    pickle.dump((step, w, X, y), f)
print(json.dumps({"stats": build.stats, "next": float(step(X, y)), "w": w.get_value().tolist()}))
"""

_LOAD = """
import json, pickle, sys
from exprc.codegen.c import build
with open(sys.argv[1], "rb") as f:
    step, w, X, y = pickle.load(f)
loss = float(step(X, y))
print(json.dumps({"stats": build.stats, "next": loss, "w": w.get_value().tolist()}))
"""


def _run(code, path, cache_dir, **env):
    environ = dict(os.environ, EXPRC_CACHE_DIR=str(cache_dir), **env)
    environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_unpickled_function_with_a_warm_cache_does_not_compile(tmp_path):
    wrapper = tmp_path / "cc-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ -n "$EXPRC_TEST_NO_COMPILER" ]; then echo "the compiler was run: $*" >&2; exit 1; fi\n'
        'exec cc "$@"\n'
    )
    wrapper.chmod(0o755)
    cache, path = tmp_path / "cache", tmp_path / "step.pkl"
    trained = _run(_TRAIN, path, cache, CC=str(wrapper))
    assert trained["stats"]["compiled"] >= 1
    loaded = _run(_LOAD, path, cache, CC=str(wrapper), EXPRC_TEST_NO_COMPILER="1")
    assert loaded["stats"]["compiled"] == 0 and loaded["stats"]["loaded_from_disk"] >= 1
    # The pickle holds the parameters as they were after three steps, so the fourth step
    # of the trained process and the first of the loaded one agree exactly.
    assert loaded["next"] == trained["next"]


def test_graph_of_many_kinds_of_op_round_trips():
    x, i = ex.matrix("x"), ex.lvector("i")
    parts = [
        ex.softmax(x, axis=1)[i].sum(axis=0),
        ex.logsumexp(x.T @ x, axis=0),
        ex.where(x > 0, ex.sigmoid(x), ex.clip(x, -1, 1)).astype("float32").max(axis=0).astype("float64"),
        ex.set_subtensor(x[:, ::-1][0], 2.0).reshape((-1,))[:3],
        ex.concatenate([ex.gammaln(ex.abs(x) + 1), ex.erf(x)], axis=0).var(axis=0)[:3],
    ]
    cost = sum(p.sum() for p in parts)
    outputs = parts + [ex.grad(cost, x)]
    f = ex.function([x, i], outputs, backend="numpy")
    g = pickle.loads(pickle.dumps(f))
    data = np.random.default_rng(3).normal(size=(3, 3))
    for a, b in zip(f(data, [0, 2, 2]), g(data, [0, 2, 2])):
        np.testing.assert_array_equal(a, b)

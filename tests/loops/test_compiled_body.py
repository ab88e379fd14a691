"""The back ends' run step for loops (``Lowering.run``): the body compiled once for the back
end, driven from the host, agrees with the NumPy reference; and loops pickle."""

import pickle

import numpy as np
import pytest

import exprc as ex
from exprc.ops.loops import Scan
from tests.ops import _oracle

from ._loops import rnn_step, same


def _table():
    backend = _oracle.current_backend()
    if backend == "c":
        from exprc.codegen.c.lowerings import C_LOWERINGS

        return C_LOWERINGS
    if backend == "cuda":
        from exprc.codegen.cuda.lowerings import CUDA_LOWERINGS

        return CUDA_LOWERINGS
    pytest.skip("the NumPy reference has no lowering table")


def _values(node, feeds):
    """The node's input values, computed by the NumPy reference."""
    f = ex.function(list(feeds), list(node.inputs), backend="numpy", rewrites=None)
    return [np.asarray(v) for v in f(*feeds.values())]


def test_the_run_step_compiles_the_body_once_and_agrees_with_numpy(rng):
    table = _table()
    x, h0, W, U, b = ex.tensor3("x"), ex.matrix("h0"), ex.matrix("W"), ex.matrix("U"), ex.vector("b")
    hs, _ = ex.scan(rnn_step, sequences=x, outputs_info=h0, non_sequences=[W, U, b], name="rnn")
    node = hs.owner
    feeds = dict(zip([x, h0, W, U, b], (rng.normal(size=s) for s in ((4, 2, 3), (2, 3), (3, 3), (3, 3), (3,)))))
    inputs = _values(node, feeds)
    run = table.of(node.op).run
    assert run is not None
    expected = node.op.perform(node, inputs)
    for _ in range(2):
        for got, want in zip(run(node, inputs), expected):
            same(np.asarray(got), want)
    assert sorted(node.op._programs) == sorted([(_oracle.current_backend(), "body"), ("numpy", "body")])


def test_the_run_step_of_ifelse_compiles_the_chosen_branch():
    table = _table()
    x, s = ex.vector("x"), ex.scalar("s")
    y = ex.ifelse(s > 0, ex.exp(x), x * 2)
    node = y.owner
    inputs = _values(node, {x: np.array([1.0, 2.0]), s: np.array(-1.0)})
    (got,) = table.of(node.op).run(node, inputs)
    same(np.asarray(got), np.array([2.0, 4.0]))
    assert [which for _, which in node.op._programs] == ["else"]


def test_a_function_with_a_loop_pickles():
    if _oracle.current_backend() == "cuda":
        pytest.skip("device functions pickle in tests/test_pickle.py")
    x = ex.vector("x")
    ys, _ = ex.scan(lambda v, acc: acc * 0.5 + v, sequences=x, outputs_info=ex.constant(0.0))
    f = ex.function([x], ys, backend=_oracle.current_backend())
    f([1.0])
    g = pickle.loads(pickle.dumps(f))
    same(g([1.0, 2.0]), np.array([1.0, 2.5]))
    assert any(isinstance(n.op, Scan) for n in ex.toposort(g.outputs))

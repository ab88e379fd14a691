"""The same draws on every back end: the NumPy reference, the C routine on any number of
threads, and compiled functions (the CUDA kernels are checked in test_cuda.py)."""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c.build import compiler_missing
from exprc.ops.random import draw_values
from exprc.random import RandomStream

pytestmark = pytest.mark.skipif(compiler_missing() is not None, reason=str(compiler_missing()))

STATE = np.array([0x0123456789ABCDEF, 41], np.uint64)
SHAPE = (3, 1001)  # not a multiple of a block's 4 or 2 elements

#: (dist, dtype, params): broadcast parameters, and ranges and probabilities at their edges.
CASES = [
    ("uniform", "float32", [np.float32(-1.5), np.float32(2.0)]),
    ("uniform", "float64", [np.zeros((3, 1)), np.arange(1.0, 1002.0)]),
    ("normal", "float32", [np.float32(1.0), np.float32(3.0)]),
    ("normal", "float64", [np.arange(3.0)[:, None], 0.5]),
    ("bernoulli", "bool", [np.array([[0.0], [0.3], [1.0]])]),
    ("integers", "int64", [np.int64(-(2**62)), np.int64(2**62)]),
    ("integers", "int64", [np.array([[-5], [0], [7]]), np.array([[-4], [1000], [2**40]])]),
    ("integers", "int32", [np.int64(0), np.int64(6)]),
    ("binomial", "int64", [np.array([[0], [7], [3000]]), np.array([[0.3], [0.9], [0.5]])]),
    ("binomial", "int64", [np.int64(20), np.linspace(0.0, 1.0, 1001)]),
]


def _ulps(a, b):
    bits = np.int32 if a.dtype == np.float32 else np.int64
    return np.abs(a.view(bits).astype(np.int64) - b.view(bits).astype(np.int64))


#: Normals call log, sin and cos: libm's in C, NumPy's own loops in the reference.
NORMAL_ULPS = 4


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dist, dtype, params", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_c_draws_are_the_references_bits_on_any_number_of_threads(dist, dtype, params, threads, monkeypatch):
    from exprc.codegen.c import random as c_random

    # Small draws run on one thread; this one must be shared out.
    monkeypatch.setattr(c_random, "PARALLEL_FROM", 0)
    expected = draw_values(dist, 9, dtype, STATE, SHAPE, [np.asarray(p) for p in params])
    got = c_random.draw(dist, 9, dtype, STATE, SHAPE, params, threads=threads)
    assert got.dtype == expected.dtype and got.shape == SHAPE
    if dist == "normal":
        assert _ulps(got, expected).max() <= NORMAL_ULPS
    else:
        np.testing.assert_array_equal(got, expected)


def test_the_c_draw_follows_ex_set_num_threads(monkeypatch):
    from exprc.codegen.c import random as c_random

    monkeypatch.setattr(c_random, "PARALLEL_FROM", 0)
    runs = []
    for n in (1, 2):
        with ex.num_threads(n):
            runs.append(c_random.draw("uniform", 0, "float64", STATE, (999,), [0.0, 1.0]))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], draw_values("uniform", 0, "float64", STATE, (999,), [0.0, 1.0]))


def test_the_c_step_of_a_draw_node_is_its_reference():
    from exprc.codegen.c.lowerings import C_LOWERINGS
    from exprc.codegen.c.random import run_draw

    srng = RandomStream(seed=5)
    for v in (srng.uniform(0.5, np.arange(1.0, 4.0)), srng.binomial(10, 0.25, size=(4, 5)), srng.permutation(7)):
        node = v.owner
        assert C_LOWERINGS.of(node.op).run is run_draw
        values = ex.function([], list(node.inputs), backend="numpy")()
        np.testing.assert_array_equal(run_draw(node, values)[0], node.op.perform(node, values)[0])


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_compiled_functions_draw_the_references_values(backend):
    srng = RandomStream(seed=2024)
    x = ex.matrix("x", dtype="float32")
    outputs = [
        srng.uniform(size=x.shape, dtype="float32"),
        srng.normal(x, 2.0),
        srng.bernoulli(0.25, size=(5, 7)),
        srng.integers(-3, 9, size=(11,)),
        srng.binomial(40, 0.6, size=(6,)),
    ]
    f = ex.function([x], outputs, updates=srng.updates(), backend=backend)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    first, second = f(a), f(a)
    state = lambda calls: np.array([2024, calls], np.uint64)  # noqa: E731
    params = [[np.float32(0), np.float32(1)], [a, np.float32(2)], [0.25], [-3, 9], [40, 0.6]]
    shapes = [(3, 4), (3, 4), (5, 7), (11,), (6,)]
    for k, (out, v) in enumerate(zip(outputs, params)):
        node = out.owner.op
        for calls, got in ((0, first[k]), (1, second[k])):
            expected = draw_values(
                node.dist, node.draw, node.dtype, state(calls), shapes[k], [np.asarray(p) for p in v]
            )
            np.testing.assert_array_equal(got, expected)
    assert srng.state.get_value()[1] == 2

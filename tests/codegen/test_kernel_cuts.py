"""Long elementwise expressions cut into kernels of at most ``MAX_KERNEL_NODES`` nodes
(exprc.codegen.ir.lower): the pieces of a chain share one body, and the values are the
same bits as the uncut kernel's, on the C back end and on the stand-in GPU."""

import re

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c import program as c_program
from exprc.codegen.c.render import render_kernels
from exprc.codegen.c.target import TARGET
from exprc.codegen.ir import lower as lowering
from exprc.codegen.ir.lower import KernelStep, lower
from tests.codegen.cuda_fake import FakeGpu

from ._compare import assert_same


def _chain(x, n, c=1.0):
    for i in range(n):
        x = ex.sin(x) if i % 2 else x + c
    return x


def _bodies(program):
    """The distinct loop nests of the program's C, names and comments aside."""
    texts = render_kernels(program.kernels)
    return {re.sub(r"/\*.*?\*/|\bk\d+_\w+", "", t, flags=re.S) for t in texts if "the same code as" not in t}


def test_a_long_chain_is_cut_into_pieces_of_one_structure():
    x = ex.vector("x")
    program = lower([x], [_chain(x, 60)], TARGET, max_nodes=8)
    steps = [s for s in program.steps if isinstance(s, KernelStep)]
    assert [len(s.nodes) for s in steps] == [8] * 7 + [4]
    # The first piece reads x, the last is shorter: three loop nests for eight kernels.
    assert len(_bodies(program)) == 3
    assert len(lower([x], [_chain(x, 60)], TARGET, max_nodes=1000).steps) == 1


def test_a_long_sum_is_cut_and_its_constants_stay_arguments():
    x = ex.vector("x")
    out = sum(ex.sin(x * (1 + k / 40)) for k in range(40))
    program = lower([x], [out], TARGET, max_nodes=12)
    steps = program.steps
    assert len(steps) > 5 and all(len(s.nodes) <= 12 for s in steps)
    assert len(_bodies(program)) <= 3  # the first, the pieces of four terms, the last


def test_values_that_others_use_are_not_cut_around():
    # The gradient of a chain uses every value of the chain: cutting it would make each
    # piece of the gradient compute the chain again.
    x = ex.vector("x")
    (g,) = ex.simplify([ex.grad(ex.sum(_chain(x, 40)), x)])
    whole = lower([x], [g], TARGET, max_nodes=10**6).steps
    cut = lower([x], [g], TARGET, max_nodes=8).steps
    assert sum(len(s.nodes) for s in cut) == sum(len(s.nodes) for s in whole)


def test_small_trees_beside_a_shared_value_are_not_cut_off():
    # Each step's x * c is a tree of its own, but the chain through y is used twice:
    # storing the small trees alone would only add kernels.
    x = y = ex.vector("x")
    for k in range(30):
        y = ex.sin(y) * y + x * (0.5 + k / 100)
    assert len(lower([x], [y], TARGET, max_nodes=16).steps) == 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cut_kernels_give_the_bits_of_one_kernel(monkeypatch, rng, dtype):
    x, m = ex.vector("x", dtype=dtype), ex.matrix("m", dtype=dtype)
    y = _chain(x, 12, c=0.3)
    shared = ex.exp(-(y * y)) * 0.7
    outputs = [shared * shared + y, _chain(m, 10).sum(axis=1) * 0.2]
    xv = rng.uniform(-1, 1, 301).astype(dtype)
    mv = rng.uniform(-1, 1, (7, 40)).astype(dtype).T  # strided: the strided path too
    results = {}
    for budget in (3, 10**6):
        monkeypatch.setattr(lowering, "MAX_KERNEL_NODES", budget)
        c_program.clear_memo()
        f = ex.function([x, m], outputs, backend="c")
        kernels = len(f._program.program.kernels)
        results[budget] = (kernels, f(xv, mv))
    c_program.clear_memo()
    assert results[3][0] > 6 and results[10**6][0] == 2
    expected = ex.function([x, m], outputs, backend="numpy")(xv, mv)
    for cut, whole, want in zip(results[3][1], results[10**6][1], expected):
        assert np.array_equal(cut, whole)
        assert_same(cut, want, ulps=64)


def test_cut_kernels_on_the_stand_in_gpu(monkeypatch, rng):
    FakeGpu(monkeypatch)
    monkeypatch.setattr(lowering, "MAX_KERNEL_NODES", 6)
    x = ex.vector("x")
    out = _chain(x, 40, c=0.25)
    f = ex.function([x], out, device="cuda")
    assert len(f._program.compiled.program.steps) == 7
    xv = rng.uniform(-1, 1, 50)
    np.testing.assert_allclose(f(xv).get(), ex.function([x], out, backend="numpy")(xv), rtol=1e-12)

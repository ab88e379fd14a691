"""NumPy's array methods on symbolic tensors give what NumPy's functions give."""

import numpy as np
import pytest

import exprc as ex

A = np.random.default_rng(8).normal(size=(3, 4))

METHODS = {
    "sort": (lambda x: x.sort(), lambda a: np.sort(a)),
    "sort(axis=0)": (lambda x: x.sort(axis=0), lambda a: np.sort(a, axis=0)),
    "argsort": (lambda x: x.argsort(), lambda a: np.argsort(a, kind="stable")),
    "cumsum": (lambda x: x.cumsum(axis=1), lambda a: a.cumsum(axis=1)),
    "cumprod": (lambda x: x.cumprod(), lambda a: a.cumprod()),
    "repeat": (lambda x: x.repeat(2, axis=0), lambda a: a.repeat(2, axis=0)),
    "take": (lambda x: x.take([0, 2], axis=1), lambda a: a.take([0, 2], axis=1)),
    "diagonal": (lambda x: x.diagonal(1), lambda a: a.diagonal(1)),
    "trace": (lambda x: x.trace(), lambda a: a.trace()),
    "swapaxes": (lambda x: x.swapaxes(0, 1), lambda a: a.swapaxes(0, 1)),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_matches_numpy(name):
    method, oracle = METHODS[name]
    x = ex.matrix("x")
    np.testing.assert_allclose(method(x).eval({x: A}), oracle(A))

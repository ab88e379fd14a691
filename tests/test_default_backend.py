"""Which back end ``exprc.function`` compiles for when none is named."""

import sys

import numpy as np
import pytest

import exprc as ex

function_module = sys.modules["exprc.function"]  # the name exprc.function is the function


def test_c_is_the_default():
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x) + 1)
    assert f.backend == "c"
    assert "exp" in f.source and "#include" in f.source_full
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), np.exp([0.0, 1.0]) + 1)


def test_without_a_compiler_numpy_runs_the_graph_and_says_so(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/exprc-test-cc")
    monkeypatch.setattr(function_module, "_fallback_warned", [])
    x = ex.vector("x")
    with pytest.warns(RuntimeWarning, match="'/nonexistent/exprc-test-cc' is not found.*NumPy reference back end"):
        f = ex.function([x], ex.exp(x) * 3)
    assert f.backend == "numpy"
    np.testing.assert_allclose(f(np.array([0.0])), [3.0])

"""The derivative table (exprc/ops/derivative_table.py) is what SymPy derives from the scalar
ops' SymPy forms now, its formulas compute SymPy's derivatives, and a process that finds its
graph in the cache takes gradients and compiles without importing SymPy."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import exprc as ex
from exprc.ops import from_sympy
from exprc.ops.derivative_table import PARTIALS
from exprc.ops.elemwise import formula_graph, partials
from exprc.ops.scalar import ScalarOp, derivatives, symbols_of

ROOT = Path(__file__).resolve().parents[2]
OPS = from_sympy.tabulated_ops()


def test_table_is_what_sympy_derives_now():
    assert from_sympy.TABLE.read_text() == from_sympy.table_source(), (
        "exprc/ops/derivative_table.py is out of date: run python -m exprc.ops.from_sympy --write"
    )
    assert from_sympy.main(["--check"]) == 0


def _typed(formula):
    """``formula`` with each number's type beside it: 1, 1.0 and True are different constants."""
    if isinstance(formula, tuple):
        return tuple(_typed(f) for f in formula)
    return type(formula).__name__, formula


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_each_entry_is_the_derivation_with_its_number_types(op):
    assert _typed(PARTIALS[op.name]) == _typed(from_sympy.partial_formulas(op))
    assert partials(op) is PARTIALS[op.name]


# Edge values as well as ordinary ones: zero, one, ties between inputs, the small and the large
# (a power of two, so that quotients of points are exact where floor and mod meet them).
POINTS = [0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -3.25, 7.0, 2.0**-20, 30.0, 0.999999]


def _sympy_value(expr, symbols, point):
    """SymPy's value of ``expr`` at ``point`` (exact: each float as a rational), or None where it
    is not a finite real number."""
    try:
        value = complex(sp.N(expr.subs(dict(zip(symbols, map(sp.Rational, point)))), 30))
    except (TypeError, ValueError):
        return None
    return value.real if value.imag == 0 and np.isfinite(value.real) else None


def _has_formula(op):
    found = PARTIALS[op.name]
    return found is not None and any(not isinstance(f, str) or f.startswith("x") for f in found)


@pytest.mark.parametrize("op", [op for op in OPS if _has_formula(op)], ids=lambda op: op.name)
def test_formulas_compute_sympys_derivatives(op):
    """Each partial, built as a graph from the table and run on the NumPy back end, against
    SymPy's own derivative evaluated at the same points in 30 digits."""
    symbols = symbols_of(op)
    points = list(itertools.product(POINTS if op.nin < 3 else POINTS[:6], repeat=op.nin))  # where, clip: 216
    columns = np.array(points, dtype=np.float64).T
    inputs = {f"x{i}": ex.vector(f"x{i}") for i in range(op.nin)}
    compared = 0
    for formula, exact in zip(PARTIALS[op.name], derivatives(op)):
        if isinstance(formula, str) and formula not in inputs:
            assert "no exprc form" in formula  # digamma's derivative: raised when a gradient needs it
            continue
        graph = formula_graph(formula, inputs) if not isinstance(formula, int) else ex.constant(float(formula))
        with np.errstate(all="ignore"):
            got = np.broadcast_to(graph.eval({v: columns[i] for i, v in enumerate(inputs.values())}), len(points))
        for point, value in zip(points, got):
            expected = _sympy_value(exact, symbols, point)
            if expected is not None and np.isfinite(value):
                # float64 loses digits near a pole (1 - x**2 at x = 0.999999) and to underflow; a wrong rule is off by far more
                np.testing.assert_allclose(value, expected, rtol=1e-8, atol=1e-12, err_msg=f"{op.name} at {point}")
                compared += 1
    assert compared >= 4, f"{op.name}: too few points where the derivative is finite"


def test_an_op_the_table_lacks_is_differentiated_by_sympy():
    cube = ScalarOp("cube_for_test", 1, lambda x: x**3, sympy=lambda x: x**3)
    assert cube.name not in PARTIALS
    assert partials(cube) == (("multiply", 3.0, ("square", "x0")),)
    x = ex.vector("x")
    g = ex.grad(ex.ops.elemwise.elementwise(cube, x).sum(), x)
    np.testing.assert_allclose(g.eval({x: np.array([1.0, -2.0])}), [3.0, 12.0])


def test_a_derivative_with_no_exprc_form_raises_when_needed():
    x = ex.vector("x")
    first = ex.grad(ex.gammaln(x).sum(), x)  # digamma(x): fine
    np.testing.assert_allclose(first.eval({x: np.array([1.0])}), [-0.5772156649015329])
    with pytest.raises(NotImplementedError, match=r"gradient of digamma .*polygamma\(1, x0\)"):
        ex.grad(first.sum(), x)


_CHILD = """
import json, sys
import numpy as np
import exprc as ex
import exprc.rewrite.engine as engine

rewrote = []
run = engine._Phase.run
engine._Phase.run = lambda self, outputs: rewrote.append(1) or run(self, outputs)
X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w ** 2)
outputs = [cost, ex.grad(cost, w)]
after_grad = "sympy" in sys.modules
f = ex.function([X, w, t], outputs, backend="c")
rng = np.random.default_rng(0)
values = [rng.normal(size=(50, 7)), rng.normal(size=7), np.sign(rng.normal(size=50))]
got = [np.asarray(v).tolist() for v in f(*values)]
print(json.dumps({"after_grad": after_grad, "after_function": "sympy" in sys.modules, "rewrote": bool(rewrote),
                  "got": got}))
"""


def _child(cache_dir):
    environ = dict(os.environ, EXPRC_CACHE_DIR=str(cache_dir))
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _CHILD], env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_warm_process_takes_the_gradient_and_compiles_without_sympy(tmp_path):
    """W4/W6's graph, cost and gradient by ex.grad: the second process finds the rewritten
    graph and the library on disk, so it neither rewrites nor imports SymPy."""
    cold = _child(tmp_path)
    assert not cold["after_grad"] and cold["rewrote"]
    warm = _child(tmp_path)
    assert warm == {**cold, "after_function": False, "rewrote": False}

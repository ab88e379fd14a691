"""SymPy expressions as formulas of exprc's scalar operations: how derivatives taken by SymPy,
and the algebra pass's results, become elementwise ops.

A *formula* is a SymPy expression written with exprc's scalar operations, in plain Python
data: ``"x0"``, ``"x1"``... stand for the inputs, a bool, int or float for a weak constant,
a tuple ``(name, *arguments)`` for the scalar operation ``name``; ``exprc.ops.elemwise.
formula_graph`` builds one over tensors, with no SymPy. Numbers stay weak, so a float32
gradient stays float32. Functions map to the elementwise op of the same meaning;
``Piecewise`` becomes nested ``where``, so the gradient of ``maximum`` or ``clip`` goes to
the input that was chosen.

The elementwise ops' partial derivatives are derived here ahead of time into
``exprc/ops/derivative_table.py``: ``python -m exprc.ops.from_sympy --write`` regenerates
it after a SymPy form in ``exprc/ops/scalar.py`` changes (``--check`` says whether it is
up to date).

>>> import sympy as sp
>>> x0 = sp.Symbol("x0", real=True)
>>> to_formula(1 - sp.tanh(x0) ** 2, {x0: "x0"})
('subtract', 1.0, ('square', ('tanh', 'x0')))
"""

import json
import sys
from functools import cache
from pathlib import Path

import sympy as sp

from ..dtypes import SUPPORTED
from .scalar import DERIVATIVE_OPS, SCALAR_OPS, cast, derivatives, rint, sigmoid, softplus, symbols_of

#: SymPy function -> name of the exprc elementwise function computing it.
_FUNCTIONS = {
    sp.exp: "exp",
    sp.log: "log",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.asin: "arcsin",
    sp.acos: "arccos",
    sp.atan: "arctan",
    sp.atan2: "arctan2",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.tanh: "tanh",
    sp.asinh: "arcsinh",
    sp.acosh: "arccosh",
    sp.atanh: "arctanh",
    sp.erf: "erf",
    sp.erfc: "erfc",
    sp.loggamma: "gammaln",
    sp.Abs: "abs",
    sp.sign: "sign",
    sp.floor: "floor",
    sp.ceiling: "ceil",
    sigmoid: "sigmoid",
    softplus: "softplus",
    rint: "rint",
    sp.Max: "maximum",
    sp.Min: "minimum",
}

_RELATIONS = {
    sp.Eq: "equal",
    sp.Ne: "not_equal",
    sp.StrictLessThan: "less",
    sp.LessThan: "less_equal",
    sp.StrictGreaterThan: "greater",
    sp.GreaterThan: "greater_equal",
}

_LOGIC = {sp.And: "logical_and", sp.Or: "logical_or"}


def _number(expr):
    value = float(expr)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def to_formula(expr, inputs):
    """SymPy ``expr`` as a formula (see above), with ``inputs`` mapping each symbol to the name
    that stands for it (``"x0"``...). Repeated subexpressions are one shared tuple.

    Raises NotImplementedError naming the part of ``expr`` that has no exprc form.
    """
    memo = {}

    def call(name, *args):
        if name not in SCALAR_OPS and name not in DERIVATIVE_OPS:
            raise KeyError(f"no scalar operation is called {name!r}")
        return (name, *args)

    def build(e):
        if e not in memo:
            memo[e] = _build(e, build, inputs, call)
        return memo[e]

    return build(sp.sympify(expr))


def _float_number(expr):
    try:
        return float(expr)
    except TypeError:  # complex infinity (x / 0 to SymPy, whose sign NumPy would know) or complex
        raise NotImplementedError(f"{expr} is not a real number") from None


def _build(e, build, inputs, call):
    if e in inputs:
        return inputs[e]
    if e is sp.true or e == sp.true:
        return True
    if e is sp.false or e == sp.false:
        return False
    if e.is_number:
        return _float_number(e)
    if isinstance(e, sp.Add):
        return _sum(e, build, call)
    if isinstance(e, sp.Mul):
        return _product(e, build, call)
    if isinstance(e, sp.Pow):
        return _power(e.base, e.exp, build, call)
    if isinstance(e, sp.Piecewise):
        *branches, (last, _) = e.args
        out = build(last)
        for value, condition in reversed(branches):
            out = call("where", build(condition), build(value), out)
        return out
    if isinstance(e, sp.Heaviside):  # 1 above 0, 0 below, 1/2 at 0 (SymPy's convention)
        u = build(e.args[0])
        return call("where", call("greater", u, 0), 1.0, call("where", call("less", u, 0), 0.0, 0.5))
    if isinstance(e, sp.polygamma) and e.args[0] == 0:
        return call("digamma", build(e.args[1]))
    if isinstance(e, sp.Not):
        return call("logical_not", build(e.args[0]))
    for table in (_RELATIONS, _LOGIC):
        if type(e) in table:
            args = [build(a) for a in e.args]
            out = call(table[type(e)], args[0], args[1])
            for a in args[2:]:
                out = call(table[type(e)], out, a)
            return out
    if e.func in _FUNCTIONS:
        args = [build(a) for a in e.args]
        out = call(_FUNCTIONS[e.func], args[0], *args[1:2])
        for a in args[2:]:  # Max and Min of more than two arguments
            out = call(_FUNCTIONS[e.func], out, a)
        return out
    raise NotImplementedError(f"no exprc form for the SymPy expression {e} ({type(e).__name__})")


def _negative_coefficient(term):
    coeff, _ = term.as_coeff_Mul()
    return bool(coeff.is_number and coeff < 0)


def _sum(e, build, call):
    terms = sorted(e.args, key=_negative_coefficient)  # positive terms first: a - b, not -b + a
    out = None
    for term in terms:
        if out is not None and _negative_coefficient(term):
            out = call("subtract", out, build(-term))
        else:
            value = build(term)
            out = value if out is None else call("add", out, value)
    return out


def _product(e, build, call):
    coeff, rest = e.as_coeff_Mul()
    numerator, denominator = [], []
    for factor in sp.Mul.make_args(rest):
        if isinstance(factor, sp.Pow) and factor.exp.is_number and factor.exp < 0:
            denominator.append(build(sp.Pow(factor.base, -factor.exp)))
        else:
            numerator.append(build(factor))
    negate = coeff < 0
    coeff = -coeff if negate else coeff
    if coeff != 1:
        numerator.insert(0, _float_number(coeff))
    out = None
    for f in numerator:
        out = f if out is None else call("multiply", out, f)
    for f in denominator:
        out = call("true_divide", 1.0 if out is None else out, f)
    out = 1.0 if out is None else out
    return call("negative", out) if negate else out


def _power(base, exponent, build, call):
    if base == sp.E:
        return call("exp", build(exponent))
    if exponent.is_number:
        if exponent == sp.Rational(1, 2):
            return call("sqrt", build(base))
        if exponent == 2:
            return call("square", build(base))
        if exponent < 0:
            return call("true_divide", 1.0, _power(base, -exponent, build, call))
        if exponent == 1:
            return build(base)
        return call("power", build(base), _number(exponent))
    return call("power", build(base), build(exponent))


# --- the derivative table ------------------------------------------------------------------

#: The generated module holding every scalar operation's partial derivatives.
TABLE = Path(__file__).with_name("derivative_table.py")


def partial_formulas(scalar_op):
    """The partial derivatives of ``scalar_op``, one formula per input over ``"x0"``,
    ``"x1"``...; the int 0, 1 or -1 for those constants (a gradient that needs no product), a
    string naming no input for a derivative with no exprc form (it says why); None when the
    operation has no SymPy form (boolean and bitwise operations).

    >>> partial_formulas(SCALAR_OPS["multiply"])
    ('x1', 'x0')
    >>> partial_formulas(SCALAR_OPS["subtract"])
    (1, -1)
    """
    return _partial_formulas(scalar_op)


@cache
def _partial_formulas(scalar_op):
    found = derivatives(scalar_op)
    if found is None:
        return None
    names = {s: f"x{i}" for i, s in enumerate(symbols_of(scalar_op))}
    return tuple(_partial_formula(d, names) for d in found)


def _partial_formula(partial, names):
    special = next((k for k in (0, 1, -1) if partial == k), None)
    if special is not None:
        return special
    try:
        return to_formula(partial, names)
    except NotImplementedError as err:  # raised when a gradient needs it, as SymPy would say it
        return str(err)


def tabulated_ops():
    """The scalar operations the table holds: every row of SCALAR_OPS, the operations only
    derivatives produce, and the casts to every supported dtype."""
    return [*SCALAR_OPS.values(), *DERIVATIVE_OPS.values(), *(cast(d) for d in SUPPORTED)]


_HEADER = '''"""The partial derivatives of the elementwise operations, derived ahead of time from the
SymPy forms in exprc/ops/scalar.py, so that taking a gradient never imports SymPy.

Generated by ``python -m exprc.ops.from_sympy --write``: do not edit. Regenerate it after
changing a SymPy form; tests/grad/test_derivative_table.py fails while it is out of date.
Each entry is one formula per input (see exprc/ops/from_sympy.py); None: not differentiable.
"""

# fmt: off
PARTIALS = {
'''


def table_source():
    """The text of the derivative table, derived from SymPy now."""
    lines = [f"    {_literal(op.name)}: {_literal(partial_formulas(op))}," for op in tabulated_ops()]
    return _HEADER + "\n".join(lines) + "\n}\n# fmt: on\n"


def _literal(value):
    """``value`` (a formula, or a tuple of them) as Python source."""
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, str):
        return json.dumps(value)  # a double-quoted Python literal too
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return f'float("{value}")'
    return repr(value)


def main(argv=None):
    """``--write`` regenerates exprc/ops/derivative_table.py; ``--check`` exits with 1 when it
    differs from what SymPy derives now."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m exprc.ops.from_sympy", description=main.__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the derivative table")
    action.add_argument("--check", action="store_true", help="exit with 1 if the table is out of date")
    args = parser.parse_args(argv)
    text = table_source()
    if args.write:
        TABLE.write_text(text)
        print(f"wrote {TABLE}")
        return 0
    current = TABLE.read_text() if TABLE.exists() else ""
    if current != text:
        print(f"{TABLE} is out of date: run python -m exprc.ops.from_sympy --write")
        return 1
    print(f"{TABLE} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

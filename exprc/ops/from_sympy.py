"""SymPy expressions back into exprc graphs: how derivatives taken by SymPy become elementwise ops.

:func:`to_graph` rebuilds a SymPy expression over the symbols of a scalar
operation as an exprc graph over given tensors. Numbers become weak Python
floats, so a float32 gradient stays float32. Functions map to the elementwise
op of the same meaning; ``Piecewise`` becomes nested :func:`where`, so the
gradient of ``maximum`` or ``clip`` goes to the input that was chosen.

The caller passes how a scalar operation is applied to tensors (:func:`~exprc.ops.elemwise.elementwise`):
elementwise ops take their gradients from here, so this module cannot import them.

>>> import sympy as sp
>>> import exprc as ex
>>> from exprc.ops.elemwise import elementwise
>>> x0 = sp.Symbol("x0", real=True)
>>> v = ex.vector("v")
>>> str(to_graph(1 - sp.tanh(x0) ** 2, {x0: v}, elementwise))
'1.0 - square(tanh(v))'
"""

import sympy as sp

from ..tensor import as_tensor, constant
from .scalar import DERIVATIVE_OPS, SCALAR_OPS, rint, sigmoid, softplus

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
    return constant(int(value)) if value.is_integer() and abs(value) < 2**53 else constant(value)


def to_graph(expr, inputs, elementwise):
    """The exprc graph computing SymPy ``expr``, with ``inputs`` mapping each symbol to a tensor
    and ``elementwise(scalar_op, *tensors)`` applying a scalar operation.

    Raises NotImplementedError naming the part of ``expr`` that has no exprc form.
    """
    memo = {}

    def call(name, *args):
        return elementwise(SCALAR_OPS[name] if name in SCALAR_OPS else DERIVATIVE_OPS[name], *args)

    def build(e):
        if e not in memo:
            memo[e] = _build(e, build, inputs, call)
        return memo[e]

    return as_tensor(build(sp.sympify(expr)))


def _float_number(expr):
    try:
        return constant(float(expr))
    except TypeError:  # complex infinity (x / 0 to SymPy, whose sign NumPy would know) or complex
        raise NotImplementedError(f"{expr} is not a real number") from None


def _build(e, build, inputs, call):
    if e in inputs:
        return inputs[e]
    if e is sp.true or e == sp.true:
        return constant(True)
    if e is sp.false or e == sp.false:
        return constant(False)
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

"""The scalar operations that elementwise ops apply: one row per operation.

Each :class:`ScalarOp` holds, side by side, its NumPy reference (which also
decides the output dtype, see :mod:`exprc.dtypes`), its SymPy form (from which
derivatives and algebraic identities are taken), and how it prints. Adding an
elementwise operation is adding one row to :data:`SCALAR_OPS`.

The partial derivatives are taken from the SymPy forms ahead of time, into
``exprc/ops/derivative_table.py`` (``python -m exprc.ops.from_sympy --write``), so
taking a gradient does not import SymPy. SymPy is imported on first use (the algebra
pass meeting a new region, or an op the table lacks): the SymPy forms are functions that
look SymPy up when called, and the SymPy functions exprc defines
(:func:`sympy_functions`) are made then.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace

import numpy as np

from ..dtypes import as_dtype, probe_dtype


class _LazySympy:
    """Stands for the ``sympy`` module, imported at the first attribute looked up."""

    def __getattr__(self, name):
        import sympy

        return getattr(sympy, name)


sp = _LazySympy()


def _sympy_form(name):
    """The SymPy function ``name`` (one of :func:`sympy_functions`, else ``sympy.<name>``),
    looked up when the form is applied."""

    def form(*args):
        ours = getattr(sympy_functions(), name, None)
        return (ours if ours is not None else getattr(sp, name))(*args)

    form.__name__ = name
    return form


@dataclass(frozen=True)
class ScalarOp:
    """An operation on scalars, lifted to tensors by :class:`~exprc.ops.elemwise.Elemwise`.

    Ops compare by ``name`` alone; the other fields describe that name.
    """

    name: str
    nin: int
    numpy: Callable = field(compare=False, repr=False)
    #: SymPy form: a function of ``nin`` SymPy symbols; None for boolean and bitwise operations.
    sympy: Callable | None = field(default=None, compare=False, repr=False)
    #: Operator symbol and precedence (Python's order) for infix printing; None prints as a call.
    infix: str | None = field(default=None, compare=False, repr=False)
    precedence: int = field(default=100, compare=False, repr=False)

    def __str__(self):
        return self.name

    def __reduce__(self):
        # Its functions are lambdas, which pickle cannot name: a scalar op pickles as its name.
        return (scalar_op, (self.name,))


def scalar_op(name):
    """The scalar operation called ``name`` (``"exp"``, ``"astype_float32"``, ``"digamma"``...).

    >>> scalar_op("exp").nin
    1
    """
    if name.startswith("astype_"):
        return cast(name[len("astype_") :])
    op = SCALAR_OPS.get(name) or DERIVATIVE_OPS.get(name)
    if op is None:
        raise KeyError(f"no scalar operation is called {name!r}")
    return op


def _float_math(fn):
    """A NumPy reference computed in float64 and returned in the dtype ``np.exp`` would give.

    Used for the functions NumPy lacks (sigmoid, erf, ...): computing in double
    and rounding once makes the oracle at least as accurate as any back end.
    """

    def reference(x):
        x = np.asarray(x)
        out_dtype = probe_dtype(np.exp, (as_dtype(x.dtype),))
        with np.errstate(all="ignore"):
            return np.asarray(fn(x.astype(np.float64))).astype(out_dtype)

    reference.__name__ = fn.__name__
    return reference


def _pointwise(scalar_fn):
    vectorized = np.frompyfunc(scalar_fn, 1, 1)

    def fn(x):
        return np.asarray(vectorized(x), dtype=np.float64)

    fn.__name__ = scalar_fn.__name__
    return fn


def _lgamma(v):
    # math.lgamma raises at the poles (0, -1, -2, ...), where log|Gamma| is +inf.
    if math.isnan(v):
        return v
    try:
        return math.lgamma(v)
    except ValueError:
        return math.inf


def _sigmoid(x):
    # The two branches avoid exp overflow for large |x|.
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


def _piecewise_where(c, a, b):
    return sp.Piecewise((a, sp.Ne(c, 0)), (b, True))


# The SymPy forms of maximum, minimum and clip say which input is chosen, ties
# included, so their derivatives route the gradient to that input alone.
def _piecewise_maximum(x, y):
    return sp.Piecewise((x, x >= y), (y, True))


def _piecewise_minimum(x, y):
    return sp.Piecewise((x, x <= y), (y, True))


def _piecewise_clip(x, lo, hi):
    # np.minimum(np.maximum(x, lo), hi): hi when x or lo is above it, else lo when above x, else x.
    return sp.Piecewise((hi, sp.Or(x > hi, lo > hi)), (lo, lo > x), (x, True))


@cache
def sympy_functions():
    """The SymPy functions exprc defines: ``sigmoid``, ``softplus`` and ``rint`` (made at the
    first call, which imports SymPy)."""
    import sympy as sp

    class sigmoid(sp.Function):  # noqa: N801 - the name SymPy prints
        """``1 / (1 + exp(-x))`` as one SymPy function, so its derivative keeps the stable form
        ``sigmoid(x) * (1 - sigmoid(x))`` rather than ``exp(-x) / (1 + exp(-x))**2``."""

        nargs = 1

        def fdiff(self, argindex=1):
            s = sigmoid(self.args[0])
            return s * (1 - s)

        def _eval_rewrite_as_exp(self, x, **kwargs):
            return 1 / (1 + sp.exp(-x))

    class softplus(sp.Function):  # noqa: N801
        """``log(1 + exp(x))``, whose derivative is ``sigmoid(x)``."""

        nargs = 1

        def fdiff(self, argindex=1):
            return sigmoid(self.args[0])

        def _eval_rewrite_as_exp(self, x, **kwargs):
            return sp.log(1 + sp.exp(x))

    class rint(sp.Function):  # noqa: N801
        """Rounding to the nearest integer: piecewise constant, so its derivative is 0."""

        nargs = 1

        def fdiff(self, argindex=1):
            return sp.S.Zero

    return SimpleNamespace(sigmoid=sigmoid, softplus=softplus, rint=rint)


def __getattr__(name):
    # ``from exprc.ops.scalar import sigmoid`` still gives the SymPy function.
    if name in ("sigmoid", "softplus", "rint"):
        return getattr(sympy_functions(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_ROWS = [
    # name, nin, numpy, sympy, infix, precedence
    ("negative", 1, np.negative, lambda x: -x, "-", 30),
    ("abs", 1, np.abs, _sympy_form("Abs"), None, 100),
    ("sign", 1, np.sign, _sympy_form("sign"), None, 100),
    ("exp", 1, np.exp, _sympy_form("exp"), None, 100),
    ("exp2", 1, np.exp2, lambda x: 2**x, None, 100),
    ("log", 1, np.log, _sympy_form("log"), None, 100),
    ("log2", 1, np.log2, lambda x: sp.log(x) / sp.log(2), None, 100),
    ("log10", 1, np.log10, lambda x: sp.log(x) / sp.log(10), None, 100),
    ("log1p", 1, np.log1p, lambda x: sp.log(1 + x), None, 100),
    ("expm1", 1, np.expm1, lambda x: sp.exp(x) - 1, None, 100),
    ("sqrt", 1, np.sqrt, _sympy_form("sqrt"), None, 100),
    ("square", 1, np.square, lambda x: x**2, None, 100),
    ("sin", 1, np.sin, _sympy_form("sin"), None, 100),
    ("cos", 1, np.cos, _sympy_form("cos"), None, 100),
    ("tan", 1, np.tan, _sympy_form("tan"), None, 100),
    ("arcsin", 1, np.arcsin, _sympy_form("asin"), None, 100),
    ("arccos", 1, np.arccos, _sympy_form("acos"), None, 100),
    ("arctan", 1, np.arctan, _sympy_form("atan"), None, 100),
    ("sinh", 1, np.sinh, _sympy_form("sinh"), None, 100),
    ("cosh", 1, np.cosh, _sympy_form("cosh"), None, 100),
    ("tanh", 1, np.tanh, _sympy_form("tanh"), None, 100),
    ("arcsinh", 1, np.arcsinh, _sympy_form("asinh"), None, 100),
    ("arccosh", 1, np.arccosh, _sympy_form("acosh"), None, 100),
    ("arctanh", 1, np.arctanh, _sympy_form("atanh"), None, 100),
    ("floor", 1, np.floor, _sympy_form("floor"), None, 100),
    ("ceil", 1, np.ceil, _sympy_form("ceiling"), None, 100),
    ("trunc", 1, np.trunc, lambda x: sp.sign(x) * sp.floor(sp.Abs(x)), None, 100),
    ("rint", 1, np.rint, _sympy_form("rint"), None, 100),
    ("sigmoid", 1, _float_math(_sigmoid), _sympy_form("sigmoid"), None, 100),
    ("softplus", 1, _float_math(_softplus), _sympy_form("softplus"), None, 100),
    ("erf", 1, _float_math(_pointwise(math.erf)), _sympy_form("erf"), None, 100),
    ("erfc", 1, _float_math(_pointwise(math.erfc)), _sympy_form("erfc"), None, 100),
    ("gammaln", 1, _float_math(_pointwise(_lgamma)), _sympy_form("loggamma"), None, 100),
    ("isnan", 1, np.isnan, None, None, 100),
    ("isinf", 1, np.isinf, None, None, 100),
    ("isfinite", 1, np.isfinite, None, None, 100),
    ("logical_not", 1, np.logical_not, None, None, 100),
    ("invert", 1, np.invert, None, "~", 30),
    ("add", 2, np.add, lambda x, y: x + y, "+", 10),
    ("subtract", 2, np.subtract, lambda x, y: x - y, "-", 10),
    ("multiply", 2, np.multiply, lambda x, y: x * y, "*", 20),
    ("true_divide", 2, np.true_divide, lambda x, y: x / y, "/", 20),
    ("floor_divide", 2, np.floor_divide, lambda x, y: sp.floor(x / y), "//", 20),
    ("mod", 2, np.mod, lambda x, y: x - y * sp.floor(x / y), "%", 20),
    ("power", 2, np.power, lambda x, y: x**y, "**", 40),
    ("maximum", 2, np.maximum, _piecewise_maximum, None, 100),
    ("minimum", 2, np.minimum, _piecewise_minimum, None, 100),
    ("arctan2", 2, np.arctan2, _sympy_form("atan2"), None, 100),
    ("hypot", 2, np.hypot, lambda x, y: sp.sqrt(x**2 + y**2), None, 100),
    ("equal", 2, np.equal, None, None, 100),
    ("not_equal", 2, np.not_equal, None, None, 100),
    ("less", 2, np.less, None, "<", 3),
    ("less_equal", 2, np.less_equal, None, "<=", 3),
    ("greater", 2, np.greater, None, ">", 3),
    ("greater_equal", 2, np.greater_equal, None, ">=", 3),
    ("logical_and", 2, np.logical_and, None, None, 100),
    ("logical_or", 2, np.logical_or, None, None, 100),
    ("logical_xor", 2, np.logical_xor, None, None, 100),
    ("bitwise_and", 2, np.bitwise_and, None, "&", 6),
    ("bitwise_or", 2, np.bitwise_or, None, "|", 4),
    ("bitwise_xor", 2, np.bitwise_xor, None, "^", 5),
    ("where", 3, np.where, _piecewise_where, None, 100),
    ("clip", 3, _clip, _piecewise_clip, None, 100),
]

#: Every scalar operation by name.
SCALAR_OPS = {row[0]: ScalarOp(*row) for row in _ROWS}


@cache
def cast(dtype):
    """The scalar op converting to ``dtype`` (NumPy's ``astype``, unsafe casting as NumPy does)."""
    dtype = as_dtype(dtype)

    def to_dtype(x):
        return np.asarray(x).astype(dtype)

    return ScalarOp(f"astype_{dtype}", 1, to_dtype, sympy=lambda x: x)


def _digamma(x):
    """The digamma function psi = d/dx log|Gamma(x)| (NumPy lacks it): reflection below 1/2,
    the recurrence psi(x) = psi(x + 1) - 1/x up to 10, then the asymptotic series."""
    x = np.asarray(x, dtype=np.float64)
    reflect = x < 0.5
    z = np.where(reflect, 1.0 - x, x)
    shift = np.zeros_like(z)
    small = z < 10.0
    while small.any():
        shift = shift - np.where(small, 1.0 / np.where(small, z, 1.0), 0.0)
        z = np.where(small, z + 1.0, z)
        small = z < 10.0
    inv2 = 1.0 / (z * z)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 * (1 / 132)))))
    out = np.log(z) - 0.5 / z - series + shift
    out = np.where(reflect, out - np.pi / np.tan(np.pi * x), out)
    return np.where((x <= 0) & (x == np.floor(x)), np.nan, out)


#: Scalar ops that only derivatives produce (the derivative of gammaln); not public functions.
DERIVATIVE_OPS = {
    "digamma": ScalarOp("digamma", 1, _float_math(_digamma), lambda x: sp.polygamma(0, x)),
}


def _symbols(nin):
    return sp.symbols(" ".join(f"x{i}" for i in range(nin)), real=True, seq=True)


def _drop_step_derivatives(expr):
    """``expr`` with the derivatives of step functions (floor, ceiling, sign) set to 0:
    they are 0 wherever they are defined."""
    return expr.replace(lambda e: isinstance(e, (sp.Derivative, sp.Subs, sp.DiracDelta)), lambda e: sp.S.Zero)


@cache
def derivatives(scalar_op):
    """The partial derivatives of ``scalar_op`` with respect to each input, as SymPy
    expressions of the symbols ``x0, x1, ...``, taken from its SymPy form once and cached.
    None when the operation has no SymPy form (boolean, bitwise and comparison operations).
    Gradients take them from the table derived from these (see exprc/ops/from_sympy.py).

    >>> derivatives(SCALAR_OPS["multiply"])
    (x1, x0)
    >>> derivatives(SCALAR_OPS["power"])
    (x0**(x1 - 1)*x1, x0**x1*log(x0))
    """
    if scalar_op.sympy is None:
        return None
    symbols = _symbols(scalar_op.nin)
    form = scalar_op.sympy(*symbols)
    return tuple(sp.powsimp(_drop_step_derivatives(sp.diff(form, s))) for s in symbols)


def symbols_of(scalar_op):
    """The SymPy symbols that stand for the inputs of ``scalar_op`` in :func:`derivatives`."""
    return _symbols(scalar_op.nin)

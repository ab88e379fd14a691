"""Stabilization: formulas that overflow or lose precision replaced by ones that do not.

Each replacement computes the same mathematical function, more accurately;
the values therefore differ slightly (in the last bits, or where the naive
formula overflowed to inf or NaN), so none is exact.
"""

from ...dtypes import is_float
from ...grad import user_softmax
from ...graph import ancestors, substitute
from ...ops import elemwise as E
from ...ops import reduction as R
from ...ops.elemwise import Elemwise
from ...ops.markers import StopGradient
from ...ops.reduction import Max, Sum
from ..engine import rule
from ..patterns import args, is_constant_equal, is_elemwise, same_type


def _checked(new, node):
    return new if same_type(new, node.outputs[0]) else None


def _one_plus(var):
    """x when ``var`` is 1 + x or x + 1, else None."""
    if not is_elemwise(var, "add"):
        return None
    a, b = args(var)
    if is_constant_equal(a, 1) and a.ndim == 0:
        return b
    if is_constant_equal(b, 1) and b.ndim == 0:
        return a
    return None


def _negated(x, node):
    """``-x`` for a rule that moves a negation inside a function computed in floating point:
    an integer or bool ``x`` is converted to ``node``'s floating dtype first, as that
    function would have, since negating it as it is fails (bool) or wraps (unsigned)."""
    if not is_float(x.dtype):
        x = E.astype(x, node.outputs[0].dtype)
    return E.negative(x)


@rule("stabilize", Elemwise, scalar="log", exact=False)
def log_one_plus(node):
    """log(1 + x) -> log1p(x)"""
    x = _one_plus(node.inputs[0])
    return _checked(E.log1p(x), node) if x is not None else None


@rule("stabilize", Elemwise, scalar="subtract", exact=False)
def exp_minus_one(node):
    """exp(x) - 1 -> expm1(x)"""
    a, b = node.inputs
    if is_elemwise(a, "exp") and is_constant_equal(b, 1) and b.ndim == 0:
        return _checked(E.expm1(args(a)[0]), node)
    return None


@rule("stabilize", Elemwise, scalar="log1p", exact=False)
def log1p_of_exp(node):
    """log1p(exp(x)) -> softplus(x)"""
    (inner,) = node.inputs
    return _checked(E.softplus(args(inner)[0]), node) if is_elemwise(inner, "exp") else None


@rule("stabilize", Elemwise, scalar="true_divide", exact=False)
def sigmoid_formula(node):
    """1 / (1 + exp(-x)) -> sigmoid(x)"""
    a, b = node.inputs
    denominator = _one_plus(b)
    if is_constant_equal(a, 1) and a.ndim == 0 and denominator is not None and is_elemwise(denominator, "exp"):
        exponent = args(denominator)[0]
        x = args(exponent)[0] if is_elemwise(exponent, "negative") else _negated(exponent, node)
        return _checked(E.sigmoid(x), node)
    return None


@rule("stabilize", Elemwise, scalar="subtract", exact=False)
def one_minus_sigmoid(node):
    """1 - sigmoid(x) -> sigmoid(-x)"""
    a, b = node.inputs
    if is_constant_equal(a, 1) and a.ndim == 0 and is_elemwise(b, "sigmoid"):
        return _checked(E.sigmoid(_negated(args(b)[0], node)), node)
    return None


@rule("stabilize", Elemwise, scalar="log", exact=False)
def log_sigmoid(node):
    """log(sigmoid(x)) -> -softplus(-x)"""
    (inner,) = node.inputs
    if is_elemwise(inner, "sigmoid"):
        return _checked(E.negative(E.softplus(_negated(args(inner)[0], node))), node)
    return None


@rule("stabilize", Elemwise, scalar="log1p", exact=False)
def log1p_minus_sigmoid(node):
    """log1p(-sigmoid(x)) -> -softplus(x)"""
    (inner,) = node.inputs
    if is_elemwise(inner, "negative") and is_elemwise(args(inner)[0], "sigmoid"):
        return _checked(E.negative(E.softplus(args(args(inner)[0])[0])), node)
    return None


@rule("stabilize", Elemwise, scalar="sqrt", exact=False)
def sqrt_of_square(node):
    """sqrt(x ** 2) -> abs(x)"""
    (inner,) = node.inputs
    if is_elemwise(inner, "square"):
        return _checked(E.absolute(args(inner)[0]), node)
    if is_elemwise(inner, "multiply") and args(inner)[0] is args(inner)[1]:
        return _checked(E.absolute(args(inner)[0]), node)
    if is_elemwise(inner, "power") and is_constant_equal(args(inner)[1], 2):
        return _checked(E.absolute(args(inner)[0]), node)
    return None


def _formula(var):
    """A formula built by :mod:`exprc.ops.reduction` (logsumexp, softmax, log_softmax) without
    the ``stop_gradient`` on its shift: rewriting comes after gradients, and the mark would
    hide the formula from the rules that recognise it."""
    stops = {
        v: v.owner.inputs[0] for v in ancestors([var]) if v.owner is not None and isinstance(v.owner.op, StopGradient)
    }
    return substitute([var], stops)[0] if stops else var


def _is_shifted(x):
    """Whether ``x`` is already ``y - max(y)`` (as logsumexp and softmax build it, the max
    made finite by a ``where``): shifting it again would rewrite their formulas forever."""
    if not is_elemwise(x, "subtract"):
        return False
    y, shift = args(x)
    if is_elemwise(shift, "where"):
        shift = args(shift)[1]
    return shift.owner is not None and isinstance(shift.owner.op, Max) and shift.owner.inputs[0] is y


def _sum_of_exp(var):
    """(x, axes, keepdims) when ``var`` is sum(exp(x)) over ``axes``, else None."""
    if var.owner is None or not isinstance(var.owner.op, Sum) or var.owner.op.dtype is not None:
        return None
    (inner,) = var.owner.inputs
    if not is_elemwise(inner, "exp"):
        return None
    return args(inner)[0], var.owner.op.axis, var.owner.op.keepdims


@rule("stabilize", Elemwise, scalar="log", exact=False)
def log_sum_exp(node):
    """log(sum(exp(x))) -> logsumexp(x), which does not overflow"""
    found = _sum_of_exp(node.inputs[0])
    if found is None or _is_shifted(found[0]):
        return None
    x, axes, keepdims = found
    return _checked(_formula(R.logsumexp(x, axes, keepdims)), node)


@rule("stabilize", Elemwise, scalar="log", exact=False)
def log_of_softmax(node):
    """log(exp(x) / sum(exp(x))) -> x - logsumexp(x), the stable log_softmax"""
    (ratio,) = node.inputs
    if not is_elemwise(ratio, "true_divide"):
        return None
    numerator, denominator = args(ratio)
    found = _sum_of_exp(denominator)
    if found is None or not found[2] or not is_elemwise(numerator, "exp") or args(numerator)[0] is not found[0]:
        return None
    x, axes, _ = found
    if _is_shifted(x):  # softmax's own formula: log_softmax's is x - log(sum(exp(x)))
        return _checked(x - E.log(denominator), node)
    return _checked(_formula(R.log_softmax(x, axes)), node)


@rule("stabilize", Elemwise, scalar="true_divide", exact=False)
def softmax_formula(node):
    """exp(x) / sum(exp(x)) -> softmax(x), which does not overflow"""
    numerator, denominator = node.inputs
    found = _sum_of_exp(denominator)
    if found is None or not found[2] or not is_elemwise(numerator, "exp") or args(numerator)[0] is not found[0]:
        return None
    x, axes, _ = found
    return None if _is_shifted(x) else _checked(_formula(R.softmax(x, axes)), node)


@rule("stabilize", Elemwise, scalar=("subtract", "true_divide"), exact=False)
def user_softmax_formula(node):
    """x - max(x) = z; z - log(sum(exp(z))) -> log_softmax(x), exp(z) / sum(exp(z)) -> softmax(x):
    the library's formulas, which ex.grad differentiates in their place (rounds differently)"""
    formula = user_softmax(node.outputs[0])
    return None if formula is None else _checked(_formula(formula), node)

"""Specialization: cheaper forms of the same computation for the back ends."""

from ...ops import elemwise as E
from ...ops.elemwise import Elemwise
from ..engine import rule
from ..patterns import is_constant_equal, same_type


def _exponent(node, value):
    x, exponent = node.inputs
    return x if exponent.ndim == 0 and is_constant_equal(exponent, value) else None


def _power_as(node, value, function):
    """``function(x)`` for ``x ** value``, when it has the power's type."""
    x = _exponent(node, value)
    if x is None:
        return None
    new = function(x)
    return new if same_type(new, node.outputs[0]) else None


@rule("specialize", Elemwise, scalar="power")
def power_two(node):
    """x ** 2 -> square(x)"""
    return _power_as(node, 2, E.square)


@rule("specialize", Elemwise, scalar="power", exact=False)
def power_half(node):
    """x ** 0.5 -> sqrt(x) (they differ at -0.0 and -inf)"""
    return _power_as(node, 0.5, E.sqrt)


@rule("specialize", Elemwise, scalar="power", exact=False)
def power_minus_one(node):
    """x ** -1 -> 1 / x"""
    x = _exponent(node, -1)
    if x is not None and x.dtype.startswith("float"):
        reciprocal = E.true_divide(1.0, x)
        return reciprocal if same_type(reciprocal, node.outputs[0]) else None
    return None

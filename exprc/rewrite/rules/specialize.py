"""Specialization: cheaper forms of the same computation for the back ends."""
from ...ops import elemwise as E
from ...ops.elemwise import Elemwise
from ..engine import rule
from ..patterns import is_constant_equal, same_type


def _exponent(node, value):
    x, exponent = node.inputs
    return x if exponent.ndim == 0 and is_constant_equal(exponent, value) else None


@rule("specialize", Elemwise, scalar="power")
def power_two(node):
    """x ** 2 -> square(x)"""
    x = _exponent(node, 2)
    if x is not None and same_type(E.square(x), node.outputs[0]):
        return E.square(x)
    return None


@rule("specialize", Elemwise, scalar="power", exact=False)
def power_half(node):
    """x ** 0.5 -> sqrt(x) (they differ at -0.0 and -inf)"""
    x = _exponent(node, 0.5)
    if x is not None and same_type(E.sqrt(x), node.outputs[0]):
        return E.sqrt(x)
    return None


@rule("specialize", Elemwise, scalar="power", exact=False)
def power_minus_one(node):
    """x ** -1 -> 1 / x"""
    x = _exponent(node, -1)
    if x is not None and x.dtype.startswith("float"):
        reciprocal = E.true_divide(1.0, x)
        return reciprocal if same_type(reciprocal, node.outputs[0]) else None
    return None

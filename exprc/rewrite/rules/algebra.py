"""Algebraic identities on elementwise operations.

The exact ones change no value: ``x * 1``, ``x + 0``, ``-(-x)``. The others
assume finite values, as Theano's did: ``x - x`` is NaN, not 0, when x is
infinite; ``x * 0`` is NaN when x is; ``exp(log(x))`` is NaN, not x, for x < 0.
``rewrites="exact"`` leaves those out.
"""

from ...ops import elemwise as E
from ...ops.elemwise import Elemwise
from ...ops.shape import full_like
from ..engine import rule
from ..patterns import args, first, is_constant_equal, is_elemwise, same_type


def _identity_operand(node, position, number):
    """The other operand of binary ``node`` when input ``position`` is a constant ``number``
    that cannot widen the result (all its lengths 1) and the other has the output's type."""
    if not _neutral_constant(node.inputs[position], number):
        return None
    other, out = node.inputs[1 - position], node.outputs[0]
    if other.type.weak and not out.type.weak and other.dtype == out.dtype:
        other = E.astype(other, out.dtype)  # a strong 1 makes a weak scalar strong
    return other if same_type(other, out) else None


@rule("canonicalize", Elemwise, scalar="multiply")
def multiply_by_one(node):
    """x * 1 -> x"""
    return first(_identity_operand(node, 1, 1), _identity_operand(node, 0, 1))


@rule("canonicalize", Elemwise, scalar="add")
def add_zero(node):
    """x + 0 -> x"""
    return first(_identity_operand(node, 1, 0), _identity_operand(node, 0, 0))


@rule("canonicalize", Elemwise, scalar="subtract")
def subtract_zero(node):
    """x - 0 -> x"""
    return _identity_operand(node, 1, 0)


@rule("canonicalize", Elemwise, scalar=("true_divide", "power"))
def divide_or_power_by_one(node):
    """x / 1 -> x, x ** 1 -> x"""
    return _identity_operand(node, 1, 1)


@rule("canonicalize", Elemwise, scalar="negative")
def double_negation(node):
    """-(-x) -> x"""
    (x,) = node.inputs
    return args(x)[0] if is_elemwise(x, "negative") else None


@rule("canonicalize", Elemwise, scalar="multiply")
def multiply_by_minus_one(node):
    """x * -1 -> -x"""
    for position in (0, 1):
        x = _identity_operand(node, position, -1)
        if x is not None:
            return E.negative(x)
    return None


@rule("canonicalize", Elemwise, scalar="subtract")
def subtract_from_zero(node):
    """0 - x -> -x"""
    x = _identity_operand(node, 0, 0)
    return E.negative(x) if x is not None else None


@rule("canonicalize", Elemwise, scalar=("add", "subtract"))
def add_negation(node):
    """x + -y -> x - y, -y + x -> x - y, x - -y -> x + y"""
    x, y = node.inputs
    name = node.op.scalar_op.name
    if is_elemwise(y, "negative"):
        return (E.subtract if name == "add" else E.add)(x, args(y)[0])
    if name == "add" and is_elemwise(x, "negative"):
        return E.subtract(y, args(x)[0])
    return None


@rule("canonicalize", Elemwise, scalar="multiply")
def negations_cancel(node):
    """-x * -y -> x * y"""
    x, y = node.inputs
    if is_elemwise(x, "negative") and is_elemwise(y, "negative"):
        return E.multiply(args(x)[0], args(y)[0])
    return None


def _neutral_constant(var, number):
    """Whether ``var`` is a constant ``number`` whose lengths are all 1, so it widens nothing."""
    return is_constant_equal(var, number) and all(d == 1 for d in var.type.shape)


def _filled(like, number, out):
    if like.ndim != out.ndim:
        return None
    filled = full_like(like, number, dtype=out.dtype)
    return filled if same_type(filled, out) else None


@rule("canonicalize", Elemwise, scalar="subtract", exact=False)
def subtract_self(node):
    """x - x -> 0 (NaN for infinite x)"""
    x, y = node.inputs
    return _filled(x, 0, node.outputs[0]) if x is y else None


@rule("canonicalize", Elemwise, scalar="true_divide", exact=False)
def divide_self(node):
    """x / x -> 1 (NaN for x = 0 or infinite)"""
    x, y = node.inputs
    return _filled(x, 1, node.outputs[0]) if x is y else None


@rule("canonicalize", Elemwise, scalar="multiply", exact=False)
def multiply_by_zero(node):
    """x * 0 -> 0 (NaN for infinite or NaN x)"""
    for position in (0, 1):
        if _neutral_constant(node.inputs[position], 0):
            return _filled(node.inputs[1 - position], 0, node.outputs[0])
    return None


_INVERSES = {"log": "exp", "exp": "log", "log1p": "expm1", "expm1": "log1p"}


@rule("canonicalize", Elemwise, scalar=tuple(_INVERSES), exact=False)
def inverse_functions(node):
    """log(exp(x)) -> x, exp(log(x)) -> x, log1p(expm1(x)) -> x, expm1(log1p(x)) -> x"""
    (inner,) = node.inputs
    if is_elemwise(inner, _INVERSES[node.op.scalar_op.name]):
        x = args(inner)[0]
        return x if same_type(x, node.outputs[0]) else None
    return None

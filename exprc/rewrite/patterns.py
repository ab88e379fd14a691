"""Small questions rules ask of a graph: which op computed a variable, is it a constant of some value.

>>> import exprc as ex
>>> x = ex.vector("x")
>>> is_elemwise(ex.exp(x), "exp"), constant_value(ex.constant(2.0))
(True, 2.0)
"""

import numpy as np

from ..graph import Constant
from ..ops.elemwise import Elemwise
from ..ops.shape import DimShuffle


def scalar_name(var):
    """The scalar operation's name when ``var`` is computed by an Elemwise node, else None."""
    node = var.owner
    if node is not None and isinstance(node.op, Elemwise):
        return node.op.scalar_op.name
    return None


def is_elemwise(var, *names):
    """Whether ``var`` is computed by an Elemwise node applying one of ``names``."""
    return scalar_name(var) in names


def args(var):
    """The inputs of the node that computes ``var``."""
    return var.owner.inputs


def strip_padding(var):
    """``var`` without the leading length-1 axes that broadcasting added (a DimShuffle
    that only inserts axes in front)."""
    node = var.owner
    if node is not None and isinstance(node.op, DimShuffle):
        order, inner = node.op.new_order, node.inputs[0]
        if all(a == "x" for a in order[: len(order) - inner.ndim]) and order[len(order) - inner.ndim :] == tuple(
            range(inner.ndim)
        ):
            return inner
    return var


def constant_value(var):
    """The single value of ``var`` as a Python number when it is a constant whose elements are
    all equal (a scalar, or a broadcast one), else None."""
    var = strip_padding(var)
    if not isinstance(var, Constant):
        return None
    value = np.asarray(var.value)
    if value.size == 0:
        return None
    first = value.flat[0]
    if value.size > 1 and not np.all(value == first):
        return None
    return first.item()


def is_constant_equal(var, number):
    """Whether ``var`` is a constant all of whose elements equal ``number``."""
    value = constant_value(var)
    return value is not None and value == number and not isinstance(value, bool)


def is_float_var(var):
    """Whether ``var`` has a floating dtype."""
    return var.dtype.startswith("float")


def same_type(new, old):
    """Whether ``new`` may stand for ``old`` in a graph: the same dtype, weakness and rank,
    and static lengths that agree (one may be unknown)."""
    a, b = new.type, old.type
    if (a.dtype, a.ndim, a.weak) != (b.dtype, b.ndim, b.weak):
        return False
    return all(x is None or y is None or x == y for x, y in zip(a.shape, b.shape))


def first(*candidates):
    """The first candidate that is not None (graphs have no truth value, so ``a or b`` fails)."""
    return next((c for c in candidates if c is not None), None)

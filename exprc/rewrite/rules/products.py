"""Products seen whole: a chain of multiplications flattened into its factors, so that
factors far apart in the tree can cancel or combine.

Gradients build long products (the chain rule multiplies one factor per node
passed), and the factors that belong together are rarely neighbours: the
gradient of ``log1p(exp(m))`` is ``1 / (1 + exp(m)) * exp(m)``, which after
stabilization is ``sigmoid(-m) * exp(m)``, i.e. ``sigmoid(m)``; only as a whole
product is that seen. Rebuilding a product reassociates it, so the rule is not
exact.
"""

import numpy as np

from ...graph import Constant
from ...ops import elemwise as E
from ...ops.elemwise import Elemwise
from ...tensor import constant
from ..engine import rule
from ..patterns import args, is_elemwise, same_type, strip_padding


def factors(var, dtype, ndim):
    """The factors of the product ``var``, multiplications of the same dtype opened up."""
    out, stack = [], [var]
    while stack:
        v = stack.pop()
        if is_elemwise(v, "multiply") and v.dtype == dtype and v.ndim in (0, ndim):
            stack.extend(reversed(args(v)))
        else:
            out.append(strip_padding(v))
    return out


def _pair_sigmoid_exp(items):
    """sigmoid(-x) * exp(x) -> sigmoid(x) and sigmoid(x) * exp(-x) -> sigmoid(-x), in place;
    whether any pair was found."""
    found = False
    for i, s in enumerate(items):
        if s is None or not is_elemwise(s, "sigmoid"):
            continue
        x = args(s)[0]
        plain = args(x)[0] if is_elemwise(x, "negative") else None
        for j, e in enumerate(items):
            if e is None or j == i or not is_elemwise(e, "exp"):
                continue
            y = args(e)[0]
            if plain is not None and y is plain:
                items[i], items[j], found = E.sigmoid(plain), None, True
                break
            if is_elemwise(y, "negative") and args(y)[0] is x:
                items[i], items[j], found = E.sigmoid(y), None, True
                break
    return found


def _is_number(var):
    """A constant with one element that broadcasts into any product."""
    return isinstance(var, Constant) and all(d == 1 for d in var.type.shape)


@rule("stabilize", Elemwise, scalar="multiply", exact=False)
def simplify_product(node):
    """a * sigmoid(-x) * b * exp(x) -> a * b * sigmoid(x); constants multiplied together;
    negations taken out of the product"""
    out = node.outputs[0]
    if not out.dtype.startswith("float"):
        return None
    items = factors(out, out.dtype, out.ndim)
    paired = _pair_sigmoid_exp(items)
    items = [f for f in items if f is not None]
    negations = sum(is_elemwise(f, "negative") for f in items)
    items = [args(f)[0] if is_elemwise(f, "negative") else f for f in items]
    numbers = [f for f in items if _is_number(f)]
    if not paired and len(numbers) < 2 and not negations:
        return None
    rest = [f for f in items if not _is_number(f)]
    if len(numbers) > 1:
        value = np.prod([np.asarray(f.value, dtype=out.dtype).reshape(()) for f in numbers], dtype=out.dtype)
        weak = all(f.type.weak for f in numbers)
        numbers = [constant(value.item()) if weak else constant(value, dtype=out.dtype)]
    product = None
    for f in numbers + rest:
        product = f if product is None else E.multiply(product, f)
    if product is None:
        return None
    if negations % 2:
        product = E.negative(product)
    return product if same_type(product, out) else None

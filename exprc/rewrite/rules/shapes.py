"""Shape rules: lengths resolved to the input they come from, views merged, broadcasts and
sums that cannot change anything removed. All exact: they change no value.

Gradients are full of these: ``sum_to`` and ``broadcast_to`` undo and redo
broadcasting wherever an input *might* have been broadcast, and the lengths
they use read ``x.shape[i]`` of intermediate results. Once the lengths are
traced back to the inputs that decide them, most of that machinery is seen to
do nothing and goes.
"""

import weakref

from ...graph import Constant
from ...ops.elemwise import Elemwise
from ...ops.linalg import MatMul
from ...ops.reduction import Reduce, Sum, SumToShape
from ...ops.shape import BroadcastTo, DimShuffle, Reshape, ShapeI, dimshuffle, expand_left
from ...tensor import constant
from ..engine import rule
from ..patterns import constant_value, strip_padding


def length_of(var, axis):
    """The length of ``axis`` of ``var`` in a canonical form: a constant when it is static,
    else ``ShapeI`` of the variable furthest up the graph known to have the same length.
    Two variables whose lengths are the same canonical form have equal lengths.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> str(length_of(ex.exp(x) * 2.0, 0))
    'x.shape[0]'
    """
    known = _lengths.get(var)
    if known is not None and axis in known:
        return known[axis]
    start, start_axis = var, axis
    cut_before, _search["cut"] = _search["cut"], False
    while True:
        if var.type.shape[axis] is not None:
            length = constant(int(var.type.shape[axis]))
            break
        source = _same_length_source(var, axis)
        if source is None:
            length = ShapeI(axis)(var)
            break
        if not isinstance(source, tuple):  # a length variable given to the node
            length = source
            break
        var, axis = source
    # Remembered per variable: the search over an elementwise node's inputs would otherwise
    # walk a graph's shared subexpressions once per path to them. Not an answer the depth
    # limit cut short: from nearer the inputs, the search may go further.
    if not _search["cut"]:
        _lengths.setdefault(start, {})[start_axis] = length
    _search["cut"] |= cut_before
    return length


_lengths: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: How many elementwise nodes with several inputs the search is inside, and whether it gave
#: up somewhere (a chain of thousands of them would exhaust Python's stack).
_search = {"depth": 0, "cut": False}
_MAX_DEPTH = 4


def _same_length_source(var, axis):
    """(variable, axis) known to have the length of ``axis`` of ``var``, or a length variable;
    None when there is none."""
    node = var.owner
    if node is None:
        return None
    op = node.op
    if isinstance(op, Elemwise):
        # Broadcasting gives the output the length of the inputs that are not 1 there;
        # with a single candidate, that one decides.
        candidates = [v for v in node.inputs if v.ndim and v.type.shape[axis] != 1]
        if len(candidates) == 1:
            return (candidates[0], axis)
        # Several: when all have one canonical length (x - x.max(1, keepdims=True)), it is
        # the output's.
        if _search["depth"] >= _MAX_DEPTH:
            _search["cut"] = True
            return None
        _search["depth"] += 1
        try:
            lengths = {length_of(v, axis) for v in candidates}
        finally:
            _search["depth"] -= 1
        return lengths.pop() if len(lengths) == 1 else None
    if isinstance(op, DimShuffle):
        source = op.new_order[axis]
        return None if source == "x" else (node.inputs[0], source)
    if isinstance(op, (BroadcastTo, Reshape)):
        length = node.inputs[1 + axis]
        return None if constant_value(length) == -1 else length
    if isinstance(op, SumToShape):
        # Summed to its target length, or left as it is because that length is its own.
        return node.inputs[1 + op.axis.index(axis)] if axis in op.axis else (node.inputs[0], axis)
    if isinstance(op, Reduce):
        if op.keepdims:
            return None if axis in op.axis else (node.inputs[0], axis)
        kept = [a for a in range(node.inputs[0].ndim) if a not in op.axis]
        return (node.inputs[0], kept[axis])
    if isinstance(op, MatMul):
        return _matmul_length_source(node, axis)
    return None


def _matmul_length_source(node, axis):
    a, b = node.inputs
    out_ndim = node.outputs[0].ndim
    if a.ndim <= 2 and b.ndim <= 2:
        rows = [(a, 0)] if a.ndim == 2 else []
        cols = [(b, 1)] if b.ndim == 2 else []
        return (rows + cols)[axis]
    # Batched: the last axes come from a's rows and b's columns; batch axes broadcast.
    if axis == out_ndim - 1 and b.ndim >= 2:
        return (b, b.ndim - 1)
    if axis == out_ndim - (2 if b.ndim >= 2 else 1) and a.ndim >= 2:
        return (a, a.ndim - 2)
    return None


@rule("canonicalize", ShapeI)
def shape_from_source(node):
    """x.shape[i] -> the length of the input that decides it (or a constant)"""
    length = length_of(node.inputs[0], node.op.axis)
    return None if length is node.outputs[0] else length


def _broadcast_is_implied(node, index, lengths, source):
    """Whether the other inputs of Elemwise ``node`` already give the output the lengths
    that input ``index`` (``source`` broadcast to ``lengths``) was broadcast to."""
    others = [v for i, v in enumerate(node.inputs) if i != index and v.ndim]
    padded = (None,) * (len(lengths) - source.ndim) + source.type.shape
    for axis, (length, have) in enumerate(zip(lengths, padded)):
        wanted = length_of_value(length)
        if have is not None and wanted is not None and have == wanted:
            continue  # no broadcast on this axis
        if not any(length_of(v, axis) is length for v in others):
            return False
    return True


def length_of_value(length):
    """A length variable's value when it is a constant, else None."""
    return int(length.value) if isinstance(length, Constant) else None


@rule("canonicalize", Elemwise)
def broadcast_implied_by_other_inputs(node):
    """broadcast_to(a, y.shape) + y -> a + y"""
    for index, var in enumerate(node.inputs):
        owner = var.owner
        if owner is None or not isinstance(owner.op, BroadcastTo):
            continue
        source, lengths = owner.inputs[0], owner.inputs[1:]
        if source.ndim > len(lengths) or not _broadcast_is_implied(node, index, lengths, source):
            continue
        source = strip_padding(source)
        replacement = source if source.ndim == 0 else expand_left(source, var.ndim)
        inputs = list(node.inputs)
        inputs[index] = replacement
        return Elemwise(node.op.scalar_op)(*inputs)
    return None


@rule("canonicalize", SumToShape)
def sum_to_shape_resolved(node):
    """sum_to(g, lengths) -> g, or a plain sum, on the axes whose lengths decide it"""
    g, *lengths = node.inputs
    keep, summed = [], []
    for axis, length in zip(node.op.axis, lengths):
        value = length_of_value(length)
        if g.type.shape[axis] == 1 or (value is not None and value != 1) or length_of(g, axis) is length:
            continue  # g is 1 there, the target is not 1, or they are equal: nothing to sum
        if value == 1:
            summed.append(axis)
        else:
            keep.append((axis, length))
    if len(keep) == len(lengths):
        return None
    if summed:
        g = Sum(tuple(summed), True)(g)
    if keep:
        g = SumToShape(tuple(a for a, _ in keep))(g, *(n for _, n in keep))
    return g


@rule("canonicalize", DimShuffle)
def dimshuffle_of_dimshuffle(node):
    """x.dimshuffle(a).dimshuffle(b) -> x.dimshuffle(a composed with b)"""
    inner = node.inputs[0]
    if inner.owner is None or not isinstance(inner.owner.op, DimShuffle):
        return None
    first = inner.owner.op.new_order
    order = ["x" if a == "x" else first[a] for a in node.op.new_order]
    return dimshuffle(inner.owner.inputs[0], order)


@rule("canonicalize", Reshape)
def reshape_of_reshape(node):
    """x.reshape(a).reshape(b) -> x.reshape(b)"""
    inner = node.inputs[0]
    if inner.owner is None or not isinstance(inner.owner.op, Reshape):
        return None
    return Reshape()(inner.owner.inputs[0], *node.inputs[1:])


@rule("canonicalize", Reshape)
def reshape_to_own_shape(node):
    """x.reshape(x.shape) -> x"""
    x, *lengths = node.inputs
    if x.ndim == len(lengths) and all(length_of(x, a) is n for a, n in enumerate(lengths)):
        return x
    return None


@rule("canonicalize", DimShuffle)
def matrix_vector_product(node):
    """(A @ v[:, None])[:, 0] -> A @ v, and (v[None, :] @ B)[0, :] -> v @ B"""
    product = node.inputs[0]
    if product.owner is None or not isinstance(product.owner.op, MatMul) or product.ndim != 2:
        return None
    a, b = product.owner.inputs
    if a.ndim != 2 or b.ndim != 2:
        return None
    if node.op.new_order == (0,) and _is_column(b):
        return MatMul()(a, b.owner.inputs[0])
    if node.op.new_order == (1,) and _is_row(a):
        return MatMul()(a.owner.inputs[0], b)
    return None


def _is_column(var):
    """Whether ``var`` is ``v[:, None]`` of a vector ``v`` (a dimshuffle may also drop a
    length-1 axis: ``m.dimshuffle(0, "x")`` of an (n, 1) matrix is no vector made a column)."""
    return _dimshuffled_vector(var, (0, "x"))


def _is_row(var):
    """Whether ``var`` is ``v[None, :]`` of a vector ``v``."""
    return _dimshuffled_vector(var, ("x", 0))


def _dimshuffled_vector(var, order):
    owner = var.owner
    return (
        owner is not None
        and isinstance(owner.op, DimShuffle)
        and owner.op.new_order == order
        and owner.inputs[0].ndim == 1
    )

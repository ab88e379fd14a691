"""Reductions of values known to repeat: the sum of a broadcast is a product."""

from ...ops.reduction import Sum
from ...ops.shape import BroadcastTo, broadcast_to, dimshuffle, expand_left
from ..engine import rule
from ..patterns import same_type


@rule("canonicalize", Sum, exact=False)
def sum_of_broadcast(node):
    """broadcast_to(a, shape).sum(axis) -> a * n, n the number of copies summed (rounds
    differently from adding n copies)"""
    (var,) = node.inputs
    op = node.op
    if var.owner is None or not isinstance(var.owner.op, BroadcastTo) or op.dtype is not None:
        return None
    if not var.dtype.startswith("float"):
        return None
    source, lengths = var.owner.inputs[0], var.owner.inputs[1:]
    padded = expand_left(source, var.ndim) if source.ndim else source
    if source.ndim and any(padded.type.shape[a] != 1 for a in op.axis):
        return None  # some summed axis holds distinct values
    copies = None
    for a in op.axis:
        copies = lengths[a] if copies is None else copies * lengths[a]
    if source.ndim == 0:
        kept = [a for a in range(var.ndim) if a not in op.axis]
        shape = (
            [lengths[a] for a in kept]
            if not op.keepdims
            else [1 if a in op.axis else lengths[a] for a in range(var.ndim)]
        )
        base = broadcast_to(source, tuple(shape)) if shape else source
    else:
        order = [a for a in range(var.ndim) if a not in op.axis or op.keepdims]
        rest = broadcast_to(padded, tuple(1 if a in op.axis else lengths[a] for a in range(var.ndim)))
        base = dimshuffle(rest, order) if not op.keepdims else rest
    product = base * copies
    return product if same_type(product, node.outputs[0]) else None

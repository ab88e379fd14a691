"""Lean gradient graphs: chains of broadcasts and ``sum_to`` collapsed, zeros dropped.

Each backward step of an elementwise node undoes the broadcasting its input may
have had (``sum_to``), and each backward step of a sum broadcasts again, so a
gradient reads ``sum_to(sum_to(broadcast_to(broadcast_to(g))))``. These rules
make such a chain one broadcast and at most one reduction. The rules on zeros
clean up after what :func:`exprc.grad` does not see (zeros a user wrote, or
that rewriting uncovers); ``grad`` itself never builds a zero gradient, and
``x + zeros`` goes by the shape and algebra rules (``broadcast_implied_by_other_inputs``,
then ``add_zero``).
"""

from ...grad import is_symbolic_zero
from ...graph import Constant
from ...ops.elemwise import Elemwise
from ...ops.linalg import MatMul
from ...ops.reduction import Sum, SumToShape
from ...ops.shape import BroadcastTo, DimShuffle, ShapeI
from ...tensor import constant
from ..engine import rule
from ..patterns import same_type
from .shapes import length_of, length_of_value

# --- chains of broadcasts and sums -------------------------------------------------------


def _scalar_source(var):
    """The 0-d variable ``var`` repeats when it is one broadcast (through views), else None."""
    seen_broadcast = False
    while var.owner is not None and isinstance(var.owner.op, (BroadcastTo, DimShuffle)):
        seen_broadcast |= isinstance(var.owner.op, BroadcastTo)
        var = var.owner.inputs[0]
    return var if var.ndim == 0 and seen_broadcast else None


@rule("canonicalize", BroadcastTo)
def broadcast_of_broadcast(node):
    """broadcast_to(broadcast_to(a, s1), s2) -> broadcast_to(a, s2); through views for a 0-d a"""
    var, lengths = node.inputs[0], node.inputs[1:]
    source = _scalar_source(var)
    if source is not None:
        return BroadcastTo()(source, *lengths)
    if var.owner is not None and isinstance(var.owner.op, BroadcastTo):
        return BroadcastTo()(var.owner.inputs[0], *lengths)
    return None


@rule("canonicalize", DimShuffle)
def dimshuffle_of_broadcast_scalar(node):
    """broadcast_to(c, s).dimshuffle(order) -> broadcast_to(c, s reordered), c 0-d"""
    var = node.inputs[0]
    source = _scalar_source(var)
    if source is None or var.owner is None or not isinstance(var.owner.op, BroadcastTo):
        return None
    lengths = var.owner.inputs[1:]
    return BroadcastTo()(source, *(constant(1) if a == "x" else lengths[a] for a in node.op.new_order))


def _broadcasts_into(small, large, depth=8):
    """Whether the length ``small`` is, at run time, either 1 or ``large``: it is ``large``,
    or 1, or the length of an input of the elementwise node whose output ``large`` measures
    (an input broadcasts into its output), followed up ``depth`` such nodes."""
    if small is large or length_of_value(small) == 1:
        return True
    owner = large.owner
    if depth == 0 or owner is None or not isinstance(owner.op, ShapeI):
        return False
    (var,), axis = owner.inputs, owner.op.axis
    if var.owner is None or not isinstance(var.owner.op, Elemwise):
        return False
    return any(v.ndim and _broadcasts_into(small, length_of(v, axis), depth - 1) for v in var.owner.inputs)


@rule("canonicalize", SumToShape)
def sum_to_of_sum_to(node):
    """sum_to(sum_to(g, n1), n2) -> sum_to(g, n2) where n2 is 1 or n1 (an input broadcast
    into the output that n1 measures)"""
    inner, *outer_lengths = node.inputs
    if inner.owner is None or not isinstance(inner.owner.op, SumToShape):
        return None
    g, *inner_lengths = inner.owner.inputs
    merged = dict(zip(inner.owner.op.axis, inner_lengths))
    for axis, length in zip(node.op.axis, outer_lengths):
        # Summed where n1 is 1 (inner) or n2 is 1 (outer); with n2 in {1, n1} that is where n2 is.
        if axis in merged and not _broadcasts_into(length, merged[axis]):
            return None
        merged[axis] = length
    axes = tuple(sorted(merged))
    return SumToShape(axes)(g, *(merged[a] for a in axes))


# --- zeros ---------------------------------------------------------------------------


def _output_length(node, axis):
    """The length of ``axis`` of ``node``'s output as a variable not computed from the output
    itself, or None: for an elementwise node whose non-1 inputs all have the same length, that
    length (``length_of`` gives up on two candidates)."""
    out = node.outputs[0]
    length = length_of(out, axis)
    if length.owner is None or length.owner.inputs[0] is not out:
        return length
    if isinstance(node.op, Elemwise):
        candidates = {id(length_of(v, axis)): length_of(v, axis) for v in node.inputs if v.ndim}
        candidates = [n for n in candidates.values() if length_of_value(n) != 1]
        if len(candidates) == 1:
            return candidates[0]
    return None


def _zeros(node):
    """Zeros of the type of ``node``'s output, or None when its lengths cannot be told apart
    from the node itself or the zeros would have another type (a weak scalar's)."""
    out = node.outputs[0]
    lengths = [_output_length(node, a) for a in range(out.ndim)]
    if any(n is None for n in lengths):
        return None
    zero = constant(0, dtype=out.dtype)
    zeros = BroadcastTo()(zero, *lengths) if lengths else zero
    return zeros if same_type(zeros, out) else None


@rule("canonicalize", Elemwise, scalar="multiply", exact=False)
def multiply_zeros(node):
    """zeros * x -> zeros, also where the zeros widen x (NaN for infinite or NaN x)"""
    return _zeros(node) if any(is_symbolic_zero(v) for v in node.inputs) else None


@rule("canonicalize", MatMul, exact=False)
def matmul_zeros(node):
    """zeros @ x -> zeros, x @ zeros -> zeros (NaN for infinite or NaN x)"""
    return _zeros(node) if any(is_symbolic_zero(v) for v in node.inputs) else None


@rule("canonicalize", Sum)
def sum_of_zeros(node):
    """zeros.sum(axis) -> zeros of the result's shape and dtype"""
    (x,) = node.inputs
    return _zeros(node) if is_symbolic_zero(x) and not isinstance(x, Constant) else None

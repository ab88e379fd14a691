"""Constant folding: a node whose inputs are all constants becomes the constant it computes."""

import numpy as np

from ...graph import Constant, Op
from ...ops.shape import BroadcastTo, DimShuffle
from ...tensor import constant
from ..engine import rule

#: Folding stops at results larger than this (elements): a big constant costs memory and
#: cache space, and computing it at run time is cheap.
MAX_FOLDED_SIZE = 1024


@rule("canonicalize", Op)
def fold_constants(node):
    """op(constants...) -> the constant it computes"""
    if isinstance(node.op, (DimShuffle, BroadcastTo)):
        return None  # a view of a constant is as good as a constant, and smaller
    if len(node.outputs) != 1 or not node.inputs or not all(isinstance(v, Constant) for v in node.inputs):
        return None
    out = node.outputs[0]
    if None in out.type.shape or int(np.prod(out.type.shape, dtype=np.int64)) > MAX_FOLDED_SIZE:
        return None
    with np.errstate(all="ignore"):
        (value,) = node.op.perform(node, [v.value for v in node.inputs])
    value = np.asarray(value).astype(out.dtype, copy=False)
    if out.type.weak:  # a weak result stays a Python scalar, so it keeps promoting as one
        return constant(value.item())
    return constant(value, dtype=out.dtype)

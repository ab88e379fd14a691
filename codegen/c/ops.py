"""The nodes a C segment runs without a kernel (``ops.c`` in the run time): views, lengths,
sums back to a broadcast shape and matrix products. :func:`c_form` says whether a node has
one and what it reads; :func:`why_not` why a node stays a NumPy step.
See docs/internals/c-back-end.md.

>>> import exprc as ex
>>> x = ex.matrix("x")
>>> c_form(x.T.owner, set()).op, c_form(x.T.owner, set()).params
('EXPRC_OP_DIMSHUFFLE', (1, 0))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exprc.codegen.c import blas
from exprc.graph import Apply, Constant, Variable
from exprc.ops.linalg import MatMul
from exprc.ops.reduction import SumToShape
from exprc.ops.shape import BroadcastTo, DimShuffle, Reshape, ShapeI

#: A length read from a constant, or from the slot of a length computed in the segment.
LENGTH_CONSTANT, LENGTH_SLOT = 0, 1

_FLOATS = ("float32", "float64")


@dataclass(frozen=True)
class CForm:
    """How the run time runs a node: ``op`` (an ``EXPRC_OP_*`` name), its parameters (where
    a length is read from a slot, the variable stands in for the slot number until the
    segment numbers it) and the variables it reads from slots (its data, then lengths)."""

    op: str
    params: tuple
    reads: tuple

    def numbered(self, slot) -> tuple[int, ...]:
        """``params`` with each variable replaced by ``slot(variable)``."""
        return tuple(slot(p) if isinstance(p, Variable) else int(p) for p in self.params)


def _lengths(lengths, produced, with_axes=None):
    """The (kind, value) params of ``lengths`` and the variables they read, or None where a
    length is neither a constant nor the length of an axis computed in the same segment
    (the shapes-only pass, which sees no data, must know it)."""
    params, reads = [], []
    for i, var in enumerate(lengths):
        if with_axes is not None:
            params.append(with_axes[i])
        if isinstance(var, Constant):
            params += [LENGTH_CONSTANT, int(np.asarray(var.value))]
        elif var.owner is not None and isinstance(var.owner.op, ShapeI) and var in produced:
            params += [LENGTH_SLOT, var]
            reads.append(var)
        else:
            return None
    return tuple(params), tuple(reads)


def c_form(node: Apply, produced: set[Variable]) -> CForm | None:
    """The run time's form of ``node``, given the variables ``produced`` earlier in the same
    segment; None where it has none (the node runs as a NumPy step)."""
    op = node.op
    x = node.inputs[0] if node.inputs else None
    if isinstance(op, DimShuffle):
        return CForm("EXPRC_OP_DIMSHUFFLE", tuple(-1 if a == "x" else int(a) for a in op.new_order), (x,))
    if isinstance(op, ShapeI):
        return CForm("EXPRC_OP_SHAPE", (op.axis,), (x,))
    if isinstance(op, (BroadcastTo, Reshape)):
        found = _lengths(node.inputs[1:], produced)
        if found is None:
            return None
        name = "EXPRC_OP_BROADCAST" if isinstance(op, BroadcastTo) else "EXPRC_OP_RESHAPE"
        return CForm(name, found[0], (x, *found[1]))
    if isinstance(op, SumToShape):
        if x.dtype not in _FLOATS or x.ndim == 0:
            return None
        found = _lengths(node.inputs[1:], produced, with_axes=op.axis)
        return None if found is None else CForm("EXPRC_OP_SUM_TO", found[0], (x, *found[1]))
    if isinstance(op, MatMul):
        a, b = node.inputs
        out = node.outputs[0]
        if blas.missing() is not None or not (a.dtype == b.dtype == out.dtype and out.dtype in _FLOATS):
            return None
        return CForm("EXPRC_OP_MATMUL", (int(a.ndim == 1), int(b.ndim == 1)), (a, b))
    return None


def why_not(node: Apply) -> str | None:
    """Why a node the run time could run stays a NumPy step (for the program's summary)."""
    if isinstance(node.op, MatMul):
        if blas.missing() is not None:
            return blas.missing()
        return "only float32 or float64 operands of one dtype are multiplied from C"
    if isinstance(node.op, (BroadcastTo, Reshape, SumToShape)):
        return "its lengths are not constants or lengths computed in the same C call"
    return None


#: What the summary calls each form.
_KINDS = {
    "EXPRC_OP_DIMSHUFFLE": "view",
    "EXPRC_OP_BROADCAST": "view",
    "EXPRC_OP_RESHAPE": "view",
    "EXPRC_OP_SHAPE": "length",
    "EXPRC_OP_SUM_TO": "sum",
    "EXPRC_OP_MATMUL": "BLAS gemm",
}


def describe(form: CForm, node: Apply) -> str:
    """How the program's summary names a step run by the run time: ``view DimShuffle{...}``."""
    return f"{_KINDS[form.op]} {node.op.debug_name()}"


def is_product(form: CForm) -> bool:
    """Whether the step is a matrix product (a BLAS call)."""
    return form.op == "EXPRC_OP_MATMUL"


def may_alias(form: CForm) -> bool:
    """Whether the step's result may share memory with its input (a view; a sum that sums
    nothing is its input)."""
    return form.op not in ("EXPRC_OP_MATMUL", "EXPRC_OP_SHAPE")

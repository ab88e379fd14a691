"""How the C back end lowers each op type (see :mod:`exprc.codegen.ir.lowering`).

Elementwise ops and reductions become fused C kernels (where the formula table has
the op for the dtypes; otherwise the node runs on the host); matrix products call
BLAS through NumPy, unless a row pass fuses a matrix-vector product with the work
on its rows; everything else runs the op's NumPy reference between the kernels,
which for a view op returns a view.
"""

from exprc.backends import CPU_BACKENDS, entry_point
from exprc.codegen.c.random import run_draw
from exprc.codegen.ir.lowering import Kind, LoweringTable, combining_ops, numpy_only_ops
from exprc.grad import Rows, StopGradient
from exprc.ops.elemwise import Elemwise
from exprc.ops.indexing import AdvancedIncSubtensor, AdvancedSubtensor, IncSubtensor, Subtensor
from exprc.ops.linalg import MatMul, TensorDot
from exprc.ops.loops import IfElse, Scan, compiled_step
from exprc.ops.random import RandomDraw
from exprc.ops.rearrange import SpecifyShape
from exprc.ops.reduction import ArgMax, ArgMin, SumToShape
from exprc.ops.shape import BroadcastTo, Concatenate, DimShuffle, Reshape, ShapeI

C_LOWERINGS = LoweringTable("c")
C_LOWERINGS.register(Elemwise, kind=Kind.ELEMENTWISE)
for _op, _combine in combining_ops().items():
    C_LOWERINGS.register(_op, kind=Kind.REDUCTION, combine=_combine)
C_LOWERINGS.register(MatMul, TensorDot, kind=Kind.LIBRARY, library="BLAS, through NumPy")
C_LOWERINGS.register(DimShuffle, Reshape, BroadcastTo, Subtensor, kind=Kind.VIEW)
C_LOWERINGS.register(ShapeI, kind=Kind.SHAPE)
C_LOWERINGS.register(
    ArgMax,
    ArgMin,
    SumToShape,
    Concatenate,
    AdvancedSubtensor,
    IncSubtensor,
    AdvancedIncSubtensor,
    StopGradient,
    Rows,
    kind=Kind.HOST,
)


def _compile_c(inputs, outputs):
    """A loop's or ifelse's body as a C program (found through the registry: the program
    module imports this table)."""
    return entry_point(CPU_BACKENDS["c"].program)(inputs, outputs)


# Loops and ifelse run on the host, their bodies compiled once as C programs (see docs/loops.md).
C_LOWERINGS.register(Scan, IfElse, kind=Kind.HOST, run=compiled_step("c", _compile_c))
# Random draws run on the host, as the Philox routine in C (philox.c), the reference's bits.
C_LOWERINGS.register(RandomDraw, kind=Kind.HOST, run=run_draw)

# A shape statement passes its input through, checking the lengths: a view.
C_LOWERINGS.register(SpecifyShape, kind=Kind.VIEW)
# No kernels of their own yet: host steps (see numpy_only_ops).
C_LOWERINGS.register(*numpy_only_ops(), kind=Kind.HOST)

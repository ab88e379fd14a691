"""How the CUDA back end lowers each op type (see :mod:`exprc.codegen.ir.lowering`).

Elementwise ops and reductions become fused CUDA kernels, as on the CPU; matrix
products run exprc's GEMM kernels; view ops become views of the device array
(worked out on a stand-in of its layout); everything else runs the op's NumPy
reference on host copies of its inputs.
"""

from exprc.codegen.cuda import recording
from exprc.codegen.cuda.random import run_draw
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

CUDA_LOWERINGS = LoweringTable("cuda")
CUDA_LOWERINGS.register(Elemwise, kind=Kind.ELEMENTWISE)
for _op, _combine in combining_ops().items():
    CUDA_LOWERINGS.register(_op, kind=Kind.REDUCTION, combine=_combine)
CUDA_LOWERINGS.register(MatMul, kind=Kind.LIBRARY, library="exprc's GEMM kernels")
CUDA_LOWERINGS.register(DimShuffle, Reshape, BroadcastTo, Subtensor, kind=Kind.VIEW)
CUDA_LOWERINGS.register(ShapeI, kind=Kind.SHAPE)
CUDA_LOWERINGS.register(
    TensorDot,
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


class _CudaBody:
    """A loop's or ifelse's body compiled once for the GPU, run on host values."""

    def __init__(self, inputs, outputs):
        from exprc.function import function

        self.function = function(list(inputs), list(outputs), device="cuda", rewrites=None)

    def run(self, arrays):
        with recording.paused():
            return [r.get() for r in self.function(*arrays)]


# Loops and ifelse run on the host, their bodies compiled once for the GPU (see docs/loops.md).
CUDA_LOWERINGS.register(Scan, IfElse, kind=Kind.HOST, run=compiled_step("cuda", _CudaBody))
# Random draws run as the Philox kernels of philox.cuh, the reference's bits.
CUDA_LOWERINGS.register(RandomDraw, kind=Kind.HOST, run=run_draw)

# A shape statement passes its input through, checking the lengths: a view.
CUDA_LOWERINGS.register(SpecifyShape, kind=Kind.VIEW)
# No kernels of their own yet: host steps (see numpy_only_ops).
CUDA_LOWERINGS.register(*numpy_only_ops(), kind=Kind.HOST)

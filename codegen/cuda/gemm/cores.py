"""The GEMM kernels on the CUDA cores: float32 and float64, exact in their dtype.

One C++ template, ``exprc_gemm_cores<T, TILE>``, instantiated by the kernels
``exprc_gemm_f32`` and ``exprc_gemm_f64`` (TILE 128) and
``exprc_gemm_f32_tile64`` and ``exprc_gemm_f64_tile64`` (TILE 64, for products
too small to give every multiprocessor a 128 x 128 tile; see
:func:`exprc.codegen.cuda.gemm.plan.choose`). Parameters and grid: see
:mod:`exprc.codegen.cuda.gemm.plan`. Each product and sum is rounded as one FMA, as BLAS
does.

How a block of 256 threads computes its 128 x 128 tile of C (64 x 64: K 16 at
a time, 4 x 4 per thread):

- K is walked 8 at a time. Each step, every thread fetches four consecutive
  elements of A's 128 x 8 tile and four of B's 8 x 128 tile, along whichever
  axis the operand is contiguous in: one 16-byte load (32 for float64) when
  the operand's layout and address allow it, else four loads; zeros past the
  edges. It stores them into shared memory as ``[k][row]`` and ``[k][column]``,
  so that the product reads both along rows of 128.
- Two buffers of those tiles alternate: while the threads multiply from one,
  their loads for the next step are in flight, and one barrier per step
  suffices.
- Thread (tx, ty) of the 16 x 16 grid accumulates an 8 x 8 tile of C in
  registers: rows 4 ty .. 4 ty + 3 and 64 + 4 ty .., columns 4 tx .. and
  64 + 4 tx .., each four read from shared memory by one wide load. Per step
  and thread that is 512 FMAs for 32 shared-memory loads.

The padding of each shared row (4 elements) keeps the four stores of a thread
that transposes its elements on distinct banks.
"""
from exprc.codegen.cfamily import templates

#: The kernels' C++ template (in cores.cuh).
SOURCE = templates.read(__package__, "cores.cuh").removesuffix("\n")


def render_cores(kernel, signature):
    """The ``__global__`` function of CUDA-core GEMM ``kernel`` (a :class:`~exprc.codegen.cuda.gemm.plan.GemmKernel`
    of float32 or float64), its declaration being ``signature``."""
    t = {"float32": "float", "float64": "double"}[kernel.dtype]
    tile, per = kernel.tile, kernel.tile // 16
    return (f"/* {kernel.name}: {kernel.dtype} C = A @ B on the CUDA cores, exact in {kernel.dtype}\n"
            f"   ({tile} x {tile} tiles of C, {per} x {per} per thread, K {1024 // tile} at a time through shared "
            f"memory). */\n"
            f"{signature}\n{{\n    exprc_gemm_cores<{t}, {tile}>(batch, m, n, k, a, a_sb, a_sm, a_sk, b, b_sb, b_sk, "
            f"b_sn, c, c_sb, c_sm, c_sn);\n}}")

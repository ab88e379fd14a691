"""The GEMM kernels on the CUDA cores: float32 and float64, exact in their dtype.

One C++ template, ``exprc_gemm_cores<T, TILE>``, instantiated by ``exprc_gemm_f32`` and
``exprc_gemm_f64`` (TILE 128) and their ``_tile64`` versions for smaller products.
Parameters and grid: see :mod:`exprc.codegen.cuda.gemm.plan`.
See docs/internals/cuda-gemm.md.
"""

from exprc.codegen.cfamily import templates

#: The kernels' C++ template (in cores.cuh).
SOURCE = templates.read(__package__, "cores.cuh").removesuffix("\n")


def render_cores(kernel, signature):
    """The ``__global__`` function of CUDA-core GEMM ``kernel`` (a :class:`~exprc.codegen.cuda.gemm.plan.GemmKernel`
    of float32 or float64), its declaration being ``signature``."""
    t = {"float32": "float", "float64": "double"}[kernel.dtype]
    tile, per = kernel.tile, kernel.tile // 16
    return (
        f"/* {kernel.name}: {kernel.dtype} C = A @ B on the CUDA cores, exact in {kernel.dtype}\n"
        f"   ({tile} x {tile} tiles of C, {per} x {per} per thread, K {1024 // tile} at a time through shared "
        f"memory). */\n"
        f"{signature}\n{{\n    exprc_gemm_cores<{t}, {tile}>(batch, m, n, k, a, a_sb, a_sm, a_sk, b, b_sb, b_sk, "
        f"b_sn, c, c_sb, c_sm, c_sn);\n}}"
    )

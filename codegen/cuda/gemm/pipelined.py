"""The fast GEMM kernels on the tensor cores: float16 and bfloat16 operands laid out for them.

One C++ template, ``exprc_gemm_pipelined<A_ALONG_K, B_ALONG_K, BF16>``, instantiated by eight
kernels ``exprc_gemm_{f16,bf16}_{nn,nt,tn,tt}`` for the operands
:func:`exprc.codegen.cuda.gemm.plan.pipelined_layout` accepts; others go to the general kernels.
See docs/internals/cuda-gemm.md.
"""

from exprc.codegen.cfamily import templates

#: The kernels' C++ template (in pipelined.cuh).
SOURCE = templates.read(__package__, "pipelined.cuh").removesuffix("\n")

#: The layouts, by name: (A contiguous along k, B contiguous along k).
LAYOUTS = {"nn": (True, False), "nt": (True, True), "tn": (False, False), "tt": (False, True)}


def render_pipelined(kernel, signature):
    """The ``__global__`` function of pipelined GEMM ``kernel`` (a :class:`~exprc.codegen.cuda.gemm.plan.GemmKernel`
    whose ``layout`` is a key of :data:`LAYOUTS`), its declaration being ``signature``."""
    a_along_k, b_along_k = LAYOUTS[kernel.layout]
    a_says = "contiguous along k" if a_along_k else "contiguous along m (a transpose)"
    b_says = "contiguous along k (a transpose)" if b_along_k else "contiguous along n"
    flags = ", ".join("true" if f else "false" for f in (a_along_k, b_along_k, kernel.dtype == "bfloat16"))
    return (
        f"/* {kernel.name}: {kernel.dtype} C = A @ B on the tensor cores (mma.sync m16n8k16), float32\n"
        f"   accumulation, for A {a_says} and B {b_says}; tiles copied by cp.async, three in flight. */\n"
        f"{signature}\n{{\n    exprc_gemm_pipelined<{flags}>(batch, m, n, k, a, a_sb, a_sm, a_sk, b, b_sb, b_sk, "
        f"b_sn, c, c_sb, c_sm, c_sn);\n}}"
    )

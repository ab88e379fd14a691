"""The fast GEMM kernels on the tensor cores: float16 and bfloat16 operands laid out for them.

One C++ template, ``exprc_gemm_pipelined<A_ALONG_K, B_ALONG_K, BF16>``,
instantiated by eight kernels ``exprc_gemm_{f16,bf16}_{nn,nt,tn,tt}``: the first
letter says how A lies (``n``: rows contiguous along k, as NumPy stores an
``m x k`` matrix; ``t``: contiguous along m, a transpose), the second how B lies
(``n``: contiguous along n; ``t``: along k). Float32 accumulation through
``mma.sync.aligned.m16n8k16``, the result rounded once to the input dtype.
Parameters and grid: see :mod:`exprc.codegen.cuda.gemm.plan`, which also says which
operands these kernels take (:func:`exprc.codegen.cuda.gemm.plan.pipelined_layout`): every
row of 8 elements along the contiguous axis starts on 16 bytes, and the
contiguous axis' length is a multiple of 8. Others go to the general kernels.

How a block of 8 warps computes its 128 x 128 tile of C:

- K is walked 32 at a time. A 128 x 32 tile of each operand is copied from
  global to shared memory by ``cp.async`` (sm_80: 16 bytes per instruction,
  without passing through registers; zeros past the edges), three tiles in
  flight: while the warps multiply one, the next two are on their way. One
  barrier per step.
- Shared tiles keep the operand's own layout: ``[row][k]`` (32 elements, 64
  bytes per row) when it is contiguous along k, ``[k][row]`` (128 elements)
  otherwise. The 16-byte chunks of each row are permuted (XOR with bits of
  the row index) so that the eight rows an ``ldmatrix`` reads lie on distinct
  banks.
- Warp w computes the 64 x 32 quarter at rows 64 (w / 4), columns 32 (w % 4):
  4 x 4 tiles of 16 x 8, one ``mma`` each per 16 of K. Its fragments come from
  shared memory by ``ldmatrix`` (``.trans`` for a tile stored ``[k][row]``):
  per 16 of K, four loads for A and two for B, for 16 ``mma``.
- Blocks take the tiles of C in groups of 8 rows of tiles, column after column
  within a group, so that blocks running together share rows of A and columns
  of B in the L2 cache.
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
    return (f"/* {kernel.name}: {kernel.dtype} C = A @ B on the tensor cores (mma.sync m16n8k16), float32\n"
            f"   accumulation, for A {a_says} and B {b_says}; tiles copied by cp.async, three in flight. */\n"
            f"{signature}\n{{\n    exprc_gemm_pipelined<{flags}>(batch, m, n, k, a, a_sb, a_sm, a_sk, b, b_sb, b_sk, "
            f"b_sn, c, c_sb, c_sm, c_sn);\n}}")

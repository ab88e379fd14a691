"""The general GEMM kernels on the tensor cores: float16, bfloat16 and TF32 operands of any layout.

``exprc_gemm_f16`` and ``exprc_gemm_bf16`` take what the pipelined kernels
(:mod:`exprc.codegen.cuda.gemm.pipelined`) cannot; ``exprc_gemm_f32_tf32`` runs float32
products as TF32 (not exact), only where the caller allows it.
See docs/internals/cuda-gemm.md.
"""

from exprc.codegen.cfamily import templates

#: The kernel, its ``@fields@`` filled per dtype (in mma.cuh).
_MMA = templates.read(__package__, "mma.cuh").removesuffix("\n")

# Two 16-bit elements of a row, the lower-indexed one in the low half: one 32-bit register
# of an m16n8k16 fragment (the column is even, so the load is aligned).
_PAIR = "*(const unsigned int *)&{tile}[{row}][{col}]"

_FRAGMENTS_K16 = """
     a (16 x 16, row): register 0 holds A[g][2t, 2t+1], 1 A[g+8][2t, 2t+1],
                       2 A[g][2t+8, 2t+9], 3 A[g+8][2t+8, 2t+9];
     b (16 x 8, col):  register 0 holds B[2t, 2t+1][g], 1 B[2t+8, 2t+9][g];
     c (16 x 8):       float q holds C[g + 8 (q / 2)][2t + q % 2]."""

_FRAGMENTS_K8 = """
     a (16 x 8, row): register 0 holds A[g][t], 1 A[g+8][t], 2 A[g][t+4], 3 A[g+8][t+4];
     b (8 x 8, col):  register 0 holds B[t][g], 1 B[t+4][g];
     c (16 x 8):      float q holds C[g + 8 (q / 2)][2t + q % 2]."""

_A_K16 = "\n".join(
    f"                    a_frag[mi][{i}] = " + _PAIR.format(tile="a_tile", row=row, col=col) + ";"
    for i, (row, col) in enumerate(
        [
            ("r + g", "ks + 2 * t"),
            ("r + g + 8", "ks + 2 * t"),
            ("r + g", "ks + 2 * t + 8"),
            ("r + g + 8", "ks + 2 * t + 8"),
        ]
    )
)
_B_K16 = "\n".join(
    f"                    b_frag[ni][{i}] = " + _PAIR.format(tile="b_tile", row="cn + g", col=col) + ";"
    for i, col in enumerate(["ks + 2 * t", "ks + 2 * t + 8"])
)
_A_K8 = "\n".join(
    f"                    a_frag[mi][{i}] = exprc_f32_to_tf32(a_tile[{row}][{col}]);"
    for i, (row, col) in enumerate(
        [("r + g", "ks + t"), ("r + g + 8", "ks + t"), ("r + g", "ks + t + 4"), ("r + g + 8", "ks + t + 4")]
    )
)
_B_K8 = "\n".join(
    f"                    b_frag[ni][{i}] = exprc_f32_to_tf32(b_tile[cn + g][{col}]);"
    for i, col in enumerate(["ks + t", "ks + t + 4"])
)


def render_mma(kernel, signature):
    """The ``__global__`` function of general tensor-core GEMM ``kernel`` (a
    :class:`~exprc.codegen.cuda.gemm.plan.GemmKernel` of method ``"mma"`` or ``"tf32"``), declared as ``signature``."""
    if kernel.method == "mma":
        short = {"float16": "f16", "bfloat16": "bf16"}[kernel.dtype]
        return templates.fill(
            _MMA,
            name=kernel.name,
            dtype=kernel.dtype,
            signature=signature,
            s="exprc_bits16",
            out="exprc_bits16",
            pad=8,
            mma_k=16,
            instruction=f"mma.sync m16n8k16 .{short}",
            rounding=f"the result rounded once to {kernel.dtype}",
            fragments=_FRAGMENTS_K16,
            a_fragment=_A_K16,
            b_fragment=_B_K16,
            mma=f"exprc_mma_{short}",
            store=f"exprc_f32_to_{short}(acc[mi][ni][q])",
        )
    return templates.fill(
        _MMA,
        name=kernel.name,
        dtype=kernel.dtype,
        signature=signature,
        s="float",
        out="float",
        pad=4,
        mma_k=8,
        instruction="mma.sync m16n8k8 .tf32",
        rounding="inputs rounded to TF32 (not exact: only where allowed)",
        fragments=_FRAGMENTS_K8,
        a_fragment=_A_K8,
        b_fragment=_B_K8,
        mma="exprc_mma_tf32",
        store="acc[mi][ni][q]",
    )

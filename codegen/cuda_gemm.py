"""Matrix products on the GPU: the CUDA source of exprc's GEMM kernels, one per dtype.

Every kernel computes ``C[b] = A[b] @ B[b]`` for ``b < batch``, ``A[b]`` being
``m x k``, ``B[b]`` ``k x n`` and ``C[b]`` ``m x n``, each matrix addressed
through its own strides *in elements* (batch, row, column), so transposed and
strided operands are read where they lie and a batch axis that broadcasts has
stride 0. Any ``m``, ``n`` and ``k`` (zero included): tiles that overhang the
edges read zeros and store nothing.

Parameters, each 8 bytes as for every exprc kernel (:data:`PARAMETERS`)::

    batch, m, n, k,
    a, a_sb, a_sm, a_sk,     b, b_sb, b_sk, b_sn,     c, c_sb, c_sm, c_sn

Kernels (:func:`gemm_kernels`):

- ``exprc_gemm_f32``, ``exprc_gemm_f64``: shared-memory tiling on the CUDA
  cores, exact in the dtype (each product and sum rounded as an FMA, as BLAS
  does). 256 threads as a 16 x 16 grid compute a 64 x 64 tile of C, each
  thread a 4 x 4 register tile, while K is walked 16 at a time through shared
  memory;
- ``exprc_gemm_f16``, ``exprc_gemm_bf16``: tensor cores, through the PTX
  instruction ``mma.sync.aligned.m16n8k16`` (sm_80 and later), float32
  accumulation, the result rounded once to the input dtype. 128 threads (4
  warps) compute a 64 x 64 tile, each warp 32 x 32 as 2 x 4 products of
  16 x 8; K is walked 32 at a time;
- ``exprc_gemm_f32_tf32``: float32 on the tensor cores as TF32
  (``mma.sync.aligned.m16n8k8...tf32``): inputs rounded to 10 bits of
  mantissa, float32 accumulation. Faster, and *not* exact: used only where the
  caller allows it.

The sources need no header: float16 and bfloat16 are held as their bits
(``unsigned short``) and converted by PTX instructions.

Grids (:func:`grid`) cover ``n`` by ``blockIdx.x``, ``m`` by ``blockIdx.y``
and the batch by ``blockIdx.z``; the kernels loop over the tiles a grid does
not reach, so any grid computes everything.

>>> [k.name for k in gemm_kernels()]
['exprc_gemm_f32', 'exprc_gemm_f64', 'exprc_gemm_f16', 'exprc_gemm_bf16', 'exprc_gemm_f32_tf32']
>>> grid(kernel_for("float32"), batch=2, m=100, n=300)
((5, 2, 2), 256)
"""
from dataclasses import dataclass

import numpy as np

#: The parameters of every GEMM kernel, in order (each an int64 or a pointer).
PARAMETERS = ("batch", "m", "n", "k",
              "a", "a_sb", "a_sm", "a_sk",
              "b", "b_sb", "b_sk", "b_sn",
              "c", "c_sb", "c_sm", "c_sn")

#: The tile of C one block computes, rows by columns (the same for every kernel).
BLOCK_M = BLOCK_N = 64

#: The largest grid along y and z (CUDA's limit); the kernels loop over the rest.
MAX_GRID_YZ = 65535
MAX_GRID_X = 2**31 - 1


@dataclass(frozen=True)
class GemmKernel:
    """One GEMM kernel: its name, the dtype of A and B (``dtype``, the storage) and of C
    (``out_dtype``), how it computes (``"tiled"``, ``"mma"`` or ``"tf32"``), and the
    threads per block it must be launched with."""

    name: str
    dtype: str
    out_dtype: str
    method: str
    threads: int

    @property
    def exact(self):
        """Whether the kernel computes in the dtype of its inputs (TF32 does not)."""
        return self.method != "tf32"


_KERNELS = (
    GemmKernel("exprc_gemm_f32", "float32", "float32", "tiled", 256),
    GemmKernel("exprc_gemm_f64", "float64", "float64", "tiled", 256),
    GemmKernel("exprc_gemm_f16", "float16", "float16", "mma", 128),
    GemmKernel("exprc_gemm_bf16", "bfloat16", "bfloat16", "mma", 128),
    GemmKernel("exprc_gemm_f32_tf32", "float32", "float32", "tf32", 128),
)


def gemm_kernels():
    """Every GEMM kernel, in the order of :func:`gemm_source`."""
    return list(_KERNELS)


def kernel_for(dtype, allow_tf32=False):
    """The kernel computing products of ``dtype`` operands (``"float32"``, ``"float64"``,
    ``"float16"`` or ``"bfloat16"``); float32 goes to the TF32 tensor-core kernel only when
    ``allow_tf32``. Raises TypeError for any other dtype.

    >>> kernel_for("float32").name, kernel_for("float32", allow_tf32=True).name
    ('exprc_gemm_f32', 'exprc_gemm_f32_tf32')
    """
    name = str(dtype)
    for kernel in _KERNELS:
        if kernel.dtype == name and (kernel.method == "tf32") == (allow_tf32 and name == "float32"):
            return kernel
    raise TypeError(f"no GEMM kernel for {name} operands; expected float32, float64, float16 or bfloat16")


def pack_gemm_arguments(batch, m, n, k, a, b, c):
    """The kernel's parameters as one int64 array (see :data:`PARAMETERS`): ``a``, ``b`` and
    ``c`` are each ``(device pointer, (batch stride, row stride, column stride))`` in elements.

    >>> pack_gemm_arguments(1, 2, 3, 4, (4096, (0, 4, 1)), (8192, (0, 3, 1)), (12288, (6, 3, 1))).tolist()
    [1, 2, 3, 4, 4096, 0, 4, 1, 8192, 0, 3, 1, 12288, 6, 3, 1]
    """
    values = [batch, m, n, k]
    for what, (ptr, strides) in zip("abc", (a, b, c)):
        if len(strides) != 3:
            raise ValueError(f"GEMM operand {what}: expected 3 strides (batch, row, column), got {list(strides)}")
        values += [ptr, *strides]
    return np.array([int(v) for v in values], dtype=np.int64)


def grid(kernel, batch, m, n):
    """``((blocks x, y, z), threads per block)`` for a product of ``batch`` ``m x n`` results."""
    blocks_x = min(max(1, -(-n // BLOCK_N)), MAX_GRID_X)
    blocks_y = min(max(1, -(-m // BLOCK_M)), MAX_GRID_YZ)
    return (blocks_x, blocks_y, min(max(1, batch), MAX_GRID_YZ)), kernel.threads


# --- the source ---------------------------------------------------------------------------------

PRELUDE = """\
/* exprc GEMM kernels: C[b] = A[b] @ B[b], every operand read through its strides in elements.
   Self-contained: NVRTC compiles them without any header. */
typedef long long int64_t;

/* float16 and bfloat16 are held as their bits. */
typedef unsigned short exprc_bits16;

static __device__ __forceinline__ exprc_bits16 exprc_f32_to_f16(float f)
{
    exprc_bits16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

static __device__ __forceinline__ exprc_bits16 exprc_f32_to_bf16(float f)
{
    exprc_bits16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

/* float32 rounded to TF32 (to nearest, ties away), in a 32-bit register as mma reads it */
static __device__ __forceinline__ unsigned int exprc_f32_to_tf32(float f)
{
    unsigned int t;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(t) : "f"(f));
    return t;
}

/* d += a @ b on one 16 x 8 tile, k = 16, float16 inputs: a warp-wide instruction whose
   fragments (a: 4 registers, b: 2, d: 4 floats per thread) are laid out as the PTX ISA
   specifies for m16n8k16 (see exprc_gemm_f16) */
static __device__ __forceinline__ void exprc_mma_f16(float *d, const unsigned int *a, const unsigned int *b)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* the same for bfloat16 inputs */
static __device__ __forceinline__ void exprc_mma_bf16(float *d, const unsigned int *a, const unsigned int *b)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* d += a @ b on one 16 x 8 tile, k = 8, TF32 inputs (fragments: a 4 registers, b 2) */
static __device__ __forceinline__ void exprc_mma_tf32(float *d, const unsigned int *a, const unsigned int *b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}"""

_SIGNATURE = """\
extern "C" __global__ void __launch_bounds__({threads}) {name}(
        const int64_t batch, const int64_t m, const int64_t n, const int64_t k,
        const {t} *__restrict__ a, const int64_t a_sb, const int64_t a_sm, const int64_t a_sk,
        const {t} *__restrict__ b, const int64_t b_sb, const int64_t b_sk, const int64_t b_sn,
        {out} *__restrict__ c, const int64_t c_sb, const int64_t c_sm, const int64_t c_sn)"""

# The loops over the tiles of C a block computes: the grid may be smaller than the work
# (batch and m beyond 65535 blocks), and every thread of a block runs the same iterations,
# so the __syncthreads() inside stay uniform.
_TILE_LOOPS = """\
    #pragma unroll 1
    for (int64_t bi = blockIdx.z; bi < batch; bi += gridDim.z)
    #pragma unroll 1
    for (int64_t row0 = (int64_t)blockIdx.y * 64; row0 < m; row0 += (int64_t)gridDim.y * 64)
    #pragma unroll 1
    for (int64_t col0 = (int64_t)blockIdx.x * 64; col0 < n; col0 += (int64_t)gridDim.x * 64) {
        const {t} *a_b = a + bi * a_sb;
        const {t} *b_b = b + bi * b_sb;
        {out} *c_b = c + bi * c_sb;"""

_TILED = """\
/* {name}: {dtype} C = A @ B on the CUDA cores, exact in {dtype}.
   A block of 256 threads (16 x 16: tx, ty) computes a 64 x 64 tile of C; thread (tx, ty)
   holds a 4 x 4 register tile of it, rows ty + 16 i and columns tx + 16 j: interleaved,
   so that a warp reads consecutive shared memory and writes consecutive columns of C.
   K is walked 16 at a time: the block copies a 64 x 16 tile of A and a 16 x 64 tile of B
   into shared memory (zeros past the edges), then every thread accumulates from them. */
{signature}
{{
    __shared__ {t} a_tile[16][64 + 1];  /* [k][row]; the padding spreads the stores over banks */
    __shared__ {t} b_tile[16][64 + 1];  /* [k][column] */
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    /* copy each tile along its operand's unit stride, so that a warp's loads coalesce */
    const bool a_down_rows = a_sm == 1 && a_sk != 1;  /* A stored column-major (a transpose) */
    const bool b_down_k = b_sk == 1 && b_sn != 1;     /* B stored column-major */
{loops}
        {t} acc[4][4];
        #pragma unroll
        for (int i = 0; i < 4; ++i)
            #pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = 0;
        #pragma unroll 1
        for (int64_t k0 = 0; k0 < k; k0 += 16) {{
            for (int e = threadIdx.x; e < 64 * 16; e += 256) {{
                const int r = a_down_rows ? e % 64 : e / 16, kk = a_down_rows ? e / 64 : e % 16;
                const int64_t row = row0 + r, kx = k0 + kk;
                a_tile[kk][r] = (row < m && kx < k) ? a_b[row * a_sm + kx * a_sk] : ({t})0;
            }}
            for (int e = threadIdx.x; e < 64 * 16; e += 256) {{
                const int cn = b_down_k ? e / 16 : e % 64, kk = b_down_k ? e % 16 : e / 64;
                const int64_t col = col0 + cn, kx = k0 + kk;
                b_tile[kk][cn] = (col < n && kx < k) ? b_b[kx * b_sk + col * b_sn] : ({t})0;
            }}
            __syncthreads();
            #pragma unroll
            for (int kk = 0; kk < 16; ++kk) {{
                {t} a_reg[4], b_reg[4];
                #pragma unroll
                for (int i = 0; i < 4; ++i) a_reg[i] = a_tile[kk][ty + 16 * i];
                #pragma unroll
                for (int j = 0; j < 4; ++j) b_reg[j] = b_tile[kk][tx + 16 * j];
                #pragma unroll
                for (int i = 0; i < 4; ++i)
                    #pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i][j] = {fma}(a_reg[i], b_reg[j], acc[i][j]);
            }}
            __syncthreads();  /* before the next tiles overwrite these */
        }}
        #pragma unroll
        for (int i = 0; i < 4; ++i)
            #pragma unroll
            for (int j = 0; j < 4; ++j) {{
                const int64_t row = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
                if (row < m && col < n) c_b[row * c_sm + col * c_sn] = acc[i][j];
            }}
    }}
}}"""

_MMA = """\
/* {name}: {dtype} C = A @ B on the tensor cores ({instruction}), float32 accumulation,
   {rounding}.
   A block of 4 warps computes a 64 x 64 tile of C: warp w the 32 x 32 quarter at rows
   32 (w / 2), columns 32 (w % 2), as 2 x 4 tiles of 16 x 8, one mma each per {mma_k} of K.
   K is walked 32 at a time: the block copies a 64 x 32 tile of A ([row][k]) and of B
   ([column][k], the "col" layout mma reads) into shared memory, zeros past the edges.
   Fragments, per the PTX ISA (g = lane / 4, t = lane % 4):{fragments} */
{signature}
{{
    /* rows padded by {pad} elements: a warp's fragment loads then hit 32 distinct banks */
    __shared__ __align__(16) {s} a_tile[64][32 + {pad}];
    __shared__ __align__(16) {s} b_tile[64][32 + {pad}];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int warp_row = 32 * (warp / 2), warp_col = 32 * (warp % 2);
    const bool a_down_rows = a_sm == 1 && a_sk != 1;
    const bool b_down_k = b_sk == 1 && b_sn != 1;
{loops}
        float acc[2][4][4];
        #pragma unroll
        for (int mi = 0; mi < 2; ++mi)
            #pragma unroll
            for (int ni = 0; ni < 4; ++ni)
                #pragma unroll
                for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.0f;
        #pragma unroll 1
        for (int64_t k0 = 0; k0 < k; k0 += 32) {{
            for (int e = threadIdx.x; e < 64 * 32; e += 128) {{
                const int r = a_down_rows ? e % 64 : e / 32, kk = a_down_rows ? e / 64 : e % 32;
                const int64_t row = row0 + r, kx = k0 + kk;
                a_tile[r][kk] = (row < m && kx < k) ? a_b[row * a_sm + kx * a_sk] : ({s})0;
            }}
            for (int e = threadIdx.x; e < 64 * 32; e += 128) {{
                const int cn = b_down_k ? e / 32 : e % 64, kk = b_down_k ? e % 32 : e / 64;
                const int64_t col = col0 + cn, kx = k0 + kk;
                b_tile[cn][kk] = (col < n && kx < k) ? b_b[kx * b_sk + col * b_sn] : ({s})0;
            }}
            __syncthreads();
            #pragma unroll
            for (int ks = 0; ks < 32; ks += {mma_k}) {{
                unsigned int a_frag[2][4], b_frag[4][2];
                #pragma unroll
                for (int mi = 0; mi < 2; ++mi) {{
                    const int r = warp_row + 16 * mi;
{a_fragment}
                }}
                #pragma unroll
                for (int ni = 0; ni < 4; ++ni) {{
                    const int cn = warp_col + 8 * ni;
{b_fragment}
                }}
                #pragma unroll
                for (int mi = 0; mi < 2; ++mi)
                    #pragma unroll
                    for (int ni = 0; ni < 4; ++ni) {mma}(acc[mi][ni], a_frag[mi], b_frag[ni]);
            }}
            __syncthreads();  /* before the next tiles overwrite these */
        }}
        /* accumulator q of tile (mi, ni) is C's element (g + 8 (q / 2), 2 t + q % 2) of the tile */
        #pragma unroll
        for (int mi = 0; mi < 2; ++mi)
            #pragma unroll
            for (int ni = 0; ni < 4; ++ni)
                #pragma unroll
                for (int q = 0; q < 4; ++q) {{
                    const int64_t row = row0 + warp_row + 16 * mi + g + 8 * (q / 2);
                    const int64_t col = col0 + warp_col + 8 * ni + 2 * t + q % 2;
                    if (row < m && col < n) c_b[row * c_sm + col * c_sn] = {store};
                }}
    }}
}}"""

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
    for i, (row, col) in enumerate([("r + g", "ks + 2 * t"), ("r + g + 8", "ks + 2 * t"),
                                    ("r + g", "ks + 2 * t + 8"), ("r + g + 8", "ks + 2 * t + 8")]))
_B_K16 = "\n".join(
    f"                    b_frag[ni][{i}] = " + _PAIR.format(tile="b_tile", row="cn + g", col=col) + ";"
    for i, col in enumerate(["ks + 2 * t", "ks + 2 * t + 8"]))
_A_K8 = "\n".join(
    f"                    a_frag[mi][{i}] = exprc_f32_to_tf32(a_tile[{row}][{col}]);"
    for i, (row, col) in enumerate([("r + g", "ks + t"), ("r + g + 8", "ks + t"),
                                    ("r + g", "ks + t + 4"), ("r + g + 8", "ks + t + 4")]))
_B_K8 = "\n".join(
    f"                    b_frag[ni][{i}] = exprc_f32_to_tf32(b_tile[cn + g][{col}]);"
    for i, col in enumerate(["ks + t", "ks + t + 4"]))

_C_TYPES = {"float32": "float", "float64": "double", "float16": "exprc_bits16", "bfloat16": "exprc_bits16"}


def render_gemm(kernel):
    """The CUDA source of one :class:`GemmKernel` (without :data:`PRELUDE`)."""
    t, out = _C_TYPES[kernel.dtype], _C_TYPES[kernel.out_dtype]
    signature = _SIGNATURE.format(threads=kernel.threads, name=kernel.name, t=t, out=out)
    loops = _TILE_LOOPS.replace("{t}", t).replace("{out}", out)
    if kernel.method == "tiled":
        fma = {"float32": "__fmaf_rn", "float64": "__fma_rn"}[kernel.dtype]
        return _TILED.format(name=kernel.name, dtype=kernel.dtype, signature=signature, loops=loops, t=t, fma=fma)
    if kernel.method == "mma":
        short = {"float16": "f16", "bfloat16": "bf16"}[kernel.dtype]
        return _MMA.format(
            name=kernel.name, dtype=kernel.dtype, signature=signature, loops=loops, s=t, pad=8, mma_k=16,
            instruction=f"mma.sync m16n8k16 .{short}", rounding=f"the result rounded once to {kernel.dtype}",
            fragments=_FRAGMENTS_K16, a_fragment=_A_K16, b_fragment=_B_K16, mma=f"exprc_mma_{short}",
            store=f"exprc_f32_to_{short}(acc[mi][ni][q])")
    return _MMA.format(
        name=kernel.name, dtype=kernel.dtype, signature=signature, loops=loops, s=t, pad=4, mma_k=8,
        instruction="mma.sync m16n8k8 .tf32", rounding="inputs rounded to TF32 (not exact: only where allowed)",
        fragments=_FRAGMENTS_K8, a_fragment=_A_K8, b_fragment=_B_K8, mma="exprc_mma_tf32",
        store="acc[mi][ni][q]")


def gemm_source(kernels=None):
    """The CUDA source of ``kernels`` (default: every GEMM kernel), with :data:`PRELUDE`.

    >>> "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" in gemm_source()
    True
    """
    kernels = gemm_kernels() if kernels is None else kernels
    return "\n\n".join([PRELUDE] + [render_gemm(k) for k in kernels]) + "\n"

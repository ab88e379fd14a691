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
}

/* 16 bytes copied from global to shared memory without passing through registers
   (cp.async, sm_80); `bytes` of them read: 16, or 0 to fill zeros past an edge. The copy
   belongs to the thread's open group (exprc_copies_commit closes it), and is done only once
   the thread has waited for its group. */
static __device__ __forceinline__ void exprc_copy_async(void *shared, const void *global, unsigned int bytes)
{
    asm volatile("{ .reg .u64 s64; .reg .u32 s; cvta.to.shared.u64 s64, %0; cvt.u32.u64 s, s64; "
                 "cp.async.cg.shared.global [s], [%1], 16, %2; }" :: "l"(shared), "l"(global), "r"(bytes) : "memory");
}

static __device__ __forceinline__ void exprc_copies_commit()
{
    asm volatile("cp.async.commit_group;" ::: "memory");
}

/* wait until every group this thread committed, but the newest one, is done */
static __device__ __forceinline__ void exprc_copies_wait_but_newest()
{
    asm volatile("cp.async.wait_group 1;" ::: "memory");
}

static __device__ __forceinline__ void exprc_copies_wait_all()
{
    asm volatile("cp.async.wait_group 0;" ::: "memory");
}

/* ldmatrix.x4: lanes 8 j .. 8 j + 7 each give the shared address of a 16-byte row of the
   8 x 8 matrix j (16-bit elements); lane l receives in d[j] the elements (l / 4, 2 (l % 4))
   and (l / 4, 2 (l % 4) + 1) of matrix j, the first in the low half */
static __device__ __forceinline__ void exprc_ldmatrix(unsigned int *d, const void *row)
{
    asm volatile("{ .reg .u64 s64; .reg .u32 s; cvta.to.shared.u64 s64, %4; cvt.u32.u64 s, s64; "
                 "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [s]; }"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3]) : "l"(row));
}

/* the same with each matrix transposed: lane l receives its elements (2 (l % 4), l / 4) and
   (2 (l % 4) + 1, l / 4) */
static __device__ __forceinline__ void exprc_ldmatrix_trans(unsigned int *d, const void *row)
{
    asm volatile("{ .reg .u64 s64; .reg .u32 s; cvta.to.shared.u64 s64, %4; cvt.u32.u64 s, s64; "
                 "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [s]; }"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3]) : "l"(row));
}

/* How many tile x tile tiles cover an m x n matrix. */
static __device__ __forceinline__ int64_t exprc_tiles(int64_t m, int64_t n, int64_t tile)
{
    return ((m + tile - 1) / tile) * ((n + tile - 1) / tile);
}

/* The product `bi` and the tile of C (first row and column) that job `job` computes. Within a
   product, tiles go in groups of 8 rows of tiles, column after column within a group (the
   last group may have fewer rows): blocks running at once then share rows of A and columns
   of B, which stay in the L2 cache. */
static __device__ __forceinline__ void exprc_tile_of(int64_t job, int64_t m, int64_t n, int64_t tile,
                                                     int64_t *bi, int64_t *row0, int64_t *col0)
{
    const int64_t tiles_m = (m + tile - 1) / tile, tiles_n = (n + tile - 1) / tile;
    const int64_t per_product = tiles_m * tiles_n, t = job % per_product;
    const int64_t first = t / (8 * tiles_n) * 8;  /* the group's first row of tiles */
    const int64_t rows = tiles_m - first < 8 ? tiles_m - first : 8;
    const int64_t u = t - first * tiles_n;
    *bi = job / per_product;
    *row0 = (first + u % rows) * tile;
    *col0 = (u / rows) * tile;
}

/* Four consecutive elements, moved by one wide load or store (aligned to their size). */
template <typename T>
struct alignas(4 * sizeof(T)) exprc_quad { T v[4]; };

static __device__ __forceinline__ float exprc_fma(float a, float b, float c) { return __fmaf_rn(a, b, c); }
static __device__ __forceinline__ double exprc_fma(double a, double b, double c) { return __fma_rn(a, b, c); }

/* This thread's four elements of an operand's next TILE x (1024 / TILE) tile (TILE along
   `outer`, the rows of A or the columns of B; 8 or 16 along k), fetched along k when the
   operand is contiguous along k, else along outer; zeros past the edges. `wide`: the layout
   and address allow one wide load wherever four elements are inside. */
template <typename T, int TILE>
static __device__ __forceinline__ void exprc_cores_fetch(
        T *q, const T *x, int64_t s_outer, int64_t s_k, int64_t outer0, int64_t outer_len,
        int64_t k0, int64_t k_len, bool along_k, bool wide)
{
    const int per_k = 256 / TILE, per_row = TILE / 4;  /* fours along k per row, along a row per k */
    const int64_t outer = outer0 + (along_k ? threadIdx.x / per_k : 4 * (threadIdx.x % per_row));
    const int64_t kx = k0 + (along_k ? 4 * (threadIdx.x % per_k) : threadIdx.x / per_row);
    const int64_t step = along_k ? s_k : s_outer;
    const T *p = x + outer * s_outer + kx * s_k;
    const int64_t first = along_k ? kx : outer, len = along_k ? k_len : outer_len;
    const bool line = along_k ? outer < outer_len : kx < k_len;  /* the four's line is inside */
    if (wide && line && first + 3 < len) {
        const exprc_quad<T> v = *(const exprc_quad<T> *)p;
        #pragma unroll
        for (int i = 0; i < 4; ++i) q[i] = v.v[i];
    } else {
        #pragma unroll
        for (int i = 0; i < 4; ++i) q[i] = (line && first + i < len) ? p[i * step] : (T)0;
    }
}

/* The four fetched elements into the shared tile [k][outer] (rows of TILE + 4). */
template <typename T, int TILE>
static __device__ __forceinline__ void exprc_cores_stash(T (*tile)[TILE + 4], const T *q, bool along_k)
{
    const int per_k = 256 / TILE, per_row = TILE / 4;
    if (along_k) {
        #pragma unroll
        for (int i = 0; i < 4; ++i) tile[4 * (threadIdx.x % per_k) + i][threadIdx.x / per_k] = q[i];
    } else {
        exprc_quad<T> v;
        #pragma unroll
        for (int i = 0; i < 4; ++i) v.v[i] = q[i];
        *(exprc_quad<T> *)&tile[threadIdx.x / per_row][4 * (threadIdx.x % per_row)] = v;
    }
}

/* Whether an operand contiguous along one axis (unit stride `s_unit`) can be read four
   elements at a time: its address and its other strides are multiples of four elements. */
template <typename T>
static __device__ __forceinline__ bool exprc_cores_wide(const T *x, int64_t s_unit, int64_t s_other, int64_t s_batch)
{
    return s_unit == 1 && (unsigned long long)x % (4 * sizeof(T)) == 0 && s_other % 4 == 0 && s_batch % 4 == 0;
}

/* C = A @ B for one dtype on the CUDA cores, TILE x TILE tiles of C per block (128 or 64),
   K 1024 / TILE at a time: see the description in exprc's codegen/cuda/gemm/cores.py. */
template <typename T, int TILE>
static __device__ __forceinline__ void exprc_gemm_cores(
        const int64_t batch, const int64_t m, const int64_t n, const int64_t k,
        const T *__restrict__ a, const int64_t a_sb, const int64_t a_sm, const int64_t a_sk,
        const T *__restrict__ b, const int64_t b_sb, const int64_t b_sk, const int64_t b_sn,
        T *__restrict__ c, const int64_t c_sb, const int64_t c_sm, const int64_t c_sn)
{
    const int STEP = 1024 / TILE, PER = TILE / 16;  /* K per step; rows (columns) per thread */
    __shared__ __align__(32) T a_tiles[2][STEP][TILE + 4];  /* [buffer][k][row of the tile] */
    __shared__ __align__(32) T b_tiles[2][STEP][TILE + 4];  /* [buffer][k][column] */
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    /* each operand is fetched along its unit stride, so that a warp's loads coalesce */
    const bool a_along_k = a_sk == 1, b_along_k = b_sk == 1 && b_sn != 1;
    const bool a_wide = a_along_k ? exprc_cores_wide(a, a_sk, a_sm, a_sb) : exprc_cores_wide(a, a_sm, a_sk, a_sb);
    const bool b_wide = b_along_k ? exprc_cores_wide(b, b_sk, b_sn, b_sb) : exprc_cores_wide(b, b_sn, b_sk, b_sb);
    const bool c_wide = exprc_cores_wide(c, c_sn, c_sm, c_sb);
    #pragma unroll 1
    for (int64_t job = blockIdx.x; job < batch * exprc_tiles(m, n, TILE); job += gridDim.x) {
        int64_t bi, row0, col0;
        exprc_tile_of(job, m, n, TILE, &bi, &row0, &col0);
        const T *a_b = a + bi * a_sb, *b_b = b + bi * b_sb;
        T *c_b = c + bi * c_sb;
        T acc[PER][PER];
        #pragma unroll
        for (int i = 0; i < PER; ++i)
            #pragma unroll
            for (int j = 0; j < PER; ++j) acc[i][j] = 0;
        T a_next[4], b_next[4];
        exprc_cores_fetch<T, TILE>(a_next, a_b, a_sm, a_sk, row0, m, 0, k, a_along_k, a_wide);
        exprc_cores_fetch<T, TILE>(b_next, b_b, b_sn, b_sk, col0, n, 0, k, b_along_k, b_wide);
        exprc_cores_stash<T, TILE>(a_tiles[0], a_next, a_along_k);
        exprc_cores_stash<T, TILE>(b_tiles[0], b_next, b_along_k);
        __syncthreads();
        int buffer = 0;
        #pragma unroll 1
        for (int64_t k0 = 0; k0 < k; k0 += STEP) {
            const bool more = k0 + STEP < k;
            if (more) {  /* the next step's loads, in flight during this step's products */
                exprc_cores_fetch<T, TILE>(a_next, a_b, a_sm, a_sk, row0, m, k0 + STEP, k, a_along_k, a_wide);
                exprc_cores_fetch<T, TILE>(b_next, b_b, b_sn, b_sk, col0, n, k0 + STEP, k, b_along_k, b_wide);
            }
            #pragma unroll
            for (int kk = 0; kk < STEP; ++kk) {
                T a_reg[PER], b_reg[PER];
                #pragma unroll
                for (int quad = 0; quad < PER / 4; ++quad) {
                    const exprc_quad<T> av = *(const exprc_quad<T> *)&a_tiles[buffer][kk][64 * quad + 4 * ty];
                    const exprc_quad<T> bv = *(const exprc_quad<T> *)&b_tiles[buffer][kk][64 * quad + 4 * tx];
                    #pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        a_reg[4 * quad + i] = av.v[i];
                        b_reg[4 * quad + i] = bv.v[i];
                    }
                }
                #pragma unroll
                for (int i = 0; i < PER; ++i)
                    #pragma unroll
                    for (int j = 0; j < PER; ++j) acc[i][j] = exprc_fma(a_reg[i], b_reg[j], acc[i][j]);
            }
            if (more) {  /* the other buffer was last read before the previous barrier */
                exprc_cores_stash<T, TILE>(a_tiles[buffer ^ 1], a_next, a_along_k);
                exprc_cores_stash<T, TILE>(b_tiles[buffer ^ 1], b_next, b_along_k);
            }
            __syncthreads();
            buffer ^= 1;
        }
        /* acc[i][j] is C's element (row0 + 64 (i / 4) + 4 ty + i % 4, col0 + 64 (j / 4) + 4 tx + j % 4) */
        #pragma unroll
        for (int i = 0; i < PER; ++i) {
            const int64_t row = row0 + 64 * (i / 4) + 4 * ty + i % 4;
            if (row >= m) continue;
            #pragma unroll
            for (int quad = 0; quad < PER / 4; ++quad) {
                const int64_t col = col0 + 64 * quad + 4 * tx;
                T *out = c_b + row * c_sm + col * c_sn;
                if (c_wide && col + 3 < n) {
                    exprc_quad<T> v;
                    #pragma unroll
                    for (int j = 0; j < 4; ++j) v.v[j] = acc[i][4 * quad + j];
                    *(exprc_quad<T> *)out = v;
                } else {
                    #pragma unroll
                    for (int j = 0; j < 4; ++j)
                        if (col + j < n) out[j * c_sn] = acc[i][4 * quad + j];
                }
            }
        }
    }
}

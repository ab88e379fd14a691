/* The byte offset of the 16-byte chunk `chunk` of row `row` in a shared tile whose rows hold
   `chunks` of them (4: [row][k] of 32 elements; 16: [k][row] of 128). The chunks are permuted
   (XOR with bits of the row): the 8 consecutive rows of one chunk an ldmatrix reads then lie
   on 8 distinct groups of banks, and so do the chunks a warp's copies write. */
static __device__ __forceinline__ int exprc_chunk_at(int row, int chunk, int chunks)
{
    return chunks == 4 ? row * 64 + 16 * (chunk ^ ((row >> 1) & 3)) : row * 256 + 16 * (chunk ^ (row & 7));
}

/* One operand's 128 x 32 tile (128 along `outer`: the rows of A or the columns of B; 32 along
   k) copied asynchronously into the shared tile `tile`: 512 chunks of 8 elements, two per
   thread. A chunk past an edge is filled with zeros (whole chunks: the contiguous axis'
   length is a multiple of 8). */
template <bool ALONG_K>
static __device__ __forceinline__ void exprc_pipelined_copy(
        char *tile, const unsigned short *x, int64_t s_outer, int64_t s_k,
        int64_t outer0, int64_t outer_len, int64_t k0, int64_t k_len)
{
    #pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int e = threadIdx.x + 256 * i;
        const int row = ALONG_K ? e / 4 : e / 16, chunk = ALONG_K ? e % 4 : e % 16;
        const int64_t outer = outer0 + (ALONG_K ? row : 8 * chunk), kx = k0 + (ALONG_K ? 8 * chunk : row);
        const bool inside = outer < outer_len && kx < k_len;
        exprc_copy_async(tile + exprc_chunk_at(row, chunk, ALONG_K ? 4 : 16),
                         inside ? x + outer * s_outer + kx * s_k : x, inside ? 16u : 0u);
    }
}

/* The four registers of an ldmatrix.x4 over a shared tile: the 16 x 16 block at `outer0` (its
   row, or its column in a [k][row] tile) and `k0`, as the matrices 0..3 = (outer + 0, k + 0),
   (outer + 8, k + 0), (outer + 0, k + 8), (outer + 8, k + 8) when `outer_first`, else
   (outer + 0, k + 0), (outer + 0, k + 8), (outer + 8, k + 0), (outer + 8, k + 8). Each
   register then holds, in each lane, the pair of elements an mma fragment wants of it. */
template <bool ALONG_K>
static __device__ __forceinline__ void exprc_pipelined_fragment(
        unsigned int *d, const char *tile, int outer0, int k0, bool outer_first)
{
    const int lane = threadIdx.x % 32, j = lane / 8, i = lane % 8;
    const int outer_off = 8 * (outer_first ? j % 2 : j / 2), k_off = 8 * (outer_first ? j / 2 : j % 2);
    if (ALONG_K)  /* rows of the tile run along outer: row i of each matrix is one of them */
        exprc_ldmatrix(d, tile + exprc_chunk_at(outer0 + outer_off + i, (k0 + k_off) / 8, 4));
    else  /* rows run along k: transposed as they are read */
        exprc_ldmatrix_trans(d, tile + exprc_chunk_at(k0 + k_off + i, (outer0 + outer_off) / 8, 16));
}

template <bool A_ALONG_K, bool B_ALONG_K, bool BF16>
static __device__ __forceinline__ void exprc_gemm_pipelined(
        const int64_t batch, const int64_t m, const int64_t n, const int64_t k,
        const unsigned short *__restrict__ a, const int64_t a_sb, const int64_t a_sm, const int64_t a_sk,
        const unsigned short *__restrict__ b, const int64_t b_sb, const int64_t b_sk, const int64_t b_sn,
        unsigned short *__restrict__ c, const int64_t c_sb, const int64_t c_sm, const int64_t c_sn)
{
    /* three stages of both operands' tiles, 8 KiB each: 48 KiB, the most a kernel declares */
    __shared__ __align__(128) char a_tiles[3][8192];
    __shared__ __align__(128) char b_tiles[3][8192];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int warp_row = 64 * (warp / 4), warp_col = 32 * (warp % 4);
    /* pairs of results stored as one 32-bit word where C's layout allows it */
    const bool c_pairs = c_sn == 1 && (unsigned long long)c % 4 == 0 && c_sm % 2 == 0 && c_sb % 2 == 0;
    const int64_t steps = (k + 31) / 32;
    #pragma unroll 1
    for (int64_t job = blockIdx.x; job < batch * exprc_tiles(m, n, 128); job += gridDim.x) {
        int64_t bi, row0, col0;
        exprc_tile_of(job, m, n, 128, &bi, &row0, &col0);
        const unsigned short *a_b = a + bi * a_sb, *b_b = b + bi * b_sb;
        unsigned short *c_b = c + bi * c_sb;
        float acc[4][4][4];
        #pragma unroll
        for (int mi = 0; mi < 4; ++mi)
            #pragma unroll
            for (int ni = 0; ni < 4; ++ni)
                #pragma unroll
                for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.0f;
        /* the first two steps' tiles on their way (a group each, empty past the end) */
        #pragma unroll
        for (int s = 0; s < 2; ++s) {
            if (s < steps) {
                exprc_pipelined_copy<A_ALONG_K>(a_tiles[s], a_b, a_sm, a_sk, row0, m, 32 * s, k);
                exprc_pipelined_copy<B_ALONG_K>(b_tiles[s], b_b, b_sn, b_sk, col0, n, 32 * s, k);
            }
            exprc_copies_commit();
        }
        #pragma unroll 1
        for (int64_t step = 0; step < steps; ++step) {
            exprc_copies_wait_but_newest();  /* this thread's copies of this step's tiles are done */
            __syncthreads();  /* everyone's are; and everyone is done with the previous step's */
            const int stage = (int)(step % 3), refill = (int)((step + 2) % 3);
            if (step + 2 < steps) {  /* into the stage the previous step read */
                exprc_pipelined_copy<A_ALONG_K>(a_tiles[refill], a_b, a_sm, a_sk, row0, m, 32 * (step + 2), k);
                exprc_pipelined_copy<B_ALONG_K>(b_tiles[refill], b_b, b_sn, b_sk, col0, n, 32 * (step + 2), k);
            }
            exprc_copies_commit();
            #pragma unroll
            for (int ks = 0; ks < 32; ks += 16) {
                unsigned int a_frag[4][4], b_frag[4][2];
                #pragma unroll
                for (int mi = 0; mi < 4; ++mi)
                    exprc_pipelined_fragment<A_ALONG_K>(a_frag[mi], a_tiles[stage], warp_row + 16 * mi, ks, true);
                #pragma unroll
                for (int pair = 0; pair < 2; ++pair) {
                    unsigned int r[4];
                    exprc_pipelined_fragment<B_ALONG_K>(r, b_tiles[stage], warp_col + 16 * pair, ks, false);
                    b_frag[2 * pair][0] = r[0];
                    b_frag[2 * pair][1] = r[1];
                    b_frag[2 * pair + 1][0] = r[2];
                    b_frag[2 * pair + 1][1] = r[3];
                }
                #pragma unroll
                for (int mi = 0; mi < 4; ++mi)
                    #pragma unroll
                    for (int ni = 0; ni < 4; ++ni) {
                        if (BF16) exprc_mma_bf16(acc[mi][ni], a_frag[mi], b_frag[ni]);
                        else exprc_mma_f16(acc[mi][ni], a_frag[mi], b_frag[ni]);
                    }
            }
        }
        exprc_copies_wait_all();
        __syncthreads();  /* the stages are free for the next tile */
        /* accumulators 2h and 2h + 1 of tile (mi, ni) are C's elements (g + 8 h, 2 t) and
           (g + 8 h, 2 t + 1) of the tile */
        #pragma unroll
        for (int mi = 0; mi < 4; ++mi)
            #pragma unroll
            for (int ni = 0; ni < 4; ++ni)
                #pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int64_t row = row0 + warp_row + 16 * mi + g + 8 * h;
                    const int64_t col = col0 + warp_col + 8 * ni + 2 * t;
                    if (row >= m) continue;
                    const unsigned short lo = BF16 ? exprc_f32_to_bf16(acc[mi][ni][2 * h]) : exprc_f32_to_f16(acc[mi][ni][2 * h]);
                    const unsigned short hi = BF16 ? exprc_f32_to_bf16(acc[mi][ni][2 * h + 1]) : exprc_f32_to_f16(acc[mi][ni][2 * h + 1]);
                    unsigned short *out = c_b + row * c_sm + col * c_sn;
                    if (c_pairs && col + 1 < n) {
                        *(unsigned int *)out = lo | (unsigned int)hi << 16;
                    } else {
                        if (col < n) out[0] = lo;
                        if (col + 1 < n) out[c_sn] = hi;
                    }
                }
    }
}

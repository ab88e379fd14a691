/* @name@: @dtype@ C = A @ B on the tensor cores (@instruction@), float32 accumulation,
   @rounding@.
   A block of 4 warps computes a 64 x 64 tile of C: warp w the 32 x 32 quarter at rows
   32 (w / 2), columns 32 (w % 2), as 2 x 4 tiles of 16 x 8, one mma each per @mma_k@ of K.
   K is walked 32 at a time: the block copies a 64 x 32 tile of A ([row][k]) and of B
   ([column][k], the "col" layout mma reads) into shared memory, zeros past the edges.
   Fragments, per the PTX ISA (g = lane / 4, t = lane % 4):@fragments@ */
@signature@
{
    /* rows padded by @pad@ elements: a warp's fragment loads then hit 32 distinct banks */
    __shared__ __align__(16) @s@ a_tile[64][32 + @pad@];
    __shared__ __align__(16) @s@ b_tile[64][32 + @pad@];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int warp_row = 32 * (warp / 2), warp_col = 32 * (warp % 2);
    const bool a_down_rows = a_sm == 1 && a_sk != 1;
    const bool b_down_k = b_sk == 1 && b_sn != 1;
    #pragma unroll 1
    for (int64_t job = blockIdx.x; job < batch * exprc_tiles(m, n, 64); job += gridDim.x) {
        int64_t bi, row0, col0;
        exprc_tile_of(job, m, n, 64, &bi, &row0, &col0);
        const @s@ *a_b = a + bi * a_sb, *b_b = b + bi * b_sb;
        @out@ *c_b = c + bi * c_sb;
        float acc[2][4][4];
        #pragma unroll
        for (int mi = 0; mi < 2; ++mi)
            #pragma unroll
            for (int ni = 0; ni < 4; ++ni)
                #pragma unroll
                for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.0f;
        #pragma unroll 1
        for (int64_t k0 = 0; k0 < k; k0 += 32) {
            for (int e = threadIdx.x; e < 64 * 32; e += 128) {
                const int r = a_down_rows ? e % 64 : e / 32, kk = a_down_rows ? e / 64 : e % 32;
                const int64_t row = row0 + r, kx = k0 + kk;
                a_tile[r][kk] = (row < m && kx < k) ? a_b[row * a_sm + kx * a_sk] : (@s@)0;
            }
            for (int e = threadIdx.x; e < 64 * 32; e += 128) {
                const int cn = b_down_k ? e / 32 : e % 64, kk = b_down_k ? e % 32 : e / 64;
                const int64_t col = col0 + cn, kx = k0 + kk;
                b_tile[cn][kk] = (col < n && kx < k) ? b_b[kx * b_sk + col * b_sn] : (@s@)0;
            }
            __syncthreads();
            #pragma unroll
            for (int ks = 0; ks < 32; ks += @mma_k@) {
                unsigned int a_frag[2][4], b_frag[4][2];
                #pragma unroll
                for (int mi = 0; mi < 2; ++mi) {
                    const int r = warp_row + 16 * mi;
@a_fragment@
                }
                #pragma unroll
                for (int ni = 0; ni < 4; ++ni) {
                    const int cn = warp_col + 8 * ni;
@b_fragment@
                }
                #pragma unroll
                for (int mi = 0; mi < 2; ++mi)
                    #pragma unroll
                    for (int ni = 0; ni < 4; ++ni) @mma@(acc[mi][ni], a_frag[mi], b_frag[ni]);
            }
            __syncthreads();  /* before the next tiles overwrite these */
        }
        /* accumulator q of tile (mi, ni) is C's element (g + 8 (q / 2), 2 t + q % 2) of the tile */
        #pragma unroll
        for (int mi = 0; mi < 2; ++mi)
            #pragma unroll
            for (int ni = 0; ni < 4; ++ni)
                #pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const int64_t row = row0 + warp_row + 16 * mi + g + 8 * (q / 2);
                    const int64_t col = col0 + warp_col + 8 * ni + 2 * t + q % 2;
                    if (row < m && col < n) c_b[row * c_sm + col * c_sn] = @store@;
                }
    }
}

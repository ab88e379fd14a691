/* exprc's random draws on the GPU: Philox4x32-10 (Salmon et al., SC'11) and the draws of
 * codegen/c/philox.c, with the same counter layout and the same arithmetic, so uniform,
 * bernoulli, integer and binomial draws are the C's and NumPy's bits (normals: CUDA's
 * log, sin and cos, within a few ulp). Each thread computes whole Philox blocks. */

#define EXPRC_PHILOX_M0 0xD2511F53u
#define EXPRC_PHILOX_M1 0xCD9E8D57u
#define EXPRC_PHILOX_W0 0x9E3779B9u
#define EXPRC_PHILOX_W1 0xBB67AE85u
#define EXPRC_BINOMIAL_CHUNK 512

struct exprc_words {
    unsigned int w[4];
};

static __device__ __forceinline__ exprc_words exprc_philox(unsigned int c0, unsigned int c1, unsigned int c2,
                                                           unsigned int c3, unsigned int k0, unsigned int k1)
{
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += EXPRC_PHILOX_W0;
            k1 += EXPRC_PHILOX_W1;
        }
        unsigned long long p0 = (unsigned long long)EXPRC_PHILOX_M0 * c0;
        unsigned long long p1 = (unsigned long long)EXPRC_PHILOX_M1 * c2;
        unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0, n2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
        c1 = (unsigned int)p1;
        c3 = (unsigned int)p0;
        c0 = n0;
        c2 = n2;
    }
    exprc_words out;
    out.w[0] = c0;
    out.w[1] = c1;
    out.w[2] = c2;
    out.w[3] = c3;
    return out;
}

/* Block b of sub-stream sub of a draw: counter (b bits 0-31, b bits 32-47 | sub << 16, draw, calls). */
static __device__ __forceinline__ exprc_words exprc_block(const unsigned long long *state, long long draw,
                                                          unsigned long long b, unsigned int sub)
{
    unsigned long long seed = state[0];
    return exprc_philox((unsigned int)b, (unsigned int)((b >> 32) & 0xFFFFu) | (sub << 16), (unsigned int)draw,
                        (unsigned int)state[1], (unsigned int)seed, (unsigned int)(seed >> 32));
}

static __device__ __forceinline__ float exprc_unit32(unsigned int w)
{
    return (float)(w >> 8) * 5.9604644775390625e-08f;
}

static __device__ __forceinline__ double exprc_unit64(unsigned int a, unsigned int b)
{
    return ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) * 1.1102230246251565e-16;
}

static __device__ __forceinline__ double exprc_box_muller(double u1, double u2, int odd)
{
    double r = sqrt(-2.0 * log(1.0 - u1)), t = 2.0 * 3.141592653589793 * u2;
    return odd ? r * sin(t) : r * cos(t);
}

/* The first thread's block, and the stride between a thread's blocks. */
#define EXPRC_BLOCKS(count)                                                                         \
    for (long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x; b < (count);               \
         b += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void exprc_random_uniform_f32(const unsigned long long *state, long long draw, long long n,
                                                    const float *low, long long low_step, const float *high,
                                                    long long high_step, float *out)
{
    EXPRC_BLOCKS((n + 3) / 4)
    {
        exprc_words w = exprc_block(state, draw, (unsigned long long)b, 0);
        for (int k = 0; k < 4 && 4 * b + k < n; k++) {
            long long i = 4 * b + k;
            float a = low[i * low_step], c = high[i * high_step];
            out[i] = __fadd_rn(a, __fmul_rn(__fsub_rn(c, a), exprc_unit32(w.w[k])));
        }
    }
}

extern "C" __global__ void exprc_random_uniform_f64(const unsigned long long *state, long long draw, long long n,
                                                    const double *low, long long low_step, const double *high,
                                                    long long high_step, double *out)
{
    EXPRC_BLOCKS((n + 1) / 2)
    {
        exprc_words w = exprc_block(state, draw, (unsigned long long)b, 0);
        for (int k = 0; k < 2 && 2 * b + k < n; k++) {
            long long i = 2 * b + k;
            double a = low[i * low_step], c = high[i * high_step];
            out[i] = __dadd_rn(a, __dmul_rn(__dsub_rn(c, a), exprc_unit64(w.w[2 * k], w.w[2 * k + 1])));
        }
    }
}

extern "C" __global__ void exprc_random_normal_f32(const unsigned long long *state, long long draw, long long n,
                                                   const float *loc, long long loc_step, const float *scale,
                                                   long long scale_step, float *out)
{
    EXPRC_BLOCKS((n + 3) / 4)
    {
        exprc_words w = exprc_block(state, draw, (unsigned long long)b, 0);
        for (int k = 0; k < 4 && 4 * b + k < n; k++) {
            long long i = 4 * b + k;
            int pair = k >> 1;
            float z = (float)exprc_box_muller((double)exprc_unit32(w.w[2 * pair]), (double)exprc_unit32(w.w[2 * pair + 1]),
                                              k & 1);
            out[i] = __fadd_rn(loc[i * loc_step], __fmul_rn(scale[i * scale_step], z));
        }
    }
}

extern "C" __global__ void exprc_random_normal_f64(const unsigned long long *state, long long draw, long long n,
                                                   const double *loc, long long loc_step, const double *scale,
                                                   long long scale_step, double *out)
{
    EXPRC_BLOCKS((n + 1) / 2)
    {
        exprc_words w = exprc_block(state, draw, (unsigned long long)b, 0);
        for (int k = 0; k < 2 && 2 * b + k < n; k++) {
            long long i = 2 * b + k;
            double z = exprc_box_muller(exprc_unit64(w.w[0], w.w[1]), exprc_unit64(w.w[2], w.w[3]), k);
            out[i] = __dadd_rn(loc[i * loc_step], __dmul_rn(scale[i * scale_step], z));
        }
    }
}

extern "C" __global__ void exprc_random_bernoulli(const unsigned long long *state, long long draw, long long n,
                                                  const double *p, long long p_step, unsigned char *out)
{
    EXPRC_BLOCKS((n + 3) / 4)
    {
        exprc_words w = exprc_block(state, draw, (unsigned long long)b, 0);
        for (int k = 0; k < 4 && 4 * b + k < n; k++) {
            long long i = 4 * b + k;
            out[i] = (unsigned long long)w.w[k] < (unsigned long long)ceil(p[i * p_step] * 4294967296.0);
        }
    }
}

/* The high 64 bits of x * y, from 32-bit halves (as the NumPy reference computes them). */
static __device__ __forceinline__ unsigned long long exprc_mulhi64(unsigned long long x, unsigned long long y)
{
    unsigned long long xh = x >> 32, xl = x & 0xFFFFFFFFull, yh = y >> 32, yl = y & 0xFFFFFFFFull;
    unsigned long long lh = xl * yh, hl = xh * yl;
    unsigned long long mid = ((xl * yl) >> 32) + (lh & 0xFFFFFFFFull) + (hl & 0xFFFFFFFFull);
    return xh * yh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}

extern "C" __global__ void exprc_random_integers(const unsigned long long *state, long long draw, long long n,
                                                 const long long *low, long long low_step, const long long *high,
                                                 long long high_step, long long *out)
{
    EXPRC_BLOCKS((n + 1) / 2)
    {
        exprc_words w = exprc_block(state, draw, (unsigned long long)b, 0);
        for (int k = 0; k < 2 && 2 * b + k < n; k++) {
            long long i = 2 * b + k;
            unsigned long long x = ((unsigned long long)w.w[2 * k] << 32) | w.w[2 * k + 1];
            unsigned long long a = (unsigned long long)low[i * low_step];
            unsigned long long span = (unsigned long long)high[i * high_step] - a;
            out[i] = (long long)(a + exprc_mulhi64(x, span));
        }
    }
}

static __device__ __forceinline__ double exprc_power(double q, long long m)
{
    double result = 1.0;
    while (m) {
        if (m & 1)
            result = __dmul_rn(result, q);
        q = __dmul_rn(q, q);
        m >>= 1;
    }
    return result;
}

extern "C" __global__ void exprc_random_binomial(const unsigned long long *state, long long draw, long long n,
                                                 const long long *trials, long long trials_step, const double *p,
                                                 long long p_step, long long *out)
{
    EXPRC_BLOCKS(n)
    {
        long long count = trials[b * trials_step], total = 0;
        double pv = p[b * p_step];
        int flip = pv > 0.5;
        double pp = flip ? 1.0 - pv : pv, q = 1.0 - pp, ratio = pp / q;
        for (long long c = 0; c * EXPRC_BINOMIAL_CHUNK < count; c++) {
            long long m = count - c * EXPRC_BINOMIAL_CHUNK;
            if (m > EXPRC_BINOMIAL_CHUNK)
                m = EXPRC_BINOMIAL_CHUNK;
            exprc_words w = exprc_block(state, draw, (unsigned long long)b, (unsigned int)c);
            double u = exprc_unit64(w.w[0], w.w[1]), prob = exprc_power(q, m), cdf = prob;
            long long x = 0;
            while (u > cdf && x < m) {
                prob = __dmul_rn(__dmul_rn(prob, (double)(m - x) / (double)(x + 1)), ratio);
                x++;
                cdf = __dadd_rn(cdf, prob);
            }
            total += x;
        }
        out[b] = flip ? count - total : total;
    }
}

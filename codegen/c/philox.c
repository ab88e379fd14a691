/* Philox4x32-10 and the draws of philox.h. Built with -ffp-contract=off: the arithmetic
 * must be NumPy's, operation by operation, for the draws to be bit-identical. */
#include "philox.h"

#include <math.h>

#define EXPRC_PHILOX_M0 0xD2511F53u
#define EXPRC_PHILOX_M1 0xCD9E8D57u
#define EXPRC_PHILOX_W0 0x9E3779B9u
#define EXPRC_PHILOX_W1 0xBB67AE85u
#define EXPRC_BINOMIAL_CHUNK 512

static inline void philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                          uint32_t *out)
{
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += EXPRC_PHILOX_W0;
            k1 += EXPRC_PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)EXPRC_PHILOX_M0 * c0, p1 = (uint64_t)EXPRC_PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void exprc_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
{
    philox(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], out);
}

/* Block b of sub-stream sub of a draw: counter (b bits 0-31, b bits 32-47 | sub << 16, draw, calls). */
static inline void block(const uint64_t *state, uint32_t draw, uint64_t b, uint32_t sub, uint32_t *out)
{
    philox((uint32_t)b, (uint32_t)((b >> 32) & 0xFFFFu) | (sub << 16), draw, (uint32_t)state[1], (uint32_t)state[0],
           (uint32_t)(state[0] >> 32), out);
}

static inline float unit32(uint32_t w) { return (float)(w >> 8) * 0x1p-24f; }

static inline double unit64(uint32_t a, uint32_t b)
{
    return ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) * 0x1p-53;
}

void exprc_random_uniform_f32(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const float *low,
                              int64_t low_step, const float *high, int64_t high_step, float *out)
{
    uint32_t w[4];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 3) == 0)
            block(state, draw, (uint64_t)i >> 2, 0, w);
        float a = low[i * low_step], b = high[i * high_step];
        out[i] = a + (b - a) * unit32(w[i & 3]);
    }
}

void exprc_random_uniform_f64(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *low,
                              int64_t low_step, const double *high, int64_t high_step, double *out)
{
    uint32_t w[4];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 1) == 0)
            block(state, draw, (uint64_t)i >> 1, 0, w);
        double a = low[i * low_step], b = high[i * high_step];
        out[i] = a + (b - a) * unit64(w[2 * (i & 1)], w[2 * (i & 1) + 1]);
    }
}

/* Box-Muller in double: r cos t for even elements of a pair, r sin t for odd ones. */
static inline double box_muller(double u1, double u2, int odd)
{
    double r = sqrt(-2.0 * log(1.0 - u1)), t = 2.0 * 3.141592653589793 * u2;
    return odd ? r * sin(t) : r * cos(t);
}

void exprc_random_normal_f32(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const float *loc,
                             int64_t loc_step, const float *scale, int64_t scale_step, float *out)
{
    uint32_t w[4];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 3) == 0)
            block(state, draw, (uint64_t)i >> 2, 0, w);
        int pair = (int)(i & 3) >> 1;
        float z = (float)box_muller((double)unit32(w[2 * pair]), (double)unit32(w[2 * pair + 1]), (int)(i & 1));
        out[i] = loc[i * loc_step] + scale[i * scale_step] * z;
    }
}

void exprc_random_normal_f64(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *loc,
                             int64_t loc_step, const double *scale, int64_t scale_step, double *out)
{
    uint32_t w[4];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 1) == 0)
            block(state, draw, (uint64_t)i >> 1, 0, w);
        double z = box_muller(unit64(w[0], w[1]), unit64(w[2], w[3]), (int)(i & 1));
        out[i] = loc[i * loc_step] + scale[i * scale_step] * z;
    }
}

void exprc_random_bernoulli(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *p,
                            int64_t p_step, uint8_t *out)
{
    uint32_t w[4];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 1) == 0)
            block(state, draw, (uint64_t)i >> 1, 0, w);
        out[i] = unit64(w[2 * (i & 1)], w[2 * (i & 1) + 1]) < p[i * p_step];
    }
}

void exprc_random_integers(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const int64_t *low,
                           int64_t low_step, const int64_t *high, int64_t high_step, int64_t *out)
{
    uint32_t w[4];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 1) == 0)
            block(state, draw, (uint64_t)i >> 1, 0, w);
        uint64_t x = ((uint64_t)w[2 * (i & 1)] << 32) | w[2 * (i & 1) + 1];
        uint64_t a = (uint64_t)low[i * low_step], span = (uint64_t)high[i * high_step] - a;
        out[i] = (int64_t)(a + (uint64_t)(((unsigned __int128)x * span) >> 64));
    }
}

/* q ** m by repeated squaring: the products the NumPy reference makes. */
static inline double power(double q, int64_t m)
{
    double result = 1.0;
    while (m) {
        if (m & 1)
            result = result * q;
        q = q * q;
        m >>= 1;
    }
    return result;
}

void exprc_random_binomial(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const int64_t *n,
                           int64_t n_step, const double *p, int64_t p_step, int64_t *out)
{
    uint32_t w[4];
    for (int64_t i = start; i < end; i++) {
        int64_t trials = n[i * n_step], total = 0;
        double pv = p[i * p_step];
        int flip = pv > 0.5;
        double pp = flip ? 1.0 - pv : pv, q = 1.0 - pp, ratio = pp / q;
        for (int64_t c = 0; c * EXPRC_BINOMIAL_CHUNK < trials; c++) {
            int64_t m = trials - c * EXPRC_BINOMIAL_CHUNK;
            if (m > EXPRC_BINOMIAL_CHUNK)
                m = EXPRC_BINOMIAL_CHUNK;
            block(state, draw, (uint64_t)i, (uint32_t)c, w);
            double u = unit64(w[0], w[1]), prob = power(q, m), cdf = prob;
            int64_t x = 0;
            while (u > cdf && x < m) {
                prob = prob * ((double)(m - x) / (double)(x + 1)) * ratio;
                x++;
                cdf = cdf + prob;
            }
            total += x;
        }
        out[i] = flip ? trials - total : total;
    }
}

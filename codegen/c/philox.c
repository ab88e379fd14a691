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

/* Philox blocks b0 .. b0 + count - 1 (count <= EXPRC_CHUNK), one lane per block, into w
 * word by word: w[q * EXPRC_CHUNK + j] is word q of block b0 + j. */
#define EXPRC_CHUNK 256

static void philox_chunk(const uint64_t *state, uint32_t draw, uint64_t b0, int count, uint32_t *restrict w)
{
    const uint32_t k0 = (uint32_t)state[0], k1 = (uint32_t)(state[0] >> 32), calls = (uint32_t)state[1];
#pragma omp simd
    for (int j = 0; j < count; j++) {
        uint64_t b = b0 + (uint64_t)j;
        uint32_t c0 = (uint32_t)b, c1 = (uint32_t)((b >> 32) & 0xFFFFu), c2 = draw, c3 = calls, a0 = k0, a1 = k1;
        for (int r = 0; r < 10; r++) {
            uint64_t p0 = (uint64_t)EXPRC_PHILOX_M0 * c0, p1 = (uint64_t)EXPRC_PHILOX_M1 * c2;
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ a0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ a1;
            c1 = (uint32_t)p1;
            c3 = (uint32_t)p0;
            c0 = n0;
            c2 = n2;
            a0 += EXPRC_PHILOX_W0;
            a1 += EXPRC_PHILOX_W1;
        }
        w[j] = c0;
        w[EXPRC_CHUNK + j] = c1;
        w[2 * EXPRC_CHUNK + j] = c2;
        w[3 * EXPRC_CHUNK + j] = c3;
    }
}

/* Elements start .. end - 1 of a draw taking PER elements from each block: whole blocks a
 * chunk at a time, the elements before the first whole block and after the last one a block
 * each. ELEMENT(i, words, stride, k) makes element i, the k-th of its block, from word q at
 * words[q * stride]. */
#define EXPRC_DRAW(PER, ELEMENT)                                                                          \
    do {                                                                                                  \
        uint32_t one_[4], chunk_[4 * EXPRC_CHUNK];                                                        \
        int64_t head_ = (start + (PER) - 1) / (PER) * (PER);                                              \
        if (head_ > end)                                                                                  \
            head_ = end;                                                                                  \
        int64_t body_ = head_ + (end - head_) / (PER) * (PER);                                            \
        for (int64_t i_ = start; i_ < head_; i_++) {                                                      \
            block(state, draw, (uint64_t)(i_ / (PER)), 0, one_);                                          \
            ELEMENT(i_, one_, 1, (int)(i_ % (PER)));                                                      \
        }                                                                                                 \
        for (int64_t i0_ = head_; i0_ < body_;) {                                                         \
            int64_t left_ = (body_ - i0_) / (PER);                                                        \
            int count_ = left_ < EXPRC_CHUNK ? (int)left_ : EXPRC_CHUNK;                                  \
            philox_chunk(state, draw, (uint64_t)(i0_ / (PER)), count_, chunk_);                           \
            for (int j_ = 0; j_ < count_; j_++)                                                           \
                for (int k_ = 0; k_ < (PER); k_++)                                                        \
                    ELEMENT(i0_ + (int64_t)j_ * (PER) + k_, (chunk_ + j_), EXPRC_CHUNK, k_);              \
            i0_ += (int64_t)count_ * (PER);                                                               \
        }                                                                                                 \
        for (int64_t i_ = body_; i_ < end; i_++) {                                                        \
            block(state, draw, (uint64_t)(i_ / (PER)), 0, one_);                                          \
            ELEMENT(i_, one_, 1, (int)(i_ % (PER)));                                                      \
        }                                                                                                 \
    } while (0)

#define EXPRC_UNIFORM32(i, w, s, k) out[i] = a + (c - a) * unit32((w)[(k) * (s)])
#define EXPRC_UNIFORM32_AT(i, w, s, k)                                                                    \
    out[i] = low[(i) * low_step] + (high[(i) * high_step] - low[(i) * low_step]) * unit32((w)[(k) * (s)])

void exprc_random_uniform_f32(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const float *low,
                              int64_t low_step, const float *high, int64_t high_step, float *out)
{
    if (!low_step && !high_step) {
        const float a = low[0], c = high[0];
        EXPRC_DRAW(4, EXPRC_UNIFORM32);
    } else {
        EXPRC_DRAW(4, EXPRC_UNIFORM32_AT);
    }
}

#define EXPRC_UNIT64(w, s, k) unit64((w)[2 * (k) * (s)], (w)[(2 * (k) + 1) * (s)])
#define EXPRC_UNIFORM64(i, w, s, k) out[i] = a + (c - a) * EXPRC_UNIT64(w, s, k)
#define EXPRC_UNIFORM64_AT(i, w, s, k)                                                                    \
    out[i] = low[(i) * low_step] + (high[(i) * high_step] - low[(i) * low_step]) * EXPRC_UNIT64(w, s, k)

void exprc_random_uniform_f64(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *low,
                              int64_t low_step, const double *high, int64_t high_step, double *out)
{
    if (!low_step && !high_step) {
        const double a = low[0], c = high[0];
        EXPRC_DRAW(2, EXPRC_UNIFORM64);
    } else {
        EXPRC_DRAW(2, EXPRC_UNIFORM64_AT);
    }
}

/* Box-Muller in double, a pair at a time: r cos t for the even element, r sin t for the odd one
 * (log and sqrt once a pair). */
static inline void box_muller(double u1, double u2, double *pair)
{
    double r = sqrt(-2.0 * log(1.0 - u1)), t = 2.0 * 3.141592653589793 * u2;
    pair[0] = r * cos(t);
    pair[1] = r * sin(t);
}

void exprc_random_normal_f32(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const float *loc,
                             int64_t loc_step, const float *scale, int64_t scale_step, float *out)
{
    uint32_t w[4];
    double z[2];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 3) == 0)
            block(state, draw, (uint64_t)i >> 2, 0, w);
        if (i == start || (i & 1) == 0) {
            int pair = (int)(i & 3) >> 1;
            box_muller((double)unit32(w[2 * pair]), (double)unit32(w[2 * pair + 1]), z);
        }
        out[i] = loc[i * loc_step] + scale[i * scale_step] * (float)z[i & 1];
    }
}

void exprc_random_normal_f64(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *loc,
                             int64_t loc_step, const double *scale, int64_t scale_step, double *out)
{
    uint32_t w[4];
    double z[2];
    for (int64_t i = start; i < end; i++) {
        if (i == start || (i & 1) == 0) {
            block(state, draw, (uint64_t)i >> 1, 0, w);
            box_muller(unit64(w[0], w[1]), unit64(w[2], w[3]), z);
        }
        out[i] = loc[i * loc_step] + scale[i * scale_step] * z[i & 1];
    }
}

/* True when a word is below ceil(p * 2**32), four elements a block (the threshold is exact). */
#define EXPRC_BERNOULLI(i, w, s, k) out[i] = (uint64_t)(w)[(k) * (s)] < threshold
#define EXPRC_BERNOULLI_AT(i, w, s, k) out[i] = (uint64_t)(w)[(k) * (s)] < (uint64_t)ceil(p[(i) * p_step] * 0x1p32)

void exprc_random_bernoulli(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *p,
                            int64_t p_step, uint8_t *out)
{
    if (!p_step) {
        const uint64_t threshold = (uint64_t)ceil(p[0] * 0x1p32);
        EXPRC_DRAW(4, EXPRC_BERNOULLI);
    } else {
        EXPRC_DRAW(4, EXPRC_BERNOULLI_AT);
    }
}

#define EXPRC_INTEGER(i, w, s, k)                                                                         \
    do {                                                                                                  \
        uint64_t x_ = ((uint64_t)(w)[2 * (k) * (s)] << 32) | (w)[(2 * (k) + 1) * (s)];                    \
        uint64_t a_ = (uint64_t)low[(i) * low_step], span_ = (uint64_t)high[(i) * high_step] - a_;        \
        out[i] = (int64_t)(a_ + (uint64_t)(((unsigned __int128)x_ * span_) >> 64));                       \
    } while (0)

void exprc_random_integers(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const int64_t *low,
                           int64_t low_step, const int64_t *high, int64_t high_step, int64_t *out)
{
    EXPRC_DRAW(2, EXPRC_INTEGER);
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

/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11) and exprc's random draws on it. Element i of a draw depends only on (seed, draw id,
 * call count, i), so any range of elements can be computed by any thread; the NumPy
 * reference is exprc/ops/random.py, and docs/random.md gives the counter layout. */
#ifndef EXPRC_PHILOX_H
#define EXPRC_PHILOX_H

#include <stdint.h>

void exprc_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out);

/* Each fills out[start .. end) of a draw; state is the stream's [seed, calls]; a parameter
 * is read at index i * its step (step 0: one value for every element). */
void exprc_random_uniform_f32(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const float *low,
                              int64_t low_step, const float *high, int64_t high_step, float *out);
void exprc_random_uniform_f64(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *low,
                              int64_t low_step, const double *high, int64_t high_step, double *out);
void exprc_random_normal_f32(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const float *loc,
                             int64_t loc_step, const float *scale, int64_t scale_step, float *out);
void exprc_random_normal_f64(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *loc,
                             int64_t loc_step, const double *scale, int64_t scale_step, double *out);
void exprc_random_bernoulli(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const double *p,
                            int64_t p_step, uint8_t *out);
void exprc_random_integers(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const int64_t *low,
                           int64_t low_step, const int64_t *high, int64_t high_step, int64_t *out);
void exprc_random_binomial(const uint64_t *state, uint32_t draw, int64_t start, int64_t end, const int64_t *n,
                           int64_t n_step, const double *p, int64_t p_step, int64_t *out);

#endif

#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>

/* Loops over at least this many elements run on all cores. */
#define EXPRC_PARALLEL_MIN @PARALLEL_MIN@
/* A reduction over outer axes computes this many consecutive results at a time ... */
#define EXPRC_COLUMNS 256
/* ... and so do reductions over rows shorter than this (too short for a SIMD loop of their
   own), and loops over them that call vector math. */
#define EXPRC_SHORT_ROW 32
#ifdef _OPENMP
#include <omp.h>
#endif

/* Functions run once per call, not per element: compiled once, neither inlined nor
   cloned per caller (which would only cost compile time). */
#if defined(__GNUC__) && !defined(__clang__)
#define EXPRC_ONCE __attribute__((noinline, noclone))
#elif defined(__GNUC__)
#define EXPRC_ONCE __attribute__((noinline))
#else
#define EXPRC_ONCE
#endif

/* The number of threads of the current team (1 outside a parallel region). */
static inline int64_t exprc_threads(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* This thread's share [first, last) of [0, count), as schedule(static) gives it. */
static inline void exprc_thread_range(int64_t count, int64_t *first, int64_t *last)
{
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num();
#else
    const int64_t t = 0;
#endif
    const int64_t nt = exprc_threads();
    const int64_t q = count / nt, r = count % nt;
    *first = q * t + (t < r ? t : r);
    *last = *first + q + (t < r ? 1 : 0);
}

/* Each kernel's loops are written once, in a function running rows first..last of its
   index space; this runs rows 0..count on all cores when the index space has at least
   EXPRC_PARALLEL_MIN elements, else on this thread (an OpenMP region costs about half a
   microsecond even when it stays on one thread). The rows go out in pieces of at least
   EXPRC_PIECE_MIN elements, long runs first (guided): a thread that wakes late (tens of
   microseconds where the cores are virtual, as after a BLAS call) takes a smaller share
   instead of holding the others up. Which thread runs a row never changes its result. */
#define EXPRC_PIECE_MIN 8192
typedef void (*exprc_part)(const int64_t *args, int64_t first, int64_t last);

static EXPRC_ONCE void exprc_run_parts(exprc_part part, const int64_t *args, int64_t count, int64_t size)
{
    if (count <= 0)
        return;
#ifdef _OPENMP
    if (size >= EXPRC_PARALLEL_MIN && count > 1) {
        const int64_t row = size / count > 0 ? size / count : 1;  /* elements per row */
        const int64_t rows = (EXPRC_PIECE_MIN + row - 1) / row;  /* rows per piece */
        const int64_t pieces = (count + rows - 1) / rows;
        #pragma omp parallel for schedule(guided)
        for (int64_t piece = 0; piece < pieces; ++piece) {
            const int64_t first = piece * rows;
            part(args, first, first + rows < count ? first + rows : count);
        }
        return;
    }
#endif
    part(args, 0, count);
}

/* glibc's vector math library (libmvec): declaring the SIMD variants lets
   "#pragma omp simd" loops call them without -ffast-math. */
#if defined(__GLIBC__) && defined(__x86_64__) && defined(_OPENMP)
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
double sin(double);
#pragma omp declare simd notinbranch
float sinf(float);
#pragma omp declare simd notinbranch
double cos(double);
#pragma omp declare simd notinbranch
float cosf(float);
#pragma omp declare simd notinbranch
double pow(double, double);
#pragma omp declare simd notinbranch
float powf(float, float);
#if __GLIBC_PREREQ(2, 35)
@MORE_SIMD@
#endif
#endif

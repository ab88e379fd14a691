#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>

/* Loops over at least this many elements run on all threads of the pool. */
#define EXPRC_PARALLEL_MIN @PARALLEL_MIN@
/* A reduction over outer axes computes this many consecutive results at a time ... */
#define EXPRC_COLUMNS 256
/* ... and so do reductions over rows shorter than this (too short for a SIMD loop of their
   own), and loops over them that call vector math. */
#define EXPRC_SHORT_ROW 32

@POOL_H@

/* Functions run once per call, not per element: compiled once, neither inlined nor
   cloned per caller (which would only cost compile time). */
#if defined(__GNUC__) && !defined(__clang__)
#define EXPRC_ONCE __attribute__((noinline, noclone))
#elif defined(__GNUC__)
#define EXPRC_ONCE __attribute__((noinline))
#else
#define EXPRC_ONCE
#endif

/* The run time this program is bound to (exprc_bind_runtime, which Python calls right after
   loading it). Weak: the translation units of one program share one definition. */
__attribute__((weak, visibility("hidden"))) const exprc_runtime *exprc_rt = NULL;

__attribute__((weak)) int exprc_bind_runtime(const void *table)
{
    const exprc_runtime *runtime = table;
    if (runtime == NULL || runtime->abi != EXPRC_RUNTIME_ABI || runtime->size != sizeof(exprc_runtime))
        return 1;
    exprc_rt = runtime;
    return 0;
}

/* Runs task(context, piece) for every piece: on the pool's threads where the index space
   has at least EXPRC_PARALLEL_MIN elements (a job costs microseconds even when the workers
   are awake), else in order on this thread. The pieces are the kernel's, never the
   threads', and a piece's result is the same whichever thread runs it. */
static inline void exprc_parallel(exprc_task task, void *context, int64_t pieces, int64_t size)
{
    if (pieces > 1 && size >= EXPRC_PARALLEL_MIN) {
#ifdef EXPRC_OPENMP
        /* the comparison build (EXPRC_PARALLEL=openmp): the same pieces on OpenMP's threads */
        #pragma omp parallel for schedule(dynamic)
        for (int64_t p = 0; p < pieces; ++p)
            task(context, p);
        return;
#else
        if (exprc_rt != NULL) {
            exprc_rt->parallel(task, context, pieces);
            return;
        }
#endif
    }
    for (int64_t p = 0; p < pieces; ++p)
        task(context, p);
}

/* Each kernel's loops are written once, in a function running rows first..last of its
   index space; this runs rows 0..count in pieces of at least EXPRC_PIECE_MIN elements
   (exprc_parallel), or all at once on this thread below EXPRC_PARALLEL_MIN. */
#define EXPRC_PIECE_MIN 8192
typedef void (*exprc_part)(const int64_t *args, int64_t first, int64_t last);

typedef struct {
    exprc_part part;
    const int64_t *args;
    int64_t count, rows;             /* rows in all, rows per piece */
} exprc_parts;

static void exprc_parts_task(void *context, int64_t piece)
{
    const exprc_parts *job = context;
    const int64_t first = piece * job->rows;
    job->part(job->args, first, first + job->rows < job->count ? first + job->rows : job->count);
}

static EXPRC_ONCE void exprc_run_parts(exprc_part part, const int64_t *args, int64_t count, int64_t size)
{
    if (count <= 0)
        return;
    if (size < EXPRC_PARALLEL_MIN || count == 1) {
        part(args, 0, count);
        return;
    }
    const int64_t row = size / count > 0 ? size / count : 1;  /* elements per row */
    const int64_t rows = (EXPRC_PIECE_MIN + row - 1) / row;  /* rows per piece */
    exprc_parts job = {part, args, count, rows};
    exprc_parallel(exprc_parts_task, &job, (count + rows - 1) / rows, size);
}

/* A reduction over every axis is cut into blocks of about EXPRC_REDUCE_BLOCK elements (at
   most about EXPRC_MAX_BLOCKS of them: bigger blocks past that), ranges of one row or runs
   of whole rows. The blocks depend on the shape only and their results are combined in
   block order, so the result is the same on any number of threads. */
#define EXPRC_REDUCE_BLOCK 16384
#define EXPRC_MAX_BLOCKS 512
typedef struct {
    int64_t row_block, col_block;    /* rows and columns of a block */
    int64_t col_pieces, pieces;      /* blocks per row of blocks, blocks in all */
} exprc_blocks;

static inline exprc_blocks exprc_reduction_blocks(int64_t rows, int64_t cols)
{
    exprc_blocks b = {rows > 0 ? rows : 1, cols, 1, 1};
    const int64_t size = rows * cols;
    int64_t target = (size + EXPRC_MAX_BLOCKS - 1) / EXPRC_MAX_BLOCKS;
    if (target < EXPRC_REDUCE_BLOCK)
        target = EXPRC_REDUCE_BLOCK;
    if (size <= target)
        return b;
    if (cols >= target) {  /* ranges of a row: rows <= EXPRC_MAX_BLOCKS, so at most twice that */
        b.col_pieces = (cols + target - 1) / target;
        b.col_block = (cols + b.col_pieces - 1) / b.col_pieces;
        b.row_block = 1;
        b.pieces = rows * b.col_pieces;
    } else {  /* runs of whole rows */
        b.row_block = (target + cols - 1) / cols;
        b.pieces = (rows + b.row_block - 1) / b.row_block;
    }
    return b;
}

/* glibc's vector math library (libmvec): declaring the SIMD variants lets
   "#pragma omp simd" loops call them without -ffast-math (-fopenmp-simd reads these pragmas
   and no others). */
#if defined(__GLIBC__) && defined(__x86_64__)
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

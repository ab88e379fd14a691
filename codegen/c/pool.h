/* ------------------------------------------------------------------------------
 * What a program shares with the run-time library: the thread pool's job type and
 * the table of run-time functions a program is bound to after it is loaded.
 * ---------------------------------------------------------------------------- */
#include <stddef.h>
#include <stdint.h>

/* A job: task(context, piece) for every piece in 0..pieces. The pieces are fixed by the
   kernel, never by the number of threads, so that results do not depend on it. */
typedef void (*exprc_task)(void *context, int64_t piece);

/* Changes whenever the table below changes: a program bound to another table refuses it. */
#define EXPRC_RUNTIME_ABI 1
/* The ranks the run time's entry points are compiled for (RUNTIME_RANKS in runtime.py). */
#define EXPRC_NRANKS @EXPRC_NRANKS@

typedef struct {
    int abi;                         /* EXPRC_RUNTIME_ABI */
    size_t size;                     /* sizeof(exprc_runtime) */
    /* runs a job on the pool's threads, this thread taking part (serially where the pool
       is busy with another caller's job, or from inside a job) */
    void (*parallel)(exprc_task task, void *context, int64_t pieces);
    /* the segment entry points (runtime.c), one per rank */
    int (*segment_shapes[EXPRC_NRANKS])(const void *segment, const int64_t *shapes, int64_t *out_shapes,
                                        char *message, size_t size);
    int (*segment_pointers[EXPRC_NRANKS])(const void *segment, void *const *data, const int64_t *shapes,
                                          const int64_t *strides);
    int (*segment_numpy[EXPRC_NRANKS])(const void *segment, const intptr_t *objects, const intptr_t *dtypes);
} exprc_runtime;

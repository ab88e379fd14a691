/* ------------------------------------------------------------------------------
 * Run time of the entry points: arrays, broadcasting, and calling a kernel.
 * ---------------------------------------------------------------------------- */
#include <stddef.h>
#include <stdint.h>

/* sizeof(PyObject) of the Python that built this: the header of a NumPy array object. */
#define EXPRC_OBJECT_HEAD @EXPRC_OBJECT_HEAD@

/* What an entry point returns. */
#define EXPRC_OK 0
#define EXPRC_SHAPE_ERROR 1   /* shapes do not broadcast; the message says where */
#define EXPRC_FALLBACK 2      /* a case the kernels do not cover: Python runs the segment step by step */
#define EXPRC_NO_MEMORY 3     /* a temporary could not be allocated */
#define EXPRC_BAD_OUTPUT 4    /* an output array does not have the computed shape */
#define EXPRC_TOO_BIG 5       /* an index space or output has more elements (or bytes) than can be counted */

/* What a step of a segment is: a kernel, or an operation the run time does itself (ops.c). */
enum {
    EXPRC_OP_KERNEL = 0,
    EXPRC_OP_DIMSHUFFLE = 1,         /* a view: params are the input axis per output axis, -1 new */
    EXPRC_OP_BROADCAST = 2,          /* a view: params are (kind, value) per output length */
    EXPRC_OP_RESHAPE = 3,            /* a view, or a copy of non-contiguous data: lengths as above */
    EXPRC_OP_SHAPE = 4,              /* the length of axis params[0], an int64 scalar */
    EXPRC_OP_SUM_TO = 5,             /* sum over the axes whose length is 1: (axis, kind, value) each */
    EXPRC_OP_MATMUL = 6              /* BLAS gemm: params are (a is a vector, b is a vector) */
};
/* A length in params: a (kind, value) pair, the value itself or the slot of a SHAPE step's result. */
enum { EXPRC_LENGTH_CONSTANT = 0, EXPRC_LENGTH_SLOT = 1 };

/* How a kernel buffer binds to a slot. */
enum { EXPRC_READ = 0, EXPRC_READ_KEPT = 1, EXPRC_WRITE = 2 };

/* @RANKED@ What follows depends on EXPRC_MAXDIM, the largest rank of any array or index
   space: the run-time library has it once per rank of RUNTIME_RANKS (runtime.py). */

/* An array: data, and per axis a length and a stride in bytes. */
typedef struct {
    char *data;
    int ndim;
    int owned;                       /* a temporary this call allocated */
    int64_t value;                   /* a SHAPE step's result, also in the shapes-only pass */
    int64_t shape[EXPRC_MAXDIM];
    int64_t strides[EXPRC_MAXDIM];
} exprc_array;

typedef struct {
    int slot;                        /* the array */
    int itemsize;
    int scalar;                      /* a 0-d value: read once, no strides */
    int role;                        /* EXPRC_READ, EXPRC_READ_KEPT (an epilogue input), EXPRC_WRITE */
    int temporary;                   /* a written array this call allocates */
    int full;                        /* may not broadcast: its lengths must be the index space's */
    int axes[EXPRC_MAXDIM];          /* per index axis, the array axis walked, or -1 */
    const char *what;                /* the graph expression, for messages */
} exprc_binding;

typedef struct {
    void (*kernel)(const int64_t *args);
    int (*checked)(const int64_t *args);  /* instead of kernel, one that can fail: nonzero is out of memory */
    const char *what;                /* the graph expression it computes */
    int ndim;                        /* rank of the index space */
    int nreduced;                    /* reduced axes (0 for an elementwise kernel) */
    int order[EXPRC_MAXDIM];         /* index axes in kernel order: kept axes, then reduced ones */
    int minmax;                      /* max or min: no identity, so no empty reduction */
    int fixed;                       /* axes with roles (rows, columns): passed as they are, and
                                        the kernel runs when one is empty */
    int nbuf;
    int nout;                        /* the last nout buffers are the outputs */
    int nargs;                       /* length of the packed argument array */
    const exprc_binding *buffers;    /* in kernel argument order, the outputs last */
    int op;                          /* EXPRC_OP_KERNEL, or the run time's operation (no kernel) */
    int nparams;
    const int64_t *params;           /* the operation's parameters */
} exprc_step;

/* A segment: its slots (inputs and constants, then outputs, then temporaries) and the
   kernels it runs, in order. */
typedef struct {
    int nslots;
    int nin;                         /* inputs and constants */
    int ngiven;                      /* inputs, constants and outputs: the arrays a caller gives */
    int first_temporary;
    const int *ndims;                /* per slot */
    int nsteps;
    const exprc_step *const *steps;
} exprc_segment;

/* NumPy's array object as its ABI lays it out (PyArrayObject_fields in
   numpy/ndarraytypes.h); Python checks the layout before using it. */
typedef struct {
    char head[EXPRC_OBJECT_HEAD];
    char *data;
    int nd;
    intptr_t *dimensions;
    intptr_t *strides;
    void *base;
    void *descr;
    int flags;
} exprc_ndarray;

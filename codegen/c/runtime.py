"""The C run time of the entry points: arrays, broadcasting, and calling a kernel.

An entry point (see :mod:`exprc.codegen.c.entry`) runs a *segment*, a run of
consecutive kernels, in one call from Python. It works on *slots*, one
:c:type:`exprc_array` per array the segment touches (its inputs, constants,
outputs, then its temporaries), and runs each kernel through
:c:func:`exprc_step_run` with a static table, :c:type:`exprc_step`, saying
which slot each kernel buffer reads and which array axis it walks per index
axis. ``exprc_step_run`` does in C what the Python runner does per kernel:

- the index space is the broadcast of the lengths the kernel's inputs give
  each index axis (NumPy's rule: a length of 1 broadcasts); lengths that
  disagree are a shape error with a message naming the arrays;
- the output shapes follow (reduced axes dropped, or 1 with keepdims); an
  output given by Python is checked against it, a temporary is allocated
  (a row pass has several outputs; other kernels one);
- buffers marked ``full`` (the matrix and vector of a row pass, which NumPy's
  ``matmul`` does not broadcast) set the index space's lengths first: where
  they disagree, or another array would broadcast them, ``EXPRC_FALLBACK``;
- the strides are turned into elements (an unaligned array, or a stride that
  is not a whole number of items, sends the segment back to Python, which
  copies), the axes ordered and merged as ``canonical_axes`` in
  :mod:`exprc.codegen.ir.call_plan` does (except for a kernel whose axes have roles,
  ``fixed``: a row pass gets rows and columns as they are), and the kernel
  called with its packed arguments.

The run time is the same for every program: it is compiled once, as a translation
unit of its own (:func:`runtime_source`), kept in the disk cache and linked into each
program, which only includes its declarations (:func:`runtime_header`). That keeps
the run time out of every program's compile time.

``run`` 0 computes shapes only (what :c:func:`shapes_*` entry points return to
Python so it can allocate the outputs). Cases the kernels do not cover
(an epilogue input that broadcasts the reduced result to a larger shape,
max/min over an empty axis) return ``EXPRC_FALLBACK``: Python then runs the segment kernel by
kernel, with NumPy where needed, exactly as before.

>>> "exprc_step_run" in runtime_source(2, 16), "exprc_step_run" in runtime_header(2, 16)
(True, False)
"""

RETURN_CODES = {"OK": 0, "SHAPE_ERROR": 1, "FALLBACK": 2, "NO_MEMORY": 3, "BAD_OUTPUT": 4}

_HEADER = r"""
/* ------------------------------------------------------------------------------
 * Run time of the entry points: arrays, broadcasting, and calling a kernel.
 * ---------------------------------------------------------------------------- */
#include <stddef.h>
#include <stdint.h>

/* The largest rank of any array or index space (see runtime_rank). */
#define EXPRC_MAXDIM {maxdim}
/* sizeof(PyObject) of the Python that built this: the header of a NumPy array object. */
#define EXPRC_OBJECT_HEAD {object_head}

/* What an entry point returns. */
#define EXPRC_OK 0
#define EXPRC_SHAPE_ERROR 1   /* shapes do not broadcast; the message says where */
#define EXPRC_FALLBACK 2      /* a case the kernels do not cover: Python runs the segment step by step */
#define EXPRC_NO_MEMORY 3     /* a temporary could not be allocated */
#define EXPRC_BAD_OUTPUT 4    /* an output array does not have the computed shape */

/* An array: data, and per axis a length and a stride in bytes. */
typedef struct {{
    char *data;
    int ndim;
    int owned;                       /* a temporary this call allocated */
    int64_t shape[EXPRC_MAXDIM];
    int64_t strides[EXPRC_MAXDIM];
}} exprc_array;

/* How a kernel buffer binds to a slot. */
enum {{ EXPRC_READ = 0, EXPRC_READ_KEPT = 1, EXPRC_WRITE = 2 }};

typedef struct {{
    int slot;                        /* the array */
    int itemsize;
    int scalar;                      /* a 0-d value: read once, no strides */
    int role;                        /* EXPRC_READ, EXPRC_READ_KEPT (an epilogue input), EXPRC_WRITE */
    int temporary;                   /* a written array this call allocates */
    int full;                        /* may not broadcast: its lengths must be the index space's */
    int axes[EXPRC_MAXDIM];          /* per index axis, the array axis walked, or -1 */
    const char *what;                /* the graph expression, for messages */
}} exprc_binding;

typedef struct {{
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
}} exprc_step;

/* A segment: its slots (inputs and constants, then outputs, then temporaries) and the
   kernels it runs, in order. */
typedef struct {{
    int nslots;
    int nin;                         /* inputs and constants */
    int ngiven;                      /* inputs, constants and outputs: the arrays a caller gives */
    int first_temporary;
    const int *ndims;                /* per slot */
    int nsteps;
    const exprc_step *const *steps;
}} exprc_segment;

/* NumPy's array object as its ABI lays it out (PyArrayObject_fields in
   numpy/ndarraytypes.h); Python checks the layout before using it. */
typedef struct {{
    char head[EXPRC_OBJECT_HEAD];
    char *data;
    int nd;
    intptr_t *dimensions;
    intptr_t *strides;
    void *base;
    void *descr;
    int flags;
}} exprc_ndarray;

/* The run time's entry points, linked into each program (hidden: every library has its own). */
#define EXPRC_RUNTIME __attribute__((visibility("hidden")))
/* The output shapes, given every axis of every input and constant. */
EXPRC_RUNTIME int exprc_segment_shapes(const exprc_segment *g, const int64_t *shapes, int64_t *out_shapes,
                                       char *message, size_t size);
/* Runs a segment on arrays given as data pointers, shapes and strides in bytes. */
EXPRC_RUNTIME int exprc_segment_pointers(const exprc_segment *g, void *const *data, const int64_t *shapes,
                                         const int64_t *strides);
/* Runs a segment on NumPy array objects, each checked to have its rank and dtype object. */
EXPRC_RUNTIME int exprc_segment_numpy(const exprc_segment *g, const intptr_t *objects, const intptr_t *dtypes);
"""

_BODY = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "(3, 4)", "(3,)" or "()" */
static void exprc_shape_text(char *text, size_t size, const exprc_array *a)
{{
    size_t used = (size_t)snprintf(text, size, "(");
    for (int i = 0; i < a->ndim && used < size; ++i)
        used += (size_t)snprintf(text + used, size - used, i ? ", %lld" : "%lld", (long long)a->shape[i]);
    if (used < size)
        snprintf(text + used, size - used, a->ndim == 1 ? ",)" : ")");
}}

static int exprc_broadcast_error(const exprc_step *s, const exprc_array *slots, int axis,
                                 int64_t first, int64_t second, char *message, size_t size)
{{
    if (message == NULL || size == 0)
        return EXPRC_SHAPE_ERROR;
    size_t used = (size_t)snprintf(message, size,
        "computing %s: shapes do not broadcast: axis %d has lengths %lld and %lld in ",
        s->what, axis, (long long)first, (long long)second);
    int listed = 0;
    for (int b = 0; b < s->nbuf && used < size; ++b) {{
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar || bb->role == EXPRC_WRITE)
            continue;
        char shape[256];
        exprc_shape_text(shape, sizeof shape, &slots[bb->slot]);
        used += (size_t)snprintf(message + used, size - used, "%s%s %s", listed++ ? ", " : "", bb->what, shape);
    }}
    return EXPRC_SHAPE_ERROR;
}}

/* Orders the axes of each group (kept, reduced) so the buffer that moves first walks
   its smallest strides innermost, drops length-1 axes, merges axes every buffer walks
   as one, and writes the kernel's packed arguments: lengths, "contiguous", then per
   buffer its pointer and strides. */
static void exprc_pack(const exprc_step *s, const int64_t *n, int64_t (*st)[EXPRC_MAXDIM],
                       char *const *pointers, int64_t *args)
{{
    const int d = s->ndim, nb = s->nbuf, kept = s->ndim - s->nreduced;
    if (s->fixed) {{  /* the axes have roles: as they are */
        int k = 0;
        for (int a = 0; a < d; ++a) args[k++] = n[a];
        args[k++] = 0;
        for (int b = 0; b < nb; ++b) {{
            args[k++] = (int64_t)(intptr_t)pointers[b];
            if (!s->buffers[b].scalar)
                for (int a = 0; a < d; ++a) args[k++] = st[b][a];
        }}
        return;
    }}
    int lead = -1;
    for (int b = 0; b < nb && lead < 0; ++b)
        for (int a = 0; a < d && !s->buffers[b].scalar; ++a)
            if (st[b][a] != 0) {{ lead = b; break; }}
    int64_t lengths[EXPRC_MAXDIM + 1];
    int64_t out[nb > 0 ? nb : 1][EXPRC_MAXDIM + 1];
    int pos = 0;
    for (int g = 0; g < 2; ++g) {{
        const int start = g ? kept : 0, end = g ? d : kept;
        int axes[EXPRC_MAXDIM], na = 0;
        for (int i = start; i < end; ++i)
            if (n[s->order[i]] != 1) axes[na++] = s->order[i];
        if (lead >= 0) {{  /* stable sort, largest |stride| first */
            for (int i = 1; i < na; ++i) {{
                int a = axes[i], j = i;
                int64_t key = llabs(st[lead][a]);
                while (j > 0 && llabs(st[lead][axes[j - 1]]) < key) {{ axes[j] = axes[j - 1]; --j; }}
                axes[j] = a;
            }}
        }}
        int64_t merged_len[EXPRC_MAXDIM];
        int inner[EXPRC_MAXDIM], nm = 0;
        for (int i = 0; i < na; ++i) {{
            int a = axes[i], joins = nm > 0;
            for (int b = 0; b < nb && joins; ++b)
                if (!s->buffers[b].scalar && st[b][inner[nm - 1]] != st[b][a] * n[a]) joins = 0;
            if (joins) {{ merged_len[nm - 1] *= n[a]; inner[nm - 1] = a; }}
            else {{ merged_len[nm] = n[a]; inner[nm] = a; ++nm; }}
        }}
        for (int p = 0; p < (end - start) - nm; ++p, ++pos) {{
            lengths[pos] = 1;
            for (int b = 0; b < nb; ++b) out[b][pos] = 0;
        }}
        for (int m = 0; m < nm; ++m, ++pos) {{
            lengths[pos] = merged_len[m];
            for (int b = 0; b < nb; ++b) out[b][pos] = s->buffers[b].scalar ? 0 : st[b][inner[m]];
        }}
    }}
    int nlong = 0, long_axis = -1;
    for (int a = 0; a < d; ++a)
        if (lengths[a] != 1) {{ ++nlong; long_axis = a; }}
    int contiguous = nlong == 0;
    if (nlong == 1) {{
        contiguous = 1;
        for (int b = 0; b < nb; ++b)
            if (!s->buffers[b].scalar && out[b][long_axis] != 1) contiguous = 0;
    }}
    int k = 0;
    for (int a = 0; a < d; ++a) args[k++] = lengths[a];
    args[k++] = contiguous;
    for (int b = 0; b < nb; ++b) {{
        args[k++] = (int64_t)(intptr_t)pointers[b];
        if (!s->buffers[b].scalar)
            for (int a = 0; a < d; ++a) args[k++] = out[b][a];
    }}
}}

/* Runs one kernel on the slots (run = 0: only works out the shapes of its outputs). */
static int exprc_step_run(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{{
    const int d = s->ndim, nb = s->nbuf, nin = s->nbuf - s->nout;
    int reduced[EXPRC_MAXDIM + 1] = {{0}};
    int64_t n[EXPRC_MAXDIM + 1];
    for (int a = 0; a < d; ++a) n[a] = 1;
    for (int i = d - s->nreduced; i < d; ++i) reduced[s->order[i]] = 1;
    /* the index space: the lengths of the arrays that may not broadcast (they must agree:
       else NumPy says what is wrong), then broadcast those of the others read at every index */
    int fixed_by[EXPRC_MAXDIM + 1] = {{0}};
    for (int b = 0; b < nin; ++b) {{
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar || !bb->full) continue;
        for (int a = 0; a < d; ++a) {{
            if (bb->axes[a] < 0) continue;
            const int64_t len = slots[bb->slot].shape[bb->axes[a]];
            if (fixed_by[a] && len != n[a]) return EXPRC_FALLBACK;
            n[a] = len;
            fixed_by[a] = 1;
        }}
    }}
    for (int b = 0; b < nin; ++b) {{
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar || bb->full || bb->role != EXPRC_READ) continue;
        for (int a = 0; a < d; ++a) {{
            if (bb->axes[a] < 0) continue;
            const int64_t len = slots[bb->slot].shape[bb->axes[a]];
            if (len == 1 || len == n[a]) continue;
            if (fixed_by[a] && n[a] == 1) return EXPRC_FALLBACK;  /* NumPy broadcasts the product */
            if (n[a] != 1) return exprc_broadcast_error(s, slots, a, n[a], len, message, size);
            n[a] = len;
        }}
    }}
    /* cases the kernel does not cover */
    for (int b = 0; b < nin; ++b) {{
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar) continue;
        for (int a = 0; a < d; ++a) {{
            if (bb->axes[a] < 0) continue;
            const int64_t len = slots[bb->slot].shape[bb->axes[a]], m = reduced[a] ? 1 : n[a];
            if (bb->role != EXPRC_READ_KEPT || len == 1 || len == m) continue;
            if (m != 1) return exprc_broadcast_error(s, slots, a, m, len, message, size);
            return EXPRC_FALLBACK;  /* the epilogue would broadcast the reduced result */
        }}
    }}
    if (s->minmax)
        for (int a = 0; a < d; ++a)
            if (reduced[a] && n[a] == 0) return EXPRC_FALLBACK;
    /* the outputs' shapes */
    int64_t count = 0;  /* elements of all outputs */
    for (int o = nin; o < nb; ++o) {{
        const exprc_binding *ob = &s->buffers[o];
        exprc_array *out = &slots[ob->slot];
        int64_t shape[EXPRC_MAXDIM + 1], elements = 1;
        for (int a = 0; a < d; ++a)
            if (!ob->scalar && ob->axes[a] >= 0) shape[ob->axes[a]] = reduced[a] ? 1 : n[a];
        for (int j = 0; j < out->ndim; ++j) elements *= shape[j];
        count += elements;
        if (!run || ob->temporary) {{
            for (int j = 0; j < out->ndim; ++j) out->shape[j] = shape[j];
        }} else {{
            for (int j = 0; j < out->ndim; ++j)
                if (out->shape[j] != shape[j]) return EXPRC_BAD_OUTPUT;
        }}
    }}
    if (!run) return EXPRC_OK;
    for (int o = nin; o < nb; ++o) {{
        const exprc_binding *ob = &s->buffers[o];
        exprc_array *out = &slots[ob->slot];
        if (!ob->temporary) continue;
        int64_t stride = ob->itemsize, elements = 1;
        for (int j = out->ndim - 1; j >= 0; --j) {{ out->strides[j] = stride; stride *= out->shape[j]; }}
        for (int j = 0; j < out->ndim; ++j) elements *= out->shape[j];
        out->data = malloc(elements > 0 ? (size_t)elements * (size_t)ob->itemsize : 1);
        if (out->data == NULL) return EXPRC_NO_MEMORY;
        out->owned = 1;
    }}
    if (count == 0) return EXPRC_OK;
    if (s->nreduced == 0 && !s->fixed)
        for (int a = 0; a < d; ++a)
            if (n[a] == 0) return EXPRC_OK;
    /* element strides per buffer and index axis: 0 where the buffer broadcasts */
    int64_t st[nb][EXPRC_MAXDIM];
    char *pointers[nb];
    for (int b = 0; b < nb; ++b) {{
        const exprc_binding *bb = &s->buffers[b];
        const exprc_array *arr = &slots[bb->slot];
        pointers[b] = arr->data;
        if ((uintptr_t)arr->data % (uintptr_t)bb->itemsize) return EXPRC_FALLBACK;
        for (int a = 0; a < d; ++a) {{
            const int j = bb->scalar ? -1 : bb->axes[a];
            st[b][a] = 0;
            if (j < 0 || arr->shape[j] == 1 || n[a] == 1) continue;
            if (arr->strides[j] % bb->itemsize) return EXPRC_FALLBACK;
            st[b][a] = arr->strides[j] / bb->itemsize;
        }}
    }}
    int64_t args[s->nargs];
    exprc_pack(s, n, st, pointers, args);
    if (s->checked != NULL)
        return s->checked(args) ? EXPRC_NO_MEMORY : EXPRC_OK;
    s->kernel(args);
    return EXPRC_OK;
}}

/* Frees the temporaries slots[first..count) that a call allocated. */
static void exprc_free(exprc_array *slots, int first, int count)
{{
    for (int i = first; i < count; ++i)
        if (slots[i].owned) {{ free(slots[i].data); slots[i].owned = 0; slots[i].data = NULL; }}
}}


static void exprc_slots_init(const exprc_segment *g, exprc_array *slots)
{{
    memset(slots, 0, sizeof(exprc_array) * (size_t)g->nslots);
    for (int i = 0; i < g->nslots; ++i) slots[i].ndim = g->ndims[i];
}}

/* Runs (run = 1) or works out the shapes of (run = 0) every kernel of a segment in order,
   then frees its temporaries. */
static int exprc_segment_run(const exprc_segment *g, exprc_array *slots, int run, char *message, size_t size)
{{
    int rc = EXPRC_OK;
    for (int i = 0; i < g->nsteps && rc == EXPRC_OK; ++i)
        rc = exprc_step_run(g->steps[i], slots, run, message, size);
    exprc_free(slots, g->first_temporary, g->nslots);
    return rc;
}}

EXPRC_RUNTIME int exprc_segment_shapes(const exprc_segment *g, const int64_t *shapes, int64_t *out_shapes,
                                           char *message, size_t size)
{{
    exprc_array slots[g->nslots];
    exprc_slots_init(g, slots);
    int64_t k = 0;
    for (int i = 0; i < g->nin; ++i)
        for (int j = 0; j < slots[i].ndim; ++j) slots[i].shape[j] = shapes[k++];
    const int rc = exprc_segment_run(g, slots, 0, message, size);
    k = 0;
    for (int i = g->nin; i < g->ngiven; ++i)
        for (int j = 0; j < slots[i].ndim; ++j) out_shapes[k++] = slots[i].shape[j];
    return rc;
}}

EXPRC_RUNTIME int exprc_segment_pointers(const exprc_segment *g, void *const *data, const int64_t *shapes,
                                             const int64_t *strides)
{{
    exprc_array slots[g->nslots];
    exprc_slots_init(g, slots);
    int64_t k = 0;
    for (int i = 0; i < g->ngiven; ++i) {{
        slots[i].data = (char *)data[i];
        for (int j = 0; j < slots[i].ndim; ++j, ++k) {{ slots[i].shape[j] = shapes[k]; slots[i].strides[j] = strides[k]; }}
    }}
    return exprc_segment_run(g, slots, 1, NULL, 0);
}}

static int exprc_from_numpy(exprc_array *slot, intptr_t object, int ndim, intptr_t dtype);

EXPRC_RUNTIME int exprc_segment_numpy(const exprc_segment *g, const intptr_t *objects, const intptr_t *dtypes)
{{
    exprc_array slots[g->nslots];
    exprc_slots_init(g, slots);
    for (int i = 0; i < g->ngiven; ++i)
        if (exprc_from_numpy(&slots[i], objects[i], g->ndims[i], dtypes[i]) != EXPRC_OK) return EXPRC_FALLBACK;
    return exprc_segment_run(g, slots, 1, NULL, 0);
}}


/* Fills a slot from a NumPy array object; EXPRC_FALLBACK if its rank or dtype object is
   not the expected one. */
static int exprc_from_numpy(exprc_array *slot, intptr_t object, int ndim, intptr_t dtype)
{{
    const exprc_ndarray *a = (const exprc_ndarray *)object;
    if (a->nd != ndim || (intptr_t)a->descr != dtype) return EXPRC_FALLBACK;
    slot->data = a->data;
    slot->ndim = ndim;
    slot->owned = 0;
    for (int i = 0; i < ndim; ++i) {{ slot->shape[i] = a->dimensions[i]; slot->strides[i] = a->strides[i]; }}
    return EXPRC_OK;
}}
"""



#: NumPy's largest rank (NPY_MAXDIMS): a program may have arrays of up to this many axes.
MAX_RANK = 64

#: The ranks the run time is compiled for: a program uses the smallest that covers its
#: arrays, so there are at most two run-time objects per compiler, and the common one keeps
#: its per-array records (and what a call clears of them) small.
RUNTIME_RANKS = (8, MAX_RANK)


def runtime_rank(maxdim):
    """The :data:`RUNTIME_RANKS` entry for a program whose arrays have at most ``maxdim`` axes."""
    return next(r for r in RUNTIME_RANKS if r >= maxdim) if maxdim <= MAX_RANK else int(maxdim)


def runtime_header(maxdim, object_head):
    """The declarations a program shares with the run time (types, return codes, entry
    points), for arrays of at most ``maxdim`` axes and a Python whose object header is
    ``object_head`` bytes (``object.__basicsize__``)."""
    return _HEADER.format(maxdim=runtime_rank(maxdim), object_head=int(object_head)).strip("\n")


def runtime_source(maxdim, object_head):
    """The run time as a translation unit of its own: compiled once per compiler and flags,
    kept in the disk cache, and linked into every program (see :func:`runtime_header`)."""
    return (f"{runtime_header(maxdim, object_head)}\n\n{_BODY.format().strip(chr(10))}\n")

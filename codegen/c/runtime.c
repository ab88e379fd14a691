#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "(3, 4)", "(3,)" or "()" */
static void exprc_shape_text(char *text, size_t size, const exprc_array *a)
{
    size_t used = (size_t)snprintf(text, size, "(");
    for (int i = 0; i < a->ndim && used < size; ++i)
        used += (size_t)snprintf(text + used, size - used, i ? ", %lld" : "%lld", (long long)a->shape[i]);
    if (used < size)
        snprintf(text + used, size - used, a->ndim == 1 ? ",)" : ")");
}

static int exprc_broadcast_error(const exprc_step *s, const exprc_array *slots, int axis,
                                 int64_t first, int64_t second, char *message, size_t size)
{
    if (message == NULL || size == 0)
        return EXPRC_SHAPE_ERROR;
    size_t used = (size_t)snprintf(message, size,
        "computing %s: shapes do not broadcast: axis %d has lengths %lld and %lld in ",
        s->what, axis, (long long)first, (long long)second);
    int listed = 0;
    for (int b = 0; b < s->nbuf && used < size; ++b) {
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar || bb->role == EXPRC_WRITE)
            continue;
        char shape[256];
        exprc_shape_text(shape, sizeof shape, &slots[bb->slot]);
        used += (size_t)snprintf(message + used, size - used, "%s%s %s", listed++ ? ", " : "", bb->what, shape);
    }
    return EXPRC_SHAPE_ERROR;
}

/* EXPRC_TOO_BIG, with NumPy's words for what could not be counted ("what") and its shape. */
static int exprc_too_big(const exprc_step *s, const char *what, int ndim, const int64_t *shape,
                         char *message, size_t size)
{
    if (message == NULL || size == 0)
        return EXPRC_TOO_BIG;
    size_t used = (size_t)snprintf(message, size, "computing %s: %s (", s->what, what);
    for (int i = 0; i < ndim && used < size; ++i)
        used += (size_t)snprintf(message + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size)
        snprintf(message + used, size - used, ") has more elements or bytes than can be counted");
    return EXPRC_TOO_BIG;
}

/* Orders the axes of each group (kept, reduced) so the buffer that moves first walks
   its smallest strides innermost, drops length-1 axes, merges axes every buffer walks
   as one, and writes the kernel's packed arguments: lengths, "contiguous", then per
   buffer its pointer and strides. */
static void exprc_pack(const exprc_step *s, const int64_t *n, int64_t (*st)[EXPRC_MAXDIM],
                       char *const *pointers, int64_t *args)
{
    const int d = s->ndim, nb = s->nbuf, kept = s->ndim - s->nreduced;
    if (s->fixed) {  /* the axes have roles: as they are */
        int k = 0;
        for (int a = 0; a < d; ++a) args[k++] = n[a];
        args[k++] = 0;
        for (int b = 0; b < nb; ++b) {
            args[k++] = (int64_t)(intptr_t)pointers[b];
            if (!s->buffers[b].scalar)
                for (int a = 0; a < d; ++a) args[k++] = st[b][a];
        }
        return;
    }
    int lead = -1;
    for (int b = 0; b < nb && lead < 0; ++b)
        for (int a = 0; a < d && !s->buffers[b].scalar; ++a)
            if (st[b][a] != 0) { lead = b; break; }
    int64_t lengths[EXPRC_MAXDIM + 1];
    int64_t out[nb > 0 ? nb : 1][EXPRC_MAXDIM + 1];
    int pos = 0;
    for (int g = 0; g < 2; ++g) {
        const int start = g ? kept : 0, end = g ? d : kept;
        int axes[EXPRC_MAXDIM], na = 0;
        for (int i = start; i < end; ++i)
            if (n[s->order[i]] != 1) axes[na++] = s->order[i];
        if (lead >= 0) {  /* stable sort, largest |stride| first */
            for (int i = 1; i < na; ++i) {
                int a = axes[i], j = i;
                int64_t key = llabs(st[lead][a]);
                while (j > 0 && llabs(st[lead][axes[j - 1]]) < key) { axes[j] = axes[j - 1]; --j; }
                axes[j] = a;
            }
        }
        int64_t merged_len[EXPRC_MAXDIM];
        int inner[EXPRC_MAXDIM], nm = 0;
        for (int i = 0; i < na; ++i) {
            int a = axes[i], joins = nm > 0;
            for (int b = 0; b < nb && joins; ++b)
                if (!s->buffers[b].scalar && st[b][inner[nm - 1]] != st[b][a] * n[a]) joins = 0;
            if (joins) { merged_len[nm - 1] *= n[a]; inner[nm - 1] = a; }
            else { merged_len[nm] = n[a]; inner[nm] = a; ++nm; }
        }
        for (int p = 0; p < (end - start) - nm; ++p, ++pos) {
            lengths[pos] = 1;
            for (int b = 0; b < nb; ++b) out[b][pos] = 0;
        }
        for (int m = 0; m < nm; ++m, ++pos) {
            lengths[pos] = merged_len[m];
            for (int b = 0; b < nb; ++b) out[b][pos] = s->buffers[b].scalar ? 0 : st[b][inner[m]];
        }
    }
    int nlong = 0, long_axis = -1;
    for (int a = 0; a < d; ++a)
        if (lengths[a] != 1) { ++nlong; long_axis = a; }
    int contiguous = nlong == 0;
    if (nlong == 1) {
        contiguous = 1;
        for (int b = 0; b < nb; ++b)
            if (!s->buffers[b].scalar && out[b][long_axis] != 1) contiguous = 0;
    }
    int k = 0;
    for (int a = 0; a < d; ++a) args[k++] = lengths[a];
    args[k++] = contiguous;
    for (int b = 0; b < nb; ++b) {
        args[k++] = (int64_t)(intptr_t)pointers[b];
        if (!s->buffers[b].scalar)
            for (int a = 0; a < d; ++a) args[k++] = out[b][a];
    }
}

/* Runs one kernel on the slots (run = 0: only works out the shapes of its outputs). */
static int exprc_step_run(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{
    const int d = s->ndim, nb = s->nbuf, nin = s->nbuf - s->nout;
    int reduced[EXPRC_MAXDIM + 1] = {0};
    int64_t n[EXPRC_MAXDIM + 1];
    for (int a = 0; a < d; ++a) n[a] = 1;
    for (int i = d - s->nreduced; i < d; ++i) reduced[s->order[i]] = 1;
    /* the index space: the lengths of the arrays that may not broadcast (they must agree:
       else NumPy says what is wrong), then broadcast those of the others read at every index */
    int fixed_by[EXPRC_MAXDIM + 1] = {0};
    for (int b = 0; b < nin; ++b) {
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar || !bb->full) continue;
        for (int a = 0; a < d; ++a) {
            if (bb->axes[a] < 0) continue;
            const int64_t len = slots[bb->slot].shape[bb->axes[a]];
            if (fixed_by[a] && len != n[a]) return EXPRC_FALLBACK;
            n[a] = len;
            fixed_by[a] = 1;
        }
    }
    for (int b = 0; b < nin; ++b) {
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar || bb->full || bb->role != EXPRC_READ) continue;
        for (int a = 0; a < d; ++a) {
            if (bb->axes[a] < 0) continue;
            const int64_t len = slots[bb->slot].shape[bb->axes[a]];
            if (len == 1 || len == n[a]) continue;
            if (fixed_by[a] && n[a] == 1) return EXPRC_FALLBACK;  /* NumPy broadcasts the product */
            if (n[a] != 1) return exprc_broadcast_error(s, slots, a, n[a], len, message, size);
            n[a] = len;
        }
    }
    /* cases the kernel does not cover */
    for (int b = 0; b < nin; ++b) {
        const exprc_binding *bb = &s->buffers[b];
        if (bb->scalar) continue;
        for (int a = 0; a < d; ++a) {
            if (bb->axes[a] < 0) continue;
            const int64_t len = slots[bb->slot].shape[bb->axes[a]], m = reduced[a] ? 1 : n[a];
            if (bb->role != EXPRC_READ_KEPT || len == 1 || len == m) continue;
            if (m != 1) return exprc_broadcast_error(s, slots, a, m, len, message, size);
            return EXPRC_FALLBACK;  /* the epilogue would broadcast the reduced result */
        }
    }
    if (s->minmax)
        for (int a = 0; a < d; ++a)
            if (reduced[a] && n[a] == 0) return EXPRC_FALLBACK;
    /* NumPy refuses an index space whose elements an int64 cannot count */
    int64_t total = 1;
    int empty = 0;
    for (int a = 0; a < d; ++a) empty |= n[a] == 0;
    for (int a = 0; a < d && !empty; ++a)
        if (__builtin_mul_overflow(total, n[a], &total))
            return exprc_too_big(s, "iterator is too large: its index space", d, n, message, size);
    /* the outputs' shapes */
    int64_t count = 0;  /* elements of all outputs */
    for (int o = nin; o < nb; ++o) {
        const exprc_binding *ob = &s->buffers[o];
        exprc_array *out = &slots[ob->slot];
        int64_t shape[EXPRC_MAXDIM + 1], elements = 1;
        for (int a = 0; a < d; ++a)
            if (!ob->scalar && ob->axes[a] >= 0) shape[ob->axes[a]] = reduced[a] ? 1 : n[a];
        for (int j = 0; j < out->ndim; ++j) elements *= shape[j];
        int64_t bytes;
        if (__builtin_mul_overflow(elements, (int64_t)ob->itemsize, &bytes) || (uint64_t)bytes > (uint64_t)PTRDIFF_MAX)
            return exprc_too_big(s, "array is too big: its output", out->ndim, shape, message, size);
        count += elements;
        if (!run || ob->temporary) {
            for (int j = 0; j < out->ndim; ++j) out->shape[j] = shape[j];
        } else {
            for (int j = 0; j < out->ndim; ++j)
                if (out->shape[j] != shape[j]) return EXPRC_BAD_OUTPUT;
        }
    }
    if (!run) return EXPRC_OK;
    for (int o = nin; o < nb; ++o) {
        const exprc_binding *ob = &s->buffers[o];
        exprc_array *out = &slots[ob->slot];
        if (!ob->temporary) continue;
        int64_t stride = ob->itemsize, elements = 1;
        for (int j = out->ndim - 1; j >= 0; --j) { out->strides[j] = stride; stride *= out->shape[j]; }
        for (int j = 0; j < out->ndim; ++j) elements *= out->shape[j];
        out->data = malloc(elements > 0 ? (size_t)elements * (size_t)ob->itemsize : 1);
        if (out->data == NULL) return EXPRC_NO_MEMORY;
        out->owned = 1;
    }
    if (count == 0) return EXPRC_OK;
    if (s->nreduced == 0 && !s->fixed)
        for (int a = 0; a < d; ++a)
            if (n[a] == 0) return EXPRC_OK;
    /* element strides per buffer and index axis: 0 where the buffer broadcasts */
    int64_t st[nb][EXPRC_MAXDIM];
    char *pointers[nb];
    for (int b = 0; b < nb; ++b) {
        const exprc_binding *bb = &s->buffers[b];
        const exprc_array *arr = &slots[bb->slot];
        pointers[b] = arr->data;
        if ((uintptr_t)arr->data % (uintptr_t)bb->itemsize) return EXPRC_FALLBACK;
        for (int a = 0; a < d; ++a) {
            const int j = bb->scalar ? -1 : bb->axes[a];
            st[b][a] = 0;
            if (j < 0 || arr->shape[j] == 1 || n[a] == 1) continue;
            if (arr->strides[j] % bb->itemsize) return EXPRC_FALLBACK;
            st[b][a] = arr->strides[j] / bb->itemsize;
        }
    }
    int64_t args[s->nargs];
    exprc_pack(s, n, st, pointers, args);
    if (s->checked != NULL)
        return s->checked(args) ? EXPRC_NO_MEMORY : EXPRC_OK;
    s->kernel(args);
    return EXPRC_OK;
}

@OPS@

/* Frees the temporaries slots[first..count) that a call allocated. */
static void exprc_free(exprc_array *slots, int first, int count)
{
    for (int i = first; i < count; ++i)
        if (slots[i].owned) { free(slots[i].data); slots[i].owned = 0; slots[i].data = NULL; }
}


static void exprc_slots_init(const exprc_segment *g, exprc_array *slots)
{
    memset(slots, 0, sizeof(exprc_array) * (size_t)g->nslots);
    for (int i = 0; i < g->nslots; ++i) slots[i].ndim = g->ndims[i];
}

/* Runs (run = 1) or works out the shapes of (run = 0) every kernel of a segment in order,
   then frees its temporaries. */
static int exprc_segment_run(const exprc_segment *g, exprc_array *slots, int run, char *message, size_t size)
{
    int rc = EXPRC_OK;
    for (int i = 0; i < g->nsteps && rc == EXPRC_OK; ++i) {
        const exprc_step *s = g->steps[i];
        rc = s->op ? exprc_op_run(s, slots, run, message, size) : exprc_step_run(s, slots, run, message, size);
    }
    exprc_free(slots, g->first_temporary, g->nslots);
    return rc;
}

static int exprc_segment_shapes(const exprc_segment *g, const int64_t *shapes, int64_t *out_shapes,
                                char *message, size_t size)
{
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
}

static int exprc_segment_pointers(const exprc_segment *g, void *const *data, const int64_t *shapes,
                                  const int64_t *strides)
{
    exprc_array slots[g->nslots];
    exprc_slots_init(g, slots);
    int64_t k = 0;
    for (int i = 0; i < g->ngiven; ++i) {
        slots[i].data = (char *)data[i];
        for (int j = 0; j < slots[i].ndim; ++j, ++k) { slots[i].shape[j] = shapes[k]; slots[i].strides[j] = strides[k]; }
    }
    const int rc = exprc_segment_run(g, slots, 1, NULL, 0);
    exprc_pool_rest();  /* the call returns to Python: no worker may hold a core meanwhile */
    return rc;
}

static int exprc_from_numpy(exprc_array *slot, intptr_t object, int ndim, intptr_t dtype);

static int exprc_segment_numpy(const exprc_segment *g, const intptr_t *objects, const intptr_t *dtypes)
{
    exprc_array slots[g->nslots];
    exprc_slots_init(g, slots);
    for (int i = 0; i < g->ngiven; ++i)
        if (exprc_from_numpy(&slots[i], objects[i], g->ndims[i], dtypes[i]) != EXPRC_OK) return EXPRC_FALLBACK;
    const int rc = exprc_segment_run(g, slots, 1, NULL, 0);
    exprc_pool_rest();  /* the call returns to Python: no worker may hold a core meanwhile */
    return rc;
}


/* Fills a slot from a NumPy array object; EXPRC_FALLBACK if its rank or dtype object is
   not the expected one. */
static int exprc_from_numpy(exprc_array *slot, intptr_t object, int ndim, intptr_t dtype)
{
    const exprc_ndarray *a = (const exprc_ndarray *)object;
    if (a->nd != ndim || (intptr_t)a->descr != dtype) return EXPRC_FALLBACK;
    slot->data = a->data;
    slot->ndim = ndim;
    slot->owned = 0;
    for (int i = 0; i < ndim; ++i) { slot->shape[i] = a->dimensions[i]; slot->strides[i] = a->strides[i]; }
    return EXPRC_OK;
}

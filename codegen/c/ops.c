/* ------------------------------------------------------------------------------
 * The steps of a segment that are no kernel (EXPRC_OP_*): views (new shape and strides
 * over the same memory, copied only into an output the caller gave), lengths, sums back
 * to a broadcast shape, and matrix products through BLAS (blas.c). Each runs twice per
 * shape: with run = 0 it only works out its result's shape.
 * ---------------------------------------------------------------------------- */

static int exprc_op_error(const exprc_step *s, char *message, size_t size, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* EXPRC_SHAPE_ERROR with "computing <what>: " and the formatted text as its message. */
static int exprc_op_error(const exprc_step *s, char *message, size_t size, const char *format, ...)
{
    if (message == NULL || size == 0)
        return EXPRC_SHAPE_ERROR;
    size_t used = (size_t)snprintf(message, size, "computing %s: ", s->what);
    if (used < size) {
        va_list args;
        va_start(args, format);
        vsnprintf(message + used, size - used, format, args);
        va_end(args);
    }
    return EXPRC_SHAPE_ERROR;
}

/* "(3, 4)" of a list of lengths */
static void exprc_lengths_text(char *text, size_t size, int ndim, const int64_t *shape)
{
    exprc_array a;
    a.ndim = ndim;
    for (int i = 0; i < ndim; ++i) a.shape[i] = shape[i];
    exprc_shape_text(text, size, &a);
}

/* A length given as a (kind, value) pair of params. */
static int64_t exprc_length(const exprc_array *slots, const int64_t *pair)
{
    return pair[0] == EXPRC_LENGTH_SLOT ? slots[pair[1]].value : pair[1];
}

/* Copies "from" into "to", arrays of the same shape, element by element. */
static void exprc_copy(const exprc_array *to, const exprc_array *from, int64_t size)
{
    const int d = to->ndim;
    for (int j = 0; j < d; ++j)
        if (to->shape[j] == 0) return;
    int64_t index[EXPRC_MAXDIM + 1] = {0};
    const int64_t inner = d ? to->shape[d - 1] : 1, ts = d ? to->strides[d - 1] : 0, fs = d ? from->strides[d - 1] : 0;
    for (;;) {
        char *t = to->data;
        const char *f = from->data;
        for (int j = 0; j < d - 1; ++j) { t += index[j] * to->strides[j]; f += index[j] * from->strides[j]; }
        if (size == 4)
            for (int64_t i = 0; i < inner; ++i) memcpy(t + i * ts, f + i * fs, 4);
        else if (size == 8)
            for (int64_t i = 0; i < inner; ++i) memcpy(t + i * ts, f + i * fs, 8);
        else
            for (int64_t i = 0; i < inner; ++i) memcpy(t + i * ts, f + i * fs, (size_t)size);
        int j = d - 2;
        for (; j >= 0; --j) {
            if (++index[j] < to->shape[j]) break;
            index[j] = 0;
        }
        if (j < 0) return;
    }
}

/* Gives "out" (its shape already set) C-contiguous strides and memory of its own. */
static int exprc_alloc(const exprc_step *s, exprc_array *out, int64_t itemsize, char *message, size_t size)
{
    int64_t stride = itemsize, elements = 1, bytes;
    for (int j = out->ndim - 1; j >= 0; --j) { out->strides[j] = stride; stride *= out->shape[j]; }
    for (int j = 0; j < out->ndim; ++j)
        if (__builtin_mul_overflow(elements, out->shape[j], &elements))
            return exprc_too_big(s, "array is too big: its output", out->ndim, out->shape, message, size);
    if (__builtin_mul_overflow(elements, itemsize, &bytes) || (uint64_t)bytes > (uint64_t)PTRDIFF_MAX)
        return exprc_too_big(s, "array is too big: its output", out->ndim, out->shape, message, size);
    out->data = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (out->data == NULL) return EXPRC_NO_MEMORY;
    out->owned = 1;
    return EXPRC_OK;
}

/* The result of a view: bound to its slot (a temporary), or copied into the output the
   caller gave. */
static int exprc_view_result(const exprc_step *s, exprc_array *slots, int run, const int64_t *shape,
                             const int64_t *strides, char *data)
{
    const exprc_binding *ob = &s->buffers[s->nbuf - 1];
    exprc_array *out = &slots[ob->slot];
    if (!run || ob->temporary) {
        for (int j = 0; j < out->ndim; ++j) { out->shape[j] = shape[j]; out->strides[j] = strides[j]; }
        if (ob->temporary) { out->data = data; out->owned = 0; }
        return EXPRC_OK;
    }
    for (int j = 0; j < out->ndim; ++j)
        if (out->shape[j] != shape[j]) return EXPRC_BAD_OUTPUT;
    exprc_array view = *out;
    view.data = data;
    for (int j = 0; j < out->ndim; ++j) view.strides[j] = strides[j];
    exprc_copy(out, &view, ob->itemsize);
    return EXPRC_OK;
}

static int exprc_op_dimshuffle(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{
    const exprc_array *x = &slots[s->buffers[0].slot];
    int64_t shape[EXPRC_MAXDIM + 1], strides[EXPRC_MAXDIM + 1];
    int kept[EXPRC_MAXDIM + 1] = {0};
    for (int i = 0; i < s->nparams; ++i) {
        const int64_t a = s->params[i];
        shape[i] = a < 0 ? 1 : x->shape[a];
        strides[i] = a < 0 ? 0 : x->strides[a];
        if (a >= 0) kept[a] = 1;
    }
    for (int a = 0; a < x->ndim; ++a)
        if (!kept[a] && x->shape[a] != 1) {
            char text[256];
            exprc_shape_text(text, sizeof text, x);
            return exprc_op_error(s, message, size, "cannot drop axis %d of %s of shape %s: its length is not 1", a,
                                  s->buffers[0].what, text);
        }
    return exprc_view_result(s, slots, run, shape, strides, x->data);
}

static int exprc_op_broadcast(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{
    const exprc_array *x = &slots[s->buffers[0].slot];
    const int d = s->nparams / 2, lead = d - x->ndim;
    int64_t shape[EXPRC_MAXDIM + 1], strides[EXPRC_MAXDIM + 1];
    for (int i = 0; i < d; ++i) shape[i] = exprc_length(slots, s->params + 2 * i);
    for (int i = 0; i < d; ++i) {
        const int64_t have = i < lead ? 1 : x->shape[i - lead];
        strides[i] = i < lead || have != shape[i] ? 0 : x->strides[i - lead];
        if (shape[i] < 0 || (have != shape[i] && have != 1)) {
            char from[256], to[256];
            exprc_shape_text(from, sizeof from, x);
            exprc_lengths_text(to, sizeof to, d, shape);
            return exprc_op_error(s, message, size, "cannot broadcast %s of shape %s to %s", s->buffers[0].what, from, to);
        }
    }
    return exprc_view_result(s, slots, run, shape, strides, x->data);
}

static int exprc_op_reshape(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{
    const exprc_binding *xb = &s->buffers[0];
    const exprc_array *x = &slots[xb->slot];
    const int d = s->nparams / 2;
    int64_t shape[EXPRC_MAXDIM + 1], strides[EXPRC_MAXDIM + 1], total = 1, known = 1;
    int unknown = -1;
    for (int j = 0; j < x->ndim; ++j) total *= x->shape[j];
    for (int i = 0; i < d; ++i) {
        shape[i] = exprc_length(slots, s->params + 2 * i);
        if (shape[i] == -1 && unknown < 0) unknown = i;
        else known *= shape[i];
    }
    if (unknown >= 0 && known > 0 && total % known == 0) shape[unknown] = total / known;
    int64_t product = 1;
    for (int i = 0; i < d; ++i) product *= shape[i] < 0 ? -1 : shape[i];
    if (product != total) {
        char from[256], to[256];
        exprc_shape_text(from, sizeof from, x);
        exprc_lengths_text(to, sizeof to, d, shape);
        return exprc_op_error(s, message, size, "cannot reshape %s of shape %s into shape %s", xb->what, from, to);
    }
    int contiguous = 1;
    int64_t stride = xb->itemsize;
    for (int j = x->ndim - 1; j >= 0 && contiguous; --j) {
        if (x->shape[j] != 1 && x->strides[j] != stride) contiguous = 0;
        stride *= x->shape[j];
    }
    stride = xb->itemsize;
    for (int i = d - 1; i >= 0; --i) { strides[i] = stride; stride *= shape[i]; }
    if (contiguous || total == 0 || !run)
        return exprc_view_result(s, slots, run, shape, strides, x->data);
    /* not contiguous: NumPy copies too */
    exprc_array packed = *x;
    int rc = exprc_alloc(s, &packed, xb->itemsize, message, size);
    if (rc != EXPRC_OK) return rc;
    exprc_copy(&packed, x, xb->itemsize);
    const exprc_binding *ob = &s->buffers[s->nbuf - 1];
    rc = exprc_view_result(s, slots, run, shape, strides, packed.data);
    if (ob->temporary)
        slots[ob->slot].owned = 1;  /* the copy is the result's */
    else
        free(packed.data);
    return rc;
}

static int exprc_op_shape(const exprc_step *s, exprc_array *slots, int run)
{
    const exprc_binding *ob = &s->buffers[s->nbuf - 1];
    exprc_array *out = &slots[ob->slot];
    out->value = slots[s->buffers[0].slot].shape[s->params[0]];
    if (ob->temporary)
        out->data = (char *)&out->value;
    else if (run)
        memcpy(out->data, &out->value, sizeof out->value);
    return EXPRC_OK;
}

static int exprc_op_sum_to(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{
    const exprc_binding *xb = &s->buffers[0], *ob = &s->buffers[s->nbuf - 1];
    const exprc_array *x = &slots[xb->slot];
    exprc_array *out = &slots[ob->slot];
    const int d = x->ndim;
    int summed[EXPRC_MAXDIM + 1] = {0}, any = 0;
    for (int t = 0; t < s->nparams / 3; ++t) {
        const int axis = (int)s->params[3 * t];
        if (exprc_length(slots, s->params + 3 * t + 1) == 1 && x->shape[axis] != 1) summed[axis] = any = 1;
    }
    if (!any) return exprc_view_result(s, slots, run, x->shape, x->strides, x->data);
    int64_t shape[EXPRC_MAXDIM + 1];
    for (int j = 0; j < d; ++j) shape[j] = summed[j] ? 1 : x->shape[j];
    if (!run || ob->temporary) {
        for (int j = 0; j < d; ++j) out->shape[j] = shape[j];
        if (!run) return EXPRC_OK;
        const int rc = exprc_alloc(s, out, ob->itemsize, message, size);
        if (rc != EXPRC_OK) return rc;
    } else {
        for (int j = 0; j < d; ++j)
            if (out->shape[j] != shape[j]) return EXPRC_BAD_OUTPUT;
    }
    /* sums in double, one per result in C order (acc_strides: 0 on the summed axes) */
    int64_t elements = 1, acc_strides[EXPRC_MAXDIM + 1];
    for (int j = d - 1; j >= 0; --j) { acc_strides[j] = summed[j] ? 0 : elements; elements *= shape[j]; }
    double *acc = calloc(elements > 0 ? (size_t)elements : 1, sizeof(double));
    if (acc == NULL) return EXPRC_NO_MEMORY;
    int empty = 0;
    for (int j = 0; j < d; ++j) empty |= x->shape[j] == 0;
    int64_t index[EXPRC_MAXDIM + 1] = {0};
    const int64_t inner = x->shape[d - 1], xs = x->strides[d - 1], as = acc_strides[d - 1];
    while (!empty) {
        const char *f = x->data;
        double *a = acc;
        for (int j = 0; j < d - 1; ++j) { f += index[j] * x->strides[j]; a += index[j] * acc_strides[j]; }
        if (xb->itemsize == 4)
            for (int64_t i = 0; i < inner; ++i) a[i * as] += *(const float *)(f + i * xs);
        else
            for (int64_t i = 0; i < inner; ++i) a[i * as] += *(const double *)(f + i * xs);
        int j = d - 2;
        for (; j >= 0; --j) {
            if (++index[j] < x->shape[j]) break;
            index[j] = 0;
        }
        if (j < 0) break;
    }
    /* the results, in the output's own strides */
    for (int j = 0; j < d; ++j) index[j] = 0;
    for (int64_t e = 0; e < elements; ++e) {
        char *t = out->data;
        for (int j = 0; j < d; ++j) t += index[j] * out->strides[j];
        if (ob->itemsize == 4) *(float *)t = (float)acc[e];
        else *(double *)t = acc[e];
        for (int j = d - 1; j >= 0; --j) {
            if (++index[j] < shape[j]) break;
            index[j] = 0;
        }
    }
    free(acc);
    return EXPRC_OK;
}

/* NumPy's matmul of two float arrays of one dtype: the last two axes multiplied (a vector
   is one row on the left, one column on the right), the others broadcast. */
static int exprc_op_matmul(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{
    const exprc_binding *ab = &s->buffers[0], *bb = &s->buffers[1], *ob = &s->buffers[s->nbuf - 1];
    const exprc_array *a = &slots[ab->slot], *b = &slots[bb->slot];
    exprc_array *out = &slots[ob->slot];
    const int av = (int)s->params[0], bv = (int)s->params[1], item = ab->itemsize;
    const int na = a->ndim, nb = b->ndim;
    const int64_t m = av ? 1 : a->shape[na - 2], k = a->shape[na - 1];
    const int64_t kb = bv ? b->shape[0] : b->shape[nb - 2], n = bv ? 1 : b->shape[nb - 1];
    char as_text[256], bs_text[256];
    if (k != kb) {
        exprc_shape_text(as_text, sizeof as_text, a);
        exprc_shape_text(bs_text, sizeof bs_text, b);
        return exprc_op_error(s, message, size,
                              "matmul: the lengths multiplied together differ: %s %s has %lld along its last axis, "
                              "%s %s has %lld along its %s axis",
                              ab->what, as_text, (long long)k, bb->what, bs_text, (long long)kb,
                              bv ? "only" : "second-to-last");
    }
    const int batch = out->ndim - !av - !bv, a_batch = av ? 0 : na - 2, b_batch = bv ? 0 : nb - 2;
    int64_t shape[EXPRC_MAXDIM + 1];
    for (int i = 0; i < batch; ++i) {
        const int ia = i - (batch - a_batch), ib = i - (batch - b_batch);
        const int64_t la = ia >= 0 ? a->shape[ia] : 1, lb = ib >= 0 ? b->shape[ib] : 1;
        if (la != lb && la != 1 && lb != 1) {
            exprc_shape_text(as_text, sizeof as_text, a);
            exprc_shape_text(bs_text, sizeof bs_text, b);
            return exprc_op_error(s, message, size, "matmul: the batch axes do not broadcast: %s %s and %s %s",
                                  ab->what, as_text, bb->what, bs_text);
        }
        shape[i] = la == 1 ? lb : la;
    }
    int d = batch;
    if (!av) shape[d++] = m;
    if (!bv) shape[d++] = n;
    if (!run || ob->temporary) {
        for (int j = 0; j < d; ++j) out->shape[j] = shape[j];
        if (!run) return EXPRC_OK;
        const int rc = exprc_alloc(s, out, item, message, size);
        if (rc != EXPRC_OK) return rc;
    } else {
        for (int j = 0; j < d; ++j)
            if (out->shape[j] != shape[j]) return EXPRC_BAD_OUTPUT;
    }
    if (!exprc_blas_ready()) return EXPRC_FALLBACK;
    const int64_t ars = av ? 0 : a->strides[na - 2] / item, acs = a->strides[na - 1] / item;
    const int64_t brs = b->strides[bv ? 0 : nb - 2] / item, bcs = bv ? 0 : b->strides[nb - 1] / item;
    const int64_t crs = av ? 0 : out->strides[batch] / item, ccs = bv ? 0 : out->strides[d - 1] / item;
    for (int j = 0; j < na; ++j)
        if (a->strides[j] % item) return EXPRC_FALLBACK;
    for (int j = 0; j < nb; ++j)
        if (b->strides[j] % item) return EXPRC_FALLBACK;
    int64_t count = 1, index[EXPRC_MAXDIM + 1] = {0};
    for (int i = 0; i < batch; ++i) count *= shape[i];
    for (int64_t e = 0; e < count; ++e) {
        const char *pa = a->data, *pb = b->data;
        char *pc = out->data;
        for (int i = 0; i < batch; ++i) {
            const int ia = i - (batch - a_batch), ib = i - (batch - b_batch);
            if (ia >= 0 && a->shape[ia] != 1) pa += index[i] * a->strides[ia];
            if (ib >= 0 && b->shape[ib] != 1) pb += index[i] * b->strides[ib];
            pc += index[i] * out->strides[i];
        }
        if (exprc_gemm(item == 8, m, n, k, pa, ars, acs, pb, brs, bcs, pc, crs, ccs)) return EXPRC_NO_MEMORY;
        for (int i = batch - 1; i >= 0; --i) {
            if (++index[i] < shape[i]) break;
            index[i] = 0;
        }
    }
    return EXPRC_OK;
}

/* Runs (run = 1) or works out the result's shape of (run = 0) a step that is no kernel. */
static int exprc_op_run(const exprc_step *s, exprc_array *slots, int run, char *message, size_t size)
{
    switch (s->op) {
    case EXPRC_OP_DIMSHUFFLE: return exprc_op_dimshuffle(s, slots, run, message, size);
    case EXPRC_OP_BROADCAST: return exprc_op_broadcast(s, slots, run, message, size);
    case EXPRC_OP_RESHAPE: return exprc_op_reshape(s, slots, run, message, size);
    case EXPRC_OP_SHAPE: return exprc_op_shape(s, slots, run);
    case EXPRC_OP_SUM_TO: return exprc_op_sum_to(s, slots, run, message, size);
    case EXPRC_OP_MATMUL: return exprc_op_matmul(s, slots, run, message, size);
    default: return EXPRC_FALLBACK;
    }
}

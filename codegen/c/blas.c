/* ------------------------------------------------------------------------------
 * Matrix products: cblas ?gemm of the BLAS Python hands over (blas.py), single-threaded
 * per call, with large products split by blocks of output rows over exprc's pool, so
 * that one pool owns the cores.
 * ---------------------------------------------------------------------------- */
#include <stdlib.h>
#include <string.h>

/* cblas_?gemm with 64-bit integers (ILP64), as scipy-openblas64 exports them. */
typedef void (*exprc_sgemm_fn)(int order, int transa, int transb, int64_t m, int64_t n, int64_t k,
                               float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                               float beta, float *c, int64_t ldc);
typedef void (*exprc_dgemm_fn)(int order, int transa, int transb, int64_t m, int64_t n, int64_t k,
                               double alpha, const double *a, int64_t lda, const double *b, int64_t ldb,
                               double beta, double *c, int64_t ldc);
enum { EXPRC_ROW_MAJOR = 101, EXPRC_NO_TRANS = 111, EXPRC_TRANS = 112 };

static exprc_sgemm_fn exprc_blas_sgemm = NULL;
static exprc_dgemm_fn exprc_blas_dgemm = NULL;

/* Python sets the BLAS once, right after loading the run time. */
void exprc_set_blas(void *sgemm, void *dgemm)
{
    exprc_blas_sgemm = (exprc_sgemm_fn)sgemm;
    exprc_blas_dgemm = (exprc_dgemm_fn)dgemm;
}

int exprc_blas_ready(void)
{
    return exprc_blas_sgemm != NULL && exprc_blas_dgemm != NULL;
}

/* A product of at least this many multiply-adds is split over the pool: below it, waking
   the workers costs more than they save. */
#define EXPRC_GEMM_PARALLEL_MIN (1 << 21)
/* The fewest output rows one piece computes. */
#define EXPRC_GEMM_ROWS_MIN 32

/* One operand as gemm takes it: transposed or not, its leading dimension. */
typedef struct {
    const char *data;
    int trans;
    int64_t ld;
    int64_t row, col;                /* element strides, to find a block of rows */
} exprc_gemm_operand;

typedef struct {
    int dtype;                       /* 0: float32, 1: float64 */
    int64_t m, n, k, rows;           /* rows: output rows per piece */
    exprc_gemm_operand a, b;
    char *c;
    int64_t ldc;
} exprc_gemm_job;

static void exprc_gemm_block(const exprc_gemm_job *j, int64_t first, int64_t count)
{
    const int64_t size = j->dtype ? 8 : 4;
    const char *a = j->a.data + first * j->a.row * size;
    char *c = j->c + first * j->ldc * size;
    const int ta = j->a.trans ? EXPRC_TRANS : EXPRC_NO_TRANS, tb = j->b.trans ? EXPRC_TRANS : EXPRC_NO_TRANS;
    if (j->dtype)
        exprc_blas_dgemm(EXPRC_ROW_MAJOR, ta, tb, count, j->n, j->k, 1.0, (const double *)a, j->a.ld,
                         (const double *)j->b.data, j->b.ld, 0.0, (double *)c, j->ldc);
    else
        exprc_blas_sgemm(EXPRC_ROW_MAJOR, ta, tb, count, j->n, j->k, 1.0f, (const float *)a, j->a.ld,
                         (const float *)j->b.data, j->b.ld, 0.0f, (float *)c, j->ldc);
}

static void exprc_gemm_task(void *context, int64_t piece)
{
    const exprc_gemm_job *j = context;
    const int64_t first = piece * j->rows;
    exprc_gemm_block(j, first, first + j->rows < j->m ? j->rows : j->m - first);
}

/* Whether an (r x c) operand with element strides (rs, cs) can go to gemm as it is; sets
   its transposition and leading dimension. */
static int exprc_gemm_fits(exprc_gemm_operand *o, int64_t r, int64_t c, int64_t rs, int64_t cs)
{
    const int64_t rmin = r > 1 ? r : 1, cmin = c > 1 ? c : 1;
    if ((c <= 1 || cs == 1) && (r <= 1 || rs >= cmin)) {  /* rows of contiguous elements */
        o->trans = 0, o->ld = r <= 1 ? cmin : rs;
        return 1;
    }
    if ((r <= 1 || rs == 1) && (c <= 1 || cs >= rmin)) {  /* columns of contiguous elements */
        o->trans = 1, o->ld = c <= 1 ? rmin : cs;
        return 1;
    }
    return 0;
}

/* Copies an (r x c) matrix of element strides (rs, cs) into contiguous rows. */
static void exprc_gemm_pack(char *to, const char *from, int64_t r, int64_t c, int64_t rs, int64_t cs, int64_t size)
{
    for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j)
            memcpy(to + (i * c + j) * size, from + (i * rs + j * cs) * size, (size_t)size);
}

/* C (m x n, strides crs, ccs) = A (m x k, strides ars, acs) B (k x n, strides brs, bcs), all
   strides in elements; dtype 0 float32, 1 float64. Nonzero: out of memory. */
int exprc_gemm(int dtype, int64_t m, int64_t n, int64_t k, const char *a, int64_t ars, int64_t acs,
               const char *b, int64_t brs, int64_t bcs, char *c, int64_t crs, int64_t ccs)
{
    const int64_t size = dtype ? 8 : 4;
    if (m == 0 || n == 0) return 0;
    if (k == 0) {  /* an empty sum: zeros */
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) memset(c + (i * crs + j * ccs) * size, 0, (size_t)size);
        return 0;
    }
    exprc_gemm_job job = {.dtype = dtype, .m = m, .n = n, .k = k};
    char *packed_a = NULL, *packed_b = NULL, *packed_c = NULL;
    if (!exprc_gemm_fits(&job.a, m, k, ars, acs)) {
        packed_a = malloc((size_t)(m * k * size));
        if (packed_a == NULL) return 1;
        exprc_gemm_pack(packed_a, a, m, k, ars, acs, size);
        a = packed_a, ars = k, acs = 1;
        exprc_gemm_fits(&job.a, m, k, ars, acs);
    }
    if (!exprc_gemm_fits(&job.b, k, n, brs, bcs)) {
        packed_b = malloc((size_t)(k * n * size));
        if (packed_b == NULL) { free(packed_a); return 1; }
        exprc_gemm_pack(packed_b, b, k, n, brs, bcs, size);
        b = packed_b, brs = n, bcs = 1;
        exprc_gemm_fits(&job.b, k, n, brs, bcs);
    }
    job.a.data = a, job.a.row = m > 1 ? ars : 0;
    job.b.data = b;
    exprc_gemm_operand out;
    if (exprc_gemm_fits(&out, m, n, crs, ccs) && !out.trans) {
        job.c = c, job.ldc = out.ld;
    } else {
        packed_c = malloc((size_t)(m * n * size));
        if (packed_c == NULL) { free(packed_a); free(packed_b); return 1; }
        job.c = packed_c, job.ldc = n;
    }
    const int64_t work = m * n * k;
    int64_t pieces = 1;
    if (work >= EXPRC_GEMM_PARALLEL_MIN && m >= 2 * EXPRC_GEMM_ROWS_MIN) {
        pieces = m / EXPRC_GEMM_ROWS_MIN;
        if (pieces > 64) pieces = 64;
    }
    job.rows = (m + pieces - 1) / pieces;
    pieces = (m + job.rows - 1) / job.rows;
    if (pieces > 1)
        exprc_pool_parallel(exprc_gemm_task, &job, pieces);
    else
        exprc_gemm_block(&job, 0, m);
    if (packed_c != NULL) {
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j)
                memcpy(c + (i * crs + j * ccs) * size, packed_c + (i * n + j) * size, (size_t)size);
    }
    free(packed_a);
    free(packed_b);
    free(packed_c);
    return 0;
}

"""The C run time: the thread pool and the entry points' arrays, broadcasting and kernel calls.

It is one shared library per compiler and cache (:func:`runtime_source`), loaded once per
process; a program is bound to it right after it is loaded, through the table of function
pointers it exports (``exprc_runtime`` in ``pool.h``), and links nothing of it. An entry
point (:mod:`exprc.codegen.c.entry`) runs a segment's kernels on *slots*, one
:c:type:`exprc_array` per array, through :c:func:`exprc_step_run` and a static table per
kernel. The C text is ``pool.h``, ``pool.c``, ``runtime.h`` and ``runtime.c``.
See docs/internals/c-call-path.md.

>>> "exprc_step_run_r8" in runtime_source(2, 16), "exprc_step_run" in runtime_header(2, 16)
(True, False)
"""

import re
from functools import cache

from exprc.codegen.cfamily import templates

RETURN_CODES = {"OK": 0, "SHAPE_ERROR": 1, "FALLBACK": 2, "NO_MEMORY": 3, "BAD_OUTPUT": 4, "TOO_BIG": 5}

#: The run time's C: declarations (``@EXPRC_...@`` filled in), then functions.
_HEADER = templates.read(__package__, "runtime.h").strip("\n")
_BODY = templates.read(__package__, "runtime.c").strip("\n")
_POOL_HEADER = templates.read(__package__, "pool.h").strip("\n")
_POOL = templates.read(__package__, "pool.c").strip("\n")
_BLAS = templates.read(__package__, "blas.c").strip("\n")
_OPS = templates.read(__package__, "ops.c").strip("\n")

#: NumPy's largest rank (NPY_MAXDIMS): a program may have arrays of up to this many axes.
MAX_RANK = 64

#: The ranks the run time's entry points are compiled for: a program uses the smallest that
#: covers its arrays, so the common one keeps its per-array records (and what a call clears
#: of them) small. The run-time library has them all.
RUNTIME_RANKS = (8, MAX_RANK)

#: Where the declarations that depend on the rank start in ``runtime.h``.
_RANKED = "/* @RANKED@"

#: Names the run time's text per rank keeps (the pool's, shared by every rank).
_SHARED_NAMES = {
    "exprc_pool_rest",
    "exprc_task",
    "exprc_runtime",
    "exprc_pool_parallel",
    "exprc_gemm",
    "exprc_blas_ready",
}

#: The entry points as a program calls them: through the table it is bound to.
_PROGRAM_CALLS = """\
/* The run time's entry points for this rank, through the table the program is bound to. */
static inline int exprc_segment_shapes(const exprc_segment *g, const int64_t *shapes, int64_t *out_shapes,
                                       char *message, size_t size)
{
    return exprc_rt->segment_shapes[EXPRC_RANK_INDEX](g, shapes, out_shapes, message, size);
}
static inline int exprc_segment_pointers(const exprc_segment *g, void *const *data, const int64_t *shapes,
                                         const int64_t *strides)
{
    return exprc_rt->segment_pointers[EXPRC_RANK_INDEX](g, data, shapes, strides);
}
static inline int exprc_segment_numpy(const exprc_segment *g, const intptr_t *objects, const intptr_t *dtypes)
{
    return exprc_rt->segment_numpy[EXPRC_RANK_INDEX](g, objects, dtypes);
}"""


def runtime_rank(maxdim):
    """The :data:`RUNTIME_RANKS` entry for a program whose arrays have at most ``maxdim`` axes.

    >>> runtime_rank(3), runtime_rank(9)
    (8, 64)
    """
    if maxdim > MAX_RANK:
        raise ValueError(f"arrays of {maxdim} axes: NumPy allows at most {MAX_RANK}")
    return next(r for r in RUNTIME_RANKS if r >= maxdim)


def pool_header():
    """``pool.h``: the job type and the run-time table, as programs and the run time declare them."""
    return templates.fill(_POOL_HEADER, EXPRC_NRANKS=len(RUNTIME_RANKS))


def _shared_and_ranked(object_head):
    header = templates.fill(_HEADER, EXPRC_OBJECT_HEAD=int(object_head))
    cut = header.index(_RANKED)
    return header[:cut].rstrip("\n"), header[cut:]


def runtime_header(maxdim, object_head):
    """The declarations a program shares with the run time (types, return codes, entry
    points), for arrays of at most ``maxdim`` axes and a Python whose object header is
    ``object_head`` bytes (``object.__basicsize__``)."""
    rank = runtime_rank(maxdim)
    shared, ranked = _shared_and_ranked(object_head)
    lines = [f"#define EXPRC_MAXDIM {rank}", f"#define EXPRC_RANK_INDEX {RUNTIME_RANKS.index(rank)}"]
    return "\n\n".join([shared, "\n".join(lines), ranked, _PROGRAM_CALLS])


def _ranked_text(text, rank):
    """``text`` with every ``exprc_`` name but the pool's suffixed ``_r{rank}``: the run time
    holds it once per rank in one translation unit."""
    return re.sub(r"\bexprc_\w+", lambda m: m[0] if m[0] in _SHARED_NAMES else f"{m[0]}_r{rank}", text)


def runtime_source(maxdim=1, object_head=None):
    """The run-time library's source: the pool, the entry points' run time for every rank of
    :data:`RUNTIME_RANKS`, and the table of them it exports (``exprc_runtime_table``). It
    is the same for every program (``maxdim`` only checks the program's rank); see
    :func:`runtime_header` for what a program declares of it."""
    if object_head is None:
        object_head = object.__basicsize__
    runtime_rank(maxdim)
    return _runtime_source(int(object_head))


@cache
def _runtime_source(object_head):
    """:func:`runtime_source`, made once per process: every program load needs it (its
    digest is part of the program's key), and making it takes milliseconds."""
    shared, ranked = _shared_and_ranked(object_head)
    parts = ["#define _GNU_SOURCE", pool_header(), shared, _POOL, _BLAS]
    body = _BODY.replace("@OPS@", _OPS)
    table = {"segment_shapes": [], "segment_pointers": [], "segment_numpy": []}
    for rank in RUNTIME_RANKS:
        parts.append(f"/* ---- the entry points' run time for arrays of up to {rank} axes ---- */")
        parts.append(f"#define EXPRC_MAXDIM {rank}\n{_ranked_text(ranked + chr(10) * 2 + body, rank)}")
        parts.append(_TABLE_ENTRIES.format(r=rank))
        parts.append("#undef EXPRC_MAXDIM")
        for name in table:
            table[name].append(f"exprc_{name}_any_r{rank}")
    fields = "\n".join(f"    .{name} = {{{', '.join(values)}}}," for name, values in table.items())
    parts.append(_TABLE.format(fields=fields))
    return "\n\n".join(parts) + "\n"


_TABLE_ENTRIES = """\
static int exprc_segment_shapes_any_r{r}(const void *g, const int64_t *shapes, int64_t *out_shapes,
                                        char *message, size_t size)
{{
    return exprc_segment_shapes_r{r}(g, shapes, out_shapes, message, size);
}}
static int exprc_segment_pointers_any_r{r}(const void *g, void *const *data, const int64_t *shapes,
                                          const int64_t *strides)
{{
    return exprc_segment_pointers_r{r}(g, data, shapes, strides);
}}
static int exprc_segment_numpy_any_r{r}(const void *g, const intptr_t *objects, const intptr_t *dtypes)
{{
    return exprc_segment_numpy_r{r}(g, objects, dtypes);
}}"""

_TABLE = """\
/* What a program is bound to (exprc_bind_runtime in its prelude). */
static const exprc_runtime exprc_runtime_functions = {{
    .abi = EXPRC_RUNTIME_ABI,
    .size = sizeof(exprc_runtime),
    .parallel = exprc_pool_parallel,
{fields}
}};

const exprc_runtime *exprc_runtime_table(void)
{{
    return &exprc_runtime_functions;
}}"""

#: The functions the run-time library exports to Python (cffi) and to threadpoolctl (ctypes).
RUNTIME_CDEF = """\
const void *exprc_runtime_table(void);
int exprc_get_num_threads(void);
void exprc_set_num_threads(int n);
void exprc_pool_rest(void);
int exprc_pool_workers(void);
void exprc_set_blas(void *sgemm, void *dgemm);
int exprc_blas_ready(void);
"""

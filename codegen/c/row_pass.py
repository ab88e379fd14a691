"""Rendering a row pass (:class:`~exprc.codegen.ir.kernel.RowPassKernel`) as C.

A row pass ``kN_rowpass_…`` becomes a function running one block of rows (:func:`support`
has the loops of ``X @ w``) and an entry point running the blocks on the thread pool and
adding their partial results in block order; the blocks depend on the number of rows only,
so results do not depend on the number of threads.
See docs/internals/row-passes.md.
"""

from exprc.codegen.c.loops import CKernelRenderer
from exprc.codegen.cfamily.formulas import C_TYPES, dtype_class
from exprc.codegen.cfamily.renderer import INDENT, Writer, all_exprs, block_comment, comment
from exprc.codegen.ir import kernel as ir

#: A row pass splits its rows into at most this many blocks ...
MAX_BLOCKS = 64
#: ... of at least this many rows: the blocks' partial results stay small next to X.
BLOCK_ROWS = 64
#: The rows of a chunk take at most this many bytes of X (they are read twice: L1 holds them).
CHUNK_BYTES = 32768
#: And a chunk has at most this many rows (per-row values of a chunk live on the stack).
CHUNK_ROWS = 64

_SUPPORT = """\
#include <stdlib.h>

/* Row passes (see codegen/c/row_pass.py): block "block" of "nblocks" has the rows
   [first, last) of 0..count, the first count % nblocks blocks one row more. */
static inline void exprc_block_rows(int64_t count, int64_t nblocks, int64_t block, int64_t *first, int64_t *last)
{{
    const int64_t q = count / nblocks, r = count % nblocks;
    *first = q * block + (block < r ? block : r);
    *last = *first + q + (block < r ? 1 : 0);
}}

/* The number of blocks of a row pass over n rows: it depends on n only, so that the blocks'
   partial results are added in the same order on any number of threads. */
static inline int64_t exprc_row_blocks(int64_t n)
{{
    const int64_t blocks = (n + {block_rows} - 1) / {block_rows};
    return blocks < {max_blocks} ? blocks : {max_blocks};
}}

/* Rows per chunk for rows of n1 items of itemsize bytes: a multiple of 4, at least 4. */
#define EXPRC_CHUNK_BYTES {chunk_bytes}
#define EXPRC_CHUNK_ROWS {chunk_rows}
static inline int64_t exprc_chunk_rows(int64_t n1, int64_t itemsize)
{{
    const int64_t bytes = n1 * itemsize, rows = bytes > 0 ? EXPRC_CHUNK_BYTES / bytes : EXPRC_CHUNK_ROWS;
    return rows >= EXPRC_CHUNK_ROWS ? EXPRC_CHUNK_ROWS : (rows < 4 ? 4 : rows & ~(int64_t)3);
}}"""

#: ``a * b + c`` with one rounding where the processor fuses them (C99's ``FP_FAST_FMA``), as
#: BLAS computes its products: half the floating-point instructions of the row dots and axpys.
_MULTIPLY_ADD = {"float64": ("FP_FAST_FMA", "fma"), "float32": ("FP_FAST_FMAF", "fmaf")}

_DTYPE_SUPPORT = """\
/* a * b + c in {T}: one rounding where the processor fuses them, as BLAS's products do */
#ifdef {fast}
#define EXPRC_MULADD_{S}(a, b, c) {fma}(a, b, c)
#else
#define EXPRC_MULADD_{S}(a, b, c) ((a) * (b) + (c))
#endif

/* out[r] = X[r, :] @ w for the m rows at x (strides xs0, xs1 in items; w's stride ws), four
   rows at a time where the rows and w are consecutive: one load of w serves four rows, and
   four sums are under way at once; a column at a time where the columns are. */
static void exprc_row_dots_{S}(const {T} *x, int64_t xs0, int64_t xs1, const {T} *w, int64_t ws,
                               int64_t n1, int64_t m, {T} *restrict out)
{{
    int64_t r = 0;
    if (xs1 == 1 && ws == 1) {{
        for (; r + 4 <= m; r += 4) {{
            const {T} *x0 = x + r * xs0, *x1 = x0 + xs0, *x2 = x1 + xs0, *x3 = x2 + xs0;
            {T} a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            #pragma omp simd reduction(+:a0, a1, a2, a3)
            for (int64_t j = 0; j < n1; ++j) {{
                const {T} wj = w[j];
                a0 = EXPRC_MULADD_{S}(x0[j], wj, a0);
                a1 = EXPRC_MULADD_{S}(x1[j], wj, a1);
                a2 = EXPRC_MULADD_{S}(x2[j], wj, a2);
                a3 = EXPRC_MULADD_{S}(x3[j], wj, a3);
            }}
            out[r] = a0; out[r + 1] = a1; out[r + 2] = a2; out[r + 3] = a3;
        }}
    }} else if (xs0 == 1) {{
        /* the rows are consecutive down each column (X in Fortran order): a column at a time */
        for (; r < m; ++r)
            out[r] = 0;
        for (int64_t j = 0; j < n1; ++j) {{
            const {T} *xj = x + j * xs1, wj = w[j * ws];
            #pragma omp simd
            for (int64_t i = 0; i < m; ++i)
                out[i] = EXPRC_MULADD_{S}(xj[i], wj, out[i]);
        }}
    }}
    for (; r < m; ++r) {{
        const {T} *xr = x + r * xs0;
        {T} a = 0;
        #pragma omp simd reduction(+:a)
        for (int64_t j = 0; j < n1; ++j)
            a = EXPRC_MULADD_{S}(xr[j * xs1], w[j * ws], a);
        out[r] = a;
    }}
}}

/* acc[j] += g[r] * X[r, j] for the m rows at x, added in row order; four rows per pass over
   acc where the rows are consecutive (the same sums, a quarter of the loads and stores of acc);
   a column at a time, the column's sum added to acc, where the columns are. */
static void exprc_row_axpys_{S}({T} *restrict acc, const {T} *x, int64_t xs0, int64_t xs1, const {T} *g,
                                int64_t n1, int64_t m)
{{
    int64_t r = 0;
    if (xs1 == 1) {{
        for (; r + 4 <= m; r += 4) {{
            const {T} *x0 = x + r * xs0, *x1 = x0 + xs0, *x2 = x1 + xs0, *x3 = x2 + xs0;
            const {T} g0 = g[r], g1 = g[r + 1], g2 = g[r + 2], g3 = g[r + 3];
            #pragma omp simd
            for (int64_t j = 0; j < n1; ++j)
                acc[j] = EXPRC_MULADD_{S}(g3, x3[j], EXPRC_MULADD_{S}(g2, x2[j],
                         EXPRC_MULADD_{S}(g1, x1[j], EXPRC_MULADD_{S}(g0, x0[j], acc[j]))));
        }}
    }} else if (xs0 == 1) {{
        /* the rows are consecutive down each column: a column at a time */
        for (int64_t j = 0; j < n1; ++j) {{
            const {T} *xj = x + j * xs1;
            {T} a = 0;
            #pragma omp simd reduction(+:a)
            for (int64_t i = 0; i < m; ++i)
                a = EXPRC_MULADD_{S}(g[i], xj[i], a);
            acc[j] += a;
        }}
        return;
    }}
    for (; r < m; ++r) {{
        const {T} *xr = x + r * xs0;
        const {T} gr = g[r];
        #pragma omp simd
        for (int64_t j = 0; j < n1; ++j)
            acc[j] = EXPRC_MULADD_{S}(gr, xr[j * xs1], acc[j]);
    }}
}}"""

#: Where an expression is computed: once before the pass, per row, once after it, per column.
INVARIANT, ROW, AFTER, COLUMN = 0, 1, 2, 3


def support(kernels):
    """The C the row passes among ``kernels`` share (blocks, chunks, and the loops over rows for
    each dtype they use); empty when there are none."""
    dtypes = sorted({k.matrix.dtype for k in kernels if isinstance(k, ir.RowPassKernel)})
    if not dtypes:
        return []
    parts = [
        _SUPPORT.format(block_rows=BLOCK_ROWS, max_blocks=MAX_BLOCKS, chunk_bytes=CHUNK_BYTES, chunk_rows=CHUNK_ROWS)
    ]
    parts += [
        _DTYPE_SUPPORT.format(S=d, T=C_TYPES[d], fast=_MULTIPLY_ADD[d][0], fma=_MULTIPLY_ADD[d][1]) for d in dtypes
    ]
    return parts


def render_row_pass(kernel, name=None):
    """The C functions computing row pass ``kernel`` (entry point named ``name``, by default
    the kernel's)."""
    return _RowPassRenderer(kernel, name).render()


class _RowPassRenderer(CKernelRenderer):
    def __init__(self, kernel, name=None):
        super().__init__(kernel, name)
        self.sum_index = {id(r): n for n, r in enumerate(kernel.sums)}
        self.contraction_index = {id(c): n for n, c in enumerate(kernel.contractions)}
        self.ctype = C_TYPES[kernel.matrix.dtype]
        self.levels = {}

    # --- where each expression goes ------------------------------------------------------
    def where(self, expr):
        key = id(expr)
        if key in self.levels:
            return self.levels[key]
        if isinstance(expr, (ir.Const, ir.Extent)):
            level = INVARIANT
        elif isinstance(expr, ir.RowDot):
            level = ROW
        elif isinstance(expr, ir.Load):
            level = {"scalar": INVARIANT, "row": ROW, "column": COLUMN}[self.k.walks[expr.buffer.name]]
        elif isinstance(expr, ir.Acc):
            level = AFTER if id(expr.of) in self.sum_index else COLUMN
        else:
            found = {self.where(a) for a in expr.args}
            if ROW in found and found & {AFTER, COLUMN}:
                raise ValueError(f"{self.k.name}: {expr.note} mixes per-row values with results of the pass")
            level = max(found, default=INVARIANT)
        self.levels[key] = level
        return level

    def gather(self, roots, level):
        """The expressions ``roots`` need at ``level``, and the invariants they need, in order."""
        exprs = ir.walk(roots)
        return ([e for e in exprs if self.where(e) == INVARIANT], [e for e in exprs if self.where(e) == level])

    # --- statements --------------------------------------------------------------------
    def name(self, expr):
        if isinstance(expr, ir.Acc) and id(expr) not in self.names:
            self.names[id(expr)] = f"v{self.counter}"  # several results: not all "result"
            self.counter += 1
        return super().name(expr)

    def statement(self, expr, index):
        ctype = C_TYPES[expr.dtype]
        name = self.name(expr)
        if isinstance(expr, ir.RowDot):
            rhs = "rowdot[row]"
        elif isinstance(expr, ir.Extent):
            rhs = f"n{expr.axis}"
        elif isinstance(expr, ir.Acc):
            if id(expr.of) in self.sum_index:
                rhs = f"({ctype})sum{self.sum_index[id(expr.of)]}"
            else:
                rhs = f"part{self.contraction_index[id(expr.of)]}"
        else:
            return super().statement(expr, index)
        return f"const {ctype} {name} = {rhs};{comment(expr.note)}"

    def index(self, buffer):
        walks = self.k.walks[buffer.name]
        return {"row": f"i * {buffer.name}_s0", "column": f"col * {buffer.name}_s1"}.get(walks, "0")

    def stores(self, w, walks):
        for buffer, expr in self.k.stores:
            if self.k.walks[buffer.name] == walks:
                w.line(f"{buffer.name}[{self.index(buffer)}] = {self.name(expr)};")

    # --- the functions -----------------------------------------------------------------
    def render(self):
        w = Writer()
        w.lines.extend(self.header())
        self.block_function(w)
        w.line()
        self.entry(w)
        return "\n".join(w.lines)

    def header(self):
        k = self.k
        lines = [k.name, ""]
        if k.note:
            lines.append(f"computes {k.note}")
        if k.computes:
            lines.append("fusing:")
            lines.extend(f"    {c}" for c in k.computes)
        lines.append(f"index space: n0 rows and n1 columns of {k.matrix.name}")
        lines.append(f"per row: {k.matrix.name}[i, :] @ {k.vector.name}, accumulating in {k.matrix.dtype}")
        for n, r in enumerate(k.sums):
            lines.append(f"sum{n}: {r.note}, over the rows, accumulating in {r.acc_dtype}")
        for n, c in enumerate(k.contractions):
            lines.append(f"part{n}: {c.note}, over the rows, accumulating in {c.dtype}")
        role = {"matrix": "the matrix (row, column)", "row": "per row", "column": "per column", "scalar": "scalar"}
        for b in k.buffers:
            lines.append(f"{'writes' if b.output else 'reads '} {b.name}: {b.dtype}, {role[k.walks[b.name]]}")
        return block_comment([line.replace("*/", "* /") for line in lines]).splitlines()

    def block_function(self, w):
        k, fn, T = self.k, self.fn, self.ctype
        ns, nc = len(k.sums), len(k.contractions)
        row_stores = [e for b, e in k.stores if k.walks[b.name] == "row"]
        roots = [r.value for r in k.sums] + [c.value for c in k.contractions] + row_stores
        invariants, body = self.gather(roots, ROW)
        X, v = k.matrix.name, k.vector.name
        w.line(f'/* the rows of block "blk" of "nblocks": their partial sums into sums[0..{ns}), their')
        w.line(f"   partial products into columns[p * n1 + col] for the {nc} product(s) p */")
        w.open(
            f"static EXPRC_ONCE void {fn}_block(const int64_t *args, int64_t blk, int64_t nblocks, "
            f"double *restrict sums, {T} *restrict columns)"
        )
        self.unpack(w)
        self.invariants(w, invariants)
        w.line("int64_t first, last;")
        w.line("exprc_block_rows(n0, nblocks, blk, &first, &last);")
        for n, c in enumerate(k.contractions):
            w.line(f"{T} *restrict part{n} = columns + {n} * n1;{comment('accumulates ' + c.note)}")
        if nc:
            w.open("for (int64_t col = 0; col < n1; ++col)")
            w.line(" ".join(f"part{n}[col] = 0;" for n in range(nc)))
            w.close()
        for n, r in enumerate(k.sums):
            w.line(f"double sum{n} = 0;{comment('accumulates ' + r.note)}")
        w.line(f"const int64_t chunk = exprc_chunk_rows(n1, sizeof({T}));")
        w.open("for (int64_t start = first; start < last; start += chunk)")
        w.line("const int64_t rows_in_chunk = last - start < chunk ? last - start : chunk;")
        w.line(f"const {T} *xc = {X} + start * {X}_s0;  /* the chunk's first row */")
        w.line(f"{T} rowdot[EXPRC_CHUNK_ROWS];  /* {X} @ {v}, one per row of the chunk */")
        for n in range(len(k.contractions)):
            w.line(f"{T} weight{n}[EXPRC_CHUNK_ROWS];{comment('per row: what part' + str(n) + ' adds up')}")
        w.line(f"exprc_row_dots_{k.matrix.dtype}(xc, {X}_s0, {X}_s1, {v}, {v}_s1, n1, rows_in_chunk, rowdot);")
        clause = f" reduction(+:{', '.join(f'sum{n}' for n in range(ns))})" if ns else ""
        w.line(f"#pragma omp simd{clause}")
        w.open("for (int64_t row = 0; row < rows_in_chunk; ++row)")
        w.line("const int64_t i = start + row;")
        w.line("(void)i;")
        self.emit(w, body, self.index)
        for n, r in enumerate(k.sums):
            w.line(f"sum{n} += (double){self.name(r.value)};")
        for n, c in enumerate(k.contractions):
            w.line(f"weight{n}[row] = {self.name(c.value)};")
        self.stores(w, "row")
        w.close()
        for n in range(nc):
            w.line(f"exprc_row_axpys_{k.matrix.dtype}(part{n}, xc, {X}_s0, {X}_s1, weight{n}, n1, rows_in_chunk);")
        w.close()
        for n in range(ns):
            w.line(f"sums[{n}] = sum{n};")
        w.close()

    def entry(self, w):
        k, fn, T = self.k, self.fn, self.ctype
        ns, nc = len(k.sums), len(k.contractions)
        w.line(f'/* block "blk" of {fn}\'s blocks, as a piece of a job on the pool */')
        w.open("typedef struct")
        w.line("const int64_t *args;")
        w.line("int64_t nblocks;")
        w.line("double *sums;")
        w.line(f"{T} *columns;")
        w.line("int64_t n1;")
        w.close(f"}} {fn}_job;")
        w.open(f"static void {fn}_task(void *context, int64_t blk)")
        w.line(f"const {fn}_job *job = context;")
        w.line(
            f"{fn}_block(job->args, blk, job->nblocks, job->sums + blk * {ns}, job->columns + blk * {nc} * job->n1);"
        )
        w.close()
        w.line()
        once = [e for b, e in k.stores if k.walks[b.name] == "scalar"]
        per_column = [e for b, e in k.stores if k.walks[b.name] == "column"]
        invariants, after = self.gather(once + per_column, AFTER)
        _, column = self.gather(per_column, COLUMN)
        w.open(f"int {fn}(const int64_t *args)")
        self.unpack(w)
        self.invariants(w, invariants)
        w.line("const int64_t nblocks = exprc_row_blocks(n0);")
        w.line("/* per block: its partial sums, then its partial products (n1 each) */")
        w.line(
            f"char *scratch = malloc((size_t)nblocks * ({ns} * sizeof(double) + {nc} * (size_t)n1 * sizeof({T})) + 1);"
        )
        w.line("if (scratch == NULL)")
        w.line(INDENT + "return 1;  /* out of memory */")
        w.line("double *sums = (double *)scratch;")
        w.line(f"{T} *columns = ({T} *)(scratch + (size_t)nblocks * {ns} * sizeof(double));")
        w.line("/* the blocks on the pool; the results are the same whichever thread runs a block */")
        w.line(f"{fn}_job job = {{args, nblocks, sums, columns, n1}};")
        w.line(f"exprc_parallel({fn}_task, &job, nblocks, size);")
        if ns:
            w.line("/* the blocks' partial sums, added in block order */")
            for n, r in enumerate(k.sums):
                w.line(f"double sum{n} = 0;{comment(r.note)}")
            w.open("for (int64_t blk = 0; blk < nblocks; ++blk)")
            w.line(" ".join(f"sum{n} += sums[blk * {ns} + {n}];" for n in range(ns)))
            w.close()
        self.emit(w, after, self.index)
        self.stores(w, "scalar")
        if per_column:
            w.line("/* per column: the blocks' partial products added in block order, then the epilogue */")
            w.line("#pragma omp simd")
            w.open("for (int64_t col = 0; col < n1; ++col)")
            w.line(f"{T} " + ", ".join(f"part{n} = 0" for n in range(nc)) + ";")
            w.open("for (int64_t blk = 0; blk < nblocks; ++blk)")
            w.line(" ".join(f"part{n} += columns[(blk * {nc} + {n}) * n1 + col];" for n in range(nc)))
            w.close()
            self.emit(w, column, self.index)
            self.stores(w, "column")
            w.close()
        w.line("free(scratch);")
        w.line("return 0;")
        w.close()


# --- row chains -----------------------------------------------------------------------------


def render_row_chain(kernel, name=None):
    """The C functions computing row chain ``kernel`` (a
    :class:`~exprc.codegen.ir.kernel.RowChainKernel`), with the argument layout of a loop-nest
    kernel of the same buffers: per row, each reduction in turn over the row, then the row's
    elementwise results, so that a row is read from memory once and from cache after that."""
    return _RowChainRenderer(kernel, name).render()


class _RowChainRenderer(CKernelRenderer):
    def __init__(self, kernel, name=None):
        super().__init__(kernel, name)
        self.kept = kernel.kept
        self.stage = {id(r): n for n, r in enumerate(kernel.reductions)}
        self.per_element_memo = {}
        self.block = False  # writing the loops over a block of short rows

    def name(self, expr):
        if isinstance(expr, ir.Acc) and id(expr) not in self.names:
            self.names[id(expr)] = f"result{self.stage[id(expr.of)]}"
        return super().name(expr)

    def statement(self, expr, index):
        if isinstance(expr, ir.Acc):
            red, n = expr.of, self.stage[id(expr.of)]
            ctype = C_TYPES[expr.dtype]
            at = "[j]" if self.block else ""
            rhs = f"({ctype})acc{n}{at}"
            if red.op in ("max", "min") and dtype_class(red.dtype) == "f":
                rhs = f"nan_seen{n}{at} ? NAN : {rhs}"
            return f"const {ctype} {self.name(expr)} = {rhs};{comment(expr.note)}"
        return super().statement(expr, index)

    def per_element(self, expr):
        """Whether ``expr`` reads a buffer at every index of the row (not once per row)."""
        memo = self.per_element_memo
        if id(expr) not in memo:
            if isinstance(expr, ir.Load):
                memo[id(expr)] = bool(expr.buffer.ndim) and not expr.buffer.outer
            else:
                memo[id(expr)] = any(self.per_element(a) for a in expr.args)
        return memo[id(expr)]

    def emit_needed(self, w, roots, done, element, index):
        """Declare the nodes of ``roots`` not in ``done`` that are per element (or per row)."""
        todo = [e for e in ir.walk(roots) if id(e) not in done and self.per_element(e) == element]
        done.update(id(e) for e in todo)
        self.emit(w, todo, index)

    def header(self):
        lines = super().header()
        reductions = [
            f" * reduction {n}: {r.op} over the last {r.naxes} axes, accumulating in {r.acc_dtype}"
            for n, r in enumerate(self.k.reductions)
        ]
        return lines[:-1] + reductions + lines[-1:] if len(lines) > 1 else lines

    def over_row(self, w, roots, finish, pragma, given=None):
        """Loops over the elements of the row computing ``roots``, then ``finish(index)``; the
        innermost loop has ``pragma`` (a SIMD reduction, or none: one element after the other).
        ``given``: an expression read back from the buffer it was stored in, not computed."""
        d = self.d
        for a in range(self.kept, d - 1):
            w.open(f"for (int64_t i{a} = 0; i{a} < n{a}; ++i{a})")

        def body(index):
            done = set()
            if given is not None:
                value, buffer = given
                w.line(f"const {C_TYPES[value.dtype]} {self.name(value)} = {buffer.name}[{index(buffer)}];")
                done.add(id(value))
            self.emit(w, [e for e in ir.walk(roots, done) if self.per_element(e)], index)
            finish(index)

        self.inner_loop(w, (pragma, f"for (int64_t i{d - 1} = 0; i{d - 1} < n{d - 1}; ++i{d - 1})"), body)
        for _ in range(self.kept, d - 1):
            w.close()

    def kept_value(self):
        """``(value, buffer)``: the costliest per-element value of the last reduction that the
        only elementwise result also uses (a softmax's ``exp(x - max)``), to store in that
        result's buffer while reducing and read back after (in cache) instead of computing it
        twice; or None."""
        full = [(b, e) for b, e in self.k.stores if not b.outer]
        if len(full) != 1 or not self.k.reductions:
            return None
        (buffer, expr) = full[0]
        reduced = {id(e) for e in ir.walk([self.k.reductions[-1].value]) if self.per_element(e)}
        shared = [e for e in ir.walk([expr]) if id(e) in reduced and isinstance(e, ir.Call) and e is not expr]
        if not shared or shared[-1].dtype != buffer.dtype:
            return None
        return shared[-1], buffer

    def reduce(self, w, n, red, index):
        """Reduction ``n`` over the row into ``acc{n}``, as the loop-nest kernels reduce a row:
        a SIMD reduction, and one element after the other on rows too short for one (so that
        the sums round as theirs do)."""
        clause = {"add": "+", "mul": "*", "max": "max", "min": "min", "and": "&", "or": "|"}[red.op]
        tracks_nan = red.op in ("max", "min") and dtype_class(red.dtype) == "f"
        w.line(f"{C_TYPES[red.acc_dtype]} acc{n} = {self.initial(red)};{comment('accumulates ' + red.note)}")
        if tracks_nan:
            w.line(f"int nan_seen{n} = 0;")
        keep = self.kept_value() if n == len(self.k.reductions) - 1 else None

        def update(index):
            w.line(self.update(red, f"acc{n}", f"nan_seen{n}"))
            if keep is not None:
                value, buffer = keep
                w.line(f"{buffer.name}[{index(buffer)}] = {self.name(value)};  /* kept for the results */")

        simd = f"#pragma omp simd reduction({clause}:acc{n})" + (f" reduction(|:nan_seen{n})" if tracks_nan else "")
        w.open(f"if (n{self.d - 1} >= EXPRC_SHORT_ROW)")
        self.over_row(w, [red.value], update, simd)
        w.close("} else {")
        w.depth += 1
        self.over_row(w, [red.value], update, "/* one element after the other */")
        w.close()

    def render(self):
        k, w = self.k, Writer()
        w.lines.extend(self.header())
        invariant = [e for e in all_exprs(k) if self.level(e, {}) == 0 and not isinstance(e, ir.Acc)]
        w.open(f"static void {self.fn}_part(const int64_t *args, int64_t first, int64_t last)")
        self.unpack(w)
        self.invariants(w, invariant)
        self.unit_stride_test(w, [b for b in k.buffers if b.ndim and not b.outer])
        index = self.strided_index(range(self.d))
        done = {id(e) for e in invariant}

        def row():
            for n, red in enumerate(k.reductions):
                w.line(f"/* reduction {n}: {red.note} */".replace("*/ */", "* / */"))
                self.emit_needed(w, [red.value], done, False, index)
                self.reduce(w, n, red, index)
            self.emit_needed(w, [e for _, e in k.stores], done, False, index)
            for b, e in k.stores:
                if b.outer:
                    w.line(f"{b.name}[{index(b)}] = {self.name(e)};")
            full = [(b, e) for b, e in k.stores if not b.outer]
            if full:
                w.line("/* the elementwise results, over the row again (in cache) */")

                def store(index):
                    for b, e in full:
                        w.line(f"{b.name}[{index(b)}] = {self.name(e)};")

                self.over_row(w, [e for _, e in full], store, "#pragma omp simd", self.kept_value())

        if self.d == 2:
            w.open("if (n1 < EXPRC_SHORT_ROW)")
            self.short_rows(w, done)
            w.close("} else {")
            w.depth += 1
            self.rows(w, self.kept, row)
            w.close()
        else:
            self.rows(w, self.kept, row)
        w.close()
        w.line()
        w.open(f"void {self.fn}(const int64_t *args)")
        w.line("const int64_t size = " + " * ".join(f"args[{a}]" for a in range(self.d)) + ";")
        rows = " * ".join(f"args[{a}]" for a in range(self.kept)) or "1"
        w.line(f"const int64_t count = {rows};  /* rows of the kept axes */")
        w.line(f"exprc_run_parts({self.fn}_part, args, count, size);")
        w.close()
        return "\n".join(w.lines)

    def short_rows(self, w, invariant):
        """Rows too short for a SIMD loop of their own: up to EXPRC_COLUMNS of them at a time,
        each loop over the elements of a row running across the block's rows (as the
        loop-nest kernels reduce short rows: in each row, one element after the other).
        Per-row values are computed where they are used, from the block's accumulators."""
        k, d = self.k, self.d
        self.block = True
        index = self.strided_index(range(d))
        keep = self.kept_value()

        def across(roots, finish):
            w.open("for (int64_t i1 = 0; i1 < n1; ++i1)")
            w.line("#pragma omp simd")
            w.open("for (int64_t j = 0; j < width; ++j)")
            w.line("const int64_t i0 = start + j;")
            self.emit(w, ir.walk(roots, invariant), index)
            finish()
            w.close()
            w.close()

        w.open("for (int64_t start = first; start < last; start += EXPRC_COLUMNS)")
        w.line("const int64_t width = last - start < EXPRC_COLUMNS ? last - start : EXPRC_COLUMNS;")
        for n, red in enumerate(k.reductions):
            tracks_nan = red.op in ("max", "min") and dtype_class(red.dtype) == "f"
            w.line(f"{C_TYPES[red.acc_dtype]} acc{n}[EXPRC_COLUMNS];{comment('accumulate ' + red.note)}")
            w.line(f"int nan_seen{n}[EXPRC_COLUMNS];" if tracks_nan else f"/* reduction {n} */")
            w.open("for (int64_t j = 0; j < width; ++j)")
            w.line(f"acc{n}[j] = {self.initial(red)};" + (f" nan_seen{n}[j] = 0;" if tracks_nan else ""))
            w.close()
            last = n == len(k.reductions) - 1

            def update(red=red, n=n, last=last):
                w.line(self.update(red, f"acc{n}[j]", f"nan_seen{n}[j]"))
                if last and keep is not None:
                    value, buffer = keep
                    w.line(f"{buffer.name}[{index(buffer)}] = {self.name(value)};  /* kept for the results */")

            across([red.value], update)
        per_row = [(b, e) for b, e in k.stores if b.outer]
        if per_row:
            w.open("for (int64_t j = 0; j < width; ++j)")
            w.line("const int64_t i0 = start + j;")
            self.emit(w, ir.walk([e for _, e in per_row], invariant), index)
            for b, e in per_row:
                w.line(f"{b.name}[{index(b)}] = {self.name(e)};")
            w.close()
        full = [(b, e) for b, e in k.stores if not b.outer]
        if full:
            given = set(invariant) | ({id(keep[0])} if keep is not None else set())

            def store():
                for b, e in full:
                    w.line(f"{b.name}[{index(b)}] = {self.name(e)};")

            w.open("for (int64_t i1 = 0; i1 < n1; ++i1)")
            w.line("#pragma omp simd")
            w.open("for (int64_t j = 0; j < width; ++j)")
            w.line("const int64_t i0 = start + j;")
            if keep is not None:
                value, buffer = keep
                w.line(f"const {C_TYPES[value.dtype]} {self.name(value)} = {buffer.name}[{index(buffer)}];")
            self.emit(w, ir.walk([e for _, e in full], given), index)
            store()
            w.close()
            w.close()
        w.close()
        self.block = False

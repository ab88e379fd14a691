"""The loops of a kernel in C: :class:`CKernelRenderer` writes a kernel's exported function
and the static function running a range of its rows (see :mod:`exprc.codegen.c.render`).
See docs/internals/c-back-end.md.
"""

from exprc.codegen.cfamily.formulas import (
    C_TYPES,
    c_expression,
    c_literal,
    calls_vector_math,
    cast_expression,
    dtype_class,
)
from exprc.codegen.cfamily.renderer import KernelRenderer, Writer, all_exprs, comment, loop_dtype
from exprc.codegen.ir import kernel as ir


class CKernelRenderer(KernelRenderer):
    """A kernel as C: the shared walk (:class:`~exprc.codegen.cfamily.renderer.KernelRenderer`)
    with C statements and loops."""

    def statement(self, expr, index):
        """The declaration computing ``expr``; ``index`` renders a buffer's element offset."""
        ctype = C_TYPES[expr.dtype]
        name = self.name(expr)
        if isinstance(expr, ir.Const):
            rhs = c_literal(expr.value, expr.dtype)
        elif isinstance(expr, ir.Load):
            rhs = f"{expr.buffer.name}[{index(expr.buffer)}]" if expr.buffer.ndim else f"{expr.buffer.name}[0]"
        elif isinstance(expr, ir.Cast):
            arg = self.name(expr.arg)
            rhs = cast_expression(arg, expr.arg.dtype, expr.dtype)
        elif isinstance(expr, ir.Acc):
            red = self.red
            if red.op in ("max", "min") and dtype_class(red.dtype) == "f":
                rhs = f"nan_seen ? NAN : ({ctype})acc"
            else:
                rhs = f"({ctype})acc"
        else:
            rhs = c_expression(expr.op, loop_dtype(expr), [self.name(a) for a in expr.args])
        return f"const {ctype} {name} = {rhs};{comment(expr.note)}"

    def render(self):
        k, w = self.k, Writer()
        w.lines.extend(self.header())
        memo = {}
        exprs = all_exprs(k)
        by_level = {
            lv: [e for e in exprs if self.level(e, memo) == lv and not isinstance(e, ir.Acc)] for lv in range(4)
        }
        acc = [e for e in exprs if isinstance(e, ir.Acc)]
        if self.d == 0:  # one element (a reduction always has an axis)
            w.open(f"void {self.fn}(const int64_t *args)")
            self.unpack(w)
            self.invariants(w, by_level[0])
            self.emit(w, by_level[1] + by_level[2], lambda b: "0")
            self.store_lines(w, lambda b: "0")
            w.close()
        elif self.red is not None and self.kept == 0:
            self.full_reduction(w, by_level, acc)
        else:
            # The loops are written once, over a range of rows; the entry point runs that
            # range on all cores or on this thread (see exprc_run_parts).
            w.open(f"static void {self.fn}_part(const int64_t *args, int64_t first, int64_t last)")
            self.unpack(w)
            self.invariants(w, by_level[0])
            if self.red is None:
                self.elementwise_loops(w, by_level[1] + by_level[2])
            else:
                self.unit_stride_test(w, self._prologue_buffers(by_level))
                self.columns_test(w)
                w.open("if (columns)")
                self.reduce_columns(w, by_level, acc)
                w.close("} else if (short_rows) {")
                w.depth += 1
                self.reduce_columns(w, by_level, acc, consecutive=False)
                w.close("} else {")
                w.depth += 1
                self.rows(w, self.kept, lambda: self.reduce_row(w, by_level, acc))
                w.close()
            w.close()
            w.line()
            w.open(f"void {self.fn}(const int64_t *args)")
            w.line("const int64_t size = " + (" * ".join(f"args[{a}]" for a in range(self.d))) + ";")
            rows = " * ".join(f"args[{a}]" for a in range(self.d - 1 if self.red is None else self.kept)) or "1"
            if self.red is None and self.d > 1:
                w.line(f"/* contiguous: one flat range; else rows of {self.d - 1} outer axes */")
                w.line(f"const int64_t count = args[{self.d}] ? size : {rows};")
            elif self.red is None:
                w.line("const int64_t count = size;")
            else:
                w.line(f"const int64_t count = {rows};  /* rows of the kept axes */")
            w.line(f"exprc_run_parts({self.fn}_part, args, count, size);")
            w.close()
        return "\n".join(w.lines)

    def unpack(self, w):
        k, pos = self.k, 0
        if self.d:
            w.line("const int64_t " + ", ".join(f"n{a} = args[{a}]" for a in range(self.d)) + ";")
            pos = self.d
        w.line(f"const int contiguous = (int)args[{pos}];")
        w.line("(void)contiguous;")
        pos += 1
        for b in k.buffers:
            ctype = C_TYPES[b.dtype]
            const = "" if b.output else "const "
            w.line(f"{const}{ctype} *restrict {b.name} = ({const}{ctype} *)(intptr_t)args[{pos}];")
            pos += 1
            if b.ndim:
                strides = ", ".join(f"{b.name}_s{a} = args[{pos + a}]" for a in range(self.d))
                w.line(f"const int64_t {strides};")
                pos += self.d
        size = " * ".join(f"n{a}" for a in range(self.d)) or "1"
        w.line(f"const int64_t size = {size};")
        w.line("(void)size;")

    def unit_stride_test(self, w, buffers):
        """Declare ``unit``: whether every buffer walking the last axis has stride 1 on it
        (the common case: rows of C-contiguous arrays, broadcasting along other axes), so the
        innermost loop reads and writes consecutive elements and vectorizes."""
        walking = [b for b in buffers if b.ndim and not b.outer]
        test = " && ".join(f"{b.name}_s{self.d - 1} == 1" for b in walking) or "1"
        w.line(f"const int unit = {test};  /* stride 1 along the last axis: consecutive elements */")

    def inner_loop(self, w, head, body):
        """The innermost loop ``head`` twice: for stride 1 along the last axis, and for any
        strides; ``body(index)`` writes its statements."""
        w.open("if (unit)")
        w.line(head[0])
        w.open(head[1])
        body(self.strided_index(range(self.d), unit_last=True))
        w.close()
        w.close("} else {")
        w.depth += 1
        w.line(head[0])
        w.open(head[1])
        body(self.strided_index(range(self.d)))
        w.close()
        w.close()

    def store_lines(self, w, index):
        for buffer, expr in self.k.stores:
            w.line(f"{buffer.name}[{index(buffer)}] = {self.name(expr)};")

    def rows(self, w, m, inner):
        """Loops over rows ``first..last`` of the first ``m`` axes taken as one (C order),
        with ``i0 .. i{m-1}`` the indices of the row, calling ``inner()`` for the body."""
        if m == 0:
            inner()
            return
        if m == 1:
            w.open("for (int64_t i0 = first; i0 < last; ++i0)")
            inner()
            w.close()
            return
        w.line('/* the indices of row "first"; then advanced row by row */')
        w.line("int64_t " + ", ".join(f"i{a} = 0" for a in range(m)) + ";")
        w.open("if (first < last)")
        w.line("int64_t rest = first;")
        for a in reversed(range(1, m)):
            w.line(f"i{a} = rest % n{a}; rest /= n{a};")
        w.line("i0 = rest;")
        w.close()
        w.open("for (int64_t row = first; row < last; ++row)")
        inner()
        advance = "++i0;"
        for a in range(1, m):
            advance = f"if (++i{a} == n{a}) {{ i{a} = 0; {advance} }}"
        w.line(advance)
        w.close()

    def elementwise_loops(self, w, body):
        d = self.d
        w.open("if (contiguous)")
        w.line("/* fast path: every array is contiguous in index order */")
        w.line("#pragma omp simd")
        w.open("for (int64_t i = first; i < last; ++i)")
        self.emit(w, body, lambda b: "i")
        self.store_lines(w, lambda b: "i")
        w.close()
        w.close("} else {")
        w.depth += 1
        w.line("/* strided path: any strides, 0 where an axis broadcasts */")
        index = self.strided_index(range(d))
        if d == 1:
            w.line("#pragma omp simd")
            w.open("for (int64_t i0 = first; i0 < last; ++i0)")
            self.emit(w, body, index)
            self.store_lines(w, index)
            w.close()
        else:
            last = d - 1
            self.unit_stride_test(w, self.k.buffers)

            def statements(index):
                self.emit(w, body, index)
                self.store_lines(w, index)

            head = ("#pragma omp simd", f"for (int64_t i{last} = 0; i{last} < n{last}; ++i{last})")
            if not self._calls_vector_math(body):
                self.rows(w, d - 1, lambda: self.inner_loop(w, head, statements))
                w.close()
                return
            # Vector math over short rows: the SIMD loop runs down a block of rows (its loads
            # and stores strided), since one over a short row calls the scalar functions for its
            # remainder. Plain arithmetic gains nothing from that: its strided stores cost more.
            w.open(f"if (n{last} < EXPRC_SHORT_ROW)")
            w.line("/* rows too short for a SIMD loop: a block of rows at a time, the SIMD loop down the block */")
            self.block_start(w, d - 2)
            w.open(f"for (int64_t i{last} = 0; i{last} < n{last}; ++i{last})")
            w.line("#pragma omp simd")
            w.open("for (int64_t j = 0; j < width; ++j)")
            w.line(f"const int64_t i{d - 2} = column + j;")
            statements(index)
            w.close()
            w.close()
            w.line("start += width;")
            w.close()
            w.close("} else {")
            w.depth += 1
            self.rows(w, d - 1, lambda: self.inner_loop(w, head, statements))
            w.close()
        w.close()

    def _calls_vector_math(self, body):
        """Whether the statements of ``body`` call a function of glibc's vector math (exp,
        tanh, ...), directly or through one of the run time's helpers."""
        return any(isinstance(e, ir.Call) and calls_vector_math(e.op, loop_dtype(e)) for e in body)

    def _reduction_parts(self):
        red = self.red
        tracks_nan = red.op in ("max", "min") and dtype_class(red.dtype) == "f"
        clause = {"add": "+", "mul": "*", "max": "max", "min": "min", "and": "&", "or": "|"}[red.op]
        return tracks_nan, clause, f"reduction({clause}:acc)" + (" reduction(|:nan_seen)" if tracks_nan else "")

    def reduced_loops(self, w, by_level):
        """The loops over the reduced axes updating ``acc``, the innermost a SIMD reduction."""
        red, d, kept = self.red, self.d, self.kept
        _, _, reduction_clause = self._reduction_parts()
        for a in range(kept, d - 1):
            w.open(f"for (int64_t i{a} = 0; i{a} < n{a}; ++i{a})")

        def statements(index):
            self.emit(w, by_level[2], index)
            w.line(self.update(red))

        head = (f"#pragma omp simd {reduction_clause}", f"for (int64_t i{d - 1} = 0; i{d - 1} < n{d - 1}; ++i{d - 1})")
        self.inner_loop(w, head, statements)
        for _ in range(kept, d - 1):
            w.close()

    def reduce_row(self, w, by_level, acc):
        """One kept index (a row of the kept axes): reduce, then the epilogue and the store."""
        red = self.red
        tracks_nan, _, _ = self._reduction_parts()
        index = self.strided_index(range(self.d))
        if by_level[1]:
            self.emit(w, by_level[1], index)
        w.line(f"{C_TYPES[red.acc_dtype]} acc = {self.initial(red)};{comment('accumulates ' + red.note)}")
        if tracks_nan:
            w.line("int nan_seen = 0;")
        self.reduced_loops(w, by_level)
        self.emit(w, acc + by_level[3], index)
        self.store_lines(w, index)

    def block_start(self, w, axis):
        """Open the loop over rows ``first..last`` of axes ``0..axis`` (C order) taken a block
        at a time: up to EXPRC_COLUMNS consecutive rows, ``column .. column + width`` along
        ``axis``, within one row of the axes before it (``i0 ..``, fixed for the block). The
        caller writes the block's loops, then ``start += width;``, and closes the loop."""
        w.open("for (int64_t start = first; start < last;)")
        w.line(f"/* the block: rows start..start + width, along axis {axis} */")
        w.line(f"int64_t rest = start / n{axis};")
        w.line(f"const int64_t column = start % n{axis};")
        for a in reversed(range(axis)):
            w.line(f"const int64_t i{a} = rest % n{a};" if a else f"const int64_t i{a} = rest;")
            if a:
                w.line(f"rest /= n{a};")
        w.line("(void)rest;")
        w.line(f"int64_t width = n{axis} - column < last - start ? n{axis} - column : last - start;")
        w.line("if (width > EXPRC_COLUMNS) width = EXPRC_COLUMNS;")

    def columns_test(self, w):
        """Declare ``columns`` and ``short_rows``, whether to reduce a block of results at a
        time (:meth:`reduce_columns`): ``columns`` where every array has stride 1 along the last
        kept axis and the reduced values are not consecutive (a sum over the rows of a
        C-contiguous matrix); ``short_rows`` where they are, but the last axis is too short for
        a SIMD loop over it to run more than its remainder."""
        axis = self.kept - 1
        test = " && ".join(f"{b.name}_s{axis} == 1" for b in self.k.buffers if b.ndim) or "0"
        w.line(f"const int columns = !unit && {test};  /* consecutive results: a block of them at a time */")
        w.line(
            f"const int short_rows = unit && n{self.d - 1} < EXPRC_SHORT_ROW;"
            "  /* rows too short for a SIMD loop: a block of them at a time */"
        )

    def reduce_columns(self, w, by_level, acc, consecutive=True):
        """Rows ``first..last`` of the kept axes, up to EXPRC_COLUMNS consecutive ones (along the
        last kept axis) at a time: their accumulators in an array, the reduced axes walked
        outside and the block inside, so the SIMD loop runs over the block. With
        ``consecutive``, the arrays have stride 1 along the last kept axis, so its loads are
        consecutive; else they are strided (gathered). Each result adds its terms in the same
        order as one row at a time."""
        red, d, kept = self.red, self.d, self.kept
        tracks_nan, _, _ = self._reduction_parts()
        axis = kept - 1

        def index(buffer):
            used = range(kept) if buffer.outer else range(d)
            return " + ".join(f"i{a}" if a == axis and consecutive else f"i{a} * {buffer.name}_s{a}" for a in used)

        acc_type = C_TYPES[red.acc_dtype]
        self.block_start(w, axis)
        w.line(f"{acc_type} accs[EXPRC_COLUMNS];{comment('accumulate ' + red.note)}")
        if tracks_nan:
            w.line("int nans[EXPRC_COLUMNS];")
        w.open("for (int64_t j = 0; j < width; ++j)")
        w.line(f"accs[j] = {self.initial(red)};" + (" nans[j] = 0;" if tracks_nan else ""))
        w.close()
        for a in range(kept, d):
            w.open(f"for (int64_t i{a} = 0; i{a} < n{a}; ++i{a})")
        w.line("#pragma omp simd")
        w.open("for (int64_t j = 0; j < width; ++j)")
        w.line(f"const int64_t i{axis} = column + j;")
        self.emit(w, by_level[1] + by_level[2], index)
        w.line(self.update(red, "accs[j]", "nans[j]"))
        w.close()
        for _ in range(kept, d):
            w.close()
        w.line("#pragma omp simd")
        w.open("for (int64_t j = 0; j < width; ++j)")
        w.line(f"const int64_t i{axis} = column + j;")
        w.line(f"const {acc_type} acc = accs[j];")
        if tracks_nan:
            w.line("const int nan_seen = nans[j];")
        used = {id(e) for e in ir.walk(acc + by_level[3])}
        self.emit(w, [e for e in by_level[1] if id(e) in used], index)
        self.emit(w, acc + by_level[3], index)
        self.store_lines(w, index)
        w.close()
        w.line("start += width;")
        w.close()

    def full_reduction(self, w, by_level, acc):
        """A reduction over every axis: ``_partial`` reduces a block (rows of the outer axes
        times a range of the last axis); the entry point cuts the index space into blocks
        that depend on its shape only (``exprc_reduction_blocks``), reduces them on the pool
        (``_block``, one per piece) and combines their results in block order, so the result
        does not depend on the number of threads."""
        red, fn, d = self.red, self.fn, self.d
        acc_type = C_TYPES[red.acc_dtype]
        tracks_nan, _, reduction_clause = self._reduction_parts()
        nan_param = ", int *nan_seen_out" if tracks_nan else ""
        last = d - 1
        w.line(f"/* reduces rows first..last of axes before n{last} (C order) times i{last} in from..to into acc */")
        w.open(
            f"static {acc_type} {fn}_partial(const int64_t *args, int64_t first, int64_t last, "
            f"int64_t from, int64_t to, {acc_type} acc{nan_param})"
        )
        self.unpack(w)
        self.invariants(w, by_level[0])
        used = {id(e) for e in ir.walk(by_level[2] + [red.value])}
        self.emit(w, [e for e in by_level[1] if id(e) in used], lambda b: "0")  # read once: no kept axes
        if tracks_nan:
            w.line("int nan_seen = 0;")
        self.unit_stride_test(w, self._prologue_buffers(by_level))

        def statements(index):
            self.emit(w, by_level[2], index)
            w.line(self.update(red))

        head = (f"#pragma omp simd {reduction_clause}", f"for (int64_t i{last} = from; i{last} < to; ++i{last})")
        self.rows(w, d - 1, lambda: self.inner_loop(w, head, statements))
        if tracks_nan:
            w.line("*nan_seen_out |= nan_seen;")
        w.line("return acc;")
        w.close()
        w.line()
        w.line(f'/* block "piece" of {fn}\'s blocks: its result into accs[piece] */')
        w.open("typedef struct")
        w.line("const int64_t *args;")
        w.line("int64_t rows, cols;")
        w.line("exprc_blocks blocks;")
        w.line(f"{acc_type} *accs;")
        if tracks_nan:
            w.line("int *nans;")
        w.close(f"}} {fn}_job;")
        w.open(f"static void {fn}_block(void *context, int64_t piece)")
        w.line(f"const {fn}_job *job = context;")
        w.line("const exprc_blocks *b = &job->blocks;")
        w.line(
            "const int64_t first = piece / b->col_pieces * b->row_block, from = piece % b->col_pieces * b->col_block;"
        )
        w.line("const int64_t last = first + b->row_block < job->rows ? first + b->row_block : job->rows;")
        w.line("const int64_t to = from + b->col_block < job->cols ? from + b->col_block : job->cols;")
        if tracks_nan:
            w.line("int nan_seen = 0;")
            w.line(
                f"job->accs[piece] = {fn}_partial(job->args, first, last, from, to, {self.initial(red)}, &nan_seen);"
            )
            w.line("job->nans[piece] = nan_seen;")
        else:
            w.line(f"job->accs[piece] = {fn}_partial(job->args, first, last, from, to, {self.initial(red)});")
        w.close()
        w.line()
        w.open(f"void {fn}(const int64_t *args)")
        self.unpack(w)
        self.invariants(w, by_level[0])
        index = lambda b: "0"  # noqa: E731 - the result and the epilogue inputs have one element
        if by_level[1]:
            self.emit(w, by_level[1], index)
        nan_arg = ", &nan_seen" if tracks_nan else ""
        rows = " * ".join(f"n{a}" for a in range(last)) or "1"
        w.line(f"const int64_t rows = {rows}, cols = n{last};")
        w.line(f"{acc_type} acc = {self.initial(red)};{comment('accumulates ' + red.note)}")
        if tracks_nan:
            w.line("int nan_seen = 0;")
        w.line("const exprc_blocks blocks = exprc_reduction_blocks(rows, cols);")
        w.open("if (blocks.pieces == 1)")
        w.line(f"acc = {fn}_partial(args, 0, rows, 0, cols, acc{nan_arg});")
        w.close("} else {")
        w.depth += 1
        w.line(f"{acc_type} accs[2 * EXPRC_MAX_BLOCKS];")
        if tracks_nan:
            w.line("int nans[2 * EXPRC_MAX_BLOCKS];")
        w.line(f"{fn}_job job = {{args, rows, cols, blocks, accs{', nans' if tracks_nan else ''}}};")
        w.line(f"exprc_parallel({fn}_block, &job, blocks.pieces, size);")
        w.line("/* in block order, whichever thread reduced each block */")
        w.open("for (int64_t piece = 0; piece < blocks.pieces; ++piece)")
        w.line(self.combine(red, "accs[piece]") + (" nan_seen |= nans[piece];" if tracks_nan else ""))
        w.close()
        w.close()
        self.emit(w, acc + by_level[3], index)
        self.store_lines(w, index)
        w.close()

    def combine(self, red, partial):
        """The statement adding a block's result ``partial`` into ``acc``."""
        if red.op in ("max", "min"):
            cmp = ">" if red.op == "max" else "<"
            return f"acc = {partial} {cmp} acc ? {partial} : acc;"
        op = {"add": "+=", "mul": "*=", "and": "&=", "or": "|="}[red.op]
        return f"acc {op} {partial};"

    def _prologue_buffers(self, by_level):
        """The buffers the reduction's inner loop reads."""
        return [e.buffer for e in by_level[2] if isinstance(e, ir.Load)]

    def update(self, red, acc="acc", nan_seen="nan_seen"):
        """The statement adding the reduced value into ``acc`` (and NaN into ``nan_seen``)."""
        v = self.name(red.value)
        acc_type = C_TYPES[red.acc_dtype]
        if red.op == "add":
            return f"{acc} += ({acc_type}){v};"
        if red.op == "mul":
            return f"{acc} *= ({acc_type}){v};"
        if red.op == "and":
            return f"{acc} &= {v};"
        if red.op == "or":
            return f"{acc} |= {v};"
        cmp = ">" if red.op == "max" else "<"
        text = f"{acc} = {v} {cmp} {acc} ? {v} : {acc};"
        if dtype_class(red.dtype) == "f":
            text += f" {nan_seen} |= ({v} != {v});"
        return text

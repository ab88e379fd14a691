"""Rendering kernels to readable C.

Each kernel becomes one exported function ``void kN_name(const int64_t *args)``
taking its run-time arguments packed in one array (see :func:`arg_layout`):
the index space lengths, a flag saying every array is contiguous in index
order, then per buffer a pointer and (unless it is a scalar) one stride per
index axis, in elements. The loops are written once per kernel, in a static
function ``kN_name_part(args, first, last)`` running a range of rows: it
unpacks the arguments into named locals, hoists what does not change per
element, and loops:

- elementwise kernels: a contiguous fast path (one flat loop over elements
  ``first..last``) and a strided path (rows ``first..last`` of the outer axes,
  their indices advanced row by row, and the innermost axis in a SIMD loop; for
  vector math over rows shorter than ``EXPRC_SHORT_ROW``, a block of rows at a
  time instead, the SIMD loop down the block);
  the runner orders the axes by stride and merges the ones it can, so
  "contiguous" is the common case;
- reduction kernels: rows of the kept axes outside, reduced axes inside, with
  the epilogue after the innermost loops; or, where the results are consecutive
  in memory and the reduced values are not (a sum over the rows of a
  C-contiguous matrix), a block of up to ``EXPRC_COLUMNS`` results at a time,
  the reduced axes outside and the block inside; the same, with strided loads,
  where the rows are shorter than ``EXPRC_SHORT_ROW`` (a softmax over 10
  classes: a SIMD loop over 10 elements is all remainder, one over a block of
  rows is not). A reduction over every axis has a
  ``kN_name_partial`` reducing a block instead, whose results the entry point
  combines.

The exported function hands the rows to ``exprc_run_parts``, which runs them on
all cores (one ``#pragma omp parallel for`` over pieces of at least 8,192
elements, ``schedule(guided)``, so that a thread that wakes late takes less) when
the index space has at least
``EXPRC_PARALLEL_MIN`` elements, else calls the part directly (entering an
OpenMP region costs even when it stays on one thread). Writing the loops once,
rather than once per parallel and serial path, halves what the C compiler
compiles; so does giving a kernel whose code is that of an earlier kernel
(gradients often compute one expression in several places) a one-line body
calling the earlier one. Inner loops carry ``#pragma omp simd``, and glibc's
vector math (libmvec) is declared so that exp, log, sin... vectorize too.

A big program can also be rendered as several translation units to compile at
the same time (:func:`render_sources`). Row passes
(:class:`~exprc.codegen.ir.kernel.RowPassKernel`) are rendered by
:mod:`exprc.codegen.c.row_pass`, with the same argument layout.

>>> from exprc.codegen.ir import kernel as ir
>>> x = ir.Buffer("x", "float64", 1); out = ir.Buffer("out", "float64", 1, output=True)
>>> k = ir.Kernel("k0_exp_x", 1, (x, out), ((out, ir.Call("exp", (ir.Load(x),), "float64", "exp(x)")),))
>>> render_kernel(k).splitlines()[1]
' * k0_exp_x'
"""
import re

from exprc.codegen.ir import kernel as ir
from exprc.codegen.cfamily.formulas import C_TYPES, c_expression, c_literal, cast_expression, dtype_class, helper_source, helpers_used

#: Index spaces with fewer elements than this run on one thread.
PARALLEL_MIN = 32768

INDENT = "    "

_PRELUDE = """\
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>

/* Loops over at least this many elements run on all cores. */
#define EXPRC_PARALLEL_MIN {parallel_min}
/* A reduction over outer axes computes this many consecutive results at a time ... */
#define EXPRC_COLUMNS 256
/* ... and so do reductions over rows shorter than this (too short for a SIMD loop of their
   own), and loops over them that call vector math. */
#define EXPRC_SHORT_ROW 32
#ifdef _OPENMP
#include <omp.h>
#endif

/* Functions run once per call, not per element: compiled once, neither inlined nor
   cloned per caller (which would only cost compile time). */
#if defined(__GNUC__) && !defined(__clang__)
#define EXPRC_ONCE __attribute__((noinline, noclone))
#elif defined(__GNUC__)
#define EXPRC_ONCE __attribute__((noinline))
#else
#define EXPRC_ONCE
#endif

/* The number of threads of the current team (1 outside a parallel region). */
static inline int64_t exprc_threads(void)
{{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}}

/* This thread's share [first, last) of [0, count), as schedule(static) gives it. */
static inline void exprc_thread_range(int64_t count, int64_t *first, int64_t *last)
{{
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num();
#else
    const int64_t t = 0;
#endif
    const int64_t nt = exprc_threads();
    const int64_t q = count / nt, r = count % nt;
    *first = q * t + (t < r ? t : r);
    *last = *first + q + (t < r ? 1 : 0);
}}

/* Each kernel's loops are written once, in a function running rows first..last of its
   index space; this runs rows 0..count on all cores when the index space has at least
   EXPRC_PARALLEL_MIN elements, else on this thread (an OpenMP region costs about half a
   microsecond even when it stays on one thread). The rows go out in pieces of at least
   EXPRC_PIECE_MIN elements, long runs first (guided): a thread that wakes late (tens of
   microseconds where the cores are virtual, as after a BLAS call) takes a smaller share
   instead of holding the others up. Which thread runs a row never changes its result. */
#define EXPRC_PIECE_MIN 8192
typedef void (*exprc_part)(const int64_t *args, int64_t first, int64_t last);

static EXPRC_ONCE void exprc_run_parts(exprc_part part, const int64_t *args, int64_t count, int64_t size)
{{
    if (count <= 0)
        return;
#ifdef _OPENMP
    if (size >= EXPRC_PARALLEL_MIN && count > 1) {{
        const int64_t row = size / count > 0 ? size / count : 1;  /* elements per row */
        const int64_t rows = (EXPRC_PIECE_MIN + row - 1) / row;  /* rows per piece */
        const int64_t pieces = (count + rows - 1) / rows;
        #pragma omp parallel for schedule(guided)
        for (int64_t piece = 0; piece < pieces; ++piece) {{
            const int64_t first = piece * rows;
            part(args, first, first + rows < count ? first + rows : count);
        }}
        return;
    }}
#endif
    part(args, 0, count);
}}

/* glibc's vector math library (libmvec): declaring the SIMD variants lets
   "#pragma omp simd" loops call them without -ffast-math. */
#if defined(__GLIBC__) && defined(__x86_64__) && defined(_OPENMP)
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
{more_simd}
#endif
#endif
"""

_MORE_SIMD = (
    "acos", "acosh", "asin", "asinh", "atan", "atanh", "cosh", "erf", "erfc", "exp2",
    "expm1", "log10", "log1p", "log2", "sinh", "tan", "tanh",
)
_MORE_SIMD_2 = ("atan2", "hypot")


#: A call of a function with a SIMD variant in libmvec (or of a helper calling one), in C.
_VECTOR_MATH_CALL = re.compile(r"\b(?:%s)f?\(" % "|".join(
    ("exp", "log", "sin", "cos", "pow", "exprc_sigmoid", "exprc_softplus", "exprc_gammaln")
    + _MORE_SIMD + _MORE_SIMD_2))


def _more_simd():
    lines = []
    for name in _MORE_SIMD:
        lines += ["#pragma omp declare simd notinbranch", f"double {name}(double);",
                  "#pragma omp declare simd notinbranch", f"float {name}f(float);"]
    for name in _MORE_SIMD_2:
        lines += ["#pragma omp declare simd notinbranch", f"double {name}(double, double);",
                  "#pragma omp declare simd notinbranch", f"float {name}f(float, float);"]
    return "\n".join(lines)


def arg_layout(kernel):
    """The packed argument array of ``kernel``: a list of ``(what, count)`` in order.

    >>> from exprc.codegen.ir import kernel as ir
    >>> x = ir.Buffer("x", "float64", 2); s = ir.Buffer("s", "float64", 0)
    >>> arg_layout(ir.Kernel("k", 2, (x, s), ()))
    [('shape', 2), ('contiguous', 1), ('x', 1), ('x strides', 2), ('s', 1)]
    """
    layout = [("shape", kernel.ndim), ("contiguous", 1)]
    for b in kernel.buffers:
        layout.append((b.name, 1))
        if b.ndim:
            layout.append((f"{b.name} strides", kernel.ndim))
    return layout


def render_program(kernels, title="", segments=(), texts=None):
    """The C source of a whole program: prelude, the helpers the kernels use, the kernels,
    then, for ``segments`` (see :mod:`exprc.codegen.ir.segments`), the run time and their entry points."""
    return render_sources(kernels, title, segments, texts)[0]


#: Characters of kernel code (comments left out) that make a translation unit of their own
#: worth it: compiling units at the same time must save more than each unit's start
#: (headers, prelude) and the link cost.
UNIT_SIZE = 20000


def render_sources(kernels, title="", segments=(), texts=None, max_units=1):
    """``(source, units)``: the program as :func:`render_program` gives it (to be linked with
    the run time, :func:`exprc.codegen.c.runtime.runtime_source`, when it has ``segments``), and, for a program
    big enough (see :data:`UNIT_SIZE`) when ``max_units`` > 1, the same as up to ``max_units``
    translation units to compile at the same time and link (else None).

    Each unit has the prelude, the helpers and every kernel's declaration; the first has
    the run time and the entry points; the kernels are spread over the units by size (the
    first counting the run time's)."""
    head, kernel_texts, tail = _program_parts(kernels, title, segments, texts)
    source = _join(head + kernel_texts + tail)
    cost = {id(t): _code_size(t) for t in kernel_texts}
    count = min(max_units, 1 + sum(cost.values()) // UNIT_SIZE)
    if count < 2:
        return source, None
    prototypes = "/* the kernels of every unit of this program */\n" + "\n".join(declaration(k) for k in kernels)
    units = [[] for _ in range(count)]
    # The run time and the tables compile about 3 times faster than loops of the same size
    # (measured with GCC 12 at -O2 on gradient programs).
    load = [sum(_code_size(t) for t in tail) // 3] + [0] * (count - 1)
    for text in sorted(kernel_texts, key=lambda t: cost[id(t)], reverse=True):
        i = load.index(min(load))
        units[i].append(text)
        load[i] += cost[id(text)]
    order = {id(t): n for n, t in enumerate(kernel_texts)}
    return source, [_join(head + [prototypes] + sorted(unit, key=lambda t: order[id(t)]) + (tail if i == 0 else []))
                    for i, unit in enumerate(units)]


def _code_size(text):
    """The length of C ``text`` without its comments: what the compiler works on."""
    return len(_COMMENTS.sub("", text))


def _join(parts):
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _program_parts(kernels, title, segments, texts):
    """``(head, kernel texts, tail)``: the title, prelude and helpers; each kernel; the run
    time and the segments' entry points."""
    helpers = {}
    for kernel in kernels:
        for expr in _all_exprs(kernel):
            if isinstance(expr, ir.Call):
                dtype = _loop_dtype(expr)
                for name in helpers_used(expr.op, dtype):
                    helpers.setdefault((name, dtype), helper_source(name, dtype))
    head = []
    if title:
        head.append(_block_comment(title.splitlines()))
    head.append(_PRELUDE.format(parallel_min=PARALLEL_MIN, more_simd=_more_simd()))
    head.extend(helpers.values())
    head.extend(_row_pass().support(kernels))
    tail = []
    if segments:
        from exprc.codegen.c.call import OBJECT_HEAD
        from exprc.codegen.c.entry import max_rank, render_segment
        from exprc.codegen.c.runtime import runtime_header

        tail.append(runtime_header(max_rank(segments), OBJECT_HEAD))
        tail.extend(render_segment(s, texts or {}) for s in segments)
    return head, render_kernels(kernels), tail


def _loop_dtype(call):
    """The dtype that picks a call's formula: its inputs' (its values' for ``where``)."""
    return call.dtype if call.op == "where" else call.args[0].dtype


def declaration(kernel):
    """The C declaration of ``kernel``'s entry point (for cffi's ``cdef``); a row pass returns
    1 when it runs out of memory, else 0."""
    if isinstance(kernel, ir.RowPassKernel):
        return f"int {kernel.name}(const int64_t *args);"
    return f"void {kernel.name}(const int64_t *args);"


def _all_exprs(kernel):
    return ir.walk(kernel.roots)


def _row_pass():
    """The row-pass renderer, which builds on this module (so imported when first used)."""
    from exprc.codegen.c import row_pass as c_row_pass

    return c_row_pass


def _block_comment(lines):
    return "\n".join(["/*"] + [f" * {line}".rstrip() for line in lines] + [" */"])


def _comment(text):
    text = text.replace("*/", "* /")
    return f"  /* {text} */" if text else ""


class _Writer:
    def __init__(self):
        self.lines, self.depth = [], 0

    def line(self, text=""):
        self.lines.append(INDENT * self.depth + text if text else "")

    def open(self, text):
        self.line(text + " {")
        self.depth += 1

    def close(self, text="}"):
        self.depth -= 1
        self.line(text)


def render_kernel(kernel):
    """The C function computing ``kernel``."""
    return _KernelRenderer(kernel).render()


_PLACEHOLDER = "exprc_kernel_name_"
_COMMENTS = re.compile(r"/\*.*?\*/", re.S)


def render_kernels(kernels):
    """The C of ``kernels``, each in full once: a kernel whose code is the same as an earlier
    one's (gradients often compute one expression in several places) calls that one."""
    texts, first = [], {}
    for kernel in kernels:
        if isinstance(kernel, ir.RowPassKernel):
            text = _row_pass().render_row_pass(kernel, _PLACEHOLDER)
        else:
            text = _KernelRenderer(kernel, _PLACEHOLDER).render()
        key = _COMMENTS.sub("", text)
        if key in first:
            same = first[key]
            note = f" (computes {kernel.note})".replace("*/", "* /") if kernel.note else ""
            body = f"return {same}(args);" if isinstance(kernel, ir.RowPassKernel) else f"{same}(args);"
            texts.append(f"/* {kernel.name}: the same code as {same}{note} */\n"
                         f"{declaration(kernel)[:-1]} {{ {body} }}")
            continue
        first[key] = kernel.name
        texts.append(text.replace(_PLACEHOLDER, kernel.name))
    return texts


class _KernelRenderer:
    def __init__(self, kernel, name=None):
        self.k = kernel
        self.fn = name or kernel.name  # the C name of the entry point
        self.d = kernel.ndim
        self.red = kernel.reduction
        self.kept = self.d - (self.red.naxes if self.red else 0)
        self.names = {}
        self.counter = 0

    # --- naming and levels ------------------------------------------------------------
    def name(self, expr):
        if id(expr) not in self.names:
            if isinstance(expr, ir.Load):
                base = f"{expr.buffer.name}_v"
            elif isinstance(expr, ir.Const):
                base = f"c{self.counter}"
            elif isinstance(expr, ir.Acc):
                base = "result"
            else:
                base = f"v{self.counter}"
            self.counter += 1
            self.names[id(expr)] = base
        return self.names[id(expr)]

    def level(self, expr, memo):
        """0: invariant; 1: per kept index before the reduction; 2: per element; 3: after the reduction."""
        if id(expr) in memo:
            return memo[id(expr)]
        if isinstance(expr, ir.Const):
            lv = 0
        elif isinstance(expr, ir.Load):
            lv = 0 if expr.buffer.ndim == 0 else (1 if expr.buffer.outer else 2)
        elif isinstance(expr, ir.Acc):
            lv = 3
        else:
            lv = max((self.level(a, memo) for a in expr.args), default=0)
        memo[id(expr)] = lv
        return lv

    # --- statements -------------------------------------------------------------------
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
            rhs = c_expression(expr.op, _loop_dtype(expr), [self.name(a) for a in expr.args])
        return f"const {ctype} {name} = {rhs};{_comment(expr.note)}"

    def emit(self, w, exprs, index):
        for expr in exprs:
            text = self.statement(expr, index)
            # A cast of a node's result shows the node's comment once, on the first line.
            if isinstance(expr, ir.Cast) and expr.note and expr.note == expr.arg.note:
                text = text[: text.rindex("  /*")]
            w.line(text)

    # --- the function -----------------------------------------------------------------
    def render(self):
        k, w = self.k, _Writer()
        w.lines.extend(self.header())
        memo = {}
        exprs = _all_exprs(k)
        by_level = {lv: [e for e in exprs if self.level(e, memo) == lv and not isinstance(e, ir.Acc)] for lv in range(4)}
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

    def invariants(self, w, exprs):
        if exprs:
            w.line("/* values that are the same for every element */")
            self.emit(w, exprs, None)

    def header(self):
        k = self.k
        lines = [k.name, ""]
        if k.note:
            lines.append(f"computes {k.note}")
        if len(k.computes) > 1:
            lines.append("fusing:")
            lines.extend(f"    {c}" for c in k.computes)
        axes = ", ".join(f"n{a}" for a in range(self.d)) or "none (0-d)"
        lines.append(f"index space: {axes}")
        if self.red is not None:
            reduced = ", ".join(f"n{a}" for a in range(self.kept, self.d))
            lines.append(f"reduction: {self.red.op} over {reduced}, accumulating in {self.red.acc_dtype}")
        for b in k.buffers:
            role = "writes" if b.output else "reads "
            shape = "scalar" if b.ndim == 0 else ("indexed by kept axes" if b.outer else "indexed by all axes")
            lines.append(f"{role} {b.name}: {b.dtype}, {shape}")
        lines = [line.replace("*/", "* /") for line in lines]
        return ["/* " + lines[0] + " */"] if len(lines) == 2 else _block_comment(lines).splitlines()

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

    def strided_index(self, axes, unit_last=False):
        """A buffer's element offset at indices ``i{a}`` of ``axes``; with ``unit_last``, for
        buffers known to have stride 1 on the last axis (see :meth:`unit_stride_test`)."""
        last = self.d - 1

        def index(buffer):
            used = range(self.kept) if buffer.outer else axes
            terms = [f"i{a}" if unit_last and a == last else f"i{a} * {buffer.name}_s{a}" for a in used]
            return " + ".join(terms) or "0"

        return index

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
        scratch = _Writer()
        self.emit(scratch, body, self.strided_index(range(self.d)))
        return any(_VECTOR_MATH_CALL.search(line) for line in scratch.lines)

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
        w.line(f"{C_TYPES[red.acc_dtype]} acc = {self.initial(red)};{_comment('accumulates ' + red.note)}")
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
        w.line(f"const int short_rows = unit && n{self.d - 1} < EXPRC_SHORT_ROW;"
               "  /* rows too short for a SIMD loop: a block of them at a time */")

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
        w.line(f"{acc_type} accs[EXPRC_COLUMNS];{_comment('accumulate ' + red.note)}")
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
        times a range of the last axis); the entry point runs it on all cores, split by rows
        or, when there are fewer rows than threads, by columns, or on this thread."""
        red, fn, d = self.red, self.fn, self.d
        acc_type = C_TYPES[red.acc_dtype]
        tracks_nan, _, reduction_clause = self._reduction_parts()
        nan_param = ", int *nan_seen_out" if tracks_nan else ""
        last = d - 1
        w.line(f"/* reduces rows first..last of axes before n{last} (C order) times i{last} in from..to into acc */")
        w.open(f"static {acc_type} {fn}_partial(const int64_t *args, int64_t first, int64_t last, "
               f"int64_t from, int64_t to, {acc_type} acc{nan_param})")
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
        w.open(f"void {fn}(const int64_t *args)")
        self.unpack(w)
        self.invariants(w, by_level[0])
        index = lambda b: "0"  # noqa: E731 - the result and the epilogue inputs have one element
        if by_level[1]:
            self.emit(w, by_level[1], index)
        nan_arg = ", &nan_seen" if tracks_nan else ""
        rows = " * ".join(f"n{a}" for a in range(last)) or "1"
        w.line(f"const int64_t rows = {rows}, cols = n{last};")
        w.line(f"{acc_type} acc = {self.initial(red)};{_comment('accumulates ' + red.note)}")
        if tracks_nan:
            w.line("int nan_seen = 0;")
        w.open("if (size >= EXPRC_PARALLEL_MIN)")
        w.line(f"#pragma omp parallel {reduction_clause}")
        w.line("{")
        w.depth += 1
        w.line("int64_t first = 0, last = rows, from = 0, to = cols;")
        w.line("if (rows >= exprc_threads()) exprc_thread_range(rows, &first, &last);")
        w.line("else exprc_thread_range(cols, &from, &to);")
        w.line(f"if (first < last && from < to) acc = {fn}_partial(args, first, last, from, to, acc{nan_arg});")
        w.close()
        w.close("} else {")
        w.depth += 1
        w.line(f"acc = {fn}_partial(args, 0, rows, 0, cols, acc{nan_arg});")
        w.close()
        self.emit(w, acc + by_level[3], index)
        self.store_lines(w, index)
        w.close()

    def _prologue_buffers(self, by_level):
        """The buffers the reduction's inner loop reads."""
        return [e.buffer for e in by_level[2] if isinstance(e, ir.Load)]

    def initial(self, red):
        if red.initial is not None:
            return c_literal(red.initial, red.acc_dtype)
        kind = dtype_class(red.acc_dtype)
        if red.op in ("add", "or"):
            return "0"
        if red.op in ("mul", "and"):
            return "1"
        bits = 8 * {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4}.get(red.acc_dtype, 8)
        if red.op == "max":
            return {"f": "-INFINITY", "i": f"INT{bits}_MIN", "u": "0", "b": "0"}[kind]
        return {"f": "INFINITY", "i": f"INT{bits}_MAX", "u": f"UINT{bits}_MAX", "b": "1"}[kind]

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

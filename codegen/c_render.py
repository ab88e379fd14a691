"""Rendering kernels to readable C.

Each kernel becomes one exported function ``void kN_name(const int64_t *args)``
taking its run-time arguments packed in one array (see :func:`arg_layout`):
the index space lengths, a flag saying every array is contiguous in index
order, then per buffer a pointer and (unless it is a scalar) one stride per
index axis, in elements. The body unpacks them into named locals, hoists what
does not change per element, and loops:

- elementwise kernels: a contiguous fast path (one flat loop) and a strided
  path (one loop per axis, innermost last); the runner orders the axes by
  stride and merges the ones it can, so "contiguous" is the common case;
- reduction kernels: kept axes outside, reduced axes inside, with the
  epilogue after the innermost loops.

The outer loop runs on all cores (``#pragma omp parallel for``) when the index
space has at least ``EXPRC_PARALLEL_MIN`` elements (the loops are written twice,
parallel and not, since entering an OpenMP region costs even when it stays on
one thread); inner loops carry
``#pragma omp simd``, and glibc's vector math (libmvec) is declared so that
exp, log, sin... vectorize too.

>>> from codegen import kernel_ir as ir
>>> x = ir.Buffer("x", "float64", 1); out = ir.Buffer("out", "float64", 1, output=True)
>>> k = ir.Kernel("k0_exp_x", 1, (x, out), ((out, ir.Call("exp", (ir.Load(x),), "float64", "exp(x)")),))
>>> render_kernel(k).splitlines()[1]
' * k0_exp_x'
"""
from . import kernel_ir as ir
from .c_ops import C_TYPES, c_expression, c_literal, dtype_class, helper_source, helpers_used

#: Index spaces with fewer elements than this run on one thread.
PARALLEL_MIN = 32768

INDENT = "    "

_PRELUDE = """\
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>

/* Loops over at least this many elements run on all cores. */
#define EXPRC_PARALLEL_MIN {parallel_min}

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

    >>> from codegen import kernel_ir as ir
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
    then, for ``segments`` (see :mod:`codegen.segments`), the run time and their entry points."""
    helpers = {}
    for kernel in kernels:
        for expr in _all_exprs(kernel):
            if isinstance(expr, ir.Call):
                dtype = _loop_dtype(expr)
                for name in helpers_used(expr.op, dtype):
                    helpers.setdefault((name, dtype), helper_source(name, dtype))
    parts = []
    if title:
        parts.append(_block_comment(title.splitlines()))
    parts.append(_PRELUDE.format(parallel_min=PARALLEL_MIN, more_simd=_more_simd()))
    parts.extend(helpers.values())
    parts.extend(render_kernel(k) for k in kernels)
    if segments:
        from .c_call import OBJECT_HEAD
        from .c_entry import max_rank, render_segment
        from .c_runtime import runtime_source

        parts.append(runtime_source(max_rank(segments), OBJECT_HEAD))
        parts.extend(render_segment(s, texts or {}) for s in segments)
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _loop_dtype(call):
    """The dtype that picks a call's formula: its inputs' (its values' for ``where``)."""
    return call.dtype if call.op == "where" else call.args[0].dtype


def declaration(kernel):
    """The C declaration of ``kernel``'s entry point (for cffi's ``cdef``)."""
    return f"void {kernel.name}(const int64_t *args);"


def _all_exprs(kernel):
    roots = [e for _, e in kernel.stores]
    if kernel.reduction is not None:
        roots.append(kernel.reduction.value)
    return ir.walk(roots)


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


class _KernelRenderer:
    def __init__(self, kernel):
        self.k = kernel
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
            rhs = f"({arg} != 0)" if expr.dtype == "bool" else f"({ctype}){arg}"
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
        w.open(f"void {k.name}(const int64_t *args)")
        self.unpack(w)
        memo = {}
        exprs = _all_exprs(k)
        by_level = {lv: [e for e in exprs if self.level(e, memo) == lv and not isinstance(e, ir.Acc)] for lv in range(4)}
        acc = [e for e in exprs if isinstance(e, ir.Acc)]
        if by_level[0]:
            w.line("/* values that are the same for every element */")
            self.emit(w, by_level[0], None)
        if self.red is None:
            loops = lambda parallel: self.elementwise_loops(w, by_level[1] + by_level[2], parallel)  # noqa: E731
        else:
            loops = lambda parallel: self.reduction_loops(w, by_level, acc, parallel)  # noqa: E731
        if self.d == 0:
            loops(False)
        else:
            # Two copies of the loops: an OpenMP parallel region costs about half a
            # microsecond even when its "if" clause keeps it on one thread.
            w.open("if (size >= EXPRC_PARALLEL_MIN)")
            loops(True)
            w.close("} else {")
            w.depth += 1
            loops(False)
            w.close()
        w.close()
        return "\n".join(w.lines)

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

    def strided_index(self, axes):
        def index(buffer):
            used = range(self.kept) if buffer.outer else axes
            terms = [f"i{a} * {buffer.name}_s{a}" for a in used]
            return " + ".join(terms) or "0"

        return index

    def store_lines(self, w, index):
        for buffer, expr in self.k.stores:
            w.line(f"{buffer.name}[{index(buffer)}] = {self.name(expr)};")

    def elementwise_loops(self, w, body, parallel):
        d = self.d
        if d == 0:
            self.emit(w, body, lambda b: "0")
            self.store_lines(w, lambda b: "0")
            return
        w.open("if (contiguous)")
        w.line("/* fast path: every array is contiguous in index order */")
        w.line("#pragma omp parallel for simd schedule(static)" if parallel else "#pragma omp simd")
        w.open("for (int64_t i = 0; i < size; ++i)")
        self.emit(w, body, lambda b: "i")
        self.store_lines(w, lambda b: "i")
        w.close()
        w.close("} else {")
        w.depth += 1
        w.line("/* strided path: any strides, 0 where an axis broadcasts */")
        if d == 1:
            w.line("#pragma omp parallel for simd schedule(static)" if parallel else "#pragma omp simd")
        elif parallel:
            collapse = f" collapse({d - 1})" if d > 2 else ""
            w.line(f"#pragma omp parallel for{collapse} schedule(static)")
        for a in range(d):
            if a == d - 1 and d > 1:
                w.line("#pragma omp simd")
            w.open(f"for (int64_t i{a} = 0; i{a} < n{a}; ++i{a})")
        index = self.strided_index(range(d))
        self.emit(w, body, index)
        self.store_lines(w, index)
        for _ in range(d):
            w.close()
        w.close()

    def reduction_loops(self, w, by_level, acc, parallel):
        red, d, kept = self.red, self.d, self.kept
        acc_type = C_TYPES[red.acc_dtype]
        is_float = dtype_class(red.dtype) == "f"
        tracks_nan = red.op in ("max", "min") and is_float
        clause = {"add": "+", "mul": "*", "max": "max", "min": "min", "and": "&", "or": "|"}[red.op]
        reduction_clause = f"reduction({clause}:acc)" + (" reduction(|:nan_seen)" if tracks_nan else "")
        index = self.strided_index(range(d))
        if kept:
            collapse = f" collapse({kept})" if kept > 1 else ""
            if parallel:
                w.line(f"#pragma omp parallel for{collapse} schedule(static)")
            for a in range(kept):
                w.open(f"for (int64_t i{a} = 0; i{a} < n{a}; ++i{a})")
        else:
            w.line("{")
            w.depth += 1
        if by_level[1]:
            self.emit(w, by_level[1], index)
        w.line(f"{acc_type} acc = {self.initial(red)};{_comment('accumulates ' + red.note)}")
        if tracks_nan:
            w.line("int nan_seen = 0;")
        for a in range(kept, d):
            if a == d - 1:
                if kept == 0 and a == 0 and parallel:
                    w.line(f"#pragma omp parallel for simd {reduction_clause} schedule(static)")
                else:
                    w.line(f"#pragma omp simd {reduction_clause}")
            elif kept == 0 and a == 0 and parallel:
                w.line(f"#pragma omp parallel for {reduction_clause} schedule(static)")
            w.open(f"for (int64_t i{a} = 0; i{a} < n{a}; ++i{a})")
        self.emit(w, by_level[2], index)
        w.line(self.update(red))
        for _ in range(kept, d):
            w.close()
        self.emit(w, acc + by_level[3], index)
        self.store_lines(w, index if kept else (lambda b: "0"))
        for _ in range(max(kept, 1)):
            w.close()

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

    def update(self, red):
        v = self.name(red.value)
        acc_type = C_TYPES[red.acc_dtype]
        if red.op == "add":
            return f"acc += ({acc_type}){v};"
        if red.op == "mul":
            return f"acc *= ({acc_type}){v};"
        if red.op == "and":
            return f"acc &= {v};"
        if red.op == "or":
            return f"acc |= {v};"
        cmp = ">" if red.op == "max" else "<"
        text = f"acc = {v} {cmp} acc ? {v} : acc;"
        if dtype_class(red.dtype) == "f":
            text += f" nan_seen |= ({v} != {v});"
        return text

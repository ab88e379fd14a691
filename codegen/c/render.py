"""Rendering a program's kernels to readable C.

Each kernel becomes one exported function taking its arguments packed in one array
(:func:`~exprc.codegen.cfamily.renderer.arg_layout`), its loops written by
:mod:`exprc.codegen.c.loops`; row passes are rendered by :mod:`exprc.codegen.c.row_pass`,
and :func:`render_sources` splits a big program into translation units.
See docs/internals/c-back-end.md.

>>> from exprc.codegen.ir import kernel as ir
>>> x = ir.Buffer("x", "float64", 1); out = ir.Buffer("out", "float64", 1, output=True)
>>> k = ir.Kernel("k0_exp_x", 1, (x, out), ((out, ir.Call("exp", (ir.Load(x),), "float64", "exp(x)")),))
>>> render_kernel(k).splitlines()[1]
' * k0_exp_x'
"""

import re
from dataclasses import dataclass

from exprc.codegen.c import row_pass as c_row_pass
from exprc.codegen.c.call import OBJECT_HEAD
from exprc.codegen.c.entry import max_rank, render_segment
from exprc.codegen.c.loops import CKernelRenderer
from exprc.codegen.c.runtime import pool_header, runtime_header
from exprc.codegen.cfamily import templates
from exprc.codegen.cfamily.formulas import (
    LIBMVEC_2_35_BINARY_FUNCTIONS,
    LIBMVEC_2_35_FUNCTIONS,
    helper_source,
    helpers_used,
)
from exprc.codegen.cfamily.renderer import all_exprs, block_comment, join, loop_dtype
from exprc.codegen.ir import kernel as ir

#: Index spaces with fewer elements than this run on one thread. A job on the pool costs
#: 1.5-3 us with the workers awake, 3-60 us after they rested (the futex wake, on a shared
#: 2-core VM); x * y + 1 over 32,768 float64 took 16 us on one thread and 20 us on two, over
#: 65,536 28 and 31 us, exp(x) * sin(y) over 65,536 316 and 194 us.
PARALLEL_MIN = 65536

#: What every program starts with: macros, the binding to the run time and the parallel
#: runner, libmvec's declarations.
_PRELUDE = templates.read(__package__, "prelude.h")


def _prelude():
    return templates.fill(_PRELUDE, PARALLEL_MIN=PARALLEL_MIN, MORE_SIMD=_more_simd(), POOL_H=pool_header())


def _more_simd():
    lines = []
    for name in LIBMVEC_2_35_FUNCTIONS:
        lines += [
            "#pragma omp declare simd notinbranch",
            f"double {name}(double);",
            "#pragma omp declare simd notinbranch",
            f"float {name}f(float);",
        ]
    for name in LIBMVEC_2_35_BINARY_FUNCTIONS:
        lines += [
            "#pragma omp declare simd notinbranch",
            f"double {name}(double, double);",
            "#pragma omp declare simd notinbranch",
            f"float {name}f(float, float);",
        ]
    return "\n".join(lines)


def render_program(kernels, title="", segments=(), texts=None):
    """The C source of a whole program: prelude, the helpers the kernels use, the kernels,
    then, for ``segments`` (see :mod:`exprc.codegen.ir.segments`), the run time and their entry points."""
    return render_parts(kernels, title, segments, texts).source


#: Characters of kernel code (comments left out) that make a translation unit of their own
#: worth it: compiling units at the same time must save more than each unit's start
#: (headers, prelude) and the link cost.
UNIT_SIZE = 20000


@dataclass
class RenderedProgram:
    """A program's C: ``source`` as :func:`render_program` gives it, ``units`` (see
    :func:`render_parts`) or None, and ``kernels``, each kernel's name -> its text in ``source``."""

    source: str
    units: list | None
    kernels: dict
    #: ``source`` with the fixed prelude and run-time declarations left out, a comment in their
    #: place: the plan, the kernels and the entry points, for people (``f.source``).
    readable: str = ""


def render_sources(kernels, title="", segments=(), texts=None, max_units=1):
    """``(source, units)`` of :func:`render_parts`."""
    rendered = render_parts(kernels, title, segments, texts, max_units)
    return rendered.source, rendered.units


def render_parts(kernels, title="", segments=(), texts=None, max_units=1):
    """The :class:`RenderedProgram` of ``kernels``: the source (to be linked with the run
    time, :func:`exprc.codegen.c.runtime.runtime_source`, when it has ``segments``), each
    kernel's text, and, for a program big enough (see :data:`UNIT_SIZE`) when ``max_units``
    > 1, the same as up to ``max_units`` translation units to compile at the same time and
    link (else None).

    Each unit has the prelude, the helpers and every kernel's declaration; the first has
    the run time and the entry points; the kernels are spread over the units by size (the
    first counting the run time's)."""
    head, kernel_texts, tail = _program_parts(kernels, title, segments, texts)
    source = join(head + kernel_texts + tail)
    by_name = {k.name: text for k, text in zip(kernels, kernel_texts)}
    readable = _readable(head, kernel_texts, tail, bool(title), bool(segments))
    cost = {id(t): _code_size(t) for t in kernel_texts}
    count = min(max_units, 1 + sum(cost.values()) // UNIT_SIZE)
    if count < 2:
        return RenderedProgram(source, None, by_name, readable)
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
    return RenderedProgram(
        source,
        [
            join(head + [prototypes] + sorted(unit, key=lambda t: order[id(t)]) + (tail if i == 0 else []))
            for i, unit in enumerate(units)
        ],
        by_name,
        readable,
    )


def _readable(head, kernel_texts, tail, titled, has_runtime):
    """The program without the fixed parts every program shares (the prelude; the run time's
    declarations), a comment saying where they went; the helpers and kernels stay."""
    title, prelude, helpers = (head[:1], head[1], head[2:]) if titled else ([], head[0], head[1:])
    fixed = [prelude] + (tail[:1] if has_runtime else [])
    lines = sum(text.count("\n") + 1 for text in fixed)
    pointer = block_comment(
        [
            f"The prelude and the run time's declarations ({lines} lines, the same in every program)",
            "are left out here: f.source_full shows the whole file.",
        ]
    )
    return join(title + [pointer] + helpers + kernel_texts + (tail[1:] if has_runtime else tail))


def _code_size(text):
    """The length of C ``text`` without its comments: what the compiler works on."""
    return len(_COMMENTS.sub("", text))


def _program_parts(kernels, title, segments, texts):
    """``(head, kernel texts, tail)``: the title, prelude and helpers; each kernel; the run
    time and the segments' entry points."""
    helpers = {}
    for kernel in kernels:
        for expr in all_exprs(kernel):
            if isinstance(expr, ir.Call):
                dtype = loop_dtype(expr)
                for name in helpers_used(expr.op, dtype):
                    helpers.setdefault((name, dtype), helper_source(name, dtype))
    head = []
    if title:
        head.append(block_comment(title.splitlines()))
    head.append(_prelude())
    head.extend(helpers.values())
    head.extend(c_row_pass.support(kernels))
    tail = []
    if segments:
        tail.append(runtime_header(max_rank(segments), OBJECT_HEAD))
        tail.extend(render_segment(s, texts or {}) for s in segments)
    return head, render_kernels(kernels), tail


def declaration(kernel):
    """The C declaration of ``kernel``'s entry point (for cffi's ``cdef``); a row pass returns
    1 when it runs out of memory, else 0."""
    if isinstance(kernel, ir.RowPassKernel):
        return f"int {kernel.name}(const int64_t *args);"
    return f"void {kernel.name}(const int64_t *args);"


def render_kernel(kernel):
    """The C function computing ``kernel``."""
    return CKernelRenderer(kernel).render()


_PLACEHOLDER = "exprc_kernel_name_"
_COMMENTS = re.compile(r"/\*.*?\*/", re.S)


def render_kernels(kernels):
    """The C of ``kernels``, each in full once: a kernel whose code is the same as an earlier
    one's (gradients often compute one expression in several places) calls that one."""
    texts, first = [], {}
    for kernel in kernels:
        if isinstance(kernel, ir.RowPassKernel):
            text = c_row_pass.render_row_pass(kernel, _PLACEHOLDER)
        elif isinstance(kernel, ir.RowChainKernel):
            text = c_row_pass.render_row_chain(kernel, _PLACEHOLDER)
        else:
            text = CKernelRenderer(kernel, _PLACEHOLDER).render()
        key = _COMMENTS.sub("", text)
        if key in first:
            same = first[key]
            note = f" (computes {kernel.note})".replace("*/", "* /") if kernel.note else ""
            body = f"return {same}(args);" if isinstance(kernel, ir.RowPassKernel) else f"{same}(args);"
            texts.append(f"/* {kernel.name}: the same code as {same}{note} */\n{declaration(kernel)[:-1]} {{ {body} }}")
            continue
        first[key] = kernel.name
        texts.append(text.replace(_PLACEHOLDER, kernel.name))
    return texts

"""The names C and CUDA code keep for themselves: keywords, the functions the formulas call,
the renderers' locals and the names they derive from a buffer's (``x_v``, ``x_s0``). A buffer
named after a user's variable must be none of them; each back end's target says so."""

import re

#: C's keywords and types, and the macros the kernels use.
C_WORDS = frozenset(
    {
        "auto",
        "break",
        "case",
        "char",
        "const",
        "continue",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "extern",
        "float",
        "for",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "register",
        "restrict",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "struct",
        "switch",
        "typedef",
        "union",
        "unsigned",
        "void",
        "volatile",
        "while",
        "bool",
        "true",
        "false",
        "NAN",
        "INFINITY",
    }
)

#: The libm functions the formulas call.
LIBM_WORDS = frozenset(
    {
        "exp",
        "exp2",
        "log",
        "log2",
        "log10",
        "log1p",
        "expm1",
        "sqrt",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "tanh",
        "asinh",
        "acosh",
        "atanh",
        "rint",
        "floor",
        "ceil",
        "trunc",
        "erf",
        "erfc",
        "fabs",
        "fmod",
        "pow",
        "atan2",
        "hypot",
        "copysign",
        "isnan",
        "isinf",
        "isfinite",
        "lgamma_r",
    }
)

#: The locals of the C loops (exprc.codegen.c.loops, exprc.codegen.c.row_pass).
C_LOCALS = frozenset(
    {
        "out",
        "args",
        "size",
        "contiguous",
        "acc",
        "nan_seen",
        "result",
        "i",
        "first",
        "last",
        "rest",
        "row",
        "rows",
        "cols",
        "from",
        "to",
        "unit",
        "blk",
        "nblocks",
        "start",
        "chunk",
        "rows_in_chunk",
        "col",
        "xc",
        "rowdot",
        "sums",
        "columns",
        "scratch",
    }
)

#: What CUDA C++ defines in every kernel, and its keywords beyond C's.
CUDA_WORDS = frozenset(
    {
        "threadIdx",
        "blockIdx",
        "blockDim",
        "gridDim",
        "warpSize",
        "dim3",
        "lgamma",
        "tgamma",
        "min",
        "max",
        "half",
        "new",
        "delete",
        "this",
        "class",
        "template",
        "typename",
        "namespace",
        "operator",
        "private",
        "public",
        "protected",
        "virtual",
        "friend",
        "using",
        "try",
        "catch",
        "throw",
        "asm",
        "explicit",
        "mutable",
    }
)

#: Names the renderers make: lengths, indices, constants and values (``n0``, ``i0``, ``c0``,
#: ``v0``), partial results, a buffer's strides, element and vector (``x_s0``, ``x_v``,
#: ``x_w``), types (``x_t``), and the run time's ``exprc_`` names.
DERIVED = re.compile(r"[nicv]\d+|(sum|part|weight)\d+|.*_s\d+|.*_[vwt]|exprc_.*")

#: CUDA's vector types (``float4``, ``uchar2`` ...).
CUDA_VECTOR_TYPES = re.compile(r"(u?(char|short|int|long|longlong)|float|double)[1-4]")


def reserved_by(words, *patterns):
    """``reserves(name)``: whether ``name`` is one of ``words`` or matches a pattern."""

    def reserves(name):
        return name in words or any(p.fullmatch(name) for p in patterns)

    return reserves

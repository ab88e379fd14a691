"""The C formula of every scalar operation, in one table, with NumPy's semantics.

:data:`C_OPS` maps an exprc ``ScalarOp`` name to a C template per dtype class (``b``, ``i``,
``u``, ``f``) of the operation's loop dtype; an operation or class missing there runs
through NumPy. The CUDA back end uses the same table.
See docs/internals/adding-an-op.md and docs/internals/c-back-end.md.

>>> c_expression("add", "int32", ["a", "b"])
'(int32_t)((uint32_t)a + (uint32_t)b)'
>>> c_expression("exp", "float32", ["x"])
'expf(x)'
"""

import functools
import re

import numpy as np

#: The C type that holds each dtype (bools are bytes holding 0 or 1, as in NumPy).
C_TYPES = {
    "bool": "uint8_t",
    "int8": "int8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "int64": "int64_t",
    "uint8": "uint8_t",
    "uint16": "uint16_t",
    "uint32": "uint32_t",
    "uint64": "uint64_t",
    "float32": "float",
    "float64": "double",
}

#: The dtypes the C back end computes with (float16 runs through NumPy).
C_DTYPES = tuple(C_TYPES)


def dtype_class(dtype):
    """``'b'``, ``'i'``, ``'u'`` or ``'f'`` for a dtype name."""
    return np.dtype(dtype).kind


def _wide_unsigned(dtype):
    return "uint64_t" if np.dtype(dtype).itemsize == 8 else "uint32_t"


def _float_fns(names):
    """Rows for libm functions whose C name differs from exprc's only where given."""
    return {ours: {"f": f"{theirs}{{F}}({{0}})"} for ours, theirs in names.items()}


_WRAP = "({T})(({U}){0} {op} ({U}){1})"

C_OPS = {
    # --- unary arithmetic ---------------------------------------------------
    "negative": {"i": "({T})(({U})0 - ({U}){0})", "u": "({T})(({U})0 - ({U}){0})", "f": "-{0}"},
    "abs": {"b": "{0}", "i": "({0} < 0 ? ({T})(({U})0 - ({U}){0}) : {0})", "u": "{0}", "f": "fabs{F}({0})"},
    "sign": {
        "i": "({T})(({0} > 0) - ({0} < 0))",
        "u": "({T})({0} > 0)",
        # NaN stays NaN; -0.0 and 0.0 give 0.
        "f": "({0} > 0 ? ({T})1 : {0} < 0 ? ({T})-1 : {0} == 0 ? ({T})0 : {0})",
    },
    "square": {
        "i": _WRAP.replace("{op}", "*").replace("{1}", "{0}"),
        "u": _WRAP.replace("{op}", "*").replace("{1}", "{0}"),
        "f": "{0} * {0}",
    },
    **_float_fns(
        {
            "exp": "exp",
            "exp2": "exp2",
            "log": "log",
            "log2": "log2",
            "log10": "log10",
            "log1p": "log1p",
            "expm1": "expm1",
            "sqrt": "sqrt",
            "sin": "sin",
            "cos": "cos",
            "tan": "tan",
            "arcsin": "asin",
            "arccos": "acos",
            "arctan": "atan",
            "sinh": "sinh",
            "cosh": "cosh",
            "tanh": "tanh",
            "arcsinh": "asinh",
            "arccosh": "acosh",
            "arctanh": "atanh",
            "rint": "rint",
        }
    ),
    # floor/ceil/trunc of an integer is the integer itself (NumPy 2 keeps the dtype).
    "floor": {"b": "{0}", "i": "{0}", "u": "{0}", "f": "floor{F}({0})"},
    "ceil": {"b": "{0}", "i": "{0}", "u": "{0}", "f": "ceil{F}({0})"},
    "trunc": {"b": "{0}", "i": "{0}", "u": "{0}", "f": "trunc{F}({0})"},
    # Computed in double and rounded once, exactly as the NumPy reference does (see lower.py).
    "sigmoid": {"f": "exprc_sigmoid({0})"},
    "softplus": {"f": "exprc_softplus({0})"},
    "erf": {"f": "erf({0})"},
    "erfc": {"f": "erfc({0})"},
    "gammaln": {"f": "exprc_gammaln({0})"},
    # --- predicates -----------------------------------------------------------
    "isnan": {"b": "0", "i": "0", "u": "0", "f": "(isnan({0}) != 0)"},
    "isinf": {"b": "0", "i": "0", "u": "0", "f": "(isinf({0}) != 0)"},
    "isfinite": {"b": "1", "i": "1", "u": "1", "f": "(isfinite({0}) != 0)"},
    "logical_not": {k: "({0} == 0)" for k in "biuf"},
    "invert": {"b": "({0} == 0)", "i": "({T})~{0}", "u": "({T})~{0}"},
    # --- binary arithmetic ----------------------------------------------------
    "add": {"b": "({0} | {1})", "i": _WRAP.replace("{op}", "+"), "u": _WRAP.replace("{op}", "+"), "f": "{0} + {1}"},
    "subtract": {"i": _WRAP.replace("{op}", "-"), "u": _WRAP.replace("{op}", "-"), "f": "{0} - {1}"},
    "multiply": {
        "b": "({0} & {1})",
        "i": _WRAP.replace("{op}", "*"),
        "u": _WRAP.replace("{op}", "*"),
        "f": "{0} * {1}",
    },
    "true_divide": {"f": "{0} / {1}"},
    "floor_divide": {k: "exprc_floor_divide_{S}({0}, {1})" for k in "iuf"},
    "mod": {k: "exprc_mod_{S}({0}, {1})" for k in "iuf"},
    "power": {"i": "exprc_power_{S}({0}, {1})", "u": "exprc_power_{S}({0}, {1})", "f": "pow{F}({0}, {1})"},
    "maximum": {
        "b": "({0} | {1})",
        "i": "({0} >= {1} ? {0} : {1})",
        "u": "({0} >= {1} ? {0} : {1})",
        "f": "(({0} >= {1} || isnan({0})) ? {0} : {1})",
    },
    "minimum": {
        "b": "({0} & {1})",
        "i": "({0} <= {1} ? {0} : {1})",
        "u": "({0} <= {1} ? {0} : {1})",
        "f": "(({0} <= {1} || isnan({0})) ? {0} : {1})",
    },
    "arctan2": {"f": "atan2{F}({0}, {1})"},
    "hypot": {"f": "hypot{F}({0}, {1})"},
    # --- comparisons and logic (results are bools: 0 or 1) ----------------------
    "equal": {k: "({0} == {1})" for k in "biuf"},
    "not_equal": {k: "({0} != {1})" for k in "biuf"},
    "less": {k: "({0} < {1})" for k in "biuf"},
    "less_equal": {k: "({0} <= {1})" for k in "biuf"},
    "greater": {k: "({0} > {1})" for k in "biuf"},
    "greater_equal": {k: "({0} >= {1})" for k in "biuf"},
    "logical_and": {"b": "({0} & {1})", **{k: "(({0} != 0) & ({1} != 0))" for k in "iuf"}},
    "logical_or": {"b": "({0} | {1})", **{k: "(({0} != 0) | ({1} != 0))" for k in "iuf"}},
    "logical_xor": {"b": "({0} ^ {1})", **{k: "(({0} != 0) ^ ({1} != 0))" for k in "iuf"}},
    "bitwise_and": {k: "({T})({0} & {1})" for k in "biu"},
    "bitwise_or": {k: "({T})({0} | {1})" for k in "biu"},
    "bitwise_xor": {k: "({T})({0} ^ {1})" for k in "biu"},
    # --- selection --------------------------------------------------------------
    "where": {k: "({0} ? {1} : {2})" for k in "biuf"},
    "clip": {k: "exprc_clip_{S}({0}, {1}, {2})" for k in "biuf"},
}


def has_c(op_name, dtype):
    """Whether ``op_name`` has a C formula for loop dtype ``dtype``.

    >>> has_c("mod", "float64"), has_c("invert", "float64"), has_c("exp", "float16")
    (True, False, False)
    """
    return dtype in C_TYPES and dtype_class(dtype) in C_OPS.get(op_name, {})


#: The libm functions with SIMD variants in glibc's vector math library (libmvec), of one
#: argument and of two; then those it has since glibc 2.35.
LIBMVEC_FUNCTIONS = ("exp", "log", "sin", "cos")
LIBMVEC_BINARY_FUNCTIONS = ("pow",)
LIBMVEC_2_35_FUNCTIONS = (
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cosh",
    "erf",
    "erfc",
    "exp2",
    "expm1",
    "log10",
    "log1p",
    "log2",
    "sinh",
    "tan",
    "tanh",
)
LIBMVEC_2_35_BINARY_FUNCTIONS = ("atan2", "hypot")

#: Helpers (see :func:`helper_source`) that call a function of libmvec.
_VECTOR_MATH_HELPERS = ("exprc_sigmoid", "exprc_softplus", "exprc_gammaln")

_VECTOR_MATH_NAMES = (
    LIBMVEC_FUNCTIONS
    + LIBMVEC_BINARY_FUNCTIONS
    + _VECTOR_MATH_HELPERS
    + LIBMVEC_2_35_FUNCTIONS
    + LIBMVEC_2_35_BINARY_FUNCTIONS
)
_VECTOR_MATH_CALL = re.compile(r"\b(?:" + "|".join(_VECTOR_MATH_NAMES) + r")f?\(")


@functools.cache
def calls_vector_math(op_name, dtype):
    """Whether the formula of ``op_name`` for loop dtype ``dtype`` calls a function with a SIMD
    variant in libmvec, directly or through a helper: a SIMD loop of it calls the vector
    variant, so a loop over short rows is better turned to run down a block of rows.

    >>> calls_vector_math("tanh", "float32"), calls_vector_math("sigmoid", "float64"), calls_vector_math("add", "float64")
    (True, True, False)
    """
    return bool(_VECTOR_MATH_CALL.search(c_expression(op_name, dtype, ["a", "b", "c"])))


def c_expression(op_name, dtype, args):
    """The C expression computing ``op_name`` on ``args`` (C expressions of loop dtype ``dtype``)."""
    template = C_OPS[op_name][dtype_class(dtype)]
    return template.format(
        *args, T=C_TYPES[dtype], U=_wide_unsigned(dtype), F="f" if dtype == "float32" else "", S=dtype
    )


def helpers_used(op_name, dtype):
    """The names of the helper functions (see :func:`helper_source`) the formula calls."""
    text = c_expression(op_name, dtype, ["a", "b", "c"])
    return [h for h in _HELPERS if h.format(S=dtype) in text]


def helper_source(name, dtype):
    """The C definition of helper ``name`` (as in :data:`_HELPERS`) for ``dtype``."""
    body = _HELPERS[name][dtype_class(dtype)]
    return body.format(S=dtype, T=C_TYPES[dtype], U=_wide_unsigned(dtype), F="f" if dtype == "float32" else "")


# Helper functions, by the name pattern they are called by, per dtype class. Braces in
# the C bodies are doubled for str.format.
_HELPERS = {
    "exprc_floor_divide_{S}": {
        "i": """\
/* {S} floor division as in Python; x // 0 is 0 and MIN // -1 wraps, as in NumPy. */
static inline {T} exprc_floor_divide_{S}({T} a, {T} b)
{{
    if (b == 0) return 0;
    if (b == -1) return ({T})(({U})0 - ({U})a);
    {T} q = ({T})(a / b);
    if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
    return q;
}}""",
        "u": """\
/* {S} floor division; x // 0 is 0, as in NumPy. */
static inline {T} exprc_floor_divide_{S}({T} a, {T} b)
{{
    return b == 0 ? 0 : ({T})(a / b);
}}""",
        "f": """\
/* {S} floor division as NumPy computes it (npy_divmod): fmod, then snap to an integer. */
static inline {T} exprc_floor_divide_{S}({T} a, {T} b)
{{
    if (b == 0) return a / b;
    {T} mod = fmod{F}(a, b);
    {T} div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;
    if (div == 0) return copysign{F}(0.0{F}, a / b);
    {T} floordiv = floor{F}(div);
    if (div - floordiv > 0.5{F}) floordiv += 1;
    return floordiv;
}}""",
    },
    "exprc_mod_{S}": {
        "i": """\
/* {S} remainder with the sign of the divisor, as in Python; x % 0 is 0, as in NumPy. */
static inline {T} exprc_mod_{S}({T} a, {T} b)
{{
    if (b == 0 || b == -1) return 0;
    {T} r = ({T})(a % b);
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}}""",
        "u": """\
/* {S} remainder; x % 0 is 0, as in NumPy. */
static inline {T} exprc_mod_{S}({T} a, {T} b)
{{
    return b == 0 ? 0 : ({T})(a % b);
}}""",
        "f": """\
/* {S} remainder with the sign of the divisor, as NumPy computes it (npy_divmod). */
static inline {T} exprc_mod_{S}({T} a, {T} b)
{{
    {T} mod = fmod{F}(a, b);
    if (b == 0) return mod;
    if (mod != 0) {{
        if ((b < 0) != (mod < 0)) mod += b;
    }} else {{
        mod = copysign{F}(0.0{F}, b);
    }}
    return mod;
}}""",
    },
    "exprc_power_{S}": {
        "i": """\
/* {S} power by squaring, wrapping on overflow as NumPy does. Kernels get only exponents
   known not to be negative (NumPy raises for those: such a power stays a NumPy step); the
   truncated result (0 unless |base| is 1) is there for the rest of the type's range. */
static inline {T} exprc_power_{S}({T} base, {T} exponent)
{{
    if (exponent < 0) {{
        if (base == 1) return 1;
        if (base == -1) return (exponent & 1) ? -1 : 1;
        return 0;
    }}
    {U} b = ({U})base, r = 1;
    while (exponent) {{
        if (exponent & 1) r *= b;
        b *= b;
        exponent >>= 1;
    }}
    return ({T})r;
}}""",
        "u": """\
/* {S} power by squaring, wrapping on overflow as NumPy does. */
static inline {T} exprc_power_{S}({T} base, {T} exponent)
{{
    {U} b = base, r = 1;
    while (exponent) {{
        if (exponent & 1) r *= b;
        b *= b;
        exponent >>= 1;
    }}
    return ({T})r;
}}""",
    },
    "exprc_clip_{S}": {
        **{
            k: """\
/* {S} clip: minimum(maximum(x, lo), hi). */
static inline {T} exprc_clip_{S}({T} x, {T} lo, {T} hi)
{{
    {T} m = x >= lo ? x : lo;
    return m <= hi ? m : hi;
}}"""
            for k in "biu"
        },
        "f": """\
/* {S} clip: minimum(maximum(x, lo), hi), NaN propagating as in NumPy. */
static inline {T} exprc_clip_{S}({T} x, {T} lo, {T} hi)
{{
    {T} m = (x >= lo || isnan(x)) ? x : lo;
    return (m <= hi || isnan(m)) ? m : hi;
}}""",
    },
    "exprc_sigmoid": {
        "f": """\
/* sigmoid in double, as the NumPy reference computes it (no overflow): 1 / (1 + e) for
   x >= 0 and e / (1 + e) below, with e = exp(-|x|), the one exponential both need. */
static inline double exprc_sigmoid(double x)
{{
    const double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}}"""
    },
    "exprc_softplus": {
        "f": """\
/* softplus in double: NumPy's logaddexp(0, x), max(x, 0) + log1p(exp(-|x|)) (the exponential
   sigmoid computes too, so the two share it) and ln 2 at 0; NaN stays NaN. Without branches,
   so a vectorized loop computes one exponential and one log1p per element, not both sides'. */
static inline double exprc_softplus(double x)
{{
    return x == 0 ? M_LN2 : (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
}}"""
    },
    "exprc_gammaln": {
        "f": """\
/* log|Gamma(x)| in double; lgamma_r because lgamma writes a global. */
static inline double exprc_gammaln(double x)
{{
    int sign;
    return lgamma_r(x, &sign);
}}"""
    },
}


def c_literal(value, dtype):
    """``value`` (representable in ``dtype``) as a C literal that reads back exactly.

    >>> c_literal(0.1, "float32"), c_literal(float("-inf"), "float64"), c_literal(-2**63, "int64")
    ('0.1f', '-INFINITY', 'INT64_MIN')
    """
    kind = dtype_class(dtype)
    if kind == "f":
        v = float(value)
        if v != v:
            return "NAN"
        if v in (float("inf"), float("-inf")):
            return "INFINITY" if v > 0 else "-INFINITY"
        text = str(np.float32(v)) if dtype == "float32" else repr(v)
        if "." not in text and "e" not in text and "n" not in text:
            text += ".0"
        return text + ("f" if dtype == "float32" else "")
    v = int(value)
    if kind == "b":
        return str(int(bool(v)))
    if dtype == "int64":
        return "INT64_MIN" if v == -(2**63) else f"INT64_C({v})"
    if dtype == "uint64":
        return f"UINT64_C({v})"
    if kind == "u":
        return f"{v}u"
    return "INT32_MIN" if v == -(2**31) else str(v)


def cast_expression(arg, from_dtype, to_dtype, types=C_TYPES):
    """``arg``, a value of ``from_dtype``, converted to ``to_dtype`` as NumPy's ``astype``
    does on x86-64 (``types`` names the C types: the CUDA back end passes its own).

    C leaves converting a float to an integer undefined where the value does not fit
    (NaN, infinities, out of range), and compilers then return anything (GCC folded a
    NaN to 0; a GPU saturates). NumPy's loops use the x86 instructions, which return the
    smallest int32 or int64 there, and narrower integers take the low bits of an int32:
    so does this, spelled out, so the result is the same on every machine. Unsigned
    targets beyond the int64 range follow no rule in NumPy either (its scalar and array
    casts disagree); ``mode="check"`` does not compare those.

    >>> cast_expression("v", "float64", "int64")
    '(v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : INT64_MIN)'
    >>> cast_expression("v", "float32", "uint8")
    '(uint8_t)(v >= -2147483648.0f && v < 2147483648.0f ? (int32_t)v : INT32_MIN)'
    >>> cast_expression("v", "int64", "float64"), cast_expression("v", "float64", "bool")
    ('(double)v', '(v != 0)')
    """
    if to_dtype == "bool":
        return f"({arg} != 0)"
    target = types[to_dtype]
    if dtype_class(from_dtype) != "f" or dtype_class(to_dtype) not in "iu":
        return f"({target}){arg}"
    f = "f" if from_dtype in ("float32", "float16") else ""
    wide = np.dtype(to_dtype).itemsize == 8 or to_dtype == "uint32"  # through int64, else int32
    bits, signed = (64, types["int64"]) if wide else (32, types["int32"])
    limit = f"{2 ** (bits - 1)}.0{f}"
    fitted = f"({arg} >= -{limit} && {arg} < {limit} ? ({signed}){arg} : INT{bits}_MIN)"
    if to_dtype == "uint64":  # [2**63, 2**64) fits the unsigned type only
        return f"({arg} >= {limit} && {arg} < {2**64}.0{f} ? ({target}){arg} : ({target}){fitted})"
    return fitted if to_dtype in ("int32", "int64") else f"({target}){fitted}"

"""Scalar operations in CUDA C++: the C back end's formulas (:mod:`exprc.codegen.cfamily.formulas`), on the GPU.

The formulas of :data:`exprc.codegen.cfamily.formulas.C_OPS` and their helpers are used as they
are; this module adds what differs on the GPU: the :data:`PRELUDE`, ``gammaln``, ``digamma``
and float16 (:data:`STORAGE_TYPES`).
See docs/internals/cuda-back-end.md.

>>> call_expression("add", "int32", "int32", ["a", "b"])
'(int32_t)((uint32_t)a + (uint32_t)b)'
>>> call_expression("exp", "float16", "float16", ["x"])
'exprc_round_half(expf(x))'
"""

import re

from exprc.codegen.cfamily import templates
from exprc.codegen.cfamily.formulas import (
    C_OPS,
    C_TYPES,
    c_expression,
    c_literal,
    dtype_class,
    helper_source,
    helpers_used,
)
from exprc.codegen.cfamily.formulas import cast_expression as c_cast_expression

#: The type an element has in device memory (float16: its bits).
STORAGE_TYPES = {**C_TYPES, "float16": "exprc_half"}

#: The type a value is computed in (float16: a float holding a float16 value).
VALUE_TYPES = {**C_TYPES, "float16": "float"}

#: The dtypes the CUDA back end computes with.
CUDA_DTYPES = tuple(STORAGE_TYPES)

#: Threads per block: any block size up to this for elementwise kernels, exactly this
#: for reductions (they combine the results of THREADS / 32 full warps). A power of two,
#: at least 64.
THREADS = 256

#: Operations the C table lacks, or whose CUDA helper differs: name -> helper function.
_DEVICE_ONLY = {"digamma": "exprc_digamma"}

_DEVICE_HELPERS = {
    "exprc_gammaln": """\
/* log|Gamma(x)| in double; CUDA's lgamma is thread-safe (there is no lgamma_r). */
static __device__ __forceinline__ double exprc_gammaln(double x)
{
    return lgamma(x);
}""",
    "exprc_digamma": """\
/* digamma(x) = d/dx log|Gamma(x)| in double, as exprc's NumPy reference computes it:
   reflection below 1/2, the recurrence up to 10, then the asymptotic series; NaN at
   the poles 0, -1, -2, ... */
static __device__ double exprc_digamma(double x)
{
    if (x <= 0 && x == floor(x)) return NAN;
    const int reflect = x < 0.5;
    double z = reflect ? 1.0 - x : x;
    double shift = 0.0;
    while (z < 10.0) {
        shift -= 1.0 / z;
        z += 1.0;
    }
    const double inv2 = 1.0 / (z * z);
    const double series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 * (1.0 / 132)))));
    double out = log(z) - 0.5 / z - series + shift;
    if (reflect) out -= M_PI / tan(M_PI * x);
    return out;
}""",
}

#: What every CUDA program starts with (in prelude.cuh): types, macros, warp shuffles.
PRELUDE = templates.fill(templates.read(__package__, "prelude.cuh").removesuffix("\n"), threads=THREADS)

#: The float16 conversions, for programs that have float16 values.
HALF_PRELUDE = templates.read(__package__, "half.cuh").removesuffix("\n")


def compute_dtype(dtype):
    """The dtype whose formula computes ``dtype``'s values: float32 for float16."""
    return "float32" if dtype == "float16" else dtype


def has_cuda(op_name, dtype):
    """Whether ``op_name`` has a CUDA form for loop dtype ``dtype``.

    >>> has_cuda("exp", "float16"), has_cuda("digamma", "float64"), has_cuda("invert", "float32")
    (True, True, False)
    """
    if dtype not in STORAGE_TYPES:
        return False
    if op_name in _DEVICE_ONLY:
        return dtype_class(dtype) == "f"
    return dtype_class(dtype) in C_OPS.get(op_name, {})


def call_expression(op_name, loop_dtype, out_dtype, args):
    """The CUDA expression computing ``op_name`` on ``args`` (expressions of ``loop_dtype``'s
    value type), giving a value of ``out_dtype``."""
    if op_name in _DEVICE_ONLY:
        text = f"{_DEVICE_ONLY[op_name]}({args[0]})"
    else:
        text = c_expression(op_name, compute_dtype(loop_dtype), args)
    return f"exprc_round_half({text})" if out_dtype == "float16" else text


def cast_expression(arg, from_dtype, to_dtype):
    """``arg`` (a value of ``from_dtype``) converted as NumPy's ``astype`` does.

    >>> cast_expression("v", "float64", "float16"), cast_expression("v", "float32", "bool")
    ('exprc_round_half_d(v)', '(v != 0)')
    """
    if to_dtype == "bool":
        return f"({arg} != 0)"
    if to_dtype == "float16":
        # Integers convert to double exactly (up to 2**53, past float16's largest value).
        if from_dtype == "float32":
            return f"exprc_round_half({arg})"
        return f"exprc_round_half_d({arg})" if from_dtype == "float64" else f"exprc_round_half_d((double){arg})"
    return c_cast_expression(arg, compute_dtype(from_dtype), to_dtype, VALUE_TYPES)


def literal(value, dtype):
    """``value`` as a CUDA literal of ``dtype``'s value type (float16 values are floats)."""
    return c_literal(value, compute_dtype(dtype))


def helpers(op_name, loop_dtype):
    """``{(name, dtype): source}`` of the device functions the operation's formula calls."""
    dtype = compute_dtype(loop_dtype)
    if op_name in _DEVICE_ONLY:
        name = _DEVICE_ONLY[op_name]
        return {(name, "float64"): _DEVICE_HELPERS[name]}
    found = {}
    for name in helpers_used(op_name, dtype):
        found[(name, dtype)] = _DEVICE_HELPERS.get(name) or _device(helper_source(name, dtype))
    return found


def _device(source):
    """A C helper of :mod:`exprc.codegen.cfamily.formulas` as a device function."""
    return re.sub(r"^static inline ", "static __device__ __forceinline__ ", source, flags=re.M)

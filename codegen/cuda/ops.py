"""Scalar operations in CUDA C++: the C back end's formulas (:mod:`exprc.codegen.cfamily.formulas`), on the GPU.

The formulas of :data:`exprc.codegen.cfamily.formulas.C_OPS`, and its helper functions (integer
``//``, ``%`` and ``**`` with NumPy's semantics, ``clip``, ``sigmoid`` ...), are
valid CUDA C++ once the helpers are device functions, so they are used as they
are; this module adds only what differs on the GPU:

- :data:`PRELUDE`: what ``<stdint.h>`` and ``<math.h>`` would define (NVRTC
  compiles without system headers), and float16 conversions;
- ``gammaln`` (CUDA has no ``lgamma_r``; its ``lgamma`` is thread-safe) and
  ``digamma`` (the derivative of ``gammaln``, which C leaves to NumPy);
- float16: stored as its 16 bits (:data:`STORAGE_TYPES`), loaded into a
  ``float``, computed with the float32 formula and rounded back to float16
  after every operation, as NumPy's float16 loops do.

>>> call_expression("add", "int32", "int32", ["a", "b"])
'(int32_t)((uint32_t)a + (uint32_t)b)'
>>> call_expression("exp", "float16", "float16", ["x"])
'exprc_round_half(expf(x))'
"""
import re

from exprc.codegen.cfamily.formulas import C_OPS, C_TYPES, c_expression, c_literal, dtype_class, helper_source, helpers_used
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

PRELUDE = """\
/* Some formulas ignore an argument (isnan of an integer is 0): the load of it is then
   unused, which is not worth a warning. */
#pragma nv_diag_suppress 177

/* Fixed-width integers and the macros of <stdint.h> and <math.h> the kernels use:
   NVRTC compiles without the system's headers. */
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define INT64_C(v) (v##LL)
#define UINT64_C(v) (v##ULL)
#define INT8_MIN (-128)
#define INT8_MAX 127
#define INT16_MIN (-32768)
#define INT16_MAX 32767
#define INT32_MIN (-2147483647 - 1)
#define INT32_MAX 2147483647
#define INT64_MIN (-INT64_C(9223372036854775807) - 1)
#define INT64_MAX INT64_C(9223372036854775807)
#define UINT8_MAX 255
#define UINT16_MAX 65535
#define UINT32_MAX 4294967295u
#define UINT64_MAX UINT64_C(18446744073709551615)
#define NAN __int_as_float(0x7fffffff)
#define INFINITY __int_as_float(0x7f800000)
#define M_LN2 0.693147180559945309417232121458176568
#define M_PI 3.14159265358979323846264338327950288

/* Threads per block (see exprc.codegen.cuda.ops.THREADS); reductions need exactly this many. */
#define EXPRC_THREADS {threads}

/* N consecutive elements of an array, moved by one load or store (16 bytes at most). */
template <typename T, int N>
struct alignas(sizeof(T) * N) exprc_vec {{
    T v[N];
}};

/* Lane l's value from lane l + distance of its warp (exprc_shfl_down) or from lane
   `lane` (exprc_shfl), every lane of the warp taking part. The shuffles take 32- and
   64-bit values: narrower integers travel as int. */
template <typename T>
static __device__ __forceinline__ T exprc_shfl_down(T value, int distance)
{{
    if constexpr (sizeof(T) < 4)
        return (T)__shfl_down_sync(0xffffffffu, (int)value, distance);
    else
        return __shfl_down_sync(0xffffffffu, value, distance);
}}

template <typename T>
static __device__ __forceinline__ T exprc_shfl(T value, int lane)
{{
    if constexpr (sizeof(T) < 4)
        return (T)__shfl_sync(0xffffffffu, (int)value, lane);
    else
        return __shfl_sync(0xffffffffu, value, lane);
}}""".format(threads=THREADS)

#: The float16 conversions, for programs that have float16 values.
HALF_PRELUDE = """\
/* float16 is stored as its bits and computed in float, rounded to float16 after each
   operation as NumPy's float16 loops do (PTX conversions: no cuda_fp16.h needed). */
typedef unsigned short exprc_half;

static __device__ __forceinline__ float exprc_half_to_float(exprc_half h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

static __device__ __forceinline__ exprc_half exprc_float_to_half(float f)
{
    exprc_half h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

/* double to float16 in one rounding (through float would round twice) */
static __device__ __forceinline__ exprc_half exprc_double_to_half(double d)
{
    exprc_half h;
    asm("cvt.rn.f16.f64 %0, %1;" : "=h"(h) : "d"(d));
    return h;
}

/* the float16 nearest to f (or d), as a float */
static __device__ __forceinline__ float exprc_round_half(float f)
{
    return exprc_half_to_float(exprc_float_to_half(f));
}

static __device__ __forceinline__ float exprc_round_half_d(double d)
{
    return exprc_half_to_float(exprc_double_to_half(d));
}"""


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

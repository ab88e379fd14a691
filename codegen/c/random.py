"""The C random draws: Philox4x32-10 (``philox.h``, ``philox.c``) built once into a library
of its own, kept in the disk cache like every other, and called through cffi.

:func:`run_draw` is the C back end's step for a :class:`~exprc.ops.random.RandomDraw` node:
the draws of :data:`~exprc.ops.random.KERNEL_DRAWS` in C, on the pool's number of threads
(each thread a range of elements: the values do not depend on how they are shared out),
the others through their NumPy reference. The values are the reference's, bit for bit,
but for normals, whose ``log``, ``sin`` and ``cos`` are libm's (see docs/random.md).

>>> import numpy as np
>>> [hex(w) for w in philox4x32_10((0, 0, 0, 0), (0, 0))]
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np

from exprc.codegen.c import pool
from exprc.codegen.c.build import load_library
from exprc.codegen.cfamily import templates
from exprc.ops.random import KERNEL_DRAWS, check_parameters

CDEF = """\
void exprc_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out);
void exprc_random_uniform_f32(const uint64_t *, uint32_t, int64_t, int64_t, const float *, int64_t,
                              const float *, int64_t, float *);
void exprc_random_uniform_f64(const uint64_t *, uint32_t, int64_t, int64_t, const double *, int64_t,
                              const double *, int64_t, double *);
void exprc_random_normal_f32(const uint64_t *, uint32_t, int64_t, int64_t, const float *, int64_t,
                             const float *, int64_t, float *);
void exprc_random_normal_f64(const uint64_t *, uint32_t, int64_t, int64_t, const double *, int64_t,
                             const double *, int64_t, double *);
void exprc_random_bernoulli(const uint64_t *, uint32_t, int64_t, int64_t, const double *, int64_t, uint8_t *);
void exprc_random_integers(const uint64_t *, uint32_t, int64_t, int64_t, const int64_t *, int64_t,
                           const int64_t *, int64_t, int64_t *);
void exprc_random_binomial(const uint64_t *, uint32_t, int64_t, int64_t, const int64_t *, int64_t,
                           const double *, int64_t, int64_t *);
"""

#: Elements below which a draw runs on one thread (starting threads costs more).
PARALLEL_FROM = 1 << 16

#: dist -> (C function per output dtype, the parameters' dtypes).
_ROUTINES = {
    "uniform": ({"float32": "uniform_f32", "float64": "uniform_f64"}, None),
    "normal": ({"float32": "normal_f32", "float64": "normal_f64"}, None),
    "bernoulli": ({"bool": "bernoulli"}, ("float64",)),
    "integers": ({"int64": "integers"}, ("int64", "int64")),
    "binomial": ({"int64": "binomial"}, ("int64", "float64")),
}

_executor_lock = threading.Lock()
_executors: dict[int, ThreadPoolExecutor] = {}


def source() -> str:
    """The library's C: ``philox.h`` then ``philox.c`` (without its include of the header)."""
    header = templates.read(__package__, "philox.h")
    body = templates.read(__package__, "philox.c").replace('#include "philox.h"\n', "")
    return header + "\n" + body


@cache
def library():
    """The loaded library (compiled on first use, or found in the disk cache)."""
    return load_library(source(), CDEF, graph="random")


def philox4x32_10(ctr, key) -> list[int]:
    """One Philox4x32-10 block computed in C: ``ctr`` four words, ``key`` two."""
    lib = library()
    out = lib.ffi.new("uint32_t[4]")
    lib.lib.exprc_philox4x32_10(lib.ffi.new("uint32_t[4]", list(ctr)), lib.ffi.new("uint32_t[2]", list(key)), out)
    return list(out)


def _executor(threads):
    with _executor_lock:
        if threads not in _executors:
            _executors[threads] = ThreadPoolExecutor(threads, thread_name_prefix="exprc-random")
        return _executors[threads]


def draw(dist, draw_id, dtype, state, shape, params, threads=None) -> np.ndarray:
    """Draw ``dist`` (one of :data:`~exprc.ops.random.KERNEL_DRAWS`) of ``shape`` in C.

    ``threads`` defaults to the pool's count (``ex.set_num_threads``).
    """
    what = f"random {dist} (draw {draw_id})"
    routines, param_dtypes = _ROUTINES[dist]
    name = routines.get(dtype)
    cast = None
    if name is None:
        # integers and binomial of another integer dtype: drawn as int64, then cast as NumPy's.
        name, cast, dtype = routines["int64"], dtype, "int64"
    param_dtypes = param_dtypes or (dtype, dtype)
    params = [np.asarray(p) for p in params]
    check_parameters(what, dist, params)
    n = int(np.prod(shape, dtype=np.int64))
    args = []
    for value, want in zip(params, param_dtypes):
        value = np.broadcast_to(value, shape)
        scalar = value.size == 0 or all(s == 0 for s in value.strides)
        value = np.ascontiguousarray(value.reshape(-1)[:1] if scalar else value.reshape(-1), dtype=want)
        args.append((value, 0 if scalar else 1))
    out = np.empty(shape, dtype=np.uint8 if dtype == "bool" else dtype)
    state = np.ascontiguousarray(state, dtype=np.uint64)
    lib = library()
    ffi, function = lib.ffi, getattr(lib.lib, f"exprc_random_{name}")
    pointers = [ffi.cast("void *", state.ctypes.data)]
    flat = []
    for value, step in args:
        flat += [ffi.cast("void *", value.ctypes.data), step]
    target = ffi.cast("void *", out.ctypes.data)

    def run(start, end):
        function(pointers[0], draw_id & 0xFFFFFFFF, start, end, *flat, target)

    threads = threads or pool.get_num_threads()
    if threads <= 1 or n < PARALLEL_FROM:
        run(0, n)
    else:
        # Ranges start at multiples of 4 so that no block is computed twice.
        step = (-(-n // threads) + 3) // 4 * 4
        jobs = [_executor(threads).submit(run, s, min(s + step, n)) for s in range(0, n, step)]
        for job in jobs:
            job.result()
    if dtype == "bool":
        out = out.view(np.bool_)
    return out if cast is None else out.astype(cast)


def run_draw(node, inputs):
    """The C back end's step for a RandomDraw node: its outputs for its input values."""
    op = node.op
    if op.dist not in KERNEL_DRAWS:
        return node.op.perform(node, inputs)
    state, *rest = inputs
    lengths, params = (rest[: op.nlen], rest[op.nlen :]) if op.nlen >= 0 else ((), rest)
    if any(int(d) < 0 for d in lengths):
        raise ValueError(f"random {op.dist} (draw {op.draw}): size must be non-negative, got {tuple(lengths)}")
    params = [np.asarray(p) for p in params]
    shape = tuple(int(d) for d in lengths) if op.nlen >= 0 else np.broadcast_shapes(*(p.shape for p in params))
    return [draw(op.dist, op.draw, op.dtype, state, shape, params)]

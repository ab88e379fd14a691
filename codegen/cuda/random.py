"""Random draws on the GPU: the Philox4x32-10 kernels of ``philox.cuh``, compiled by NVRTC
once per GPU (and kept in the disk cache), launched one thread per Philox block.

:func:`draw` makes a draw of :data:`~exprc.ops.random.KERNEL_DRAWS` in device memory, with
the C routine's and the NumPy reference's bits (normals within a few ulp: CUDA's ``log``,
``sin`` and ``cos``); the kernels round every operation as written (``__fadd_rn`` and the
like), so that NVRTC fuses no multiply-add the reference does not make.

>>> sorted(kernel_names())[:2]
['exprc_random_bernoulli', 'exprc_random_binomial']
"""

import numpy as np

from exprc.codegen.cfamily import templates
from exprc.codegen.cuda.build import KernelModule
from exprc.ops.random import check_parameters

#: Threads per block of a draw's launch, and the most blocks (each thread then loops).
THREADS = 256
MAX_BLOCKS = 4096

#: dist -> (kernel per output dtype, parameter dtypes; None: the output's), as in C.
_KERNELS = {
    "uniform": ({"float32": "uniform_f32", "float64": "uniform_f64"}, None),
    "normal": ({"float32": "normal_f32", "float64": "normal_f64"}, None),
    "bernoulli": ({"bool": "bernoulli"}, ("float64",)),
    "integers": ({"int64": "integers"}, ("int64", "int64")),
    "binomial": ({"int64": "binomial"}, ("int64", "float64")),
}

#: Elements one thread computes: a Philox block's worth.
_PER_THREAD = {"uniform_f32": 4, "normal_f32": 4, "bernoulli": 4, "binomial": 1}


def source() -> str:
    """The CUDA text of the draws (``philox.cuh``)."""
    return templates.read(__package__, "philox.cuh")


def kernel_names() -> list[str]:
    """The names of the draws' kernels."""
    return [f"exprc_random_{name}" for routines, _ in _KERNELS.values() for name in routines.values()]


KERNELS = KernelModule("exprc_random.cu", source, kernel_names)


def launch_shape(name: str, n: int) -> tuple[int, int]:
    """``(blocks, threads)`` for kernel ``name`` (without its prefix) over ``n`` elements."""
    per = _PER_THREAD.get(name, 2)
    threads_needed = -(-n // per)
    return max(1, min(-(-threads_needed // THREADS), MAX_BLOCKS)), THREADS


def arguments(name, state_ptr, draw_id, n, params, out_ptr) -> np.ndarray:
    """The kernel's parameters as 8-byte values: state, draw, n, each (pointer, step), out."""
    values = [int(state_ptr), int(draw_id) & 0xFFFFFFFF, int(n)]
    for ptr, step in params:
        values += [int(ptr), int(step)]
    return np.array(values + [int(out_ptr)], dtype=np.int64)


def plan(dist, dtype, shape, params):
    """``(kernel name, output dtype, cast, [(host array, step)])``: the parameters broadcast
    and converted, one value (step 0) where they are the same for every element."""
    routines, param_dtypes = _KERNELS[dist]
    name, cast = routines.get(dtype), None
    if name is None:
        name, cast, dtype = routines["int64"], dtype, "int64"
    param_dtypes = param_dtypes or (dtype, dtype)
    prepared = []
    for value, want in zip(params, param_dtypes):
        value = np.broadcast_to(np.asarray(value), shape)
        scalar = value.size == 0 or all(s == 0 for s in value.strides)
        prepared.append(
            (np.ascontiguousarray(value.reshape(-1)[:1] if scalar else value.reshape(-1), want), 0 if scalar else 1)
        )
    return name, dtype, cast, prepared


def draw(dist, draw_id, dtype, state, shape, params, device_id=0):
    """Draw ``dist`` of ``shape`` on GPU ``device_id``; ``state`` is the stream's ``[seed,
    calls]`` (a NumPy or device array). Returns a :class:`~exprc.codegen.cuda.array.DeviceArray`."""
    from exprc.codegen.cuda.array import DeviceArray, empty, to_device
    from exprc.codegen.cuda.launch import launch

    what = f"random {dist} (draw {draw_id})"
    check_parameters(what, dist, [np.asarray(p) for p in params])
    name, out_dtype, cast, prepared = plan(dist, dtype, shape, params)
    n = int(np.prod(shape, dtype=np.int64))
    out = empty(shape, "uint8" if out_dtype == "bool" else out_dtype, device_id=device_id)
    if n:
        state = to_device(np.asarray(state, dtype=np.uint64), device_id) if isinstance(state, np.ndarray) else state
        device_params = [(to_device(v, device_id), step) for v, step in prepared]
        args = arguments(name, state.ptr, draw_id, n, [(v.ptr, step) for v, step in device_params], out.ptr)
        launch(KERNELS.functions(device_id)[f"exprc_random_{name}"], args, *launch_shape(name, n))
    if out_dtype == "bool":
        out = DeviceArray(out.ptr, out.shape, "bool", out.strides, owner=out, device_id=device_id)
    return out if cast is None else to_device(out.get().astype(cast), device_id)


def run_draw(node, inputs):
    """The CUDA back end's step for a RandomDraw node given host values: drawn on GPU 0 and
    copied back (the reference's bits); the other draws run their NumPy reference."""
    from exprc.ops.random import KERNEL_DRAWS

    op = node.op
    if op.dist not in KERNEL_DRAWS:
        return op.perform(node, inputs)
    state, *rest = inputs
    lengths, params = (rest[: op.nlen], rest[op.nlen :]) if op.nlen >= 0 else ((), rest)
    if any(int(d) < 0 for d in lengths):
        raise ValueError(f"random {op.dist} (draw {op.draw}): size must be non-negative, got {tuple(lengths)}")
    params = [np.asarray(p) for p in params]
    shape = tuple(int(d) for d in lengths) if op.nlen >= 0 else np.broadcast_shapes(*(p.shape for p in params))
    return [draw(op.dist, op.draw, op.dtype, np.asarray(state), shape, params).get()]

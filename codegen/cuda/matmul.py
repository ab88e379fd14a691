"""NumPy's ``matmul`` of device arrays, computed on the GPU by the GEMM kernels.

:func:`matmul` takes two :class:`~exprc.codegen.cuda.array.DeviceArray` operands of one dtype
(float32, float64 or float16) with NumPy's rules and returns a new C-contiguous array;
:func:`launch_gemm` launches one product on raw device pointers.
See docs/internals/cuda-gemm.md.

>>> import numpy as np
>>> matmul(to_device(np.ones((2, 3))), to_device(np.ones(3))).get()  # doctest: +SKIP
array([3., 3.])
"""

import numpy as np

from exprc.codegen.cuda.array import empty
from exprc.codegen.cuda.build import KernelModule
from exprc.codegen.cuda.gemm.plan import choose, gemm_kernels, gemm_source, grid, pack_gemm_arguments
from exprc.codegen.cuda.launch import launch_grid

#: The dtypes :func:`matmul` computes on the GPU.
DEVICE_DTYPES = ("float32", "float64", "float16")

#: The GEMM kernels, loaded once per GPU.
KERNELS = KernelModule("exprc_gemm.cu", gemm_source, lambda: [k.name for k in gemm_kernels()])


def matmul(a, b, allow_tf32=False):
    """``a @ b`` for device arrays ``a`` and ``b`` of one float dtype, computed on the GPU.

    ``allow_tf32`` lets a float32 product run on the tensor cores as TF32 (inputs rounded
    to 10 bits of mantissa: faster, not exact). Raises TypeError for other dtypes or mixed
    ones, and ValueError (naming the shapes) when the operands do not line up.
    """
    from exprc.codegen.cuda.copy import contiguous_copy

    if a.dtype != b.dtype or a.dtype.name not in DEVICE_DTYPES:
        raise TypeError(
            f"matmul on the GPU: expected two operands of one dtype among {DEVICE_DTYPES}, got {a.dtype} and {b.dtype}"
        )
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands of shapes {a.shape} and {b.shape}; a 0-d operand is not a matrix")
    # Strides in elements: an operand whose strides are not whole elements is copied first.
    a = a if a.flags.aligned else contiguous_copy(a)
    b = b if b.flags.aligned else contiguous_copy(b)
    a_shape, a_strides = _as_matrices(a, left=True)
    b_shape, b_strides = _as_matrices(b, left=False)
    (m, k), (k_b, n) = a_shape[-2:], b_shape[-2:]
    if k != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: {k} (axis -1) != {k_b} (axis -2)")
    try:
        batch_shape = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch axes of shapes {a.shape} and {b.shape} do not broadcast") from None
    out_shape = batch_shape + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    out = empty(out_shape, a.dtype, device_id=a.device_id)
    if out.size == 0:
        return out
    c_strides = _c_strides(batch_shape + (m, n))
    a_batch = _broadcast_strides(a_shape[:-2], a_strides[:-2], batch_shape)
    b_batch = _broadcast_strides(b_shape[:-2], b_strides[:-2], batch_shape)
    outer, outer_strides, batch, (a_sb, b_sb, c_sb) = _merge_batch(
        batch_shape, [a_batch, b_batch, list(c_strides[:-2])]
    )
    for index in np.ndindex(*outer):
        offsets = [sum(i * s for i, s in zip(index, strides)) for strides in outer_strides]
        launch_gemm(
            a.dtype.name,
            batch,
            m,
            n,
            k,
            (a.ptr + offsets[0] * a.itemsize, (a_sb, *a_strides[-2:])),
            (b.ptr + offsets[1] * b.itemsize, (b_sb, *b_strides[-2:])),
            (out.ptr + offsets[2] * out.itemsize, (c_sb, *c_strides[-2:])),
            allow_tf32=allow_tf32,
            device_id=a.device_id,
        )
    return out


def launch_gemm(dtype, batch, m, n, k, a, b, c, allow_tf32=False, device_id=0):
    """Launch ``batch`` products ``C = A @ B`` of ``dtype`` (``"float32"``, ``"float64"``,
    ``"float16"`` or ``"bfloat16"``) on device ``device_id``: ``a``, ``b`` and ``c`` are each
    ``(device pointer, (batch stride, row stride, column stride))`` in elements, as
    :func:`exprc.codegen.cuda.gemm.plan.pack_gemm_arguments` takes them. Returns the kernel launched
    (the one :func:`exprc.codegen.cuda.gemm.plan.choose` picks); the launch is asynchronous, as every
    launch on the default stream.

    >>> launch_gemm("bfloat16", 1, 4096, 4096, 4096, (x.data_ptr(), (0, 4096, 1)),
    ...             (y.data_ptr(), (0, 4096, 1)), (z.data_ptr(), (0, 4096, 1))).name  # doctest: +SKIP
    'exprc_gemm_bf16_nn'
    """
    kernel = choose(dtype, m, n, k, a, b, allow_tf32, batch)
    blocks, threads = grid(kernel, batch, m, n)
    launch_grid(
        KERNELS.functions(device_id)[kernel.name], pack_gemm_arguments(batch, m, n, k, a, b, c), blocks, threads
    )
    return kernel


def _as_matrices(x, left):
    """``(shape, strides in elements)`` of ``x`` with a 1-d operand made a one-row (``left``)
    or one-column matrix."""
    strides = [s // x.itemsize for s in x.strides]
    shape = list(x.shape)
    if x.ndim == 1:
        shape, strides = ([1] + shape, [0] + strides) if left else (shape + [1], strides + [0])
    return tuple(shape), strides


def _c_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _broadcast_strides(shape, strides, target):
    """Strides of an operand's batch axes ``shape`` broadcast to ``target``: 0 where it repeats."""
    pad = len(target) - len(shape)
    return [0] * pad + [0 if n == 1 and t != 1 else s for n, s, t in zip(shape, strides, target[pad:])]


def _merge_batch(shape, strides):
    """``(outer lengths, outer strides per array, batch, batch stride per array)``: the batch
    axes ``shape`` (with per-array ``strides``) as outer axes looped over and one axis the
    kernel walks, merging adjacent axes that step evenly in every array (always the case
    for C-contiguous operands).

    >>> _merge_batch((2, 3), [[3, 1], [0, 0], [3, 1]])
    ((), ((), (), ()), 6, (1, 0, 1))
    >>> _merge_batch((2, 3), [[1, 2], [0, 0], [3, 1]])
    ((2,), ((1,), (0,), (3,)), 3, (2, 0, 1))
    """
    if not shape:
        return (), ((),) * len(strides), 1, (0,) * len(strides)
    lengths, merged = [shape[0]], [[s[0]] for s in strides]
    for axis in range(1, len(shape)):
        n = shape[axis]
        if all(m[-1] == s[axis] * n for m, s in zip(merged, strides)):
            lengths[-1] *= n
            for m, s in zip(merged, strides):
                m[-1] = s[axis]
        else:
            lengths.append(n)
            for m, s in zip(merged, strides):
                m.append(s[axis])
    return tuple(lengths[:-1]), tuple(tuple(m[:-1]) for m in merged), lengths[-1], tuple(m[-1] for m in merged)

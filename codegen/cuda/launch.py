"""Launching a rendered kernel: its arguments packed as :mod:`exprc.codegen.cuda.render` declares
them (:func:`pack_arguments`), and its grid (:func:`launch_shape`, :func:`splits`).
See docs/internals/cuda-back-end.md.

>>> from exprc.codegen.ir import kernel as ir
>>> x = ir.Buffer("x", "float32", 1); out = ir.Buffer("out", "float32", 1, output=True)
>>> k = ir.Kernel("k0_neg_x", 1, (x, out), ((out, ir.Call("negative", (ir.Load(x),), "float32")),))
>>> pack_arguments(k, [1000], True, [(0x1000, [1]), (0x2000, [1])]).tolist()
[1000, 1, 4096, 1, 8192, 1]
>>> launch_shape(k, [10000])  # 2500 groups of 4 elements
(10, 256)
"""

import numpy as np

from exprc.codegen.cuda.ops import THREADS
from exprc.codegen.cuda.recording import note_launch
from exprc.codegen.cuda.render import splits_rows, vector_width
from exprc.codegen.ir.kernel import RowChainKernel

#: A reduction with few rows shares each among blocks, up to about this many blocks in all
#: (several per multiprocessor of any current GPU) ...
SHARED_ROW_BLOCKS = 1024

#: ... each with this many elements of its row at least (16 per thread).
SHARE_ELEMENTS = 4096

#: The most blocks a launch gets (grid-stride loops cover the rest): enough to fill any
#: current GPU many times over, and within every GPU's grid limit.
MAX_BLOCKS = 65535


def pack_arguments(kernel, lengths, contiguous, buffers, shares=(1, 0, 0)):
    """The kernel's parameters as one int64 array: ``lengths`` (one per index axis), the
    ``contiguous`` flag, then ``buffers`` in the kernel's buffer order, each a pair
    ``(device pointer, strides in elements)`` (strides ignored for a scalar buffer); for a
    reduction, then ``shares``: ``(blocks per row, pointer to their results, pointer to
    the rows' counts of finished blocks)`` (see :func:`splits`)."""
    if len(lengths) != kernel.ndim:
        raise ValueError(f"{kernel.name}: {len(lengths)} lengths for an index space of {kernel.ndim} axes")
    if len(buffers) != len(kernel.buffers):
        raise ValueError(f"{kernel.name}: {len(buffers)} arrays for buffers {[b.name for b in kernel.buffers]}")
    values = [int(n) for n in lengths] + [1 if contiguous else 0]
    for buffer, (ptr, strides) in zip(kernel.buffers, buffers):
        values.append(int(ptr))
        if buffer.ndim:
            if len(strides) != kernel.ndim:
                raise ValueError(
                    f"{kernel.name}: buffer {buffer.name} needs {kernel.ndim} strides, got {list(strides)}"
                )
            values += [int(s) for s in strides]
    if splits_rows(kernel):
        values += [int(v) for v in shares]
    # Pointers above 2**63 do not occur (user space addresses), so int64 holds them all.
    return np.array(values, dtype=np.int64)


def launch_shape(kernel, lengths):
    """``(blocks, threads per block)`` for a launch over the index space ``lengths``."""
    if kernel.ndim == 0:
        return 1, 1  # the 0-d kernel computes in thread 0 of block 0
    if isinstance(kernel, RowChainKernel):
        rows, share = int(np.prod(lengths[: kernel.kept], dtype=np.int64)), 1
    elif kernel.reduction is None:
        size = int(np.prod(lengths, dtype=np.int64))
        groups = -(-size // vector_width(kernel))  # the fast path's threads each take a group
        return max(1, min(-(-groups // THREADS), MAX_BLOCKS)), THREADS
    else:
        rows, share = splits(kernel, lengths)
    if share > 1:
        return rows * share, THREADS  # exactly: each row's blocks count themselves
    return max(1, min(rows, MAX_BLOCKS)), THREADS


def splits(kernel, lengths):
    """``(rows, blocks per row)`` of reduction ``kernel`` over ``lengths``. A long row is
    shared by several blocks when there are few rows (a whole-array sum has one), so that
    :data:`SHARED_ROW_BLOCKS` blocks or so fill the GPU, each with at least
    :data:`SHARE_ELEMENTS` elements; rows enough to fill it get a block each.

    >>> from exprc.codegen.ir import kernel as ir
    >>> x = ir.Buffer("x", "float32", 2); out = ir.Buffer("out", "float32", 2, output=True, outer=True)
    >>> k = ir.Kernel("k", 2, (x, out), ((out, ir.Acc("float32")),), reduction=ir.Reduction("add", ir.Load(x), 1, "float32", "float32"))
    >>> splits(k, [1, 10**8]), splits(k, [4, 10**5]), splits(k, [4096, 10**5]), splits(k, [2, 100])
    ((1, 1024), (4, 25), (4096, 1), (2, 1))
    """
    kept = kernel.ndim - kernel.reduction.naxes
    rows = int(np.prod(lengths[:kept], dtype=np.int64))
    count = int(np.prod(lengths[kept:], dtype=np.int64))
    share = min(-(-count // SHARE_ELEMENTS), SHARED_ROW_BLOCKS // max(rows, 1))
    return rows, max(share, 1)


def launch(function, arguments, blocks, threads):
    """Launch ``function`` (a ``CUfunction``) over ``blocks`` blocks of ``threads`` on the
    legacy default stream with the packed ``arguments`` (from :func:`pack_arguments`)."""
    launch_grid(function, arguments, (blocks, 1, 1), threads)


def launch_grid(function, arguments, grid, threads):
    """Launch ``function`` over the grid ``grid`` (x, y, z) with ``threads`` per block on the
    legacy default stream, with the packed int64 ``arguments`` (``cuLaunchKernel`` copies
    them: they may change once it returns)."""
    from exprc.codegen.cuda import driver

    note_launch(function, arguments, grid, threads)
    ffi = driver.ffi()
    values = ffi.from_buffer("int64_t[]", arguments)
    params = ffi.new("void *[]", [values + i for i in range(len(arguments))])
    driver.call("cuLaunchKernel", function, *grid, threads, 1, 1, 0, ffi.NULL, params, ffi.NULL)


_tickets = {}  # device ordinal -> its counts of finished blocks per row, all 0 between launches


def tickets(device_id):
    """The device's array of :data:`SHARED_ROW_BLOCKS` counts of finished blocks, one per
    row of a reduction whose rows blocks share: zero when made, and set back to zero by the
    last block of each row, so every launch finds them so (launches on the default stream
    run one after another)."""
    if device_id not in _tickets:
        from exprc.codegen.cuda.array import to_device

        _tickets[device_id] = to_device(np.zeros(SHARED_ROW_BLOCKS, np.uint32), device_id)
    return _tickets[device_id]

"""Running one kernel from Python: the step-by-step path of the C back end.

What a segment's entry point (:mod:`exprc.codegen.c.entry`) hands back (``EXPRC_FALLBACK``)
runs here kernel by kernel, as does everything on Pythons whose array objects C cannot read.
See docs/internals/c-call-path.md.

>>> canonical_axes((3, 4), [[4, 1], [4, 1]], [[0, 1]])
([1, 12], [[0, 1], [0, 1]], 1)
"""

import numpy as np

from exprc.codegen.c import pool
from exprc.codegen.cfamily.renderer import arg_layout
from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.call_plan import canonical_axes, index_strides, lookup, plan_call, run_nodes
from exprc.printing import to_infix
from exprc.shapes import ShapeError


def run_kernel(step, values, function, ffi):
    """Run one kernel on ``values`` (graph variable -> array), adding its result to them.

    ``function`` is the kernel's cffi function. Shapes are worked out here in Python, and the
    kernel's nodes run through NumPy where the kernel does not cover the case.
    """
    kernel = step.kernel
    arrays = []
    for buffer, var in step.inputs:
        array = as_array(lookup(var, values))
        if array.dtype != buffer.dtype:
            array = array.astype(buffer.dtype)
        arrays.append(_usable(array))
    if isinstance(kernel, ir.RowPassKernel):
        _run_row_pass(step, values, arrays, function, ffi)
        return
    if isinstance(kernel, ir.RowChainKernel):
        _store_fallback(step, values)
        return
    plan = plan_call(step, arrays)
    if plan is None:
        _store_fallback(step, values)
        return
    shape, order, groups, out_shape = plan
    _check_countable(kernel, shape)
    out_buffer, out_var = step.outputs[0]
    out = np.empty(out_shape, dtype=out_buffer.dtype, order=order)
    values[out_var] = out
    if out.size == 0 or (step.reduced_axes is None and 0 in shape):
        return
    buffers = list(zip((b for b, _ in step.inputs), arrays)) + [(out_buffer, out)]
    strides = [index_strides(a, step.axes[b.name], shape) if b.ndim else None for b, a in buffers]
    lengths, strides, contiguous = canonical_axes(shape, strides, groups)
    function(ffi.from_buffer("int64_t[]", _packed(kernel, lengths, contiguous, buffers, strides)))
    pool.rest()  # NumPy may run next: no worker may hold a core meanwhile


def _packed(kernel, lengths, contiguous, buffers, strides):
    """A kernel's argument array (see :func:`exprc.codegen.cfamily.renderer.arg_layout`): the index lengths,
    ``contiguous``, then per buffer its address and, unless 0-d, its strides in items."""
    args = np.empty(sum(n for _, n in arg_layout(kernel)), dtype=np.int64)
    d = len(lengths)
    args[:d] = lengths
    args[d] = contiguous
    pos = d + 1
    for (b, a), s in zip(buffers, strides):
        args[pos] = a.__array_interface__["data"][0]
        pos += 1
        if b.ndim:
            args[pos : pos + d] = s
            pos += d
    return args


def _run_row_pass(step, values, arrays, function, ffi):
    """Run a row pass: rows and columns as they are (no reordering), several outputs."""
    kernel = step.kernel
    lengths = _row_pass_lengths(step, arrays)
    if lengths is None:
        _store_fallback(step, values)
        return
    outputs = []
    for buffer, var in step.outputs:
        shape = {"row": (lengths[0],), "column": (lengths[1],)}.get(kernel.walks[buffer.name], ())
        outputs.append(np.empty(shape, dtype=buffer.dtype))
        values[var] = outputs[-1]
    if all(out.size == 0 for out in outputs):
        return
    buffers = list(zip((b for b, _ in step.inputs), arrays)) + [(b, out) for (b, _), out in zip(step.outputs, outputs)]
    strides = [index_strides(a, step.axes[b.name], lengths) if b.ndim else None for b, a in buffers]
    failed = function(ffi.from_buffer("int64_t[]", _packed(kernel, lengths, 0, buffers, strides)))
    pool.rest()
    if failed:
        raise MemoryError(f"{kernel.name}: cannot allocate the partial results of a row pass")


def _row_pass_lengths(step, arrays):
    """``(rows, columns)`` of a row pass, or None when NumPy must run its nodes: the matrix
    or the vector does not have them (NumPy's matmul broadcasts neither), or the epilogue
    would broadcast a result."""
    kernel = step.kernel
    named = [(b, v, a) for (b, v), a in zip(step.inputs, arrays) if b.ndim]
    full = (kernel.matrix.name, kernel.vector.name)
    lengths = [None, None]
    for b, _v, a in named:
        if b.name in full:
            for axis, array_axis in enumerate(step.axes[b.name]):
                if array_axis is not None:
                    if lengths[axis] not in (None, a.shape[array_axis]):
                        return None
                    lengths[axis] = a.shape[array_axis]
    for b, v, a in named:
        if b.name in full:
            continue
        for axis, array_axis in enumerate(step.axes[b.name]):
            if array_axis is None or a.shape[array_axis] in (1, lengths[axis]):
                continue
            if b.name in step.epilogue_inputs or lengths[axis] == 1:
                return None  # NumPy broadcasts the product or the result
            described = ", ".join(f"{to_infix(v, limit=40)} {a.shape}" for _, v, a in named)
            raise ShapeError(
                f"computing {kernel.note}: shapes do not broadcast: axis {axis} has lengths "
                f"{lengths[axis]} and {a.shape[array_axis]} in {described}"
            )
    return lengths


# --- helpers ----------------------------------------------------------------------------------

#: The most elements an index space may have: the kernels count them in int64.
MAX_ELEMENTS = 2**63 - 1


def _check_countable(kernel, shape):
    """A ValueError, in NumPy's words, for an index space whose elements int64 cannot count."""
    total = 1
    for n in shape:
        total *= int(n)
    if total > MAX_ELEMENTS:
        raise ValueError(
            f"computing {kernel.note}: iterator is too large: its index space {tuple(shape)} has more elements than can be counted"
        )


def as_array(value):
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _store_fallback(step, values):
    """Run a kernel's nodes through NumPy (see :func:`~exprc.codegen.ir.call_plan.run_nodes`) and store its outputs."""
    for (_, var), result in zip(step.outputs, run_nodes(step, values)):
        values[var] = result


def _usable(array):
    """``array`` if C can read it (aligned, strides a multiple of the item size), else a copy."""
    if array.flags.aligned and all(s % array.itemsize == 0 for s in array.strides):
        return array
    return np.array(array, copy=True)

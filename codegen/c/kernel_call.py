"""Running one kernel from Python: the step-by-step path of the C back end.

A segment's entry point (see :mod:`exprc.codegen.c.entry`) does this work in C. This
path remains for what the entry points hand back (``EXPRC_FALLBACK``: unaligned
or oddly strided arrays, epilogues that broadcast, max/min over an empty axis)
and for Pythons whose array objects C cannot read. For each kernel call it
works out the run-time shapes (NumPy's broadcasting, with a clear error when
the shapes do not broadcast), allocates the result, orders and merges the axes
by stride (so contiguous data of any layout takes the flat fast path) and
passes lengths, pointers and strides.

>>> _canonical_axes((3, 4), [[4, 1], [4, 1]], [[0, 1]])
([1, 12], [[0, 1], [0, 1]], 1)
"""
import numpy as np

from exprc.graph import Constant
from exprc.printing import to_infix
from exprc.shapes import ShapeError

from exprc.codegen.ir import kernel as ir
from exprc.codegen.cfamily.renderer import arg_layout


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
    plan = _plan(step, arrays)
    if plan is None:
        _store_fallback(step, values)
        return
    shape, order, groups, out_shape = plan
    out_buffer, out_var = step.outputs[0]
    out = np.empty(out_shape, dtype=out_buffer.dtype, order=order)
    values[out_var] = out
    if out.size == 0 or (step.reduced_axes is None and 0 in shape):
        return
    buffers = list(zip((b for b, _ in step.inputs), arrays)) + [(out_buffer, out)]
    strides = [_index_strides(a, step.axes[b.name], shape) if b.ndim else None for b, a in buffers]
    lengths, strides, contiguous = _canonical_axes(shape, strides, groups)
    function(ffi.from_buffer("int64_t[]", _packed(kernel, lengths, contiguous, buffers, strides)))


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
            args[pos:pos + d] = s
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
    strides = [_index_strides(a, step.axes[b.name], lengths) if b.ndim else None for b, a in buffers]
    if function(ffi.from_buffer("int64_t[]", _packed(kernel, lengths, 0, buffers, strides))):
        raise MemoryError(f"{kernel.name}: cannot allocate the partial results of a row pass")


def _row_pass_lengths(step, arrays):
    """``(rows, columns)`` of a row pass, or None when NumPy must run its nodes: the matrix
    or the vector does not have them (NumPy's matmul broadcasts neither), or the epilogue
    would broadcast a result."""
    kernel = step.kernel
    named = [(b, v, a) for (b, v), a in zip(step.inputs, arrays) if b.ndim]
    full = (kernel.matrix.name, kernel.vector.name)
    lengths = [None, None]
    for b, v, a in named:
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
            raise ShapeError(f"computing {kernel.note}: shapes do not broadcast: axis {axis} has lengths "
                             f"{lengths[axis]} and {a.shape[array_axis]} in {described}")
    return lengths


# --- helpers ----------------------------------------------------------------------------------


def lookup(var, values):
    if isinstance(var, Constant):
        return var.value
    return values[var]


def as_array(value):
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _py_value(var, values):
    """A value as an op's NumPy reference expects it: weak values as Python scalars."""
    if isinstance(var, Constant):
        return var.python_value() if var.type.weak else var.value
    value = values[var]
    return np.asarray(value).item() if var.type.weak else value


def perform(node, values):
    args = [_py_value(v, values) for v in node.inputs]
    try:
        return node.op.perform(node, args)
    except Exception as err:
        shapes = ", ".join(f"{to_infix(v, limit=60)}: {np.asarray(a).dtype} {np.shape(a)}" for v, a in zip(node.inputs, args))
        err.add_note(f"while computing {to_infix(node.outputs[0], limit=80)} ({node.op.debug_name()}) from {shapes}")
        raise


def _store_fallback(step, values):
    """Run a kernel's nodes through NumPy (see :func:`_fallback`) and store its outputs."""
    for (_, var), result in zip(step.outputs, _fallback(step, values)):
        values[var] = result


def _fallback(step, values):
    """Run a kernel's nodes through NumPy: used when run-time shapes break the kernel's assumptions."""
    local = dict(values)
    for node in step.nodes:
        for var, result in zip(node.outputs, perform(node, local)):
            local[var] = result
    return [np.asarray(local[var]) for _, var in step.outputs]


def _usable(array):
    """``array`` if C can read it (aligned, strides a multiple of the item size), else a copy."""
    if array.flags.aligned and all(s % array.itemsize == 0 for s in array.strides):
        return array
    return np.array(array, copy=True)


def _broadcast(arrays, variables, what):
    """The broadcast shape of ``arrays`` (all of one rank, or 0-d), or a ShapeError naming ``variables``."""
    shape = []
    for axis in range(max((a.ndim for a in arrays), default=0)):
        lengths = {a.shape[axis] for a in arrays if a.ndim} - {1}
        if len(lengths) > 1:
            described = ", ".join(f"{to_infix(v, limit=40)} {a.shape}" for v, a in zip(variables, arrays) if a.ndim)
            raise ShapeError(
                f"{what}: shapes do not broadcast: axis {axis} has lengths {sorted(lengths)} in {described}"
            )
        shape.append(lengths.pop() if lengths else 1)
    return tuple(shape)


def _plan(step, arrays):
    """``(index shape, output order, axis groups, output shape)`` for a kernel call, or None
    when the NumPy fallback must run it."""
    kernel = step.kernel
    named = [(b, v, a) for (b, v), a in zip(step.inputs, arrays)]
    what = f"computing {kernel.note}"
    if step.reduced_axes is None:
        full = [(b, v, a) for b, v, a in named if b.ndim]
        shape = _broadcast([a for _, _, a in full], [v for _, v, _ in full], what)
        lead = next((a for _, _, a in full if a.size > 1), None)
        order = "F" if lead is not None and lead.ndim > 1 and lead.flags.f_contiguous and not lead.flags.c_contiguous else "C"
        return shape, order, [list(range(kernel.ndim))], shape
    inner = [(b, v, a) for b, v, a in named if b.ndim and b.name not in step.epilogue_inputs]
    shape = _broadcast([a for _, _, a in inner], [v for _, v, _ in inner], what)
    if len(shape) < kernel.ndim:  # every prologue input is 0-d: the index space is ones
        shape = (1,) * kernel.ndim
    reduced = step.reduced_axes
    kept = [a for a in range(kernel.ndim) if a not in reduced]
    if step.keepdims:
        out_shape = tuple(1 if a in reduced else shape[a] for a in range(kernel.ndim))
    else:
        out_shape = tuple(shape[a] for a in kept)
    for b, _, a in named:
        if b.name in step.epilogue_inputs and a.ndim:
            if any(n not in (1, m) for n, m in zip(a.shape, out_shape)):
                return None  # the epilogue broadcasts beyond the reduced shape
    if step.reduce_op in ("max", "min") and any(shape[a] == 0 for a in reduced):
        return None  # NumPy raises: no identity
    return shape, "C", [kept, list(reduced)], out_shape


def _index_strides(array, axes, shape):
    """Strides in elements of ``array`` per index axis (0 where it broadcasts or is absent)."""
    out = []
    for index_axis, array_axis in enumerate(axes):
        if array_axis is None or array.shape[array_axis] == 1 or shape[index_axis] == 1:
            out.append(0)
        else:
            out.append(array.strides[array_axis] // array.itemsize)
    return out


def _canonical_axes(shape, strides, groups):
    """Reorder, drop and merge axes within each group so the smallest strides are innermost.

    Returns the lengths and each buffer's strides in the kernel's axis order
    (each group keeps its number of axes, padded in front with length 1) and
    whether every non-scalar buffer is then contiguous in index order.
    """
    arrays = [s for s in strides if s is not None]
    lead = next((s for s in arrays if any(s)), None)
    lengths, new = [], [[] for _ in strides]
    for group in groups:
        axes = [a for a in group if shape[a] != 1]
        if lead is not None:
            axes.sort(key=lambda a: -abs(lead[a]))
        # Merge axis pairs that every buffer walks as one.
        merged = []
        for a in axes:
            if merged:
                prev = merged[-1]
                inner = prev[-1]
                if all(s is None or s[inner] == s[a] * shape[a] for s in strides):
                    prev.append(a)
                    continue
            merged.append([a])
        pad = len(group) - len(merged)
        lengths += [1] * pad + [int(np.prod([shape[a] for a in m])) for m in merged]
        for s, out in zip(strides, new):
            if s is not None:
                out += [0] * pad + [s[m[-1]] for m in merged]
    long_axes = [i for i, n in enumerate(lengths) if n != 1]
    contiguous = not long_axes or (
        len(long_axes) == 1 and all(out[long_axes[0]] == 1 for s, out in zip(strides, new) if s is not None)
    )
    return lengths, [out if s is not None else None for s, out in zip(strides, new)], int(contiguous)

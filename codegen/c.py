"""The C back end: ``exprc.function(..., backend="c")`` runs a :class:`CProgram`.

A program is lowered (:mod:`codegen.lower`) to fused kernels and NumPy steps,
the kernels are rendered to one C source (:mod:`codegen.c_render`), compiled
and loaded (:mod:`codegen.build`), and :meth:`CProgram.run` runs the steps in
order. For each kernel call it works out the run-time shapes (NumPy's
broadcasting, with a clear error when the shapes do not broadcast), allocates
the results, orders and merges the axes by stride (so contiguous data of any
layout takes the flat fast path) and passes lengths, pointers and strides.

>>> import numpy as np, exprc as ex
>>> x = ex.vector("x")
>>> f = ex.function([x], ex.exp(-x ** 2).sum(), backend="c")  # doctest: +SKIP
>>> f(np.zeros(4))  # doctest: +SKIP
array(4.)
"""
import numpy as np

from exprc.graph import Constant
from exprc.printing import to_infix
from exprc.shapes import ShapeError

from . import build
from .c_render import arg_layout, declaration, render_program
from .lower import KernelStep, NumpyStep, lower


class CProgram:
    """Runs a graph as compiled C kernels and NumPy steps; the interface of ``ReferenceProgram``."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.program = lower(inputs, outputs)
        kernels = self.program.kernels
        self.source = render_program(kernels, title=self._summary())
        self.library = None
        self._calls = {}
        if kernels:
            cdef = "\n".join(declaration(k) for k in kernels)
            self.library = build.load_library(self.source, cdef)
            self._calls = {k.name: getattr(self.library.lib, k.name) for k in kernels}
        self._arg_sizes = {k.name: sum(n for _, n in arg_layout(k)) for k in kernels}
        self._free_after = self._lifetimes()

    # --- description -------------------------------------------------------------------------
    def _summary(self):
        names = {v: (v.name or f"x{i}") for i, v in enumerate(self.inputs)}
        lines = ["exprc program", "", "inputs: " + (", ".join(f"{names[v]}: {v.type}" for v in self.inputs) or "none")]
        for n, step in enumerate(self.program.steps):
            if isinstance(step, KernelStep):
                lines.append(f"step {n}: C kernel {step.kernel.name}: {step.kernel.note}")
            else:
                node = step.node
                lines.append(f"step {n}: NumPy {node.op.debug_name()}: {to_infix(node.outputs[0], limit=70)}")
        lines.append("outputs: " + ", ".join(to_infix(v, limit=70) for v in self.outputs))
        return "\n".join(lines)

    def listing(self):
        """The generated C source (with the program's steps in its opening comment)."""
        return self.source

    def _lifetimes(self):
        last_use = {}
        for i, step in enumerate(self.program.steps):
            for var in _step_inputs(step):
                last_use[var] = i
        keep = set(self.outputs)
        free = [[] for _ in self.program.steps]
        for var, i in last_use.items():
            if var not in keep and var.owner is not None:
                free[i].append(var)
        return free

    # --- running -----------------------------------------------------------------------------
    def run(self, arrays):
        values = dict(zip(self.inputs, arrays))
        with np.errstate(all="ignore"):
            for step, dead in zip(self.program.steps, self._free_after):
                if isinstance(step, NumpyStep):
                    results = _perform(step.node, values)
                    for var, result in zip(step.node.outputs, results):
                        values[var] = result
                else:
                    self._run_kernel(step, values)
                for var in dead:
                    del values[var]
        results = [_as_array(_lookup(v, values)) for v in self.outputs]
        # An output that is an input (or a constant) is copied: the caller owns what it gets.
        given = {id(a) for a in arrays}
        return [r.copy() if id(r) in given or isinstance(v, Constant) else r for v, r in zip(self.outputs, results)]

    def _run_kernel(self, step, values):
        kernel = step.kernel
        arrays = []
        for buffer, var in step.inputs:
            array = _as_array(_lookup(var, values))
            if array.dtype != buffer.dtype:
                array = array.astype(buffer.dtype)
            arrays.append(_usable(array))
        plan = _plan(step, arrays)
        if plan is None:
            results = _fallback(step, values)
            for (_, var), result in zip(step.outputs, results):
                values[var] = result
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
        args = np.empty(self._arg_sizes[kernel.name], dtype=np.int64)
        d = kernel.ndim
        args[:d] = lengths
        args[d] = contiguous
        pos = d + 1
        for (b, a), s in zip(buffers, strides):
            args[pos] = a.__array_interface__["data"][0]
            pos += 1
            if b.ndim:
                args[pos:pos + d] = s
                pos += d
        self._calls[kernel.name](self.library.ffi.from_buffer("int64_t[]", args))


# --- helpers for run ----------------------------------------------------------------------------


def _step_inputs(step):
    if isinstance(step, NumpyStep):
        return step.node.inputs
    return [var for _, var in step.inputs]


def _lookup(var, values):
    if isinstance(var, Constant):
        return var.value
    return values[var]


def _as_array(value):
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _py_value(var, values):
    """A value as an op's NumPy reference expects it: weak values as Python scalars."""
    if isinstance(var, Constant):
        return var.python_value() if var.type.weak else var.value
    value = values[var]
    return np.asarray(value).item() if var.type.weak else value


def _perform(node, values):
    args = [_py_value(v, values) for v in node.inputs]
    try:
        return node.op.perform(node, args)
    except Exception as err:
        shapes = ", ".join(f"{to_infix(v, limit=60)}: {np.asarray(a).dtype} {np.shape(a)}" for v, a in zip(node.inputs, args))
        err.add_note(f"while computing {to_infix(node.outputs[0], limit=80)} ({node.op.debug_name()}) from {shapes}")
        raise


def _fallback(step, values):
    """Run a kernel's nodes through NumPy: used when run-time shapes break the kernel's assumptions."""
    local = dict(values)
    for node in step.nodes:
        for var, result in zip(node.outputs, _perform(node, local)):
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

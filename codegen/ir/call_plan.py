"""Planning a kernel call at run time, for every back end: the broadcast index space (NumPy's
rules, with a clear error where shapes do not broadcast), the result's shape and order,
each array's strides per index axis, and the axes ordered by stride and merged where every
array walks them as one, so that contiguous data of any layout is one flat run. Where the
shapes break a kernel's assumptions, its nodes run through their NumPy references instead
(:func:`run_nodes`).

>>> canonical_axes((3, 4), [[4, 1], [4, 1]], [[0, 1]])
([1, 12], [[0, 1], [0, 1]], 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from exprc.graph import Constant
from exprc.printing import to_infix
from exprc.shapes import ShapeError
from exprc.tensor import TensorConstant

if TYPE_CHECKING:
    from exprc.codegen.ir.row_chain import RowChainStep
    from exprc.codegen.ir.steps import KernelStep
    from exprc.graph import Apply, Variable

#: A kernel call's plan: ``(index shape, output order, axis groups, output shape)``.
CallPlan: TypeAlias = "tuple[tuple[int, ...], str, list[list[int]], tuple[int, ...]]"


def lookup(var: Variable, values: Mapping[Variable, Any]) -> Any:
    if isinstance(var, Constant):
        return var.value
    return values[var]


def _py_value(var: Variable, values: Mapping[Variable, Any]) -> Any:
    """A value as an op's NumPy reference expects it: weak values as Python scalars."""
    if isinstance(var, TensorConstant):  # the only kind of Constant
        return var.python_value() if var.type.weak else var.value
    value = values[var]
    return np.asarray(value).item() if var.type.weak else value


def perform(node: Apply, values: Mapping[Variable, Any], run: Callable | None = None) -> Sequence[Any]:
    """``node``'s outputs from its inputs' values, by ``run(node, args)`` (a back end's own
    step for the op: a compiled loop body, a C random routine) or else the op's reference."""
    args = [_py_value(v, values) for v in node.inputs]
    try:
        return (run or node.op.perform)(node, args)
    except Exception as err:
        shapes = ", ".join(
            f"{to_infix(v, limit=60)}: {np.asarray(a).dtype} {np.shape(a)}" for v, a in zip(node.inputs, args)
        )
        err.add_note(f"while computing {to_infix(node.outputs[0], limit=80)} ({node.op.debug_name()}) from {shapes}")
        raise


def run_nodes(step: KernelStep | RowChainStep, values: Mapping[Variable, Any]) -> list[np.ndarray]:
    """Run a kernel's nodes through NumPy: used when run-time shapes break the kernel's assumptions."""
    local = dict(values)
    for node in step.nodes:
        for var, result in zip(node.outputs, perform(node, local)):
            local[var] = result
    return [np.asarray(local[var]) for _, var in step.outputs]


def broadcast_shape(arrays: Sequence[np.ndarray], variables: Sequence[Variable], what: str) -> tuple[int, ...]:
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


def plan_call(step: KernelStep | RowChainStep, arrays: Sequence[np.ndarray]) -> CallPlan | None:
    """``(index shape, output order, axis groups, output shape)`` for a kernel call, or None
    when the NumPy fallback must run it."""
    kernel = step.kernel
    named = [(b, v, a) for (b, v), a in zip(step.inputs, arrays)]
    what = f"computing {kernel.note}"
    if step.reduced_axes is None:
        full = [(b, v, a) for b, v, a in named if b.ndim]
        shape = broadcast_shape([a for _, _, a in full], [v for _, v, _ in full], what)
        lead = next((a for _, _, a in full if a.size > 1), None)
        order = (
            "F"
            if lead is not None and lead.ndim > 1 and lead.flags.f_contiguous and not lead.flags.c_contiguous
            else "C"
        )
        return shape, order, [list(range(kernel.ndim))], shape
    inner = [(b, v, a) for b, v, a in named if b.ndim and b.name not in step.epilogue_inputs]
    shape = broadcast_shape([a for _, _, a in inner], [v for _, v, _ in inner], what)
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


def index_strides(array: np.ndarray, axes: Sequence[int | None], shape: Sequence[int]) -> list[int]:
    """Strides in elements of ``array`` per index axis (0 where it broadcasts or is absent)."""
    out = []
    for index_axis, array_axis in enumerate(axes):
        if array_axis is None or array.shape[array_axis] == 1 or shape[index_axis] == 1:
            out.append(0)
        else:
            out.append(array.strides[array_axis] // array.itemsize)
    return out


def canonical_axes(
    shape: Sequence[int], strides: Sequence[Sequence[int] | None], groups: Sequence[Sequence[int]]
) -> tuple[list[int], list[list[int] | None], int]:
    """Reorder, drop and merge axes within each group so the smallest strides are innermost.

    Returns the lengths and each buffer's strides in the kernel's axis order
    (each group keeps its number of axes, padded in front with length 1) and
    whether every non-scalar buffer is then contiguous in index order.
    """
    arrays = [s for s in strides if s is not None]
    lead = next((s for s in arrays if any(s)), None)
    lengths: list[int] = []
    new: list[list[int]] = [[] for _ in strides]
    for group in groups:
        axes = [a for a in group if shape[a] != 1]
        if lead is not None:
            axes.sort(key=lambda a: -abs(lead[a]))
        # Merge axis pairs that every buffer walks as one.
        merged: list[list[int]] = []
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

"""The steps of a lowered program (kernels and NumPy steps) and how graph nodes become
kernel expressions: what lowering, row passes, row chains and segments share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.target import Target
from exprc.graph import Apply, Variable
from exprc.printing import to_infix

#: How long a graph expression may get in a comment.
NOTE_LIMIT = 70


@dataclass
class KernelStep:
    """A fused kernel and how it binds to the graph.

    ``inputs`` and ``outputs`` pair each kernel buffer with its graph variable
    (one output, except for a row pass).
    ``axes`` maps each buffer name to, per index-space axis (in the axis order
    of the graph), the array axis it reads or None. ``nodes`` are the graph
    nodes the kernel computes, in order: the NumPy fallback runs them.
    """

    kernel: ir.Kernel | ir.RowPassKernel
    inputs: list
    outputs: list
    axes: dict
    nodes: list
    #: For a reduction kernel: the reduced axes of the index space, whether the
    #: reduction keeps them, and its op; None for an elementwise kernel.
    reduced_axes: tuple | None = None
    keepdims: bool = False
    reduce_op: str | None = None
    #: The buffers read at every kept index only (a reduction's epilogue inputs).
    epilogue_inputs: tuple = ()


@dataclass
class NumpyStep:
    """A graph node run through its op's NumPy reference."""

    node: Apply


@dataclass
class Program:
    """The steps that compute ``outputs`` from ``inputs``, in order."""

    inputs: list
    outputs: list
    steps: list = field(default_factory=list)
    #: The back end it was lowered for (:class:`~exprc.codegen.ir.target.Target`).
    target: Target | None = None

    @property
    def kernels(self) -> list[ir.Kernel | ir.RowPassKernel]:
        return [s.kernel for s in self.steps if isinstance(s, KernelStep)]


#: A step of a program: a kernel, or a node run by its NumPy implementation.
Step: TypeAlias = "KernelStep | NumpyStep"


def step_reads(step: Step) -> list[Variable]:
    """The graph values a step reads."""
    if isinstance(step, NumpyStep):
        return list(step.node.inputs)
    return [var for _, var in step.inputs]


def step_writes(step: Step) -> list[Variable]:
    """The graph values a step computes for other steps."""
    if isinstance(step, NumpyStep):
        return list(step.node.outputs)
    return [var for _, var in step.outputs]


def note(var: Variable, texts: Mapping[Variable, str] | None = None) -> str:
    """The graph expression ``var`` computes, short enough for a comment (from ``texts``,
    the result of one ``infix_texts`` walk, where it has it)."""
    text = texts.get(var) if texts else None
    return text if text is not None else to_infix(var, limit=NOTE_LIMIT)


def cast(expr: ir.Expr, dtype: str) -> ir.Expr:
    """``expr`` converted to ``dtype``; constants are converted now, as NumPy would."""
    if expr.dtype == dtype:
        return expr
    if isinstance(expr, ir.Const):
        with np.errstate(all="ignore"):
            value = np.asarray(expr.value, dtype=expr.dtype).astype(dtype).item()
        return ir.Const(value, dtype, expr.note)
    return ir.Cast(expr, dtype, expr.note)


def elemwise_expr(
    node: Apply, args: Sequence[ir.Expr], target: Target, note: Callable[[Variable], str] = note
) -> ir.Expr:
    out = node.outputs[0]
    name = node.op.scalar_op.name
    if name.startswith("astype_"):
        return ir.Cast(args[0], out.dtype, note(out)) if args[0].dtype != out.dtype else args[0]
    signature = target.elemwise_signature(node)
    assert signature is not None, "only nodes the target can render become kernel code"
    in_dtypes, loop_out = signature
    call = ir.Call(name, tuple(cast(a, d) for a, d in zip(args, in_dtypes)), loop_out, note(out))
    return cast(call, out.dtype) if loop_out != out.dtype else call


def accumulator_dtype(op_name: str, dtype: str) -> str:
    """The dtype a reduction accumulates in: float64 for float32 sums, wrapping unsigned for integers."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return "float64" if op_name == "add" else dtype
    if kind == "i" and op_name in ("add", "mul"):
        return "u" + dtype
    return dtype

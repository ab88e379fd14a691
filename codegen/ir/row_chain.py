"""Row chains: consecutive kernels over the same rows made one, for the GPU.

:func:`chain` replaces each run of kernel steps over the same rows of a lowered program (a
softmax's maximum, sum and division) by one :class:`RowChainStep`, whose
:class:`~exprc.codegen.ir.kernel.RowChainKernel` reads each row from memory once.
See docs/internals/row-passes.md.

>>> import exprc as ex
>>> from exprc.codegen.ir.lower import lower
>>> from exprc.codegen.cuda.target import TARGET
>>> x = ex.matrix("x")
>>> e = ex.exp(x - x.max(axis=1, keepdims=True))
>>> program = chain(lower([x], [e / e.sum(axis=1, keepdims=True)], TARGET))
>>> [type(s).__name__ for s in program.steps], len(program.steps[0].parts)
(['RowChainStep'], 3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.names import identifier, unique
from exprc.codegen.ir.steps import KernelStep, NumpyStep, Program, Step

if TYPE_CHECKING:
    from exprc.graph import Apply, Variable
    from exprc.tensor import TensorVariable


@dataclass
class RowChainStep:
    """A :class:`~exprc.codegen.ir.kernel.RowChainKernel` and how it binds to the graph, like a
    :class:`~exprc.codegen.ir.lower.KernelStep`: ``inputs`` and ``outputs`` pair buffers with
    graph variables, ``axes`` maps a buffer name to the array axis it reads per index
    axis. ``parts`` are the kernel steps it replaces (run one by one where the chain
    cannot run)."""

    kernel: ir.RowChainKernel
    inputs: list[tuple[ir.Buffer, TensorVariable]]
    outputs: list[tuple[ir.Buffer, TensorVariable]]
    axes: dict[str, tuple[int | None, ...]]
    parts: list[KernelStep]
    nodes: list[Apply] = field(default_factory=list)

    @property
    def reduced_axes(self) -> tuple[int, ...]:
        return tuple(range(self.kernel.kept, self.kernel.ndim))

    keepdims = True
    epilogue_inputs = ()

    @property
    def reduce_op(self) -> str | None:
        """``max`` or ``min`` where a reduction has no identity (so empty rows go to the parts)."""
        return next((r.op for r in self.kernel.reductions if r.op in ("max", "min")), None)


def chain(program: Program, min_parts: int = 2) -> Program:
    """``program`` with each run of kernel steps over the same rows (see the module docstring)
    replaced by one :class:`RowChainStep`."""
    readers = _readers(program)
    steps: list[Step | RowChainStep] = []
    i = 0
    while i < len(program.steps):
        run = _run_from(program.steps, i)
        if len(run) >= min_parts:
            span = range(i, i + len(run))
            parts = [s for s in run if isinstance(s, KernelStep)]  # all of them: a run of two or more
            target = program.target
            assert target is not None  # a lowered program knows its back end
            steps.append(
                _build(
                    parts,
                    lambda var: any(r not in span for r in readers.get(var, ())),
                    len(steps),
                    target.reserves,
                )
            )
            i += len(run)
        else:
            steps.append(program.steps[i])
            i += 1
    return Program(program.inputs, program.outputs, steps, program.target)


def _trailing(step: KernelStep) -> int | None:
    """The number of reduced axes, when ``step`` reduces the last axes of its index space."""
    d, reduced = step.kernel.ndim, step.reduced_axes
    if reduced is None or not reduced or tuple(reduced) != tuple(range(d - len(reduced), d)):
        return None
    return len(reduced)


def _run_from(steps: Sequence[Step], start: int) -> list[Step]:
    """The longest run of steps from ``start`` that one row chain computes (may be one)."""
    first = steps[start]
    if not isinstance(first, KernelStep) or type(first.kernel) is not ir.Kernel:
        return [first]
    naxes = _trailing(first)
    out = first.outputs[0][1]
    if naxes is None or out.ndim != first.kernel.ndim:
        return [first]
    d = first.kernel.ndim
    reduced = range(d - naxes, d)
    per_row: set[Variable] = {out}
    per_element: set[Variable] = set()
    run: list[Step] = [first]
    for step in steps[start + 1 :]:
        if not isinstance(step, KernelStep) or type(step.kernel) is not ir.Kernel or step.kernel.ndim != d:
            break
        if step.reduced_axes is not None and _trailing(step) != naxes:
            break
        reads = [(b, v) for b, v in step.inputs if v in per_row or v in per_element]
        if not reads or any(tuple(step.axes[b.name]) != tuple(range(d)) for b, _ in reads):
            break
        if any(v in per_row and not one_per_row(v, reduced) for _, v in reads):
            break
        if step.reduced_axes is not None and any(v in per_element for b, v in reads if b.outer):
            break
        ((_, result),) = step.outputs
        if result.ndim != d:
            break
        if step.reduced_axes is not None or one_per_row(result, reduced):
            if step.reduced_axes is None and not all(one_per_row(v, reduced) for b, v in step.inputs if b.ndim):
                break  # elementwise work of one value per row reads nothing finer
            per_row.add(result)
        else:
            per_element.add(result)
        run.append(step)
    return run


def one_per_row(var: TensorVariable, reduced: Sequence[int]) -> bool:
    """Whether ``var`` has one element per row: length 1 on the reduced axes (known statically)."""
    return var.ndim > 0 and all(var.type.shape[a] == 1 for a in reduced)


def _readers(program: Program) -> dict[Variable, list[int]]:
    """Variable -> the positions of the steps that read it (-1 for the program's return)."""
    readers: dict[Variable, list[int]] = {var: [-1] for var in program.outputs}
    for i, step in enumerate(program.steps):
        for var in step.node.inputs if isinstance(step, NumpyStep) else [v for _, v in step.inputs]:
            readers.setdefault(var, []).append(i)
    return readers


def _build(
    run: Sequence[KernelStep],
    needed_outside: Callable[[TensorVariable], bool],
    position: int,
    reserves: Callable[[str], bool],
) -> RowChainStep:
    """The :class:`RowChainStep` computing the steps of ``run``; it stores the values
    ``needed_outside`` says something else reads, in buffers whose names ``reserves`` keeps
    clear of the renderer's own."""
    d = run[0].kernel.ndim
    naxes = _trailing(run[0])
    assert naxes is not None  # a run starts with a reduction over the last axes
    reduced = range(d - naxes, d)
    names: set[str] = set()
    buffers: list[ir.Buffer] = []
    inputs: list[tuple[ir.Buffer, TensorVariable]] = []
    outputs: list[tuple[ir.Buffer, TensorVariable]] = []
    axes: dict[str, tuple[int | None, ...]] = {}
    computed: dict[TensorVariable, ir.Expr] = {}  # graph variable computed by the chain -> its expression
    loaded: dict[tuple[TensorVariable, tuple[int | None, ...]], ir.Load] = {}  # (variable, axes) -> its Load

    def buffer_for(
        var: TensorVariable,
        var_axes: tuple[int | None, ...],
        dtype: str,
        output: bool = False,
        outer: bool = False,
        scalar: bool = False,
    ) -> ir.Buffer:
        fallback = f"out{len(outputs)}" if output else f"t{len(inputs)}"
        name = unique(identifier(var.name or fallback, reserves), names)
        b = ir.Buffer(name, dtype, 0 if scalar else d, output=output, outer=outer)
        buffers.append(b)
        (outputs if output else inputs).append((b, var))
        axes[name] = var_axes
        return b

    reductions: list[ir.Reduction] = []
    interned: dict = {}  # the chain's nodes by operation and arguments (see _copy)
    stores: list[tuple[ir.Buffer, ir.Expr]] = []
    computes: list[str] = []
    for part in run:
        memo: dict[ir.Buffer, ir.Expr] = {}
        part_axes = part.axes
        notes = {n.buffer: n.note for n in ir.walk(part.kernel.roots) if isinstance(n, ir.Load)}
        for b, var in part.inputs:
            if var in computed:
                memo[b] = computed[var]
                continue
            key = (var, tuple(part_axes[b.name]))
            if key not in loaded:
                outer = var.ndim == d and one_per_row(var, reduced)
                # scalar as the kernel read it: a constant argument is a one-element array
                scalar = b.ndim == 0
                loaded[key] = ir.Load(
                    buffer_for(var, part_axes[b.name], b.dtype, outer=outer, scalar=scalar), notes.get(b, "")
                )
            memo[b] = loaded[key]
        reduction = None
        if part.kernel.reduction is not None:
            red = part.kernel.reduction
            reduction = dataclasses.replace(red, value=_copy(red.value, memo, None, interned))
            reductions.append(reduction)
        ((out_buffer, result),) = part.outputs
        expr = _copy(part.kernel.stores[0][1], memo, reduction, interned)
        computed[result] = expr
        if needed_outside(result):
            outer = reduction is not None or one_per_row(result, reduced)
            stores.append((buffer_for(result, tuple(range(d)), out_buffer.dtype, output=True, outer=outer), expr))
        computes.extend(c for c in part.kernel.computes or (part.kernel.note,) if c not in computes)
    buffers.sort(key=lambda b: b.output)  # inputs first, as every kernel's arguments are
    name = f"k{position}_chain_" + "_".join(p.kernel.name.split("_", 1)[1] for p in run)[:40].rstrip("_")
    kernel = ir.RowChainKernel(
        name,
        d,
        naxes,
        tuple(buffers),
        tuple(reductions),
        tuple(stores),
        note=run[-1].kernel.note,
        computes=tuple(computes),
    )
    return RowChainStep(kernel, inputs, outputs, axes, list(run), [n for p in run for n in p.nodes])


def _copy(
    expr: ir.Expr, memo: dict[ir.Buffer, ir.Expr], reduction: ir.Reduction | None, interned: dict | None = None
) -> ir.Expr:
    """``expr`` with the part's loads replaced (``memo``: buffer -> chain expression) and its
    accumulator made that of ``reduction``. Nodes already made for an earlier part with the
    same operation and arguments (``interned``) are that node: a value the parts each computed
    (a softmax's ``exp(x - max)``, in its sum and its division) is one node of the chain."""
    interned = {} if interned is None else interned
    done: dict[int, ir.Expr] = {}
    for node in ir.walk([expr]):
        if isinstance(node, ir.Load):
            done[id(node)] = memo[node.buffer]
            continue
        if isinstance(node, ir.Acc):
            key: tuple = ("acc", id(reduction), node.dtype)
            new: ir.Expr = dataclasses.replace(node, of=reduction)
        elif isinstance(node, ir.Call):
            args = tuple(done[id(a)] for a in node.call_args)
            key = ("call", node.op, node.dtype, tuple(id(a) for a in args))
            new = dataclasses.replace(node, call_args=args)
        elif isinstance(node, ir.Cast):
            arg = done[id(node.arg)]
            key = ("cast", node.dtype, id(arg))
            new = dataclasses.replace(node, arg=arg)
        elif isinstance(node, ir.Const):
            key = ("const", node.dtype, type(node.value).__name__, repr(node.value))
            new = node
        else:
            done[id(node)] = node
            continue
        done[id(node)] = interned.setdefault(key, new)
    return done[id(expr)]

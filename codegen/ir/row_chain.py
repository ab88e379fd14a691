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

import dataclasses
from dataclasses import dataclass, field

from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.names import identifier, unique
from exprc.codegen.ir.steps import KernelStep, NumpyStep, Program


@dataclass
class RowChainStep:
    """A :class:`~exprc.codegen.ir.kernel.RowChainKernel` and how it binds to the graph, like a
    :class:`~exprc.codegen.ir.lower.KernelStep`: ``inputs`` and ``outputs`` pair buffers with
    graph variables, ``axes`` maps a buffer name to the array axis it reads per index
    axis. ``parts`` are the kernel steps it replaces (run one by one where the chain
    cannot run)."""

    kernel: ir.RowChainKernel
    inputs: list
    outputs: list
    axes: dict
    parts: list
    nodes: list = field(default_factory=list)

    @property
    def reduced_axes(self):
        return tuple(range(self.kernel.kept, self.kernel.ndim))

    keepdims = True
    epilogue_inputs = ()

    @property
    def reduce_op(self):
        """``max`` or ``min`` where a reduction has no identity (so empty rows go to the parts)."""
        return next((r.op for r in self.kernel.reductions if r.op in ("max", "min")), None)


def chain(program, min_parts=2):
    """``program`` with each run of kernel steps over the same rows (see the module docstring)
    replaced by one :class:`RowChainStep`."""
    readers = _readers(program)
    steps, i = [], 0
    while i < len(program.steps):
        run = _run_from(program.steps, i)
        if len(run) >= min_parts:
            span = range(i, i + len(run))
            steps.append(
                _build(
                    run,
                    lambda var: any(r not in span for r in readers.get(var, ())),
                    len(steps),
                    program.target.reserves,
                )
            )
            i += len(run)
        else:
            steps.append(program.steps[i])
            i += 1
    return Program(program.inputs, program.outputs, steps, program.target)


def _trailing(step):
    """The number of reduced axes, when ``step`` reduces the last axes of its index space."""
    d, reduced = step.kernel.ndim, step.reduced_axes
    if reduced is None or not reduced or tuple(reduced) != tuple(range(d - len(reduced), d)):
        return None
    return len(reduced)


def _run_from(steps, start):
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
    per_row, per_element = {out}, set()
    run = [first]
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
            if step.reduced_axes is None and not all(one_per_row(v, reduced) for _, v in step.inputs if v.ndim):
                break  # elementwise work of one value per row reads nothing finer
            per_row.add(result)
        else:
            per_element.add(result)
        run.append(step)
    return run


def one_per_row(var, reduced):
    """Whether ``var`` has one element per row: length 1 on the reduced axes (known statically)."""
    return var.ndim > 0 and all(var.type.shape[a] == 1 for a in reduced)


def _readers(program):
    """Variable -> the positions of the steps that read it (-1 for the program's return)."""
    readers = {var: [-1] for var in program.outputs}
    for i, step in enumerate(program.steps):
        for var in step.node.inputs if isinstance(step, NumpyStep) else [v for _, v in step.inputs]:
            readers.setdefault(var, []).append(i)
    return readers


def _build(run, needed_outside, position, reserves):
    """The :class:`RowChainStep` computing the steps of ``run``; it stores the values
    ``needed_outside`` says something else reads, in buffers whose names ``reserves`` keeps
    clear of the renderer's own."""
    d = run[0].kernel.ndim
    naxes = _trailing(run[0])
    reduced = range(d - naxes, d)
    names, buffers, inputs, outputs, axes = set(), [], [], [], {}
    computed = {}  # graph variable computed by the chain -> its expression in the chain
    loaded = {}  # (graph variable, axes) -> the chain's Load of it

    def buffer_for(var, var_axes, dtype, output=False, outer=False):
        fallback = f"out{len(outputs)}" if output else f"t{len(inputs)}"
        name = unique(identifier(var.name or fallback, reserves), names)
        b = ir.Buffer(name, dtype, d if var.ndim or output else 0, output=output, outer=outer)
        buffers.append(b)
        (outputs if output else inputs).append((b, var))
        axes[name] = var_axes
        return b

    reductions, stores, computes = [], [], []
    for part in run:
        memo = {}
        part_axes = part.axes
        notes = {n.buffer: n.note for n in ir.walk(part.kernel.roots) if isinstance(n, ir.Load)}
        for b, var in part.inputs:
            if var in computed:
                memo[b] = computed[var]
                continue
            key = (var, tuple(part_axes[b.name]))
            if key not in loaded:
                outer = var.ndim == d and one_per_row(var, reduced)
                loaded[key] = ir.Load(buffer_for(var, part_axes[b.name], b.dtype, outer=outer), notes.get(b, ""))
            memo[b] = loaded[key]
        reduction = None
        if part.kernel.reduction is not None:
            red = part.kernel.reduction
            reduction = dataclasses.replace(red, value=_copy(red.value, memo, None))
            reductions.append(reduction)
        ((out_buffer, result),) = part.outputs
        expr = _copy(part.kernel.stores[0][1], memo, reduction)
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


def _copy(expr, memo, reduction):
    """``expr`` with the part's loads replaced (``memo``: buffer -> chain expression) and its
    accumulator made that of ``reduction``."""
    done = {}
    for node in ir.walk([expr]):
        if isinstance(node, ir.Load):
            done[id(node)] = memo[node.buffer]
        elif isinstance(node, ir.Acc):
            done[id(node)] = dataclasses.replace(node, of=reduction)
        elif isinstance(node, ir.Call):
            done[id(node)] = dataclasses.replace(node, call_args=tuple(done[id(a)] for a in node.call_args))
        elif isinstance(node, ir.Cast):
            done[id(node)] = dataclasses.replace(node, arg=done[id(node.arg)])
        else:
            done[id(node)] = node
    return done[id(expr)]

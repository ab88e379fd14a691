"""The C back end: ``exprc.function(..., backend="c")`` runs a :class:`CProgram`.

A graph is lowered to fused kernels and NumPy steps; each run of kernels gets one C entry
point; the C is compiled, kept in the disk cache, and the program remembered in the
process (the last :data:`MEMO_SIZE`).
See docs/internals/c-back-end.md and docs/internals/c-call-path.md.

>>> import numpy as np, exprc as ex
>>> x = ex.vector("x")
>>> f = ex.function([x], ex.exp(-x ** 2).sum(), backend="c")  # doctest: +SKIP
>>> f(np.zeros(4))  # doctest: +SKIP
array(4.)
"""

import contextlib

import numpy as np

from exprc.codegen.c import build, ops
from exprc.codegen.c.call import OBJECT_HEAD, SegmentRunner
from exprc.codegen.c.entry import declarations as entry_declarations
from exprc.codegen.c.entry import max_rank
from exprc.codegen.c.kernel_call import as_array, run_kernel
from exprc.codegen.c.render import declaration, render_parts
from exprc.codegen.c.runtime import runtime_source
from exprc.codegen.c.target import TARGET
from exprc.codegen.cache.disk import sha256
from exprc.codegen.cache.memo import Memo, MemoizedProgram
from exprc.codegen.ir.call_plan import lookup, perform
from exprc.codegen.ir.kernel import RowPassKernel
from exprc.codegen.ir.lower import NumpyStep, lower
from exprc.codegen.ir.row_chain import RowChainStep, chain
from exprc.codegen.ir.row_pass import may_write_over
from exprc.codegen.ir.segments import Segment, plan
from exprc.codegen.ir.steps import KernelStep
from exprc.graph import Constant, canonical_text
from exprc.printing import infix_texts

#: Compiled programs kept in this process, most recently used last.
MEMO_SIZE = 128

_memo = Memo(MEMO_SIZE)


class CProgram(MemoizedProgram):
    """Runs a graph as compiled C and NumPy steps; the interface of ``ReferenceProgram``."""

    def __init__(self, inputs, outputs, in_place=()):
        self.inputs, self.outputs = list(inputs), list(outputs)
        in_place = tuple(in_place)
        key = (tuple(self.inputs), tuple(self.outputs), in_place)
        compiled = _memo.get_or_build(key, lambda: _Compiled(self.inputs, self.outputs, in_place))
        self.compiled = compiled
        self.run = compiled.fast_run  # the call path: no extra Python layer
        #: ``direct[single](args)``: the result (an array with ``single``, else a list) for
        #: arguments a checked call has seen the like of, or None (see
        #: :meth:`exprc.codegen.c.call.SegmentRunner.direct_path`); None for other programs.
        self.direct = compiled.direct
        #: ``{output position: input position}``: the outputs written over an input's array.
        self.in_place = compiled.in_place

    def call_method(self, single, checked):
        """A function's ``__call__`` running this program's direct path (see
        :meth:`exprc.codegen.c.call.SegmentRunner.call_method`), or None for other programs."""
        if self.direct[single] is None:
            return None
        return self.compiled.whole.call_method(single, checked)


#: Functions applied to every lowered program before it is rendered: for tests only, which
#: inject a wrong kernel to see that ``mode="check"`` names it (see :func:`program_hook`).
_program_hooks = []


@contextlib.contextmanager
def program_hook(hook):
    """For tests: within the block, every graph compiled for C is lowered, then passed through
    ``hook(program)``, which returns the program to render (for instance one with a wrong
    kernel). Programs compiled in the block are forgotten on leaving it.

    >>> with program_hook(lambda program: program):
    ...     pass
    """
    clear_memo()
    _program_hooks.append(hook)
    try:
        yield
    finally:
        _program_hooks.remove(hook)
        clear_memo()


def clear_memo():
    """Forget the programs compiled in this process (the next build lowers and loads again)."""
    _memo.clear()


class _Compiled:
    """Everything built for one graph: the program, its C, the library and the runners."""

    def __init__(self, inputs, outputs, in_place=()):
        self.inputs, self.outputs = inputs, outputs
        self.program = lower(inputs, outputs, TARGET, row_pass=True)
        self.program = _row_chains(self.program)
        for hook in _program_hooks:
            self.program = hook(self.program)
        self.items = plan(self.program, c_form=ops.c_form)
        self.segments = [item for item in self.items if isinstance(item, Segment)]
        writes = {}  # output variable -> the input variable whose array it is written into
        for out, inp in in_place:
            if self._may_write_over(outputs[out], inputs[inp]):
                writes[outputs[out]] = inputs[inp]
        self.in_place = {out: inp for out, inp in in_place if writes.get(outputs[out]) is inputs[inp]}
        texts = infix_texts(list(outputs) + list(inputs), limit=70)
        kernels = self.program.kernels
        rendered = render_parts(kernels, self._summary(texts), self.segments, texts, max_units=build.parallel_units())
        self.source, units, self.kernel_sources = rendered.source, rendered.units, rendered.kernels
        self.readable = rendered.readable
        self.library, self.kernel_functions, self.runners = None, {}, {}
        if self.segments:
            cdef = [declaration(k) for k in kernels]
            for segment in self.segments:
                cdef += entry_declarations(segment)
            self.library = build.load_library(
                self.source,
                "\n".join(cdef),
                graph=canonical_text(inputs, outputs, sha256),
                units=units,
                runtime=runtime_source(max_rank(self.segments), OBJECT_HEAD),
            )
            lib = self.library.lib
            self.kernel_functions = {k.name: getattr(lib, k.name) for k in kernels}
            self.runners = {s.index: SegmentRunner(s, self.library, reuse=_reuse(s, writes)) for s in self.segments}
        self._free_after = self._lifetimes()
        self.whole, self.picks = self._whole_program()
        self.fast_run, self.direct = self.run, {True: None, False: None}
        if self.whole is not None and self.picks is None:
            self.fast_run = self.whole.fast_path(self.run)
            self.direct = {single: self.whole.direct_path(single) for single in (True, False)}

    # --- description -------------------------------------------------------------------------
    def _summary(self, texts):
        names = {v: (v.name or f"x{i}") for i, v in enumerate(self.inputs)}
        lines = ["exprc program", "", "inputs: " + (", ".join(f"{names[v]}: {v.type}" for v in self.inputs) or "none")]
        n = 0
        for item in self.items:
            if isinstance(item, NumpyStep):
                node = item.node
                why = ops.why_not(node)
                why = f" ({why})" if why else ""
                lines.append(f"step {n}: NumPy {node.op.debug_name()}{why}: {texts.get(node.outputs[0], '')}")
                n += 1
                continue
            lines.append(f"entry point {item.name} (one call) runs:")
            for step in item.steps:
                if isinstance(step, NumpyStep):
                    what = ops.describe(item.forms[step.node], step.node)
                    lines.append(f"step {n}: C {what}: {texts.get(step.node.outputs[0], '')}")
                else:
                    lines.append(f"step {n}: C kernel {step.kernel.name}: {step.kernel.note}")
                n += 1
        lines.append("outputs: " + ", ".join(texts.get(v, "") for v in self.outputs))
        return "\n".join(lines)

    def _lifetimes(self):
        last_use = {}
        for i, item in enumerate(self.items):
            for var in _reads(item):
                last_use[var] = i
        keep = set(self.outputs)
        free = [[] for _ in self.items]
        for var, i in last_use.items():
            if var not in keep and var.owner is not None:
                free[i].append(var)
        return free

    def _whole_program(self):
        """The runner of a program that is one segment computing every output, and which
        inputs it takes (None: all of them, in order); (None, None) for other programs."""
        if len(self.items) != 1 or not self.segments:
            return None, None
        segment = self.segments[0]
        if segment.outputs != self.outputs or any(v not in self.inputs for v in segment.inputs):
            return None, None
        picks = [self.inputs.index(v) for v in segment.inputs]
        return self.runners[segment.index], (None if picks == list(range(len(self.inputs))) else picks)

    def _may_write_over(self, out, source):
        """Whether ``out`` may be computed into the array of input ``source`` (an update written
        in place): its kernel reads ``source`` at the very element it writes, if at all, and
        nothing that may share memory with ``source`` is read later or returned.

        A NumPy step's results may be views of its inputs, so anything computed from
        ``source`` by NumPy steps counts as sharing its memory; a kernel's results never do.
        """
        if any(d is None for d in source.type.shape) or source.type != out.type or self.outputs.count(out) != 1:
            return False
        aliases = {source}
        for item in self.items:
            for step in item.steps if isinstance(item, Segment) else [item]:
                if not isinstance(step, NumpyStep) or not any(v in aliases for v in step.node.inputs):
                    continue
                # a host step's result may be a view; in C, only views and sums may be
                if not isinstance(item, Segment) or ops.may_alias(item.forms[step.node]):
                    aliases.update(step.node.outputs)
        if any(v in aliases for v in self.outputs):
            return False
        for position, item in enumerate(self.items):
            if not isinstance(item, Segment):
                continue
            for k, step in enumerate(item.steps):  # noqa: B007 - k is read after the loop
                if any(var is out for var in _step_writes(step)):
                    break
            else:
                continue
            if source not in item.inputs or isinstance(step, NumpyStep):
                return False
            if isinstance(step.kernel, RowPassKernel):
                if not may_write_over(step, out, source) or any(
                    var in aliases and var is not source for _, var in step.inputs
                ):
                    return False
            else:
                if step.reduced_axes is not None:
                    return False
                identity = list(range(source.ndim))
                for buffer, var in step.inputs:
                    if var in aliases and (var is not source or list(step.axes[buffer.name]) != identity):
                        return False
            later = [v for s in item.steps[k + 1 :] for v in _step_reads(s, item)]
            later += [v for i in self.items[position + 1 :] for v in _reads(i)]
            return not any(v in aliases for v in later)
        return False

    # --- running -----------------------------------------------------------------------------
    def run(self, arrays):
        if self.whole is not None:
            picks = self.picks
            results = self.whole(arrays if picks is None else [arrays[i] for i in picks])
            if results is not None:
                return results
        return self.run_steps(arrays)

    def run_steps(self, arrays):
        """Run the program item by item: NumPy steps in Python, each segment in one C call
        where it can, else kernel by kernel."""
        values = dict(zip(self.inputs, arrays))
        with np.errstate(all="ignore"):
            for item, dead in zip(self.items, self._free_after):
                if isinstance(item, NumpyStep):
                    run = TARGET.lowerings.of(item.node.op).run
                    for var, result in zip(item.node.outputs, perform(item.node, values, run)):
                        values[var] = result
                else:
                    self._run_segment(item, values)
                for var in dead:
                    values.pop(var, None)
        results = [as_array(lookup(v, values)) for v in self.outputs]
        # An output that is an input (or a constant) is copied: the caller owns what it gets;
        # but an output written over its input's array (in_place) is that array by design.
        given = {id(a) for a in arrays}
        written = {k for k, i in self.in_place.items() if results[k] is arrays[i]}
        return [
            r.copy() if k not in written and (id(r) in given or isinstance(v, Constant)) else r
            for k, (v, r) in enumerate(zip(self.outputs, results))
        ]

    def _run_segment(self, segment, values):
        arrays = []
        for var in segment.inputs:
            array = as_array(lookup(var, values))
            arrays.append(array if array.dtype == var.dtype else array.astype(var.dtype))
        results = self.runners[segment.index](arrays)
        if results is not None:
            values.update(zip(segment.outputs, results))
            return
        for step in segment.steps:
            if isinstance(step, NumpyStep):
                run = TARGET.lowerings.of(step.node.op).run
                for var, result in zip(step.node.outputs, perform(step.node, values, run)):
                    values[var] = result
            else:
                run_kernel(step, values, self.kernel_functions[step.kernel.name], self.library.ffi)


def _reuse(segment, writes):
    """``{output slot: input slot}`` of ``segment`` for the outputs written over an input."""
    return {
        segment.outputs.index(out): segment.inputs.index(source)
        for out, source in writes.items()
        if out in segment.outputs
    }


def _step_reads(step, segment):
    if isinstance(step, NumpyStep):
        return segment.forms[step.node].reads
    return [var for _, var in step.inputs]


def _step_writes(step):
    if isinstance(step, NumpyStep):
        return step.node.outputs
    return [var for _, var in step.outputs]


def _reads(item):
    if isinstance(item, NumpyStep):
        return item.node.inputs
    return item.inputs


def _row_chains(program):
    """``program`` with each run of kernels over the same rows one row chain (only chains
    over one reduced axis that store no per-row result: the run time gives outputs the index
    space's shape)."""
    steps = []
    for step in chain(program).steps:
        if not isinstance(step, RowChainStep):
            steps.append(step)
        elif step.kernel.naxes != 1 or any(b.outer for b, _ in step.kernel.stores):
            # the C row chain walks rows of one reduced axis; rows over several run as their kernels
            steps.extend(step.parts)
        else:
            steps.append(
                KernelStep(step.kernel, step.inputs, step.outputs, step.axes, step.nodes, reduce_op=step.reduce_op)
            )
    program.steps = steps
    return program

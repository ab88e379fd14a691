"""The CUDA back end: ``exprc.function(..., device="cuda")`` runs a :class:`CudaProgram`.

A graph is lowered as for the C back end; its kernels are rendered as CUDA, compiled by
NVRTC to a CUBIN for the GPU and launched in program order, and calls with inputs of an
earlier call's layouts are replayed (:mod:`exprc.codegen.cuda.replay`).
See docs/internals/cuda-back-end.md.

>>> import exprc as ex
>>> x = ex.vector("x")
>>> f = ex.function([x], ex.exp(x).sum(), device="cuda")  # doctest: +SKIP
>>> f(np.zeros(3)).get()  # doctest: +SKIP
array(3.)
"""

import numpy as np

from exprc.codegen.cache.memo import Memo, MemoizedProgram
from exprc.codegen.cuda import driver
from exprc.codegen.cuda.array import overlapping
from exprc.codegen.cuda.build import load_cubin
from exprc.codegen.cuda.gemm.plan import kernel_for, small_tiles
from exprc.codegen.cuda.lowerings import CUDA_LOWERINGS
from exprc.codegen.cuda.render import distinct, render_program
from exprc.codegen.cuda.replay import Recorder, signature
from exprc.codegen.cuda.steps import _on_gpu, device_output, run_chain, run_kernel, run_numpy_step, value_of
from exprc.codegen.cuda.target import TARGET
from exprc.codegen.ir.lower import KernelStep, NumpyStep, lower
from exprc.codegen.ir.lowering import Kind
from exprc.codegen.ir.row_chain import RowChainStep, chain
from exprc.printing import infix_texts

#: Programs kept in this process, most recently used last.
MEMO_SIZE = 64

#: Input layouts whose recorded calls a program keeps for replaying, the latest ones.
MAX_REPLAYS = 64

_NOT_YET = object()  # no call with those layouts recorded yet

_memo = Memo(MEMO_SIZE)


class CudaProgram(MemoizedProgram):
    """Runs a graph on GPU ``device_id``: ``run(arrays) -> list`` of device arrays, from
    device arrays (one per input); ``listing()`` is the CUDA source.

    ``in_place`` lists ``(output index, input index)`` pairs: the output may be computed
    into the input's array, where :meth:`_Compiled.may_write_over` finds that safe (the
    updates of shared variables). ``allow_tf32`` lets float32 matrix products run on the
    tensor cores as TF32 (not exact)."""

    def __init__(self, inputs, outputs, device_id=0, in_place=(), allow_tf32=False):
        self.inputs, self.outputs, self.device_id = list(inputs), list(outputs), device_id
        in_place, allow_tf32 = tuple(tuple(p) for p in in_place), bool(allow_tf32)
        key = (tuple(self.inputs), tuple(self.outputs), device_id, in_place, allow_tf32)
        compiled = _memo.get_or_build(
            key, lambda: _Compiled(self.inputs, self.outputs, device_id, in_place, allow_tf32)
        )
        self.compiled = compiled
        self.run = compiled.run
        #: ``{output variable: input variable}``: the outputs computed into an input's array.
        self.in_place = compiled.in_place


def clear_memo():
    """Forget the programs built in this process."""
    _memo.clear()


class _Compiled:
    """Everything built for one graph on one GPU: the program, its CUDA, the loaded kernels."""

    def __init__(self, inputs, outputs, device_id, in_place=(), allow_tf32=False):
        self.inputs, self.outputs, self.device_id = inputs, outputs, device_id
        self.allow_tf32 = allow_tf32
        self.program = chain(lower(inputs, outputs, TARGET))
        #: output variable -> the input whose array it is computed into
        self.in_place = {outputs[o]: inputs[i] for o, i in in_place if self.may_write_over(outputs[o], inputs[i])}
        texts = infix_texts(list(outputs) + list(inputs), limit=70)
        kernels = []
        for step in self.program.steps:
            if isinstance(step, RowChainStep):  # its parts too, for shapes the chain does not fit
                kernels += [step.kernel] + [part.kernel for part in step.parts]
            elif isinstance(step, KernelStep):
                kernels.append(step.kernel)
        # Kernels of the same code (differing in constants only) are compiled and loaded once.
        unique, same = distinct(kernels)
        self.source = render_program(unique, self._summary(texts))
        self.functions = {}
        if kernels:
            driver.use_device(device_id)
            self.arch = driver.arch(device_id)
            cubin = load_cubin(self.source, self.arch, name=f"{kernels[-1].name}.cu")
            self.module = driver.load_module(cubin)
            loaded = {k.name: driver.get_function(self.module, k.name) for k in unique}
            self.functions = {k.name: loaded[same[k.name]] for k in kernels}
        self.uploaded = {}  # constant -> its device array, copied once
        self.replays = {}  # signature of the inputs -> the Replay of a call with them, or None
        self._free_after = self._lifetimes()

    def _summary(self, texts):
        names = {v: (v.name or f"x{i}") for i, v in enumerate(self.inputs)}
        lines = [
            "exprc program (CUDA)",
            "",
            "inputs: " + (", ".join(f"{names[v]}: {v.type}" for v in self.inputs) or "none"),
        ]
        for n, step in enumerate(self.program.steps):
            if isinstance(step, NumpyStep):
                node = step.node
                if CUDA_LOWERINGS.kind(node.op) is Kind.LIBRARY and _on_gpu(node):
                    gemm = kernel_for(node.outputs[0].dtype, self.allow_tf32)
                    # The tile is picked per call, from the operands' lengths (see cuda_gemm.choose).
                    small = small_tiles(gemm)
                    alternative = "" if small is None else f" (or {small.name} for a small product)"
                    text = texts.get(node.outputs[0], "")
                    lines.append(f"step {n}: CUDA GEMM kernel {gemm.name}{alternative}: {text}")
                    continue
                lines.append(
                    f"step {n}: NumPy {node.op.debug_name()} (a view, or on the host): {texts.get(node.outputs[0], '')}"
                )
            else:
                lines.append(f"step {n}: CUDA kernel {step.kernel.name}: {step.kernel.note}")
        lines.append("outputs: " + ", ".join(texts.get(v, "") for v in self.outputs))
        return "\n".join(lines)

    def may_write_over(self, out, source):
        """Whether ``out`` may be computed into the array of input ``source`` (an update written
        in place): the C back end's rule (``exprc.codegen.c.program``). The kernel computing ``out`` reads
        ``source`` at the very element it writes, if at all, and nothing that may share memory
        with ``source`` is read later or returned. A NumPy step's results may be views of
        its inputs, so anything computed from ``source`` by one counts as sharing its memory
        (a matrix product's never does, but the rule stays simple)."""
        if any(d is None for d in source.type.shape) or source.type != out.type or self.outputs.count(out) != 1:
            return False
        steps = self.program.steps
        aliases = {source}
        for step in steps:
            if isinstance(step, NumpyStep) and any(v in aliases for v in step.node.inputs):
                aliases.update(step.node.outputs)
        if any(v in aliases for v in self.outputs):
            return False
        for position, step in enumerate(steps):
            if not isinstance(step, KernelStep) or not any(var is out for _, var in step.outputs):
                continue
            if step.reduced_axes is not None or len(step.outputs) != 1:
                return False
            identity = list(range(source.ndim))
            for buffer, var in step.inputs:
                if var in aliases and (var is not source or list(step.axes[buffer.name]) != identity):
                    return False
            later = [
                v
                for s in steps[position + 1 :]
                for v in (s.node.inputs if isinstance(s, NumpyStep) else [v for _, v in s.inputs])
            ]
            return not any(v in aliases for v in later)
        return False

    def _lifetimes(self):
        last_use = {}
        for i, step in enumerate(self.program.steps):
            reads = step.node.inputs if isinstance(step, NumpyStep) else [v for _, v in step.inputs]
            for var in reads:
                last_use[var] = i
        keep = set(self.outputs)
        free = [[] for _ in self.program.steps]
        for var, i in last_use.items():
            if var not in keep and var.owner is not None:
                free[i].append(var)
        return free

    def run(self, arrays):
        """The outputs, as device arrays of their own, for device arrays ``arrays``: by a
        replay of an earlier call with inputs of the same layouts (:mod:`exprc.codegen.cuda.replay`),
        else step by step, recording the call for the next ones where it can be replayed."""
        key = signature(arrays)
        if key is None:
            return self.run_steps(arrays)
        replay = self.replays.get(key, _NOT_YET)
        if replay is None:  # recorded, and found not replayable
            return self.run_steps(arrays)
        if replay is not _NOT_YET:
            driver.use_device(self.device_id)
            return replay(arrays)
        if overlapping(arrays):
            # A recording finds each pointer's input by address: with inputs sharing memory it
            # would mistake one for another, and a replay for other inputs would read the wrong one.
            return self.run_steps(arrays)
        with Recorder(arrays) as recorder:
            results = self.run_steps(arrays)
        if len(self.replays) >= MAX_REPLAYS:
            del self.replays[next(iter(self.replays))]  # the oldest
        self.replays[key] = recorder.replay(results)
        return results

    def run_steps(self, arrays):
        """The outputs for ``arrays``, computed step by step (:mod:`exprc.codegen.cuda.steps`)."""
        driver.use_device(self.device_id)
        values = dict(zip(self.inputs, arrays))
        host_cache = {}
        with np.errstate(all="ignore"):
            for step, dead in zip(self.program.steps, self._free_after):
                if isinstance(step, RowChainStep):
                    run_chain(step, values, self.functions, self.uploaded, self.device_id, host_cache)
                elif isinstance(step, KernelStep):
                    into = self.in_place.get(step.outputs[0][1])
                    run_kernel(
                        step,
                        values,
                        self.functions[step.kernel.name],
                        self.uploaded,
                        self.device_id,
                        host_cache,
                        into=None if into is None else values[into],
                    )
                else:
                    run_numpy_step(step, values, self.device_id, host_cache, self.uploaded, self.allow_tf32)
                for var in dead:
                    values.pop(var, None)  # back to the pool, for the next step to reuse
        results, seen = [], set()
        for var in self.outputs:
            value = value_of(var, values)
            source = self.in_place.get(var)
            if source is not None and value is values[source]:
                results.append(value)  # written over its input, as the caller asked
                seen.add(id(value))
                continue
            result = device_output(var, value, arrays, seen, self.device_id)
            seen.add(id(result))
            results.append(result)
        return results

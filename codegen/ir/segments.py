"""Grouping a program's consecutive kernels into segments, each run by one C call.

A :class:`Segment` is a maximal run of consecutive kernel steps; the arrays it reads, writes
and keeps for itself are numbered as its *slots*.
See docs/internals/kernel-ir.md.

>>> import exprc as ex
>>> from exprc.codegen.ir.lower import lower
>>> from exprc.codegen.c.target import TARGET
>>> x = ex.vector("x")
>>> program = lower([x], [ex.exp(x).sum() * 2], TARGET)
>>> [(s.name, [str(v) for v in s.inputs]) for s in plan(program)]
[('run0_mul_sum_exp_x', ['x'])]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exprc.codegen.ir.names import slug
from exprc.codegen.ir.steps import KernelStep, NumpyStep, Program, Step
from exprc.graph import Constant, Variable


@dataclass
class Segment:
    """Consecutive kernels run by one entry point; see the module docstring."""

    index: int
    name: str
    steps: list
    inputs: list = field(default_factory=list)
    constants: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    temporaries: list = field(default_factory=list)

    @property
    def slots(self) -> list[Variable]:
        """Every array the segment touches, in slot order."""
        return self.inputs + self.constants + self.outputs + self.temporaries

    def slot(self, var: Variable) -> int:
        return self.slots.index(var)


def _reads(step: Step) -> list[Variable]:
    if isinstance(step, NumpyStep):
        return list(step.node.inputs)
    return [var for _, var in step.inputs]


def plan(program: Program) -> list[Segment | NumpyStep]:
    """The program's steps with each run of consecutive kernels replaced by a :class:`Segment`."""
    items, run = [], []
    for step in program.steps + [None]:
        if isinstance(step, KernelStep):
            run.append(step)
            continue
        if run:
            items.append(run)
            run = []
        if step is not None:
            items.append(step)
    result: list[Segment | NumpyStep] = []
    count = 0
    for position, item in enumerate(items):
        if not isinstance(item, list):
            result.append(item)
            continue
        needed_after = set(program.outputs)
        for later in items[position + 1 :]:
            for step in later if isinstance(later, list) else [later]:
                needed_after.update(_reads(step))
        result.append(_segment(count, item, needed_after, program))
        count += 1
    return result


def _segment(index: int, steps: list[KernelStep], needed_after: set[Variable], program: Program) -> Segment:
    produced = [var for step in steps for _, var in step.outputs]
    inputs: list[Variable] = []
    constants: list[Variable] = []
    seen = set(produced)
    for step in steps:
        for var in _reads(step):
            if var in seen:
                continue
            seen.add(var)
            (constants if isinstance(var, Constant) else inputs).append(var)
    outputs = [v for v in produced if v in needed_after]
    if len(steps) == len(program.steps):
        # the whole program: inputs (and outputs) in the caller's order, so that a call hands
        # its arguments to the entry point as they come
        order = {v: k for k, v in enumerate(program.inputs)}
        if all(v in order for v in inputs):
            inputs.sort(key=order.__getitem__)
        if _distinct_kernel_outputs(program, produced):
            outputs = list(program.outputs)
    temporaries = [v for v in produced if v not in outputs]
    name = f"run{index}_{slug(produced[-1])}"
    return Segment(index, name, list(steps), inputs, constants, outputs, temporaries)


def _distinct_kernel_outputs(program: Program, produced: list[Variable]) -> bool:
    return len(set(program.outputs)) == len(program.outputs) and all(v in produced for v in program.outputs)
